//! The blocks that hold the rest (`events`, `http`, `server`, `location`)
//! and what places a server: `listen`, `server_name`; also `stub_status`
//! and `keepalive_timeout`.

use std::net::SocketAddr;

use rginx_config::Directive;

use crate::build::{Builder, Frame, Msg};
use crate::model::{
    HttpConf, Listen, LocationConf, LocationMatcher, ServerConf, ServerName, Settings, Value,
};
use crate::resolve::parse_ip;
use crate::table::Context;
use crate::values::parse_time;

use super::{arg, count, duplicate_check, parse_port, setting, split_host_port};

/// `stub_status` (its argument, as in nginx since 1.7.5, means nothing):
/// the level's requests get the status page. It is a content handler like
/// `proxy_pass`, not inherited, and the later of the two in a location
/// wins, so where it stands is kept.
pub fn stub_status(_b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    f.settings()
        .insert("stub_status", setting(d, Value::Number(u64::from(d.seq))));
    Ok(())
}

/// `events { }`
pub fn events(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let Frame::Main(model) = f else { return Ok(()) };
    if model.events.is_some() {
        return Err(Msg::directive("is duplicate"));
    }
    let mut events = Settings::default();
    b.walk(
        d.children(),
        Context::Events,
        &mut Frame::Events(&mut events),
    );
    model.events = Some(events);
    Ok(())
}

/// `http { }`
pub fn http(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let Frame::Main(model) = f else { return Ok(()) };
    if model.http.is_some() {
        return Err(Msg::directive("is duplicate"));
    }
    let mut http = HttpConf {
        servers: Vec::with_capacity(count(d, "server")),
        upstreams: Vec::with_capacity(count(d, "upstream")),
        ..HttpConf::default()
    };
    b.walk(d.children(), Context::Http, &mut Frame::Http(&mut http));
    match d
        .block
        .as_ref()
        .and_then(|blk| blk.close.map(|c| (c, blk.close_seq)))
    {
        Some((close, close_seq)) => b.finish_http(&mut http, close, close_seq),
        // the block never closed: nginx stopped at that syntax error and
        // made none of its end-of-block checks
        None => b.finish_unclosed_http(&mut http),
    }
    model.http = Some(http);
    Ok(())
}

/// `server { }` in http.
pub fn server(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let Frame::Http(http) = f else { return Ok(()) };
    let mut server = ServerConf {
        span: d.name.span,
        locations: Vec::with_capacity(count(d, "location")),
        ..ServerConf::default()
    };
    b.current_server = http.servers.len();
    b.walk(
        d.children(),
        Context::Server,
        &mut Frame::Server(&mut server),
    );
    // a server whose `listen` was refused (`listen 443 ssl`) gets no
    // default listen: that would only add false conflicts to the refusal
    if server.listens.is_empty() && count(d, "listen") == 0 {
        // nginx: *:80 when started as root, *:8000 otherwise
        let port = b.options.default_listen_port;
        let listen = Listen {
            addr: SocketAddr::from(([0, 0, 0, 0], port)),
            default_server: false,
            ssl: false,
            http2: false,
            span: d.name.span,
        };
        b.register_listen(&listen, http.servers.len());
        server.listens.push(listen);
    }
    if server.names.is_empty() {
        server.names.push(ServerName::Exact(String::new()));
    }
    http.servers.push(server);
    Ok(())
}

/// Parameters of `listen` rginx accepts and ignores (socket tuning).
const LISTEN_TUNING: &[&str] = &[
    "backlog=",
    "rcvbuf=",
    "sndbuf=",
    "deferred",
    "bind",
    "ipv6only=",
    "reuseport",
    "so_keepalive=",
    "fastopen=",
    "accept_filter=",
    "setfib=",
];
/// Parameters of `listen` that change what is served; not implemented.
const LISTEN_UNSUPPORTED: &[&str] = &["quic", "proxy_protocol", "spdy"];

/// `listen address[:port] [default_server] ...`
pub fn listen(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let Frame::Server(server) = f else {
        return Ok(());
    };
    let text = arg(d, 0);
    if text.starts_with("unix:") {
        return Err(Msg::own(
            "listening on a unix socket is not supported by rginx",
        ));
    }
    // `ngx_parse_inet_url` with `u->listen`: a port may be a range,
    // `8000-8005`, which listens on each
    let bad = |what: &str| Msg::own(format!("{what} in \"{text}\" of the \"listen\" directive"));
    let port_only = text.bytes().all(|c| c.is_ascii_digit() || c == b'-')
        && text.bytes().next().is_some_and(|c| c.is_ascii_digit());
    let (host, ports) = if port_only {
        ("*", listen_ports(text).map_err(bad)?)
    } else {
        let (host, port) = split_host_port(text);
        let ports = match port {
            None => (80, 80),
            Some(p) => listen_ports(p).map_err(bad)?,
        };
        (host, ports)
    };
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for port in ports.0..=ports.1 {
        if host == "*" {
            addrs.push(SocketAddr::from(([0, 0, 0, 0], port)));
        } else if let Some(ip) = parse_ip(host) {
            addrs.push(SocketAddr::new(ip, port));
        } else {
            addrs.extend(
                b.resolver.resolve(host, port).map_err(|e| {
                    Msg::own(format!("{e} in \"{text}\" of the \"listen\" directive"))
                })?,
            );
        }
    }
    let mut default_server = false;
    let (mut ssl, mut http2) = (false, false);
    let mut unsupported: Vec<&str> = Vec::new();
    for w in &d.args[1..] {
        let p = w.as_str();
        if p == "default_server" || p == "default" {
            default_server = true;
        } else if p == "ssl" {
            ssl = true;
        } else if p == "http2" {
            http2 = true;
        } else if LISTEN_UNSUPPORTED.contains(&p) {
            // every one is named, not only the first (`ssl http2`)
            unsupported.push(p);
        } else if LISTEN_TUNING.iter().any(|t| {
            if t.ends_with('=') {
                p.starts_with(t)
            } else {
                p == *t
            }
        }) {
            b.warn_at(
                d,
                format!("listen parameter \"{p}\" is ignored by rginx (socket tuning)"),
            );
        } else {
            return Err(Msg::own(format!("invalid parameter \"{p}\"")));
        }
    }
    match unsupported.as_slice() {
        [] => {}
        [one] => {
            return Err(Msg::own(format!(
                "listen parameter \"{one}\" is not supported by rginx"
            )))
        }
        several => {
            let names: Vec<String> = several.iter().map(|p| format!("\"{p}\"")).collect();
            return Err(Msg::own(format!(
                "listen parameters {} are not supported by rginx",
                names.join(", ")
            )));
        }
    }
    if http2 {
        if !ssl {
            // nginx 1.22 speaks only HTTP/2 on such a port (prior
            // knowledge); a client of it would get nothing it can read
            return Err(Msg::own(
                "listen parameter \"http2\" without \"ssl\" is not supported by rginx yet",
            ));
        }
        b.warn_at(
            d,
            "HTTP/2 is not offered by rginx yet: clients are offered HTTP/1.1 only (ALPN), which every HTTP/2 client falls back to",
        );
    }
    let server_index = b.current_server;
    for addr in addrs {
        let listen = Listen {
            addr,
            default_server,
            ssl,
            http2,
            span: d.name.span,
        };
        if server.listens.iter().any(|l| l.addr == addr) {
            return Err(Msg::own(format!("a duplicate listen {}", addr_text(addr))));
        }
        if default_server && b.has_default_server(addr) {
            return Err(Msg::own(format!(
                "a duplicate default server for {}",
                addr_text(addr)
            )));
        }
        b.register_listen(&listen, server_index);
        server.listens.push(listen);
    }
    Ok(())
}

/// A `listen` port or port range (`8000-8005`), with nginx's words for
/// a bad one.
fn listen_ports(text: &str) -> Result<(u16, u16), &'static str> {
    let (first, last) = match text.split_once('-') {
        Some((first, last)) => (first, Some(last)),
        None => (text, None),
    };
    let last = match last {
        Some(l) => Some(parse_port(l).ok_or("invalid port")?),
        None => None,
    };
    let first = parse_port(first).ok_or("invalid port")?;
    match last {
        Some(last) if first > last => Err("invalid port range"),
        Some(last) => Ok((first, last)),
        None => Ok((first, first)),
    }
}

/// `0.0.0.0:80` / `[::1]:80` as nginx prints addresses.
pub fn addr_text(addr: SocketAddr) -> String {
    addr.to_string()
}

/// `server_name name ...`
pub fn server_name(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let Frame::Server(server) = f else {
        return Ok(());
    };
    for w in &d.args {
        let name = w.as_str().to_ascii_lowercase();
        if name.starts_with('*') && (name.len() < 3 || !name[1..].starts_with('.')) {
            return Err(Msg::own(format!(
                "server name \"{}\" is invalid",
                w.as_str()
            )));
        }
        let entry = if let Some(re) = w.as_str().strip_prefix('~') {
            b.compile_regex(re, crate::select::caseless_name(re))?;
            ServerName::Regex(re.to_string())
        } else if let Some(suffix) = name.strip_prefix('*') {
            ServerName::LeadingWildcard {
                suffix: suffix.to_string(),
                also_bare: false,
            }
        } else if name.starts_with('.') {
            ServerName::LeadingWildcard {
                suffix: name.clone(),
                also_bare: true,
            }
        } else if let Some(prefix) = name.strip_suffix('*') {
            ServerName::TrailingWildcard(prefix.to_string())
        } else {
            ServerName::Exact(name)
        };
        server.names.push(entry);
    }
    Ok(())
}

/// `location [modifier] name { }`
pub fn location(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let matcher = location_matcher(b, d)?;
    let name = matcher.name().to_string();
    let parent = match f {
        Frame::Location(parent) => Some(parent.matcher.clone()),
        _ => None,
    };
    if let Some(parent) = &parent {
        let child_shown = matcher.name();
        match parent {
            LocationMatcher::Exact(p) => {
                return Err(Msg::own(format!(
                    "location \"{child_shown}\" cannot be inside the exact location \"{p}\""
                )))
            }
            LocationMatcher::Named(p) => {
                return Err(Msg::own(format!(
                    "location \"{child_shown}\" cannot be inside the named location \"{p}\""
                )))
            }
            _ => {}
        }
        if let LocationMatcher::Named(n) = &matcher {
            return Err(Msg::own(format!(
                "named location \"{n}\" can be on the server level only"
            )));
        }
        let parent_name = parent.name();
        if !matches!(matcher, LocationMatcher::Regex { .. }) && !name.starts_with(parent_name) {
            return Err(Msg::own(format!(
                "location \"{name}\" is outside location \"{parent_name}\""
            )));
        }
    }
    let mut loc = LocationConf {
        matcher,
        settings: Settings::default(),
        nested: Vec::with_capacity(count(d, "location")),
        proxy_pass: None,
        span: d.name.span,
    };
    b.walk(
        d.children(),
        Context::Location,
        &mut Frame::Location(&mut loc),
    );
    match f {
        Frame::Server(server) => server.locations.push(loc),
        Frame::Location(parent) => parent.nested.push(loc),
        _ => {}
    }
    Ok(())
}

fn location_matcher(b: &mut Builder<'_>, d: &Directive) -> Result<LocationMatcher, Msg> {
    let (modifier, name) = if d.args.len() == 2 {
        (arg(d, 0), arg(d, 1).to_string())
    } else {
        let v = arg(d, 0);
        if let Some(rest) = v.strip_prefix("^~") {
            ("^~", rest.to_string())
        } else if let Some(rest) = v.strip_prefix("~*") {
            ("~*", rest.to_string())
        } else if let Some(rest) = v.strip_prefix('~') {
            ("~", rest.to_string())
        } else if let Some(rest) = v.strip_prefix('=') {
            ("=", rest.to_string())
        } else {
            ("", v.to_string())
        }
    };
    Ok(match modifier {
        "=" => LocationMatcher::Exact(name),
        "^~" => LocationMatcher::Prefix {
            path: name,
            no_regex: true,
        },
        "~" | "~*" => {
            let case_insensitive = modifier == "~*";
            b.compile_regex(&name, case_insensitive)?;
            LocationMatcher::Regex {
                pattern: name,
                case_insensitive,
            }
        }
        "" if name.starts_with('@') => LocationMatcher::Named(name),
        "" => LocationMatcher::Prefix {
            path: name,
            no_regex: false,
        },
        other => return Err(Msg::own(format!("invalid location modifier \"{other}\""))),
    })
}

/// `keepalive_timeout timeout [header_timeout]`
pub fn keepalive_timeout(_: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let s = f.settings();
    duplicate_check(s, "keepalive_timeout")?;
    let timeout = parse_time(arg(d, 0), false).ok_or_else(|| Msg::directive("invalid value"))?;
    let header = match d.args.get(1) {
        Some(w) => {
            Some(parse_time(w.as_str(), true).ok_or_else(|| Msg::directive("invalid value"))?)
        }
        None => None,
    };
    s.insert(
        "keepalive_timeout",
        setting(d, Value::KeepaliveTimeout(timeout, header)),
    );
    Ok(())
}
