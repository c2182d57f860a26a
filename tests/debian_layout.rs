//! The stock Debian layout (the installed package's /etc/nginx, copied to a
//! temporary directory, nothing rewritten): `rginx check` must give a
//! precise result for every directive in every file it reads. A supported
//! directive gets no line, an ignored one its warning, an unsupported one
//! its error, each with the directive's own file and line, and nothing
//! else may appear. A site added beside it (proxying `/api/` with `include
//! proxy_params;` and `/ws/` with the seed's block) checks clean, its
//! relative includes resolving against the configuration's directory.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use rginx_core::report::{directive_uses, UseStatus};

/// Copies a directory tree (files and directories; links followed).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(entry.file_name());
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &target);
        } else if let Ok(bytes) = std::fs::read(&path) {
            std::fs::write(&target, bytes).expect("copy");
        }
    }
}

/// The installed layout copied into a temporary directory, or `None`
/// where nginx is not installed (outside CI).
fn stock_copy() -> Option<(TempDir, PathBuf)> {
    nginx()?;
    let stock = Path::new("/etc/nginx");
    assert!(
        stock.join("nginx.conf").is_file(),
        "the nginx package installs /etc/nginx/nginx.conf"
    );
    let dir = TempDir::new("debian");
    copy_tree(stock, &dir.0);
    let conf = dir.0.join("nginx.conf");
    Some((dir, conf))
}

/// Every message rginx should print for a configuration, computed from the
/// directive table alone (through the migration report's list of uses).
fn expected_lines(conf: &Path, as_root: bool) -> Vec<String> {
    let parsed = rginx_config::parse_file(conf);
    assert!(parsed.error.is_none(), "{:?}", parsed.error);
    let config = &parsed.config;
    let mut out = Vec::new();
    for u in directive_uses(config) {
        let file = &config.files[u.span.file.0 as usize].path;
        let at = format!("{}:{}", file.display(), u.span.line);
        let name = &u.name;
        match u.status {
            UseStatus::Unsupported(_) => out.push(format!(
                "[emerg] directive \"{name}\" is not supported by rginx in {at}"
            )),
            UseStatus::Ignored(reason) => out.push(format!(
                "[warn] \"{name}\" directive is ignored by rginx: {reason} in {at}"
            )),
            UseStatus::Supported if name == "user" && !as_root => out.push(format!(
                "[warn] the \"user\" directive makes sense only if the master process runs with super-user privileges, ignored in {at}"
            )),
            UseStatus::Supported => {}
        }
    }
    out.sort();
    out
}

/// rginx's `[emerg]` and `[warn]` lines.
fn printed_lines(stderr: &str) -> Vec<String> {
    let mut out: Vec<String> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("rginx: "))
        .filter(|l| l.starts_with("[emerg]") || l.starts_with("[warn]"))
        .map(str::to_string)
        .collect();
    out.sort();
    out
}

#[test]
fn every_directive_of_the_stock_layout_gets_its_line() {
    let Some((dir, conf)) = stock_copy() else {
        return;
    };
    let output = rginx()
        .args(["check", "--no-lint", "-c"])
        .arg(&conf)
        .output()
        .expect("run rginx");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        printed_lines(&stderr),
        expected_lines(&conf, as_root()),
        "{stderr}"
    );
    // the stock site serves files: rginx says so, by name and line
    let default_site = dir.0.join("sites-enabled/default");
    let site = std::fs::read_to_string(&default_site).unwrap_or_default();
    for name in ["root", "index", "try_files"] {
        let line = site
            .lines()
            .position(|l| l.trim_start().starts_with(&format!("{name} ")))
            .map_or(0, |i| i + 1);
        // the default site comes through nginx.conf's absolute include
        let want = format!(
            "directive \"{name}\" is not supported by rginx in /etc/nginx/sites-enabled/default:{line}"
        );
        assert!(stderr.contains(&want), "{want}\n{stderr}");
    }
    assert!(!output.status.success());
}

#[test]
fn a_proxy_site_added_to_the_layout_checks_clean() {
    let Some((dir, _)) = stock_copy() else { return };
    let site = dir.0.join("sites-enabled/app");
    std::fs::write(
        &site,
        "server {
    listen 8080;
    server_name app.example.com;

    location /api/ {
        proxy_pass http://127.0.0.1:9001;
        include proxy_params;
    }

    location /ws/ {
        proxy_pass http://127.0.0.1:9001;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection \"upgrade\";
        proxy_set_header Host $host;
        proxy_read_timeout 3600s;
    }
}
",
    )
    .unwrap();
    let output = rginx()
        .args(["check", "--no-lint"])
        .arg(&site)
        .output()
        .expect("run rginx");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("holds http-context directives"), "{stderr}");
    // `include proxy_params;` was read from the copy, not from /etc/nginx
    let dump = rginx()
        .args(["-T", "-q", "--no-lint", "-c"])
        .arg(&site)
        .output()
        .expect("run rginx -T");
    let text = String::from_utf8_lossy(&dump.stdout);
    let copied = dir.0.join("proxy_params");
    assert!(
        text.contains(&format!("# configuration file {}:", copied.display())),
        "{text}"
    );
}

#[test]
fn the_migration_report_lists_every_directive() {
    let Some((_dir, conf)) = stock_copy() else {
        return;
    };
    let uses = directive_uses(&rginx_config::parse_file(&conf).config);
    let output = rginx()
        .args(["check", "--report", "-c"])
        .arg(&conf)
        .output()
        .expect("run rginx");
    let text = String::from_utf8_lossy(&output.stdout);
    let rows: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(rows.len(), uses.len(), "{text}");
    for (row, u) in rows.iter().zip(&uses) {
        assert!(row.contains(&format!(":{} ", u.span.line)), "{row}");
        assert!(row.contains(&format!(" {} ", u.name)), "{row}");
        assert!(row.contains(u.status.label()), "{row}");
    }
    assert!(text.contains("try_files"), "{text}");
    // the same as data
    let json = rginx()
        .args(["check", "--report", "--format", "json", "-c"])
        .arg(&conf)
        .output()
        .expect("run rginx");
    let json = String::from_utf8_lossy(&json.stdout);
    assert!(json.starts_with("{\"file\":"), "{json}");
    assert_eq!(json.matches("\"directive\":").count(), uses.len());
    let unsupported = uses
        .iter()
        .filter(|u| u.status.label() == "unsupported")
        .count();
    assert!(
        json.contains(&format!("\"unsupported\":{unsupported}}}")),
        "{json}"
    );
}
