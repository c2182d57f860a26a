//! The headers filter phase: nginx's `add_header` and `expires` applied
//! to whatever answers the request (the backend's response, rginx's own
//! page), as `ngx_http_headers_filter` does just before the head is
//! written.

use std::borrow::Cow;

use http::Response;
use rginx_core::plan::{HeaderEdit, Runtime, SentHeaders};

use super::own::PlainLines;
use super::request::Session;
use crate::http1::write::{Place, RawLines};
use crate::pool::Body;

/// The lines the filter adds after the response's own (name as written
/// in the configuration, value), having changed `raw`'s lines in place
/// where nginx does (`Expires`, `Cache-Control`, `ETag`, `Last-Modified`).
pub(super) fn filter_headers(
    runtime: &Runtime,
    session: &Session<'_>,
    response: &Response<Body>,
    mut raw: Option<&mut RawLines>,
    now: std::time::SystemTime,
) -> Vec<(String, String)> {
    let status = response.status().as_u16();
    let edits = {
        let sent = Sent {
            headers: response.headers(),
            raw: raw.as_deref(),
        };
        runtime.header_edits(
            session.scope,
            &session.eval_head(),
            &session.matched,
            status,
            now,
            &sent,
        )
    };
    let mut added: Vec<(String, String)> = Vec::new();
    // a Location nginx did not make absolute is a line of the list,
    // before those the filter adds
    if let Some(PlainLines(lines)) = response.extensions().get::<PlainLines>() {
        added.extend(lines.iter().cloned());
    }
    for edit in edits {
        match edit {
            HeaderEdit::Expires(value) => {
                let line = raw.as_deref().and_then(|r| last_line(r, "expires"));
                match (line, raw.as_deref_mut()) {
                    (Some(i), Some(raw)) => raw.rewrite(i, value.into_bytes()),
                    _ => replace_added(&mut added, "Expires", value),
                }
            }
            HeaderEdit::CacheControl(value) => {
                let lines: Vec<usize> = raw
                    .as_deref()
                    .map(|r| lines_named(r, "cache-control").collect())
                    .unwrap_or_default();
                match (lines.split_first(), raw.as_deref_mut()) {
                    (Some((first, rest)), Some(raw)) => {
                        raw.rewrite(*first, value.into_bytes());
                        for i in rest {
                            raw.remove(*i);
                        }
                    }
                    _ => added.push(("Cache-Control".into(), value)),
                }
            }
            HeaderEdit::Replace(name, value) => {
                if let Some(i) = added
                    .iter()
                    .rposition(|(n, _)| n.eq_ignore_ascii_case(name))
                {
                    if value.is_empty() {
                        added.remove(i);
                    } else {
                        added[i] = (name.to_string(), value);
                    }
                    continue;
                }
                let line = raw.as_deref().and_then(|r| last_line(r, name));
                match (line, raw.as_deref_mut()) {
                    (Some(i), Some(raw)) if value.is_empty() => raw.remove(i),
                    (Some(i), Some(raw)) => raw.rewrite(i, value.into_bytes()),
                    _ if value.is_empty() => {}
                    _ => added.push((name.to_string(), value)),
                }
            }
            HeaderEdit::Add(name, value) => added.push((name.to_string(), value)),
        }
    }
    added
}

/// An `Expires` set where none was: a second one replaces the first.
fn replace_added(added: &mut Vec<(String, String)>, name: &str, value: String) {
    match added
        .iter_mut()
        .rfind(|(n, _)| n.eq_ignore_ascii_case(name))
    {
        Some(line) => line.1 = value,
        None => added.push((name.to_string(), value)),
    }
}

/// The indexes of the backend's written lines named `name`.
fn lines_named<'r>(raw: &'r RawLines, name: &'r str) -> impl Iterator<Item = usize> + 'r {
    raw.lines
        .iter()
        .enumerate()
        .filter(move |(_, (place, span))| {
            *place == Place::AsIs
                && raw.head[span.name.clone()].eq_ignore_ascii_case(name.as_bytes())
        })
        .map(|(i, _)| i)
}

/// The last of them (the one nginx's `headers_out` field points to).
fn last_line(raw: &RawLines, name: &str) -> Option<usize> {
    lines_named(raw, name).last()
}

/// The response's own lines, for `$sent_http_*` and `Last-Modified`.
struct Sent<'a> {
    headers: &'a http::HeaderMap,
    raw: Option<&'a RawLines>,
}

impl SentHeaders for Sent<'_> {
    fn sent(&self, name: &str) -> Option<Cow<'_, str>> {
        if let Some(v) = self.headers.get(name) {
            return Some(String::from_utf8_lossy(v.as_bytes()));
        }
        let raw = self.raw?;
        raw.lines
            .iter()
            .enumerate()
            .find(|(_, (place, span))| {
                *place != Place::Removed
                    && raw.head[span.name.clone()].eq_ignore_ascii_case(name.as_bytes())
            })
            .map(|(i, _)| String::from_utf8_lossy(raw.value(i)))
    }
}
