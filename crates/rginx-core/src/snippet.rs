//! Snippets: files that hold part of a configuration (a site's `server`
//! blocks, or a few `location` blocks from a blog post) are checked and run
//! in the context they were written for. The context is read off the
//! file's top-level directives with the directive table; the file is then
//! included, unchanged, into a small generated configuration, so every
//! diagnostic still names the snippet's own file and line.

use std::path::{Path, PathBuf};

use rginx_config::Directive;

use crate::table::{lookup, Context};

/// Where a file's top-level directives belong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnippetContext {
    /// A whole configuration (`events`, `http`, main directives).
    Main,
    /// The inside of `http { }`: `server`, `upstream`, `map` blocks.
    Http,
    /// The inside of `server { }`: `location` blocks and their neighbours.
    Server,
    /// The inside of `location { }`: `proxy_pass` and friends alone.
    Location,
}

impl SnippetContext {
    /// Its name on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            SnippetContext::Main => "main",
            SnippetContext::Http => "http",
            SnippetContext::Server => "server",
            SnippetContext::Location => "location",
        }
    }

    fn table_context(self) -> Context {
        match self {
            SnippetContext::Main => Context::Main,
            SnippetContext::Http => Context::Http,
            SnippetContext::Server => Context::Server,
            SnippetContext::Location => Context::Location,
        }
    }
}

/// The outermost context in which every top-level directive of a file is
/// allowed (`include` and names rginx does not know say nothing). A file
/// that fits none, or holds nothing, is a whole configuration, so the
/// errors come out as nginx would give them.
pub fn detect(directives: &[Directive]) -> SnippetContext {
    let contexts = [
        SnippetContext::Main,
        SnippetContext::Http,
        SnippetContext::Server,
        SnippetContext::Location,
    ];
    let telling: Vec<&Directive> = directives
        .iter()
        .filter(|d| d.name() != "include" && lookup(d.name()).next().is_some())
        .collect();
    if telling.is_empty() {
        // only directives of modules rginx does not implement (h5bp's
        // gzip include): those are http-level ones, unless one of the
        // main level is there
        let blocks_of_main = [
            "events",
            "http",
            "stream",
            "mail",
            "load_module",
            "env",
            "thread_pool",
            "ssl_engine",
            "lock_file",
            "working_directory",
            "worker_rlimit_core",
            "worker_rlimit_nofile",
            "worker_priority",
            "worker_cpu_affinity",
            "timer_resolution",
            "pcre_jit",
        ];
        let http_only = !directives.is_empty()
            && directives.iter().all(|d| {
                d.name() == "include"
                    || (crate::names::is_nginx_directive(d.name())
                        && !blocks_of_main.contains(&d.name()))
            })
            && directives.iter().any(|d| d.name() != "include");
        return if http_only {
            SnippetContext::Http
        } else {
            SnippetContext::Main
        };
    }
    contexts
        .into_iter()
        .find(|ctx| {
            telling
                .iter()
                .all(|d| lookup(d.name()).any(|spec| spec.contexts.contains(&ctx.table_context())))
        })
        .unwrap_or(SnippetContext::Main)
}

/// The generated configuration a snippet runs in, and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrapper {
    /// Its path: a name in the directory relative includes resolve
    /// against (nothing is written there).
    pub path: PathBuf,
    /// Its text, which includes the snippet.
    pub text: String,
}

/// The directory a snippet's relative includes resolve against: its own,
/// or the one above when that holds `nginx.conf` (Debian's
/// `sites-enabled/` and `conf.d/` files include `snippets/...` relative to
/// /etc/nginx, as nginx resolves them against its configuration prefix).
pub fn base_dir(snippet: &Path) -> PathBuf {
    let dir = snippet.parent().map(Path::to_path_buf).unwrap_or_default();
    match dir.parent() {
        Some(up) if !dir.as_os_str().is_empty() && up.join("nginx.conf").is_file() => {
            up.to_path_buf()
        }
        _ => dir,
    }
}

/// The configuration that runs `snippet` in `context`: `events {}`, then
/// `http { }` around it, with a `server` listening on `listen` (nginx's
/// default port when `None`) for server and location snippets, and a
/// `location /` for location snippets.
pub fn wrap(snippet: &Path, context: SnippetContext, listen: Option<&str>) -> Wrapper {
    let base = base_dir(snippet);
    let included = snippet.strip_prefix(&base).unwrap_or(snippet);
    let quoted = included
        .display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    let include = format!("include \"{quoted}\";");
    let listen = listen
        .map(|l| format!("        listen {l};\n"))
        .unwrap_or_default();
    let inner = match context {
        SnippetContext::Main | SnippetContext::Http => format!("    {include}\n"),
        SnippetContext::Server => format!("    server {{\n{listen}        {include}\n    }}\n"),
        SnippetContext::Location => format!(
            "    server {{\n{listen}        location / {{\n            {include}\n        }}\n    }}\n"
        ),
    };
    let text = format!(
        "# generated by rginx: {} runs here as a {}-context snippet, in the foreground\ndaemon off;\nevents {{}}\nhttp {{\n{inner}}}\n",
        snippet.display(),
        context.name()
    );
    Wrapper {
        path: base.join("rginx-snippet-wrapper.conf"),
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context_of(text: &str) -> SnippetContext {
        let parsed = rginx_config::parse_str(Path::new("t.conf"), text);
        detect(&parsed.config.directives)
    }

    #[test]
    fn contexts_are_read_off_the_top_level_directives() {
        assert_eq!(context_of("events {}\nhttp {}\n"), SnippetContext::Main);
        assert_eq!(context_of(""), SnippetContext::Main);
        assert_eq!(
            context_of("server { listen 80; }\nupstream u { server 127.0.0.1; }"),
            SnippetContext::Http
        );
        assert_eq!(
            context_of("location /ws/ { proxy_pass http://127.0.0.1:9001; }"),
            SnippetContext::Server
        );
        assert_eq!(
            context_of("proxy_pass http://127.0.0.1:9001;\nproxy_set_header A b;"),
            SnippetContext::Location
        );
        // error_log fits the main context: a whole configuration
        assert_eq!(context_of("error_log stderr;"), SnippetContext::Main);
        // location next to server: nothing fits, nginx's errors decide
        assert_eq!(context_of("server {}\nlocation / {}"), SnippetContext::Main);
    }

    #[test]
    fn a_server_snippet_is_wrapped_with_its_listen() {
        let w = wrap(
            Path::new("ws.conf"),
            SnippetContext::Server,
            Some("127.0.0.1:8080"),
        );
        assert_eq!(w.path, Path::new("rginx-snippet-wrapper.conf"));
        assert!(w.text.contains(
            "    server {\n        listen 127.0.0.1:8080;\n        include \"ws.conf\";\n    }\n"
        ));
        assert!(w.text.starts_with(
            "# generated by rginx: ws.conf runs here as a server-context snippet, in the foreground\ndaemon off;\nevents {}\nhttp {\n"
        ));
    }
}
