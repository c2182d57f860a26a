//! Connection churn: 20,000 client connections opened and closed through
//! rginx (plain requests, WebSocket tunnels, and clients that vanish in the
//! middle of a head, a body or a tunnel), after which the process holds as
//! many file descriptors as before: nothing leaks.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use rginx_proxy::echo::{client_frame, client_handshake, read_frame, EchoBackend};

/// Open descriptors of a process.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// One connection of kind `n % 5`: a plain request, a WebSocket round trip,
/// a client that leaves mid-head, mid-body, or mid-tunnel.
fn one(port: u16, n: usize) {
    let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) else {
        panic!("connection {n} refused");
    };
    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = c.set_nodelay(true);
    match n % 5 {
        0 => {
            c.write_all(b"GET /plain HTTP/1.1\r\nHost: churn\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut out = Vec::new();
            let _ = c.read_to_end(&mut out);
            assert!(out.starts_with(b"HTTP/1.1 200 OK"), "connection {n}");
        }
        1 => {
            drop(c);
            let (mut ws, mut r, head) = client_handshake(("127.0.0.1", port), "/ws/").unwrap();
            assert_eq!(
                head[0], "HTTP/1.1 101 Switching Protocols",
                "connection {n}"
            );
            ws.write_all(&client_frame(0x1, true, b"churn")).unwrap();
            assert_eq!(read_frame(&mut r).unwrap().2, b"churn");
            // a proper close, then the connection ends
            ws.write_all(&client_frame(0x8, true, &[0x03, 0xe8]))
                .unwrap();
            let _ = read_frame(&mut r);
        }
        2 => {
            // half a head, then gone
            c.write_all(b"GET /half HTTP/1.1\r\nHost: ch").unwrap();
        }
        3 => {
            // a head promising a body that never fully comes
            c.write_all(b"POST /body HTTP/1.1\r\nHost: churn\r\nContent-Length: 100\r\n\r\nabc")
                .unwrap();
        }
        _ => {
            drop(c);
            // a tunnel the client drops without a close frame
            let (mut ws, mut r, head) = client_handshake(("127.0.0.1", port), "/ws/").unwrap();
            assert_eq!(
                head[0], "HTTP/1.1 101 Switching Protocols",
                "connection {n}"
            );
            ws.write_all(&client_frame(0x2, true, &[7; 100])).unwrap();
            let _ = read_frame(&mut r);
        }
    }
}

#[test]
fn twenty_thousand_connections_leave_no_descriptor_behind() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = free_port();
    let rginx = start_rginx(
        &format!(
            "map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
             server {{
                listen 127.0.0.1:{port};
                client_header_timeout 2s;
                client_body_timeout 2s;
                location /ws/ {{
                    proxy_pass http://{backend};
                    proxy_http_version 1.1;
                    proxy_set_header Upgrade $http_upgrade;
                    proxy_set_header Connection $connection_upgrade;
                }}
                location / {{ proxy_pass http://{backend}; }}
            }}",
            backend = backend.addr()
        ),
        port,
    );
    let pid = rginx.0.id();
    // one of each first, so that everything made once (log files, the
    // runtime's own descriptors) is in the baseline
    for n in 0..5 {
        one(port, n);
    }
    let settle = |limit: usize| {
        let started = Instant::now();
        loop {
            let now = fds(pid);
            if now <= limit || started.elapsed() > Duration::from_secs(10) {
                return now;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // the clients that left mid-head or mid-body are let go after the
    // 2 s header and body timeouts
    std::thread::sleep(Duration::from_millis(2500));
    let baseline = settle(0);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..5_000 {
                    one(port, t * 5_000 + i);
                }
            })
        })
        .collect();
    let mut peak = 0;
    while threads.iter().any(|t| !t.is_finished()) {
        peak = peak.max(fds(pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    for t in threads {
        t.join().unwrap();
    }
    std::thread::sleep(Duration::from_millis(2500));
    let after = settle(baseline);
    eprintln!(
        "churn: 20,000 connections, descriptors: {baseline} before, peak {peak}, {after} after"
    );
    assert!(
        after <= baseline,
        "descriptors: {baseline} before, {after} after"
    );
}
