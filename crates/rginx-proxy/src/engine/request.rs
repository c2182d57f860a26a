//! A request from its parsed head to its log line: the context every
//! phase works on ([`Session`]), finding the server and the location, the
//! content handler, writing the answer, and what becomes of the
//! connection.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Response;
use rginx_core::peer::PeerAddr;
use rginx_core::plan::{
    BodyValue, ClientSettings, Decision, Internal, LogScope, Matched, RequestHead, UpstreamStates,
};

use super::filter::filter_headers;
use rginx_http::head_scan::BodyFraming;

use super::accel::Carried;
use super::context::ErrorContext;
use super::error::{Kind, ProxyError};
use super::log::{request_id, LogRecord, Sent};
use super::own::{
    error_page, own_answer, padded_for_browsers, status_answer, text_answer, unanswered,
};
use super::proxy::{Answer, RequestBody};
use super::upgrade::TunnelPlan;
use super::Engine;
use crate::http1::conn::{BodyReader, ClientConn};
use crate::http1::write::{write_response, Framing, OwnPage, Unanswered};
use crate::http1::ClientConnection;
use crate::pool::Body;

/// What becomes of a client connection after a request.
pub(crate) enum Next {
    /// It waits for the next request: `idle` (keepalive_timeout) for its
    /// first byte, then `header` (client_header_timeout) for the head.
    Keep { idle: Duration, header: Duration },
    /// It closes.
    Close,
    /// It becomes a tunnel to the upstream.
    Tunnel(Box<TunnelPlan>),
}

/// One request's context, shared by its phases.
pub(super) struct Session<'a> {
    /// The head as the evaluator reads it.
    pub head: RequestHead<'a>,
    /// Its header lines with their values as the client sent them.
    pub raw_headers: &'a [(&'a str, &'a [u8])],
    /// The server and location that took it (whose logs and settings
    /// apply).
    pub scope: LogScope,
    /// The groups of the last regex its decision matched.
    pub matched: Matched,
    /// The client settings of its server and location.
    pub client: ClientSettings,
    /// What nginx's error lines say about it.
    pub context: ErrorContext<'a>,
    /// When its head was read.
    pub started: Instant,
    /// The length of its head in bytes.
    pub head_len: usize,
    /// The servers tried (`$upstream_addr`, `$upstream_status`): what
    /// `head.upstreams` reads.
    upstreams: &'a UpstreamStates,
    /// The URI the last server tried was sent (for error lines).
    upstream_uri: Mutex<String>,
    /// The internal redirects it may still take (nginx's `uri_changes`).
    uri_changes: u8,
    /// What backends' `X-Accel-Redirect` carried into its answer.
    pub carried: Option<Box<Carried>>,
    /// The body a proxied location read, kept for another one the request
    /// is redirected to.
    kept_body: Mutex<Option<RequestBody>>,
    /// The body as `$request_body` and `$request_body_file` see it, once
    /// read (outside the session, as the head is: decisions borrow it).
    seen_body: &'a OnceLock<SeenBody>,
    /// The internal redirect its current decision was made for (`None`:
    /// the client's request).
    pub redirected: Option<Redirected>,
    /// The rate a backend's `X-Accel-Limit-Rate` set (`u64::MAX`: none),
    /// which stays through an internal redirect (nginx's
    /// `r->limit_rate_set`).
    accel_rate: AtomicU64,
}

/// What of a read body the variables see.
pub(super) enum SeenBody {
    /// Bytes in memory.
    Memory(Bytes),
    /// A temp file's name.
    File(String),
}

/// An internal redirect, kept to decide the request again
/// ([`rginx_core::plan::Internal`] without its borrows).
pub(super) struct Redirected {
    uri: String,
    args: Option<String>,
    named: bool,
    resend_body: bool,
    err_status: Option<u16>,
}

impl Redirected {
    /// Keeps `internal`.
    pub fn of(internal: &Internal<'_>) -> Redirected {
        Redirected {
            uri: internal.uri.to_string(),
            args: internal.args.map(str::to_string),
            named: internal.named,
            resend_body: internal.resend_body,
            err_status: internal.err_status,
        }
    }

    /// The redirect again, in `server`.
    pub fn internal(&self, server: rginx_core::select::ServerId) -> Internal<'_> {
        Internal {
            server,
            uri: &self.uri,
            args: self.args.as_deref(),
            named: self.named,
            resend_body: self.resend_body,
            err_status: self.err_status,
        }
    }
}

impl<'a> Session<'a> {
    /// An upstream server is tried.
    pub fn tried(&self, addr: &PeerAddr, uri: &str, now: Instant) {
        self.upstreams.tried(addr, now);
        let mut sent = self
            .upstream_uri
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        sent.clear();
        sent.push_str(uri);
    }

    /// The servers tried so far, to note each use and how each try goes.
    pub fn upstreams(&self) -> &UpstreamStates {
        self.upstreams
    }

    /// The last upstream server tried and the URI it was sent.
    pub fn last_upstream_request(&self) -> Option<(PeerAddr, String)> {
        let at = self.upstreams.last()?;
        let uri = self
            .upstream_uri
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Some((at, uri))
    }

    /// An internal redirect is taken; `false` when it is one too many
    /// (`ngx_http_internal_redirect`: ten per request, then a 500).
    pub fn change_uri(&mut self) -> bool {
        self.uri_changes = self.uri_changes.saturating_sub(1);
        self.uri_changes > 0
    }

    /// Keeps the body a proxied location read for the request's next one.
    pub fn keep_body(&self, body: RequestBody) {
        *self
            .kept_body
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(body);
    }

    /// The body kept, taken out.
    pub fn take_kept_body(&self) -> Option<RequestBody> {
        self.kept_body
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// The body as the variables see it from now on (the first one read
    /// stays: a redirect sends the same body again).
    pub fn saw_body(&self, seen: SeenBody) {
        let _ = self.seen_body.set(seen);
    }

    /// A backend set the response's rate.
    pub fn set_accel_rate(&self, rate: u64) {
        self.accel_rate
            .store(rate.min(u64::MAX - 1), Ordering::Relaxed);
    }

    /// The rate a backend set, if one did.
    pub fn accel_rate(&self) -> Option<u64> {
        Some(self.accel_rate.load(Ordering::Relaxed)).filter(|r| *r != u64::MAX)
    }

    /// The head with the body read so far, as the evaluator reads it.
    pub fn eval_head(&self) -> RequestHead<'a> {
        RequestHead {
            body: self.seen_body.get().map(|seen| match seen {
                SeenBody::Memory(bytes) => BodyValue::Memory(bytes),
                SeenBody::File(name) => BodyValue::File(name),
            }),
            ..self.head
        }
    }

    /// Whether a body is kept.
    pub fn has_kept_body(&self) -> bool {
        self.kept_body
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

/// nginx's `NGX_HTTP_MAX_URI_CHANGES + 1`.
const URI_CHANGES: u8 = 11;

impl Engine {
    /// Serves one request whose head was read whole (`raw`, its body
    /// framed as `framing` still on `conn`): decides it, answers it, logs
    /// it, and says what becomes of the connection.
    pub(crate) async fn serve_request(
        self: &Arc<Self>,
        raw: &[u8],
        framing: BodyFraming,
        conn: &mut ClientConn,
        connection: ClientConnection,
        pipelined: bool,
    ) -> Next {
        let started = Instant::now();
        let seen_body = OnceLock::new();
        let upstreams = UpstreamStates::default();
        let parsed = match rginx_http::request::RequestHead::parse(raw) {
            Ok(parsed) => parsed,
            Err(error) => {
                self.log_unreadable(&connection, error, raw, pipelined);
                return self.refuse_unreadable(conn, connection.local).await;
            }
        };
        // values as text for the evaluator (bytes that are not UTF-8
        // become U+FFFD there; the copies exist only when some value is
        // not UTF-8)
        let lossy: Vec<Cow<'_, str>>;
        let mut header_refs: Vec<(&str, &str)> = Vec::with_capacity(parsed.headers.len());
        for (n, v) in &parsed.headers {
            match std::str::from_utf8(v) {
                Ok(text) => header_refs.push((*n, text)),
                Err(_) => break,
            }
        }
        if header_refs.len() < parsed.headers.len() {
            lossy = parsed
                .headers
                .iter()
                .map(|(_, v)| String::from_utf8_lossy(v))
                .collect();
            header_refs = parsed
                .headers
                .iter()
                .zip(&lossy)
                .map(|((n, _), text)| (*n, text.as_ref()))
                .collect();
        }
        let time = std::time::SystemTime::now();
        let tls = conn.stream.get_ref().tls().cloned();
        let head = RequestHead {
            method: parsed.method,
            target: parsed.target,
            minor_version: parsed.minor_version,
            headers: &header_refs,
            local: connection.local,
            remote: connection.remote,
            time,
            request_id: request_id(time),
            body: None,
            upstreams: Some(&upstreams),
            connection: rginx_core::plan::ConnectionFacts {
                number: connection.number,
                requests: connection.served,
                accepted: std::time::Instant::now().checked_sub(Duration::from_millis(u64::from(
                    crate::http1::uptime_ms().wrapping_sub(connection.opened),
                ))),
                pipelined,
                plain_on_tls: connection.plain_on_tls,
            },
            tls: tls.as_deref(),
        };
        // find the server and the location
        let (decision, scope, matched) = self.runtime.decide_matched(&head);
        // what nginx refuses of a request's TLS, with its info line; after
        // 495, 496 and 497 it ends the connection, whatever error_page
        // answers (`ngx_http_special_response_handler`)
        let tls_refused = match decision {
            rginx_core::plan::Decision::Respond(status @ (421 | 495 | 496 | 497)) => {
                self.log_tls_refused(&connection, raw, scope.server, status, head.tls);
                status != 421
            }
            _ => false,
        };
        if tracing::enabled!(tracing::Level::INFO) {
            self.log_dropped_headers(&connection, raw, scope.server);
        }
        let client = self.runtime.client_settings(scope);
        // keepalive_timeout 0 turns keep-alive off; the connection's last
        // request (keepalive_requests, or past keepalive_time) is answered
        // with Connection: close (`ngx_http_update_location_config`)
        let keep_alive = client_keep_alive(&head)
            && !tls_refused
            && !client.keepalive_timeout.is_zero()
            && u64::from(connection.served) < client.keepalive_requests
            && u128::from(crate::http1::uptime_ms().wrapping_sub(connection.opened))
                <= client.keepalive_time.as_millis()
            && !browser_refuses_keep_alive(&head, &client);
        let mut session = Session {
            context: ErrorContext::new(self, &head, scope, connection.number),
            head,
            raw_headers: &parsed.headers,
            scope,
            matched,
            client,
            started,
            head_len: raw.len(),
            upstreams: &upstreams,
            upstream_uri: Mutex::new(String::new()),
            uri_changes: URI_CHANGES,
            carried: None,
            kept_body: Mutex::new(None),
            seen_body: &seen_body,
            redirected: None,
            accel_rate: AtomicU64::new(u64::MAX),
        };
        let mut body = BodyReader::new(framing, session.client.body_timeout);
        let answer = self
            .content_followed(
                &mut session,
                decision,
                &mut body,
                conn,
                parsed.expects_continue(),
            )
            .await;
        // error_page: an error answer replaced by its page's target
        let mut answer = self
            .error_page_phase(&mut session, answer, &mut body, conn)
            .await;
        // what redirects carried goes into the answer, an error's page too
        if let Some(carried) = session.carried.take() {
            if let Err(error) = &answer {
                let page = error_response(error, session.client.server_tokens);
                answer = Ok(Answer::Response(page, None));
            }
            if let Ok(answer) = &mut answer {
                carried.apply(answer);
            }
        }
        let (response, mut raw, tunnel) = match answer {
            Ok(Answer::Response(response, raw)) => (response, raw, None),
            Ok(Answer::Tunnel(response, raw, tunnel)) => (response, Some(raw), Some(tunnel)),
            Err(error) => (
                error_response(&error, session.client.server_tokens),
                None,
                None,
            ),
        };
        // nginx discards a body it did not read before it answers itself
        // (`ngx_http_discard_request_body`): what came of it is read now,
        // and a chunked body nginx cannot read makes the answer a 400
        // nginx counts the body it read, not one it discards
        let request_length = session.head_len as u64 + body.taken();
        let (response, keep_alive) = if raw.is_none() && tunnel.is_none() && body.untouched() {
            let (response, unreadable) = self.discard_ready(&session, response, &mut body, conn);
            (response, keep_alive && !unreadable)
        } else {
            (response, keep_alive)
        };
        // nginx's page padding for browsers with "friendly" error pages
        let settings = self.runtime.client_settings(session.scope);
        let response = if settings.msie_padding {
            padded_for_browsers(response, session.head.headers, settings.server_tokens)
        } else {
            response
        };
        // the headers filter: add_header, expires
        let now = std::time::SystemTime::now();
        let added = filter_headers(&self.runtime, &session, &response, raw.as_mut(), now);
        let status = response.status().as_u16();
        // a tunnel's bytes are not paced (nginx's upgraded connection
        // bypasses the write filter)
        let pace = if tunnel.is_none() {
            self.rate_limit(&session)
        } else {
            None
        };
        let framing = Framing {
            head_request: session.head.method == "HEAD",
            keep_alive: keep_alive && tunnel.is_none(),
            keepalive_header: session.client.keepalive_header,
            client_minor: parsed.minor_version,
            keep_head: tunnel.is_none() && self.runtime.logs_sent_headers(),
            now,
            tokens: session.client.server_tokens,
            pace: pace.map(|limit| (limit, session.head.time)),
        };
        let written = write_response(conn, response, raw.as_ref(), &added, framing).await;
        if let Some(mut tunnel) = tunnel {
            // the tunnel's line is written when it closes
            tunnel.log = LogRecord::keep(
                self,
                session.scope,
                &session.head,
                &session.matched,
                session.started,
                (written.total, request_length),
            );
            if tracing::enabled!(tracing::Level::INFO) {
                tunnel.timeout_line = session.last_upstream_request().map(|(addr, uri)| {
                    let at = addr.in_url();
                    super::upgrade::TimeoutLine {
                        connection: session.context.connection,
                        log_set: session.context.log_set,
                        describe: session.context.describe(Some((&at, &uri))).to_string(),
                    }
                });
            }
            return Next::Tunnel(tunnel);
        }
        // the upstream's part ends with the response (rginx's read-ahead
        // ends when the client has it all)
        session.upstreams.finished();
        let sent = Sent {
            status,
            body: written.body,
            total: written.total,
            request_length,
            head: written.head,
        };
        self.log_access(
            session.scope,
            &session.eval_head(),
            &session.matched,
            session.started,
            sent,
        );
        // an unread body is read and dropped, so that the connection can
        // serve the next request (nginx's discarded body)
        if !written.keep || conn.discard(&mut body).await.is_err() {
            return Next::Close;
        }
        Next::Keep {
            idle: session.client.keepalive_timeout,
            header: session.client.header_timeout,
        }
    }

    /// Reads and drops the body the client has sent so far, before rginx
    /// answers itself; and whether it was a chunked one nginx cannot read.
    /// Then `return`'s text or redirect becomes nginx's 400
    /// (`ngx_http_send_response` returns the error), an error page stays
    /// (`ngx_http_special_response_handler` only gives up keep-alive).
    fn discard_ready(
        &self,
        session: &Session<'_>,
        response: Response<Body>,
        body: &mut BodyReader,
        conn: &mut ClientConn,
    ) -> (Response<Body>, bool) {
        if response.extensions().get::<Unanswered>().is_some() {
            return (response, false);
        }
        loop {
            match conn.take_ready(body) {
                Ok(Some(_)) => continue,
                Ok(None) => return (response, false),
                Err(_) => break,
            }
        }
        let error = ProxyError::new(Kind::ClientBodyInvalid);
        error.log(&session.context, &session.context.describe(None));
        let page =
            response.extensions().get::<OwnPage>().is_some() && response.status().as_u16() >= 400;
        if page {
            return (response, true);
        }
        (error_response(&error, session.client.server_tokens), true)
    }

    /// The response's `limit_rate`, with nginx's error lines for values
    /// that are no size.
    fn rate_limit(&self, session: &Session<'_>) -> Option<rginx_core::plan::RateLimit> {
        let mut errors = Vec::new();
        let limit = self.runtime.rate_limit(
            session.scope,
            &session.eval_head(),
            &session.matched,
            session.accel_rate(),
            &mut errors,
        );
        if errors.is_empty() {
            return limit;
        }
        // a proxied answer's lines name the upstream, as nginx's write
        // filter does while sending it
        let upstream = session.last_upstream_request();
        let upstream = upstream.as_ref().map(|(at, uri)| (at.in_url(), uri));
        for error in errors {
            let context = &session.context;
            match &upstream {
                Some((at, uri)) => tracing::error!(
                    log_set = context.log_set,
                    "*{} {error} while sending to client{}",
                    context.connection,
                    context.describe(Some((at, uri)))
                ),
                None => tracing::error!(
                    log_set = context.log_set,
                    "*{} {error}{}",
                    context.connection,
                    context.describe(None)
                ),
            }
        }
        limit
    }

    /// A head nginx cannot read: its 400 page, and the connection closes.
    async fn refuse_unreadable(&self, conn: &mut ClientConn, local: std::net::SocketAddr) -> Next {
        let tokens = self.server_tokens(local);
        let framing = Framing {
            head_request: false,
            keep_alive: false,
            keepalive_header: None,
            client_minor: 1,
            keep_head: false,
            now: std::time::SystemTime::now(),
            tokens,
            pace: None,
        };
        write_response(conn, error_page(400, tokens), None, &[], framing).await;
        Next::Close
    }

    /// The content handler the decision names: rginx's own answers, or the
    /// proxy.
    pub(super) async fn content(
        self: &Arc<Self>,
        session: &Session<'_>,
        decision: Decision<'_>,
        body: &mut BodyReader,
        conn: &mut ClientConn,
        expect_continue: bool,
    ) -> Result<Answer, ProxyError> {
        let response = match decision {
            Decision::Respond(status) => {
                if status == 413 {
                    let length = session
                        .head
                        .headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                        .map_or("", |(_, v)| *v);
                    tracing::error!(
                        log_set = session.context.log_set,
                        "*{} client intended to send too large body: {length} bytes{}",
                        session.context.connection,
                        session.context.describe(None)
                    );
                }
                own_answer(status, None, session.client.server_tokens)
            }
            Decision::Failed { status, error } => {
                tracing::error!(
                    log_set = session.context.log_set,
                    "*{} {error}{}",
                    session.context.connection,
                    session.context.describe(None)
                );
                own_answer(status, None, session.client.server_tokens)
            }
            Decision::Moved { status, location } => {
                own_answer(status, Some(&location), session.client.server_tokens)
            }
            Decision::Text {
                status,
                content_type,
                body,
            } => text_answer(status, &content_type, body),
            Decision::Close(status) => {
                // `return 444`: nothing is written, the status is logged
                let mut response = unanswered();
                *response.status_mut() =
                    http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
                response
            }
            Decision::Status(format) => status_answer(format),
            Decision::RegexFailed { alert, answer } => {
                self.log_alert(session, &alert);
                if answer {
                    own_answer(500, None, session.client.server_tokens)
                } else {
                    // nginx closes the request (`ngx_http_close_request`
                    // with 500): the log's status, nothing written
                    let mut response = unanswered();
                    *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                    response
                }
            }
            Decision::Proxy(plan) => {
                for alert in &plan.alerts {
                    self.log_alert(session, alert);
                }
                return self
                    .proxy(session, &plan, body, conn, expect_continue)
                    .await;
            }
        };
        Ok(Answer::Response(response, None))
    }
}

impl Engine {
    /// An `[alert]` line about this request (a regex match that failed),
    /// with nginx's `client: ..., server: ...` suffix.
    fn log_alert(&self, session: &Session<'_>, alert: &str) {
        tracing::error!(
            alert = true,
            log_set = session.context.log_set,
            "*{} {alert}{}",
            session.context.connection,
            session.context.describe(None)
        );
    }
}

/// What the client gets for a failure: nginx's page, or nothing at all
/// (then the connection closes).
fn error_response(error: &ProxyError, tokens: bool) -> Response<Body> {
    let mut response = if error.unanswered() {
        unanswered()
    } else {
        error_page(error.status(), tokens)
    };
    // the status is the log's even when nothing is written
    *response.status_mut() =
        http::StatusCode::from_u16(error.status()).unwrap_or(http::StatusCode::BAD_GATEWAY);
    response
}

/// `keepalive_disable`: MSIE 4 to 6 after a POST ("MSIE may wait for some
/// time if an response for a POST request was sent over a keepalive
/// connection"), Safari on Mac OS X (`ngx_http_update_location_config`).
fn browser_refuses_keep_alive(head: &RequestHead<'_>, client: &ClientSettings) -> bool {
    if !client.keepalive_disable_msie6 && !client.keepalive_disable_safari {
        return false;
    }
    let browser = rginx_core::user_agent::Browser::of_headers(head.headers);
    (browser.msie6 && head.method == "POST" && client.keepalive_disable_msie6)
        || (browser.safari && client.keepalive_disable_safari)
}

/// Whether the client's connection may stay open after this request, as
/// nginx decides it: HTTP/1.1 unless `Connection: close`, HTTP/1.0 only
/// with `Connection: keep-alive`.
fn client_keep_alive(head: &RequestHead<'_>) -> bool {
    let has = |token: &str| {
        head.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("connection")
                && v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))
        })
    };
    if head.minor_version == 0 {
        has("keep-alive")
    } else {
        !has("close")
    }
}
