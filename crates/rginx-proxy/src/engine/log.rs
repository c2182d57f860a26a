//! The log phase: one access log line per request, written once at its end
//! from the request's context, into the files of the location's
//! `access_log`s, kept open. Its `$time_local`, `$time_iso8601` and `$msec`
//! are the time of the writing, as nginx's (`ngx_http_log_request` runs
//! when the request ends, with the cached time of then).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rginx_core::plan::{
    ConnectionFacts, LogScope, Matched, RequestHead, ResponseFacts, UpstreamStates,
};

use super::Engine;

/// What the log knows of a response once it is out.
#[derive(Debug, Clone)]
pub(super) struct Sent {
    /// The status the client got (or 499/408 when it got nothing).
    pub status: u16,
    /// Body bytes written.
    pub body: u64,
    /// Bytes written in all, head included.
    pub total: u64,
    /// The request's head and the body bytes read (`$request_length`).
    pub request_length: u64,
    /// The response head written, kept when a `log_format` reads
    /// `$sent_http_NAME`.
    pub head: Option<Vec<u8>>,
}

/// The head written, as `$sent_http_NAME` reads it in the log: the first
/// line of a name. `Server` and `Date` are not among them: nginx's header
/// filter writes those from its flags, and its variables find no such
/// header (`ngx_http_variable_unknown_header` on `headers_out`). By the
/// log phase nginx has cleared `r->keepalive` (`ngx_http_set_keepalive`),
/// so `Connection` reads `close` (`upgrade` for a 101) and `Keep-Alive`
/// nothing.
struct WrittenHead<'a>(&'a [u8]);

impl rginx_core::plan::SentHeaders for WrittenHead<'_> {
    fn sent(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        if ["server", "date", "keep-alive"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
        {
            return None;
        }
        let head = rginx_http::response::ResponseHead::parse(self.0).ok()??;
        if name.eq_ignore_ascii_case("connection") {
            let upgrade = head.status == 101;
            return Some(if upgrade { "upgrade" } else { "close" }.into());
        }
        let value = head.get(self.0, name)?;
        Some(String::from_utf8_lossy(value).into_owned().into())
    }
}

impl Engine {
    /// Writes the access log lines of a request served in `scope`.
    pub(super) fn log_access(
        &self,
        scope: LogScope,
        head: &RequestHead<'_>,
        matched: &Matched,
        started: Instant,
        sent: Sent,
    ) {
        if !self.runtime.has_access_logs(scope) {
            return;
        }
        let facts = ResponseFacts {
            status: sent.status,
            body_bytes_sent: sent.body,
            bytes_sent: sent.total,
            request_length: sent.request_length,
            request_time: started.elapsed(),
        };
        // the line's time is the time it is written
        let head = RequestHead {
            time: std::time::SystemTime::now(),
            ..*head
        };
        let mut alerts = Vec::new();
        let written = sent.head.as_deref().map(WrittenHead);
        let sent_headers = written
            .as_ref()
            .map(|h| h as &dyn rginx_core::plan::SentHeaders);
        let lines =
            self.runtime
                .access_log_lines(scope, &head, matched, &facts, sent_headers, &mut alerts);
        for line in lines {
            self.access_logs.write(line);
        }
        // a map's regex that failed while the line was written (rginx
        // has no request context here: the line has no `client:` suffix)
        for alert in alerts {
            tracing::error!(alert = true, "{alert}");
        }
    }
}

/// A request's head kept past its handler, for a line written later (a
/// tunnel's, when it closes).
pub(super) struct LogRecord {
    engine: Arc<Engine>,
    scope: LogScope,
    method: String,
    target: String,
    minor_version: u8,
    headers: Vec<(String, String)>,
    local: SocketAddr,
    remote: SocketAddr,
    time: std::time::SystemTime,
    request_id: [u8; 16],
    matched: Matched,
    started: Instant,
    upstreams: UpstreamStates,
    connection: ConnectionFacts,
    tls: Option<Arc<rginx_core::plan::TlsFacts>>,
    /// The 101 head's bytes written, and the request's bytes read.
    head_sent: u64,
    request_length: u64,
}

impl LogRecord {
    /// A copy of `head`'s facts (the servers it tried included), when
    /// `scope` has access logs; `head_sent` bytes of the 101 were written
    /// and `request_length` of the request read.
    pub fn keep(
        engine: &Arc<Engine>,
        scope: LogScope,
        head: &RequestHead<'_>,
        matched: &Matched,
        started: Instant,
        (head_sent, request_length): (u64, u64),
    ) -> Option<LogRecord> {
        if !engine.runtime.has_access_logs(scope) {
            return None;
        }
        Some(LogRecord {
            engine: engine.clone(),
            scope,
            method: head.method.to_string(),
            target: head.target.to_string(),
            minor_version: head.minor_version,
            headers: head
                .headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            local: head.local,
            remote: head.remote,
            time: head.time,
            request_id: head.request_id,
            matched: matched.clone(),
            started,
            upstreams: head.upstreams.cloned().unwrap_or_default(),
            connection: head.connection,
            tls: head.tls.map(|t| Arc::new(t.clone())),
            head_sent,
            request_length,
        })
    }

    /// Writes the lines of a tunnel that sent `moved` bytes to the client
    /// (the upstream's part ends now: a tunnel's time is the tunnel's).
    /// nginx counts them as the body: `$bytes_sent` is the connection's
    /// bytes, `$body_bytes_sent` those after the head.
    pub fn write(&self, moved: u64) {
        let sent = Sent {
            status: 101,
            body: moved,
            total: self.head_sent + moved,
            request_length: self.request_length,
            head: None,
        };
        self.upstreams.finished();
        let refs: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let head = RequestHead {
            method: &self.method,
            target: &self.target,
            minor_version: self.minor_version,
            headers: &refs,
            local: self.local,
            remote: self.remote,
            time: self.time,
            request_id: self.request_id,
            body: None,
            upstreams: Some(&self.upstreams),
            connection: self.connection,
            tls: self.tls.as_deref(),
        };
        self.engine
            .log_access(self.scope, &head, &self.matched, self.started, sent);
    }
}

/// 16 bytes for `$request_id`, from the clock and a counter (unique per
/// process, not secret).
pub(super) fn request_id(time: std::time::SystemTime) -> [u8; 16] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&t.to_be_bytes());
    id[8..].copy_from_slice(&n.to_be_bytes());
    id
}
