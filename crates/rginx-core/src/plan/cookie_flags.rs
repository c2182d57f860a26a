//! `proxy_cookie_flags` (`ngx_http_proxy_rewrite_cookie_flags`,
//! `ngx_http_proxy_edit_cookie_flags`): the `Secure`, `HttpOnly` and
//! `SameSite` attributes of a backend's `Set-Cookie`, set or removed for
//! the cookies a rule names.

use super::*;

/// A rule: which cookies (a name with variables, compared without case, or
/// a caseless regex), and its flags (values with variables).
#[derive(Debug, Clone)]
pub(super) struct CompiledCookieFlags {
    cookie: CookieName,
    flags: Vec<Template>,
}

#[derive(Debug, Clone)]
enum CookieName {
    Name(Template),
    Regex(Pcre),
}

impl CompiledCookieFlags {
    /// A level's rules, in order.
    pub(super) fn compile_all(
        settings: &Settings,
        names: &Names,
    ) -> Result<Vec<CompiledCookieFlags>, RuntimeError> {
        let Some(crate::model::Value::CookieFlags(Some(rules))) =
            settings.get("proxy_cookie_flags").map(|s| &s.value)
        else {
            return Ok(Vec::new());
        };
        rules
            .iter()
            .map(|rule| {
                let cookie = match rule.cookie.strip_prefix('~') {
                    Some(pattern) => {
                        CookieName::Regex(Pcre::compile(pattern, true).map_err(RuntimeError)?)
                    }
                    None => CookieName::Name(Template::compile(&rule.cookie, names)?),
                };
                let flags = rule
                    .flags
                    .iter()
                    .map(|f| Template::compile(f, names))
                    .collect::<Result<_, _>>()?;
                Ok(CompiledCookieFlags { cookie, flags })
            })
            .collect()
    }
}

const SECURE_ON: u8 = 1;
const SECURE_OFF: u8 = 2;
const HTTPONLY_ON: u8 = 4;
const HTTPONLY_OFF: u8 = 8;
const SAMESITE_STRICT: u8 = 16;
const SAMESITE_LAX: u8 = 32;
const SAMESITE_NONE: u8 = 64;
const SAMESITE_OFF: u8 = 128;

/// `ngx_http_proxy_cookie_flags_masks`: a flag's bit (unknown flags have
/// none).
fn mask(flag: &str) -> u8 {
    const MASKS: [(&str, u8); 8] = [
        ("secure", SECURE_ON),
        ("nosecure", SECURE_OFF),
        ("httponly", HTTPONLY_ON),
        ("nohttponly", HTTPONLY_OFF),
        ("samesite=strict", SAMESITE_STRICT),
        ("samesite=lax", SAMESITE_LAX),
        ("samesite=none", SAMESITE_NONE),
        ("nosamesite", SAMESITE_OFF),
    ];
    MASKS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(flag))
        .map_or(0, |(_, bit)| *bit)
}

/// A location's rules with the request's variables filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct CookieFlags<'a> {
    rules: Vec<(RenderedName<'a>, u8)>,
}

#[derive(Debug, Clone)]
enum RenderedName<'a> {
    Name(String),
    Regex(&'a Pcre),
}

impl PartialEq for RenderedName<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (RenderedName::Name(a), RenderedName::Name(b)) => a == b,
            (RenderedName::Regex(a), RenderedName::Regex(b)) => std::ptr::eq(*a, *b),
            _ => false,
        }
    }
}

impl<'a> CookieFlags<'a> {
    /// The rules for a request; `lookup` gives its variables' values.
    pub(super) fn for_request(
        rules: &'a [CompiledCookieFlags],
        lookup: &mut dyn FnMut(&Var, &mut String),
    ) -> CookieFlags<'a> {
        let rules = rules
            .iter()
            .map(|rule| {
                let name = match &rule.cookie {
                    CookieName::Regex(regex) => RenderedName::Regex(regex),
                    CookieName::Name(t) => {
                        let mut out = String::new();
                        t.render(&mut out, lookup);
                        RenderedName::Name(out)
                    }
                };
                let bits = rule.flags.iter().fold(0, |bits, flag| {
                    let mut out = String::new();
                    flag.render(&mut out, lookup);
                    bits | mask(&out)
                });
                (name, bits)
            })
            .collect();
        CookieFlags { rules }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The flags of the first rule naming `cookie` (0: none applies).
    pub(super) fn flags_for(&self, cookie: &[u8]) -> u8 {
        for (name, bits) in &self.rules {
            let names = match name {
                RenderedName::Name(n) => n.as_bytes().eq_ignore_ascii_case(cookie),
                // a failed match is a miss (nginx would end the request)
                RenderedName::Regex(regex) => regex.is_match(cookie).unwrap_or(false),
            };
            if names {
                return *bits;
            }
        }
        0
    }
}

/// A cookie's attributes after `flags` (`ngx_http_proxy_edit_cookie_flags`):
/// an attribute asked for and present stays; asked off, it goes; asked
/// for and missing, it is added at the end (`Secure`, `HttpOnly`, then
/// `SameSite`).
pub(super) fn edit_flags(attrs: &mut Vec<CookieAttr<'_>>, mut flags: u8) {
    let mut removed = Vec::new();
    for (i, (name, value)) in attrs.iter_mut().enumerate().skip(1) {
        if name.eq_ignore_ascii_case(b"secure") {
            if flags & SECURE_ON != 0 {
                flags &= !SECURE_ON;
            } else if flags & SECURE_OFF != 0 {
                removed.push(i);
            }
        } else if name.eq_ignore_ascii_case(b"httponly") {
            if flags & HTTPONLY_ON != 0 {
                flags &= !HTTPONLY_ON;
            } else if flags & HTTPONLY_OFF != 0 {
                removed.push(i);
            }
        } else if name.eq_ignore_ascii_case(b"samesite") {
            let current = value.as_deref().unwrap_or(b"");
            match samesite(flags) {
                Some((bit, word)) => {
                    flags &= !bit;
                    if !current.eq_ignore_ascii_case(word.as_bytes()) {
                        *name = &b"SameSite"[..];
                        *value = Some(Cow::Borrowed(word.as_bytes()));
                    }
                }
                None if flags & SAMESITE_OFF != 0 => removed.push(i),
                None => {}
            }
        }
    }
    for i in removed.into_iter().rev() {
        attrs.remove(i);
    }
    if flags & SECURE_ON != 0 {
        attrs.push((&b"Secure"[..], None));
    }
    if flags & HTTPONLY_ON != 0 {
        attrs.push((&b"HttpOnly"[..], None));
    }
    if let Some((_, word)) = samesite(flags) {
        attrs.push((&b"SameSite"[..], Some(Cow::Borrowed(word.as_bytes()))));
    }
}

/// The `SameSite` value `flags` ask for, with its bit (strict before lax
/// before none, as nginx checks them).
fn samesite(flags: u8) -> Option<(u8, &'static str)> {
    [
        (SAMESITE_STRICT, "Strict"),
        (SAMESITE_LAX, "Lax"),
        (SAMESITE_NONE, "None"),
    ]
    .into_iter()
    .find(|(bit, _)| flags & bit != 0)
}
