//! `keepalive_time` through nginx and rginx: a client connection older
//! than it gets `Connection: close` on its next answer, and closes.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

fn http_body(port: u16) -> String {
    format!(
        "server {{
    listen 127.0.0.1:{port};
    keepalive_time 1s;
    location / {{ return 200 \"ok\"; }}
}}"
    )
}

/// The `Connection` values of two answers on one connection, the second
/// asked after the connection's `keepalive_time`.
fn two_answers(port: u16) -> (String, String) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let connection = |c: &mut TcpStream| {
        c.write_all(b"GET / HTTP/1.1\r\nHost: k.test\r\n\r\n")
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let n = c.read(&mut buf).unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("Connection: "))
            .unwrap_or("")
            .to_string()
    };
    let first = connection(&mut c);
    std::thread::sleep(Duration::from_millis(1500));
    let second = connection(&mut c);
    (first, second)
}

#[test]
fn an_old_connection_serves_its_last_request() {
    let Some(nginx) = nginx() else { return };
    let (nginx_port, rginx_port) = (free_port(), free_port());
    let _theirs = NginxServer::start(&nginx, &http_body(nginx_port), nginx_port);
    let _ours = start_rginx(&http_body(rginx_port), rginx_port);
    let theirs = two_answers(nginx_port);
    assert_eq!(theirs, ("keep-alive".to_string(), "close".to_string()));
    assert_eq!(two_answers(rginx_port), theirs);
}
