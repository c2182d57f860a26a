//! The command line: exit codes, the caret excerpt, JSON output, `-t`,
//! `-T`, and bad input that must get a clear error instead of a panic.

mod common;

use common::*;

fn write(dir: &TempDir, name: &str, text: impl AsRef<[u8]>) -> std::path::PathBuf {
    let path = dir.0.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn success_prints_nginx_lines_and_exits_zero() {
    let dir = TempDir::new("cli");
    write(
        &dir,
        "ok.conf",
        "events {}\nhttp { server { listen 127.0.0.1:8080; } }\n",
    );
    let out = check_in(&dir.0, "ok.conf", &[]);
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains("rginx: the configuration file ok.conf syntax is ok"),
        "{err}"
    );
    assert!(
        err.contains("rginx: configuration file ok.conf test is successful"),
        "{err}"
    );
    for flag in ["-t", "-T"] {
        let out = rginx()
            .current_dir(&dir.0)
            .args([flag, "-c", "ok.conf"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{flag}");
    }
}

#[test]
fn errors_show_file_line_column_and_caret() {
    let dir = TempDir::new("cli");
    write(
        &dir,
        "bad.conf",
        "events {}\nhttp {\n    server {\n        proxy_pass http://127.0.0.1;\n    }\n}\n",
    );
    let out = check_in(&dir.0, "bad.conf", &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines[0],
        "rginx: [emerg] \"proxy_pass\" directive is not allowed here in bad.conf:4"
    );
    assert_eq!(lines[1], "  --> bad.conf:4:9");
    assert_eq!(lines[2], "   |         proxy_pass http://127.0.0.1;");
    assert_eq!(lines[3], "   |         ^");
    assert_eq!(
        lines.last().copied(),
        Some("rginx: configuration file bad.conf test failed")
    );
}

#[test]
fn json_output_lists_diagnostics() {
    let dir = TempDir::new("cli");
    write(
        &dir,
        "w.conf",
        "events {}\nhttp {\n    sendfile on;\n    foo bar;\n}\n",
    );
    let out = check_in(&dir.0, "w.conf", &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let json = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        json.trim_end(),
        concat!(
            r#"{"ok":false,"file":"w.conf","diagnostics":["#,
            r#"{"level":"warn","message":"\"sendfile\" directive is ignored by rginx: only affects files nginx serves itself; rginx serves no static files","file":"w.conf","line":3,"column":5,"hint":null},"#,
            r#"{"level":"emerg","message":"unknown directive \"foo\"","file":"w.conf","line":4,"column":5,"hint":null}]}"#
        )
    );
}

#[test]
fn json_output_carries_lint_hints() {
    let dir = TempDir::new("cli");
    let conf = "events {}\nhttp { server { listen 127.0.0.1:8080;\n location /ws {\n proxy_pass http://127.0.0.1:9;\n proxy_http_version 1.1;\n proxy_set_header Upgrade $http_upgrade;\n proxy_set_header Connection upgrade;\n proxy_read_timeout 1h;\n } } }\n";
    write(&dir, "l.conf", conf);
    let out = check_in(&dir.0, "l.conf", &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(json.starts_with(r#"{"ok":true,"#), "{json}");
    assert!(json.contains(r#""level":"warn","message":"location \"/ws\" sends a hard-coded \"Connection: upgrade\""#), "{json}");
    assert!(
        json.contains(r#""line":7,"column":2,"hint":"use map $http_upgrade"#),
        "{json}"
    );
    let quiet = check_in(&dir.0, "l.conf", &["--format", "json", "--no-lint"]);
    assert_eq!(
        String::from_utf8_lossy(&quiet.stdout).trim_end(),
        r#"{"ok":true,"file":"l.conf","diagnostics":[]}"#
    );
}

#[test]
fn dump_prints_every_file_with_its_name() {
    let dir = TempDir::new("cli");
    write(
        &dir,
        "main.conf",
        "events {}\nhttp { include part.conf; include part.conf; }\n",
    );
    write(&dir, "part.conf", "server { listen 127.0.0.1:8080; }\n");
    let out = rginx()
        .current_dir(&dir.0)
        .args(["-T", "-c", "main.conf"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(
        dump.starts_with("# configuration file main.conf:\nevents {}\n"),
        "{dump}"
    );
    assert!(
        dump.contains("# configuration file part.conf:\nserver { listen 127.0.0.1:8080; }\n"),
        "{dump}"
    );
    // included twice, printed once, as nginx prints it
    assert_eq!(
        dump.matches("# configuration file part.conf:").count(),
        1,
        "{dump}"
    );
}

#[test]
fn usage_errors_exit_two() {
    let out = rginx()
        .args(["check", "--format", "yaml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = rginx().arg("--bogus").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn missing_and_unreadable_files_are_clear_errors() {
    let dir = TempDir::new("cli");
    let out = check_in(&dir.0, "nope.conf", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        first_emerg(&out).as_deref(),
        Some("rginx: [emerg] open() \"nope.conf\" failed (2: No such file or directory)")
    );
    std::fs::create_dir(dir.0.join("adir")).expect("mkdir");
    let out = check_in(&dir.0, "adir", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        first_emerg(&out).as_deref(),
        Some("rginx: [emerg] read() \"adir\" failed (21: Is a directory)")
    );
}

#[test]
fn binary_file_is_a_clear_error() {
    let dir = TempDir::new("cli");
    let mut bytes = b"\x7fELF\x02\x01\x01\x00".to_vec();
    bytes.extend((0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    write(&dir, "bin.conf", &bytes);
    let out = check_in(&dir.0, "bin.conf", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = first_emerg(&out).expect("an error line");
    assert!(line.contains("in bin.conf:1"), "{line}");
}

#[test]
fn ten_megabyte_config_is_checked() {
    let dir = TempDir::new("cli");
    let mut conf = String::from("events {}\nhttp {\n server {\n  listen 127.0.0.1:8080;\n");
    let mut i = 0;
    while conf.len() < 10 * 1024 * 1024 {
        conf.push_str(&format!(
            "  location /l{i} {{ proxy_pass http://127.0.0.1:9000; }}\n"
        ));
        i += 1;
    }
    conf.push_str(" }\n}\n");
    write(&dir, "big.conf", &conf);
    let out = check_in(&dir.0, "big.conf", &["-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // the same size of garbage fails cleanly
    write(&dir, "junk.conf", "x".repeat(10 * 1024 * 1024));
    let out = check_in(&dir.0, "junk.conf", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        first_emerg(&out).as_deref(),
        Some("rginx: [emerg] too long parameter \"xxxxxxxxxx...\" started in junk.conf:1")
    );
}

#[test]
fn thousand_nested_blocks_are_a_clear_error() {
    let dir = TempDir::new("cli");
    let depth = 1000;
    let mut conf = String::from("events {}\nhttp { server {\n");
    for _ in 0..depth {
        conf.push_str("location / {\n");
    }
    for _ in 0..depth {
        conf.push_str("}\n");
    }
    conf.push_str("} }\n");
    write(&dir, "deep.conf", &conf);
    let out = check_in(&dir.0, "deep.conf", &[]);
    assert_eq!(out.status.code(), Some(1));
    let line = first_emerg(&out).expect("an error line");
    assert!(line.contains("nested too deeply"), "{line}");
}

#[test]
fn the_websocket_example_is_clean_for_rginx_and_nginx() {
    let examples = root().join("examples");
    let out = check_in(&examples, "websocket.conf", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(warnings(&out).is_empty(), "{:?}", warnings(&out));
    if let Some(nginx) = nginx() {
        let (ok, emerg) = nginx_test(&nginx, &examples.join("websocket.conf"));
        assert!(ok, "nginx -t rejects the example: {emerg:?}");
    }
}

/// `check --report` marks a directive rginx knows as unsupported where
/// this use of it is refused (a `listen` parameter, a variable), and lists
/// every refusal `check` reports.
#[test]
fn the_report_lists_every_refusal_check_reports() {
    let conf = root().join("fixtures/report/refused-uses.conf");
    let output = rginx()
        .args(["check", "--report"])
        .arg(&conf)
        .output()
        .expect("run rginx");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("# 7 directives: 5 supported, 0 ignored, 2 unsupported"),
        "{text}"
    );
    let row = |name: &str| {
        text.lines()
            .find(|l| l.contains(&format!(" {name} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        row("listen")
            .contains("unsupported  listen parameter \"proxy_protocol\" is not supported by rginx"),
        "{text}"
    );
    assert!(
        row("proxy_set_header")
            .contains("unsupported  variable \"$limit_rate\" is not supported by rginx"),
        "{text}"
    );
    assert!(text.contains("# 2 other findings"), "{text}");
}
