//! The migration report (`rginx check --report`): every directive a
//! configuration tree uses, where, and what rginx does with it: applies it,
//! ignores it (and why), or refuses it (and what to do instead).

use rginx_config::{Config, Directive, Span};

use crate::table::{lookup, Body, Status};

/// What rginx does with one use of a directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseStatus {
    /// Validated and applied.
    Supported,
    /// Accepted with a warning; the reason.
    Ignored(&'static str),
    /// Refused; what to do instead.
    Unsupported(&'static str),
}

impl UseStatus {
    /// `supported`, `ignored` or `unsupported`.
    pub fn label(self) -> &'static str {
        match self {
            UseStatus::Supported => "supported",
            UseStatus::Ignored(_) => "ignored",
            UseStatus::Unsupported(_) => "unsupported",
        }
    }

    /// The reason it is ignored, or what to do instead; empty when
    /// supported.
    pub fn note(self) -> &'static str {
        match self {
            UseStatus::Supported => "",
            UseStatus::Ignored(why) | UseStatus::Unsupported(why) => why,
        }
    }
}

/// One directive where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectiveUse {
    /// Its name.
    pub name: String,
    /// Where nginx reports it: the line of its `;` or `{`.
    pub span: Span,
    /// What rginx does with it.
    pub status: UseStatus,
}

/// Every directive of a parsed tree in file order, included files where
/// they are included; the lines of `map { }` and `types { }` are entries,
/// not directives, and are left out.
pub fn directive_uses(config: &Config) -> Vec<DirectiveUse> {
    let mut out = Vec::new();
    let mut stack: Vec<&Directive> = config.directives.iter().rev().collect();
    while let Some(d) = stack.pop() {
        let name = d.name();
        let spec = lookup(name).next();
        if !spec.is_some_and(|s| matches!(s.body, Body::Entries)) {
            stack.extend(d.children().iter().rev());
        }
        let status = match spec.map(|s| s.status) {
            Some(Status::Supported) => UseStatus::Supported,
            Some(Status::Ignored(why)) => UseStatus::Ignored(why),
            None => UseStatus::Unsupported(advice(name)),
        };
        out.push(DirectiveUse {
            name: name.to_string(),
            span: d.end,
            status,
        });
    }
    out
}

/// What to do instead of a directive rginx does not implement.
pub fn advice(name: &str) -> &'static str {
    const ADVICE: &[(&[&str], &str)] = &[
        (
            &["root", "alias", "index", "try_files", "autoindex", "etag", "open_file_cache"],
            "rginx serves no files yet: serve them from a static file server behind rginx, or keep nginx for them",
        ),
        (
            &["rewrite", "if", "set", "break", "rewrite_log"],
            "no rewrite module yet: do the redirect or the rewrite in the backend",
        ),
        (
            &["add_trailer", "more_set_headers"],
            "set the header in the backend's responses",
        ),
        (
            &["auth_basic", "auth_basic_user_file", "auth_request", "allow", "deny", "satisfy"],
            "access control: enforce it in the backend or keep nginx in front; rginx refuses to run without it rather than leave the door open",
        ),
        (
            &["limit_req", "limit_req_zone", "limit_conn", "limit_conn_zone"],
            "rate and connection limits: enforce them in the backend or a firewall",
        ),
        (
            &["proxy_cache", "proxy_cache_path", "proxy_cache_valid", "proxy_cache_key"],
            "rginx does not cache: cache in the backend or a cache in front",
        ),
        (
            &["load_module"],
            "rginx has no dynamic modules: remove the line (and the module's directives)",
        ),
        (
            &["stream", "mail"],
            "rginx proxies HTTP only: keep nginx for TCP/UDP and mail proxying",
        ),
    ];
    const PREFIXES: &[(&str, &str)] = &[
        (
            "ssl_",
            "rginx terminates TLS with rustls, but not with this setting yet (OCSP, ticket key files, encrypted keys): keep nginx for it, or do without",
        ),
        (
            "gzip",
            "compress in the backend, or send responses uncompressed",
        ),
        (
            "fastcgi_",
            "rginx proxies HTTP only: put an HTTP server in front of the FastCGI app",
        ),
        (
            "uwsgi_",
            "rginx proxies HTTP only: run the app with an HTTP server",
        ),
        (
            "scgi_",
            "rginx proxies HTTP only: run the app with an HTTP server",
        ),
        ("grpc_", "rginx proxies HTTP/1.1 only: keep nginx for gRPC"),
        (
            "proxy_cache",
            "rginx does not cache: cache in the backend or a cache in front",
        ),
        ("proxy_ssl_", "rginx talks plain HTTP to upstreams for now"),
        ("sub_filter", "rewrite the body in the backend"),
    ];
    if let Some((_, why)) = ADVICE.iter().find(|(names, _)| names.contains(&name)) {
        return why;
    }
    if let Some((_, why)) = PREFIXES.iter().find(|(p, _)| name.starts_with(p)) {
        return why;
    }
    "no rginx equivalent yet: remove it if its behaviour is not needed, or keep nginx for this part"
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn every_directive_is_listed_with_its_status() {
        let parsed = rginx_config::parse_str(
            Path::new("r.conf"),
            "events {}\nhttp {\n  sendfile on;\n  types { text/html html; }\n  server {\n    listen 80;\n    root /srv;\n  }\n}\n",
        );
        let uses = directive_uses(&parsed.config);
        let summary: Vec<(String, u32, &str)> = uses
            .iter()
            .map(|u| (u.name.clone(), u.span.line, u.status.label()))
            .collect();
        assert_eq!(
            summary,
            [
                ("events".to_string(), 1, "supported"),
                ("http".to_string(), 2, "supported"),
                ("sendfile".to_string(), 3, "ignored"),
                ("types".to_string(), 4, "supported"),
                ("server".to_string(), 5, "supported"),
                ("listen".to_string(), 6, "supported"),
                ("root".to_string(), 7, "unsupported"),
            ]
        );
        assert!(uses[6].status.note().contains("serves no files"));
    }

    #[test]
    fn advice_covers_families_and_has_a_default() {
        assert!(advice("ssl_session_ticket_key").contains("TLS"));
        assert!(advice("gzip_types").contains("compress"));
        assert!(advice("deny").contains("access control"));
        assert!(advice("whatever").contains("no rginx equivalent"));
    }
}
