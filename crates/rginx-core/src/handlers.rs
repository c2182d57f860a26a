//! Directive handlers: parse a directive's arguments into the model, with
//! nginx's messages for bad values. Simple value kinds are handled
//! generically in [`crate::build`]; these are the directives with their own
//! rules.

use std::net::SocketAddr;

use rginx_config::Directive;

use crate::build::{Builder, Frame, Msg};
use crate::model::Balancing;
use crate::model::{
    AccessLog, AddHeader, ErrorLog, ErrorPageConf, Expires, ExpiresTime, HeaderSetting, HttpConf,
    Listen, LocationConf, LocationMatcher, LogFormat, LogLevel, MapConf, MapEntry, ProxyPass,
    ProxyTarget, RedirectPattern, RedirectRule, ServerConf, ServerName, Setting, Settings,
    UpstreamConf, UpstreamServer, Value,
};
use crate::resolve::parse_ip;
use crate::table::Context;
use crate::values::{parse_number, parse_time};

/// A directive handler: reads `directive` into the current `frame`.
pub type Handler = fn(&mut Builder<'_>, &Directive, &mut Frame<'_>) -> Result<(), Msg>;

fn arg(d: &Directive, i: usize) -> &str {
    d.args.get(i).map_or("", |w| w.as_str())
}

fn setting(d: &Directive, value: Value) -> Setting {
    Setting {
        value,
        span: d.name.span,
    }
}

/// Appends to a list-valued setting of the current level.
fn push_list(settings: &mut Settings, name: &'static str, d: &Directive, item: ListItem) {
    let entry = settings.get_mut(name);
    match (entry.map(|s| &mut s.value), item) {
        (Some(Value::Headers(list)), ListItem::Header(h)) => {
            // lists are short and kept for the life of the configuration
            list.reserve_exact(1);
            list.push(h);
        }
        (Some(Value::AccessLogs(list)), ListItem::Access(a)) => list.extend(a),
        (Some(Value::ErrorLogs(list)), ListItem::Error(e)) => list.push(e),
        (_, ListItem::Header(h)) => {
            settings.insert(name, setting(d, Value::Headers(vec![h])));
        }
        (_, ListItem::Access(a)) => {
            settings.insert(name, setting(d, Value::AccessLogs(a.into_iter().collect())));
        }
        (_, ListItem::Error(e)) => {
            settings.insert(name, setting(d, Value::ErrorLogs(vec![e])));
        }
    }
}

enum ListItem {
    Header(HeaderSetting),
    Access(Option<AccessLog>),
    Error(ErrorLog),
}

fn duplicate_check(settings: &Settings, name: &str) -> Result<(), Msg> {
    if settings.contains(name) {
        return Err(Msg::directive("is duplicate"));
    }
    Ok(())
}

/// How many children of a block are `name` directives (to size vectors
/// once: a server may hold thousands of locations).
fn count(d: &Directive, name: &str) -> usize {
    d.children().iter().filter(|c| c.name() == name).count()
}

/// `worker_processes N | auto`
pub fn worker_processes(_: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let s = f.settings();
    duplicate_check(s, "worker_processes")?;
    let v = arg(d, 0);
    let value = if v == "auto" {
        Value::Text("auto".into())
    } else {
        Value::Number(parse_number(v).ok_or_else(|| Msg::directive("invalid value"))?)
    };
    s.insert("worker_processes", setting(d, value));
    Ok(())
}

/// `worker_connections N`
pub fn worker_connections(
    _: &mut Builder<'_>,
    d: &Directive,
    f: &mut Frame<'_>,
) -> Result<(), Msg> {
    let s = f.settings();
    duplicate_check(s, "worker_connections")?;
    let n = parse_number(arg(d, 0))
        .ok_or_else(|| Msg::own(format!("invalid number \"{}\"", arg(d, 0))))?;
    s.insert("worker_connections", setting(d, Value::Number(n)));
    Ok(())
}

/// `use method`: only epoll exists on Linux builds.
pub fn event_type(_: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let s = f.settings();
    duplicate_check(s, "use")?;
    let v = arg(d, 0);
    if v != "epoll" {
        return Err(Msg::own(format!("invalid event type \"{v}\"")));
    }
    s.insert("use", setting(d, Value::Text(v.to_string())));
    Ok(())
}

/// `user name [group]`: as root the accounts must exist (the group
/// defaults to the user's name); otherwise it is ignored with nginx's
/// warning.
pub fn user(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let s = f.settings();
    duplicate_check(s, "user")?;
    if !b.options.as_root {
        b.warn_at(
            d,
            "the \"user\" directive makes sense only if the master process runs with super-user privileges, ignored",
        );
        return Ok(());
    }
    let user = arg(d, 0);
    if !b.resolver.user_exists(user) {
        return Err(Msg::own(format!("getpwnam(\"{user}\") failed")));
    }
    let group = d.args.get(1).map_or(user, |w| w.as_str());
    if !b.resolver.group_exists(group) {
        return Err(Msg::own(format!("getgrnam(\"{group}\") failed")));
    }
    let s = f.settings();
    let words = d.args.iter().map(|w| w.as_str().to_string()).collect();
    s.insert("user", setting(d, Value::Words(words)));
    Ok(())
}

/// `stub_status` (its argument, as in nginx since 1.7.5, means nothing):
/// the level's requests get the status page. It is a content handler like
/// `proxy_pass`, not inherited, and the later of the two in a location
/// wins, so where it stands is kept.
pub fn stub_status(_b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    f.settings()
        .insert("stub_status", setting(d, Value::Number(u64::from(d.seq))));
    Ok(())
}

/// Log targets nginx has and rginx does not: refused rather than taken
/// for a file name.
fn unsupported_log_target(path: &str) -> Result<(), Msg> {
    for (prefix, what) in [("syslog:", "syslog"), ("memory:", "a memory buffer")] {
        if path.starts_with(prefix) {
            return Err(Msg::own(format!(
                "logging to {what} (\"{prefix}\") is not supported by rginx"
            )));
        }
    }
    Ok(())
}

/// `error_log path [level]`
pub fn error_log(_: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let level = match d.args.get(1) {
        None => LogLevel::Error,
        Some(w) => LogLevel::parse(w.as_str())
            .ok_or_else(|| Msg::own(format!("invalid log level \"{}\"", w.as_str())))?,
    };
    if d.args.len() > 2 {
        // nginx takes several levels only for debug_* masks
        let extra = arg(d, 2);
        return Err(Msg::own(format!("invalid log level \"{extra}\"")));
    }
    unsupported_log_target(arg(d, 0))?;
    let entry = ErrorLog {
        path: arg(d, 0).to_string(),
        level,
    };
    push_list(f.settings(), "error_log", d, ListItem::Error(entry));
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

/// Splits `host:port` as ngx_parse_url does for listen and upstream
/// addresses; `[v6]:port` keeps the brackets out of the host.
pub(crate) fn split_host_port(text: &str) -> (&str, Option<&str>) {
    if let Some(rest) = text.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            let host = &rest[..end];
            let after = &rest[end + 1..];
            return (host, after.strip_prefix(':'));
        }
        return (text, None);
    }
    // ngx_parse_inet_url splits an unbracketed address at its first colon
    match text.find(':') {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    }
}

fn parse_port(text: &str) -> Option<u16> {
    parse_number(text)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|p| *p > 0)
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
const LISTEN_UNSUPPORTED: &[&str] = &["ssl", "http2", "quic", "proxy_protocol", "spdy"];

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
    let addrs: Vec<SocketAddr> = if let Some(port) = parse_number(text).map(|_| text) {
        let port = parse_port(port).ok_or_else(|| {
            Msg::own(format!(
                "invalid port in \"{text}\" of the \"listen\" directive"
            ))
        })?;
        vec![SocketAddr::from(([0, 0, 0, 0], port))]
    } else {
        let (host, port) = split_host_port(text);
        let port = match port {
            None => 80,
            Some(p) => parse_port(p).ok_or_else(|| {
                Msg::own(format!(
                    "invalid port in \"{text}\" of the \"listen\" directive"
                ))
            })?,
        };
        if host == "*" {
            vec![SocketAddr::from(([0, 0, 0, 0], port))]
        } else if let Some(ip) = parse_ip(host) {
            vec![SocketAddr::new(ip, port)]
        } else {
            b.resolver
                .resolve(host, port)
                .map_err(|e| Msg::own(format!("{e} in \"{text}\" of the \"listen\" directive")))?
        }
    };
    let mut default_server = false;
    let mut unsupported: Vec<&str> = Vec::new();
    for w in &d.args[1..] {
        let p = w.as_str();
        if p == "default_server" || p == "default" {
            default_server = true;
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
    let server_index = b.current_server;
    for addr in addrs {
        let listen = Listen {
            addr,
            default_server,
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

/// `proxy_pass URL`
pub fn proxy_pass(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let Frame::Location(loc) = f else {
        return Ok(());
    };
    if loc.proxy_pass.is_some() {
        return Err(Msg::directive("is duplicate"));
    }
    let url = arg(d, 0);
    let vars = b.use_template(url)?;
    let regex_or_named = matches!(
        loc.matcher,
        LocationMatcher::Regex { .. } | LocationMatcher::Named(_)
    );
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if vars || url.contains('$') {
        let scheme = if lower.starts_with("https://") {
            "https"
        } else {
            "http"
        };
        loc.proxy_pass = Some(ProxyPass {
            url: d.args[0].clone(),
            scheme,
            target: ProxyTarget::Variable,
            explicit_port: false,
            uri: None,
            span: d.name.span,
            end: d.end,
            seq: d.seq,
        });
        return Ok(());
    }
    let (scheme, rest) = if lower.starts_with("http://") {
        ("http", &url[7..])
    } else if lower.starts_with("https://") {
        ("https", &url[8..])
    } else {
        return Err(Msg::own("invalid URL prefix"));
    };
    if scheme == "https" {
        return Err(Msg::own(
            "proxy_pass to https:// upstreams is not supported by rginx yet",
        ));
    }
    if rest.starts_with("unix:") {
        return Err(Msg::own(
            "proxy_pass to a unix socket is not supported by rginx",
        ));
    }
    let (authority, uri) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(rest[i..].to_string())),
        None => (rest, None),
    };
    // nginx parses the address first (its messages quote everything after
    // the scheme), then checks the upstream name, then the URI part
    let (host, port_text) = split_host_port(authority);
    if host.is_empty() {
        return Err(Msg::own(format!("no host in upstream \"{rest}\"")));
    }
    let port = match port_text {
        None => None,
        Some(p) => Some(
            parse_port(p)
                .ok_or_else(|| Msg::own(format!("invalid port in upstream \"{rest}\"")))?,
        ),
    };
    b.proxy_ref(host, port)?;
    if uri.is_some() && regex_or_named {
        return Err(Msg::own(
            "\"proxy_pass\" cannot have URI part in location given by regular expression, or inside named location, or inside \"if\" statement, or inside \"limit_except\" block",
        ));
    }
    loc.proxy_pass = Some(ProxyPass {
        url: d.args[0].clone(),
        scheme,
        target: ProxyTarget::Host {
            host: host.to_string(),
            port: port.unwrap_or(80),
            addrs: Vec::new(),
        },
        explicit_port: port.is_some(),
        uri,
        span: d.name.span,
        end: d.end,
        seq: d.seq,
    });
    Ok(())
}

/// `proxy_set_header name value`
pub fn proxy_set_header(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    // nginx compiles these values while merging, so it reports a bad one
    // at the end of the http block; an http-level list is compiled only if
    // some server inherits it
    if matches!(f, Frame::Http(_)) {
        b.http_headers.push((d.args[1].clone(), d.seq));
    } else {
        b.check_header_value(&d.args[1], d.seq);
    }
    let header = HeaderSetting {
        name: d.args[0].clone(),
        value: d.args[1].clone(),
        span: d.name.span,
    };
    push_list(
        f.settings(),
        "proxy_set_header",
        d,
        ListItem::Header(header),
    );
    Ok(())
}

/// `proxy_redirect off | default | [~|~*]PATTERN REPLACEMENT`, with
/// nginx's checks and messages (`ngx_http_proxy_redirect`).
pub fn proxy_redirect(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    rewrite_rules(b, d, f, "proxy_redirect", RuleSyntax::Redirect)
}

/// `proxy_cookie_domain off | DOMAIN REPLACEMENT | ~REGEX REPLACEMENT`
/// (`ngx_http_proxy_cookie_domain`: a regex is always caseless).
pub fn proxy_cookie_domain(
    b: &mut Builder<'_>,
    d: &Directive,
    f: &mut Frame<'_>,
) -> Result<(), Msg> {
    rewrite_rules(b, d, f, "proxy_cookie_domain", RuleSyntax::Domain)
}

/// `proxy_cookie_path off | PATH REPLACEMENT | ~REGEX | ~*REGEX ...`
/// (`ngx_http_proxy_cookie_path`).
pub fn proxy_cookie_path(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    rewrite_rules(b, d, f, "proxy_cookie_path", RuleSyntax::Path)
}

/// How a rewrite directive's first argument is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RuleSyntax {
    /// `proxy_redirect`: `default` too; `~` and `~*`.
    Redirect,
    /// `proxy_cookie_domain`: `~` only, caseless.
    Domain,
    /// `proxy_cookie_path`: `~` and `~*`.
    Path,
}

/// The rule lists of `proxy_redirect`, `proxy_cookie_domain` and
/// `proxy_cookie_path`, with nginx's checks: nothing after `off` at a
/// level, no `off` after a rule, one argument only for `off` (and
/// `default`).
fn rewrite_rules(
    b: &mut Builder<'_>,
    d: &Directive,
    f: &mut Frame<'_>,
    key: &'static str,
    syntax: RuleSyntax,
) -> Result<(), Msg> {
    let here = match f.settings().get(key).map(|s| &s.value) {
        Some(Value::Redirects(None)) => return Err(Msg::directive("is duplicate")),
        Some(Value::Redirects(Some(rules))) => rules.len(),
        _ => 0,
    };
    let first = arg(d, 0);
    let rule = if d.args.len() == 1 {
        match first {
            "off" if here > 0 => return Err(Msg::directive("is duplicate")),
            "off" => {
                f.settings().insert(key, setting(d, Value::Redirects(None)));
                return Ok(());
            }
            "default" if syntax == RuleSyntax::Redirect => default_redirect(f)?,
            other => return Err(Msg::own(format!("invalid parameter \"{other}\""))),
        }
    } else {
        let pattern = if let Some(re) = first.strip_prefix('~') {
            let (pattern, caseless) = match (syntax, re.strip_prefix('*')) {
                (RuleSyntax::Domain, _) => (re, true),
                (_, Some(p)) => (p, true),
                (_, None) => (re, false),
            };
            b.compile_regex(pattern, caseless)?;
            RedirectPattern::Regex {
                pattern: pattern.to_string(),
                caseless,
            }
        } else {
            b.use_template(first)?;
            RedirectPattern::Prefix(first.to_string())
        };
        let replacement = arg(d, 1);
        b.use_template(replacement)?;
        RedirectRule {
            pattern,
            replacement: replacement.to_string(),
            literal: false,
        }
    };
    let settings = f.settings();
    match settings.get_mut(key).map(|s| &mut s.value) {
        Some(Value::Redirects(Some(rules))) => rules.push(rule),
        _ => {
            settings.insert(key, setting(d, Value::Redirects(Some(vec![rule]))));
        }
    }
    Ok(())
}

/// `proxy_redirect default`: the `proxy_pass` URL given before it in the
/// same location, to the location's name (or the URL and `/` to `/`
/// when it has no URI part).
fn default_redirect(f: &mut Frame<'_>) -> Result<RedirectRule, Msg> {
    let pass = match f {
        Frame::Location(loc) => loc.proxy_pass.as_ref().map(|pp| (pp, loc.matcher.name())),
        _ => None,
    };
    if pass.is_some_and(|(pp, _)| pp.target == ProxyTarget::Variable) {
        return Err(Msg::own(
            "\"proxy_redirect default\" cannot be used with \"proxy_pass\" directive with variables",
        ));
    }
    let Some((pp, name)) = pass else {
        return Err(Msg::own(
            "\"proxy_redirect default\" should be placed after the \"proxy_pass\" directive",
        ));
    };
    let (pattern, replacement) = pp.default_redirect(name);
    Ok(RedirectRule {
        pattern: RedirectPattern::Prefix(pattern),
        replacement,
        literal: true,
    })
}

/// `return CODE [TEXT] | URL` (`ngx_http_rewrite_return`). Only a
/// level's first one can run: the rewrite module stops at it.
pub fn return_(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let first = arg(d, 0);
    let invalid = || Msg::own(format!("invalid return code \"{first}\""));
    // ngx_atoi: digits only
    let number = first
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| first.parse::<u32>().ok())
        .flatten();
    let (code, text) = match number.ok_or(()) {
        Ok(code) if code > 999 => return Err(invalid()),
        Ok(code) => (code as u16, d.args.get(1).map(|w| w.as_str())),
        Err(_)
            if d.args.len() == 1
                && ["http://", "https://", "$scheme"]
                    .iter()
                    .any(|p| first.starts_with(p)) =>
        {
            (302, Some(first))
        }
        Err(_) => return Err(invalid()),
    };
    if let Some(text) = text {
        b.use_template(text)?;
    }
    let settings = f.settings();
    if !settings.contains("return") {
        let value = Value::Return {
            code,
            text: text.map(str::to_string),
        };
        settings.insert("return", setting(d, value));
    }
    Ok(())
}

/// `proxy_method METHOD` (a value with variables,
/// `ngx_http_set_complex_value_slot`).
pub fn proxy_method(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    duplicate_check(f.settings(), "proxy_method")?;
    b.use_template(arg(d, 0))?;
    f.settings().insert(
        "proxy_method",
        setting(d, Value::Text(arg(d, 0).to_string())),
    );
    Ok(())
}

/// `proxy_hide_header NAME` and `proxy_pass_header NAME`: a level's
/// names, in order (each list inherited whole when a level has none).
pub fn header_names(_: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let name = arg(d, 0).to_string();
    let key: &'static str = if d.name() == "proxy_hide_header" {
        "proxy_hide_header"
    } else {
        "proxy_pass_header"
    };
    let settings = f.settings();
    match settings.get_mut(key).map(|s| &mut s.value) {
        Some(Value::Words(names)) => names.push(name),
        _ => {
            settings.insert(key, setting(d, Value::Words(vec![name])));
        }
    }
    Ok(())
}

/// `error_page CODE ... [=[RESPONSE]] URI` (`ngx_http_core_error_page`).
pub fn error_page(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let n = d.args.len();
    let invalid = |w: &str| Msg::own(format!("invalid value \"{w}\""));
    let digits = |w: &str| w.bytes().all(|c| c.is_ascii_digit()) && !w.is_empty();
    let second_last = arg(d, n - 2);
    let (overwrite, codes_end) = match second_last.strip_prefix('=') {
        Some(_) if n - 2 == 0 => return Err(invalid(second_last)),
        Some("") => (Some(0), n - 2),
        Some(code) if digits(code) => (
            Some(code.parse::<u16>().map_err(|_| invalid(second_last))?),
            n - 2,
        ),
        Some(_) => return Err(invalid(second_last)),
        None => (None, n - 1),
    };
    let target = arg(d, n - 1);
    b.use_template(target)?;
    let mut codes = Vec::new();
    for w in &d.args[..codes_end] {
        let w = w.as_str();
        let code = digits(w)
            .then(|| w.parse::<u32>().ok())
            .flatten()
            .filter(|c| *c != 499)
            .ok_or_else(|| invalid(w))?;
        if !(300..=599).contains(&code) {
            return Err(Msg::own(format!(
                "value \"{w}\" must be between 300 and 599"
            )));
        }
        codes.push(code as u16);
    }
    let entry = ErrorPageConf {
        codes,
        overwrite,
        target: target.to_string(),
    };
    let settings = f.settings();
    match settings.get_mut("error_page").map(|s| &mut s.value) {
        Some(Value::ErrorPages(list)) => list.push(entry),
        _ => {
            settings.insert("error_page", setting(d, Value::ErrorPages(vec![entry])));
        }
    }
    Ok(())
}

/// `internal`: the location answers internal redirects only.
pub fn internal(_: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    f.settings()
        .insert("internal", setting(d, Value::Flag(true)));
    Ok(())
}

/// `add_header NAME VALUE [always]` (`ngx_http_headers_add`).
pub fn add_header(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let value = arg(d, 1);
    if !value.is_empty() {
        b.use_template(value)?;
    }
    let always = match d.args.get(2).map(|w| w.as_str()) {
        None => false,
        Some("always") => true,
        Some(other) => return Err(Msg::own(format!("invalid parameter \"{other}\""))),
    };
    let header = AddHeader {
        name: arg(d, 0).to_string(),
        value: value.to_string(),
        always,
    };
    let settings = f.settings();
    match settings.get_mut("add_header").map(|s| &mut s.value) {
        Some(Value::AddHeaders(list)) => list.push(header),
        _ => {
            settings.insert("add_header", setting(d, Value::AddHeaders(vec![header])));
        }
    }
    Ok(())
}

/// `expires [modified] TIME | epoch | max | off | @TIME`
/// (`ngx_http_headers_expires`).
pub fn expires(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    duplicate_check(f.settings(), "expires")?;
    let (modified, value) = match d.args.len() {
        1 => (false, arg(d, 0)),
        _ if arg(d, 0) == "modified" => (true, arg(d, 1)),
        _ => return Err(Msg::directive("invalid value")),
    };
    let expires = if b.use_template(value)? {
        Expires::Variable {
            value: value.to_string(),
            modified,
        }
    } else {
        Expires::Fixed(ExpiresTime::parse(value, modified).map_err(Msg::directive)?)
    };
    f.settings()
        .insert("expires", setting(d, Value::Expires(expires)));
    Ok(())
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

/// `upstream name { }`
pub fn upstream(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let Frame::Http(http) = f else { return Ok(()) };
    let name = arg(d, 0).to_string();
    b.define_upstream(&name, d)?;
    let mut up = UpstreamConf {
        name,
        span: d.name.span,
        ..UpstreamConf::default()
    };
    let errors = b.error_count();
    b.walk(
        d.children(),
        Context::Upstream,
        &mut Frame::Upstream(&mut up),
    );
    // a `server` refused inside (a unix: socket) is still a server: nginx
    // stops at that refusal and never finds the block empty
    if up.servers.is_empty() && b.error_count() == errors {
        // checked when the block ends, so nginx names the line of its `}`
        // an unclosed block stopped nginx at the syntax error instead
        if let Some((blk, close)) = d.block.as_ref().and_then(|blk| blk.close.map(|c| (blk, c))) {
            b.error_at(close, blk.close_seq, "no servers are inside upstream");
        }
    }
    http.upstreams.push(up);
    Ok(())
}

/// `server address [parameters]` in an upstream.
pub fn upstream_server(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let Frame::Upstream(up) = f else {
        return Ok(());
    };
    let text = arg(d, 0);
    if text.starts_with("unix:") {
        return Err(Msg::own(
            "upstream servers on unix sockets are not supported by rginx",
        ));
    }
    let mut server = UpstreamServer {
        name: text.to_string(),
        host: String::new(),
        port: 80,
        addrs: Vec::new(),
        weight: 1,
        max_fails: 1,
        fail_timeout: std::time::Duration::from_secs(10),
        backup: false,
        down: false,
        max_conns: 0,
        span: d.name.span,
    };
    for w in &d.args[1..] {
        let p = w.as_str();
        let invalid = || Msg::own(format!("invalid parameter \"{p}\""));
        if let Some(v) = p.strip_prefix("weight=") {
            server.weight = parse_number(v).filter(|n| *n > 0).ok_or_else(invalid)?;
        } else if let Some(v) = p.strip_prefix("max_fails=") {
            server.max_fails = parse_number(v).ok_or_else(invalid)?;
        } else if let Some(v) = p.strip_prefix("fail_timeout=") {
            server.fail_timeout = parse_time(v, true).ok_or_else(invalid)?;
        } else if let Some(v) = p.strip_prefix("max_conns=") {
            server.max_conns = parse_number(v).ok_or_else(invalid)?;
        } else if p == "backup" {
            if matches!(up.method, Balancing::IpHash | Balancing::Hash { .. }) {
                return Err(Msg::own(format!(
                    "balancing method does not support parameter \"{p}\""
                )));
            }
            server.backup = true;
        } else if p == "down" {
            server.down = true;
        } else {
            return Err(invalid());
        }
    }
    if text.contains('/') {
        return Err(Msg::own(format!("invalid host in upstream \"{text}\"")));
    }
    let (host, port) = split_host_port(text);
    if host.is_empty() {
        return Err(Msg::own(format!("no host in upstream \"{text}\"")));
    }
    if let Some(p) = port {
        server.port = parse_port(p)
            .ok_or_else(|| Msg::own(format!("invalid port in upstream \"{text}\"")))?;
    }
    server.addrs = b
        .resolver
        .resolve(host, server.port)
        .map_err(|e| Msg::own(format!("{e} in upstream \"{text}\"")))?;
    server.host = host.to_string();
    up.servers.push(server);
    Ok(())
}

/// `ip_hash`, `least_conn` and `hash KEY [consistent]`
/// (`ngx_http_upstream_ip_hash`, `ngx_http_upstream_least_conn`,
/// `ngx_http_upstream_hash`): the method replaces any set before,
/// with nginx's warning; a `keepalive` before it is lost with it (nginx's
/// keepalive wraps the method it finds, so it must come after).
pub fn balancing(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let Frame::Upstream(up) = f else {
        return Ok(());
    };
    if up.method != Balancing::RoundRobin || up.keepalive.is_some() {
        b.warn_at(d, "load balancing method redefined");
        up.keepalive = None;
    }
    up.method = match d.name() {
        "ip_hash" => Balancing::IpHash,
        "least_conn" => Balancing::LeastConn,
        _ => {
            let key = arg(d, 0);
            b.use_template(key)?;
            let consistent = match d.args.get(1).map(|w| w.as_str()) {
                None => false,
                Some("consistent") => true,
                Some(other) => return Err(Msg::own(format!("invalid parameter \"{other}\""))),
            };
            Balancing::Hash {
                key: key.to_string(),
                consistent,
            }
        }
    };
    Ok(())
}

/// `keepalive N` in an upstream.
pub fn keepalive(_: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let Frame::Upstream(up) = f else {
        return Ok(());
    };
    if up.keepalive.is_some() {
        return Err(Msg::directive("is duplicate"));
    }
    let v = arg(d, 0);
    let n = parse_number(v)
        .filter(|n| *n > 0)
        .ok_or_else(|| Msg::own(format!("invalid value \"{v}\" in \"keepalive\" directive")))?;
    up.keepalive = Some(n);
    Ok(())
}

/// `map source $variable { ... }`
pub fn map(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let Frame::Http(http) = f else { return Ok(()) };
    b.use_template(arg(d, 0))?;
    let var = arg(d, 1);
    let Some(name) = var.strip_prefix('$') else {
        return Err(Msg::own(format!("invalid variable name \"{var}\"")));
    };
    b.define_variable(name);
    let mut map = MapConf {
        source: arg(d, 0).to_string(),
        variable: name.to_string(),
        span: d.name.span,
        ..MapConf::default()
    };
    // a set: a map of 100,000 keys loads in linear time (keys borrowed
    // from the syntax tree unless they need lower-casing)
    let mut seen_keys: foldhash::HashSet<std::borrow::Cow<'_, str>> = foldhash::HashSet::default();
    map.entries.reserve(d.children().len());
    for entry in d.children() {
        if entry.block.is_some() {
            b.error_at_end(entry, "unexpected \"{\"");
            return Ok(());
        }
        let key = entry.name.as_str();
        if entry.args.is_empty() && key == "hostnames" {
            map.hostnames = true;
            continue;
        }
        if entry.args.is_empty() && key == "volatile" {
            map.volatile = true;
            continue;
        }
        if entry.args.len() != 1 {
            b.error_at_end(entry, "invalid number of the map parameters");
            return Ok(());
        }
        let value = entry.args[0].as_str().to_string();
        if let Err(m) = b.use_template(&value) {
            b.report(entry, m);
            return Ok(());
        }
        if key == "default" {
            if map.default.is_some() {
                b.error_at_end(entry, "duplicate default map parameter");
                return Ok(());
            }
            map.default = Some(value);
            continue;
        }
        if let Some(re) = key.strip_prefix("~*") {
            if let Err(m) = b.compile_regex(re, true) {
                b.report(entry, m);
                return Ok(());
            }
        } else if let Some(re) = key.strip_prefix('~') {
            if let Err(m) = b.compile_regex(re, false) {
                b.report(entry, m);
                return Ok(());
            }
        } else {
            let bare = key.strip_prefix('\\').unwrap_or(key);
            let folded = if bare.bytes().any(|b| b.is_ascii_uppercase()) {
                std::borrow::Cow::Owned(bare.to_ascii_lowercase())
            } else {
                std::borrow::Cow::Borrowed(bare)
            };
            if !seen_keys.insert(folded) {
                b.error_at_end(entry, format!("conflicting parameter \"{key}\""));
                return Ok(());
            }
        }
        map.entries.push(MapEntry {
            key: key.to_string(),
            value,
            span: entry.name.span,
        });
    }
    http.maps.push(map);
    Ok(())
}

/// `types { type ext ...; }`: accepted, checked for shape, ignored.
pub fn types(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let mut types: Vec<(String, String)> = Vec::new();
    for entry in d.children() {
        if entry.block.is_some() {
            b.error_at_end(entry, "unexpected \"{\"");
            return Ok(());
        }
        // `ngx_http_core_type`: a repeated extension takes the later type
        for ext in &entry.args {
            let ext = ext.as_str().to_ascii_lowercase();
            if let Some(previous) = types.iter_mut().find(|(e, _)| *e == ext) {
                let message = format!(
                    "duplicate extension \"{ext}\", content type: \"{}\", previous content type: \"{}\"",
                    entry.name(),
                    previous.1
                );
                b.warn_at(entry, message);
                previous.1 = entry.name().to_string();
            } else {
                types.push((ext, entry.name().to_string()));
            }
        }
    }
    f.settings()
        .insert("types", setting(d, Value::Types(types)));
    Ok(())
}

/// `log_format name [escape=default|json|none] string ...`
pub fn log_format(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let Frame::Http(http) = f else { return Ok(()) };
    let name = arg(d, 0);
    if name == "combined" || http.log_formats.iter().any(|l| l.name == name) {
        return Err(Msg::own(format!(
            "duplicate \"log_format\" name \"{name}\""
        )));
    }
    let mut rest = &d.args[1..];
    let mut escape = "default".to_string();
    if let Some(mode) = rest
        .first()
        .and_then(|w| w.as_str().strip_prefix("escape="))
    {
        if !matches!(mode, "default" | "json" | "none") {
            return Err(Msg::own(format!("unknown log format escaping \"{mode}\"")));
        }
        escape = mode.to_string();
        rest = &rest[1..];
    }
    let format: String = rest.iter().map(|w| w.as_str()).collect();
    b.use_template(&format)?;
    b.define_log_format(name);
    http.log_formats.push(LogFormat {
        name: name.to_string(),
        escape,
        format,
        span: d.name.span,
    });
    Ok(())
}

/// `access_log path [format [buffer=size] [gzip[=level]] [flush=time] [if=condition]] | off`
pub fn access_log(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let path = arg(d, 0);
    if path == "off" {
        if let Some(extra) = d.args.get(1) {
            return Err(Msg::own(format!(
                "invalid parameter \"{}\"",
                extra.as_str()
            )));
        }
        push_list(f.settings(), "access_log", d, ListItem::Access(None));
        return Ok(());
    }
    unsupported_log_target(path)?;
    b.use_template(path)?;
    let format = d.args.get(1).map_or("combined", |w| w.as_str());
    if !b.log_format_known(format) {
        return Err(Msg::own(format!("unknown log format \"{format}\"")));
    }
    for w in d.args.iter().skip(2) {
        let p = w.as_str();
        if p.starts_with("if=") {
            return Err(Msg::own(
                "access_log parameter \"if=\" is not supported by rginx",
            ));
        }
        let ok = p.starts_with("buffer=")
            || p.starts_with("flush=")
            || p == "gzip"
            || p.starts_with("gzip=");
        if !ok {
            return Err(Msg::own(format!("invalid parameter \"{p}\"")));
        }
    }
    let entry = AccessLog {
        path: path.to_string(),
        format: format.to_string(),
    };
    push_list(f.settings(), "access_log", d, ListItem::Access(Some(entry)));
    Ok(())
}
