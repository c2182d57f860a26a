//! What an operator does to a running rginx, end to end over real sockets:
//! reload under load (`rginx -s reload` and SIGHUP) with WebSocket tunnels
//! open, a broken reload, graceful and fast shutdown, log reopening, and
//! `stub_status` (compared with nginx's own page where nginx is at hand).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rginx_proxy::echo::{client_frame, client_handshake, read_frame, EchoBackend};

/// The configuration of generation `generation`: `X-Generation` tells the
/// backend (and so the client) which one served a request.
fn conf(dir: &Path, port: u16, backend: SocketAddr, generation: u32, extra: &str) -> String {
    format!(
        "daemon off;
worker_processes 2;
pid {dir}/rginx.pid;
error_log {dir}/error.log notice;
{extra_main}
events {{}}
http {{
    access_log {dir}/access.log;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    upstream backend {{ server {backend}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        {extra}
        location /ws/ {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 1h;
        }}
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header X-Generation {generation};
        }}
        location = /status {{ stub_status; }}
    }}
}}
",
        dir = dir.display(),
        extra_main = extra.strip_prefix("main:").unwrap_or(""),
        extra = if extra.starts_with("main:") {
            ""
        } else {
            extra
        },
    )
}

/// A running `rginx -c` on a configuration file it can be told to reload.
struct Running {
    child: Child,
    dir: TempDir,
    conf: PathBuf,
    port: u16,
    backend: SocketAddr,
}

impl Running {
    fn start(backend: SocketAddr, extra: &str) -> Running {
        let dir = TempDir::new("ops");
        // as root, rginx runs as nobody: it must be able to read its
        // configuration again and to make new log files here
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o777));
        }
        let port = free_port();
        let path = dir.0.join("rginx.conf");
        std::fs::write(&path, conf(&dir.0, port, backend, 1, extra)).expect("conf");
        let stderr = std::fs::File::create(dir.0.join("stderr.log")).expect("stderr");
        let child = rginx()
            .arg("-c")
            .arg(&path)
            .stderr(stderr)
            .spawn()
            .expect("start rginx");
        wait_for_port(port, 200);
        Running {
            child,
            dir,
            conf: path,
            port,
            backend,
        }
    }

    /// Writes generation `generation` of the configuration.
    fn write(&self, generation: u32, extra: &str) {
        let text = conf(&self.dir.0, self.port, self.backend, generation, extra);
        std::fs::write(&self.conf, text).expect("conf");
    }

    /// `rginx -s NAME -c CONF`.
    fn signal(&self, name: &str) -> Output {
        rginx()
            .args(["-s", name, "-c"])
            .arg(&self.conf)
            .output()
            .expect("rginx -s")
    }

    /// `rginx -s NAME -c CONF`, which must succeed.
    fn signal_ok(&self, name: &str) {
        let out = self.signal(name);
        assert!(
            out.status.success(),
            "rginx -s {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `kill -SIGNAL PID`, without rginx's help.
    fn kill(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("error.log")).unwrap_or_default()
    }

    /// Waits at most 5 s for `text` in the error log.
    fn wait_for_error_log(&self, text: &str) {
        let started = Instant::now();
        while !self.error_log().contains(text) {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{text} not in {}",
                self.error_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits at most `limit` for the process to end.
    fn exited_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A kept-alive client connection.
struct Kept {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    /// The last response said `Connection: close` (keepalive_requests).
    closing: bool,
    /// Requests answered on it so far.
    answered: u32,
}

impl Kept {
    fn open(port: u16) -> std::io::Result<Kept> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Kept {
            stream,
            reader,
            closing: false,
            answered: 0,
        })
    }

    /// GET `path` as an HTTP client does on a kept-alive connection: when
    /// the server closed it before any byte of the answer (an idle
    /// connection it let go, as an old worker does after a reload), the
    /// request is sent again on a new one (RFC 9112, 9.3.1).
    fn get_or_reconnect(
        this: &mut Option<Kept>,
        port: u16,
        path: &str,
    ) -> std::io::Result<(u16, String)> {
        if let Some(kept) = this.as_mut() {
            match kept.get(path) {
                Ok(answer) => return Ok(answer),
                Err(e) if kept.answered > 0 && closed_unanswered(&e) => {}
                Err(e) => return Err(e),
            }
        }
        let kept = this.insert(Kept::open(port)?);
        kept.get(path)
    }

    /// GET `path`: the status and the body.
    fn get(&mut self, path: &str) -> std::io::Result<(u16, String)> {
        // one write: a request in pieces would wait for delayed ACKs
        let request = format!("GET {path} HTTP/1.1\r\nHost: ops\r\n\r\n");
        self.stream.write_all(request.as_bytes())?;
        let (status, body, close) = read_response(&mut self.reader)?;
        self.closing = close;
        self.answered += 1;
        Ok((status, body))
    }
}

/// The connection closed before any byte of an answer came.
fn closed_unanswered(e: &std::io::Error) -> bool {
    e.to_string() == "no status line: \"\""
        || matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        )
}

/// A response: status, body, and whether the server closes the connection.
fn read_response(reader: &mut impl BufRead) -> std::io::Result<(u16, String, bool)> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line: {line:?}")))?;
    let mut length = 0;
    let mut close = false;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if header == "\r\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
            if name.eq_ignore_ascii_case("connection") {
                close = value.trim().eq_ignore_ascii_case("close");
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok((status, String::from_utf8_lossy(&body).into_owned(), close))
}

/// One request on a new connection.
fn get_once(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    Kept::open(port)?.get(path)
}

/// The generation that served a request, from the backend's echo.
fn generation_of(body: &str) -> Option<u32> {
    let at = body.find("[\"X-Generation\",\"")? + "[\"X-Generation\",\"".len();
    body[at..].split('"').next()?.parse().ok()
}

/// An open WebSocket through the proxy.
struct Tunnel {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Tunnel {
    fn open(port: u16) -> Tunnel {
        let (stream, reader, head) = client_handshake(("127.0.0.1", port), "/ws/").expect("ws");
        assert_eq!(head[0], "HTTP/1.1 101 Switching Protocols", "{head:?}");
        Tunnel { stream, reader }
    }

    /// Sends a text message and reads its echo.
    fn echo(&mut self, text: &str) -> std::io::Result<String> {
        self.stream
            .write_all(&client_frame(0x1, true, text.as_bytes()))?;
        let (_, _, payload) = read_frame(&mut self.reader)?;
        Ok(String::from_utf8_lossy(&payload).into_owned())
    }
}

#[test]
fn reload_under_load_drops_nothing_and_serves_the_new_configuration() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let rginx = Running::start(backend.addr(), "");
    let port = rginx.port;
    let mut tunnels: Vec<Tunnel> = (0..200).map(|_| Tunnel::open(port)).collect();
    for (i, t) in tunnels.iter_mut().enumerate() {
        assert_eq!(
            t.echo(&format!("before {i}")).unwrap(),
            format!("before {i}")
        );
    }
    // the load: three clients on kept-alive connections, one opening a
    // connection per request, as fast as they can
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut load = Vec::new();
    for client in 0..4 {
        let (stop, served, failed) = (stop.clone(), served.clone(), failed.clone());
        load.push(std::thread::spawn(move || {
            let mut kept: Option<Kept> = None;
            while !stop.load(Ordering::Relaxed) {
                let answer = if client == 3 {
                    get_once(port, "/load")
                } else {
                    let answer = Kept::get_or_reconnect(&mut kept, port, "/load");
                    // the connection's last request (keepalive_requests)
                    if kept.as_ref().is_some_and(|k| k.closing) {
                        kept = None;
                    }
                    answer
                };
                match answer {
                    Ok((200, _)) => {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok((status, body)) => failed
                        .lock()
                        .unwrap()
                        .push(format!("client {client}: {status} {body}")),
                    Err(e) => {
                        failed.lock().unwrap().push(format!("client {client}: {e}"));
                        kept = None;
                    }
                }
            }
        }));
    }
    // a kept-alive connection of our own: after a reload the old worker
    // closes it once idle, and the next one is the new worker's
    let mut watcher = Some(Kept::open(port).unwrap());
    let (_, body) = Kept::get_or_reconnect(&mut watcher, port, "/watch").unwrap();
    assert_eq!(generation_of(&body), Some(1), "{body}");
    let extra_port = free_port();
    let mut visible_after = Vec::new();
    for generation in 2..=5u32 {
        std::thread::sleep(Duration::from_millis(300));
        // generation 3 adds a listening socket, 4 removes it again
        let extra = if generation == 3 {
            format!("listen 127.0.0.1:{extra_port};")
        } else {
            String::new()
        };
        rginx.write(generation, &extra);
        let sent = Instant::now();
        if generation % 2 == 0 {
            rginx.signal_ok("reload");
        } else {
            rginx.kill("HUP");
        }
        loop {
            let (_, body) = Kept::get_or_reconnect(&mut watcher, port, "/watch")
                .expect("kept-alive connection");
            if generation_of(&body) == Some(generation) {
                break;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(5),
                "generation {generation} never served"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        visible_after.push(sent.elapsed());
        match generation {
            3 => {
                let (status, body) = get_once(extra_port, "/new-socket").expect("new socket");
                assert_eq!((status, generation_of(&body)), (200, Some(3)));
            }
            4 => {
                // the removed socket's accept loop is stopped with the
                // reload; its socket closes as that task ends, on its
                // worker's thread
                let closed = (0..200).any(|_| {
                    let refused = TcpStream::connect(("127.0.0.1", extra_port)).is_err();
                    if !refused {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    refused
                });
                assert!(closed, "the removed socket still accepts");
            }
            _ => {}
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    let failed = failed.lock().unwrap().clone();
    // every tunnel opened before the reloads still carries messages
    let mut open = 0;
    for (i, t) in tunnels.iter_mut().enumerate() {
        if t.echo(&format!("after {i}")).ok() == Some(format!("after {i}")) {
            open += 1;
        }
    }
    let served = served.load(Ordering::Relaxed);
    eprintln!(
        "reload under load: 4 reloads, {served} requests served, {} failed, {open}/200 tunnels open after, new configuration visible after {:?}",
        failed.len(),
        visible_after
    );
    assert!(failed.is_empty(), "failed requests: {failed:?}");
    assert_eq!(open, 200);
    assert!(served > 100, "the load did not run: {served}");
    let log = rginx.error_log();
    assert_eq!(log.matches("reconfigured").count(), 4, "{log}");
    assert!(
        !log.contains("[emerg]") && !log.contains("[alert]"),
        "{log}"
    );
}

#[test]
fn a_broken_reload_keeps_the_old_configuration_serving() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let rginx = Running::start(backend.addr(), "");
    let mut kept = Kept::open(rginx.port).unwrap();
    let mut tunnel = Tunnel::open(rginx.port);
    // a syntax error: `rginx -s reload` says so and sends nothing
    let good = std::fs::read_to_string(&rginx.conf).unwrap();
    std::fs::write(&rginx.conf, format!("{good}\nbogus_directive on;\n")).unwrap();
    let line = good.lines().count() + 2;
    let out = rginx.signal("reload");
    let said = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "rginx: [emerg] unknown directive \"bogus_directive\" in {}:{line}",
        rginx.conf.display()
    );
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.lines().any(|l| l == expected), "{said}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(!rginx.error_log().contains("SIGHUP"), "a signal was sent");
    // SIGHUP all the same: the error goes to the error log, nothing changes
    rginx.kill("HUP");
    let emerg = format!(
        "[emerg] {}#{}: unknown directive \"bogus_directive\" in {}:{line}",
        rginx.child.id(),
        rginx.child.id(),
        rginx.conf.display()
    );
    rginx.wait_for_error_log(&emerg);
    // a configuration that cannot bind its socket is refused whole too
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap();
    rginx.write(2, &format!("listen {taken_addr};"));
    rginx.kill("HUP");
    let bind_error = format!(
        "[emerg] {0}#{0}: bind() to {taken_addr} failed (98: Address already in use)",
        rginx.child.id()
    );
    rginx.wait_for_error_log(&bind_error);
    let (status, body) = kept.get("/still").unwrap();
    assert_eq!((status, generation_of(&body)), (200, Some(1)), "{body}");
    let (status, body) = get_once(rginx.port, "/fresh").unwrap();
    assert_eq!((status, generation_of(&body)), (200, Some(1)), "{body}");
    assert_eq!(tunnel.echo("still open").unwrap(), "still open");
    assert!(!rginx.error_log().contains("reconfigured"));
}

/// A backend that answers each request after `delay`.
fn slow_backend(delay: Duration) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut conn = conn;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                std::thread::sleep(delay);
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nslow",
                );
            });
        }
    });
    addr
}

#[test]
fn quit_finishes_requests_and_tunnels_then_exits() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let slow = slow_backend(Duration::from_millis(800));
    let mut rginx = Running::start(
        backend.addr(),
        &format!("location /slow {{ proxy_pass http://{slow}; }}"),
    );
    let port = rginx.port;
    let mut tunnel = Tunnel::open(port);
    let mut idle = Kept::open(port).unwrap();
    assert_eq!(idle.get("/idle").unwrap().0, 200);
    let in_flight = std::thread::spawn(move || get_once(port, "/slow"));
    std::thread::sleep(Duration::from_millis(200));
    rginx.signal_ok("quit");
    // the listening socket closes at once
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "still accepting"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // the idle kept-alive connection is closed, the request in flight ends
    // with its answer
    let mut rest = Vec::new();
    assert_eq!(idle.reader.read_to_end(&mut rest).unwrap_or(0), 0);
    let (status, body) = in_flight.join().unwrap().expect("the request in flight");
    assert_eq!((status, body.as_str()), (200, "slow"));
    // the tunnel goes on, and the process waits for it
    assert_eq!(tunnel.echo("still here").unwrap(), "still here");
    assert!(rginx.exited_within(Duration::from_millis(500)).is_none());
    drop(tunnel);
    let status = rginx
        .exited_within(Duration::from_secs(5))
        .expect("rginx did not exit once the tunnel closed");
    assert!(status.success());
    let log = rginx.error_log();
    assert!(
        log.contains("[notice]") && log.contains("gracefully shutting down"),
        "{log}"
    );
    let pid = std::fs::read_to_string(rginx.dir.0.join("rginx.pid")).unwrap_or_default();
    assert!(
        pid.is_empty(),
        "the pid file still names the process: {pid}"
    );
}

#[test]
fn worker_shutdown_timeout_bounds_the_wait_for_tunnels() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut rginx = Running::start(backend.addr(), "main:worker_shutdown_timeout 1s;");
    let mut tunnel = Tunnel::open(rginx.port);
    let sent = Instant::now();
    rginx.kill("QUIT");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        tunnel.echo("before the timeout").unwrap(),
        "before the timeout"
    );
    let status = rginx
        .exited_within(Duration::from_secs(5))
        .expect("rginx did not exit after worker_shutdown_timeout");
    assert!(status.success());
    assert!(
        sent.elapsed() >= Duration::from_secs(1),
        "{:?}",
        sent.elapsed()
    );
    assert!(
        tunnel.echo("after").is_err(),
        "the tunnel outlived the process"
    );
}

#[test]
fn stop_and_interrupt_end_at_once() {
    for (how, signal) in [("-s stop", None), ("SIGINT", Some("INT"))] {
        let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut rginx = Running::start(backend.addr(), "");
        let _tunnel = Tunnel::open(rginx.port);
        match signal {
            None => {
                rginx.signal_ok("stop");
            }
            Some(s) => rginx.kill(s),
        }
        let status = rginx
            .exited_within(Duration::from_secs(2))
            .unwrap_or_else(|| panic!("{how}: rginx is still running with a tunnel open"));
        assert!(status.success(), "{how}");
    }
}

#[test]
fn reopen_starts_new_log_files() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let rginx = Running::start(backend.addr(), "");
    let access = rginx.dir.0.join("access.log");
    let error = rginx.dir.0.join("error.log");
    assert_eq!(get_once(rginx.port, "/before").unwrap().0, 200);
    // logrotate: the files move away; they are written on until reopened
    std::fs::rename(&access, rginx.dir.0.join("access.log.1")).unwrap();
    std::fs::rename(&error, rginx.dir.0.join("error.log.1")).unwrap();
    rginx.signal_ok("reopen");
    let started = Instant::now();
    while !access.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "access.log not reopened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let wait_for = |path: &PathBuf, text: &str| {
        let started = Instant::now();
        loop {
            let now = std::fs::read_to_string(path).unwrap_or_default();
            if now.contains(text) {
                return now;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{text} not in {now}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // the master made the new file; the workers reopen it when they get
    // its signal (as nginx's): requests go to the new file from then on
    let started = Instant::now();
    loop {
        assert_eq!(get_once(rginx.port, "/after").unwrap().0, 200);
        let now = std::fs::read_to_string(&access).unwrap_or_default();
        if now.contains("GET /after") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the workers did not reopen the access log"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let new = std::fs::read_to_string(&access).unwrap_or_default();
    assert!(!new.contains("/before"), "{new}");
    let old = std::fs::read_to_string(rginx.dir.0.join("access.log.1")).unwrap();
    assert!(old.contains("GET /before"), "{old}");
    // the error log line about the signal went to the old file, before
    // the reopening; the next one goes to the new file
    wait_for(&rginx.dir.0.join("error.log.1"), "reopening logs");
    rginx.kill("HUP");
    wait_for(&error, "reconfigured");
}

/// nginx's and rginx's status pages after the same requests: three on a
/// kept-alive connection that stays open, then the page on a second one.
fn status_after_known_requests(port: u16) -> (Vec<String>, String) {
    let mut kept = Kept::open(port).unwrap();
    for i in 0..3 {
        assert_eq!(kept.get(&format!("/r{i}")).unwrap().0, 200);
    }
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"GET /status HTTP/1.1\r\nHost: ops\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let head = head
        .lines()
        .filter(|l| !l.starts_with("Date:") && !l.starts_with("Server:"))
        .map(str::to_string)
        .collect();
    drop(kept);
    (head, body.to_string())
}

#[test]
fn stub_status_counts_like_nginx() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let body = |port: u16| {
        format!(
            "server {{ listen 127.0.0.1:{port};
                location / {{ proxy_pass http://{}; }}
                location = /status {{
                    stub_status;
                    add_header X-Conns \"$connections_active $connections_reading $connections_writing $connections_waiting\";
                }}
                location = /old {{ stub_status on; }}
            }}",
            backend.addr()
        )
    };
    let port = free_port();
    let rginx = start_rginx(&body(port), port);
    let (head, page) = status_after_known_requests(port);
    // three connections: the start-up probe (closed), the kept-alive one
    // (waiting), the page's own (writing)
    assert_eq!(
        page,
        "Active connections: 2 \nserver accepts handled requests\n 3 3 4 \nReading: 0 Writing: 1 Waiting: 1 \n"
    );
    assert_eq!(
        head,
        [
            "HTTP/1.1 200 OK",
            "Content-Type: text/plain",
            &format!("Content-Length: {}", page.len()),
            "Connection: close",
            // the variables read the same counters, when the header is made
            "X-Conns: 2 0 1 1"
        ]
    );
    // only GET and HEAD
    let close = "Host: ops\r\nConnection: close\r\n";
    let (status, _) = exchange(
        port,
        &format!("POST /status HTTP/1.1\r\n{close}Content-Length: 0\r\n\r\n"),
    );
    assert_eq!(status, "HTTP/1.1 405 Not Allowed");
    let (status, _) = exchange(port, &format!("GET /old HTTP/1.1\r\n{close}\r\n"));
    assert_eq!(status, "HTTP/1.1 200 OK");
    // the Prometheus form: the same counters and the upstream's figures
    let (status, metrics) = exchange(
        port,
        &format!("GET /status?format=prometheus HTTP/1.1\r\n{close}\r\n"),
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
    let server = backend.addr();
    for line in [
        "rginx_connections_accepted_total 6".to_string(),
        "rginx_http_requests_total 7".to_string(),
        "rginx_connections_writing 1".to_string(),
        format!("rginx_upstream_requests_total{{upstream=\"{server}\",server=\"{server}\"}} 3"),
        format!("rginx_upstream_failures_total{{upstream=\"{server}\",server=\"{server}\"}} 0"),
        format!(
            "rginx_upstream_header_seconds_count{{upstream=\"{server}\",server=\"{server}\"}} 3"
        ),
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }
    drop(rginx);
    let Some(nginx) = nginx() else {
        return;
    };
    let port = free_port();
    let _nginx = NginxServer::start(&nginx, &body(port), port);
    let (nginx_head, nginx_page) = status_after_known_requests(port);
    assert_eq!((nginx_head, nginx_page), (head, page));
}

/// `rginx -s` without a running instance, or without a pid file: nginx's
/// messages and exit status 1; an unknown signal is a usage error.
#[test]
fn signal_errors_are_reported() {
    let dir = TempDir::new("ops-signal");
    let conf = dir.0.join("rginx.conf");
    std::fs::write(
        &conf,
        format!(
            "pid {}/none.pid;\nevents {{}}\nhttp {{ }}\n",
            dir.0.display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        rginx()
            .args(args)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&["-s", "reload"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "rginx: [error] open() \"{}/none.pid\" failed (2: No such file or directory)\n",
            dir.0.display()
        )
    );
    std::fs::write(dir.0.join("none.pid"), "").unwrap();
    let out = run(&["-s", "quit"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "rginx: [error] invalid PID number \"\" in \"{}/none.pid\"\n",
            dir.0.display()
        )
    );
    let out = run(&["-s", "restart"]);
    assert_eq!(out.status.code(), Some(1));
    std::fs::write(&conf, "events {}\nhttp { }\n").unwrap();
    let out = run(&["-s", "reload"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no \"pid\" directive"));
}
