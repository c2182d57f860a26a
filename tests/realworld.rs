//! Published nginx configurations of real self-hosted projects
//! (fixtures/realworld/, each directory one configuration, sources and
//! adaptations in its README.md) against real `nginx -t` and `rginx check`.
//!
//! Every configuration must pass `nginx -t`. `rginx check --no-lint` must
//! then either accept it or refuse it honestly: every `rginx: [emerg]` line
//! must say that a feature is not supported by rginx and name the FILE:LINE
//! of the directive, because an error of any other kind would mean rginx
//! calls a valid nginx configuration invalid. Lines that break this rule
//! today are pinned in `KNOWN_DISHONEST` (each must still occur, so that
//! the list stays true).
//!
//! The verdicts (accepted, or the first `[emerg]` line) are pinned in
//! fixtures/realworld/EXPECTED, one line per configuration;
//! `RGINX_BLESS=1 cargo test --test realworld` rewrites that file. The share
//! of accepted configurations is printed to stderr.

mod common;

use std::path::Path;

use common::*;

/// `[emerg]` lines that are not honest refusals, known today: (fixture,
/// line with paths relative to the fixture directory, why).
const KNOWN_DISHONEST: &[(&str, &str, &str)] = &[];

/// The fixture directories (those holding an `nginx.conf`), sorted.
fn fixture_names(base: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(base)
        .expect("fixtures/realworld")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("nginx.conf").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Whether an `[emerg]` line is an honest refusal: it says something is not
/// supported by rginx, and ends with ` in FILE:LINE` where FILE exists in
/// the fixture directory and has such a line.
fn honest_refusal(dir: &Path, line: &str) -> bool {
    if !line.contains("not supported by rginx") {
        return false;
    }
    let Some((_, place)) = line.rsplit_once(" in ") else {
        return false;
    };
    let Some((file, number)) = place.rsplit_once(':') else {
        return false;
    };
    let Ok(number) = number.parse::<usize>() else {
        return false;
    };
    // a final newline starts one more line, as nginx counts
    let lines = std::fs::read_to_string(dir.join(file)).map(|text| text.split('\n').count());
    matches!(lines, Ok(count) if (1..=count).contains(&number))
}

#[test]
fn realworld_configs_pass_nginx_and_rginx_refuses_honestly() {
    let Some(nginx) = nginx() else { return };
    let base = root().join("fixtures/realworld");
    let names = fixture_names(&base);
    assert!(names.len() >= 25, "too few fixtures: {names:?}");
    let mut failures = Vec::new();

    for name in &names {
        let (ok, emerg) = nginx_test(&nginx, &base.join(name).join("nginx.conf"));
        if ok {
            continue;
        }
        let said = emerg.unwrap_or_default();
        if as_root() {
            failures.push(format!("{name}: nginx -t fails: {said}"));
        } else {
            // user, log files and cache paths may need root
            eprintln!("realworld: {name}: nginx -t fails when not root, not judged: {said}");
        }
    }

    let mut verdicts = String::new();
    let mut accepted = 0;
    let mut seen_known = vec![false; KNOWN_DISHONEST.len()];
    for name in &names {
        let dir = base.join(name);
        let out = check_in(&dir, "nginx.conf", &["--no-lint"]);
        let prefix = format!("{}/", dir.display());
        let emergs: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.starts_with("rginx: [emerg]"))
            .map(|l| l.replace(&prefix, ""))
            .collect();
        for line in &emergs {
            if honest_refusal(&dir, line) {
                continue;
            }
            match KNOWN_DISHONEST
                .iter()
                .position(|(n, l, _)| n == name && l == line)
            {
                Some(i) => seen_known[i] = true,
                None => failures.push(format!("{name}: not an honest refusal: {line}")),
            }
        }
        let verdict = match (out.status.success(), emergs.first()) {
            (true, None) => {
                accepted += 1;
                "accepted".to_string()
            }
            (false, Some(first)) => format!("refused: {first}"),
            (true, Some(first)) => {
                failures.push(format!("{name}: exit 0 with an [emerg]: {first}"));
                format!("refused: {first}")
            }
            (false, None) => {
                failures.push(format!(
                    "{name}: rejected without an [emerg] line (exit {:?})",
                    out.status.code()
                ));
                "rejected without [emerg]".to_string()
            }
        };
        verdicts.push_str(&format!("{name} {verdict}\n"));
    }
    for (i, (name, line, why)) in KNOWN_DISHONEST.iter().enumerate() {
        if !seen_known[i] {
            failures.push(format!(
                "{name}: no longer prints {line:?} ({why}): take it off KNOWN_DISHONEST"
            ));
        }
    }

    let path = base.join("EXPECTED");
    if std::env::var_os("RGINX_BLESS").is_some() {
        std::fs::write(&path, &verdicts).expect("write fixtures/realworld/EXPECTED");
    }
    let pinned = std::fs::read_to_string(&path).unwrap_or_default();
    if pinned != verdicts {
        let old: Vec<&str> = pinned.lines().collect();
        let new: Vec<&str> = verdicts.lines().collect();
        for line in old.iter().filter(|l| !new.contains(l)) {
            failures.push(format!("EXPECTED has:  {line}"));
        }
        for line in new.iter().filter(|l| !old.contains(l)) {
            failures.push(format!("now:           {line}"));
        }
        failures.push(
            "fixtures/realworld/EXPECTED is out of date: run \
             `RGINX_BLESS=1 cargo test --test realworld`"
                .to_string(),
        );
    }

    eprintln!(
        "realworld: {accepted} of {} configs accepted ({:.1} %)",
        names.len(),
        100.0 * accepted as f64 / names.len() as f64
    );
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
