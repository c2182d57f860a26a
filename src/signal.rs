//! `rginx -s reload|quit|stop|reopen`: signal the running instance, as
//! `nginx -s` does: the configuration is read first (a broken one is
//! reported and nothing is sent), then the process id in its `pid` file
//! gets the signal. Beyond nginx, `-s reload` waits for the master's
//! answer: it says whether the new configuration took effect, and why not
//! (with file and line), exiting 1 then.

use std::path::Path;
use std::process::ExitCode;

use std::io::BufRead as _;
use std::os::fd::AsRawFd as _;
use std::time::{Duration, Instant};

use rginx_core::model::Value;
use rginx_proxy::master::RELOAD_REPLY_MARK;
use rginx_proxy::process::{read_pid, signal_pid_file, Signal};
use rginx_proxy::procs;

use crate::check::Source;

/// Sends `name` to the instance `source`'s configuration names; exit 0
/// when the signal was sent, 1 otherwise (an unknown signal too, as
/// nginx's `ngx_get_options`).
pub fn run(name: &str, source: &Source) -> ExitCode {
    let Some(signal) = Signal::from_name(name) else {
        eprintln!("rginx: invalid option: \"-s {name}\" (reload, quit, stop or reopen)");
        return ExitCode::from(1);
    };
    let Some(model) = crate::check::load(source) else {
        return ExitCode::from(1);
    };
    let Some(Value::Text(pid)) = model.main.get("pid").map(|s| &s.value) else {
        eprintln!(
            "rginx: [error] {} has no \"pid\" directive: rginx -s finds the running instance through its pid file",
            source.file.display()
        );
        return ExitCode::from(1);
    };
    if signal == Signal::Reload {
        return reload(Path::new(pid));
    }
    match signal_pid_file(Path::new(pid), signal) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rginx: [error] {e}");
            ExitCode::from(1)
        }
    }
}

/// Whether process `pid` runs one thread (`Threads:` in its status).
fn single_threaded(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:").map(|n| n.trim() == "1"))
        })
        .unwrap_or(true)
}

/// How long `-s reload` waits for the master's answer.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// `SIGHUP` queued with the descriptor of a pipe the master answers on
/// ([`rginx_proxy::master::ReloadReply`]), then the answer.
fn reload(pid_file: &Path) -> ExitCode {
    let pid = match read_pid(pid_file) {
        Ok(pid) => pid,
        Err(e) => {
            eprintln!("rginx: [error] {e}");
            return ExitCode::from(1);
        }
    };
    // only rginx's master answers, and it has one thread: an rginx with
    // `master_process off` (threads) is signalled as nginx's -s does
    if !single_threaded(pid) {
        return match procs::send(pid, procs::RELOAD) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rginx: [error] {e}");
                ExitCode::from(1)
            }
        };
    }
    let (reader, writer) = match procs::pipe() {
        Ok(pipe) => pipe,
        Err(e) => {
            eprintln!("rginx: [error] {e}");
            return ExitCode::from(1);
        }
    };
    let value = RELOAD_REPLY_MARK | (writer.as_raw_fd() & 0xffff);
    if let Err(e) = procs::queue_reload(pid, value) {
        eprintln!("rginx: [error] {e}");
        return ExitCode::from(1);
    }
    // the answer's lines, read on a thread so that the wait is bounded
    let (lines, answer) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(reader).lines() {
            let Ok(line) = line else { return };
            let last = line == "ok" || line == "failed";
            if lines.send(line).is_err() || last {
                return;
            }
        }
    });
    let deadline = Instant::now() + ANSWER_WAIT;
    let mut errors = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match answer.recv_timeout(left) {
            Ok(line) if line == "ok" => return ExitCode::SUCCESS,
            Ok(line) if line == "failed" => {
                for e in &errors {
                    eprintln!("rginx: [emerg] {e}");
                }
                eprintln!("rginx: the master process {pid} kept the configuration it had");
                return ExitCode::from(1);
            }
            Ok(line) => errors.push(line.strip_prefix("error ").unwrap_or(&line).to_string()),
            Err(_) => {
                // an nginx, or an rginx that does not answer: the signal
                // went, as nginx's -s does
                eprintln!(
                    "rginx: [warn] the master process {pid} did not say within {} s whether the reload took effect",
                    ANSWER_WAIT.as_secs()
                );
                drop(writer);
                return ExitCode::SUCCESS;
            }
        }
    }
}
