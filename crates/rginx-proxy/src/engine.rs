//! The engine: one per worker thread (nginx's worker process), serving
//! the listening sockets with hyper's HTTP/1 server and proxying the plans
//! `rginx_core::plan::Runtime` computes (docs/architecture.md, "The
//! engine").
//!
//! - Connections run over `timed::ClientIo`: nginx's read timers, head
//!   limits and `send_timeout`; each takes a `worker_connections` slot.
//! - A request is decided by the runtime; own answers are nginx's pages.
//! - A proxied request tries servers as `proxy_next_upstream` allows, over
//!   kept connections (`pool`) or new ones over rginx's own HTTP/1 client
//!   (`upstream`), and streams the response back
//!   (small bodies are read whole first, as nginx's buffering does).
//! - After a `101` to a client that asked for an upgrade, `tunnel` relays
//!   bytes until either side closes or `proxy_read_timeout` passes idle.
//! - Access log lines are written when a response (or a tunnel) ends;
//!   error lines go through `tracing` in nginx's words (`errlog`).
//!
//! Upstream requests are rginx's own HTTP/1 (`upstream`): the head goes
//! out byte for byte as the plan says, names in their case and lines in
//! nginx's order, and the response head is read with its names, case and
//! order kept; hyper serves the client side.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use rginx_core::model::Model;
use rginx_core::plan::{
    response_header_passes, Decision, LogScope, NextUpstream, PlanTarget, RequestHead, Runtime,
    StatusFormat, UpstreamPlan,
};
use rginx_http::head_scan::BodyFraming;
use tokio::net::TcpStream;

use crate::balance::{RoundRobin, Tried};
use crate::http1::conn::{BodyError, BodyReader, ClientConn};
use crate::http1::write::{
    nginx_reason, write_response, Framing as WriteFraming, OwnPage, RawLines, Reason, Unanswered,
};
use crate::http1::ClientConnection;
use crate::pool::{Conn, Pool};
use crate::timed::{TimedBody, TimedWrites};
use crate::upstream::{HeadError, UpstreamBody};

use crate::pool::{Body, BoxError};

/// Everything a connection needs: the compiled configuration and the
/// upstream groups' balancing state.
pub struct Engine {
    runtime: Runtime,
    groups: HashMap<String, Mutex<RoundRobin>>,
    /// Idle upstream connections of the groups with `keepalive N`.
    pools: HashMap<String, Arc<Pool>>,
    /// Access log files, opened once on first use and kept open.
    log_files: Mutex<HashMap<String, std::fs::File>>,
    /// Open connections allowed, clients and upstreams together:
    /// `worker_connections` (512) for each runtime thread, as nginx counts
    /// them per worker process.
    slots: Arc<tokio::sync::Semaphore>,
    /// Its size, for the alert.
    slot_count: usize,
}

/// A worker's engine now: each request takes it from here, and a reload
/// puts the new configuration's engine in its place.
pub struct EngineCell(RwLock<Arc<Engine>>);

impl EngineCell {
    /// A cell holding `engine`.
    pub fn new(engine: Arc<Engine>) -> EngineCell {
        EngineCell(RwLock::new(engine))
    }

    /// The engine now.
    pub fn get(&self) -> Arc<Engine> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Puts `engine` in place; the one it replaces comes back.
    pub fn replace(&self, engine: Arc<Engine>) -> Arc<Engine> {
        std::mem::replace(
            &mut *self.0.write().unwrap_or_else(PoisonError::into_inner),
            engine,
        )
    }
}

/// nginx's status for a request whose client left before the answer.
const CLIENT_CLOSED: u16 = 499;

/// nginx's status for a request body that stalled past
/// `client_body_timeout`: logged, and the connection closed unanswered.
const REQUEST_TIME_OUT: u16 = 408;

/// Returns once `quit` says true (never when its sender is gone).
pub(crate) async fn quitting(quit: &mut tokio::sync::watch::Receiver<bool>) {
    loop {
        if *quit.borrow_and_update() {
            return;
        }
        if quit.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Connections accepted so far by all workers (nginx's `*N` in error log
/// lines, counted across its workers too).
static CONNECTIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// What nginx's error log lines say about a request.
struct ErrorContext<'a> {
    connection: u64,
    /// The `error_log` list its lines go to (0: the main level's, N: the
    /// runtime's list N-1).
    log_set: u64,
    client: SocketAddr,
    server: &'a str,
    method: &'a str,
    target: &'a str,
    minor_version: u8,
    host: Option<&'a str>,
}

impl ErrorContext<'_> {
    /// The end of nginx's line: `, client: ..., server: ..., request:
    /// "...", upstream: "...", host: "..."` (no `upstream` part before one
    /// was chosen), written only when a line is.
    fn describe<'d>(
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
struct Described<'a> {
    context: &'a ErrorContext<'a>,
    /// The upstream's address (or group name) and URI.
    upstream: Option<(&'a (dyn std::fmt::Display + Sync), &'a str)>,
}

impl std::fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = self.context;
        write!(
            f,
            ", client: {}, server: {}, request: \"{} {} HTTP/1.{}\"",
            c.client.ip(),
            c.server,
            c.method,
            c.target,
            c.minor_version
        )?;
        if let Some((at, uri)) = self.upstream {
            write!(f, ", upstream: \"http://{at}{uri}\"")?;
        }
        if let Some(host) = c.host {
            write!(f, ", host: \"{host}\"")?;
        }
        Ok(())
    }
}

impl Engine {
    /// Builds the engine for a validated model.
    /// `workers` is the number of runtime threads (nginx's worker
    /// processes), which `worker_connections` is multiplied by.
    pub fn new(model: &Model, runtime: Runtime, workers: usize) -> Engine {
        let per_worker = match model
            .events
            .as_ref()
            .and_then(|e| e.get("worker_connections"))
            .map(|s| &s.value)
        {
            Some(rginx_core::model::Value::Number(n)) => usize::try_from(*n).unwrap_or(usize::MAX),
            _ => 512,
        };
        let slot_count = per_worker
            .saturating_mul(workers.max(1))
            .min(tokio::sync::Semaphore::MAX_PERMITS);
        let groups = model
            .http
            .iter()
            .flat_map(|h| &h.upstreams)
            .map(|u| (u.name.to_ascii_lowercase(), Mutex::new(RoundRobin::new(u))))
            .collect();
        let pools = model
            .http
            .iter()
            .flat_map(|h| &h.upstreams)
            .filter_map(|u| Some((u.name.to_ascii_lowercase(), Arc::new(Pool::for_group(u)?))))
            .collect();
        Engine {
            runtime,
            groups,
            pools,
            log_files: Mutex::new(HashMap::new()),
            slots: Arc::new(tokio::sync::Semaphore::new(slot_count)),
            slot_count,
        }
    }

    /// Opens the access log files named without variables, so that they
    /// are open before the process gives up root; nginx's words on failure.
    /// Files `previous` (the engine a reload replaces) has open are shared.
    pub fn open_logs(&self, previous: Option<&Engine>) -> Result<(), String> {
        let Ok(mut files) = self.log_files.lock() else {
            return Ok(());
        };
        let kept = previous.and_then(|p| p.log_files.lock().ok());
        for path in self.runtime.static_access_log_paths() {
            if let Some(file) = kept.as_ref().and_then(|k| k.get(&path)) {
                if let Ok(file) = file.try_clone() {
                    files.insert(path, file);
                    continue;
                }
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| {
                    format!(
                        "open() \"{path}\" failed ({})",
                        crate::process::os_error(&e)
                    )
                })?;
            files.insert(path, file);
        }
        Ok(())
    }

    /// The access log files named without variables.
    pub fn static_access_log_paths(&self) -> Vec<String> {
        self.runtime.static_access_log_paths()
    }

    /// Opens the access log files again (`rginx -s reopen`, after
    /// logrotate moved them); those named with variables are opened again
    /// on their next line.
    pub fn reopen_logs(&self) -> Result<(), String> {
        if let Ok(mut files) = self.log_files.lock() {
            files.clear();
        }
        self.open_logs(None)
    }

    /// Closes the idle upstream connections of an engine a reload
    /// replaced (the requests it still serves keep theirs).
    pub fn retire(&self) {
        for pool in self.pools.values() {
            pool.clear();
        }
    }

    /// Whether this configuration listens where a connection was accepted.
    pub fn listens_on(&self, local: SocketAddr) -> bool {
        self.runtime.listens_on(local)
    }

    /// The error_log lists of the http, server and location levels.
    pub fn error_log_sets(&self) -> &[Vec<rginx_core::model::ErrorLog>] {
        self.runtime.error_log_sets()
    }

    /// The addresses this configuration listens on.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.runtime.listen_addrs().collect()
    }

    /// Serves one accepted connection on this worker (rginx's own HTTP/1,
    /// [`crate::http1`]). Each request on it is served by the engine in
    /// `current` (the configuration now), or by this one when the new
    /// configuration no longer listens where the connection came in. Once
    /// `quit` turns true the connection ends after the request it is
    /// serving, as nginx's graceful shutdown.
    pub fn serve_connection(
        self: Arc<Self>,
        current: Arc<EngineCell>,
        stream: TcpStream,
        remote: SocketAddr,
        quit: tokio::sync::watch::Receiver<bool>,
    ) {
        // every open connection takes a slot; without one nginx closes
        // the new connection at once
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            tracing::error!(
                alert = true,
                "{} worker_connections are not enough",
                self.slot_count
            );
            drop(stream);
            return;
        };
        crate::status::COUNTERS.handled();
        let Ok(local) = stream.local_addr() else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let number = CONNECTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let connection = ClientConnection {
            number,
            local,
            remote,
            served: 0,
        };
        tokio::spawn(crate::http1::serve(
            current, self, stream, connection, quit, slot,
        ));
    }

    /// The client settings of the server a socket defaults to.
    pub(crate) fn socket_client_settings(
        &self,
        local: SocketAddr,
    ) -> rginx_core::plan::ClientSettings {
        self.runtime.socket_client_settings(local)
    }

    /// Serves one request whose head was read whole (`head`, its body
    /// framed as `framing` still on `conn`): decides it, answers it, and
    /// says what becomes of the connection.
    pub(crate) async fn serve_request(
        self: &Arc<Self>,
        head: &[u8],
        framing: BodyFraming,
        conn: &mut ClientConn,
        connection: ClientConnection,
    ) -> Next {
        let Ok(parsed) = rginx_http::request::RequestHead::parse(head) else {
            // a head nginx cannot read: its 400 page, and the connection
            // closes
            let page = error_page(400);
            let framing = WriteFraming {
                head_request: false,
                keep_alive: false,
                keepalive_header: None,
                client_minor: 1,
            };
            write_response(conn, page, framing).await;
            return Next::Close;
        };
        // the head is read in place: values as text (bytes that are not
        // UTF-8 become U+FFFD for the evaluator)
        let values: Vec<Cow<'_, str>> = parsed
            .headers
            .iter()
            .map(|(_, v)| String::from_utf8_lossy(v))
            .collect();
        let header_refs: Vec<(&str, &str)> = parsed
            .headers
            .iter()
            .zip(&values)
            .map(|((n, _), v)| (*n, v.as_ref()))
            .collect();
        let head = RequestHead {
            method: parsed.method,
            target: parsed.target,
            minor_version: parsed.minor_version,
            headers: &header_refs,
            local: connection.local,
            remote: connection.remote,
            time: std::time::SystemTime::now(),
            request_id: request_id(),
        };
        let head_request = parsed.method == "HEAD";
        let (decision, scope) = self.runtime.decide_scoped(&head);
        let client = self.runtime.client_settings(scope);
        // keepalive_timeout 0 turns keep-alive off; the connection's last
        // request (keepalive_requests) is answered with Connection: close
        let keep_alive = client_keep_alive(&head)
            && !client.keepalive_timeout.is_zero()
            && connection.served < client.keepalive_requests;
        let mut body = BodyReader::new(framing, client.body_timeout);
        let response = match decision {
            Decision::Respond(status) => {
                if status == 413 {
                    let length = head
                        .headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                        .map_or("", |(_, v)| *v);
                    let context = self.error_context(&head, scope, connection.number);
                    tracing::error!(
                        log_set = context.log_set,
                        "*{} client intended to send too large body: {length} bytes{}",
                        context.connection,
                        context.describe(None)
                    );
                }
                self.own_answer(status, None, scope, &head)
            }
            Decision::Redirect(location) => self.own_answer(301, Some(&location), scope, &head),
            Decision::Status(format) => self.status_answer(format, scope, &head),
            Decision::Proxy(plan) => {
                // a request dropped before its answer (the client left)
                // is logged as nginx's 499
                let mut log = PendingLog(self.log_record(scope, &head));
                let context = self.error_context(&head, scope, connection.number);
                let request = ProxiedRequest {
                    plan: &plan,
                    context: &context,
                    expect_continue: parsed.expects_continue(),
                };
                match self.proxy(request, &mut body, conn, &mut log.0).await {
                    Ok(Answer::Response(resp)) => resp,
                    Ok(Answer::Tunnel(response, tunnel)) => {
                        let framing = WriteFraming {
                            head_request,
                            keep_alive: false,
                            keepalive_header: None,
                            client_minor: parsed.minor_version,
                        };
                        write_response(conn, response, framing).await;
                        return Next::Tunnel(tunnel);
                    }
                    Err(status) => {
                        // nginx closes a timed-out request's connection
                        // without an answer, and writes nothing to a
                        // client that left
                        let page = if status == REQUEST_TIME_OUT || status == CLIENT_CLOSED {
                            unanswered()
                        } else {
                            error_page(status)
                        };
                        if let Some(mut record) = log.0.take() {
                            record.status = status;
                            // 499: the client left, nothing was sent
                            record.bytes = if status == CLIENT_CLOSED || status == REQUEST_TIME_OUT
                            {
                                0
                            } else {
                                page_bytes(&page, head_request)
                            };
                            record.write();
                        }
                        page
                    }
                }
            }
        };
        let framing = WriteFraming {
            head_request,
            keep_alive,
            keepalive_header: client.keepalive_header,
            client_minor: parsed.minor_version,
        };
        let written = write_response(conn, response, framing).await;
        // an unread body is read and dropped, so that the connection can
        // serve the next request (nginx's discarded body)
        if !written.keep || conn.discard(&mut body).await.is_err() {
            return Next::Close;
        }
        Next::Keep {
            idle: client.keepalive_timeout,
            header: client.header_timeout,
        }
    }

    /// What the error log says about a request.
    fn error_context<'a>(
        &'a self,
        head: &RequestHead<'a>,
        scope: LogScope,
        connection: u64,
    ) -> ErrorContext<'a> {
        ErrorContext {
            connection,
            log_set: self
                .runtime
                .error_log_set(scope)
                .map_or(0, |i| i as u64 + 1),
            client: head.remote,
            server: self.runtime.server_name(scope.server),
            method: head.method,
            target: head.target,
            minor_version: head.minor_version,
            host: head
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("host"))
                .map(|(_, v)| *v),
        }
    }

    /// A response rginx gives itself (an error page, or the 301 to a
    /// location's name with its slash), logged at once as nginx does.
    fn own_answer(
        self: &Arc<Self>,
        status: u16,
        location: Option<&str>,
        scope: LogScope,
        head: &RequestHead<'_>,
    ) -> Response<Body> {
        let mut response = error_page(status);
        if let Some(v) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
            response.headers_mut().insert(http::header::LOCATION, v);
        }
        if let Some(mut record) = self.log_record(scope, head) {
            record.status = status;
            record.bytes = page_bytes(&response, head.method == "HEAD");
            record.write();
        }
        response
    }

    /// The status page (`stub_status`), access-logged like every answer.
    fn status_answer(
        self: &Arc<Self>,
        format: StatusFormat,
        scope: LogScope,
        head: &RequestHead<'_>,
    ) -> Response<Body> {
        let snapshot = crate::status::COUNTERS.snapshot();
        let (text, content_type) = match format {
            StatusFormat::Nginx => (crate::status::stub_status_text(&snapshot), "text/plain"),
            StatusFormat::Prometheus => (
                crate::status::prometheus_text(&snapshot, &crate::status::UPSTREAMS),
                "text/plain; version=0.0.4",
            ),
        };
        let length = text.len();
        let mut response = Response::new(
            Full::new(Bytes::from(text))
                .map_err(|never| match never {})
                .boxed(),
        );
        let headers = response.headers_mut();
        headers.insert(http::header::SERVER, HeaderValue::from_static("rginx"));
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(length));
        if let Some(mut record) = self.log_record(scope, head) {
            record.status = 200;
            record.bytes = page_bytes(&response, head.method == "HEAD");
            record.write();
        }
        response
    }

    /// The request body: a chunked one is read whole first, as nginx's
    /// request buffering does (it is sent with a Content-Length, and one
    /// over client_max_body_size is a 413 before any upstream is
    /// contacted); a sized one streams.
    async fn request_body(
        &self,
        plan: &UpstreamPlan,
        body: &mut BodyReader,
        conn: &mut ClientConn,
        context: &ErrorContext<'_>,
    ) -> Result<RequestBody, u16> {
        match plan.body {
            rginx_core::plan::BodyPlan::Dechunk => {
                let mut held = bytes::BytesMut::new();
                loop {
                    let data = match conn.body_chunk(body).await {
                        Ok(Some(data)) => data,
                        Ok(None) => break,
                        Err(e) => return Err(client_body_status(&e, context)),
                    };
                    let before = held.len() as u64;
                    if plan.max_body > 0 && before + data.len() as u64 > plan.max_body {
                        // nginx's words: what came so far + the chunk
                        // that does not fit
                        tracing::error!(
                            log_set = context.log_set,
                            "*{} client intended to send too large chunked body: {before}+{} bytes{}",
                            context.connection,
                            data.len(),
                            context.describe(None)
                        );
                        return Err(413);
                    }
                    held.extend_from_slice(&data);
                }
                Ok(RequestBody::Held(held.freeze()))
            }
            rginx_core::plan::BodyPlan::None => Ok(RequestBody::Empty),
            _ if body.done() => Ok(RequestBody::Empty),
            _ => Ok(RequestBody::Stream { sent: false }),
        }
    }

    /// How many servers a request may try (nginx's `peer.tries`).
    fn server_count(&self, plan: &UpstreamPlan) -> usize {
        match &plan.target {
            PlanTarget::Addrs(addrs) => addrs.len(),
            PlanTarget::Upstream(name) => self
                .groups
                .get(&name.to_ascii_lowercase())
                .and_then(|g| g.lock().ok().map(|rr| rr.len()))
                .unwrap_or(1),
        }
    }

    /// A new connection to `addr`, within `proxy_connect_timeout`; a
    /// failure is logged in nginx's words.
    async fn connect(
        &self,
        plan: &UpstreamPlan,
        addr: SocketAddr,
        context: &ErrorContext<'_>,
        describe: &Described<'_>,
    ) -> Result<Conn, Failure> {
        let next = plan.next_upstream;
        // an upstream connection takes a slot too (nginx: a 500 without)
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            tracing::error!(
                log_set = context.log_set,
                alert = true,
                "*{} {} worker_connections are not enough while connecting to upstream{describe}",
                context.connection,
                self.slot_count
            );
            return Err(Failure {
                status: 500,
                retry: false,
                sent: false,
            });
        };
        let stream =
            match tokio::time::timeout(plan.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::error!(
                        log_set = context.log_set,
                        "*{} connect() failed ({}) while connecting to upstream{describe}",
                        context.connection,
                        crate::process::os_error(&e)
                    );
                    return Err(Failure {
                        status: 502,
                        retry: next.error,
                        sent: false,
                    });
                }
                Err(_) => {
                    return Err(timed_out(
                        context,
                        "connecting to upstream",
                        describe,
                        next,
                        false,
                    ))
                }
            };
        let _ = stream.set_nodelay(true);
        // proxy_send_timeout, of the request that opened the connection
        let stream = TimedWrites::new(stream, plan.send_timeout);
        Ok(Conn::new(addr, stream, slot))
    }

    /// The next peer for a request; `tried` holds the ones it already had.
    fn peer_for(
        &self,
        plan: &UpstreamPlan,
        tried: &mut Tried,
        attempt: usize,
    ) -> Result<(SocketAddr, Option<(String, crate::balance::Pick)>), u16> {
        match &plan.target {
            PlanTarget::Addrs(addrs) => addrs.get(attempt).map(|a| (*a, None)).ok_or(502),
            PlanTarget::Upstream(name) => {
                let key = name.to_ascii_lowercase();
                let group = self.groups.get(&key).ok_or(502u16)?;
                let mut rr = group.lock().map_err(|_| 500u16)?;
                // none left: nginx's "no live upstreams"
                let pick = rr.pick(Instant::now(), tried).ok_or(502u16)?;
                let addr = rr.peer(pick).ok_or(502u16)?.addr;
                Ok((addr, Some((key, pick))))
            }
        }
    }

    /// An attempt on `addr`, started at `started`, ended: the balancer
    /// learns whether it failed, and the upstream figures count it.
    fn report(
        &self,
        picked: &Option<(String, crate::balance::Pick)>,
        addr: SocketAddr,
        started: Instant,
        failed: bool,
    ) {
        let now = Instant::now();
        let took = now.saturating_duration_since(started);
        match picked {
            Some((key, pick)) => {
                if let Some(Ok(mut rr)) = self.groups.get(key).map(|g| g.lock()) {
                    rr.report(*pick, failed, now);
                    if let Some(peer) = rr.peer(*pick) {
                        peer.stats.observe(failed, took);
                    }
                }
            }
            // a proxy_pass to addresses: found by address (a lock and a
            // lookup, where a group's peers hold theirs)
            None => crate::status::UPSTREAMS
                .peer("", addr)
                .observe(failed, took),
        }
    }

    /// Appends a line to an access log, opening the file on first use.
    fn append_log(&self, path: &str, line: &str) {
        use std::io::Write as _;
        let Ok(mut files) = self.log_files.lock() else {
            return;
        };
        if !files.contains_key(path) {
            // paths with variables can name many files: keep a bounded set
            if files.len() >= 64 {
                files.clear();
            }
            let opened = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path);
            let Ok(file) = opened else { return };
            files.insert(path.to_string(), file);
        }
        if let Some(file) = files.get_mut(path) {
            let _ = file.write_all(line.as_bytes());
        }
    }

    /// The pool of the group a pick came from, if it keeps connections.
    fn pool_of(&self, picked: &Option<(String, crate::balance::Pick)>) -> Option<&Arc<Pool>> {
        picked.as_ref().and_then(|(key, _)| self.pools.get(key))
    }

    async fn proxy(
        self: &Arc<Self>,
        request: ProxiedRequest<'_>,
        client_body: &mut BodyReader,
        conn_client: &mut ClientConn,
        log: &mut Option<LogRecord>,
    ) -> Result<Answer, u16> {
        let ProxiedRequest {
            plan,
            context,
            expect_continue,
        } = request;
        // nginx answers `Expect: 100-continue` once it starts reading the
        // body, also an empty one (ngx_http_read_client_request_body)
        if expect_continue
            && conn_client
                .write(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .is_err()
        {
            return Err(CLIENT_CLOSED);
        }
        let mut body = self
            .request_body(plan, client_body, conn_client, context)
            .await?;
        let next = plan.next_upstream;
        let started = Instant::now();
        // nginx's peer.tries: every server of the group, or fewer
        let servers = self.server_count(plan);
        let allowed = match next.tries {
            0 => servers,
            n => servers.min(usize::try_from(n).unwrap_or(usize::MAX)),
        };
        let mut tried = Tried::default();
        let mut attempt = 0;
        let (head, picked, mut conn, addr, attempt_started) = loop {
            let (addr, picked) = match self.peer_for(plan, &mut tried, attempt) {
                Ok(peer) => peer,
                Err(status) => {
                    if let PlanTarget::Upstream(name) = &plan.target {
                        tracing::error!(
                            log_set = context.log_set,
                            "*{} no live upstreams while connecting to upstream{}",
                            context.connection,
                            context.describe(Some((
                                name as &(dyn std::fmt::Display + Sync),
                                &plan.uri
                            )))
                        );
                    }
                    return Err(status);
                }
            };
            attempt += 1;
            let attempt_started = Instant::now();
            let more = attempt < allowed
                && (next.time_limit.is_zero() || started.elapsed() < next.time_limit);
            if let Some(record) = log.as_mut() {
                record.upstream = Some(addr);
            }
            let describe = context.describe(Some((&addr, &plan.uri)));
            let mut pooled = self.pool_of(&picked).and_then(|pool| pool.take(addr));
            let outcome = loop {
                let from_pool = pooled.is_some();
                let mut conn = match pooled.take() {
                    Some(conn) => conn,
                    None => match self.connect(plan, addr, context, &describe).await {
                        Ok(conn) => conn,
                        Err(failure) => break Err(failure),
                    },
                };
                conn.requests += 1;
                // a stream already sent cannot be sent again
                if !body.resendable() {
                    return Err(502);
                }
                let mut head = Vec::with_capacity(512);
                rginx_http::upstream_request::write_head(
                    &mut head,
                    &plan.method,
                    &plan.uri,
                    plan.version,
                    plan.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
                    plan.length_at.zip(body.length()),
                );
                let limit = usize::try_from(plan.buffer_size).unwrap_or(usize::MAX);
                // proxy_read_timeout runs once the request is sent, its
                // body included (nginx reads a body before it connects)
                let answer = match body.send(&mut conn, head, client_body, conn_client).await {
                    Err(e) => Err(Exchange::Send(e)),
                    // the client may leave while the backend thinks: nginx
                    // notices (its 499) and closes the upstream connection
                    Ok(()) => tokio::select! {
                        read = tokio::time::timeout(plan.read_timeout, conn.read_head(limit)) => match read {
                            Ok(read) => read.map_err(Exchange::Head),
                            Err(_) => Err(Exchange::TimedOut),
                        },
                        () = conn_client.closed() => Err(Exchange::ClientGone),
                    },
                };
                match answer {
                    Ok(head) => break Ok((head, conn)),
                    Err(Exchange::Send(SendError::ClientTimedOut)) => {
                        // the client's body stalled past client_body_timeout
                        // while it streamed: nginx's 408, whatever the
                        // upstream did
                        tracing::info!(
                            log_set = context.log_set,
                            "*{} client timed out (110: Connection timed out) while reading client request body{describe}",
                            context.connection
                        );
                        return Err(REQUEST_TIME_OUT);
                    }
                    Err(Exchange::ClientGone | Exchange::Send(SendError::Client)) => {
                        // nginx's 499: the client closed its connection
                        // while the backend had yet to answer; the backend
                        // connection is closed too
                        tracing::info!(
                            log_set = context.log_set,
                            "*{} client prematurely closed connection, so upstream connection is closed too while reading response header from upstream{describe}",
                            context.connection
                        );
                        return Err(CLIENT_CLOSED);
                    }
                    // a kept connection the backend had closed: nginx tries
                    // again on a new one, without counting a try
                    Err(
                        Exchange::Send(SendError::Upstream)
                        | Exchange::Head(HeadError::Closed { early: true }),
                    ) if from_pool && body.resendable() => continue,
                    Err(Exchange::Head(HeadError::TooBig)) => {
                        tracing::error!(
                            log_set = context.log_set,
                            "*{} upstream sent too big header while reading response header from upstream{describe}",
                            context.connection
                        );
                        break Err(Failure {
                            status: 502,
                            retry: next.invalid_header,
                            sent: true,
                        });
                    }
                    Err(Exchange::Head(HeadError::Invalid)) => {
                        tracing::error!(
                            log_set = context.log_set,
                            "*{} upstream sent invalid header while reading response header from upstream{describe}",
                            context.connection
                        );
                        break Err(Failure {
                            status: 502,
                            retry: next.invalid_header,
                            sent: true,
                        });
                    }
                    Err(Exchange::Send(SendError::Upstream) | Exchange::Head(_)) => {
                        tracing::error!(
                            log_set = context.log_set,
                            "*{} upstream prematurely closed connection while reading response header from upstream{describe}",
                            context.connection
                        );
                        break Err(Failure {
                            status: 502,
                            retry: next.error,
                            sent: true,
                        });
                    }
                    Err(Exchange::TimedOut) => {
                        let during = "reading response header from upstream";
                        break Err(timed_out(context, during, &describe, next, true));
                    }
                }
            };
            match outcome {
                Ok((head, conn)) => {
                    let status = head.status;
                    // a status named in proxy_next_upstream moves on while
                    // servers are left; the last one's answer goes through
                    let resend = body.resendable() && next.may_resend(plan.method.as_str());
                    if next.on_status(status) && more && resend {
                        self.report(
                            &picked,
                            addr,
                            attempt_started,
                            NextUpstream::status_is_failure(status),
                        );
                        continue;
                    }
                    break (head, picked, conn, addr, attempt_started);
                }
                Err(failure) => {
                    self.report(&picked, addr, attempt_started, true);
                    let resend = !failure.sent
                        || (body.resendable() && next.may_resend(plan.method.as_str()));
                    if !(failure.retry && more && resend) {
                        return Err(failure.status);
                    }
                }
            }
        };
        self.report(&picked, addr, attempt_started, false);
        // nginx tunnels only when the client asked for an upgrade and the
        // backend answered 101; otherwise a 101 is an ordinary response
        let switching = head.status == 101;
        let status = head.status;
        let raw = conn.take_head(&head);
        // nginx writes its own headers first, then the backend's, and the
        // backend's status line as it came (reason phrase included)
        let code = StatusCode::from_u16(status).map_err(|_| 502u16)?;
        let mut out = Response::builder().status(code);
        let reason = &raw[head.reason.clone()];
        if code.canonical_reason().map(str::as_bytes) != Some(reason) {
            out = out.extension(Reason(raw.slice(head.reason.clone())));
        }
        // the lines nginx writes in places of its own (Content-Type,
        // Content-Length, Location) go with rginx's headers; the others
        // pass as the backend sent them, in order
        let mut passed = Vec::with_capacity(head.headers.len());
        for span in &head.headers {
            let name = &raw[span.name.clone()];
            let value = &raw[span.value.clone()];
            let Ok(name) = std::str::from_utf8(name) else {
                continue;
            };
            let placed = ["content-type", "content-length", "location"]
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name));
            if placed {
                // nginx writes the length it was given (also for HEAD,
                // whose response has no body to measure)
                if let (Ok(n), Ok(v)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_bytes(value),
                ) {
                    out = out.header(n, v);
                }
            } else if response_header_passes(name) {
                passed.push(span.clone());
            }
        }
        out = out.extension(RawLines {
            head: raw.clone(),
            lines: passed,
        });
        let framing = head.body(&raw, plan.method == "HEAD");
        // the connection may serve another request once this response is
        // read to its end (nginx: HTTP/1.1, and neither side said close)
        let request_close = plan.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("connection") && v.to_ascii_lowercase().contains("close")
        });
        let reusable =
            !switching && plan.version == "HTTP/1.1" && !request_close && head.keeps_alive(&raw);
        if switching && plan.upgrade {
            let (upstream, upstream_early) = conn.into_tunnel();
            let tunnel = TunnelPlan {
                upstream,
                upstream_early,
                idle: plan.read_timeout,
                // the tunnel's log line is written when it closes
                log: log.take(),
                slots: self.slots.clone(),
            };
            let response = out.body(empty_body()).map_err(|_| 502u16)?;
            return Ok(Answer::Tunnel(response, Box::new(tunnel)));
        }
        let pool = self.pool_of(&picked).filter(|_| reusable).cloned();
        let upstream_body = UpstreamBody::new(conn, framing, pool);
        let small = http_body::Body::size_hint(&upstream_body)
            .exact()
            .is_some_and(|n| n <= SMALL_BODY);
        let mut timed = TimedBody::new(upstream_body, plan.read_timeout);
        // a small body is read whole first, as nginx's buffering does: the
        // client then gets head and body in one write, and the upstream
        // connection goes back to its pool at once
        let body: Body = if small {
            match buffered(&mut timed).await {
                Ok(body) => body,
                Err((partial, error)) => {
                    // nginx has sent the head and what came by now; the
                    // client gets the same, then the connection closes
                    let what = if error.is::<crate::timed::TimedOut>() {
                        "upstream timed out (110: Connection timed out)"
                    } else {
                        "upstream prematurely closed connection"
                    };
                    let describe = context.describe(Some((&addr, &plan.uri)));
                    tracing::error!(
                        log_set = context.log_set,
                        "*{} {what} while reading upstream{describe}",
                        context.connection
                    );
                    Truncated::new(partial, error).boxed()
                }
            }
        } else {
            timed.boxed()
        };
        let body = match log.take() {
            None => body,
            Some(mut record) => {
                // count the body as it goes out; the line is written when
                // the body is done (or the client went away)
                record.status = status;
                let mut guard = LogGuard(Some(record));
                body.map_frame(move |frame| {
                    if let (Some(data), Some(r)) = (frame.data_ref(), guard.0.as_mut()) {
                        r.bytes += data.len() as u64;
                    }
                    let _ = &mut guard;
                    frame
                })
                .boxed()
            }
        };
        out.body(body).map(Answer::Response).map_err(|_| 502u16)
    }
}

/// How one exchange with an upstream server failed.
enum Exchange {
    /// Sending the request.
    Send(SendError),
    /// Reading the response head.
    Head(HeadError),
    /// No head within `proxy_read_timeout`.
    TimedOut,
    /// The client closed its connection meanwhile.
    ClientGone,
}

/// Which side failed while a request was sent.
enum SendError {
    /// Writing to the upstream.
    Upstream,
    /// Reading the client's body: it left, or sent one nginx cannot read.
    Client,
    /// The client's body stalled past `client_body_timeout`.
    ClientTimedOut,
}

/// What a proxied request needs besides its body: the plan and the error
/// log's words for it.
struct ProxiedRequest<'a> {
    plan: &'a UpstreamPlan,
    context: &'a ErrorContext<'a>,
    /// The client asked for `100 Continue`.
    expect_continue: bool,
}

/// A proxied request's answer: a response, or a `101` whose connection
/// becomes a tunnel once the head is written.
enum Answer {
    Response(Response<Body>),
    Tunnel(Response<Body>, Box<TunnelPlan>),
}

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

/// The upstream side of a tunnel, and what it needs to run.
pub(crate) struct TunnelPlan {
    /// The upstream stream, with `proxy_send_timeout` on writes.
    upstream: TimedWrites<TcpStream>,
    /// What the upstream sent after its 101 head.
    upstream_early: Bytes,
    /// proxy_read_timeout: the tunnel closes after this long idle.
    idle: Duration,
    /// Written when the tunnel closes, with the bytes sent to the client.
    log: Option<LogRecord>,
    slots: Arc<tokio::sync::Semaphore>,
}

impl TunnelPlan {
    /// Relays between `client` (and what it sent after its request) and
    /// the upstream until either side closes or the tunnel idles out.
    pub(crate) async fn run(
        mut self: Box<Self>,
        client: TimedWrites<TcpStream>,
        client_early: Bytes,
    ) {
        // the upstream connection left its slot with the exchange: the
        // tunnel holds one for it, if it can
        let _slot = self.slots.clone().try_acquire_owned().ok();
        let sent = crate::tunnel::run(
            (client, client_early),
            (self.upstream, self.upstream_early),
            self.idle,
        )
        .await;
        if let Some(record) = self.log.as_mut() {
            record.status = 101;
            record.bytes = sent;
            record.write();
        }
    }
}

/// A body with nothing in it.
fn empty_body() -> Body {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

/// Why an attempt on one server failed.
struct Failure {
    /// What the client gets if no other server is tried.
    status: u16,
    /// Whether `proxy_next_upstream` names this kind of failure.
    retry: bool,
    /// Whether the request had been sent (then only methods nginx
    /// resends go to another server).
    sent: bool,
}

/// Response bodies up to this size are read whole before the response
/// goes out (nginx buffers responses by default, `proxy_buffering on`).
const SMALL_BODY: u64 = 64 * 1024;

/// Reads a small body to its end: the bytes, as a body hyper can send
/// with the head. A backend that breaks off is a 502, as before anything
/// was sent to the client.
async fn buffered<B>(body: &mut B) -> Result<Body, (Bytes, BoxError)>
where
    B: http_body::Body<Data = Bytes, Error = BoxError> + Unpin,
{
    let mut held = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => return Err((held.freeze(), e)),
        };
        if let Ok(data) = frame.into_data() {
            held.extend_from_slice(&data);
        }
    }
    Ok(Full::new(held.freeze())
        .map_err(|never| match never {})
        .boxed())
}

/// nginx's status for a request body that could not be read whole, with
/// its info line: 408 for one that stalled, 400 otherwise.
fn client_body_status(error: &BodyError, context: &ErrorContext<'_>) -> u16 {
    let (status, what) = match error {
        BodyError::TimedOut => (
            REQUEST_TIME_OUT,
            "client timed out (110: Connection timed out)",
        ),
        BodyError::Invalid => (400, "client sent invalid chunked body"),
        BodyError::Closed | BodyError::Io(_) => (400, "client prematurely closed connection"),
    };
    tracing::info!(
        log_set = context.log_set,
        "*{} {what} while reading client request body{}",
        context.connection,
        context.describe(None)
    );
    status
}

/// A request nginx closes without an answer (a stalled body, a client
/// that left): nothing is written.
fn unanswered() -> Response<Body> {
    let mut response = Response::new(empty_body());
    response.extensions_mut().insert(Unanswered);
    response.extensions_mut().insert(OwnPage);
    response
}

/// A body whose upstream failed part way: the bytes that came, then the
/// error, which makes hyper close the client connection (the response
/// head promised more).
struct Truncated {
    data: Option<Bytes>,
    /// hyper writes out what it holds only when the body waits: it waits
    /// once before the error, or the head and the bytes would be lost.
    flushed: bool,
    error: Option<BoxError>,
}

impl Truncated {
    fn new(data: Bytes, error: BoxError) -> Truncated {
        Truncated {
            data: (!data.is_empty()).then_some(data),
            flushed: false,
            error: Some(error),
        }
    }
}

impl http_body::Body for Truncated {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(data) = this.data.take() {
            return std::task::Poll::Ready(Some(Ok(http_body::Frame::data(data))));
        }
        if !this.flushed {
            this.flushed = true;
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        std::task::Poll::Ready(this.error.take().map(Err))
    }
}

/// A timeout talking to an upstream, logged in nginx's words: a 504,
/// tried elsewhere when `proxy_next_upstream` names `timeout`.
fn timed_out(
    context: &ErrorContext<'_>,
    during: &str,
    describe: &Described<'_>,
    next: NextUpstream,
    sent: bool,
) -> Failure {
    tracing::error!(
        log_set = context.log_set,
        "*{} upstream timed out (110: Connection timed out) while {during}{describe}",
        context.connection
    );
    Failure {
        status: 504,
        retry: next.timeout,
        sent,
    }
}

/// The request body as it goes upstream: none, bytes held (which can be
/// sent again to another server), or the client's body still on its
/// connection (streamed once: `sent` after that).
enum RequestBody {
    Empty,
    Held(Bytes),
    Stream { sent: bool },
}

impl RequestBody {
    /// Sends `head` and the body on `conn`: held bytes go with the head in
    /// one write, a stream as it comes from the client (once: it cannot
    /// be sent again).
    async fn send(
        &mut self,
        conn: &mut Conn,
        mut head: Vec<u8>,
        body: &mut BodyReader,
        client: &mut ClientConn,
    ) -> Result<(), SendError> {
        match self {
            RequestBody::Empty => conn.write(&head).await.map_err(|_| SendError::Upstream),
            RequestBody::Held(bytes) => {
                head.extend_from_slice(bytes);
                conn.write(&head).await.map_err(|_| SendError::Upstream)
            }
            RequestBody::Stream { sent } => {
                if *sent {
                    return Err(SendError::Upstream);
                }
                *sent = true;
                // what came with the head goes with it
                if let Ok(Some(first)) = client.take_ready(body) {
                    head.extend_from_slice(&first);
                }
                conn.write(&head).await.map_err(|_| SendError::Upstream)?;
                loop {
                    match client.body_chunk(body).await {
                        Ok(Some(data)) => {
                            conn.write(&data).await.map_err(|_| SendError::Upstream)?
                        }
                        Ok(None) => break,
                        Err(BodyError::TimedOut) => return Err(SendError::ClientTimedOut),
                        Err(_) => return Err(SendError::Client),
                    }
                }
                conn.flush().await.map_err(|_| SendError::Upstream)
            }
        }
    }

    /// Whether another attempt can send it again.
    fn resendable(&self) -> bool {
        !matches!(self, RequestBody::Stream { sent: true })
    }

    /// The length of a held body (sent as `Content-Length`).
    fn length(&self) -> Option<u64> {
        match self {
            RequestBody::Held(bytes) => Some(bytes.len() as u64),
            _ => None,
        }
    }
}

/// Everything an access log line needs, kept past the request handler.
struct LogRecord {
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
    start: Instant,
    status: u16,
    bytes: u64,
    upstream: Option<SocketAddr>,
}

impl LogRecord {
    /// Appends the lines to the location's access logs.
    fn write(&self) {
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
        };
        let facts = rginx_core::plan::ResponseFacts {
            status: self.status,
            body_bytes_sent: self.bytes,
            bytes_sent: self.bytes,
            request_time: self.start.elapsed(),
            upstream_addr: self.upstream,
        };
        for (path, line) in self
            .engine
            .runtime
            .access_log_lines(self.scope, &head, &facts)
        {
            self.engine.append_log(&path, &line);
        }
    }
}

/// A proxied request's record while the answer is being made: written
/// with nginx's 499 when the request is dropped first (its client left).
struct PendingLog(Option<LogRecord>);

impl Drop for PendingLog {
    fn drop(&mut self) {
        if let Some(mut record) = self.0.take() {
            record.status = CLIENT_CLOSED;
            record.bytes = 0;
            record.write();
        }
    }
}

/// Writes its record when dropped: at the end of a response body, or when
/// the client goes away first.
struct LogGuard(Option<LogRecord>);

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(record) = self.0.take() {
            record.write();
        }
    }
}

impl Engine {
    fn log_record(self: &Arc<Self>, scope: LogScope, head: &RequestHead<'_>) -> Option<LogRecord> {
        if !self.runtime.has_access_logs(scope) {
            return None;
        }
        Some(LogRecord {
            engine: self.clone(),
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
            start: Instant::now(),
            status: 0,
            bytes: 0,
            upstream: None,
        })
    }
}

/// 16 bytes for `$request_id`, from the clock and a counter (unique per
/// process, not secret).
fn request_id() -> [u8; 16] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&t.to_be_bytes());
    id[8..].copy_from_slice(&n.to_be_bytes());
    id
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

/// The body bytes an error page sends (none for HEAD), for the log.
fn page_bytes(page: &Response<Body>, head_request: bool) -> u64 {
    if head_request {
        return 0;
    }
    http_body::Body::size_hint(page.body()).exact().unwrap_or(0)
}

/// The HTML of nginx's error page for a status; `detail` is the second
/// line of its special pages ("Request Header Or Cookie Too Large").
pub(crate) fn page_html(status: u16, detail: Option<&str>) -> String {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let heading = format!("{} {}", code.as_u16(), nginx_reason(code));
    match detail {
        None => format!(
            "<html>\r\n<head><title>{heading}</title></head>\r\n<body>\r\n<center><h1>{heading}</h1></center>\r\n<hr><center>rginx</center>\r\n</body>\r\n</html>\r\n"
        ),
        Some(detail) => format!(
            "<html>\r\n<head><title>{} {detail}</title></head>\r\n<body>\r\n<center><h1>{heading}</h1></center>\r\n<center>{detail}</center>\r\n<hr><center>rginx</center>\r\n</body>\r\n</html>\r\n",
            code.as_u16()
        ),
    }
}

/// A whole response rginx writes on the socket itself, for a request hyper
/// never sees (a head nginx refuses before reading on): nginx's page, then the
/// connection closes.
pub(crate) fn refusal(limit: rginx_http::head_scan::HeadRefusal) -> Vec<u8> {
    use rginx_http::head_scan::HeadRefusal;
    let status = limit.status();
    let page = match limit {
        HeadRefusal::Headers => page_html(status, Some("Request Header Or Cookie Too Large")),
        _ => page_html(status, None),
    };
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    format!(
        "HTTP/1.1 {status} {}\r\nServer: rginx\r\nDate: {}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
        nginx_reason(code),
        http_date(std::time::SystemTime::now()),
        page.len()
    )
    .into_bytes()
}

/// An HTTP date (`Wed, 25 Nov 2026 22:27:17 GMT`).
fn http_date(t: std::time::SystemTime) -> String {
    crate::date::format(t)
}

/// nginx's error page layout for a status.
fn error_page(status: u16) -> Response<Body> {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let page = page_html(status, None);
    let page_len = page.len();
    let mut resp = Response::new(
        Full::new(Bytes::from(page))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = code;
    resp.extensions_mut().insert(OwnPage);
    let headers = resp.headers_mut();
    headers.insert(http::header::SERVER, HeaderValue::from_static("rginx"));
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html"),
    );
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(page_len));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_rfc_1123() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_645_637);
        assert_eq!(http_date(t), "Wed, 25 Nov 2026 22:27:17 GMT");
        assert_eq!(
            http_date(std::time::UNIX_EPOCH),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }
}
