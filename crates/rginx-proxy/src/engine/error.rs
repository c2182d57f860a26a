//! The one error of the request path, after Pingora's: which side failed
//! (the client, the upstream, rginx itself), what kind of failure it was,
//! and whether the request had been sent. It alone decides the status the
//! client gets, nginx's error log line, and whether `proxy_next_upstream`
//! lets another server be tried.

use std::io;

use rginx_core::plan::NextUpstream;

use super::context::{Described, ErrorContext};

/// Which side of a proxied request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    /// The client (it left, stalled or sent what nginx refuses).
    Client,
    /// The upstream server.
    Upstream,
    /// rginx (no slot, no server to try).
    Internal,
}

/// What failed.
#[derive(Debug)]
pub(super) enum Kind {
    /// `connect()` failed (to a unix socket: its path).
    Connect(io::Error, Option<std::sync::Arc<str>>),
    /// No connection within `proxy_connect_timeout`.
    ConnectTimeout,
    /// The TLS handshake with the upstream failed (why, in words).
    Handshake(String),
    /// The TLS handshake did not end within `proxy_connect_timeout`.
    HandshakeTimeout,
    /// The group has no server left to try ("no live upstreams").
    NoLiveUpstreams(String),
    /// The `resolver` found no address for the host (as looked up).
    Unresolved(String, rginx_dns::Failure),
    /// The upstream closed the connection before a whole head.
    PrematureClose,
    /// The response head is not HTTP.
    InvalidHeader,
    /// The response head does not fit in `proxy_buffer_size`.
    TooBigHeader,
    /// No response head within `proxy_read_timeout`.
    ReadTimeout,
    /// The client closed its connection while the upstream had yet to
    /// answer (nginx's 499).
    ClientClosed,
    /// The client's body stalled past `client_body_timeout` (408).
    ClientBodyTimeout,
    /// The client's chunked body is not nginx's grammar (400).
    ClientBodyInvalid,
    /// The client closed its connection in the middle of its body (400).
    ClientBodyClosed,
    /// A chunked body passed `client_max_body_size`: what came before it
    /// and the chunk that does not fit (413).
    ClientBodyTooLarge(u64, u64),
    /// The same for a chunked body streamed to the upstream.
    StreamedBodyTooLarge(u64, u64),
    /// `worker_connections` are all taken (500).
    NoSlots(usize),
    /// A temp file for a body could not be made or written (500).
    TempFile(crate::spool::TempError),
    /// A stream body was sent already and cannot be sent again, or there
    /// is no server to try (502).
    NoServer,
}

/// A failure on the request path.
#[derive(Debug)]
pub(super) struct ProxyError {
    pub kind: Kind,
    /// The request had been sent to the upstream (then only methods
    /// nginx resends go to another server).
    pub sent: bool,
}

impl ProxyError {
    /// A failure before the request was sent.
    pub fn new(kind: Kind) -> ProxyError {
        ProxyError { kind, sent: false }
    }

    /// A failure after the request was sent.
    pub fn after_sending(kind: Kind) -> ProxyError {
        ProxyError { kind, sent: true }
    }

    /// Which side failed.
    pub fn side(&self) -> Side {
        match self.kind {
            Kind::ClientClosed
            | Kind::ClientBodyTimeout
            | Kind::ClientBodyInvalid
            | Kind::ClientBodyClosed
            | Kind::ClientBodyTooLarge(..)
            | Kind::StreamedBodyTooLarge(..) => Side::Client,
            Kind::NoSlots(_) | Kind::NoServer | Kind::TempFile(_) => Side::Internal,
            _ => Side::Upstream,
        }
    }

    /// The status the client gets (and the access log records).
    pub fn status(&self) -> u16 {
        match self.kind {
            Kind::ConnectTimeout | Kind::HandshakeTimeout | Kind::ReadTimeout => 504,
            Kind::ClientClosed => 499,
            Kind::ClientBodyTimeout => 408,
            Kind::ClientBodyInvalid | Kind::ClientBodyClosed => 400,
            Kind::ClientBodyTooLarge(..) | Kind::StreamedBodyTooLarge(..) => 413,
            Kind::NoSlots(_) | Kind::TempFile(_) => 500,
            _ => 502,
        }
    }

    /// Whether nginx closes the connection without an answer: a stalled
    /// body (408), or a client that left (499).
    pub fn unanswered(&self) -> bool {
        matches!(self.kind, Kind::ClientClosed | Kind::ClientBodyTimeout)
    }

    /// Whether `proxy_next_upstream` names this failure (the tries and
    /// the method are the caller's to check).
    pub fn retryable(&self, next: &NextUpstream) -> bool {
        match self.kind {
            Kind::Connect(..) | Kind::Handshake(_) | Kind::PrematureClose => next.error,
            Kind::ConnectTimeout | Kind::HandshakeTimeout | Kind::ReadTimeout => next.timeout,
            Kind::InvalidHeader | Kind::TooBigHeader => next.invalid_header,
            _ => false,
        }
    }

    /// Writes nginx's error log line for it; `describe` ends the line.
    pub fn log(&self, context: &ErrorContext<'_>, describe: &Described<'_>) {
        let n = context.connection;
        let set = context.log_set;
        let timed_out = "upstream timed out (110: Connection timed out) while";
        match &self.kind {
            // a unix socket fails at once, where nginx names it
            // (`ngx_event_connect_peer`: critical unless refused)
            Kind::Connect(e, Some(path)) => {
                let refused = matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                );
                tracing::error!(
                    log_set = set,
                    crit = !refused,
                    "*{n} connect() to unix:{path} failed ({}) while connecting to upstream{describe}",
                    crate::process::os_error(e)
                )
            }
            Kind::Connect(e, None) => tracing::error!(
                log_set = set,
                "*{n} connect() failed ({}) while connecting to upstream{describe}",
                crate::process::os_error(e)
            ),
            Kind::ConnectTimeout => tracing::error!(
                log_set = set,
                "*{n} {timed_out} connecting to upstream{describe}"
            ),
            // ngx_ssl_handshake, in ngx_http_upstream_ssl_handshake
            Kind::Handshake(why) => tracing::error!(
                log_set = set,
                "*{n} SSL_do_handshake() failed ({why}) while SSL handshaking to upstream{describe}"
            ),
            Kind::HandshakeTimeout => tracing::error!(
                log_set = set,
                "*{n} {timed_out} SSL handshaking to upstream{describe}"
            ),
            Kind::NoLiveUpstreams(_) => tracing::error!(
                log_set = set,
                "*{n} no live upstreams while connecting to upstream{describe}"
            ),
            // ngx_http_upstream_resolve_handler
            Kind::Unresolved(name, failure) => tracing::error!(
                log_set = set,
                "*{n} {name} could not be resolved ({failure}){describe}"
            ),
            Kind::PrematureClose => tracing::error!(
                log_set = set,
                "*{n} upstream prematurely closed connection while reading response header from upstream{describe}"
            ),
            Kind::InvalidHeader => tracing::error!(
                log_set = set,
                "*{n} upstream sent invalid header while reading response header from upstream{describe}"
            ),
            Kind::TooBigHeader => tracing::error!(
                log_set = set,
                "*{n} upstream sent too big header while reading response header from upstream{describe}"
            ),
            Kind::ReadTimeout => tracing::error!(
                log_set = set,
                "*{n} {timed_out} reading response header from upstream{describe}"
            ),
            Kind::ClientClosed => tracing::info!(
                log_set = set,
                "*{n} client prematurely closed connection, so upstream connection is closed too while reading response header from upstream{describe}"
            ),
            Kind::ClientBodyTimeout => tracing::info!(
                log_set = set,
                "*{n} client timed out (110: Connection timed out) while reading client request body{describe}"
            ),
            // ngx_http_request_body_chunked_filter: an error, no action
            Kind::ClientBodyInvalid => tracing::error!(
                log_set = set,
                "*{n} client sent invalid chunked body{describe}"
            ),
            Kind::ClientBodyClosed => tracing::info!(
                log_set = set,
                "*{n} client prematurely closed connection while reading client request body{describe}"
            ),
            Kind::ClientBodyTooLarge(before, chunk) => tracing::error!(
                log_set = set,
                "*{n} client intended to send too large chunked body: {before}+{chunk} bytes{describe}"
            ),
            Kind::StreamedBodyTooLarge(before, chunk) => tracing::error!(
                log_set = set,
                "*{n} client intended to send too large chunked body: {before}+{chunk} bytes while sending request to upstream{describe}"
            ),
            Kind::NoSlots(count) => tracing::error!(
                log_set = set,
                alert = true,
                "*{n} {count} worker_connections are not enough while connecting to upstream{describe}"
            ),
            // ngx_create_temp_file and ngx_write_file: critical
            Kind::TempFile(e) => tracing::error!(
                log_set = set,
                crit = true,
                "*{n} {e}{describe}"
            ),
            Kind::NoServer => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_nginx_s_status_and_side() {
        let upstream = ProxyError::new(Kind::ConnectTimeout);
        assert_eq!((upstream.status(), upstream.side()), (504, Side::Upstream));
        let client = ProxyError::after_sending(Kind::ClientClosed);
        assert_eq!((client.status(), client.side()), (499, Side::Client));
        assert!(client.unanswered() && client.sent);
        let big = ProxyError::new(Kind::ClientBodyTooLarge(10, 5));
        assert_eq!(big.status(), 413);
        assert!(!big.unanswered());
        assert_eq!(ProxyError::new(Kind::TooBigHeader).status(), 502);
        assert_eq!(ProxyError::new(Kind::NoSlots(1)).side(), Side::Internal);
        assert_eq!(ProxyError::new(Kind::ClientBodyTimeout).status(), 408);
    }
}
