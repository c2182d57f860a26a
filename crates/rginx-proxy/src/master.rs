//! nginx's master process (`ngx_master_process_cycle`): it keeps the
//! privileges it was started with, holds the listening sockets, forks the
//! worker processes (each runs an [`Instance`] as `user`) and obeys the
//! operator's signals:
//!
//! - `SIGHUP`: the configuration is read again (as root: root-only files
//!   are readable), its new sockets bound and its logs opened; then new
//!   workers start and the old ones get `SIGQUIT` (they drain under
//!   `worker_shutdown_timeout`). When anything fails the old workers go on
//!   and the error is logged with its file and line; `rginx -s reload` is
//!   told either way ([`ReloadReply`]).
//! - `SIGQUIT`: the workers drain, then the master exits; `SIGTERM` and
//!   `SIGINT`: they stop at once.
//! - `SIGUSR1`: the master reopens its logs, gives the new files to the
//!   workers' user and has the workers reopen theirs.
//! - `SIGCHLD`: an ended worker is logged, and replaced unless it was
//!   leaving.
//! - `SIGUSR2`, `SIGWINCH`, `SIGQUIT`: nginx's binary upgrade. `SIGUSR2`
//!   renames the pid file to `.oldbin` and starts the binary again as a new
//!   master that inherits the listening sockets (in nginx's `NGINX`
//!   variable, so either binary can take over from the other); `SIGWINCH`
//!   (when daemonized, as nginx) stops the old workers while the master
//!   stays, `SIGHUP` then starts them again, and `SIGQUIT` ends the old
//!   master. A new master that exits gives the pid file back.
//!
//! The master never starts a thread: `fork` copies it whole.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::errlog::ErrorLogHandle;
use crate::instance::{Generation, Instance, Signals};
use crate::procs::{self, Exit, Forked, SignalInfo};

/// The account the workers run as, when the master runs as root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// `user`'s user name.
    pub user: String,
    /// Its group (`None`: the group named like the user).
    pub group: Option<String>,
}

/// What the workers are forked from: a configuration made ready to serve
/// and the account to run it as.
pub struct WorkerPlan {
    /// The configuration (one engine: each worker process is one).
    pub generation: Generation,
    /// `user`, when running as root.
    pub account: Option<Account>,
}

/// One worker process.
struct Worker {
    pid: libc::pid_t,
    /// It was told to quit (an old generation's, or the master stops).
    leaving: bool,
}

/// How the master stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopping {
    Graceful,
    Fast(Instant),
}

/// The master's state.
pub struct Master {
    listeners: HashMap<SocketAddr, std::net::TcpListener>,
    plan: Option<WorkerPlan>,
    workers: Vec<Worker>,
    error_log: Option<ErrorLogHandle>,
    stopping: Option<Stopping>,
    pid: libc::pid_t,
    /// The `pid` file, and whether the process detached (`daemon on`).
    pid_file: Option<PathBuf>,
    daemonized: bool,
    /// The new master of a binary upgrade, while it runs.
    new_binary: Option<libc::pid_t>,
    /// `SIGWINCH` stopped the workers.
    noaccepting: bool,
}

/// The value `rginx -s reload` queues with its `SIGHUP`: this mark in
/// the high bits, the descriptor of the pipe it waits on in the low ones.
pub const RELOAD_REPLY_MARK: libc::c_int = 0x7267_0000;

/// Where the master answers a `rginx -s reload` that asked: the write end
/// of the pipe its process waits on, found through /proc.
pub struct ReloadReply {
    file: std::fs::File,
}

impl ReloadReply {
    /// The pipe of the process that queued `info`, if it asked for an
    /// answer and it is a pipe.
    pub fn of(info: &SignalInfo) -> Option<ReloadReply> {
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
        let value = info.queued?;
        if value & !0xffff != RELOAD_REPLY_MARK || info.from <= 0 {
            return None;
        }
        let path = format!("/proc/{}/fd/{}", info.from, value & 0xffff);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .ok()?;
        // only ever a pipe: never a file the sender points the master at
        file.metadata()
            .ok()
            .filter(|m| m.file_type().is_fifo())
            .map(|_| ReloadReply { file })
    }

    /// Tells it the outcome: `ok`, or the error lines then `failed`.
    pub fn send(mut self, outcome: &Result<(), Vec<String>>) {
        use std::io::Write as _;
        let text = match outcome {
            Ok(()) => "ok\n".to_string(),
            Err(lines) => {
                let mut text: String = lines.iter().map(|l| format!("error {l}\n")).collect();
                text.push_str("failed\n");
                text
            }
        };
        let _ = self.file.write_all(text.as_bytes());
    }
}

impl Master {
    /// A master for `plan`, listening on `listeners`, with the error log
    /// `error_log` (its workers inherit it). The process's signals must
    /// be blocked ([`procs::block_signals`]) and the counters shared
    /// ([`procs::share_counters`]) already.
    pub fn new(
        plan: WorkerPlan,
        listeners: Vec<std::net::TcpListener>,
        error_log: Option<ErrorLogHandle>,
    ) -> Master {
        let listeners = listeners
            .into_iter()
            .filter_map(|l| Some((l.local_addr().ok()?, l)))
            .collect();
        Master {
            listeners,
            plan: Some(plan),
            workers: Vec::new(),
            error_log,
            stopping: None,
            pid: std::process::id() as libc::pid_t,
            pid_file: None,
            daemonized: false,
            new_binary: None,
            noaccepting: false,
        }
    }

    /// The `pid` file the master removes when it exits (or renames for a
    /// binary upgrade), and whether it detached.
    pub fn with_pid_file(mut self, pid_file: Option<PathBuf>, daemonized: bool) -> Master {
        self.pid_file = pid_file;
        self.daemonized = daemonized;
        self
    }

    /// Starts the workers and obeys signals until the last worker has
    /// ended after a quit or stop. `load` reads the configuration again for
    /// a reload (errors as nginx's lines, `... in FILE:LINE`); `reopen`
    /// reopens the master's files and gives them to the workers' user.
    pub fn run(
        mut self,
        mut load: impl FnMut() -> Result<WorkerPlan, Vec<String>>,
        mut reopen: impl FnMut(&WorkerPlan),
    ) {
        tracing::info!(notice = true, "start worker processes");
        if let Err(e) = self.spawn() {
            tracing::error!(alert = true, "{e}");
        }
        loop {
            if self.stopping.is_some() && self.workers.is_empty() {
                self.remove_pid_file();
                return;
            }
            if let Some(Stopping::Fast(since)) = self.stopping {
                // nginx sends SIGKILL to workers that outlive a stop
                if since.elapsed() > Duration::from_secs(5) {
                    self.signal_workers(libc::SIGKILL, |_| true);
                }
            }
            let Some(info) = procs::next_signal(Duration::from_millis(500)) else {
                continue;
            };
            let action = match info.signo {
                libc::SIGHUP if self.noaccepting => ", restarting workers",
                libc::SIGHUP if self.stopping.is_none() => ", reconfiguring",
                libc::SIGUSR2 => ", changing binary",
                libc::SIGWINCH if self.daemonized => ", stop accepting connections",
                libc::SIGUSR1 => ", reopening logs",
                libc::SIGQUIT => ", shutting down",
                libc::SIGTERM | libc::SIGINT => ", exiting",
                _ => "",
            };
            if info.from > 0 {
                tracing::info!(
                    notice = true,
                    "signal {} ({}) received from {}{action}",
                    info.signo,
                    procs::signal_name(info.signo),
                    info.from
                );
            } else {
                tracing::info!(
                    notice = true,
                    "signal {} ({}) received{action}",
                    info.signo,
                    procs::signal_name(info.signo)
                );
            }
            match info.signo {
                libc::SIGCHLD => self.reap(),
                libc::SIGHUP if self.noaccepting => {
                    self.noaccepting = false;
                    tracing::info!(notice = true, "start worker processes");
                    if let Err(e) = self.spawn() {
                        tracing::error!(alert = true, "{e}");
                    }
                }
                libc::SIGUSR2 => self.upgrade(),
                libc::SIGWINCH if self.daemonized => {
                    self.noaccepting = true;
                    tracing::info!(notice = true, "gracefully shutting down worker processes");
                    self.signal_workers(libc::SIGQUIT, |_| true);
                }
                libc::SIGHUP if self.stopping.is_none() => {
                    tracing::info!(notice = true, "reconfiguring");
                    let outcome = self.reload(&mut load);
                    match &outcome {
                        Ok(()) => tracing::info!(notice = true, "reconfigured"),
                        Err(lines) => {
                            for line in lines {
                                tracing::error!(emerg = true, "{line}");
                            }
                        }
                    }
                    if let Some(reply) = ReloadReply::of(&info) {
                        reply.send(&outcome);
                    }
                }
                libc::SIGUSR1 => {
                    if let Some(handle) = &self.error_log {
                        if let Err(e) = handle.reopen() {
                            tracing::error!(alert = true, "{e}");
                        }
                    }
                    if let Some(plan) = &self.plan {
                        reopen(plan);
                    }
                    self.signal_workers(libc::SIGUSR1, |w| !w.leaving);
                }
                libc::SIGQUIT => {
                    self.stopping.get_or_insert(Stopping::Graceful);
                    self.listeners.clear();
                    self.signal_workers(libc::SIGQUIT, |_| true);
                }
                libc::SIGTERM | libc::SIGINT => {
                    self.stopping = Some(Stopping::Fast(Instant::now()));
                    self.listeners.clear();
                    self.signal_workers(libc::SIGTERM, |_| true);
                }
                _ => {}
            }
        }
    }

    /// Sends `signo` to the workers `which` picks; those told to quit or
    /// stop are leaving from then on.
    fn signal_workers(&mut self, signo: libc::c_int, which: impl Fn(&Worker) -> bool) {
        for worker in self.workers.iter_mut().filter(|w| which(w)) {
            if matches!(signo, libc::SIGQUIT | libc::SIGTERM | libc::SIGKILL) {
                worker.leaving = true;
            }
            if let Err(e) = procs::send(worker.pid, signo) {
                tracing::error!(alert = true, "{e}");
            }
        }
    }

    /// Logs the workers that ended, and starts new ones for those that
    /// ended without being told to (nginx's respawn); one that could not
    /// start (exit code 2, nginx's fatal code) is not started again.
    fn reap(&mut self) {
        let mut respawn = 0;
        for (pid, exit) in procs::reap() {
            if self.new_binary == Some(pid) {
                // the upgrade failed: the pid file is this master's again
                self.new_binary = None;
                tracing::info!(notice = true, "new binary process {pid} exited");
                if let Some(path) = &self.pid_file {
                    if let Err(e) = std::fs::rename(oldbin(path), path) {
                        tracing::error!(
                            alert = true,
                            "rename() back to \"{}\" failed ({})",
                            path.display(),
                            crate::process::os_error(&e)
                        );
                    }
                }
                continue;
            }
            let Some(at) = self.workers.iter().position(|w| w.pid == pid) else {
                continue;
            };
            let worker = self.workers.remove(at);
            match exit {
                Exit::Code(2) => {
                    tracing::error!(
                        alert = true,
                        "worker process {pid} exited with fatal code 2 and cannot be respawned"
                    );
                    continue;
                }
                Exit::Code(code) => {
                    tracing::info!(
                        notice = true,
                        "worker process {pid} exited with code {code}"
                    )
                }
                Exit::Signal(signo) => {
                    tracing::error!(
                        alert = true,
                        "worker process {pid} exited on signal {signo}"
                    )
                }
            }
            if !worker.leaving && self.stopping.is_none() && !self.noaccepting {
                respawn += 1;
            }
        }
        for _ in 0..respawn {
            if let Err(e) = self.spawn_one() {
                tracing::error!(alert = true, "{e}");
            }
        }
    }

    /// Reads the configuration again, binds what it adds, starts its
    /// workers and quits the old ones; nothing changes on an error.
    fn reload(
        &mut self,
        load: &mut impl FnMut() -> Result<WorkerPlan, Vec<String>>,
    ) -> Result<(), Vec<String>> {
        let plan = load()?;
        let wanted = plan.generation.listen_addrs();
        let mut fresh = Vec::new();
        for addr in &wanted {
            if !self.listeners.contains_key(addr) {
                fresh.push((*addr, crate::instance::bind(*addr).map_err(|e| vec![e])?));
            }
        }
        let previous = self.plan.as_ref().map(|p| p.generation.engines());
        plan.generation
            .open_logs(previous.unwrap_or_default())
            .map_err(|e| vec![e])?;
        if let Some(handle) = &self.error_log {
            let (main, others) = plan.generation.error_logs();
            handle.replace(main, others).map_err(|e| {
                vec![format!(
                    "cannot open the error log ({})",
                    crate::process::os_error(&e)
                )]
            })?;
        }
        // nothing can fail from here on
        self.listeners.extend(fresh);
        self.listeners.retain(|addr, _| wanted.contains(addr));
        self.plan = Some(plan);
        for worker in &mut self.workers {
            worker.leaving = true;
        }
        let old: Vec<libc::pid_t> = self.workers.iter().map(|w| w.pid).collect();
        tracing::info!(notice = true, "start worker processes");
        if let Err(e) = self.spawn() {
            tracing::error!(alert = true, "{e}");
        }
        for pid in old {
            if let Err(e) = procs::send(pid, libc::SIGQUIT) {
                tracing::error!(alert = true, "{e}");
            }
        }
        Ok(())
    }

    /// `SIGUSR2`: the pid file becomes `.oldbin` and the binary starts
    /// again as a new master with the listening sockets.
    fn upgrade(&mut self) {
        if self.new_binary.is_some() || self.stopping.is_some() {
            return;
        }
        if let Some(path) = &self.pid_file {
            if let Err(e) = std::fs::rename(path, oldbin(path)) {
                tracing::error!(
                    alert = true,
                    "rename() \"{}\" to \"{}\" failed ({}), the binary is not changed",
                    path.display(),
                    oldbin(path).display(),
                    crate::process::os_error(&e)
                );
                return;
            }
        }
        use std::os::fd::AsRawFd as _;
        let fds: Vec<libc::c_int> = self.listeners.values().map(|l| l.as_raw_fd()).collect();
        let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
        let program = argv.first().map(|p| binary_path(p)).unwrap_or_default();
        match procs::exec_new_binary(&program, &argv, &fds) {
            Ok(pid) => {
                tracing::info!(notice = true, "start new binary process {pid}");
                self.new_binary = Some(pid);
            }
            Err(e) => {
                tracing::error!(alert = true, "{e}");
                if let Some(path) = &self.pid_file {
                    let _ = std::fs::rename(oldbin(path), path);
                }
            }
        }
    }

    /// Removes the pid file at exit (the `.oldbin` one while a new master
    /// runs, as nginx's `ngx_delete_pidfile`).
    fn remove_pid_file(&self) {
        if let Some(path) = &self.pid_file {
            match self.new_binary {
                Some(_) => {
                    let _ = std::fs::remove_file(oldbin(path));
                }
                None => crate::process::remove_pid(path),
            }
        }
    }

    /// Starts the plan's number of workers.
    fn spawn(&mut self) -> Result<(), String> {
        let count = self
            .plan
            .as_ref()
            .map_or(0, |p| p.generation.worker_processes());
        (0..count).try_for_each(|_| self.spawn_one())
    }

    /// Starts one worker.
    fn spawn_one(&mut self) -> Result<(), String> {
        match procs::fork()? {
            Forked::Parent(pid) => {
                tracing::info!(notice = true, "start worker process {pid}");
                self.workers.push(Worker {
                    pid,
                    leaving: false,
                });
                Ok(())
            }
            Forked::Child => self.work(),
        }
    }

    /// The child of `fork`: becomes a worker and never returns.
    fn work(&mut self) -> ! {
        procs::unblock_signals();
        let Some(plan) = self.plan.take() else {
            std::process::exit(2)
        };
        let wanted = plan.generation.listen_addrs();
        let listeners: Vec<std::net::TcpListener> = self
            .listeners
            .drain()
            .filter(|(addr, _)| wanted.contains(addr))
            .map(|(_, l)| l)
            .collect();
        if let Some(account) = &plan.account {
            let own: Vec<PathBuf> = plan.generation.log_paths();
            let own: Vec<&std::path::Path> = own.iter().map(PathBuf::as_path).collect();
            match crate::process::become_user(&account.user, account.group.as_deref(), &own) {
                Ok(warnings) => {
                    for w in warnings {
                        tracing::warn!("{w}");
                    }
                }
                Err(e) => {
                    tracing::error!(emerg = true, "{e}");
                    std::process::exit(2);
                }
            }
        }
        // after the change of user, which clears the death signal
        procs::die_with_parent(self.pid);
        let started = Signals::take().and_then(|signals| {
            Instance::start(plan.generation, listeners, self.error_log.take())
                .map(|instance| (instance, signals))
        });
        match started {
            Ok((instance, signals)) => instance.work(signals),
            Err(e) => {
                tracing::error!(emerg = true, "cannot start the worker: {e}");
                std::process::exit(2);
            }
        }
        tracing::info!(notice = true, "exit");
        std::process::exit(0)
    }
}

/// The pid file's name during a binary upgrade.
fn oldbin(path: &std::path::Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".oldbin");
    PathBuf::from(name)
}

/// The binary to start for an upgrade: `argv[0]` when it names a path
/// (nginx uses it as it is), else found on `PATH`.
fn binary_path(argv0: &std::ffi::OsStr) -> std::ffi::OsString {
    let given = std::path::Path::new(argv0);
    if given.components().count() > 1 {
        return argv0.to_os_string();
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(given))
                .find(|candidate| candidate.is_file())
        })
        .map_or_else(|| argv0.to_os_string(), PathBuf::into_os_string)
}
