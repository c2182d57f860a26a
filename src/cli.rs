//! Command line (DESIGN.md, "CLI contract").

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::check::{self, CheckRequest};

/// Default configuration path when `-c` is not given.
pub const DEFAULT_CONF: &str = "/etc/rginx/rginx.conf";

/// rginx: a reverse proxy that reads nginx's configuration language.
#[derive(Debug, Parser)]
#[command(name = "rginx", version, about, disable_help_subcommand = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration file.
    #[arg(short = 'c', long = "conf", value_name = "FILE", global = true)]
    conf: Option<PathBuf>,
    /// Test the configuration and exit (like `nginx -t`).
    #[arg(short = 't')]
    test: bool,
    /// Test the configuration, then print it with includes (like `nginx -T`).
    #[arg(short = 'T')]
    dump: bool,
    /// Print only errors and warnings when testing.
    #[arg(short = 'q')]
    quiet: bool,
    /// Send a signal to the running rginx: reload, quit, stop, reopen.
    #[arg(short = 's', value_name = "SIGNAL")]
    signal: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a configuration like `nginx -t`, with rginx's lints.
    Check {
        /// Configuration file (same as -c).
        file: Option<PathBuf>,
        /// Print only errors and warnings.
        #[arg(short = 'q')]
        quiet: bool,
    },
}

#[derive(Debug, Args)]
struct OutputArgs {
    /// Output format of check results.
    #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
    format: Format,
    /// Do not run rginx's lints (nginx's own checks still run).
    #[arg(long, global = true)]
    no_lint: bool,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// nginx-style lines on stderr.
    Text,
    /// One JSON object on stdout.
    Json,
}

/// Runs the command line.
pub fn run(cli: Cli) -> ExitCode {
    let conf = |explicit: Option<PathBuf>| {
        explicit
            .or(cli.conf.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONF))
    };
    let request = |file: PathBuf, quiet: bool, dump: bool| CheckRequest {
        file,
        format: cli.output.format,
        lints: !cli.output.no_lint,
        quiet,
        dump,
    };
    if let Some(Command::Check { file, quiet }) = cli.command {
        let file = conf(file);
        return check::run(&request(file, quiet || cli.quiet, false));
    }
    if cli.test || cli.dump {
        return check::run(&request(conf(None), cli.quiet, cli.dump));
    }
    if let Some(signal) = &cli.signal {
        eprintln!("rginx: [emerg] signal \"{signal}\": rginx -s is not implemented yet");
        return ExitCode::from(1);
    }
    if cli.conf.is_none() && !std::path::Path::new(DEFAULT_CONF).exists() {
        return crate::serve::demo();
    }
    crate::serve::run(&conf(None))
}
