//! The `error_page` phase (`ngx_http_special_response_handler`,
//! `ngx_http_send_error_page`, `ngx_http_upstream_intercept_errors`): an
//! error answer that has an `error_page` is replaced by its target's
//! answer (an internal redirect through the location search, a named
//! location, or a redirect to a URL), once per request, as nginx does
//! with `recursive_error_pages off`.

use std::sync::Arc;

use http::StatusCode;
use rginx_core::plan::{ErrorPageHit, ErrorTarget, Internal, OwnLocation};

use super::error::ProxyError;
use super::own::{own_answer, PlainLines};
use super::proxy::Answer;
use super::request::{Redirected, Session};
use super::Engine;
use crate::http1::conn::{BodyReader, ClientConn};
use crate::http1::write::{OwnPage, Unanswered};

impl Engine {
    /// The answer the request gets after its `error_page`, if one applies
    /// to `answer`; `answer` itself otherwise.
    pub(super) async fn error_page_phase(
        self: &Arc<Self>,
        session: &mut Session<'_>,
        answer: Result<Answer, ProxyError>,
        body: &mut BodyReader,
        conn: &mut ClientConn,
    ) -> Result<Answer, ProxyError> {
        let Some((status, from_backend)) = error_status(&answer) else {
            return answer;
        };
        let Some(hit) = self.runtime.error_page(
            session.scope,
            &session.eval_head(),
            &session.matched,
            status,
            from_backend,
        ) else {
            return answer;
        };
        // an intercepted 401 keeps the backend's challenge
        let challenge = match &answer {
            Ok(Answer::Response(_, Some(raw))) if status == 401 => raw
                .lines
                .iter()
                .enumerate()
                .find(|(_, (_, span))| {
                    raw.head[span.name.clone()].eq_ignore_ascii_case(b"www-authenticate")
                })
                .map(|(i, _)| String::from_utf8_lossy(raw.value(i)).into_owned()),
            _ => None,
        };
        // a Location the error answer had stays with the request
        // (`r->headers_out.location` outlives the internal redirect)
        let location = match &answer {
            Ok(Answer::Response(r, None)) => r.headers().get(http::header::LOCATION).cloned(),
            _ => None,
        };
        // the backend's answer (and its connection) go
        drop(answer);
        if let Some(carried) = &mut session.carried {
            carried.forget_type();
        }
        let mut next = self.error_target(session, &hit, status, body, conn).await;
        if let Ok(Answer::Response(response, raw)) = &mut next {
            settle_status(response, raw.as_mut(), &hit, status);
            if let Some(value) = location {
                let has_own = response.headers().contains_key(http::header::LOCATION)
                    || raw.as_ref().is_some_and(|r| {
                        r.lines.iter().any(|(p, span)| {
                            *p != crate::http1::write::Place::Removed
                                && r.head[span.name.clone()].eq_ignore_ascii_case(b"location")
                        })
                    });
                if !has_own {
                    response.headers_mut().insert(http::header::LOCATION, value);
                }
            }
            if let Some(value) = challenge {
                let lines = response.extensions_mut();
                match lines.get_mut::<PlainLines>() {
                    Some(PlainLines(l)) => l.push(("WWW-Authenticate".into(), value)),
                    None => {
                        lines.insert(PlainLines(vec![("WWW-Authenticate".into(), value)]));
                    }
                }
            }
        }
        next
    }

    /// The answer of an `error_page`'s target.
    async fn error_target(
        self: &Arc<Self>,
        session: &mut Session<'_>,
        hit: &ErrorPageHit,
        status: u16,
        body: &mut BodyReader,
        conn: &mut ClientConn,
    ) -> Result<Answer, ProxyError> {
        let (uri, args, named) = match &hit.target {
            ErrorTarget::Url(url) => {
                // written as it is, where nginx writes a Location it did
                // not make absolute
                let location = OwnLocation {
                    value: url.clone(),
                    own_place: false,
                };
                return Ok(Answer::Response(
                    own_answer(
                        hit.url_status(),
                        Some(&location),
                        session.client.server_tokens,
                    ),
                    None,
                ));
            }
            ErrorTarget::Uri { uri, args } => (uri.as_str(), args.as_deref(), false),
            ErrorTarget::Named(name) => (name.as_str(), None, true),
        };
        if !session.change_uri() {
            let what = if named {
                format!("while redirect to named location \"{uri}\"")
            } else {
                format!("while internally redirecting to \"{uri}\"")
            };
            tracing::error!(
                log_set = session.context.log_set,
                "*{} rewrite or internal redirection cycle {what}{}",
                session.context.connection,
                session.context.describe(None)
            );
            let tokens = session.client.server_tokens;
            return Ok(Answer::Response(own_answer(500, None, tokens), None));
        }
        // a redirect to a URI is a GET from now on, unless it was a HEAD;
        // a named location keeps the method
        if !named && session.head.method != "HEAD" {
            session.head.method = "GET";
        }
        let internal = Internal {
            server: session.scope.server,
            uri,
            args,
            named,
            resend_body: session.has_kept_body() || body.untouched(),
            // ngx_http_send_error_page: `r->err_status = overwrite`
            err_status: match hit.overwrite {
                None => Some(status),
                Some(0) => None,
                Some(code) => Some(code),
            },
        };
        let head = session.eval_head();
        let (decision, scope, matched) = self.runtime.decide_redirected(&head, &internal);
        session.redirected = Some(Redirected::of(&internal));
        session.scope = scope;
        session.matched = matched;
        self.content_followed(session, decision, body, conn, false)
            .await
    }
}

/// The status of an answer an `error_page` may replace, and whether it is
/// a backend's: nginx's own error answers (its pages, not `return`'s
/// text) and a backend's answers of 300 and more.
fn error_status(answer: &Result<Answer, ProxyError>) -> Option<(u16, bool)> {
    let (status, from_backend) = match answer {
        Ok(Answer::Response(response, raw)) => {
            let extensions = response.extensions();
            if extensions.get::<Unanswered>().is_some() {
                return None;
            }
            let own = extensions.get::<OwnPage>().is_some();
            if let Some(super::own::SpecialError(code)) = extensions.get() {
                return Some((*code, false));
            }
            match raw {
                Some(_) => (response.status().as_u16(), true),
                None if own => (response.status().as_u16(), false),
                None => return None,
            }
        }
        Ok(Answer::Tunnel(..)) => return None,
        Err(error) if error.unanswered() => return None,
        Err(error) => (error.status(), false),
    };
    (status >= 300).then_some((status, from_backend))
}

/// The status the client gets: an error page of the target's own stands
/// (it sets nginx's `err_status` again); otherwise the error's code, the
/// target's (`=`), or the one given (`=code`), with nginx's own status
/// line but for `=` (`ngx_http_send_header` writes `r->err_status` with
/// its own words).
fn settle_status(
    response: &mut http::Response<crate::pool::Body>,
    raw: Option<&mut crate::http1::write::RawLines>,
    hit: &ErrorPageHit,
    error: u16,
) {
    if response.extensions().get::<OwnPage>().is_some() {
        return;
    }
    let status = match hit.overwrite {
        None => error,
        Some(0) => return,
        Some(code) => code,
    };
    if let Ok(code) = StatusCode::from_u16(status) {
        *response.status_mut() = code;
        if let Some(raw) = raw {
            raw.reason = None;
        }
    }
}
