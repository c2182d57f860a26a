//! Command line: nginx's switches `-c`, `-p`, `-e`, `-g`, `-t`, `-T`,
//! `-q`, `-s`, `-v`, `-V` and `-h`
//! (<https://nginx.org/en/docs/switches.html>), and the `check` subcommand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use rginx_core::snippet::SnippetContext;

use crate::check::{self, CheckRequest, Source};

/// Default configuration path when `-c` is not given.
pub const DEFAULT_CONF: &str = "/etc/rginx/rginx.conf";

/// nginx's default configuration (Debian's `--conf-path`), used by nginx's
/// switches without `-c` when rginx's own is absent: a unit or script
/// written for nginx then finds the configuration it was written for.
pub const NGINX_CONF: &str = "/etc/nginx/nginx.conf";

/// The configuration nginx's switches read without `-c`: rginx's, or
/// nginx's when only that one exists.
fn default_conf() -> PathBuf {
    let ours = std::path::Path::new(DEFAULT_CONF);
    if !ours.exists() && std::path::Path::new(NGINX_CONF).exists() {
        return PathBuf::from(NGINX_CONF);
    }
    ours.to_path_buf()
}

/// rginx: a reverse proxy that reads nginx's configuration language.
#[derive(Debug, Parser)]
#[command(
    name = "rginx",
    about,
    disable_help_subcommand = true,
    disable_version_flag = true,
    disable_help_flag = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration file (relative: under the prefix when `-p` is given,
    /// else in the working directory).
    #[arg(short = 'c', long = "conf", value_name = "FILE", global = true)]
    conf: Option<PathBuf>,
    /// Prefix relative paths in the configuration resolve against
    /// (default: /usr/share/nginx/, as Debian's nginx).
    #[arg(short = 'p', value_name = "PREFIX", global = true)]
    prefix: Option<String>,
    /// Error log used until the configuration names one, and when its
    /// main context names none (`stderr` for the standard error).
    #[arg(short = 'e', value_name = "FILE")]
    error_log: Option<String>,
    /// Main-context directives read before the configuration file.
    #[arg(short = 'g', value_name = "DIRECTIVES")]
    globals: Option<String>,
    /// Show the version and exit.
    #[arg(short = 'v', long = "version")]
    version: bool,
    /// Show the version, the nginx version rginx follows and what it
    /// implements, then exit.
    #[arg(short = 'V')]
    version_long: bool,
    /// Show this help.
    #[arg(short = 'h', short_alias = '?', long = "help")]
    help: bool,
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
    if cli.help {
        use clap::CommandFactory;
        let _ = Cli::command().print_help();
        return ExitCode::SUCCESS;
    }
    if cli.version || cli.version_long {
        crate::version::print(cli.version_long);
        return ExitCode::SUCCESS;
    }
    // nginx's prefix ends with a slash (`ngx_process_options`)
    let prefix = cli.prefix.as_ref().map(|p| {
        if p.ends_with('/') {
            p.clone()
        } else {
            format!("{p}/")
        }
    });
    let conf = |explicit: Option<PathBuf>| {
        let file = explicit.or(cli.conf.clone()).unwrap_or_else(default_conf);
        // nginx takes a relative -c under its prefix
        match &prefix {
            Some(prefix) if file.is_relative() => PathBuf::from(prefix).join(file),
            _ => file,
        }
    };
    let source = |file: PathBuf| Source {
        file,
        context: cli.output.context.map(ContextArg::snippet),
        listen: cli.output.listen.clone(),
        prefix: prefix.clone(),
        globals: cli.globals.clone(),
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
    // a bare `rginx` is the demo unless rginx has a configuration; with
    // nginx's switches (-g, -p, -e) it is nginx, with nginx's default
    let nginx_switches = cli.globals.is_some() || cli.prefix.is_some() || cli.error_log.is_some();
    if cli.conf.is_none() && !nginx_switches && !std::path::Path::new(DEFAULT_CONF).exists() {
        return crate::serve::demo(prefix.as_deref());
    }
    // -e: relative under the prefix, as nginx's ngx_log_init
    let error_log = cli.error_log.as_ref().map(|e| match e.as_str() {
        "stderr" => e.clone(),
        file => crate::check::build_options(prefix.as_deref()).full_name(file),
    });
    crate::serve::run(&source(conf(None)), error_log.as_deref())
}

/// What nginx says of a command line it cannot read, as its
/// `ngx_get_options` reads it (`None`: nginx would take it, and clap's
/// own message stands).
pub fn nginx_option_error(args: &[String]) -> Option<String> {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let Some(letters) = arg.strip_prefix('-') else {
            return Some(format!("invalid option: \"{arg}\""));
        };
        if letters.is_empty() {
            return Some(format!("invalid option: \"{arg}\""));
        }
        for (i, letter) in letters.char_indices() {
            let needs = match letter {
                '?' | 'h' | 'v' | 'V' | 't' | 'T' | 'q' => continue,
                'p' => "directory name",
                'e' | 'c' => "file name",
                'g' | 's' => "parameter",
                other => return Some(format!("invalid option: \"{other}\"")),
            };
            // the rest of the word, or the next word, is the value
            let rest = &letters[i + letter.len_utf8()..];
            let value = if rest.is_empty() {
                match args.next() {
                    Some(v) => v.as_str(),
                    None => return Some(format!("option \"-{letter}\" requires {needs}")),
                }
            } else {
                rest
            };
            if letter == 's' && rginx_proxy::process::Signal::from_name(value).is_none() {
                return Some(format!("invalid option: \"-s {value}\""));
            }
            break;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::nginx_option_error;

    fn said(args: &[&str]) -> Option<String> {
        nginx_option_error(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn bad_switches_get_nginx_s_words() {
        assert_eq!(said(&["-x"]).as_deref(), Some("invalid option: \"x\""));
        assert_eq!(said(&["-tx"]).as_deref(), Some("invalid option: \"x\""));
        assert_eq!(
            said(&["extra"]).as_deref(),
            Some("invalid option: \"extra\"")
        );
        assert_eq!(
            said(&["-c"]).as_deref(),
            Some("option \"-c\" requires file name")
        );
        assert_eq!(
            said(&["-t", "-p"]).as_deref(),
            Some("option \"-p\" requires directory name")
        );
        assert_eq!(
            said(&["-g"]).as_deref(),
            Some("option \"-g\" requires parameter")
        );
        assert_eq!(
            said(&["-s", "halt"]).as_deref(),
            Some("invalid option: \"-s halt\"")
        );
        assert_eq!(said(&["-c/etc/x.conf", "-t"]), None);
        assert_eq!(said(&["-s", "reload"]), None);
    }
}
