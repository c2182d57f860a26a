//! `rginx -c FILE`: load the configuration and serve it in the foreground.

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;
use std::process::ExitCode;

use rginx_core::model::Value;
use rginx_proxy::errlog::ErrorLogSubscriber;
use rginx_proxy::instance::{Generation, Instance, Signals};
use rginx_proxy::master::{Account, Master, WorkerPlan};
use rginx_proxy::procs;

/// The demo configuration, examples/websocket.conf.
const DEMO_CONF: &str = include_str!("../examples/websocket.conf");
/// Where the demo's echo backend listens (the configuration's upstream).
const DEMO_BACKEND: &str = "127.0.0.1:9001";

/// Runs until the process is stopped; exit 1 when the configuration or a
/// listening socket fails. `error_log` (`-e`) is the main error log when
/// the configuration's main context names none.
pub fn run(source: &crate::check::Source, error_log: Option<&str>) -> ExitCode {
    let Some(model) = crate::check::load(source) else {
        return ExitCode::from(1);
    };
    serve(model, Mode::Config, Some(source), error_log)
}

/// `rginx` with no configuration: the built-in echo backend behind the
/// example WebSocket configuration, so a new user sees it work at once.
/// Its relative paths are under `prefix` (`-p`), else the working
/// directory.
pub fn demo(prefix: Option<&str>) -> ExitCode {
    let here = std::env::current_dir()
        .map(|d| format!("{}/", d.display()))
        .unwrap_or_default();
    let prefix = prefix.unwrap_or(&here);
    let Some(model) =
        crate::check::load_text("examples/websocket.conf (built in)", DEMO_CONF, prefix)
    else {
        return ExitCode::from(1);
    };
    let backend_addr = DEMO_BACKEND
        .parse()
        .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 9001)));
    let backend = match rginx_proxy::echo::EchoBackend::start(backend_addr) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("rginx: [emerg] the demo backend cannot listen on {DEMO_BACKEND}: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "rginx: no configuration given and none at {}: running the demo",
        crate::cli::DEFAULT_CONF
    );
    eprintln!(
        "rginx: echo backend on {}, proxy on 127.0.0.1:8080 (examples/websocket.conf)",
        backend.addr()
    );
    eprintln!("rginx: open http://127.0.0.1:8080/ and type a message; it travels over ws://127.0.0.1:8080/ws/");
    let code = serve(model, Mode::Demo, None, None);
    drop(backend);
    code
}

/// What is being served: the demo forgives a pid file it cannot write
/// (its `logs/` directory need not exist where it is started).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Config,
    Demo,
}

fn serve(
    model: rginx_core::Model,
    mode: Mode,
    reload: Option<&crate::check::Source>,
    default_error_log: Option<&str>,
) -> ExitCode {
    // worker_rlimit_nofile, before anything is opened (nginx: an alert)
    if let Some(Value::Number(n)) = model.main.get("worker_rlimit_nofile").map(|s| &s.value) {
        if let Err(e) = rginx_proxy::process::set_nofile(*n) {
            eprintln!("rginx: [alert] {e}");
        }
    }
    let hostname = hostname();
    // nginx's master and worker processes, unless `master_process off`
    // (the demo is one process, in the foreground)
    let with_master = mode == Mode::Config && model.main.flag("master_process", true);
    let mut daemon = mode == Mode::Config && model.main.flag("daemon", true);
    let generation = match Generation::build(&model, &hostname, 1, default_error_log) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("rginx: [emerg] {e}");
            return ExitCode::from(1);
        }
    };
    // error_log through tracing
    let (main_log, other_logs) = generation.error_logs();
    let error_log = match ErrorLogSubscriber::open(main_log, other_logs) {
        Ok(subscriber) => {
            let handle = subscriber.handle();
            let _ = tracing::subscriber::set_global_default(subscriber);
            handle
        }
        Err(e) => {
            eprintln!("rginx: [emerg] cannot open the error log: {e}");
            return ExitCode::from(1);
        }
    };
    // a binary upgrade: the old master's sockets, as nginx's NGINX
    // variable names them
    let mut inherited = procs::inherited_listeners();
    let upgraded = !inherited.is_empty();
    let mut listeners = Vec::new();
    for addr in generation.listen_addrs() {
        if let Some(at) = inherited.iter().position(|(a, _)| *a == addr) {
            listeners.push(inherited.swap_remove(at).1);
            continue;
        }
        match rginx_proxy::instance::bind(addr) {
            Ok(l) => listeners.push(l),
            Err(e) => {
                eprintln!("rginx: [emerg] {e}");
                return ExitCode::from(1);
            }
        }
    }
    // log files and the pid file are opened while still root, as nginx's
    // master does; then the workers (or this process) become `user`
    if let Err(e) = generation.open_logs(&[]) {
        eprintln!("rginx: [emerg] {e}");
        return ExitCode::from(1);
    }
    // stderr goes to the main error log once it is a file, after the
    // start's checks (ngx_log_redirect_stderr; not for the demo, whose
    // user watches the terminal)
    if mode == Mode::Config {
        let (main_log, _) = generation.error_logs();
        if let Some(file) = main_log.first().filter(|l| l.path != "stderr") {
            if let Err(e) = procs::stderr_to(std::path::Path::new(&file.path)) {
                eprintln!("rginx: [alert] {e}");
            }
        }
    }
    // daemon on: detached once what can fail on the terminal was tried
    // (not a new master of a binary upgrade, as nginx's ngx_inherited)
    daemon &= !upgraded;
    let detached = if daemon {
        match procs::detach() {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("rginx: [emerg] {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        None
    };
    let started = Started(detached);
    let pid = match model.main.get("pid").map(|s| &s.value) {
        Some(Value::Text(pid)) => Some(PathBuf::from(pid)),
        _ => None,
    };
    if let Some(path) = &pid {
        if let Err(e) = rginx_proxy::process::write_pid(path) {
            if mode == Mode::Config {
                eprintln!("rginx: [emerg] {e}");
                return started.failed();
            }
            eprintln!("rginx: [warn] {e}: the demo runs without a pid file");
        }
    }
    let as_root = rginx_proxy::process::is_root();
    let account = as_root.then(|| account_of(&model));
    let owner = account.as_ref().and_then(owner_of);
    if temp_dirs(&generation, owner, mode).is_some() {
        return started.failed();
    }
    if with_master {
        return master(
            generation,
            listeners,
            error_log,
            account,
            started,
            pid,
            || {
                let source = reload.ok_or_else(|| vec!["no configuration".to_string()])?;
                let (generation, account) =
                    reloaded(source, &hostname, 1, default_error_log, as_root)?;
                Ok(WorkerPlan {
                    generation,
                    account,
                })
            },
        );
    }
    if let Some(account) = &account {
        let mut own = generation.log_paths();
        own.extend(pid.clone());
        let own: Vec<&std::path::Path> = own.iter().map(PathBuf::as_path).collect();
        match rginx_proxy::process::become_user(&account.user, account.group.as_deref(), &own) {
            Ok(warnings) => {
                for w in warnings {
                    eprintln!("rginx: [warn] {w}");
                }
            }
            Err(e) => {
                eprintln!("rginx: [emerg] {e}");
                return started.failed();
            }
        }
    }
    let running = Signals::take().and_then(|signals| {
        Instance::start(generation, listeners, Some(error_log)).map(|i| (i, signals))
    });
    let (instance, signals) = match running {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rginx: [emerg] cannot start the workers: {e}");
            return started.failed();
        }
    };
    started.ready();
    // the process runs as `user` by now: its temp directories are its own
    instance.control(signals, |workers| match reload {
        Some(source) => reloaded(source, &hostname, workers, default_error_log, false)
            .map(|(generation, _)| generation),
        None => Err(vec![
            "the built-in demo configuration cannot be reloaded".to_string()
        ]),
    });
    if let Some(path) = &pid {
        rginx_proxy::process::remove_pid(path);
    }
    tracing::info!(notice = true, "exit");
    // the workers' threads end with the process
    std::process::exit(0)
}

/// The process's start, for a parent waiting on `daemon on`.
struct Started(Option<procs::Detached>);

impl Started {
    /// The start went well: the waiting parent exits 0.
    fn ready(self) {
        if let Some(detached) = self.0 {
            detached.ready(true);
        }
    }

    /// The start failed: exit 1, the waiting parent too.
    fn failed(self) -> ExitCode {
        if let Some(detached) = self.0 {
            detached.ready(false);
        }
        ExitCode::from(1)
    }
}

/// Runs the master process: forks the workers and obeys signals until it
/// stops; `load` reads the configuration again for a reload.
fn master(
    generation: Generation,
    listeners: Vec<std::net::TcpListener>,
    error_log: rginx_proxy::errlog::ErrorLogHandle,
    account: Option<Account>,
    started: Started,
    pid: Option<PathBuf>,
    load: impl FnMut() -> Result<WorkerPlan, Vec<String>>,
) -> ExitCode {
    // signals wait for the master's loop from now on; the counters are
    // shared with the workers it forks
    if let Err(e) = procs::block_signals().and_then(|()| procs::share_counters()) {
        eprintln!("rginx: [emerg] {e}");
        return started.failed();
    }
    let daemonized = started.0.is_some();
    let master = Master::new(
        WorkerPlan {
            generation,
            account,
        },
        listeners,
        Some(error_log),
    )
    .with_pid_file(pid, daemonized);
    started.ready();
    master.run(load, |plan| {
        // nginx's master reopens the files and gives them to the
        // workers' user, who then reopen them (ngx_reopen_files)
        let owner = plan.account.as_ref().and_then(owner_of);
        for path in plan.generation.log_paths() {
            let opened = std::fs::OpenOptions::new()
                .mode(rginx_proxy::process::LOG_MODE)
                .create(true)
                .append(true)
                .open(&path);
            if let (Ok(_), Some((uid, gid))) = (opened, owner) {
                let _ = std::os::unix::fs::chown(&path, Some(uid), Some(gid));
            }
        }
    });
    tracing::info!(notice = true, "exit");
    std::process::exit(0)
}

/// The configuration read again for a reload and made ready for
/// `workers` engines, its temp directories made (as root, `as_root`, given
/// to the account its `user` names, which comes back too); nginx's lines
/// for what failed.
fn reloaded(
    source: &crate::check::Source,
    hostname: &str,
    workers: usize,
    default_error_log: Option<&str>,
    as_root: bool,
) -> Result<(Generation, Option<Account>), Vec<String>> {
    let model = crate::check::load_for_reload(source)?;
    let generation =
        Generation::build(&model, hostname, workers, default_error_log).map_err(|e| vec![e])?;
    let account = as_root.then(|| account_of(&model));
    let failed = generation.create_temp_dirs(account.as_ref().and_then(owner_of));
    if !failed.is_empty() {
        return Err(failed);
    }
    Ok((generation, account))
}

/// The account `user` names (nginx's workers run as nobody:nogroup unless
/// it says otherwise).
fn account_of(model: &rginx_core::Model) -> Account {
    match model.main.get("user").map(|s| &s.value) {
        Some(Value::Words(w)) if !w.is_empty() => Account {
            user: w[0].clone(),
            group: w.get(1).cloned(),
        },
        _ => Account {
            user: "nobody".to_string(),
            group: Some("nogroup".to_string()),
        },
    }
}

/// The uid and gid of an account, if they exist.
fn owner_of(account: &Account) -> Option<(u32, u32)> {
    rginx_proxy::process::user_id(&account.user).zip(rginx_proxy::process::group_id(
        account.group.as_deref().unwrap_or(&account.user),
    ))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Creates the temp directories (given to `owner` when root), as nginx
/// does before its workers start: a failure stops a configuration's
/// start with nginx's `[emerg]` and is only a warning for the demo.
fn temp_dirs(generation: &Generation, owner: Option<(u32, u32)>, mode: Mode) -> Option<ExitCode> {
    let failed = generation.create_temp_dirs(owner);
    for line in &failed {
        match mode {
            Mode::Config => eprintln!("rginx: [emerg] {line}"),
            Mode::Demo => eprintln!("rginx: [warn] {line}: large request bodies will fail"),
        }
    }
    (mode == Mode::Config && !failed.is_empty()).then(|| ExitCode::from(1))
}
