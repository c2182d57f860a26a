//! `rginx -c FILE`: load the configuration and serve it in the foreground.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use rginx_core::model::Value;
use rginx_core::plan::Runtime;
use rginx_proxy::engine::Engine;

/// The demo configuration, examples/websocket.conf.
const DEMO_CONF: &str = include_str!("../examples/websocket.conf");
/// Where the demo's echo backend listens (the configuration's upstream).
const DEMO_BACKEND: &str = "127.0.0.1:9001";

/// Runs until the process is stopped; exit 1 when the configuration or a
/// listening socket fails.
pub fn run(source: &crate::check::Source) -> ExitCode {
    let Some(model) = crate::check::load(source) else {
        return ExitCode::from(1);
    };
    serve(model, Mode::Config)
}

/// `rginx` with no configuration: the built-in echo backend behind the
/// example WebSocket configuration, so a new user sees it work at once.
pub fn demo() -> ExitCode {
    let Some(model) = crate::check::load_text("examples/websocket.conf (built in)", DEMO_CONF)
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
    let code = serve(model, Mode::Demo);
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

fn serve(model: rginx_core::Model, mode: Mode) -> ExitCode {
    // worker_rlimit_nofile, before anything is opened (nginx: an alert)
    if let Some(Value::Number(n)) = model.main.get("worker_rlimit_nofile").map(|s| &s.value) {
        if let Err(e) = rginx_proxy::process::set_nofile(*n) {
            eprintln!("rginx: [alert] {e}");
        }
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let runtime = match Runtime::new(&model, &hostname) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rginx: [emerg] {e}");
            return ExitCode::from(1);
        }
    };
    // worker_processes: the number of runtime threads (auto: one per core)
    let workers = match model.main.get("worker_processes").map(|s| &s.value) {
        Some(Value::Number(n)) => usize::try_from(*n).unwrap_or(1).max(1),
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    // error_log (main level) through tracing
    let error_logs: &[rginx_core::model::ErrorLog] =
        match model.main.get("error_log").map(|s| &s.value) {
            Some(Value::ErrorLogs(logs)) => logs,
            _ => &[],
        };
    match rginx_proxy::errlog::ErrorLogSubscriber::open(error_logs, runtime.error_log_sets()) {
        Ok(subscriber) => {
            let _ = tracing::subscriber::set_global_default(subscriber);
        }
        Err(e) => {
            eprintln!("rginx: [emerg] cannot open the error log: {e}");
            return ExitCode::from(1);
        }
    }
    // nginx's worker processes: one engine per thread, each with its own
    // current-thread runtime, upstream pools and balancing state, all
    // accepting from the same listening sockets
    let mut engines = vec![Arc::new(Engine::new(&model, runtime, 1))];
    for _ in 1..workers {
        match Runtime::new(&model, &hostname) {
            Ok(r) => engines.push(Arc::new(Engine::new(&model, r, 1))),
            Err(e) => {
                eprintln!("rginx: [emerg] {e}");
                return ExitCode::from(1);
            }
        }
    }
    let runtime_for = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let binder = match runtime_for() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rginx: [emerg] cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let listeners = match binder.block_on(engines[0].bind()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("rginx: [emerg] {e}");
            return ExitCode::from(1);
        }
    };
    drop(binder);
    // log files and the pid file are opened while still root, as nginx's
    // master does; then the process becomes `user`
    for engine in &engines {
        if let Err(e) = engine.open_logs() {
            eprintln!("rginx: [emerg] {e}");
            return ExitCode::from(1);
        }
    }
    if let Some(Value::Text(pid)) = model.main.get("pid").map(|s| &s.value) {
        if let Err(e) = rginx_proxy::process::write_pid(Path::new(pid)) {
            if mode == Mode::Config {
                eprintln!("rginx: [emerg] {e}");
                return ExitCode::from(1);
            }
            eprintln!("rginx: [warn] {e}: the demo runs without a pid file");
        }
    }
    if rginx_proxy::process::is_root() {
        // nginx's workers run as nobody:nogroup unless `user` says otherwise
        let (user, group) = match model.main.get("user").map(|s| &s.value) {
            Some(Value::Words(w)) if !w.is_empty() => (w[0].clone(), w.get(1).cloned()),
            _ => ("nobody".to_string(), Some("nogroup".to_string())),
        };
        if let Err(e) = rginx_proxy::process::become_user(&user, group.as_deref()) {
            eprintln!("rginx: [emerg] {e}");
            return ExitCode::from(1);
        }
    }
    // the first worker accepts and hands connections to all in turn
    let (workers, inboxes) = rginx_proxy::engine::Workers::new(engines.len());
    let mut inboxes = inboxes.into_iter();
    let first_inbox = inboxes.next();
    let mut threads = Vec::new();
    for (engine, inbox) in engines.iter().skip(1).cloned().zip(inboxes) {
        let rt = match runtime_for() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("rginx: [emerg] cannot start the runtime: {e}");
                return ExitCode::from(1);
            }
        };
        let workers = workers.clone();
        threads.push(std::thread::spawn(move || {
            rt.block_on(engine.run(Vec::new(), workers, inbox))
        }));
    }
    let Some(first_inbox) = first_inbox else {
        return ExitCode::from(1);
    };
    match runtime_for() {
        Ok(rt) => rt.block_on(engines[0].clone().run(listeners, workers, first_inbox)),
        Err(e) => {
            eprintln!("rginx: [emerg] cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    }
    for thread in threads {
        let _ = thread.join();
    }
    ExitCode::SUCCESS
}
