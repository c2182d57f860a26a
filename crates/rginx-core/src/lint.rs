//! Lints nginx does not have: warnings about proxy configurations that
//! nginx accepts but that do not do what their authors meant (the common
//! mistakes in proxying WebSocket, <https://nginx.org/en/docs/http/websocket.html>).
//! Each comes with a one-line fix.

use rginx_config::Span;

use crate::diag::Diagnostic;
use crate::model::{HeaderSetting, LocationConf, LocationMatcher, Model, Settings};

/// Runs every lint over a validated, merged model.
pub fn lint(model: &Model) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some(http) = &model.http else { return out };
    for server in &http.servers {
        let name = match server.names.first() {
            Some(crate::model::ServerName::Exact(n)) if !n.is_empty() => format!("server \"{n}\""),
            _ => "the server".to_string(),
        };
        check_added_headers(
            &name,
            &server.settings,
            &http.settings,
            server.span,
            &mut out,
        );
        for loc in &server.locations {
            lint_location(loc, &server.settings, &server.locations, &mut out);
        }
    }
    let known = Known {
        upstreams: http.upstreams.iter().map(|u| u.name.as_str()).collect(),
        implicit: http.implicit_upstreams(),
    };
    for server in &http.servers {
        check_unresolved_hosts(&server.locations, &known, &mut out);
    }
    out
}

/// What a `proxy_pass` with variables can reach without a resolver.
struct Known<'a> {
    upstreams: Vec<&'a str>,
    implicit: Vec<(String, u16, Vec<crate::peer::PeerAddr>)>,
}

/// A `proxy_pass` with variables whose host is written out and is no
/// upstream: nginx resolves it per request, and without a `resolver`
/// answers every request with 502 (the common Docker mistake of adding
/// `$request_uri` to a URL that worked).
fn check_unresolved_hosts(
    locations: &[LocationConf],
    known: &Known<'_>,
    out: &mut Vec<Diagnostic>,
) {
    for loc in locations {
        check_unresolved_hosts(&loc.nested, known, out);
        let Some(pp) = &loc.proxy_pass else { continue };
        if pp.target != crate::model::ProxyTarget::Variable || loc.settings.contains("resolver") {
            continue;
        }
        let url = pp.url.as_str();
        let Some(rest) = url
            .get(7..)
            .filter(|_| url[..7].eq_ignore_ascii_case("http://"))
        else {
            continue;
        };
        let Some(end) = rest.find([':', '/', '?', '$']) else {
            continue;
        };
        let (host, after) = rest.split_at(end);
        if after.starts_with('$') || host.is_empty() || host.starts_with('[') {
            continue;
        }
        let port = match after.strip_prefix(':') {
            Some(p) => match p[..p.find(['/', '?', '$']).unwrap_or(p.len())].parse::<u16>() {
                Ok(port) => Some(port),
                Err(_) => continue,
            },
            None => None,
        };
        let upstream =
            port.is_none() && known.upstreams.iter().any(|u| u.eq_ignore_ascii_case(host));
        let implicit = known
            .implicit
            .iter()
            .any(|(h, p, _)| *p == port.unwrap_or(80) && h.eq_ignore_ascii_case(host));
        if upstream
            || implicit
            || host.eq_ignore_ascii_case("unix")
            || crate::resolve::parse_ip(host).is_some()
        {
            continue;
        }
        warn(
            out,
            pp.span,
            format!(
                "proxy_pass has variables, so \"{host}\" is resolved per request, and no resolver is set: every request here gets 502, as in nginx"
            ),
            "add `resolver` with your DNS server (Docker's is 127.0.0.11), or name an upstream block",
        );
    }
}

fn find<'a>(headers: &'a [HeaderSetting], name: &str) -> Option<&'a HeaderSetting> {
    headers
        .iter()
        .find(|h| h.name.as_str().eq_ignore_ascii_case(name))
}

fn warn(out: &mut Vec<Diagnostic>, span: Span, message: String, hint: &str) {
    let order = (u32::MAX, span.file.0, span.line);
    out.push(Diagnostic::warning(message, Some(span), order).with_hint(hint));
}

/// Whether this level has a `proxy_set_header` list of its own rather than
/// the inherited one.
fn own_headers<'a>(loc: &'a Settings, parent: &Settings) -> Option<&'a [HeaderSetting]> {
    let mine = loc.get("proxy_set_header")?;
    match parent.get("proxy_set_header") {
        Some(inherited) if inherited.span == mine.span => None,
        _ => Some(loc.proxy_headers()),
    }
}

fn lint_location(
    loc: &LocationConf,
    parent: &Settings,
    siblings: &[LocationConf],
    out: &mut Vec<Diagnostic>,
) {
    if loc.proxy_pass.is_some() {
        check_proxy(loc, parent, siblings, out);
    }
    let name = format!("location \"{}\"", loc.matcher.name());
    check_added_headers(&name, &loc.settings, parent, loc.span, out);
    for nested in &loc.nested {
        lint_location(nested, &loc.settings, &loc.nested, out);
    }
}

/// A level with its own `add_header` list drops every inherited one (a
/// whole-list merge): the enclosing level's security headers silently
/// stop being sent there.
fn check_added_headers(
    what: &str,
    settings: &Settings,
    parent: &Settings,
    span: Span,
    out: &mut Vec<Diagnostic>,
) {
    let list = |s: &Settings| match s.get("add_header").map(|v| (&v.value, v.span)) {
        Some((crate::model::Value::AddHeaders(l), at)) => Some((l.clone(), at)),
        _ => None,
    };
    let (Some((mine, at)), Some((theirs, their_at))) = (list(settings), list(parent)) else {
        return;
    };
    if at == their_at {
        return;
    }
    let dropped: Vec<&str> = theirs
        .iter()
        .filter(|h| !mine.iter().any(|m| m.name.eq_ignore_ascii_case(&h.name)))
        .map(|h| h.name.as_str())
        .collect();
    if dropped.is_empty() {
        return;
    }
    warn(
        out,
        span,
        format!(
            "{what} sets its own add_header list, so the inherited headers {} are not sent",
            dropped.join(", ")
        ),
        "repeat them here (an include shared by both levels keeps them in one place)",
    );
}

fn check_proxy(
    loc: &LocationConf,
    parent: &Settings,
    siblings: &[LocationConf],
    out: &mut Vec<Diagnostic>,
) {
    let name = loc.matcher.name();
    let headers = loc.settings.proxy_headers();
    let upgrade = find(headers, "Upgrade").filter(|h| !h.value.as_str().is_empty());
    let connection = find(headers, "Connection");
    // `$http_connection` passes the client's own header, which carries
    // the client's `Upgrade` token when it asks for one (nginx 1.22
    // forwards it as it came)
    let connection_upgrades = connection.is_some_and(|c| {
        let value = c.value.as_str().to_ascii_lowercase();
        value.contains("upgrade") || value.contains("$http_connection")
    });
    let websocket = upgrade.is_some();

    if websocket && loc.settings.proxy_http_version() == "1.0" {
        warn(
            out,
            loc.span,
            format!("location \"{name}\" forwards \"Upgrade\" but proxy_http_version is 1.0, so the backend sees an HTTP/1.0 request and refuses the upgrade"),
            "add \"proxy_http_version 1.1;\" to this location",
        );
    }
    if let Some(up) = upgrade {
        if up.value.as_str().contains("$connection_upgrade") {
            warn(
                out,
                up.span,
                "\"proxy_set_header Upgrade $connection_upgrade\" sends \"Upgrade: upgrade\" instead of the client's protocol".to_string(),
                "use \"proxy_set_header Upgrade $http_upgrade;\"",
            );
        }
        if !connection_upgrades {
            warn(
                out,
                loc.span,
                format!("location \"{name}\" forwards \"Upgrade\" without \"Connection: upgrade\", so nginx sends \"Connection: close\" and the backend sees no upgrade request"),
                "add \"proxy_set_header Connection $connection_upgrade;\" with the map $http_upgrade recipe",
            );
        }
    } else if connection_upgrades {
        warn(
            out,
            loc.span,
            format!("location \"{name}\" sends \"Connection: upgrade\" but does not forward the client's \"Upgrade\" header, which nginx drops"),
            "add \"proxy_set_header Upgrade $http_upgrade;\"",
        );
    }
    if let Some(c) = connection {
        if c.value.as_str().eq_ignore_ascii_case("upgrade") {
            warn(
                out,
                c.span,
                format!("location \"{name}\" sends a hard-coded \"Connection: upgrade\" with every request, plain HTTP ones too"),
                "use map $http_upgrade $connection_upgrade { default upgrade; '' close; } and \"proxy_set_header Connection $connection_upgrade;\"",
            );
        }
    }
    let inherited = parent.proxy_headers();
    if let Some(own) = own_headers(&loc.settings, parent) {
        let dropped: Vec<&str> = inherited
            .iter()
            .filter(|h| find(own, h.name.as_str()).is_none())
            .map(|h| h.name.as_str())
            .collect();
        let inherited_ws = find(inherited, "Upgrade").is_some();
        if (websocket || inherited_ws) && !dropped.is_empty() {
            warn(
                out,
                loc.span,
                format!(
                    "location \"{name}\" sets its own proxy_set_header list, so the inherited headers {} are not sent",
                    dropped.join(", ")
                ),
                "repeat the inherited proxy_set_header lines in this location",
            );
        }
    }
    if websocket {
        if let LocationMatcher::Prefix { path, .. } = &loc.matcher {
            let bare = path.trim_end_matches('/');
            let has_exact = siblings
                .iter()
                .any(|s| matches!(&s.matcher, LocationMatcher::Exact(e) if e == bare));
            if path.len() > 1 && path.ends_with('/') && !has_exact {
                warn(
                    out,
                    loc.span,
                    format!("WebSocket location \"{path}\" ends in \"/\": a client connecting to \"{bare}\" gets a 301 redirect, which WebSocket clients do not follow"),
                    &format!("add \"location = {bare} {{ ... }}\" with the same settings, or name the location \"{bare}\""),
                );
            }
        }
        if loc.settings.get("proxy_read_timeout").is_none() {
            warn(
                out,
                loc.span,
                format!("WebSocket location \"{name}\" keeps proxy_read_timeout at its 60s default, so idle connections are closed after a minute"),
                "set \"proxy_read_timeout 3600s;\" (and proxy_send_timeout), or ping more often than the timeout",
            );
        }
    }
}
