//! `rginx -s reload|quit|stop|reopen`: signal the running instance, as
//! `nginx -s` does: the configuration is read first (a broken one is
//! reported and nothing is sent), then the process id in its `pid` file
//! gets the signal.

use std::path::Path;
use std::process::ExitCode;

use rginx_core::model::Value;
use rginx_proxy::process::{signal_pid_file, Signal};

use crate::check::Source;

/// Sends `name` to the instance `source`'s configuration names; exit 0
/// when the signal was sent, 1 otherwise, 2 for an unknown signal.
pub fn run(name: &str, source: &Source) -> ExitCode {
    let Some(signal) = Signal::from_name(name) else {
        eprintln!("rginx: invalid option: \"-s {name}\" (reload, quit, stop or reopen)");
        return ExitCode::from(2);
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
    match signal_pid_file(Path::new(pid), signal) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rginx: [error] {e}");
            ExitCode::from(1)
        }
    }
}
