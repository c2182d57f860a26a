//! The echo backend behind real nginx: what the engine's differential and
//! WebSocket tests will compare rginx against.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use rginx_proxy::echo::{client_frame, client_handshake, read_frame, EchoBackend};

#[test]
fn nginx_proxies_plain_requests_and_websockets_to_the_echo_backend() {
    let Some(nginx) = nginx() else { return };
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = free_port();
    let conf = format!(
        "map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
         server {{
             listen 127.0.0.1:{port};
             location / {{ proxy_pass http://{backend}; }}
             location /ws/ {{
                 proxy_pass http://{backend};
                 proxy_http_version 1.1;
                 proxy_set_header Upgrade $http_upgrade;
                 proxy_set_header Connection $connection_upgrade;
             }}
         }}",
        backend = backend.addr()
    );
    let _nginx = NginxServer::start(&nginx, &conf, port);

    // a plain request: the backend reports what nginx sent
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(
        b"GET /x?y=1 HTTP/1.1\r\nHost: example.com\r\nX-Test: 1\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("");
    let expected = format!(
        "{{\"method\":\"GET\",\"uri\":\"/x?y=1\",\"version\":\"HTTP/1.0\",\"headers\":[[\"Host\",\"{}\"],[\"Connection\",\"close\"],[\"X-Test\",\"1\"]],\"body\":\"\"}}\n",
        backend.addr()
    );
    assert_eq!(body, expected);

    // a WebSocket through nginx's tunnel
    let (mut c, mut r, head) = client_handshake(("127.0.0.1", port), "/ws/").unwrap();
    assert_eq!(head[0], "HTTP/1.1 101 Switching Protocols");
    c.write_all(&client_frame(0x1, true, b"through nginx"))
        .unwrap();
    assert_eq!(
        read_frame(&mut r).unwrap(),
        (true, 0x1, b"through nginx".to_vec())
    );
}
