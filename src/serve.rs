//! `rginx -c FILE`: load the configuration and serve it in the foreground.

use std::path::PathBuf;
use std::process::ExitCode;

use rginx_core::model::Value;
use rginx_proxy::errlog::ErrorLogSubscriber;
use rginx_proxy::instance::{worker_count, Generation, Instance, Signals};

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
    serve(model, Mode::Config, Some(source))
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
    let code = serve(model, Mode::Demo, None);
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

fn serve(model: rginx_core::Model, mode: Mode, reload: Option<&crate::check::Source>) -> ExitCode {
    // worker_rlimit_nofile, before anything is opened (nginx: an alert)
    if let Some(Value::Number(n)) = model.main.get("worker_rlimit_nofile").map(|s| &s.value) {
        if let Err(e) = rginx_proxy::process::set_nofile(*n) {
            eprintln!("rginx: [alert] {e}");
        }
    }
    let hostname = hostname();
    // nginx's worker processes: one engine per thread, each with its own
    // current-thread runtime, upstream pools and balancing state
    let workers = worker_count(&model);
    let generation = match Generation::build(&model, &hostname, workers) {
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
    let mut listeners = Vec::new();
    for addr in generation.listen_addrs() {
        match rginx_proxy::instance::bind(addr) {
            Ok(l) => listeners.push(l),
            Err(e) => {
                eprintln!("rginx: [emerg] {e}");
                return ExitCode::from(1);
            }
        }
    }
    // log files and the pid file are opened while still root, as nginx's
    // master does; then the process becomes `user`
    if let Err(e) = generation.open_logs(&[]) {
        eprintln!("rginx: [emerg] {e}");
        return ExitCode::from(1);
    }
    let pid = match model.main.get("pid").map(|s| &s.value) {
        Some(Value::Text(pid)) => Some(PathBuf::from(pid)),
        _ => None,
    };
    if let Some(path) = &pid {
        if let Err(e) = rginx_proxy::process::write_pid(path) {
            if mode == Mode::Config {
                eprintln!("rginx: [emerg] {e}");
                return ExitCode::from(1);
            }
            eprintln!("rginx: [warn] {e}: the demo runs without a pid file");
        }
    }
    let as_root = rginx_proxy::process::is_root();
    if as_root {
        // nginx's workers run as nobody:nogroup unless `user` says otherwise
        let (user, group) = match model.main.get("user").map(|s| &s.value) {
            Some(Value::Words(w)) if !w.is_empty() => (w[0].clone(), w.get(1).cloned()),
            _ => ("nobody".to_string(), Some("nogroup".to_string())),
        };
        let owner = rginx_proxy::process::user_id(&user).zip(rginx_proxy::process::group_id(
            group.as_deref().unwrap_or(&user),
        ));
        if let Some(code) = temp_dirs(&generation, owner, mode) {
            return code;
        }
        let mut own = generation.log_paths();
        own.extend(pid.clone());
        let own: Vec<&std::path::Path> = own.iter().map(PathBuf::as_path).collect();
        match rginx_proxy::process::become_user(&user, group.as_deref(), &own) {
            Ok(warnings) => {
                for w in warnings {
                    eprintln!("rginx: [warn] {w}");
                }
            }
            Err(e) => {
                eprintln!("rginx: [emerg] {e}");
                return ExitCode::from(1);
            }
        }
    }
    // as root they were made before the process became `user`
    if !as_root {
        if let Some(code) = temp_dirs(&generation, None, mode) {
            return code;
        }
    }
    let started = Signals::take().and_then(|signals| {
        Instance::start(generation, listeners, Some(error_log)).map(|i| (i, signals))
    });
    let (instance, signals) = match started {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rginx: [emerg] cannot start the workers: {e}");
            return ExitCode::from(1);
        }
    };
    instance.control(signals, |workers| match reload {
        Some(source) => {
            let model = crate::check::load_for_reload(source)?;
            let generation = Generation::build(&model, &hostname, workers).map_err(|e| vec![e])?;
            let failed = generation.create_temp_dirs(None);
            if failed.is_empty() {
                Ok(generation)
            } else {
                Err(failed)
            }
        }
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
