//! `limit_rate` and `limit_rate_after` (fixed and with variables), a
//! backend's `X-Accel-Limit-Rate` (also through its `X-Accel-Redirect`,
//! and ignored with `proxy_ignore_headers`) through nginx and rginx: the
//! bytes a client has half a second into an answer (nginx's first burst,
//! head included, is exact), whether the answer took more than a second,
//! the bodies, and nginx's line for a rate that is no size.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::wire::scripted_backend;
use common::*;

/// The backend's body.
const BODY: usize = 30_000;

fn http_body(port: u16, backend: std::net::SocketAddr, dir: &Path) -> String {
    let dir = dir.display();
    let source = free_port();
    format!(
        r#"error_log {dir}/error.log;
server {{
    listen 127.0.0.1:{port};
    limit_rate 12k;
    limit_rate_after 256;
    location /data {{ proxy_pass http://{backend}; }}
    location /accel/ {{ proxy_pass http://127.0.0.1:{source}/; }}
    location /ignored/ {{
        proxy_ignore_headers X-Accel-Limit-Rate;
        proxy_pass http://127.0.0.1:{source}/;
    }}
    location /redirect {{ limit_rate 0; proxy_pass http://{backend}; }}
    location /var {{ limit_rate $arg_l; limit_rate_after $arg_a; proxy_pass http://{backend}; }}
    location /own/ {{ limit_rate 100; limit_rate_after 0; return 200 "a short answer, paced"; }}
}}
server {{
    listen 127.0.0.1:{source};
    location / {{
        add_header X-Accel-Redirect $arg_xar;
        add_header X-Accel-Limit-Rate $arg_xal;
        proxy_pass http://{backend};
    }}
}}"#
    )
}

/// What a client saw of an answer: bytes by half a second, whether it
/// took over a second, and the whole answer masked.
fn watch(port: u16, target: &str) -> (usize, bool, String) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: rate.test\r\nConnection: close\r\n\r\n");
    c.write_all(request.as_bytes()).unwrap();
    let started = Instant::now();
    let (mut out, mut early) = (Vec::new(), None);
    let mut buf = [0u8; 16 * 1024];
    while started.elapsed() < Duration::from_secs(10) {
        if early.is_none() && started.elapsed() >= Duration::from_millis(500) {
            early = Some(out.len());
        }
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    let slow = started.elapsed() > Duration::from_secs(1);
    let text = String::from_utf8_lossy(&out).replace(NGINX_TOKEN, RGINX_TOKEN);
    let head: Vec<&str> = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .split("\r\n")
        .filter(|l| !l.starts_with("Date:"))
        .collect();
    let shown = format!("{} || {} bytes", head.join(" | "), text.len());
    (early.unwrap_or(out.len()), slow, shown)
}

#[test]
fn responses_are_paced_as_nginx_paces_them() {
    let Some(nginx) = nginx() else { return };
    let backend = scripted_backend(|_| {
        Some(format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {BODY}\r\nConnection: close\r\n\r\n{}",
            "X".repeat(BODY)
        ))
    });
    let pair = DirPair::start(&nginx, "rate", |port, dir| http_body(port, backend, dir));
    let targets = [
        "/data",
        "/accel/x?xal=20000",
        "/accel/x?xal=0",
        "/accel/x?xal=junk",
        "/accel/x?xar=/redirect",
        "/accel/x?xar=/redirect&xal=13000",
        "/ignored/x?xal=100000",
        "/var?l=12k&a=256",
        "/var?l=20k&a=1k",
        "/var?l=12k&a=40k",
        "/var",
        "/var?l=abc",
        "/own/",
    ];
    // every answer at once: each takes its seconds in parallel
    let seen: Vec<[(usize, bool, String); 2]> = std::thread::scope(|scope| {
        let handles: Vec<_> = targets
            .iter()
            .map(|target| {
                let ports = (pair.nginx_port, pair.rginx_port);
                scope.spawn(move || [watch(ports.0, target), watch(ports.1, target)])
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("watcher"))
            .collect()
    });
    let mut differences = Vec::new();
    for (target, [theirs, ours]) in targets.iter().zip(&seen) {
        if std::env::var_os("RGINX_DEBUG").is_some() {
            eprintln!("{target}: {theirs:?} {ours:?}");
        }
        // the signatures differ in length: the bursts count the head
        let signatures = NGINX_TOKEN.len().abs_diff(RGINX_TOKEN.len());
        let early = theirs.0.abs_diff(ours.0);
        if theirs.1 != ours.1 || theirs.2 != ours.2 || (early != 0 && early != signatures) {
            differences.push(format!(
                "{target}:\n  nginx: {} bytes by 0.5 s, slow {}, {}\n  rginx: {} bytes by 0.5 s, slow {}, {}",
                theirs.0, theirs.1, theirs.2, ours.0, ours.1, ours.2
            ));
        }
    }
    let lines = pair.sides().map(|(_, _, dir)| {
        let mut lines: Vec<String> = log_lines(dir, "error.log")
            .into_iter()
            .filter(|l| l.contains("invalid size"))
            .collect();
        lines.sort();
        lines
    });
    if lines[0] != lines[1] {
        differences.push(format!(
            "error lines:\n  nginx: {:?}\n  rginx: {:?}",
            lines[0], lines[1]
        ));
    }
    assert_no_differences(&differences, targets.len());
}
