//! `rginx check --report`: the migration report of a configuration tree,
//! as a table (text) or as data (`--format json`), on stdout.

use std::fmt::Write as _;
use std::io::Write as _;

use rginx_config::Config;
use rginx_core::json::string as json_string;
use rginx_core::report::{directive_uses, DirectiveUse, UseStatus};
use rginx_core::snippet::SnippetContext;
use rginx_core::{Checked, Diagnostic};

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
            let _ = write!(
                out,
                "{{\"file\":{},\"context\":\"{}\",\"ok\":{},\"summary\":{{\"directives\":{},\"supported\":{supported},\"ignored\":{ignored},\"unsupported\":{unsupported}}},\"directives\":[",
                json_string(&file.display().to_string()),
                context.name(),
                !checked.has_errors(),
                uses.len()
            );
            for (i, u) in uses.iter().enumerate() {
                let path = config
                    .file(u.span.file)
                    .map(|f| f.path.display().to_string())
                    .unwrap_or_default();
                let note = match u.status {
                    UseStatus::Supported => "null".to_string(),
                    _ => json_string(u.status.note()),
                };
                let _ = write!(
                    out,
                    "{}{{\"file\":{},\"line\":{},\"directive\":{},\"status\":\"{}\",\"note\":{note}}}",
                    if i > 0 { "," } else { "" },
                    json_string(&path),
                    u.span.line,
                    json_string(&u.name),
                    u.status.label()
                );
            }
            out.push_str("],\"findings\":[");
            for (i, d) in findings.iter().enumerate() {
                let at = d
                    .location(config)
                    .map_or("null".to_string(), |l| json_string(&l));
                let hint = d.hint.as_deref().map_or("null".to_string(), json_string);
                let _ = write!(
                    out,
                    "{}{{\"level\":\"{}\",\"message\":{},\"at\":{at},\"hint\":{hint}}}",
                    if i > 0 { "," } else { "" },
                    d.severity.label(),
                    json_string(&d.message)
                );
            }
            out.push_str("]}\n");
        }
    }
    let _ = std::io::stdout().write_all(out.as_bytes());
}
