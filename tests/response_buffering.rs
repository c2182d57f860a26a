//! `proxy_buffering` through nginx and rginx: a client that does not read
//! a large answer does not hold the backend (the answer is read ahead
//! into memory and a temp file, with nginx's log line), unless buffering
//! is off, `X-Accel-Buffering: no` says so or no temp file is allowed;
//! the client then gets every byte in order.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// The answer's body length: bigger than every socket buffer on the way.
const BODY: usize = 48 * 1024 * 1024;

/// The byte at `i` of the answer's body.
fn byte(i: usize) -> u8 {
    (i % 251) as u8
}

/// A backend that answers every request with a `BODY`-byte answer (with
/// `X-Accel-Buffering: no` for a path with `/no-accel`), and reports for
/// each whether it could write it all within `patience`.
fn large_answer_backend(patience: Duration) -> (SocketAddr, mpsc::Receiver<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    let (done, reports) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut conn = conn;
                let Some(head) = read_request_head(&mut conn) else {
                    return;
                };
                let head = String::from_utf8_lossy(&head).into_owned();
                let accel = if head.contains("/no-accel") {
                    "X-Accel-Buffering: no\r\n"
                } else {
                    ""
                };
                let body: Vec<u8> = (0..BODY).map(byte).collect();
                let started = Instant::now();
                let _ = conn.set_write_timeout(Some(patience));
                let sent = conn
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {BODY}\r\n{accel}Connection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .and_then(|()| conn.write_all(&body))
                    .is_ok();
                let _ = done.send(sent && started.elapsed() < patience);
            });
        }
    });
    (addr, reports)
}

fn http_body(port: u16, backend: SocketAddr, dir: &Path) -> String {
    let dir = dir.display();
    format!(
        "error_log {dir}/error.log warn;
proxy_temp_path {dir}/proxy 1 2;
server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://{backend}; }}
    location /off/ {{ proxy_pass http://{backend}; proxy_buffering off; }}
    location /no-file/ {{ proxy_pass http://{backend}; proxy_max_temp_file_size 0; }}
}}"
    )
}

/// Asks for `path`, waits `stall` before reading, then reads the whole
/// answer: whether the backend finished before the client read, and
/// whether the body came whole and in order.
fn slow_reader(
    port: u16,
    path: &str,
    reports: &mpsc::Receiver<bool>,
    stall: Duration,
) -> (bool, bool) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let finished_early = reports.recv_timeout(stall).unwrap_or(false);
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut answer = Vec::with_capacity(BODY + 1024);
    let _ = c.read_to_end(&mut answer);
    let body = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(&answer[..0], |i| &answer[i + 4..]);
    let whole = body.len() == BODY && body.iter().enumerate().all(|(i, b)| *b == byte(i));
    // the backend's report for an answer that waited for the client
    if !finished_early {
        let _ = reports.recv_timeout(Duration::from_secs(10));
    }
    (finished_early, whole)
}

#[test]
fn a_client_that_does_not_read_holds_the_backend_only_when_nginx_s_would() {
    let Some(nginx) = nginx() else { return };
    // generous: a busy CI machine writes 48 MiB to a temp file slowly
    let stall = Duration::from_secs(6);
    let (backend, reports) = large_answer_backend(stall);
    let (nginx_port, rginx_port) = (free_port(), free_port());
    let (nginx_dir, rginx_dir) = (TempDir::new("pb-nginx"), TempDir::new("pb-rginx"));
    let _theirs = NginxServer::start(
        &nginx,
        &http_body(nginx_port, backend, &nginx_dir.0),
        nginx_port,
    );
    let _ours = start_rginx(&http_body(rginx_port, backend, &rginx_dir.0), rginx_port);
    let cases = [
        // (path, the backend finishes before the client reads)
        ("/big", true),
        ("/off/big", false),
        ("/no-accel", false),
        ("/no-file/big", false),
    ];
    let mut differences = Vec::new();
    for (path, early) in cases {
        for (side, port) in [("nginx", nginx_port), ("rginx", rginx_port)] {
            let (finished_early, whole) = slow_reader(port, path, &reports, stall);
            if (finished_early, whole) != (early, true) {
                differences.push(format!(
                    "{side} {path}: backend finished before the client read: {finished_early} (want {early}); body whole: {whole}"
                ));
            }
        }
    }
    let (theirs, ours) = (
        temp_file_log_lines(&nginx_dir.0),
        temp_file_log_lines(&rginx_dir.0),
    );
    if theirs != ours || theirs.is_empty() {
        differences.push(format!(
            "error log lines:\n nginx: {theirs:#?}\n rginx: {ours:#?}"
        ));
    }
    assert_no_differences(&differences, cases.len());
}
