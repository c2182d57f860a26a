//! A backend's `X-Accel-Redirect` (`ngx_http_upstream_process_headers`):
//! its answer is not passed on; the request goes to the URI or the named
//! location the header names (a URI as a GET, a HEAD staying one), and
//! the answer it gets there carries the backend's `Content-Type`,
//! `Set-Cookie`, `Content-Disposition`, `Cache-Control`, `Expires` and
//! `Accept-Ranges` (the headers nginx's `ngx_http_upstream_headers_in`
//! marks `redirect`). An error the location intercepts
//! (`proxy_intercept_errors`) goes to its `error_page` instead, as nginx
//! tests for that first. A chain of redirects ends after nginx's ten
//! (`NGX_HTTP_MAX_URI_CHANGES`) with a 500.

use std::sync::Arc;

use bytes::Bytes;
use rginx_core::plan::{rewrite_cookie, Internal, UpstreamPlan};
use rginx_http::response::ResponseHead;

use super::error::ProxyError;
use super::own::{own_answer, DefaultTyped};
use super::proxy::Answer;
use super::request::{Redirected, Session};
use super::Engine;
use crate::http1::conn::{BodyReader, ClientConn};
use crate::http1::write::{CarriedLines, OwnPage, Place};

/// A backend's redirect, taken from its answer (whose body is not read).
#[derive(Debug, Clone)]
pub(super) struct AccelRedirect {
    /// The header's value: a URI (with its arguments) or `@name`.
    target: Bytes,
    /// The lines nginx copies into the request's answer, as the backend
    /// sent them (`Set-Cookie` after `proxy_cookie_*`).
    carried: Vec<(Bytes, Bytes)>,
    /// The backend's `Content-Type`.
    content_type: Option<Bytes>,
    /// The upstream that answered and the URI it was sent, for the error
    /// lines.
    upstream: (String, String),
}

/// What a request's redirects carried into its answer (nginx's
/// `r->headers_out`, which outlives an internal redirect).
#[derive(Debug, Default)]
pub(super) struct Carried {
    lines: Vec<(Bytes, Bytes)>,
    content_type: Option<Bytes>,
}

impl Carried {
    /// The type is forgotten: an error page is taken (nginx's special
    /// response handler clears `r->headers_out.content_type`).
    pub(super) fn forget_type(&mut self) {
        self.content_type = None;
    }
}

/// The names nginx copies into a redirected request's answer.
const COPIED: [&str; 6] = [
    "content-type",
    "set-cookie",
    "content-disposition",
    "cache-control",
    "expires",
    "accept-ranges",
];

/// The redirect a backend's head asks for, unless `proxy_ignore_headers`
/// ignores it (the first `X-Accel-Redirect` counts, hidden or not).
pub(super) fn accel_redirect(
    raw: &Bytes,
    head: &ResponseHead,
    plan: &UpstreamPlan<'_>,
    upstream: String,
) -> Option<AccelRedirect> {
    if plan.ignored.redirect() {
        return None;
    }
    let span = head
        .headers
        .iter()
        .find(|span| raw[span.name.clone()].eq_ignore_ascii_case(b"x-accel-redirect"))?;
    let mut redirect = AccelRedirect {
        target: raw.slice(span.value.clone()),
        carried: Vec::new(),
        content_type: None,
        upstream: (upstream, plan.uri.to_string()),
    };
    for span in &head.headers {
        let name = &raw[span.name.clone()];
        let Some(copied) = COPIED
            .iter()
            .find(|c| name.eq_ignore_ascii_case(c.as_bytes()))
        else {
            continue;
        };
        let value = raw.slice(span.value.clone());
        match *copied {
            "content-type" => redirect.content_type = Some(value),
            "set-cookie" => {
                let value = rewrite_cookie(
                    &value,
                    &plan.cookie_domains,
                    &plan.cookie_paths,
                    &plan.cookie_flags,
                )
                .map_or(value, Bytes::from);
                redirect.carried.push((raw.slice(span.name.clone()), value));
            }
            _ => redirect.carried.push((raw.slice(span.name.clone()), value)),
        }
    }
    Some(redirect)
}

impl Engine {
    /// The content phase, then the redirects backends ask for, each
    /// through the location search again.
    pub(super) async fn content_followed(
        self: &Arc<Self>,
        session: &mut Session<'_>,
        decision: rginx_core::plan::Decision<'_>,
        body: &mut BodyReader,
        conn: &mut ClientConn,
        expect_continue: bool,
    ) -> Result<Answer, ProxyError> {
        let mut answer = self
            .content(session, decision, body, conn, expect_continue)
            .await;
        loop {
            let Ok(Answer::Response(response, Some(_))) = &mut answer else {
                return answer;
            };
            let status = response.status().as_u16();
            let Some(redirect) = response.extensions_mut().remove::<AccelRedirect>() else {
                return answer;
            };
            // an error the location intercepts is its error_page's
            // (`ngx_http_upstream_intercept_errors` comes first)
            if status >= 300
                && self
                    .runtime
                    .error_page(
                        session.scope,
                        &session.eval_head(),
                        &session.matched,
                        status,
                        true,
                    )
                    .is_some()
            {
                return answer;
            }
            // the backend's answer and its connection go
            drop(answer);
            let carried = session.carried.get_or_insert_with(Box::default);
            carried.lines.extend(redirect.carried.iter().cloned());
            if let Some(value) = &redirect.content_type {
                carried.content_type = Some(value.clone());
            }
            answer = self.follow(session, &redirect, body, conn).await;
        }
    }

    /// The answer where `redirect` sends the request.
    async fn follow(
        self: &Arc<Self>,
        session: &mut Session<'_>,
        redirect: &AccelRedirect,
        body: &mut BodyReader,
        conn: &mut ClientConn,
    ) -> Result<Answer, ProxyError> {
        let tokens = session.client.server_tokens;
        let target = String::from_utf8_lossy(&redirect.target).into_owned();
        let named = target.starts_with('@');
        let (uri, args) = if named {
            (target, None)
        } else {
            match unsafe_uri(&redirect.target) {
                Ok(split) => split,
                Err(shown) => {
                    self.log_redirect_error(
                        session,
                        redirect,
                        &format!("unsafe URI \"{shown}\" was detected"),
                    );
                    return Ok(Answer::Response(own_answer(404, None, tokens), None));
                }
            }
        };
        if !session.change_uri() {
            let what = if named {
                format!("while redirect to named location \"{uri}\"")
            } else {
                format!("while internally redirecting to \"{uri}\"")
            };
            self.log_redirect_error(
                session,
                redirect,
                &format!("rewrite or internal redirection cycle {what}"),
            );
            return Ok(Answer::Response(own_answer(500, None, tokens), None));
        }
        // a redirect to a URI is a GET from now on, unless it was a HEAD
        if !named && session.head.method != "HEAD" {
            session.head.method = "GET";
        }
        let internal = Internal {
            server: session.scope.server,
            uri: &uri,
            args: args.as_deref(),
            named,
            resend_body: session.has_kept_body() || body.untouched(),
            err_status: None,
        };
        let head = session.eval_head();
        let (decision, scope, matched) = self.runtime.decide_redirected(&head, &internal);
        session.redirected = Some(Redirected::of(&internal));
        session.scope = scope;
        session.matched = matched;
        self.content(session, decision, body, conn, false).await
    }

    /// An `[error]` line about a redirect that failed, with the upstream
    /// that asked for it (nginx is still reading its head then).
    fn log_redirect_error(&self, session: &Session<'_>, redirect: &AccelRedirect, what: &str) {
        let (at, uri) = &redirect.upstream;
        tracing::error!(
            log_set = session.context.log_set,
            "*{} {what} while reading response header from upstream{}",
            session.context.connection,
            session.context.describe(Some((at, uri)))
        );
    }
}

impl Carried {
    /// Puts what the redirects carried into the answer the request got,
    /// as nginx's header filter writes `r->headers_out`: the lines before
    /// the answer's own list; the type where the answer has none, or
    /// where `return`'s text would take `default_type`; nginx's own pages
    /// keep their type and drop the last `Accept-Ranges`
    /// (`ngx_http_clear_accept_ranges`).
    pub(super) fn apply(self, answer: &mut Answer) {
        let Answer::Response(response, raw) = answer else {
            return;
        };
        let Carried {
            mut lines,
            content_type,
        } = self;
        // nginx's own pages have their type, or none
        // (`ngx_http_special_response_handler` clears it first)
        let own_page = response.extensions().get::<OwnPage>().is_some();
        if own_page {
            if let Some(last) = lines
                .iter()
                .rposition(|(n, _)| n.eq_ignore_ascii_case(b"accept-ranges"))
            {
                lines.remove(last);
            }
        }
        let typed = own_page
            || response.headers().contains_key(http::header::CONTENT_TYPE)
                && response.extensions().get::<DefaultTyped>().is_none()
            || raw.as_ref().is_some_and(|raw| {
                raw.lines
                    .iter()
                    .any(|(place, _)| *place == Place::ContentType)
            });
        // a 204 has no type (`ngx_http_header_filter`)
        if !typed && response.status() != http::StatusCode::NO_CONTENT {
            if let Some(value) =
                content_type.and_then(|v| http::HeaderValue::from_maybe_shared(v).ok())
            {
                response
                    .headers_mut()
                    .insert(http::header::CONTENT_TYPE, value);
            }
        }
        response.extensions_mut().insert(CarriedLines(lines));
    }
}

/// A redirect's URI split from its arguments, as
/// `ngx_http_parse_unsafe_uri` checks it: not empty, no `..` segment, no
/// NUL, before or after `%XX` is decoded (the URI is decoded, the
/// arguments are not). An unsafe one gives what nginx logs of it: the
/// value as it came, or the decoded URI when only that is unsafe.
fn unsafe_uri(value: &[u8]) -> Result<(String, Option<String>), String> {
    let shown = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    if value.first().is_none_or(|b| *b == b'?') || dot_dot_at(value, 0) {
        return Err(shown(value));
    }
    let mut quoted = false;
    let mut end = value.len();
    for (i, b) in value.iter().enumerate() {
        match b {
            b'%' => quoted = true,
            b'?' => {
                end = i;
                break;
            }
            0 => return Err(shown(value)),
            b'/' if dot_dot_at(value, i + 1) => return Err(shown(value)),
            _ => {}
        }
    }
    let args = (end < value.len()).then(|| shown(&value[end + 1..]));
    let path = &value[..end];
    if !quoted {
        return Ok((shown(path), args));
    }
    let decoded = unescape(path);
    let unsafe_decoded = dot_dot_at(&decoded, 0)
        || decoded
            .iter()
            .enumerate()
            .any(|(i, b)| *b == 0 || (*b == b'/' && dot_dot_at(&decoded, i + 1)));
    if unsafe_decoded {
        return Err(shown(&decoded));
    }
    Ok((shown(&decoded), args))
}

/// `..` at `at`, ending the value or followed by a slash.
fn dot_dot_at(value: &[u8], at: usize) -> bool {
    value.get(at..at + 2) == Some(b"..") && value.get(at + 2).is_none_or(|b| *b == b'/')
}

/// `%XX` decoded as `ngx_unescape_uri` does without flags: a `%` before
/// a character that is not a hex digit is dropped, and a `%X` before one
/// is dropped with it.
fn unescape(path: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(path.len());
    let mut at = 0;
    while at < path.len() {
        let b = path[at];
        at += 1;
        if b != b'%' {
            out.push(b);
            continue;
        }
        let Some(&first) = path.get(at) else { break };
        at += 1;
        let Some(high) = hex(first) else {
            out.push(first);
            continue;
        };
        let Some(&second) = path.get(at) else { break };
        at += 1;
        if let Some(low) = hex(second) {
            out.push(high << 4 | low);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_uris_are_nginx_s() {
        let ok = |v: &str| unsafe_uri(v.as_bytes()).unwrap();
        assert_eq!(ok("/a/b?x=1"), ("/a/b".into(), Some("x=1".into())));
        assert_eq!(ok("/te%78t"), ("/text".into(), None));
        assert_eq!(ok("/a..b/c."), ("/a..b/c.".into(), None));
        assert_eq!(ok("/a?../b"), ("/a".into(), Some("../b".into())));
        assert_eq!(ok("/a%zb%4zc%4"), ("/azbc".into(), None));
        // nginx looks for `..` before the arguments only after its first
        // test
        assert_eq!(ok("..?x"), ("..".into(), Some("x".into())));
        for bad in [
            "",
            "?x",
            "..",
            "../a",
            "/a/..",
            "/a/../b",
            "/%2e%2e/b",
            "/a%00",
        ] {
            assert!(unsafe_uri(bad.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(unsafe_uri(b"/a/../b?c"), Err("/a/../b?c".into()));
        assert_eq!(unsafe_uri(b"/%2e%2e?c"), Err("/..".into()));
    }
}
