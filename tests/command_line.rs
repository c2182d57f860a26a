//! nginx's command line run the same way against nginx and rginx: `-p`
//! (relative paths of the configuration under the prefix, `-c` too), `-e`
//! (the error log when the main context names none), `-g` (directives
//! before the file's: their errors say `in command line`, a directive the
//! file repeats is a duplicate), `-v` and `-V`.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// A configuration with relative paths only.
fn relative_conf(port: u16) -> String {
    format!(
        "events {{}}
         http {{
             access_log logs/access.log;
             server {{ listen 127.0.0.1:{port}; location / {{ return 200 \"hi\\n\"; }} }}
         }}\n"
    )
}

/// Runs `binary` with nginx's switches on a prefix of its own, asks one
/// request, and lists what it made there (`logs/NAME: what`).
fn run_with_prefix(binary: &Path, tag: &str) -> Vec<String> {
    let prefix = TempDir::new(tag);
    std::fs::create_dir_all(prefix.0.join("logs")).expect("logs");
    let port = free_port();
    std::fs::write(prefix.0.join("nginx.conf"), relative_conf(port)).expect("conf");
    let mut child = Command::new(binary)
        .arg("-p")
        .arg(format!("{}/", prefix.0.display()))
        .args(["-c", "nginx.conf", "-e", "logs/err.log"])
        .args(["-g", "pid logs/run.pid; daemon off; master_process off;"])
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    wait_for_port(port, 200);
    let (status, _) = exchange(
        port,
        "GET /x HTTP/1.1\r\nHost: p.test\r\nConnection: close\r\n\r\n",
    );
    std::thread::sleep(Duration::from_millis(200));
    let logs = prefix.0.join("logs");
    let pid = std::fs::read_to_string(logs.join("run.pid")).unwrap_or_default();
    let access = std::fs::read_to_string(logs.join("access.log")).unwrap_or_default();
    let seen = vec![
        format!("status {status}"),
        format!(
            "logs/run.pid holds the process id: {}",
            pid.trim() == child.id().to_string()
        ),
        format!(
            "logs/access.log has the request: {}",
            access.contains("\"GET /x HTTP/1.1\" 200")
        ),
        format!("logs/err.log exists: {}", logs.join("err.log").exists()),
    ];
    let _ = child.kill();
    let _ = child.wait();
    seen
}

#[test]
fn prefix_error_log_and_globals_work_as_nginx_s() {
    let Some(nginx) = nginx() else { return };
    let theirs = run_with_prefix(&nginx, "cl-nginx");
    let ours = run_with_prefix(Path::new(env!("CARGO_BIN_EXE_rginx")), "cl-rginx");
    assert_same_steps(&ours, &theirs);
}

/// `BINARY -t -p DIR/ -c nginx.conf -g GLOBALS`: the first `[emerg]`
/// line's message (what follows the level).
fn first_emerg_of(binary: &Path, dir: &Path, globals: &str) -> String {
    let out = Command::new(binary)
        .arg("-t")
        .arg("-p")
        .arg(format!("{}/", dir.display()))
        .args(["-c", "nginx.conf", "-e", "logs/err.log", "-g", globals])
        .output()
        .expect("run");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(dir.join("logs/err.log")).unwrap_or_default()
    );
    text.lines()
        .find_map(|l| l.split_once("[emerg] ").map(|(_, m)| m.to_string()))
        .map(|m| {
            // nginx's log line carries its pid: "12#12: message"
            match m.split_once(": ") {
                Some((pid, rest)) if pid.contains('#') => rest.to_string(),
                _ => m,
            }
        })
        .unwrap_or_default()
        .replace(&dir.display().to_string(), "DIR")
}

#[test]
fn errors_in_globals_say_command_line_as_nginx_s() {
    let Some(nginx) = nginx() else { return };
    let dir = TempDir::new("cl-g");
    std::fs::create_dir_all(dir.0.join("logs")).expect("logs");
    std::fs::write(
        dir.0.join("nginx.conf"),
        "pid logs/a.pid;\nevents {}\nhttp { }\n",
    )
    .expect("conf");
    let rginx = Path::new(env!("CARGO_BIN_EXE_rginx"));
    for globals in ["bogus 1;", "worker_processes 1", "pid logs/b.pid;"] {
        let _ = std::fs::remove_file(dir.0.join("logs/err.log"));
        let theirs = first_emerg_of(&nginx, &dir.0, globals);
        let _ = std::fs::remove_file(dir.0.join("logs/err.log"));
        let ours = first_emerg_of(rginx, &dir.0, globals);
        assert_eq!(ours, theirs, "-g {globals:?}");
        assert!(!theirs.is_empty(), "-g {globals:?}: nginx accepted it");
    }
}

#[test]
fn versions_name_rginx_and_the_nginx_it_follows() {
    let out = rginx().arg("-v").output().expect("run");
    assert_eq!(out.status.code(), Some(0));
    let short = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(short.starts_with("rginx version: rginx/"), "{short}");
    let out = rginx().arg("-V").output().expect("run");
    let long = String::from_utf8_lossy(&out.stderr).into_owned();
    for line in [
        "compatible with: nginx/1.22.1",
        "configure arguments: --prefix=/usr/share/nginx ",
        "--with-http_stub_status_module",
        "--without-http_gzip_module",
    ] {
        assert!(long.contains(line), "-V lacks {line:?}:\n{long}");
    }
}

#[test]
fn bad_switches_get_nginx_s_words_and_exit_code() {
    let Some(nginx) = nginx() else { return };
    for args in [
        &["-x"][..],
        &["-tx"],
        &["extra"],
        &["-c"],
        &["-t", "-p"],
        &["-e"],
        &["-g"],
        &["-s"],
        &["-s", "restart"],
    ] {
        let theirs = Command::new(&nginx).args(args).output().expect("nginx");
        let ours = rginx().args(args).output().expect("rginx");
        assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}");
        let said = String::from_utf8_lossy(&theirs.stderr).replacen("nginx: ", "rginx: ", 1);
        let said = said.trim_end();
        // rginx may add why after nginx's words
        assert!(
            String::from_utf8_lossy(&ours.stderr).starts_with(said),
            "{args:?}: {:?} is not {said:?}",
            String::from_utf8_lossy(&ours.stderr)
        );
    }
}
