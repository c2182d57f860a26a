//! The headers filter (`ngx_http_headers_filter_module`): `add_header` and
//! `expires` applied to a response when its head is written, whoever
//! wrote it (a backend, or rginx's own page).

use super::*;
use crate::model::{Expires, ExpiresTime};

/// A level's `add_header` list and `expires`, compiled.
#[derive(Debug, Clone)]
pub(super) struct HeaderFilter {
    headers: Vec<AddedHeader>,
    expires: CompiledExpires,
}

#[derive(Debug, Clone)]
struct AddedHeader {
    name: String,
    value: Template,
    always: bool,
    /// `ETag` and `Last-Modified` replace the response's own line
    /// (`ngx_http_set_response_header`); the others add a line.
    replaces: bool,
}

#[derive(Debug, Clone)]
enum CompiledExpires {
    Fixed(ExpiresTime),
    Variable { value: Template, modified: bool },
}

/// A change the headers filter makes to a response's header lines, in
/// the order nginx makes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit<'a> {
    /// The response's `Expires` (its last line) gets this value in place;
    /// without one, the line is added.
    Expires(String),
    /// The response's first `Cache-Control` line gets this value and its
    /// other ones go; without one, the line is added.
    CacheControl(String),
    /// The response's last line of this name gets the value in place, or
    /// the line is added; an empty value removes the line (`ETag`,
    /// `Last-Modified`).
    Replace(&'a str, String),
    /// A line added after the response's own.
    Add(&'a str, String),
}

/// The statuses `add_header` (without `always`) and `expires` apply to.
fn safe_status(status: u16) -> bool {
    matches!(
        status,
        200 | 201 | 204 | 206 | 301 | 302 | 303 | 304 | 307 | 308
    )
}

impl HeaderFilter {
    /// Compiles a level's settings (`None` when it has neither directive).
    pub(super) fn compile(
        settings: &Settings,
        names: &Names,
    ) -> Result<Option<HeaderFilter>, RuntimeError> {
        let mut headers = Vec::new();
        if let Some(crate::model::Value::AddHeaders(list)) =
            settings.get("add_header").map(|s| &s.value)
        {
            for h in list {
                headers.push(AddedHeader {
                    name: h.name.clone(),
                    value: Template::compile(&h.value, names)?,
                    always: h.always,
                    replaces: h.name.eq_ignore_ascii_case("etag")
                        || h.name.eq_ignore_ascii_case("last-modified"),
                });
            }
        }
        let expires = match settings.get("expires").map(|s| &s.value) {
            Some(crate::model::Value::Expires(Expires::Fixed(t))) => CompiledExpires::Fixed(*t),
            Some(crate::model::Value::Expires(Expires::Variable { value, modified })) => {
                CompiledExpires::Variable {
                    value: Template::compile(value, names)?,
                    modified: *modified,
                }
            }
            _ => CompiledExpires::Fixed(ExpiresTime::Off),
        };
        if headers.is_empty() && matches!(expires, CompiledExpires::Fixed(ExpiresTime::Off)) {
            return Ok(None);
        }
        Ok(Some(HeaderFilter { headers, expires }))
    }

    /// The edits for a response of `status` at `now`; `last_modified` is
    /// the response's `Last-Modified` time, if it has a valid one.
    pub(super) fn edits(
        &self,
        status: u16,
        now: SystemTime,
        last_modified: Option<SystemTime>,
        ctx: &mut Ctx<'_>,
    ) -> Vec<HeaderEdit<'_>> {
        let safe = safe_status(status);
        let mut out = Vec::new();
        if safe {
            let (time, negative) = match &self.expires {
                CompiledExpires::Fixed(t) => (Some(*t), fixed_negative(*t)),
                CompiledExpires::Variable { value, modified } => {
                    let mut text = String::new();
                    value.render(&mut text, &mut |v, o| ctx.var(v, o));
                    // a value that does not parse sets nothing
                    (ExpiresTime::parse(&text, *modified).ok(), false)
                }
            };
            if let Some((expires, cache_control)) =
                time.and_then(|t| expires_values(t, negative, now, last_modified))
            {
                out.push(HeaderEdit::Expires(expires));
                out.push(HeaderEdit::CacheControl(cache_control));
            }
        }
        for h in &self.headers {
            if !safe && !h.always {
                continue;
            }
            let mut value = String::new();
            h.value.render(&mut value, &mut |v, o| ctx.var(v, o));
            if h.replaces {
                out.push(HeaderEdit::Replace(&h.name, value));
            } else if !value.is_empty() {
                out.push(HeaderEdit::Add(&h.name, value));
            }
        }
        out
    }
}

/// nginx's `conf->expires_time < 0`: a negative time written in the
/// configuration always gives `no-cache`.
fn fixed_negative(t: ExpiresTime) -> bool {
    matches!(t, ExpiresTime::Access(s) | ExpiresTime::Modified(s) if s < 0)
}

/// `ngx_http_set_expires`: the `Expires` and `Cache-Control` values, or
/// `None` for `off`.
fn expires_values(
    time: ExpiresTime,
    negative: bool,
    now: SystemTime,
    last_modified: Option<SystemTime>,
) -> Option<(String, String)> {
    let seconds = |t: SystemTime| match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    let http = |at: i64| {
        let mut out = String::new();
        let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(at).unwrap_or(0));
        format_time(at, TimeFormat::Http, &mut out);
        out
    };
    let now_s = seconds(now);
    let (expires_at, max_age) = match time {
        ExpiresTime::Off => return None,
        ExpiresTime::Epoch => {
            return Some(("Thu, 01 Jan 1970 00:00:01 GMT".into(), "no-cache".into()))
        }
        ExpiresTime::Max => {
            return Some((
                "Thu, 31 Dec 2037 23:55:55 GMT".into(),
                "max-age=315360000".into(),
            ))
        }
        ExpiresTime::Access(0) | ExpiresTime::Modified(0) => {
            return Some((http(now_s), "max-age=0".into()))
        }
        ExpiresTime::Daily(at) => {
            // ngx_next_time: that time of day today, else tomorrow (UTC,
            // the machine's zone on rginx's hosts as on nginx's)
            let midnight = now_s - now_s.rem_euclid(86_400);
            let mut next = midnight + at;
            if next - now_s <= 0 {
                next += 86_400;
            }
            (next, next - now_s)
        }
        ExpiresTime::Modified(s) => match last_modified {
            Some(lm) => {
                let at = seconds(lm).saturating_add(s);
                (at, at - now_s)
            }
            None => (now_s.saturating_add(s), s),
        },
        ExpiresTime::Access(s) => (now_s.saturating_add(s), s),
    };
    let cache_control = if negative || max_age < 0 {
        "no-cache".to_string()
    } else {
        format!("max-age={max_age}")
    };
    Some((http(expires_at), cache_control))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_values_are_nginx_s() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_633_847); // 19:10:47
        let at = |t| expires_values(t, fixed_negative(t), now, None).unwrap();
        assert_eq!(
            at(ExpiresTime::Access(3600)),
            (
                "Wed, 25 Nov 2026 20:10:47 GMT".into(),
                "max-age=3600".into()
            )
        );
        assert_eq!(
            at(ExpiresTime::Access(-60)),
            ("Wed, 25 Nov 2026 19:09:47 GMT".into(), "no-cache".into())
        );
        assert_eq!(at(ExpiresTime::Access(0)).1, "max-age=0");
        assert_eq!(at(ExpiresTime::Epoch).1, "no-cache");
        assert_eq!(at(ExpiresTime::Max).1, "max-age=315360000");
        // @18h30m has passed today: tomorrow's
        assert_eq!(
            at(ExpiresTime::Daily(18 * 3600 + 1800)),
            (
                "Thu, 26 Nov 2026 18:30:00 GMT".into(),
                "max-age=83953".into()
            )
        );
        let lm = now - Duration::from_secs(7200);
        assert_eq!(
            expires_values(ExpiresTime::Modified(3600), false, now, Some(lm)).unwrap(),
            ("Wed, 25 Nov 2026 18:10:47 GMT".into(), "no-cache".into())
        );
        // without Last-Modified, `modified` counts from now
        assert_eq!(
            expires_values(ExpiresTime::Modified(60), false, now, None)
                .unwrap()
                .1,
            "max-age=60"
        );
    }
}
