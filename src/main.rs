//! `rginx`: a reverse proxy that reads nginx's configuration language.
//!
//! This binary is thin: it parses the command line and calls the crates.

#![forbid(unsafe_code)]
// no panics on input: errors are values (clippy.toml allows both in tests)
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod check;
mod cli;
mod report;
mod serve;
mod signal;
mod version;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // times in logs are in the machine's zone, as nginx's
    rginx_core::plan::set_utc_offset_source(rginx_proxy::procs::utc_offset);
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let args: Vec<String> = std::env::args().skip(1).collect();
            // nginx's switches: nginx's words and exit code
            if e.use_stderr() && !args.iter().any(|a| a == "check" || a.starts_with("--")) {
                if let Some(message) = cli::nginx_option_error(&args) {
                    eprintln!("rginx: {message}");
                    return ExitCode::from(1);
                }
            }
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    cli::run(cli)
}
