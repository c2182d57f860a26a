//! What nginx's error log lines say about a request: the end of each line
//! (`, client: ..., server: ..., request: "...", upstream: "...", host:
//! "..."`), formatted only when a line is written.

use std::net::SocketAddr;

use rginx_core::plan::{LogScope, RequestHead};

use super::Engine;

/// What nginx's error log lines say about a request.
pub(super) struct ErrorContext<'a> {
    /// The connection's number (nginx's `*N`).
    pub connection: u64,
    /// The `error_log` list its lines go to (0: the main level's, N: the
    /// runtime's list N-1).
    pub log_set: u64,
    client: SocketAddr,
    server: &'a str,
    method: &'a str,
    target: &'a str,
    minor_version: u8,
    host: Option<&'a str>,
    /// The upstream is reached over TLS (`https://` in its lines).
    https: std::sync::atomic::AtomicBool,
}

impl<'a> ErrorContext<'a> {
    /// Marks the upstream as reached over TLS (`proxy_pass https://`).
    pub fn set_https(&self) {
        self.https.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The context of `head`, served in `scope`.
    pub fn new(
        engine: &'a Engine,
        head: &RequestHead<'a>,
        scope: LogScope,
        connection: u64,
    ) -> Self {
        ErrorContext {
            connection,
            log_set: engine.log_set(scope),
            client: head.remote,
            server: engine.runtime.server_name(scope.server),
            method: head.method,
            target: head.target,
            minor_version: head.minor_version,
            host: head
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("host"))
                .map(|(_, v)| *v),
            https: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The end of a line, with the upstream's address (or group name) and
    /// URI once one was chosen.
    pub fn describe<'d>(
        &'d self,
        upstream: Option<(&'d (dyn std::fmt::Display + Sync), &'d str)>,
    ) -> Described<'d> {
        Described {
            context: self,
            upstream,
        }
    }
}

/// [`ErrorContext::describe`]: formatted when an error line is written,
/// not for every request.
pub(super) struct Described<'a> {
    context: &'a ErrorContext<'a>,
    /// The upstream's address (or group name) and URI.
    upstream: Option<(&'a (dyn std::fmt::Display + Sync), &'a str)>,
}

impl std::fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = self.context;
        let request = format_args!("{} {} HTTP/1.{}", c.method, c.target, c.minor_version);
        let https = c.https.load(std::sync::atomic::Ordering::Relaxed);
        let upstream = self.upstream.map(|(at, uri)| Upstream(https, at, uri));
        Suffix {
            client: c.client,
            server: c.server,
            request: Some(&request),
            upstream: upstream.as_ref().map(|u| u as &dyn std::fmt::Display),
            host: c.host.as_ref().map(|h| h as &dyn std::fmt::Display),
        }
        .fmt(f)
    }
}

/// An upstream as nginx names it in error lines: `http://ADDRESS/URI`
/// (`https://` over TLS).
struct Upstream<'a>(bool, &'a (dyn std::fmt::Display + Sync), &'a str);

impl std::fmt::Display for Upstream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.0 { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.1, self.2)
    }
}

/// The end of an error line as nginx's `ngx_http_log_error_handler` writes
/// it: `, client: ..., server: ...`, then the request line, the upstream
/// and the host when they are known.
pub(super) struct Suffix<'a> {
    pub client: SocketAddr,
    pub server: &'a str,
    pub request: Option<&'a dyn std::fmt::Display>,
    pub upstream: Option<&'a dyn std::fmt::Display>,
    pub host: Option<&'a dyn std::fmt::Display>,
}

impl std::fmt::Display for Suffix<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, ", client: {}, server: {}", self.client.ip(), self.server)?;
        if let Some(request) = self.request {
            write!(f, ", request: \"{request}\"")?;
        }
        if let Some(upstream) = self.upstream {
            write!(f, ", upstream: \"{upstream}\"")?;
        }
        if let Some(host) = self.host {
            write!(f, ", host: \"{host}\"")?;
        }
        Ok(())
    }
}
