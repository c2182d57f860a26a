//! nginx's process model, run the same way against nginx and rginx:
//! Debian's systemd unit's commands without systemd (`-t -q`, a start
//! that detaches and writes the pid file, `-s reload`, start-stop-daemon's
//! `QUIT`), a reload that closes the old worker's idle keep-alive
//! connections and bounds its tunnels with `worker_shutdown_timeout`, and
//! (as root) a reload of a configuration only root may read that adds a
//! privileged port. Beyond nginx, `rginx -s reload` says when the master
//! kept its configuration.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;
use rginx_proxy::echo::{client_frame, client_handshake, read_frame, EchoBackend};

/// Debian's unit's `-g`.
const UNIT_GLOBALS: &str = "daemon on; master_process on;";

fn rginx_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rginx"))
}

/// A configuration in `dir` on `port`, proxying to `backend`, with
/// `extra_server` in its server.
fn conf(
    dir: &Path,
    port: u16,
    backend: SocketAddr,
    extra_main: &str,
    extra_server: &str,
) -> String {
    format!(
        "pid {dir}/run.pid;
error_log {dir}/error.log notice;
{extra_main}
events {{}}
http {{
    access_log off;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port};
        {extra_server}
        location /ws {{
            proxy_pass http://{backend};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 1h;
        }}
        location / {{ return 200 \"up\\n\"; }}
    }}
}}
",
        dir = dir.display()
    )
}

fn run(binary: &Path, args: &[&str], conf: &Path) -> Output {
    Command::new(binary)
        .args(args)
        .arg("-c")
        .arg(conf)
        .output()
        .expect("run")
}

/// Whether process `pid` is alive.
/// Starts rginx on `conf` (a configuration with `daemon off`) and waits
/// until it serves on `port`.
fn start_in_foreground(conf: &Path, port: u16) -> std::process::Child {
    let child = Command::new(rginx_path())
        .arg("-c")
        .arg(conf)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start");
    wait_for_port(port, 200);
    child
}

fn alive(pid: &str) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .contains("State:\tZ")
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A daemon the test started, killed if the test ends early.
struct KillOnDrop(String);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if !self.0.is_empty() && alive(&self.0) {
            let _ = Command::new("kill").args(["-KILL", &self.0]).status();
        }
    }
}

/// The unit's commands, in order, and what each did.
fn unit_commands(binary: &Path, tag: &str) -> Vec<String> {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let dir = TempDir::new(tag);
    let port = free_port();
    let path = dir.0.join("nginx.conf");
    std::fs::write(&path, conf(&dir.0, port, backend.addr(), "", "")).unwrap();
    let mut seen = Vec::new();
    // ExecStartPre
    let test = run(binary, &["-t", "-q", "-g", UNIT_GLOBALS], &path);
    seen.push(format!(
        "-t -q: exit {:?}, says {:?}",
        test.status.code(),
        String::from_utf8_lossy(&test.stderr).trim()
    ));
    // ExecStart: returns once the daemon runs, its pid in the pid file
    let start = run(binary, &["-g", UNIT_GLOBALS], &path);
    let pid_file = dir.0.join("run.pid");
    let pid = std::fs::read_to_string(&pid_file).unwrap_or_default();
    let pid = pid.trim().to_string();
    let _guard = KillOnDrop(pid.clone());
    seen.push(format!(
        "start: exit {:?}, pid file names a live process: {}",
        start.status.code(),
        !pid.is_empty() && alive(&pid)
    ));
    wait_for_port(port, 200);
    let (status, _) = exchange(
        port,
        "GET / HTTP/1.1\r\nHost: u\r\nConnection: close\r\n\r\n",
    );
    seen.push(format!("request: {status}"));
    // ExecReload
    let reload = run(binary, &["-g", UNIT_GLOBALS, "-s", "reload"], &path);
    seen.push(format!("-s reload: exit {:?}", reload.status.code()));
    let log = || std::fs::read_to_string(dir.0.join("error.log")).unwrap_or_default();
    seen.push(format!(
        "the master logs the reload: {}",
        wait_until(Duration::from_secs(5), || log().contains("reconfiguring"))
    ));
    let (status, _) = exchange(
        port,
        "GET / HTTP/1.1\r\nHost: u\r\nConnection: close\r\n\r\n",
    );
    seen.push(format!("request after reload: {status}"));
    // ExecStop: start-stop-daemon --stop --retry QUIT/5 --pidfile
    let stopped = match Command::new("/sbin/start-stop-daemon")
        .args(["--quiet", "--stop", "--retry", "QUIT/5", "--pidfile"])
        .arg(&pid_file)
        .status()
    {
        Ok(status) => status.success(),
        Err(_) => Command::new("kill")
            .args(["-QUIT", &pid])
            .status()
            .is_ok_and(|s| s.success()),
    };
    seen.push(format!(
        "stop: {stopped}, the master gone: {}, pid file gone: {}",
        wait_until(Duration::from_secs(5), || !alive(&pid)),
        wait_until(Duration::from_secs(2), || !pid_file.exists())
    ));
    seen
}

#[test]
fn debian_s_unit_commands_work_as_with_nginx() {
    let Some(nginx) = nginx() else { return };
    let theirs = unit_commands(&nginx, "unit-nginx");
    let ours = unit_commands(&rginx_path(), "unit-rginx");
    assert_same_steps(&ours, &theirs);
}

/// A WebSocket through the proxy: echo works.
fn echo(stream: &mut TcpStream, reader: &mut BufReader<TcpStream>, text: &str) -> bool {
    if stream
        .write_all(&client_frame(1, true, text.as_bytes()))
        .is_err()
    {
        return false;
    }
    matches!(read_frame(reader), Ok((_, 1, payload)) if payload == text.as_bytes())
}

/// A reload with an idle keep-alive connection and a tunnel open on the
/// old worker, `worker_shutdown_timeout 1s`: what became of each.
fn reload_with_open_connections(binary: &Path, tag: &str) -> Vec<String> {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let dir = TempDir::new(tag);
    let port = free_port();
    let path = dir.0.join("nginx.conf");
    let main = "daemon off; master_process on; worker_shutdown_timeout 1s;";
    std::fs::write(&path, conf(&dir.0, port, backend.addr(), main, "")).unwrap();
    let mut child = Command::new(binary)
        .arg("-c")
        .arg(&path)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start");
    wait_for_port(port, 200);
    let mut seen = Vec::new();
    let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: k\r\n\r\n")
        .unwrap();
    let mut answer = [0u8; 4096];
    let n = idle.read(&mut answer).unwrap_or(0);
    seen.push(format!(
        "kept-alive answer: {}",
        String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200")
    ));
    let (mut tunnel, mut reader, _) =
        client_handshake(("127.0.0.1", port), "/ws/").expect("handshake");
    tunnel
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    seen.push(format!(
        "tunnel echoes: {}",
        echo(&mut tunnel, &mut reader, "one")
    ));
    let pid = child.id().to_string();
    let sent = Instant::now();
    let hup = Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    seen.push(format!("HUP sent: {}", hup.success()));
    // the old worker closes the idle connection at once
    let closed = idle.read(&mut answer).map_or(true, |n| n == 0);
    seen.push(format!(
        "idle keep-alive closed: {closed}, within 1 s: {}",
        sent.elapsed() < Duration::from_secs(1)
    ));
    seen.push(format!(
        "tunnel still echoes after the reload: {}",
        echo(&mut tunnel, &mut reader, "two")
    ));
    // then worker_shutdown_timeout closes the tunnel
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    let after = sent.elapsed();
    seen.push(format!(
        "tunnel closed after worker_shutdown_timeout: {}",
        after >= Duration::from_secs(1) && after < Duration::from_secs(4)
    ));
    let (status, _) = exchange(
        port,
        "GET / HTTP/1.1\r\nHost: u\r\nConnection: close\r\n\r\n",
    );
    seen.push(format!("new worker answers: {status}"));
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let _ = child.wait();
    seen
}

#[test]
fn a_reload_drains_the_old_worker_as_nginx_s_does() {
    let Some(nginx) = nginx() else { return };
    let theirs = reload_with_open_connections(&nginx, "drain-nginx");
    let ours = reload_with_open_connections(&rginx_path(), "drain-rginx");
    assert_same_steps(&ours, &theirs);
}

/// A privileged port no one listens on.
fn free_privileged_port() -> Option<u16> {
    (700..1000).find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
}

#[test]
fn as_root_a_reload_reads_root_only_files_and_binds_privileged_ports() {
    if !as_root() {
        eprintln!("skipping: not root");
        return;
    }
    let Some(privileged) = free_privileged_port() else {
        return;
    };
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let dir = TempDir::new("rootonly");
    // the configuration's directory only root may enter; the workers run
    // as nobody
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o700)).unwrap();
    let port = free_port();
    let path = dir.0.join("nginx.conf");
    let main = "daemon off; user nobody nogroup;";
    std::fs::write(&path, conf(&dir.0, port, backend.addr(), main, "")).unwrap();
    let mut child = start_in_foreground(&path, port);
    let listen = format!("listen 127.0.0.1:{privileged};");
    std::fs::write(&path, conf(&dir.0, port, backend.addr(), main, &listen)).unwrap();
    let reload = run(&rginx_path(), &["-s", "reload"], &path);
    let said = String::from_utf8_lossy(&reload.stderr).into_owned();
    assert_eq!(reload.status.code(), Some(0), "{said}");
    let (status, _) = exchange(
        privileged,
        "GET / HTTP/1.1\r\nHost: u\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
    // beyond nginx: a reload the master cannot apply is reported to the
    // command, with the reason (here a port someone else holds)
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let held = holder.local_addr().unwrap().port();
    let listen = format!("listen 127.0.0.1:{held};");
    std::fs::write(&path, conf(&dir.0, port, backend.addr(), main, &listen)).unwrap();
    let refused = run(&rginx_path(), &["-s", "reload"], &path);
    let said = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "rginx: [emerg] bind() to 127.0.0.1:{held} failed (98: Address already in use)"
        )),
        "{said}"
    );
    // and the old configuration still serves
    let (status, _) = exchange(
        privileged,
        "GET / HTTP/1.1\r\nHost: u\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
    let _ = child.kill();
    let _ = child.wait();
}

/// The `Exec...=` and `Type=`/`PIDFile=` lines of a unit.
fn service_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            ["Exec", "Type=", "PIDFile=", "KillMode=", "TimeoutStopSec="]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn the_migration_guide_s_unit_is_debian_s_with_the_path_changed() {
    let debian = Path::new("/lib/systemd/system/nginx.service");
    let Ok(theirs) = std::fs::read_to_string(debian) else {
        eprintln!("skipping: no {}", debian.display());
        return;
    };
    // docs/migration.md: sed 's#/usr/sbin/nginx#/usr/sbin/rginx#g'
    let switched = theirs.replace("/usr/sbin/nginx", "/usr/sbin/rginx");
    let ours = std::fs::read_to_string(root().join("examples/rginx.service")).unwrap();
    assert_eq!(service_lines(&ours), service_lines(&switched));
    // and the commands the unit runs are the ones the test above runs
    assert!(switched.contains(&format!("-g '{UNIT_GLOBALS}'")));
    let guide = std::fs::read_to_string(root().join("docs/migration.md")).unwrap();
    assert!(guide
        .contains("sed 's#/usr/sbin/nginx#/usr/sbin/rginx#g' /lib/systemd/system/nginx.service"));
}

/// The pid in `path`, if it names a live process.
fn live_pid(path: &Path) -> Option<String> {
    let pid = std::fs::read_to_string(path).ok()?.trim().to_string();
    (!pid.is_empty() && alive(&pid)).then_some(pid)
}

/// The children of `pid`.
fn children(pid: &str) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// nginx's binary upgrade (USR2, WINCH, QUIT) under a steady load, the
/// master started as `first` and upgraded to `then` (through a link the
/// test points at each in turn, as a package upgrade replaces the file):
/// what each step did, how many requests failed, who answers at the end.
fn binary_upgrade(first: &Path, then: &Path, tag: &str) -> Vec<String> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let dir = TempDir::new(tag);
    let port = free_port();
    let path = dir.0.join("nginx.conf");
    std::fs::write(&path, conf(&dir.0, port, backend.addr(), "", "")).unwrap();
    let pid_file = dir.0.join("run.pid");
    let oldbin = dir.0.join("run.pid.oldbin");
    let binary = dir.0.join("bin");
    std::os::unix::fs::symlink(first, &binary).unwrap();
    let mut seen = Vec::new();
    let start = run(&binary, &["-g", UNIT_GLOBALS], &path);
    seen.push(format!("start: {:?}", start.status.code()));
    let old = live_pid(&pid_file).unwrap_or_default();
    let _old_guard = KillOnDrop(old.clone());
    wait_for_port(port, 200);
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let load = {
        let (stop, served, failed) = (stop.clone(), served.clone(), failed.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let answer = wire::send(
                    SocketAddr::from(([127, 0, 0, 1], port)),
                    b"GET / HTTP/1.1\r\nHost: u\r\nConnection: close\r\n\r\n",
                    false,
                    Duration::from_secs(5),
                );
                match answer.map(|m| m.status()) {
                    Some(200) => served.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };
    let signal = |name: &str, pid: &str| {
        Command::new("kill")
            .args([name, pid])
            .status()
            .is_ok_and(|s| s.success())
    };
    std::thread::sleep(Duration::from_millis(200));
    std::fs::remove_file(&binary).unwrap();
    std::os::unix::fs::symlink(then, &binary).unwrap();
    seen.push(format!("USR2: {}", signal("-USR2", &old)));
    let renamed = wait_until(Duration::from_secs(5), || {
        live_pid(&oldbin).as_deref() == Some(old.as_str())
            && live_pid(&pid_file).is_some_and(|new| new != old)
    });
    seen.push(format!(
        "pid file renamed .oldbin, a new master in the pid file: {renamed}"
    ));
    let new = live_pid(&pid_file).unwrap_or_default();
    let _new_guard = KillOnDrop(new.clone());
    seen.push(format!(
        "the new master is the old one's child: {}",
        wait_until(Duration::from_secs(2), || children(&old).contains(&new))
    ));
    std::thread::sleep(Duration::from_millis(300));
    seen.push(format!("WINCH: {}", signal("-WINCH", &old)));
    seen.push(format!(
        "the old workers are gone, the old master stays: {}",
        wait_until(Duration::from_secs(5), || children(&old)
            == vec![new.clone()])
            && alive(&old)
    ));
    std::thread::sleep(Duration::from_millis(300));
    seen.push(format!("QUIT to the old master: {}", signal("-QUIT", &old)));
    seen.push(format!(
        "the old master gone, .oldbin removed: {}",
        wait_until(Duration::from_secs(5), || !alive(&old) && !oldbin.exists())
    ));
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let _ = load.join();
    let answer = wire::send(
        SocketAddr::from(([127, 0, 0, 1], port)),
        b"GET / HTTP/1.1\r\nHost: u\r\nConnection: close\r\n\r\n",
        false,
        Duration::from_secs(5),
    );
    let server = answer
        .and_then(|m| {
            m.header("Server")
                .map(|s| s.split('/').next().unwrap_or("").to_string())
        })
        .unwrap_or_default();
    seen.push(format!("answered by: {server}"));
    seen.push(format!(
        "the new master serves on: {}, failed requests: {}, served some: {}",
        live_pid(&pid_file).as_deref() == Some(new.as_str()),
        failed.load(Ordering::Relaxed),
        served.load(Ordering::Relaxed) > 50
    ));
    let _ = signal("-QUIT", &new);
    wait_until(Duration::from_secs(5), || !alive(&new));
    seen
}

#[test]
fn a_binary_upgrade_under_load_fails_no_request() {
    let Some(nginx) = nginx() else { return };
    let theirs = binary_upgrade(&nginx, &nginx, "upgrade-nginx");
    let ours = binary_upgrade(&rginx_path(), &rginx_path(), "upgrade-rginx");
    let answered = |who: &str, seen: &[String]| -> Vec<String> {
        let mut seen = seen.to_vec();
        seen.retain(|l| !l.starts_with("answered by"));
        seen.push(format!("answered by {who}"));
        seen
    };
    assert_same_steps(&answered("x", &ours), &answered("x", &theirs));
    assert!(ours.iter().any(|l| l == "answered by: rginx"), "{ours:#?}");
}

#[test]
fn an_nginx_master_hands_its_sockets_to_rginx_without_dropping_a_request() {
    let Some(nginx) = nginx() else { return };
    let switched = binary_upgrade(&nginx, &rginx_path(), "nginx-to-rginx");
    assert!(
        switched.iter().all(|l| !l.contains("false")),
        "{switched:#?}"
    );
    assert!(
        switched.iter().any(|l| l.contains("failed requests: 0")),
        "{switched:#?}"
    );
    assert!(
        switched.iter().any(|l| l == "answered by: rginx"),
        "{switched:#?}"
    );
}

#[test]
fn without_a_master_reload_is_signalled_as_nginx_does() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let dir = TempDir::new("single");
    let port = free_port();
    let path = dir.0.join("nginx.conf");
    let main = "daemon off; master_process off;";
    std::fs::write(&path, conf(&dir.0, port, backend.addr(), main, "")).unwrap();
    let mut child = start_in_foreground(&path, port);
    // one process with threads: no master to answer, so no wait for one
    let sent = Instant::now();
    let reload = run(&rginx_path(), &["-s", "reload"], &path);
    assert_eq!(reload.status.code(), Some(0));
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );
    let log = || std::fs::read_to_string(dir.0.join("error.log")).unwrap_or_default();
    assert!(wait_until(Duration::from_secs(5), || log().contains("reconfigured")));
    let _ = child.kill();
    let _ = child.wait();
}
