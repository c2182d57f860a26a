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
    d.message.ends_with("is not supported by rginx")
        || d.message.contains(" directive is ignored by rginx: ")
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
    let count = |label: &str| uses.iter().filter(|u| u.status.label() == label).count();
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
            for u in &uses {
                let line = format!(
                    "{:width$}  {:name_width$}  {:11}  {}",
                    location(u),
                    u.name,
                    u.status.label(),
                    u.status.note()
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
                .map(|u| {
                    let path = config
                        .file(u.span.file)
                        .map(|f| f.path.display().to_string())
                        .unwrap_or_default();
                    let note = match u.status {
                        UseStatus::Supported => None,
                        _ => Some(u.status.note()),
                    };
                    json!({
                        "file": path,
                        "line": u.span.line,
                        "directive": u.name,
                        "status": u.status.label(),
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
