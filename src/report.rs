//! `rginx check --report`: the migration report of a configuration tree,
//! as a table (text) or as data (`--format json`), on stdout.

use std::fmt::Write as _;
use std::io::Write as _;

use rginx_config::Config;
use rginx_core::report::{directive_uses, DirectiveUse, UseStatus};
use rginx_core::snippet::SnippetContext;
use rginx_core::{Checked, Diagnostic};
use serde_json::json;

use crate::cli::Format;

/// Whether a diagnostic only restates a row of the table (a directive
/// rginx ignores or does not support).
fn restates_a_row(d: &Diagnostic) -> bool {
    (d.message.starts_with("directive \"") && d.message.ends_with("is not supported by rginx"))
        || d.message.contains(" directive is ignored by rginx: ")
}

/// A row's status and note: the table's, or, for a directive rginx knows
/// whose use here it refuses (a `listen` parameter, a variable, a unix
/// socket), unsupported with the refusal.
fn row<'d>(u: &'d DirectiveUse, diagnostics: &'d [Diagnostic]) -> (&'static str, &'d str) {
    let refusal = diagnostics.iter().find(|d| {
        d.is_error()
            && d.message.contains("not supported by rginx")
            && d.span
                .is_some_and(|s| s.file == u.span.file && s.line == u.span.line)
    });
    match (u.status, refusal) {
        (UseStatus::Supported, Some(d)) => ("unsupported", d.message.as_str()),
        (status, _) => (status.label(), status.note()),
    }
}

/// Prints the report; the findings are the diagnostics (with the lints,
/// run here even when there are errors) that the table does not show.
pub fn print(
    file: &std::path::Path,
    config: &Config,
    checked: &Checked,
    context: SnippetContext,
    format: Format,
) {
    // the generated wrapper of a snippet is not the user's configuration
    let uses: Vec<DirectiveUse> = directive_uses(config)
        .into_iter()
        .filter(|u| context == SnippetContext::Main || u.span.file.0 != 0)
        .collect();
    let mut findings: Vec<&Diagnostic> = checked
        .diagnostics
        .iter()
        .filter(|d| !restates_a_row(d))
        .collect();
    let lints = if checked.has_errors() {
        rginx_core::lint::lint(&checked.model)
    } else {
        Vec::new()
    };
    findings.extend(lints.iter());
    let rows: Vec<(&str, &str)> = uses.iter().map(|u| row(u, &checked.diagnostics)).collect();
    let count = |label: &str| rows.iter().filter(|(l, _)| *l == label).count();
    let (supported, ignored, unsupported) =
        (count("supported"), count("ignored"), count("unsupported"));
    let location = |u: &DirectiveUse| {
        config.file(u.span.file).map_or_else(String::new, |f| {
            format!("{}:{}", f.path.display(), u.span.line)
        })
    };
    let mut out = String::new();
    match format {
        Format::Text => {
            let _ = writeln!(out, "# rginx migration report: {}", file.display());
            if context != SnippetContext::Main {
                let _ = writeln!(
                    out,
                    "# read as a snippet of {}-context directives",
                    context.name()
                );
            }
            let _ = writeln!(
                out,
                "# {} directives: {supported} supported, {ignored} ignored, {unsupported} unsupported",
                uses.len()
            );
            let width = uses.iter().map(|u| location(u).len()).max().unwrap_or(0);
            let name_width = uses.iter().map(|u| u.name.len()).max().unwrap_or(0);
            for (u, (label, note)) in uses.iter().zip(&rows) {
                let line = format!(
                    "{:width$}  {:name_width$}  {:11}  {}",
                    location(u),
                    u.name,
                    label,
                    note
                );
                let _ = writeln!(out, "{}", line.trim_end());
            }
            let _ = writeln!(
                out,
                "# {} other findings (errors, warnings, lints)",
                findings.len()
            );
            for d in &findings {
                let _ = writeln!(out, "{}", d.render(config));
                if let Some(hint) = &d.hint {
                    let _ = writeln!(out, "    hint: {hint}");
                }
            }
        }
        Format::Json => {
            let directives: Vec<serde_json::Value> = uses
                .iter()
                .zip(&rows)
                .map(|(u, (label, note))| {
                    let path = config
                        .file(u.span.file)
                        .map(|f| f.path.display().to_string())
                        .unwrap_or_default();
                    let note = (!note.is_empty()).then_some(*note);
                    json!({
                        "file": path,
                        "line": u.span.line,
                        "directive": u.name,
                        "status": label,
                        "note": note,
                    })
                })
                .collect();
            let findings: Vec<serde_json::Value> = findings
                .iter()
                .map(|d| {
                    json!({
                        "level": d.severity.label(),
                        "message": d.message,
                        "at": d.location(config),
                        "hint": d.hint,
                    })
                })
                .collect();
            let report = json!({
                "file": file.display().to_string(),
                "context": context.name(),
                "ok": !checked.has_errors(),
                "summary": {
                    "directives": uses.len(),
                    "supported": supported,
                    "ignored": ignored,
                    "unsupported": unsupported,
                },
                "directives": directives,
                "findings": findings,
            });
            let _ = writeln!(out, "{report}");
        }
    }
    let _ = std::io::stdout().write_all(out.as_bytes());
}
