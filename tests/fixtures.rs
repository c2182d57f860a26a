//! `rginx check` on the fixture corpus (fixtures/README.md), and the same
//! fixtures through real `nginx -t`: both must give the same verdict and
//! the same first error line.

mod common;

use common::*;

fn failures_to_string(failures: &[String]) -> String {
    format!(
        "{} fixture(s) disagree:\n{}",
        failures.len(),
        failures.join("\n")
    )
}

#[test]
fn valid_fixtures_pass_rginx_check() {
    let dir = root().join("fixtures/valid");
    let mut failures = Vec::new();
    for name in fixtures("valid") {
        let out = check_in(&dir, &name, &["--no-lint"]);
        if !out.status.success() {
            failures.push(format!("{name}: {:?}", first_emerg(&out)));
        }
    }
    assert!(failures.is_empty(), "{}", failures_to_string(&failures));
}

/// Whatever validation accepts, the evaluator compiles: `rginx check` does
/// not compile regexes for the runtime (that costs more than the check), so
/// this test holds the two in step.
#[test]
fn every_valid_fixture_compiles_for_serving() {
    let mut failures = Vec::new();
    for category in ["valid", "lint"] {
        let dir = root().join("fixtures").join(category);
        for name in fixtures(category) {
            let parsed = rginx_config::parse_file(&dir.join(&name));
            let checked = rginx_core::build(
                &parsed,
                &rginx_proxy::SystemResolver,
                rginx_core::BuildOptions::default(),
            );
            if checked.has_errors() {
                failures.push(format!("{category}/{name}: {:?}", checked.diagnostics));
                continue;
            }
            if let Err(e) = rginx_core::plan::Runtime::new(&checked.model, "test") {
                failures.push(format!("{category}/{name}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures_to_string(&failures));
}

fn assert_first_error(category: &str) {
    let dir = root().join("fixtures").join(category);
    let names = fixtures(category);
    assert!(!names.is_empty());
    let mut failures = Vec::new();
    for name in names {
        let want = expected(category, &name);
        let out = check_in(&dir, &name, &["--no-lint"]);
        let got = first_emerg(&out);
        if out.status.code() != Some(1) || got.as_deref() != Some(want.trim_end()) {
            failures.push(format!(
                "{name}\n  want: {}\n  got:  {got:?} (exit {:?})",
                want.trim_end(),
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures_to_string(&failures));
}

#[test]
fn invalid_fixtures_give_nginx_first_error() {
    assert_first_error("invalid");
}

#[test]
fn rginx_only_fixtures_are_rejected_with_a_named_reason() {
    assert_first_error("rginx-only");
}

#[test]
fn lint_fixtures_warn_and_pass() {
    let dir = root().join("fixtures/lint");
    let mut failures = Vec::new();
    for name in fixtures("lint") {
        let want: Vec<String> = expected("lint", &name)
            .lines()
            .map(str::to_string)
            .collect();
        let out = check_in(&dir, &name, &[]);
        let got = warnings(&out);
        if !out.status.success() || got != want {
            failures.push(format!("{name}\n  want: {want:#?}\n  got:  {got:#?}"));
        }
        let quiet = check_in(&dir, &name, &["--no-lint"]);
        let leftover: Vec<String> = warnings(&quiet)
            .into_iter()
            .filter(|w| want.contains(w) && !w.contains("directive is ignored"))
            .collect();
        if !leftover.is_empty() {
            failures.push(format!("{name}: --no-lint still printed {leftover:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures_to_string(&failures));
}

/// Fixtures nginx cannot be run on: it recurses until it crashes.
const NGINX_CRASHES: &[&str] = &["include-cycle.conf"];

#[test]
fn nginx_agrees_on_every_fixture() {
    let Some(nginx) = nginx() else { return };
    let mut failures = Vec::new();
    for category in ["valid", "invalid", "rginx-only", "lint"] {
        let dir = root().join("fixtures").join(category);
        for name in fixtures(category) {
            if NGINX_CRASHES.contains(&name.as_str()) {
                continue;
            }
            let (ok, emerg) = nginx_test(&nginx, &dir.join(&name));
            let want_ok = category != "invalid";
            if ok != want_ok {
                failures.push(format!(
                    "{category}/{name}: nginx -t ok={ok}, expected {want_ok}: {emerg:?}"
                ));
                continue;
            }
            if category == "invalid" {
                let want = expected(category, &name);
                if emerg.as_deref() != Some(want.trim_end()) {
                    failures.push(format!(
                        "{category}/{name}\n  nginx: {emerg:?}\n  fixture: {}",
                        want.trim_end()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures_to_string(&failures));
}
