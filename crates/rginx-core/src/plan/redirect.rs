//! Redirect targets as nginx's header filter writes them.

use super::*;

/// `$host` of a request already answered: the request line's host
/// (`target_host`), else the `Host` header, normalised; empty when neither
/// is there or valid.
pub(super) fn request_host<'r>(
    req: &RequestHead<'r>,
    target_host: Option<&'r str>,
) -> Cow<'r, str> {
    let header = req
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("host"))
        .map(|(_, v)| *v);
    target_host
        .or(header)
        .and_then(normalize_host)
        .unwrap_or_default()
}

/// How a relative `Location` rginx writes is made absolute by nginx's
/// header filter: `absolute_redirect`, `port_in_redirect`,
/// `server_name_in_redirect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RedirectStyle {
    pub(super) absolute: bool,
    pub(super) port: bool,
    pub(super) server_name: bool,
}

impl RedirectStyle {
    pub(super) fn compile(settings: &Settings) -> RedirectStyle {
        RedirectStyle {
            absolute: settings.flag("absolute_redirect", true),
            port: settings.flag("port_in_redirect", true),
            server_name: settings.flag("server_name_in_redirect", false),
        }
    }
}

/// A `Location` rginx writes itself (or rewrote with `proxy_redirect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnLocation {
    /// The value as written.
    pub value: String,
    /// A relative one made absolute goes in nginx's own place, after
    /// `Content-Length`; any other is a plain line after rginx's own.
    pub own_place: bool,
}

/// `value` as nginx's header filter writes a `Location` that starts with
/// `/`: the host (the server's name with `server_name_in_redirect`, else
/// the request's, else the local address), then the local port unless
/// it is 80 or `port_in_redirect` is off. Others stay as they are.
pub(super) fn own_location(
    req: &RequestHead<'_>,
    host: &str,
    server_name: &str,
    style: RedirectStyle,
    value: String,
) -> OwnLocation {
    if !style.absolute || !value.starts_with('/') {
        return OwnLocation {
            value,
            own_place: false,
        };
    }
    let host = if style.server_name { server_name } else { host };
    let mut out = String::with_capacity(value.len() + 32);
    out.push_str("http://");
    if host.is_empty() {
        match req.local.ip() {
            IpAddr::V4(ip) => {
                let _ = write!(out, "{ip}");
            }
            IpAddr::V6(ip) => {
                let _ = write!(out, "[{ip}]");
            }
        }
    } else {
        out.push_str(host);
    }
    if style.port && req.local.port() != 80 {
        let _ = write!(out, ":{}", req.local.port());
    }
    out.push_str(&value);
    OwnLocation {
        value: out,
        own_place: true,
    }
}

/// A compiled `proxy_redirect` rule.
#[derive(Debug, Clone)]
pub(super) enum CompiledRedirect {
    /// A value that starts with `pattern` (case-sensitive) gets
    /// `replacement` in its place (`ngx_http_proxy_rewrite_complex_handler`).
    Prefix {
        pattern: Template,
        replacement: Template,
    },
    /// A value `regex` matches becomes `replacement`, whole, with the
    /// match's groups (`ngx_http_proxy_rewrite_regex_handler`).
    Regex { regex: Pcre, replacement: Template },
    /// A cookie domain equal to `pattern` (any case, after a leading `.`,
    /// which stays) becomes `replacement`
    /// (`ngx_http_proxy_rewrite_domain_handler`).
    Domain {
        pattern: Template,
        replacement: Template,
    },
}

impl CompiledRedirect {
    /// Compiles a rule of the model.
    pub(super) fn compile(
        rule: &crate::model::RedirectRule,
        names: &Names,
    ) -> Result<CompiledRedirect, RuntimeError> {
        let template = |text: &str| {
            if rule.literal {
                Ok(Template::literal(text))
            } else {
                Template::compile(text, names)
            }
        };
        let replacement = template(&rule.replacement)?;
        Ok(match &rule.pattern {
            RedirectPattern::Prefix(p) => CompiledRedirect::Prefix {
                pattern: template(p)?,
                replacement,
            },
            RedirectPattern::Regex { pattern, caseless } => CompiledRedirect::Regex {
                regex: Pcre::compile(pattern, *caseless).map_err(RuntimeError)?,
                replacement,
            },
        })
    }

    /// A `proxy_cookie_domain` rule: a plain pattern matches the whole
    /// domain.
    pub(super) fn compile_domain(
        rule: &crate::model::RedirectRule,
        names: &Names,
    ) -> Result<CompiledRedirect, RuntimeError> {
        Ok(match CompiledRedirect::compile(rule, names)? {
            CompiledRedirect::Prefix {
                pattern,
                replacement,
            } => CompiledRedirect::Domain {
                pattern,
                replacement,
            },
            other => other,
        })
    }

    /// Whether the rule needs the request's variables (more than a
    /// regex's own groups).
    pub(super) fn varies(&self) -> bool {
        match self {
            CompiledRedirect::Prefix {
                pattern,
                replacement,
            }
            | CompiledRedirect::Domain {
                pattern,
                replacement,
            } => pattern.as_literal().is_none() || replacement.as_literal().is_none(),
            CompiledRedirect::Regex { regex, replacement } => replacement
                .parts()
                .iter()
                .any(|p| matches!(p, Part::Var(v) if !is_group_of(regex, v))),
        }
    }
}

/// Whether `var` is a group of `regex` (`$1`..`$9`, or one of its names).
fn is_group_of(regex: &Pcre, var: &Var) -> bool {
    match var {
        Var::Capture(_) => true,
        Var::NamedCapture(name) => regex
            .capture_names()
            .iter()
            .any(|n| n.as_deref() == Some(&**name)),
        _ => false,
    }
}

/// A location's `proxy_redirect` rules for one request: what nginx's
/// `ngx_http_proxy_rewrite_redirect` applies to a backend's `Location`
/// and to the URL of its `Refresh`.
#[derive(Debug, Clone, Default)]
pub struct Redirects<'a> {
    rules: &'a [CompiledRedirect],
    /// The rules' values rendered for this request, by rule; empty when
    /// no rule has variables (the implicit `default`: nothing to render).
    rendered: Vec<Rendered<'a>>,
}

impl PartialEq for Redirects<'_> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.rules, other.rules) && self.rendered == other.rendered
    }
}

/// One rule's values with the request's variables filled in.
#[derive(Debug, Clone, PartialEq)]
enum Rendered<'a> {
    /// A prefix rule's pattern and replacement.
    Prefix(String, String),
    /// A regex rule's replacement: text, and the groups to fill in from
    /// the match.
    Regex(Vec<Piece<'a>>),
}

#[derive(Debug, Clone, PartialEq)]
enum Piece<'a> {
    Text(String),
    Group(&'a Var),
}

impl<'a> Redirects<'a> {
    /// The rules for a request; `lookup` gives its variables' values.
    pub(super) fn for_request(
        rules: &'a [CompiledRedirect],
        varies: bool,
        lookup: &mut dyn FnMut(&Var, &mut String),
    ) -> Redirects<'a> {
        if !varies {
            return Redirects {
                rules,
                rendered: Vec::new(),
            };
        }
        let render = |t: &Template, lookup: &mut dyn FnMut(&Var, &mut String)| {
            let mut out = String::new();
            t.render(&mut out, lookup);
            out
        };
        let rendered = rules
            .iter()
            .map(|rule| match rule {
                CompiledRedirect::Prefix {
                    pattern,
                    replacement,
                }
                | CompiledRedirect::Domain {
                    pattern,
                    replacement,
                } => Rendered::Prefix(render(pattern, lookup), render(replacement, lookup)),
                CompiledRedirect::Regex { regex, replacement } => Rendered::Regex(
                    replacement
                        .parts()
                        .iter()
                        .map(|part| match part {
                            Part::Literal(s) => Piece::Text(s.to_string()),
                            Part::Var(v) if is_group_of(regex, v) => Piece::Group(v),
                            Part::Var(v) => {
                                let mut out = String::new();
                                lookup(v, &mut out);
                                Piece::Text(out)
                            }
                        })
                        .collect(),
                ),
            })
            .collect();
        Redirects { rules, rendered }
    }

    /// Whether no rule applies to anything (`proxy_redirect off`, or a
    /// location that does not proxy).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// `value` with its bytes from `at` rewritten by the first rule that
    /// applies, or `None` when none does: a prefix rule replaces the
    /// prefix, a regex rule the whole rest (`ngx_http_proxy_rewrite`).
    pub fn rewrite(&self, value: &[u8], at: usize) -> Option<Vec<u8>> {
        let rest = value.get(at..)?;
        let splice = |replacement: &[u8], tail: &[u8]| {
            let mut out = Vec::with_capacity(at + replacement.len() + tail.len());
            out.extend_from_slice(&value[..at]);
            out.extend_from_slice(replacement);
            out.extend_from_slice(tail);
            out
        };
        for (i, rule) in self.rules.iter().enumerate() {
            let rendered = self.rendered.get(i);
            match rule {
                CompiledRedirect::Prefix {
                    pattern,
                    replacement,
                } => {
                    let (pattern, replacement) = match rendered {
                        Some(Rendered::Prefix(p, r)) => (p.as_str(), r.as_str()),
                        _ => (
                            pattern.as_literal().unwrap_or_default(),
                            replacement.as_literal().unwrap_or_default(),
                        ),
                    };
                    if let Some(tail) = rest.strip_prefix(pattern.as_bytes()) {
                        return Some(splice(replacement.as_bytes(), tail));
                    }
                }
                CompiledRedirect::Domain {
                    pattern,
                    replacement,
                } => {
                    let (pattern, replacement) = match rendered {
                        Some(Rendered::Prefix(p, r)) => (p.as_str(), r.as_str()),
                        _ => (
                            pattern.as_literal().unwrap_or_default(),
                            replacement.as_literal().unwrap_or_default(),
                        ),
                    };
                    // a leading `.` is skipped, and kept
                    let dot = usize::from(rest.first() == Some(&b'.'));
                    if rest[dot..].eq_ignore_ascii_case(pattern.as_bytes()) {
                        let mut out = value[..at + dot].to_vec();
                        out.extend_from_slice(replacement.as_bytes());
                        return Some(out);
                    }
                }
                CompiledRedirect::Regex { regex, replacement } => {
                    let mut spans = Spans::new();
                    // a failed match (PCRE2's limits) declines, as in nginx
                    if !matches!(regex.captures(rest, &mut spans), Ok(true)) {
                        continue;
                    }
                    let mut out = String::new();
                    let mut group = |v: &Var, out: &mut String| {
                        let index = match v {
                            Var::Capture(n) => Some(usize::from(*n)),
                            Var::NamedCapture(name) => regex
                                .capture_names()
                                .iter()
                                .position(|n| n.as_deref() == Some(&**name)),
                            _ => None,
                        };
                        if let Some(Some((a, b))) = index.and_then(|i| spans.get(i)) {
                            out.push_str(&String::from_utf8_lossy(&rest[*a..*b]));
                        }
                    };
                    match rendered {
                        Some(Rendered::Regex(pieces)) => {
                            for piece in pieces {
                                match piece {
                                    Piece::Text(t) => out.push_str(t),
                                    Piece::Group(v) => group(v, &mut out),
                                }
                            }
                        }
                        _ => replacement.render(&mut out, &mut group),
                    }
                    return Some(splice(out.as_bytes(), &[]));
                }
            }
        }
        None
    }
}

/// One `name[=value]` of a cookie, spaces around both taken off.
pub(super) type CookieAttr<'v> = (&'v [u8], Option<Cow<'v, [u8]>>);

/// A backend's `Set-Cookie` value with its `domain` and `path` attributes
/// rewritten by `proxy_cookie_domain` and `proxy_cookie_path`, re-written
/// as nginx writes it when a rule applied (attributes joined by `; `,
/// spaces around names and values dropped: `ngx_http_proxy_rewrite_cookie`);
/// `None` when none did.
pub fn rewrite_cookie(
    value: &[u8],
    domains: &Redirects<'_>,
    paths: &Redirects<'_>,
    flags: &CookieFlags<'_>,
) -> Option<Vec<u8>> {
    // ngx_http_proxy_parse_cookie
    let mut attrs: Vec<CookieAttr<'_>> = value
        .split(|b| *b == b';')
        .map(|part| match part.iter().position(|b| *b == b'=') {
            Some(i) => (trim(&part[..i]), Some(Cow::Borrowed(trim(&part[i + 1..])))),
            None => (trim(part), None),
        })
        .collect();
    attrs.first()?.1.as_ref()?;
    let mut changed = false;
    for (name, attr) in attrs.iter_mut().skip(1) {
        let Some(v) = attr.as_ref() else { continue };
        let rules = if name.eq_ignore_ascii_case(b"domain") {
            domains
        } else if name.eq_ignore_ascii_case(b"path") {
            paths
        } else {
            continue;
        };
        if let Some(new) = rules.rewrite(v, 0) {
            *attr = Some(Cow::Owned(new));
            changed = true;
        }
    }
    // `proxy_cookie_flags`, after the domain and the path
    let bits = flags.flags_for(attrs[0].0);
    if bits != 0 {
        edit_flags(&mut attrs, bits);
        changed = true;
    }
    if !changed {
        return None;
    }
    let mut out = Vec::with_capacity(value.len() + 16);
    for (i, (name, attr)) in attrs.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"; ");
        }
        out.extend_from_slice(name);
        if let Some(v) = attr {
            out.push(b'=');
            out.extend_from_slice(v);
        }
    }
    Some(out)
}

/// `s` without its leading and trailing spaces.
fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' '] = s {
        s = rest;
    }
    s
}
