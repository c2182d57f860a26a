//! The running instance: the worker threads (nginx's worker processes),
//! the listening sockets, and what the operator's signals do.
//!
//! - `SIGHUP` reloads: the new configuration is read and validated, its
//!   new sockets bound and its logs opened; only when all of that worked
//!   does each worker's [`EngineCell`] get the new engine. Requests from
//!   then on use it, at once, also on kept-alive connections; requests in
//!   flight and open tunnels go on untouched; sockets on addresses both
//!   configurations listen on are never closed. On any error the old
//!   configuration goes on serving and the error is logged.
//! - `SIGQUIT` stops gracefully: the listening sockets close, idle
//!   connections close, requests in flight finish, tunnels stay until they
//!   close or `worker_shutdown_timeout` passes.
//! - `SIGTERM` and `SIGINT` stop at once; `SIGUSR1` reopens the log files.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rginx_core::model::{ErrorLog, Model, Value};
use rginx_core::plan::Runtime;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::engine::{Engine, EngineCell};
use crate::errlog::ErrorLogHandle;
use crate::process::os_error;
use crate::status::COUNTERS;

/// A connection handed from the accepting worker to another.
type Handover = (std::net::TcpStream, SocketAddr);

/// A configuration made ready to serve: one engine per worker, and what
/// the process takes from it.
pub struct Generation {
    engines: Vec<Arc<Engine>>,
    /// The main level's `error_log` list.
    error_log: Vec<ErrorLog>,
    /// `worker_shutdown_timeout`, if set.
    shutdown_timeout: Option<Duration>,
    /// `worker_processes` as configured (the thread count is fixed at
    /// start).
    workers_wanted: usize,
}

impl Generation {
    /// Builds `workers` engines for a validated model: the model is
    /// compiled once, and each further worker gets a copy (compiled
    /// regexes and a map's key table are shared by the copies; each
    /// thread has its own regex match data). `default_error_log` (`-e`)
    /// is the main error log when the main context names none.
    pub fn build(
        model: &Model,
        hostname: &str,
        workers: usize,
        default_error_log: Option<&str>,
    ) -> Result<Generation, String> {
        let runtime = Runtime::new(model, hostname).map_err(|e| e.to_string())?;
        // certificates and keys are read here, once, by the master (the
        // keys may be root's only); the workers share the plan
        let (tls, findings) = crate::tls::build(model);
        if let Some(error) = findings.iter().find(|d| d.is_error()) {
            return Err(error.message.clone());
        }
        let engine = |runtime: Runtime| Engine::new(model, runtime, 1).with_tls(tls.clone());
        let mut engines: Vec<Arc<Engine>> = (1..workers.max(1))
            .map(|_| Arc::new(engine(runtime.clone())))
            .collect();
        engines.insert(0, Arc::new(engine(runtime)));
        let error_log = match (
            model.main.get("error_log").map(|s| &s.value),
            default_error_log,
        ) {
            (Some(Value::ErrorLogs(logs)), _) => logs.clone(),
            (_, Some(path)) => vec![ErrorLog {
                path: path.to_string(),
                level: rginx_core::model::LogLevel::Error,
            }],
            _ => Vec::new(),
        };
        let shutdown_timeout = match model.main.get("worker_shutdown_timeout").map(|s| &s.value) {
            Some(Value::Time(t)) => Some(*t),
            _ => None,
        };
        Ok(Generation {
            engines,
            error_log,
            shutdown_timeout,
            workers_wanted: worker_count(model),
        })
    }

    /// Its engines (what a reload shares open log files with).
    pub fn engines(&self) -> &[Arc<Engine>] {
        &self.engines
    }

    /// `worker_processes`: how many worker processes serve it.
    pub fn worker_processes(&self) -> usize {
        self.workers_wanted
    }

    /// The main level's `error_log` list and the lists of the other
    /// levels, for [`crate::errlog::ErrorLogSubscriber::open`].
    pub fn error_logs(&self) -> (&[ErrorLog], &[Vec<ErrorLog>]) {
        let others = self.engines.first().map_or(&[][..], |e| e.error_log_sets());
        (&self.error_log, others)
    }

    /// The addresses its servers listen on.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.engines
            .first()
            .map(|e| e.listen_addrs())
            .unwrap_or_default()
    }

    /// Opens the access log files named without variables (those the
    /// engines of `previous` have open are shared, not opened again: the
    /// process may no longer be allowed to open them).
    pub fn open_logs(&self, previous: &[Arc<Engine>]) -> Result<(), String> {
        self.engines
            .iter()
            .enumerate()
            .try_for_each(|(i, e)| e.open_logs(previous.get(i).map(|p| &**p)))
    }

    /// The log files (error and access logs named without variables).
    pub fn log_paths(&self) -> Vec<std::path::PathBuf> {
        let (main, others) = self.error_logs();
        let mut paths: Vec<std::path::PathBuf> = main
            .iter()
            .chain(others.iter().flatten())
            .filter(|l| l.path != "stderr")
            .map(|l| l.path.clone().into())
            .collect();
        if let Some(engine) = self.engines.first() {
            paths.extend(engine.static_access_log_paths().into_iter().map(Into::into));
        }
        paths.sort();
        paths.dedup();
        paths
    }
}

impl Generation {
    /// Creates the temp directories bodies may be written to, given to
    /// the workers' `owner` (uid, gid) when running as root, as nginx's
    /// `ngx_create_paths` does before its workers start: what failed.
    pub fn create_temp_dirs(&self, owner: Option<(u32, u32)>) -> Vec<String> {
        match self.engines.first() {
            Some(engine) => crate::spool::create_dirs(&engine.temp_paths(), owner),
            None => Vec::new(),
        }
    }
}

/// The number of worker processes a model asks for (`worker_processes`:
/// 1 when not given, as nginx's default; `auto`: one per core).
pub fn worker_count(model: &Model) -> usize {
    match model.main.get("worker_processes").map(|s| &s.value) {
        Some(Value::Number(n)) => usize::try_from(*n).unwrap_or(1).max(1),
        Some(_) => std::thread::available_parallelism().map_or(1, |n| n.get()),
        None => 1,
    }
}

/// Binds a listening address (backlog 511, as nginx). A socket that
/// cannot be bound is reported as nginx does (`bind() to ADDR failed (98:
/// Address already in use)`).
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, String> {
    use socket2::{Domain, Socket, Type};
    let failed = |e: io::Error| format!("bind() to {addr} failed ({})", os_error(&e));
    // no tokio here: a runtime made in the master would set up tokio's
    // signal pipe, which every forked worker would then share
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(failed)?;
    socket.set_reuse_address(true).map_err(failed)?;
    // nginx's `ipv6only=on`, the default: [::]:80 beside 0.0.0.0:80
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(failed)?;
    }
    socket.set_nonblocking(true).map_err(failed)?;
    socket.bind(&addr.into()).map_err(failed)?;
    socket.listen(511).map_err(failed)?;
    Ok(socket.into())
}

/// One worker: its engine now, and where connections are handed to it.
struct Worker {
    engine: Arc<EngineCell>,
    inbox: mpsc::UnboundedSender<Handover>,
}

/// The running instance (see the module's documentation).
pub struct Instance {
    workers: Vec<Worker>,
    /// Whose turn it is to take an accepted connection.
    next: AtomicUsize,
    /// The accept loops, by listening address.
    listeners: Mutex<HashMap<SocketAddr, tokio::task::JoinHandle<()>>>,
    /// The first worker's runtime, where the accept loops run.
    acceptor: tokio::runtime::Handle,
    /// Turns true for a graceful shutdown.
    quit: watch::Sender<bool>,
    /// The error log's targets, replaced on reload.
    error_log: Option<ErrorLogHandle>,
    /// The current `worker_shutdown_timeout`.
    shutdown_timeout: Mutex<Option<Duration>>,
}

/// The signals the instance obeys, made before the workers start so that
/// none of them kills the process meanwhile.
pub struct Signals {
    runtime: tokio::runtime::Runtime,
    hup: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
}

impl Signals {
    /// Takes over SIGHUP, SIGQUIT, SIGTERM, SIGINT and SIGUSR1.
    pub fn take() -> io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let _entered = runtime.enter();
        Ok(Signals {
            hup: signal(SignalKind::hangup())?,
            quit: signal(SignalKind::quit())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            usr1: signal(SignalKind::user_defined1())?,
            runtime,
        })
    }
}

impl Instance {
    /// Starts one thread per engine of `generation`, each with its own
    /// current-thread runtime; the first accepts on `listeners` and hands
    /// connections to all in turn.
    pub fn start(
        generation: Generation,
        listeners: Vec<std::net::TcpListener>,
        error_log: Option<ErrorLogHandle>,
    ) -> io::Result<Arc<Instance>> {
        let mut runtimes = Vec::new();
        let mut workers = Vec::new();
        let mut inboxes = Vec::new();
        for engine in &generation.engines {
            runtimes.push(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?,
            );
            let (sender, receiver) = mpsc::unbounded_channel();
            workers.push(Worker {
                engine: Arc::new(EngineCell::new(engine.clone())),
                inbox: sender,
            });
            inboxes.push(receiver);
        }
        let acceptor = match runtimes.first() {
            Some(rt) => rt.handle().clone(),
            None => return Err(io::Error::other("no worker")),
        };
        let instance = Arc::new(Instance {
            workers,
            next: AtomicUsize::new(0),
            listeners: Mutex::new(HashMap::new()),
            acceptor,
            quit: watch::channel(false).0,
            error_log,
            shutdown_timeout: Mutex::new(generation.shutdown_timeout),
        });
        for listener in listeners {
            let addr = listener.local_addr()?;
            instance.listen(addr, listener);
        }
        for (index, (rt, inbox)) in runtimes.into_iter().zip(inboxes).enumerate() {
            let instance = instance.clone();
            std::thread::Builder::new()
                .name(format!("rginx-worker-{index}"))
                .spawn(move || rt.block_on(instance.serve_inbox(index, inbox)))?;
        }
        Ok(instance)
    }

    /// Starts accepting on `listener` (on the first worker's runtime).
    fn listen(self: &Arc<Self>, addr: SocketAddr, listener: std::net::TcpListener) {
        let instance = self.clone();
        let task = self.acceptor.spawn(async move {
            if let Ok(listener) = TcpListener::from_std(listener) {
                instance.accept_loop(listener).await;
            }
        });
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(addr, task);
    }

    async fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        loop {
            let Ok((stream, remote)) = listener.accept().await else {
                // out of descriptors or the like: pause instead of
                // spinning, as nginx disables accept for a moment
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            COUNTERS.accepted();
            // the workers take connections in turn: an even share each,
            // where sockets shared by all would let the busiest take most
            let turn = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len().max(1);
            if turn == 0 {
                self.serve(0, stream, remote);
            } else if let (Some(worker), Ok(stream)) = (self.workers.get(turn), stream.into_std()) {
                let _ = worker.inbox.send((stream, remote));
            }
        }
    }

    /// Serves the connections handed to worker `index`.
    async fn serve_inbox(
        self: Arc<Self>,
        index: usize,
        mut inbox: mpsc::UnboundedReceiver<Handover>,
    ) {
        while let Some((stream, remote)) = inbox.recv().await {
            if let Ok(stream) = TcpStream::from_std(stream) {
                self.serve(index, stream, remote);
            }
        }
    }

    fn serve(&self, index: usize, stream: TcpStream, remote: SocketAddr) {
        if let Some(worker) = self.workers.get(index) {
            worker.engine.get().serve_connection(
                worker.engine.clone(),
                stream,
                remote,
                self.quit.subscribe(),
            );
        }
    }

    /// The number of worker threads.
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// Serves `generation` from now on (see the module's documentation);
    /// on an error nothing changes.
    pub fn reload(self: &Arc<Self>, generation: Generation) -> Result<(), String> {
        if generation.workers_wanted != self.workers.len() {
            tracing::warn!(
                "worker_processes changes to {} at the next start; {} worker threads go on",
                generation.workers_wanted,
                self.workers.len()
            );
        }
        let wanted = generation.listen_addrs();
        let mut fresh = Vec::new();
        {
            let listening = self
                .listeners
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for addr in &wanted {
                if !listening.contains_key(addr) {
                    fresh.push((*addr, bind(*addr)?));
                }
            }
        }
        let previous: Vec<Arc<Engine>> = self.workers.iter().map(|w| w.engine.get()).collect();
        generation.open_logs(&previous)?;
        if let Some(handle) = &self.error_log {
            let (main, others) = generation.error_logs();
            handle
                .replace(main, others)
                .map_err(|e| format!("cannot open the error log ({})", os_error(&e)))?;
        }
        // nothing can fail from here on
        for (worker, engine) in self.workers.iter().zip(&generation.engines) {
            worker.engine.replace(engine.clone()).retire();
        }
        *self
            .shutdown_timeout
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = generation.shutdown_timeout;
        for (addr, listener) in fresh {
            self.listen(addr, listener);
        }
        let mut listening = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        listening.retain(|addr, task| {
            let keep = wanted.contains(addr);
            if !keep {
                task.abort();
            }
            keep
        });
        Ok(())
    }

    /// Opens the log files again (`SIGUSR1`).
    pub fn reopen_logs(&self) -> Result<(), String> {
        if let Some(handle) = &self.error_log {
            handle
                .reopen()
                .map_err(|e| format!("cannot reopen the error log ({})", os_error(&e)))?;
        }
        self.workers
            .iter()
            .try_for_each(|w| w.engine.get().reopen_logs())
    }

    /// Stops accepting and lets every open connection finish: returns
    /// once none is left, or `worker_shutdown_timeout` passed.
    pub async fn drain(&self) {
        {
            let mut listening = self
                .listeners
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for (_, task) in listening.drain() {
                task.abort();
            }
        }
        self.quit.send_replace(true);
        let limit = *self
            .shutdown_timeout
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let started = tokio::time::Instant::now();
        while rginx_core::stats::open_here() > 0 {
            if limit.is_some_and(|limit| started.elapsed() >= limit) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A worker process's part: obeys its master's signals until one stops
    /// it. `SIGQUIT` drains (nginx's graceful shutdown: no more accepting,
    /// idle keep-alive connections closed, requests finished, tunnels
    /// given `worker_shutdown_timeout`), `SIGTERM` and `SIGINT` end at
    /// once, `SIGUSR1` reopens the logs; a reload is the master's (it
    /// starts new workers and quits this one).
    pub fn work(self: &Arc<Self>, mut signals: Signals) {
        self.obey_worker_signals(&mut signals);
        self.close_logs();
    }

    /// Writes what the access logs' buffers hold and stops their writers
    /// (nginx flushes buffered logs when a worker's cycle ends).
    pub fn close_logs(&self) {
        for worker in &self.workers {
            worker.engine.get().close_logs();
        }
    }

    fn obey_worker_signals(self: &Arc<Self>, signals: &mut Signals) {
        let runtime = &signals.runtime;
        runtime.block_on(async {
            loop {
                tokio::select! {
                    _ = signals.hup.recv() => {}
                    _ = signals.usr1.recv() => {
                        tracing::info!(notice = true, "reopening logs");
                        if let Err(e) = self.reopen_logs() {
                            tracing::error!(alert = true, "{e}");
                        }
                    }
                    _ = signals.quit.recv() => {
                        tracing::info!(notice = true, "gracefully shutting down");
                        self.drain().await;
                        tracing::info!(notice = true, "exiting");
                        return;
                    }
                    _ = signals.term.recv() => {
                        tracing::info!(notice = true, "exiting");
                        return;
                    }
                    _ = signals.int.recv() => {
                        tracing::info!(notice = true, "exiting");
                        return;
                    }
                }
            }
        })
    }

    /// Obeys signals until one stops the instance (graceful or fast,
    /// both then exit the process). `load` reads and
    /// validates the configuration again for a reload, giving its errors
    /// as nginx's lines (`[emerg] ... in FILE:LINE`).
    pub fn control(
        self: &Arc<Self>,
        mut signals: Signals,
        load: impl FnMut(usize) -> Result<Generation, Vec<String>>,
    ) {
        self.obey_signals(&mut signals, load);
        self.close_logs();
    }

    fn obey_signals(
        self: &Arc<Self>,
        signals: &mut Signals,
        mut load: impl FnMut(usize) -> Result<Generation, Vec<String>>,
    ) {
        let runtime = &signals.runtime;
        runtime.block_on(async {
            loop {
                tokio::select! {
                    _ = signals.hup.recv() => {
                        tracing::info!(notice = true, "signal 1 (SIGHUP) received, reconfiguring");
                        match load(self.workers.len()) {
                            Ok(generation) => match self.reload(generation) {
                                Ok(()) => tracing::info!(notice = true, "reconfigured"),
                                Err(e) => tracing::error!(emerg = true, "{e}"),
                            },
                            Err(lines) => {
                                for line in lines {
                                    tracing::error!(emerg = true, "{line}");
                                }
                            }
                        }
                    }
                    _ = signals.usr1.recv() => {
                        tracing::info!(notice = true, "signal 10 (SIGUSR1) received, reopening logs");
                        if let Err(e) = self.reopen_logs() {
                            tracing::error!(alert = true, "{e}");
                        }
                    }
                    _ = signals.quit.recv() => {
                        tracing::info!(notice = true, "signal 3 (SIGQUIT) received, shutting down");
                        tracing::info!(notice = true, "gracefully shutting down");
                        self.drain().await;
                        return;
                    }
                    _ = signals.term.recv() => {
                        tracing::info!(notice = true, "signal 15 (SIGTERM) received, exiting");
                        return;
                    }
                    _ = signals.int.recv() => {
                        tracing::info!(notice = true, "signal 2 (SIGINT) received, exiting");
                        return;
                    }
                }
            }
        })
    }
}
