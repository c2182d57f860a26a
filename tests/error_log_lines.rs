//! nginx's info lines for client and tunnel events, with their context
//! suffix, compared with nginx's own (time, pid and connection number
//! left out, ports masked): a WebSocket tunnel closed by
//! `proxy_read_timeout`, and a client that closes its kept-alive
//! connection.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use rginx_proxy::echo::{client_handshake, EchoBackend};

#[test]
fn tunnel_timeouts_and_closed_keepalives_are_logged_as_nginx_logs_them() {
    let Some(nginx) = nginx() else { return };
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = backend.addr();
    let pair = DirPair::start(&nginx, "infolines", |port, dir| {
        format!(
            "error_log {dir}/info.log info;
             map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
             server {{
                 listen 127.0.0.1:{port};
                 server_name lines.test;
                 location /ws {{
                     proxy_pass http://{addr};
                     proxy_http_version 1.1;
                     proxy_set_header Upgrade $http_upgrade;
                     proxy_set_header Connection $connection_upgrade;
                     proxy_read_timeout 1s;
                 }}
                 location / {{ return 200 \"ok\\n\"; }}
             }}",
            dir = dir.display()
        )
    });
    let mut logs = Vec::new();
    for (_, port, dir) in pair.sides() {
        // a tunnel nobody speaks on: proxy_read_timeout closes it
        let (mut tunnel, _, _) = client_handshake(("127.0.0.1", port), "/ws/").expect("handshake");
        tunnel
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut rest = Vec::new();
        let _ = tunnel.read_to_end(&mut rest);
        // a kept-alive connection its client closes after one request
        let mut kept = TcpStream::connect(("127.0.0.1", port)).unwrap();
        kept.write_all(b"GET / HTTP/1.1\r\nHost: lines.test\r\n\r\n")
            .unwrap();
        let mut answer = [0u8; 1024];
        let _ = kept.read(&mut answer);
        drop(kept);
        std::thread::sleep(Duration::from_millis(300));
        let lines: Vec<String> = log_lines(dir, "info.log")
            .into_iter()
            .filter(|l| l.contains("while proxying upgraded") || l.contains("closed"))
            .collect();
        logs.push(lines);
    }
    assert_eq!(logs[1], logs[0], "rginx's lines, then nginx's");
    assert!(!logs[0].is_empty());
}
