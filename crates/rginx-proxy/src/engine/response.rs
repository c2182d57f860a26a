//! The response filters: the backend's head turned into the client's as
//! nginx's proxy module passes it (its status line and reason phrase, the
//! lines nginx hides taken out, `Content-Type`, `Content-Length` and
//! `Location` where nginx writes them, the others as they came), whether
//! the upstream connection may be kept, and the body: read whole first
//! when small (nginx's `proxy_buffering`), streamed otherwise.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use rginx_core::plan::{rewrite_cookie, UpstreamPlan};
use rginx_http::response::ResponseHead;

use super::accel::accel_redirect;
use super::attempt::Reply;
use super::error::{Kind, ProxyError};
use super::own::{empty_body, full_body};
use super::proxy::Answer;
use super::request::Session;
use super::upgrade::TunnelPlan;
use super::Engine;
use crate::http1::write::{nginx_reason, Place, RawLines, WHOLE_WRITE};
use crate::pool::{Body, BoxError};
use crate::timed::TimedBody;
use crate::upstream::UpstreamBody;

impl Engine {
    /// The client's answer for the backend's `reply`.
    pub(super) async fn upstream_response(
        &self,
        session: &Session<'_>,
        plan: &UpstreamPlan<'_>,
        reply: Reply,
    ) -> Result<Answer, ProxyError> {
        let Reply {
            head,
            mut conn,
            picked,
            addr,
        } = reply;
        let raw = conn.take_head(&head);
        if self.runtime.wants_upstream_headers() {
            session
                .upstreams()
                .answered_with(std::sync::Arc::new(AnswerHead(raw.clone())));
        }
        let code = StatusCode::from_u16(head.status)
            .map_err(|_| ProxyError::after_sending(Kind::InvalidHeader))?;
        let mut out = Response::builder().status(code);
        // nginx passes the backend's status line as it came ("302 Found",
        // where its own page would say "Moved Temporarily")
        let reason = &raw[head.reason.clone()];
        let reason = (nginx_reason(code).as_bytes() != reason).then(|| head.reason.clone());
        let mut lines = Vec::with_capacity(head.headers.len());
        let mut rewritten = Vec::new();
        let mut location = None;
        let mut passes_own = (false, false);
        let cookies = !plan.cookie_domains.is_empty()
            || !plan.cookie_paths.is_empty()
            || !plan.cookie_flags.is_empty();
        for span in &head.headers {
            let Ok(name) = std::str::from_utf8(&raw[span.name.clone()]) else {
                continue;
            };
            // nginx writes the length it was given (also for HEAD, whose
            // response has no body to measure)
            let mut place = Place::of(name);
            // Content-Length is nginx's own (its length was read with the
            // head, whatever the hide list says); the others pass unless
            // hidden
            if place != Place::ContentLength && !plan.passes_response_header(name) {
                continue;
            }
            if plan.response_hidden.is_some() {
                passes_own.0 |= name.eq_ignore_ascii_case("server");
                passes_own.1 |= name.eq_ignore_ascii_case("date");
            }
            let value = &raw[span.value.clone()];
            if place == Place::Location {
                // a Location proxy_redirect leaves alone stays where the
                // backend put it (`ngx_http_upstream_rewrite_location`)
                place = Place::AsIs;
                if let Some(new) = plan.redirects.rewrite(value, 0) {
                    // the last rewritten one is the response's Location
                    if let Some((earlier, value)) = location.replace((lines.len(), new)) {
                        rewritten.push((earlier, value));
                    }
                }
            } else if cookies && name.eq_ignore_ascii_case("set-cookie") {
                // `ngx_http_upstream_rewrite_set_cookie`
                if let Some(new) = rewrite_cookie(
                    value,
                    &plan.cookie_domains,
                    &plan.cookie_paths,
                    &plan.cookie_flags,
                ) {
                    rewritten.push((lines.len(), new));
                }
            } else if name.eq_ignore_ascii_case("refresh") {
                // `Refresh: 5; url=...`: the URL after `url=` (any case)
                let at = value
                    .windows(4)
                    .position(|w| w.eq_ignore_ascii_case(b"url="))
                    .map(|i| i + 4);
                if let Some(new) = at.and_then(|at| plan.redirects.rewrite(value, at)) {
                    rewritten.push((lines.len(), new));
                }
            }
            lines.push((place, span.clone()));
        }
        let mut response_location = None;
        match location {
            // one that starts with `/` moves to nginx's place, made
            // absolute by the header filter (`absolute_redirect on`)
            Some((index, value)) if value.first() == Some(&b'/') => {
                let path = String::from_utf8_lossy(&value).into_owned();
                let own = self
                    .runtime
                    .own_location(session.scope, &session.head, path);
                if own.own_place {
                    if let Some(line) = lines.get_mut(index) {
                        line.0 = Place::Removed;
                    }
                    response_location = Some(own.value);
                } else {
                    rewritten.push((index, value));
                }
            }
            Some(other) => rewritten.push(other),
            None => {}
        }
        // the lines go beside the response, not in its extensions (which
        // would cost three allocations)
        let passed = RawLines {
            head: raw.clone(),
            reason,
            lines,
            rewritten,
            passes_own,
        };
        if let Some(value) = response_location
            .as_deref()
            .and_then(|v| http::HeaderValue::from_bytes(v.as_bytes()).ok())
        {
            out = out.header(http::header::LOCATION, value);
        }
        if !plan.ignored.charset() {
            self.check_charset(session, plan, &raw, &head, &addr);
        }
        // `X-Accel-Limit-Rate: N` sets the response's rate, also for the
        // answer of a redirect it comes with
        // (`ngx_http_upstream_process_limit_rate`: each valid line)
        if !plan.ignored.limit_rate() {
            for span in &head.headers {
                if raw[span.name.clone()].eq_ignore_ascii_case(b"x-accel-limit-rate") {
                    let value = std::str::from_utf8(&raw[span.value.clone()]).unwrap_or("");
                    if let Some(rate) = rginx_core::values::parse_number(value) {
                        session.set_accel_rate(rate);
                    }
                }
            }
        }
        // nginx reads no body for the HEAD it sent (`ctx->head`)
        let switching = head.status == 101;
        if !switching {
            if let Some(redirect) = accel_redirect(&raw, &head, plan, addr.in_url().to_string()) {
                // its body is not read: the connection closes
                drop(conn);
                return out
                    .extension(redirect)
                    .body(empty_body())
                    .map(|response| Answer::Response(response, Some(passed)))
                    .map_err(|_| internal());
            }
        }
        let framing = head.body(&raw, plan.sent_method.eq_ignore_ascii_case("HEAD"));
        // nginx tunnels only when the client asked for an upgrade and the
        // backend answered 101; otherwise a 101 is an ordinary response
        if switching && plan.upgrade {
            let tunnel = TunnelPlan {
                upstream: conn.into_tunnel(),
                idle: plan.read_timeout,
                log: None,
                timeout_line: None,
                slots: self.slots.clone(),
            };
            let response = out.body(empty_body()).map_err(|_| internal())?;
            return Ok(Answer::Tunnel(response, passed, Box::new(tunnel)));
        }
        // the connection may serve another request once this response is
        // read to its end (nginx: HTTP/1.1, and neither side said close)
        let request_close = plan.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("connection")
                && v.as_bytes()
                    .windows(5)
                    .any(|w| w.eq_ignore_ascii_case(b"close"))
        });
        let reusable =
            !switching && plan.version == "HTTP/1.1" && !request_close && head.keeps_alive(&raw);
        let pool = self.pool_of(&picked).filter(|_| reusable).cloned();
        let upstream_body = UpstreamBody::new(conn, framing, pool);
        let buffering = &plan.response_buffering;
        // `X-Accel-Buffering: yes|no` overrides proxy_buffering
        // (`ngx_http_upstream_process_buffering`)
        let read_ahead = (!plan.ignored.buffering())
            .then(|| x_accel_buffering(&raw, &head))
            .flatten()
            .unwrap_or(buffering.on);
        // read whole first: with proxy_buffering on, what fits in
        // proxy_buffers; off, what the writer sends with the head in one
        // write anyway
        let whole_up_to = if read_ahead {
            buffering.memory
        } else {
            WHOLE_WRITE
        };
        let small = http_body::Body::size_hint(&upstream_body)
            .exact()
            .is_some_and(|n| n <= whole_up_to);
        let timed = TimedBody::new(upstream_body, plan.read_timeout);
        // a small body is read whole first, as nginx's buffering does: the
        // client then gets head and body in one write, and the upstream
        // connection goes back to its pool at once; what is slow to come
        // streams, as nginx's pipe passes on what it has
        let body: Body = if small {
            match gathered(timed).await {
                Ok(body) => body,
                Err((partial, error)) => {
                    // nginx has sent the head and what came by now; the
                    // client gets the same, then the connection closes
                    let what = crate::upstream::body_failure_words(&error);
                    let at = addr.in_url();
                    let describe = session.context.describe(Some((&at, &plan.uri)));
                    tracing::error!(
                        log_set = session.context.log_set,
                        "*{} {what} while reading upstream{describe}",
                        session.context.connection
                    );
                    Prefixed::truncated(partial, error).boxed()
                }
            }
        } else if read_ahead {
            let limits = crate::read_ahead::Limits {
                memory: usize::try_from(buffering.memory).unwrap_or(usize::MAX),
                max_file: buffering.max_file,
                temp_path: buffering.temp_path.clone(),
            };
            let log = crate::read_ahead::LogContext {
                connection: session.context.connection,
                log_set: session.context.log_set,
                suffix: session
                    .context
                    .describe(Some((&addr.in_url(), &plan.uri)))
                    .to_string(),
            };
            crate::read_ahead::read_ahead(timed, limits, log).boxed()
        } else {
            timed.boxed()
        };
        out.body(body)
            .map(|response| Answer::Response(response, Some(passed)))
            .map_err(|_| internal())
    }
}

impl Engine {
    /// A backend's `X-Accel-Charset` names a charset to recode a typed,
    /// unencoded body to; rginx, like nginx without `charset` or
    /// `charset_map`, knows none, and logs nginx's error
    /// (`ngx_http_destination_charset`).
    fn check_charset(
        &self,
        session: &Session<'_>,
        plan: &UpstreamPlan<'_>,
        raw: &[u8],
        head: &ResponseHead,
        addr: &rginx_core::peer::PeerAddr,
    ) {
        let first = |name: &[u8]| {
            head.headers
                .iter()
                .find(|span| raw[span.name.clone()].eq_ignore_ascii_case(name))
                .map(|span| &raw[span.value.clone()])
        };
        let Some(charset) = first(b"x-accel-charset").filter(|v| !v.is_empty()) else {
            return;
        };
        if first(b"content-type").is_none_or(<[u8]>::is_empty)
            || first(b"content-encoding").is_some_and(|v| !v.is_empty())
        {
            return;
        }
        let at = addr.in_url();
        tracing::error!(
            log_set = session.context.log_set,
            "*{} unknown charset \"{}\" to override while reading response header from upstream{}",
            session.context.connection,
            String::from_utf8_lossy(charset),
            session.context.describe(Some((&at, &plan.uri)))
        );
    }
}

/// The backend's `X-Accel-Buffering`: `yes` or `no` (compared as nginx
/// does, by their first letters, without case), if it sent one.
fn x_accel_buffering(raw: &[u8], head: &ResponseHead) -> Option<bool> {
    let span = head
        .headers
        .iter()
        .rev()
        .find(|span| raw[span.name.clone()].eq_ignore_ascii_case(b"x-accel-buffering"))?;
    let value = &raw[span.value.clone()];
    let starts =
        |word: &[u8]| value.len() >= word.len() && value[..word.len()].eq_ignore_ascii_case(word);
    if starts(b"yes") {
        Some(true)
    } else if starts(b"no") {
        Some(false)
    } else {
        None
    }
}

/// A response that could not be built (a header the backend sent that
/// passed every check but still is not one): nginx's 502.
fn internal() -> ProxyError {
    ProxyError::after_sending(Kind::InvalidHeader)
}

/// Reads a small body: to its end when it comes at once (the bytes, as a
/// body known whole), else what came with its first piece followed by
/// the rest as it comes. A backend that breaks off gives what came and
/// its error.
async fn gathered<B>(mut body: B) -> Result<Body, (Bytes, BoxError)>
where
    B: http_body::Body<Data = Bytes, Error = BoxError> + Unpin + Send + Sync + 'static,
{
    let size = http_body::Body::size_hint(&body).exact().unwrap_or(0);
    // a body that came in one piece (with its head, most often) is kept
    // as it is; only a second piece makes them be put together
    let mut first: Option<Bytes> = None;
    let mut joined = bytes::BytesMut::new();
    let came =
        |first: Option<Bytes>, joined: bytes::BytesMut| first.unwrap_or_else(|| joined.freeze());
    loop {
        // the first piece is waited for, the others only taken if there
        let frame = if first.is_none() && joined.is_empty() {
            body.frame().await
        } else {
            match std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    let rest = Rest::Body(body.boxed());
                    return Ok(Prefixed::new(came(first, joined), rest).boxed());
                }
            }
        };
        let Some(frame) = frame else {
            break;
        };
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => return Err((came(first, joined), e)),
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if first.is_none() && joined.is_empty() {
            first = Some(data);
            continue;
        }
        if let Some(first) = first.take() {
            joined.reserve(usize::try_from(size).unwrap_or(0));
            joined.extend_from_slice(&first);
        }
        joined.extend_from_slice(&data);
    }
    Ok(full_body(came(first, joined)))
}

/// A body that starts with bytes already read: then the rest as it
/// comes, or the error that cut it short (which closes the client
/// connection: the head promised more).
struct Prefixed {
    data: Option<Bytes>,
    rest: Rest,
}

/// What follows a [`Prefixed`] body's bytes.
enum Rest {
    Failed(Option<BoxError>),
    Body(Body),
}

impl Prefixed {
    fn new(data: Bytes, rest: Rest) -> Prefixed {
        Prefixed {
            data: (!data.is_empty()).then_some(data),
            rest,
        }
    }

    /// What came, then `error`.
    fn truncated(data: Bytes, error: BoxError) -> Prefixed {
        Prefixed::new(data, Rest::Failed(Some(error)))
    }
}

impl http_body::Body for Prefixed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(data) = this.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        match &mut this.rest {
            Rest::Failed(error) => Poll::Ready(error.take().map(Err)),
            Rest::Body(body) => Pin::new(body).poll_frame(cx),
        }
    }
}

/// An upstream answer's head, kept for `$upstream_http_NAME` (its bytes,
/// shared with the response; parsed again when a variable reads it).
#[derive(Debug)]
struct AnswerHead(bytes::Bytes);

impl rginx_core::plan::UpstreamHead for AnswerHead {
    fn header(&self, name: &str) -> Option<String> {
        let head = rginx_http::response::ResponseHead::parse(&self.0).ok()??;
        // ngx_http_variable_unknown_header: case-insensitive, `-` as `_`
        let same = |sent: &[u8]| {
            sent.len() == name.len()
                && sent.iter().zip(name.bytes()).all(|(&c, v)| {
                    let c = if c == b'-' {
                        b'_'
                    } else {
                        c.to_ascii_lowercase()
                    };
                    c == v
                })
        };
        let (_, value) = head.lines(&self.0).find(|(sent, _)| same(sent))?;
        Some(String::from_utf8_lossy(value).into_owned())
    }
}
