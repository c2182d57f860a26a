//! The engine: one per worker thread (nginx's worker process), serving the
//! requests its connections read ([`crate::http1`]) with the plans
//! `rginx_core::plan::Runtime` computes.
//!
//! A request goes through phases around one context ([`request::Session`]),
//! each in its own module, as nginx's phase engine and Pingora's
//! `process_request` do:
//!
//! 1. read the head (nginx's checks and timers: [`crate::http1::conn`]);
//! 2. find the server and the location ([`request`]: the runtime's
//!    decision; an internal redirect will re-enter here);
//! 3. access phases (none yet);
//! 4. the content handler: rginx's own answers ([`own`]: error pages, the
//!    slash redirect, `stub_status`) or the proxy ([`proxy`]);
//! 5. upstream ([`attempt`]): pick a peer, connect or reuse a kept
//!    connection, send, read the response head, retry as
//!    `proxy_next_upstream` allows;
//! 6. response filters ([`response`]): the backend's head as nginx passes
//!    it, the body buffered when small;
//! 7. the body, written by [`crate::http1::write`]; or a tunnel
//!    ([`upgrade`]) after a `101`;
//! 8. the log ([`log`]): one access log line per request, written once at
//!    its end from the context.
//!
//! Every failure on the way is one [`error::ProxyError`]: it says which side
//! failed and how, and alone decides the status, the error log line and
//! whether another server may be tried.

mod accel;
mod attempt;
mod context;
mod error;
mod error_page;
mod filter;
mod log;
mod own;
mod proxy;
mod refused;
mod request;
mod response;
mod upgrade;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use rginx_core::model::Model;
use rginx_core::plan::Runtime;
use tokio::net::TcpStream;

use crate::balance::RoundRobin;
use crate::http1::ClientConnection;
use crate::pool::Pool;

pub(crate) use own::{refusal, signature};
pub(crate) use request::Next;
pub(crate) use upgrade::TunnelPlan;

/// Everything a connection needs: the compiled configuration and the
/// upstream groups' balancing state.
pub struct Engine {
    runtime: Runtime,
    /// The upstream groups, in the configuration's order.
    groups: Vec<Group>,
    /// Where each group is in `groups`, by its name in lower case.
    group_index: foldhash::HashMap<String, usize>,
    /// Access log files and their writer thread.
    access_logs: crate::access_log::AccessLogFiles,
    /// Open connections allowed, clients and upstreams together:
    /// `worker_connections` (512) for each runtime thread, as nginx counts
    /// them per worker process.
    slots: Arc<tokio::sync::Semaphore>,
    /// Its size, for the alert.
    slot_count: usize,
    /// One resolver (with its cache) for each `resolver` directive, in
    /// the runtime's order.
    resolvers: Vec<rginx_dns::Resolver>,
    /// What the sockets that say `ssl` offer (one plan shared by the
    /// engines of a configuration).
    tls: Option<Arc<crate::tls::TlsPlan>>,
}

/// An upstream group's state in an engine.
struct Group {
    /// Its balancer (shared with the leases of requests in progress).
    balancer: Arc<Mutex<RoundRobin>>,
    /// Its idle connections, with `keepalive N`.
    pool: Option<Arc<Pool>>,
}

/// A worker's engine now: each request takes it from here, and a reload
/// puts the new configuration's engine in its place. The worker's parked
/// connections live here too, since they outlive the engine.
pub struct EngineCell {
    engine: RwLock<Arc<Engine>>,
    /// The worker's parked idle keep-alive connections (they outlive
    /// reloads, as the cell does).
    pub(crate) parked: crate::http1::park::ParkedSet,
}

impl EngineCell {
    /// A cell holding `engine`.
    pub fn new(engine: Arc<Engine>) -> EngineCell {
        EngineCell {
            engine: RwLock::new(engine),
            parked: Default::default(),
        }
    }

    /// How many of the worker's connections are parked now.
    pub fn parked(&self) -> usize {
        self.parked.len()
    }

    /// The engine now.
    pub fn get(&self) -> Arc<Engine> {
        self.engine
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Puts `engine` in place; the one it replaces comes back.
    pub fn replace(&self, engine: Arc<Engine>) -> Arc<Engine> {
        std::mem::replace(
            &mut *self.engine.write().unwrap_or_else(PoisonError::into_inner),
            engine,
        )
    }
}

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
        let mut groups = Vec::new();
        let mut group_index = foldhash::HashMap::default();
        for u in model.http.iter().flat_map(|h| &h.upstreams) {
            // a name defined twice is refused by the check; the first wins
            group_index
                .entry(u.name.to_ascii_lowercase())
                .or_insert(groups.len());
            groups.push(Group {
                balancer: Arc::new(Mutex::new(RoundRobin::new(u))),
                pool: Pool::for_group(u).map(Arc::new),
            });
        }
        let resolvers = runtime
            .resolvers()
            .iter()
            .map(|r| rginx_dns::Resolver::new(r.servers.clone(), r.valid, r.ipv6))
            .collect();
        Engine {
            resolvers,
            runtime,
            groups,
            group_index,
            access_logs: crate::access_log::AccessLogFiles::new(),
            slots: Arc::new(tokio::sync::Semaphore::new(slot_count)),
            slot_count,
            tls: None,
        }
    }

    /// The engine with the configuration's TLS plan (`None`: no socket
    /// says `ssl`).
    pub fn with_tls(mut self, tls: Option<Arc<crate::tls::TlsPlan>>) -> Engine {
        self.tls = tls;
        self
    }

    /// Opens the access log files named without variables, so that they
    /// are open before the process gives up root; nginx's words on failure.
    /// Files `previous` (the engine a reload replaces) has open are shared.
    pub fn open_logs(&self, previous: Option<&Engine>) -> Result<(), String> {
        self.access_logs.open(
            self.runtime.static_access_logs(),
            previous.map(|p| &p.access_logs),
        )
    }

    /// The access log files named without variables.
    pub fn static_access_log_paths(&self) -> Vec<String> {
        self.runtime
            .static_access_logs()
            .into_iter()
            .map(|(path, _)| path)
            .collect()
    }

    /// `server_tokens` of the default server on `local`, for answers
    /// given before a request's server is known.
    pub fn server_tokens(&self, local: SocketAddr) -> bool {
        self.runtime.socket_client_settings(local).server_tokens
    }

    /// The temp directories bodies may be written to.
    pub fn temp_paths(&self) -> Vec<&rginx_core::model::TempPath> {
        self.runtime.temp_paths()
    }

    /// Opens the access log files again (`rginx -s reopen`, after
    /// logrotate moved them); those named with variables are opened again
    /// on their next line.
    pub fn reopen_logs(&self) -> Result<(), String> {
        self.access_logs.reopen()
    }

    /// Writes the access logs' buffers and stops their writer: the
    /// worker is ending.
    pub fn close_logs(&self) {
        self.access_logs.close();
    }

    /// Closes the idle upstream connections of an engine a reload
    /// replaced (the requests it still serves keep theirs).
    pub fn retire(&self) {
        for pool in self.groups.iter().filter_map(|g| g.pool.as_ref()) {
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
        let number = crate::status::COUNTERS.next_number();
        let connection = ClientConnection {
            number,
            local,
            remote,
            served: 0,
            opened: crate::http1::uptime_ms(),
            plain_on_tls: false,
        };
        // the first request's head is due within client_header_timeout of
        // the accept, a TLS handshake included (nginx sets the timer once)
        let deadline =
            tokio::time::Instant::now() + self.runtime.socket_client_settings(local).header_timeout;
        let tls_socket = self.runtime.socket_index(local).filter(|socket| {
            self.tls
                .as_ref()
                .is_some_and(|plan| plan.speaks_tls(*socket))
        });
        let Some(socket) = tls_socket else {
            tokio::spawn(crate::http1::serve(
                current,
                self,
                Box::new(stream),
                connection,
                quit,
                slot,
                deadline,
            ));
            return;
        };
        tokio::spawn(async move {
            let Some(plan) = self.tls.clone() else {
                return;
            };
            let choose = crate::tls::accept::chooser(&plan, &self.runtime, socket, local);
            let started = crate::tls::accept::start(stream, deadline, choose).await;
            let (stream, connection): (crate::transport::Stream, _) = match started {
                Ok(crate::tls::accept::Start::Tls(conn)) => (conn, connection),
                Ok(crate::tls::accept::Start::Plain(tcp)) => (
                    Box::new(tcp),
                    ClientConnection {
                        plain_on_tls: true,
                        ..connection
                    },
                ),
                Err(e) => {
                    self.log_handshake_failed(&connection, &e);
                    return;
                }
            };
            crate::http1::serve(current, self, stream, connection, quit, slot, deadline).await;
        });
    }

    /// The `log_set` field of the error log lines about `scope`: 0 for
    /// the main level's `error_log` list, N for the runtime's list N-1.
    pub(crate) fn log_set(&self, scope: rginx_core::plan::LogScope) -> u64 {
        self.runtime
            .error_log_set(scope)
            .map_or(0, |i| i as u64 + 1)
    }

    /// The client settings of the server a socket defaults to.
    pub(crate) fn socket_client_settings(
        &self,
        local: SocketAddr,
    ) -> rginx_core::plan::ClientSettings {
        self.runtime.socket_client_settings(local)
    }
}
