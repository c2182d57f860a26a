//! # rginx-core
//!
//! The typed model of an nginx configuration and everything decided from it
//! without touching the network: the directive table ([`table`]), validation
//! with nginx's own messages ([`build`]), lints for common proxy mistakes
//! ([`lint`]). Host names are resolved through the [`Resolver`] trait so
//! that this crate does no I/O itself.

#![forbid(unsafe_code)]
// no panics on input: errors are values (clippy.toml allows both in tests)
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![warn(missing_docs)]

pub mod build;
pub mod calendar;
pub mod diag;
pub mod docs;
pub mod handlers;
pub mod lint;
pub mod locate;
pub mod model;
pub mod names;
pub mod peer;
/// Regexes as nginx compiles and runs them (the `rginx-pcre` crate).
pub use rginx_pcre as pcre;
pub mod plan;
pub mod report;
pub mod resolve;
pub mod select;
pub mod snippet;
pub mod stats;
pub mod table;
pub mod template;
pub mod uri;
pub mod user_agent;
pub mod values;
pub mod vars;

pub use build::{build, BuildOptions, Checked, DEFAULT_PREFIX};
pub use diag::{Diagnostic, Severity};
pub use model::Model;
pub use resolve::{LiteralResolver, Resolver};

/// Parses and validates a configuration file: the whole of `rginx check`
/// short of printing. Lints run when `lints` is set.
pub fn check_file(
    path: &std::path::Path,
    resolver: &dyn Resolver,
    options: BuildOptions,
    lints: bool,
) -> (rginx_config::Config, Checked) {
    finish_check(rginx_config::parse_file(path), resolver, options, lints)
}

/// [`check_file`] for a file that may be a snippet: its context is
/// detected ([`snippet::detect`]) unless `context` says it, and a snippet
/// is checked inside a generated configuration ([`snippet::wrap`]; the
/// `listen` address goes into the generated `server`). `globals` (`-g`)
/// come before a whole configuration's directives. Returns the context
/// used too.
#[allow(clippy::too_many_arguments)]
pub fn check_path(
    path: &std::path::Path,
    context: Option<snippet::SnippetContext>,
    listen: Option<&str>,
    globals: Option<&str>,
    resolver: &dyn Resolver,
    options: BuildOptions,
    lints: bool,
) -> (rginx_config::Config, Checked, snippet::SnippetContext) {
    let parsed = rginx_config::parse_file_with_globals(path, globals);
    let context = context.unwrap_or_else(|| snippet::detect(&parsed.config.directives));
    if context == snippet::SnippetContext::Main {
        let (config, checked) = finish_check(parsed, resolver, options, lints);
        return (config, checked, context);
    }
    let wrapper = snippet::wrap(path, context, listen);
    let parsed = rginx_config::parse_str(&wrapper.path, &wrapper.text);
    let (config, checked) = finish_check(parsed, resolver, options, lints);
    (config, checked, context)
}

/// [`check_file`] for configuration text held in memory (the built-in
/// demo); `path` names it in messages and anchors relative includes.
pub fn check_text(
    path: &std::path::Path,
    text: &str,
    resolver: &dyn Resolver,
    options: BuildOptions,
    lints: bool,
) -> (rginx_config::Config, Checked) {
    finish_check(
        rginx_config::parse_str(path, text),
        resolver,
        options,
        lints,
    )
}

fn finish_check(
    parsed: rginx_config::Parsed,
    resolver: &dyn Resolver,
    options: BuildOptions,
    lints: bool,
) -> (rginx_config::Config, Checked) {
    let mut checked = build(&parsed, resolver, options);
    if lints && !checked.has_errors() {
        let found = lint::lint(&checked.model);
        checked.diagnostics.extend(found);
    }
    (parsed.config, checked)
}
