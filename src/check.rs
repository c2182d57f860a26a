//! `rginx check` / `rginx -t` / `rginx -T`: validate like `nginx -t`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use rginx_config::Config;
use rginx_core::snippet::SnippetContext;
use rginx_core::{check_path, BuildOptions, Diagnostic};
use rginx_proxy::SystemResolver;
use serde_json::json;

use crate::cli::Format;

/// A configuration file, and how to read it when it is a snippet.
pub struct Source {
    /// The file (`-c` or `check FILE`).
    pub file: PathBuf,
    /// `--context`: the context of its top-level directives, detected when
    /// `None`.
    pub context: Option<SnippetContext>,
    /// `--listen`: where a server or location snippet listens.
    pub listen: Option<String>,
    /// `-p`: the prefix relative paths resolve against (`None`: the
    /// default one).
    pub prefix: Option<String>,
    /// `-g`: directives read before the file's.
    pub globals: Option<String>,
}

impl Source {
    /// Parses and validates it; the context it was read in comes back too.
    /// `--listen` on a whole configuration or an http snippet is an error,
    /// given as a diagnostic.
    fn check(&self, lints: bool) -> (Config, rginx_core::Checked, SnippetContext) {
        let (config, mut checked, context) = check_path(
            &self.file,
            self.context,
            self.listen.as_deref(),
            self.globals.as_deref(),
            &SystemResolver,
            build_options(self.prefix.as_deref()),
            lints,
        );
        // what the certificates and the TLS policy hold, once the
        // configuration itself is sound (nginx reads them at its merge)
        if !checked.has_errors() {
            checked
                .diagnostics
                .extend(rginx_proxy::tls::check(&checked.model));
        }
        if self.listen.is_some() && matches!(context, SnippetContext::Main | SnippetContext::Http) {
            checked.diagnostics.insert(
                0,
                Diagnostic::error(
                    format!(
                        "--listen applies to server and location snippets; {} is read in the {} context (its servers say where they listen)",
                        self.file.display(),
                        context.name()
                    ),
                    None,
                    (0, 0, 0),
                ),
            );
        }
        (config, checked, context)
    }
}

/// What to check and how to report it.
pub struct CheckRequest {
    /// The configuration file and how to read it.
    pub source: Source,
    /// Text or JSON.
    pub format: Format,
    /// Run rginx's lints.
    pub lints: bool,
    /// Print only diagnostics.
    pub quiet: bool,
    /// Print the configuration with its includes afterwards (`-T`).
    pub dump: bool,
    /// Print the migration report instead of the diagnostics.
    pub report: bool,
}

/// Runs a check and prints the result; exit code 0 or 1.
pub fn run(req: &CheckRequest) -> ExitCode {
    let (config, checked, context) = req.source.check(req.lints);
    if req.report {
        crate::report::print(&req.source.file, &config, &checked, context, req.format);
        return ExitCode::from(if checked.has_errors() { 1 } else { 0 });
    }
    if context != SnippetContext::Main && !req.quiet && req.format == Format::Text {
        eprintln!(
            "rginx: {} holds {}-context directives: checked as a snippet (--context to choose; -T shows the wrapper)",
            req.source.file.display(),
            context.name()
        );
    }
    let ok = !checked.has_errors();
    match req.format {
        Format::Text => print_text(req, &config, &checked.diagnostics, ok),
        Format::Json => print_json(req, &config, &checked.diagnostics, ok),
    }
    if ok && req.dump {
        print_dump(&config);
    }
    ExitCode::from(if ok { 0 } else { 1 })
}

/// Options for building the model on this machine, with relative paths
/// under `prefix` (`None`: Debian's nginx's).
pub fn build_options(prefix: Option<&str>) -> BuildOptions {
    // nginx's default listen port and its `user` checks depend on it
    let as_root = rginx_proxy::process::is_root();
    BuildOptions {
        default_listen_port: if as_root { 80 } else { 8000 },
        as_root,
        prefix: prefix.unwrap_or(rginx_core::DEFAULT_PREFIX).to_string(),
    }
}

/// Loads a configuration to serve it: prints its diagnostics as `check`
/// does (without the summary lines) and returns the model when it has no
/// errors.
pub fn load(source: &Source) -> Option<rginx_core::Model> {
    let (config, checked, _) = source.check(true);
    report((config, checked))
}

/// [`load`] for a reload: the errors come back as nginx's error log
/// lines (`unknown directive "x" in FILE:LINE`) instead of being printed.
pub fn load_for_reload(source: &Source) -> Result<rginx_core::Model, Vec<String>> {
    let (config, checked, _) = source.check(true);
    if !checked.has_errors() {
        return Ok(checked.model);
    }
    Err(checked
        .diagnostics
        .iter()
        .filter(|d| d.severity == rginx_core::Severity::Error)
        .map(|d| match d.location(&config) {
            Some(at) => format!("{} in {at}", d.message),
            None => d.message.clone(),
        })
        .collect())
}

/// [`load`] for configuration text held in memory, relative paths under
/// `prefix`.
pub fn load_text(name: &str, text: &str, prefix: &str) -> Option<rginx_core::Model> {
    let checked = rginx_core::check_text(
        name.as_ref(),
        text,
        &SystemResolver,
        build_options(Some(prefix)),
        true,
    );
    report(checked)
}

fn report((config, checked): (Config, rginx_core::Checked)) -> Option<rginx_core::Model> {
    let mut out = String::new();
    write_diagnostics(&mut out, &config, &checked.diagnostics);
    let _ = std::io::stderr().write_all(out.as_bytes());
    (!checked.has_errors()).then_some(checked.model)
}

fn write_diagnostics(out: &mut String, config: &Config, diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        let _ = writeln!(out, "rginx: {}", d.render(config));
        if let (Some(span), Some(excerpt)) = (d.span, d.excerpt(config)) {
            let location = d.location(config).unwrap_or_default();
            let _ = writeln!(out, "  --> {location}:{}", span.column);
            for line in excerpt.lines() {
                let _ = writeln!(out, "   | {line}");
            }
        }
        if let Some(hint) = &d.hint {
            let _ = writeln!(out, "   = hint: {hint}");
        }
    }
}

fn print_text(req: &CheckRequest, config: &Config, diagnostics: &[Diagnostic], ok: bool) {
    let file = req.source.file.display();
    let mut out = String::new();
    write_diagnostics(&mut out, config, diagnostics);
    if ok {
        if !req.quiet {
            let _ = writeln!(out, "rginx: the configuration file {file} syntax is ok");
            let _ = writeln!(out, "rginx: configuration file {file} test is successful");
        }
    } else {
        let _ = writeln!(out, "rginx: configuration file {file} test failed");
    }
    let _ = std::io::stderr().write_all(out.as_bytes());
}

fn print_json(req: &CheckRequest, config: &Config, diagnostics: &[Diagnostic], ok: bool) {
    let diagnostics: Vec<serde_json::Value> = diagnostics
        .iter()
        .map(|d| {
            let at = d.span.and_then(|s| config.file(s.file).map(|f| (s, f)));
            json!({
                "level": d.severity.label(),
                "message": d.message,
                "file": at.map(|(_, file)| file.path.display().to_string()),
                "line": at.map(|(span, _)| span.line),
                "column": at.map(|(span, _)| span.column),
                "hint": d.hint,
            })
        })
        .collect();
    let out = json!({
        "ok": ok,
        "file": req.source.file.display().to_string(),
        "diagnostics": diagnostics,
    });
    let _ = std::io::stdout().write_all(format!("{out}\n").as_bytes());
}

/// `-T`: every file read, as nginx prints them: once each, however often
/// it is included (`ngx_conf_add_dump` looks the name up first).
fn print_dump(config: &Config) {
    let mut out = Vec::new();
    let mut printed = std::collections::HashSet::new();
    for file in &config.files {
        // nginx's dump holds files only, not -g's text
        if file.command_line || !printed.insert(&file.path) {
            continue;
        }
        let _ = writeln!(out, "# configuration file {}:", file.path.display());
        out.extend_from_slice(file.text.as_bytes());
        if !file.text.ends_with('\n') {
            out.push(b'\n');
        }
        out.push(b'\n');
    }
    let _ = std::io::stdout().write_all(&out);
}
