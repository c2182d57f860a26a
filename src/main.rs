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
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    cli::run(cli)
}
