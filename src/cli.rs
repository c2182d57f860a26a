//! Command line: nginx's switches `-c`, `-t`, `-T`, `-q` and `-s`
//! (<https://nginx.org/en/docs/switches.html>), and the `check` subcommand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use rginx_core::snippet::SnippetContext;

use crate::check::{self, CheckRequest, Source};

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
        /// Print the migration report: every directive used, where, and
        /// what rginx does with it (with --format json: as data).
        #[arg(long)]
        report: bool,
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
    /// The context the file's top-level directives belong to (detected
    /// when not given): a whole configuration, or a snippet of `http`,
    /// `server` or `location` content.
    #[arg(long, value_enum, global = true)]
    context: Option<ContextArg>,
    /// Address a server or location snippet listens on (`127.0.0.1:8080`).
    #[arg(long, value_name = "ADDR:PORT", global = true)]
    listen: Option<String>,
}

/// `--context`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ContextArg {
    /// A whole configuration.
    Main,
    /// `http { }` content: `server`, `upstream`, `map`.
    Http,
    /// `server { }` content: `location` blocks.
    Server,
    /// `location { }` content: `proxy_pass` and friends.
    Location,
}

impl ContextArg {
    fn snippet(self) -> SnippetContext {
        match self {
            ContextArg::Main => SnippetContext::Main,
            ContextArg::Http => SnippetContext::Http,
            ContextArg::Server => SnippetContext::Server,
            ContextArg::Location => SnippetContext::Location,
        }
    }
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
    let source = |file: PathBuf| Source {
        file,
        context: cli.output.context.map(ContextArg::snippet),
        listen: cli.output.listen.clone(),
    };
    let request = |file: PathBuf, quiet: bool, dump: bool, report: bool| CheckRequest {
        report,
        source: source(file),
        format: cli.output.format,
        lints: !cli.output.no_lint,
        quiet,
        dump,
    };
    if let Some(Command::Check {
        file,
        quiet,
        report,
    }) = cli.command
    {
        let file = conf(file);
        return check::run(&request(file, quiet || cli.quiet, false, report));
    }
    if cli.test || cli.dump {
        return check::run(&request(conf(None), cli.quiet, cli.dump, false));
    }
    if let Some(signal) = &cli.signal {
        return crate::signal::run(signal, &source(conf(None)));
    }
    if cli.conf.is_none() && !std::path::Path::new(DEFAULT_CONF).exists() {
        return crate::serve::demo();
    }
    crate::serve::run(&source(conf(None)))
}
