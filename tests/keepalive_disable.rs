//! `keepalive_disable` through nginx and rginx: the default (`msie6`)
//! closes after a POST from MSIE 4 to 6 only, `safari` closes for Safari
//! on Mac OS X, `none` keeps every browser alive.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::*;

/// The `Connection` header of the answer to one kept-alive request.
fn connection_header(port: u16, method: &str, path: &str, user_agent: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
    let body = if method == "POST" {
        "Content-Length: 0\r\n"
    } else {
        ""
    };
    let _ = write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {user_agent}\r\n{body}\r\n"
    );
    let head = read_request_head(&mut stream).unwrap_or_default();
    String::from_utf8_lossy(&head)
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("connection:"))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn browsers_lose_keep_alive_where_nginx_s_do() {
    let Some(nginx) = nginx() else { return };
    let pair = ServerPair::start(&nginx, |port| {
        format!(
            "server {{
                 listen 127.0.0.1:{port};
                 location / {{ return 200 \"ok\\n\"; }}
                 location /safari {{ keepalive_disable safari; return 200 \"ok\\n\"; }}
                 location /none {{ keepalive_disable none; return 200 \"ok\\n\"; }}
                 location /both {{ keepalive_disable msie6 safari; return 200 \"ok\\n\"; }}
             }}"
        )
    });
    let (theirs, ours) = pair.ports();
    let safari = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15";
    let cases = [
        (
            "POST",
            "/",
            "Mozilla/4.0 (compatible; MSIE 5.0; Windows 98)",
        ),
        ("GET", "/", "Mozilla/4.0 (compatible; MSIE 5.0; Windows 98)"),
        (
            "POST",
            "/",
            "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)",
        ),
        (
            "POST",
            "/",
            "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)",
        ),
        (
            "POST",
            "/",
            "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)",
        ),
        ("POST", "/", "Opera/9.80 (MSIE 6.0)"),
        ("GET", "/", safari),
        ("GET", "/safari", safari),
        (
            "GET",
            "/safari",
            "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 Safari/604.1",
        ),
        (
            "POST",
            "/none",
            "Mozilla/4.0 (compatible; MSIE 5.0; Windows 98)",
        ),
        (
            "POST",
            "/both",
            "Mozilla/4.0 (compatible; MSIE 5.0; Windows 98)",
        ),
        ("GET", "/both", safari),
    ];
    for (method, path, user_agent) in cases {
        assert_eq!(
            connection_header(ours, method, path, user_agent),
            connection_header(theirs, method, path, user_agent),
            "{method} {path} {user_agent}"
        );
    }
    assert_eq!(
        connection_header(
            theirs,
            "POST",
            "/",
            "Mozilla/4.0 (compatible; MSIE 5.0; Windows 98)"
        ),
        "Connection: close"
    );
}
