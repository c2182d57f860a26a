//! The proxy module's own rules: `proxy_pass`, `proxy_set_header`, the
//! rewrite rules of `proxy_redirect` and `proxy_cookie_*`, `proxy_method`,
//! `proxy_hide_header`/`proxy_pass_header`.

use rginx_config::Directive;

use crate::build::{Builder, Frame, Msg};
use crate::model::{
    CookieFlagRule, HeaderSetting, LocationMatcher, ProxyPass, ProxyTarget, RedirectPattern,
    RedirectRule, Value,
};

use super::{arg, duplicate_check, parse_port, push_list, setting, split_host_port, ListItem};

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
        // known once the URL is evaluated when the scheme is a variable
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
    if let Some(socket) = rest.strip_prefix("unix:") {
        // `ngx_parse_unix_domain_url` with a URI part: the path ends at
        // the first `:`
        let (path, uri) = match socket.split_once(':') {
            Some((path, uri)) => (path, (!uri.is_empty()).then(|| uri.to_string())),
            None => (socket, None),
        };
        if path.is_empty() {
            return Err(Msg::own(format!(
                "no path in the unix domain socket in upstream \"{rest}\""
            )));
        }
        if uri.is_some() && regex_or_named {
            return Err(Msg::own(URI_PART_NOT_ALLOWED));
        }
        loc.proxy_pass = Some(ProxyPass {
            url: d.args[0].clone(),
            scheme,
            target: ProxyTarget::Unix(path.into()),
            explicit_port: false,
            uri,
            span: d.name.span,
            end: d.end,
            seq: d.seq,
        });
        return Ok(());
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
        return Err(Msg::own(URI_PART_NOT_ALLOWED));
    }
    loc.proxy_pass = Some(ProxyPass {
        url: d.args[0].clone(),
        scheme,
        target: ProxyTarget::Host {
            host: host.to_string(),
            port: port.unwrap_or(if scheme == "https" { 443 } else { 80 }),
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

/// `proxy_cookie_flags off | COOKIE [FLAG ...]`
/// (`ngx_http_proxy_cookie_flags`): rules add up at a level; `off` only
/// alone.
pub fn proxy_cookie_flags(
    b: &mut Builder<'_>,
    d: &Directive,
    f: &mut Frame<'_>,
) -> Result<(), Msg> {
    let settings = f.settings();
    let existing = match settings.get("proxy_cookie_flags").map(|s| &s.value) {
        Some(Value::CookieFlags(rules)) => Some(rules.is_some()),
        _ => None,
    };
    // after `off`, nothing more at the level
    if existing == Some(false) {
        return Err(Msg::directive("is duplicate"));
    }
    let cookie = arg(d, 0);
    if d.args.len() == 1 {
        if cookie != "off" {
            return Err(Msg::own(format!("invalid parameter \"{cookie}\"")));
        }
        if existing.is_some() {
            return Err(Msg::directive("is duplicate"));
        }
        f.settings()
            .insert("proxy_cookie_flags", setting(d, Value::CookieFlags(None)));
        return Ok(());
    }
    match cookie.strip_prefix('~') {
        Some(pattern) => b.compile_regex(pattern, true)?,
        None => {
            b.use_template(cookie)?;
        }
    }
    for flag in &d.args[1..] {
        b.use_template(flag.as_str())?;
    }
    let rule = CookieFlagRule {
        cookie: cookie.to_string(),
        flags: d.args[1..].iter().map(|w| w.as_str().to_string()).collect(),
    };
    let settings = f.settings();
    match settings.get_mut("proxy_cookie_flags").map(|s| &mut s.value) {
        Some(Value::CookieFlags(Some(rules))) => rules.push(rule),
        _ => {
            settings.insert(
                "proxy_cookie_flags",
                setting(d, Value::CookieFlags(Some(vec![rule]))),
            );
        }
    }
    Ok(())
}

/// nginx's words for a `proxy_pass` URI where none may be.
const URI_PART_NOT_ALLOWED: &str = "\"proxy_pass\" cannot have URI part in location given by regular expression, or inside named location, or inside \"if\" statement, or inside \"limit_except\" block";

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

/// `proxy_method METHOD` (a value with variables,
/// `ngx_http_set_complex_value_slot`).
pub fn proxy_method(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    complex_value(b, d, f, "proxy_method")
}

/// `proxy_set_body VALUE`: the body sent instead of the client's (a value
/// with variables, `ngx_conf_set_str_slot` compiled at merge).
pub fn proxy_set_body(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    complex_value(b, d, f, "proxy_set_body")
}

/// A one-argument value with variables, checked now and kept as text.
fn complex_value(
    b: &mut Builder<'_>,
    d: &Directive,
    f: &mut Frame<'_>,
    key: &'static str,
) -> Result<(), Msg> {
    duplicate_check(f.settings(), key)?;
    b.use_template(arg(d, 0))?;
    f.settings()
        .insert(key, setting(d, Value::Text(arg(d, 0).to_string())));
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
