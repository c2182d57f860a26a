//! `rginx -c` serving real sockets: the same configuration and requests go
//! to rginx and to nginx, and the echo backend's view of what each sent
//! must be the same.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use rginx_proxy::echo::{client_frame, client_handshake, read_frame, EchoBackend};

const REQUESTS: &[&str] = &[
    "GET /x?y=1 HTTP/1.1\r\nHost: example.com\r\nX-Test: 1\r\nConnection: close\r\n\r\n",
    "GET /api/v1/items HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 10.0.0.1\r\nConnection: close\r\n\r\n",
    "POST /api/post HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    "GET /regex/42 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    "GET /ws HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    "GET /nothing-here HTTP/1.0\r\nHost: other.test\r\n\r\n",
];

fn config(port: u16, backend: std::net::SocketAddr) -> String {
    format!(
        "upstream app {{ server {backend}; }}
         server {{
             listen 127.0.0.1:{port};
             server_name example.com;
             proxy_set_header X-Real-IP $remote_addr;
             location /x {{ proxy_pass http://{backend}; }}
             location /api/ {{
                 proxy_pass http://app/v2/;
                 proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                 proxy_set_header Host $host;
             }}
             location ~ ^/regex/(\\d+)$ {{ proxy_pass http://app; proxy_set_header X-Id $1; }}
             location /ws/ {{ proxy_pass http://app; }}
         }}"
    )
}

#[test]
fn rginx_sends_what_nginx_sends() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = free_port();
    let _rginx = start_rginx(&config(port, backend.addr()), port);
    let got: Vec<(String, String)> = REQUESTS.iter().map(|r| exchange(port, r)).collect();
    // what rginx does on its own, without nginx at hand
    assert_eq!(got[0].0, "HTTP/1.1 200 OK");
    assert!(got[0].1.contains("\"uri\":\"/x?y=1\""), "{}", got[0].1);
    assert!(
        got[1].1.contains("\"uri\":\"/v2/v1/items\""),
        "{}",
        got[1].1
    );
    assert!(got[2].1.contains("\"body\":\"hello\""), "{}", got[2].1);
    assert!(got[3].1.contains("[\"X-Id\",\"42\"]"), "{}", got[3].1);
    assert_eq!(got[4].0, "HTTP/1.1 301 Moved Permanently");
    // an HTTP/1.0 request gets an HTTP/1.1 status line, as from nginx
    assert_eq!(got[5].0, "HTTP/1.1 404 Not Found");

    let Some(nginx) = nginx() else { return };
    let nginx_port = free_port();
    let _nginx = NginxServer::start(&nginx, &config(nginx_port, backend.addr()), nginx_port);
    for (request, (status, body)) in REQUESTS.iter().zip(&got) {
        let (want_status, want_body) = exchange(nginx_port, request);
        assert_eq!(status, &want_status, "{request}");
        if want_status.contains("200") {
            // the backend's view: what each proxy sent, byte for byte
            // (names in their case, lines in their order)
            assert_eq!(body, &want_body, "{request}");
        }
    }
}

#[test]
fn an_unreachable_backend_is_a_502() {
    let port = free_port();
    let dead = free_port();
    let _rginx = start_rginx(
        &format!("server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://127.0.0.1:{dead}; }} }}"),
        port,
    );
    let (status, body) = exchange(
        port,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, "HTTP/1.1 502 Bad Gateway");
    assert!(body.contains("<title>502 Bad Gateway</title>"), "{body}");
}

#[test]
fn a_busy_port_is_reported_like_nginx() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let dir = TempDir::new("busy");
    let conf = dir.0.join("rginx.conf");
    std::fs::write(
        &conf,
        format!("events {{}}\nhttp {{ server {{ listen 127.0.0.1:{port}; }} }}\n"),
    )
    .unwrap();
    let out = rginx().arg("-c").arg(&conf).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "rginx: [emerg] bind() to 127.0.0.1:{port} failed (98: Address already in use)"
        )),
        "{err}"
    );
}

/// Opens a WebSocket through a proxy on `port`, echoes a text and a ping,
/// closes; returns the 101 response head's lines.
fn websocket_round_trip(port: u16, path: &str) -> Vec<String> {
    let (mut c, mut r, head) = client_handshake(("127.0.0.1", port), path).unwrap();
    c.write_all(&client_frame(0x1, true, b"hello through the tunnel"))
        .unwrap();
    assert_eq!(
        read_frame(&mut r).unwrap(),
        (true, 0x1, b"hello through the tunnel".to_vec())
    );
    c.write_all(&client_frame(0x9, true, b"ping")).unwrap();
    assert_eq!(read_frame(&mut r).unwrap(), (true, 0xA, b"ping".to_vec()));
    c.write_all(&client_frame(0x8, true, &[0x03, 0xE8]))
        .unwrap();
    assert_eq!(read_frame(&mut r).unwrap(), (true, 0x8, vec![0x03, 0xE8]));
    // the backend closed after the close frame: the proxy closes the client
    let mut rest = Vec::new();
    let _ = r.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{rest:?}");
    head
}

#[test]
fn websockets_tunnel_like_nginx() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let conf = |port: u16| {
        format!(
            "map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
             server {{
                 listen 127.0.0.1:{port};
                 location /ws/ {{
                     proxy_pass http://{backend};
                     proxy_http_version 1.1;
                     proxy_set_header Upgrade $http_upgrade;
                     proxy_set_header Connection $connection_upgrade;
                     proxy_read_timeout 5s;
                 }}
             }}",
            backend = backend.addr()
        )
    };
    let port = free_port();
    let _rginx = start_rginx(&conf(port), port);
    let head = websocket_round_trip(port, "/ws/chat");
    assert_eq!(head[0], "HTTP/1.1 101 Switching Protocols");
    let has = |h: &[String], line: &str| h.iter().any(|l| l.eq_ignore_ascii_case(line));
    assert!(has(&head, "Upgrade: websocket"), "{head:?}");
    assert!(has(&head, "Connection: upgrade"), "{head:?}");
    assert!(
        has(&head, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "{head:?}"
    );

    let Some(nginx) = nginx() else { return };
    let nginx_port = free_port();
    let _nginx = NginxServer::start(&nginx, &conf(nginx_port), nginx_port);
    let nginx_head = websocket_round_trip(nginx_port, "/ws/chat");
    // the same response head but for Date and Server
    let strip = |h: &[String]| -> Vec<String> {
        h.iter()
            .map(|l| l.to_ascii_lowercase())
            .filter(|l| !l.starts_with("date:") && !l.starts_with("server:"))
            .collect()
    };
    assert_eq!(strip(&head), strip(&nginx_head));
}

#[test]
fn an_idle_tunnel_closes_after_proxy_read_timeout() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = free_port();
    let _rginx = start_rginx(
        &format!(
            "server {{ listen 127.0.0.1:{port};
               location / {{ proxy_pass http://{}; proxy_http_version 1.1;
                 proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection upgrade;
                 proxy_read_timeout 1s; }} }}",
            backend.addr()
        ),
        port,
    );
    let (_c, mut r, head) = client_handshake(("127.0.0.1", port), "/").unwrap();
    assert_eq!(head[0], "HTTP/1.1 101 Switching Protocols");
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let _ = r.read_to_end(&mut rest);
    let waited = started.elapsed();
    // closed by the idle timer, not by the 10 s read timeout of this client
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[test]
fn without_a_configuration_rginx_runs_the_demo() {
    if std::path::Path::new("/etc/rginx/rginx.conf").exists()
        || std::net::TcpListener::bind("127.0.0.1:8080").is_err()
        || std::net::TcpListener::bind("127.0.0.1:9001").is_err()
    {
        eprintln!("skipping: the demo's ports are busy or /etc/rginx/rginx.conf exists");
        return;
    }
    let dir = TempDir::new("demo");
    let child = rginx()
        .current_dir(&dir.0)
        .stderr(Stdio::null())
        .spawn()
        .expect("start rginx");
    let _guard = Rginx(child, dir);
    wait_for_port(8080, 200);
    let (status, body) = exchange(
        8080,
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("rginx WebSocket echo"), "{body}");
    let head = websocket_round_trip(8080, "/ws/");
    assert_eq!(head[0], "HTTP/1.1 101 Switching Protocols");
}

#[test]
fn access_log_lines_match_nginx() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let dir = TempDir::new("logs");
    let conf = |port: u16, log: &std::path::Path| {
        format!(
            "log_format custom '$request_method $uri args=$arg_a \"$http_x_quote\" $status';
             server {{
                 listen 127.0.0.1:{port};
                 access_log {log};
                 location / {{ proxy_pass http://{backend}; }}
                 location /custom/ {{
                     proxy_pass http://{backend};
                     access_log {log} custom;
                 }}
                 location /quiet/ {{ proxy_pass http://{backend}; access_log off; }}
                 location /dir/ {{ proxy_pass http://{backend}; }}
             }}
             server {{
                 listen 127.0.0.1:{port};
                 server_name other.test;
                 access_log {log};
                 location /api/ {{ proxy_pass http://{backend}; client_max_body_size 2; }}
             }}",
            log = log.display(),
            backend = backend.addr()
        )
    };
    let requests = [
        "GET /x?y=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: test \"agent\"\r\nReferer: http://r/\r\nConnection: close\r\n\r\n",
        "GET /custom/p?a=b HTTP/1.1\r\nHost: example.com\r\nX-Quote: say \"hi\"\r\nConnection: close\r\n\r\n",
        "GET /quiet/ HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
        "POST /x HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
        // answers rginx gives itself are logged too: 301, 404 (no
        // location: the server's log), 413, 400 (the default server's)
        "GET /dir?q=1 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
        "GET /nope HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n",
        "POST /api/big HTTP/1.1\r\nHost: other.test\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
        "GET /../up HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n",
        "HEAD /nope HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n",
    ];
    let rginx_log = dir.0.join("rginx.log");
    let port = free_port();
    let rginx_server = start_rginx(&conf(port, &rginx_log), port);
    for r in requests {
        exchange(port, r);
    }
    // the line is written when the response is done
    std::thread::sleep(Duration::from_millis(200));
    drop(rginx_server);
    let got = std::fs::read_to_string(&rginx_log).unwrap_or_default();
    // the time, and the size of error pages (their signature line says
    // nginx or rginx), are masked
    let time = |s: &str| -> String {
        s.lines()
            .map(|l| match (l.find('['), l.find(']')) {
                (Some(a), Some(b)) if a < b => format!("{}[TIME]{}", &l[..a], &l[b + 1..]),
                _ => l.to_string(),
            })
            .map(|l| {
                let mut words: Vec<String> = l.split(' ').map(str::to_string).collect();
                for i in 1..words.len() {
                    let own = ["301", "400", "404", "413"].contains(&words[i - 1].as_str());
                    if own && words[i] != "0" && words[i].parse::<u64>().is_ok() {
                        words[i] = "SIZE".into();
                    }
                }
                words.join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let got = time(&got);
    assert_eq!(got.lines().count(), 8, "{got}");
    assert!(got.contains("\"GET /x?y=1 HTTP/1.1\" 200 "), "{got}");
    assert!(
        got.contains("\"http://r/\" \"test \\x22agent\\x22\""),
        "{got}"
    );
    assert!(
        got.contains("GET /custom/p args=b \"say \\x22hi\\x22\" 200"),
        "{got}"
    );

    let Some(nginx) = nginx() else { return };
    let nginx_log = dir.0.join("nginx.log");
    let nginx_port = free_port();
    let nginx_server = NginxServer::start(&nginx, &conf(nginx_port, &nginx_log), nginx_port);
    for r in requests {
        exchange(nginx_port, r);
    }
    std::thread::sleep(Duration::from_millis(200));
    drop(nginx_server);
    let want = time(&std::fs::read_to_string(&nginx_log).unwrap_or_default());
    assert_eq!(got, want);
}

#[test]
fn a_refused_server_is_skipped_like_nginx() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let dead = free_port();
    let conf = |port: u16, tries: &str| {
        format!(
            "upstream app {{ server 127.0.0.1:{dead} weight=5; server {}; }}
             server {{ listen 127.0.0.1:{port};
               location / {{ proxy_pass http://app; {tries} }}
               location /off/ {{ proxy_pass http://app; proxy_next_upstream off; }} }}",
            backend.addr()
        )
    };
    let port = free_port();
    let _rginx = start_rginx(&conf(port, ""), port);
    let request = "GET /x HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n";
    // every request succeeds: a refused connection moves on to the live server
    let got: Vec<String> = (0..4).map(|_| exchange(port, request).0).collect();
    assert!(got.iter().all(|s| s == "HTTP/1.1 200 OK"), "{got:?}");

    let Some(nginx) = nginx() else { return };
    let nginx_port = free_port();
    let _nginx = NginxServer::start(&nginx, &conf(nginx_port, ""), nginx_port);
    let want: Vec<String> = (0..4).map(|_| exchange(nginx_port, request).0).collect();
    assert_eq!(got, want);
    // with proxy_next_upstream off, the first refused connection is a 502
    // for both (the dead server is first: fresh processes, same weights)
    let off = "GET /off/ HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n";
    let port2 = free_port();
    let _rginx2 = start_rginx(&conf(port2, ""), port2);
    let nginx_port2 = free_port();
    let _nginx2 = NginxServer::start(&nginx, &conf(nginx_port2, ""), nginx_port2);
    assert_eq!(exchange(port2, off).0, exchange(nginx_port2, off).0);
}

#[test]
fn keepalive_reuses_upstream_connections_like_nginx() {
    let conf = |port: u16, backend: std::net::SocketAddr| {
        format!(
            "upstream app {{ server {backend}; keepalive 4; }}
             upstream short {{ server {backend}; keepalive 4; keepalive_requests 2; }}
             server {{ listen 127.0.0.1:{port};
               location /pooled/ {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}
               location /short/ {{ proxy_pass http://short; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}
               location /closed/ {{ proxy_pass http://app; }} }}"
        )
    };
    let count = |port: u16, backend: &EchoBackend, path: &str| {
        let before = backend.connections();
        for _ in 0..5 {
            let (status, _) = exchange(
                port,
                &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            );
            assert_eq!(status, "HTTP/1.1 200 OK");
        }
        backend.connections() - before
    };
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = free_port();
    let _rginx = start_rginx(&conf(port, backend.addr()), port);
    let rginx_counts = (
        count(port, &backend, "/pooled/a"),
        count(port, &backend, "/closed/a"),
        count(port, &backend, "/short/a"),
    );
    // HTTP/1.1 without "Connection: close" reuses one connection; nginx's
    // default (HTTP/1.0, Connection: close) closes it after each request
    // (the first of those may still take the idle one from the pool)
    assert_eq!(rginx_counts.0, 1);
    assert!(rginx_counts.1 >= 4, "{rginx_counts:?}");
    // keepalive_requests 2: a new connection every second request
    assert_eq!(rginx_counts.2, 3);

    let Some(nginx) = nginx() else { return };
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let nginx_port = free_port();
    let _nginx = NginxServer::start(&nginx, &conf(nginx_port, backend.addr()), nginx_port);
    let nginx_counts = (
        count(nginx_port, &backend, "/pooled/a"),
        count(nginx_port, &backend, "/closed/a"),
        count(nginx_port, &backend, "/short/a"),
    );
    assert_eq!(rginx_counts, nginx_counts);
}

#[test]
fn chunked_bodies_are_sent_with_a_length_like_nginx() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let conf = |port: u16| {
        format!(
            "server {{ listen 127.0.0.1:{port};
               location / {{ proxy_pass http://{}; }}
               location /small/ {{ proxy_pass http://{}; client_max_body_size 8; }} }}",
            backend.addr(),
            backend.addr()
        )
    };
    let chunked = "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let too_big = "POST /small/up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let port = free_port();
    let _rginx = start_rginx(&conf(port), port);
    let (status, body) = exchange(port, chunked);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("[\"Content-Length\",\"11\"]"), "{body}");
    assert!(body.contains("\"body\":\"hello world\""), "{body}");
    assert_eq!(
        exchange(port, too_big).0,
        "HTTP/1.1 413 Request Entity Too Large"
    );

    let Some(nginx) = nginx() else { return };
    let nginx_port = free_port();
    let _nginx = NginxServer::start(&nginx, &conf(nginx_port), nginx_port);
    let (want_status, want_body) = exchange(nginx_port, chunked);
    assert_eq!(status, want_status);
    assert_eq!(body, want_body);
    // nginx words the reason "Request Entity Too Large"; the code is the same
    let code = |s: String| s.split(' ').nth(1).unwrap_or("").to_string();
    assert_eq!(
        code(exchange(port, too_big).0),
        code(exchange(nginx_port, too_big).0)
    );
}

#[test]
fn upstream_errors_are_logged_like_nginx() {
    let dead = free_port();
    let conf = |port: u16| {
        format!(
            "upstream none {{ server 127.0.0.1:{dead} down; }}
             server {{ listen 127.0.0.1:{port}; server_name srv.test;
               client_max_body_size 4;
               location /none/ {{ proxy_pass http://none; }}
               location / {{ proxy_pass http://127.0.0.1:{dead}; }} }}"
        )
    };
    let requests = [
        "GET /a?b=1 HTTP/1.1\r\nHost: Example.com\r\nConnection: close\r\n\r\n",
        "GET /none/x HTTP/1.1\r\nHost: srv.test\r\nConnection: close\r\n\r\n",
        "POST /big HTTP/1.1\r\nHost: srv.test\r\nContent-Length: 5\r\nConnection: close\r\n\r\n12345",
        "POST /big HTTP/1.1\r\nHost: srv.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\n123\r\n3\r\n456\r\n0\r\n\r\n",
    ];
    let dir = TempDir::new("errlog");
    let log = dir.0.join("error.log");
    let port = free_port();
    let rginx_server =
        start_rginx_main(&format!("error_log {};", log.display()), &conf(port), port);
    assert_eq!(exchange(port, requests[0]).0, "HTTP/1.1 502 Bad Gateway");
    for r in &requests[1..] {
        exchange(port, r);
    }
    std::thread::sleep(Duration::from_millis(100));
    drop(rginx_server);
    // the date, the process and the connection number vary
    let tail = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| {
                l.split_once(": *")
                    .map(|(_, rest)| rest.split_once(' ').map_or("", |(_, r)| r).to_string())
            })
            .collect()
    };
    let got = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(got.contains(" [error] "), "{got}");
    let got = tail(&got);
    assert_eq!(
        got[0],
        format!(
            "connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: srv.test, request: \"GET /a?b=1 HTTP/1.1\", upstream: \"http://127.0.0.1:{dead}/a?b=1\", host: \"Example.com\""
        )
    );

    let Some(nginx) = nginx() else { return };
    let nginx_port = free_port();
    let nginx_server = NginxServer::start(&nginx, &conf(nginx_port), nginx_port);
    for r in requests {
        exchange(nginx_port, r);
    }
    std::thread::sleep(Duration::from_millis(100));
    let want = tail(&std::fs::read_to_string(nginx_server.error_log()).unwrap_or_default());
    assert_eq!(got, want);
}

#[test]
fn many_request_headers_are_accepted_like_nginx() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let conf = |port: u16| {
        format!(
            "server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://{}; }} }}",
            backend.addr()
        )
    };
    let mut request = String::from("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for i in 0..150 {
        request.push_str(&format!("X-H{i}: {i}\r\n"));
    }
    request.push_str("\r\n");
    let port = free_port();
    let _rginx = start_rginx(&conf(port), port);
    let got = exchange(port, &request).0;
    assert_eq!(got, "HTTP/1.1 200 OK");
    let Some(nginx) = nginx() else { return };
    let nginx_port = free_port();
    let _nginx = NginxServer::start(&nginx, &conf(nginx_port), nginx_port);
    assert_eq!(got, exchange(nginx_port, &request).0);
}

/// Requests one after another on one connection: each response's
/// `Connection` and `Keep-Alive` lines, then whether the connection was
/// closed after the last answer.
fn keep_alive_run(port: u16, path: &str, n: usize) -> Vec<String> {
    use common::wire::read_message;
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    let mut leftover = Vec::new();
    for i in 0..n {
        let request = format!("GET {path}{i} HTTP/1.1\r\nHost: k.test\r\n\r\n");
        if c.write_all(request.as_bytes()).is_err() {
            out.push("write failed".to_string());
            break;
        }
        let Some(m) = read_message(&mut c, &mut leftover, false, false) else {
            out.push("closed".to_string());
            break;
        };
        out.push(format!(
            "{} connection={:?} keep-alive={:?}",
            m.status(),
            m.header("connection"),
            m.header("keep-alive")
        ));
    }
    let mut rest = Vec::new();
    let closed = matches!(c.read_to_end(&mut rest), Ok(0));
    out.push(format!("closed after: {closed}"));
    out
}

#[test]
fn keep_alive_settings_match_nginx() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let conf = |port: u16| {
        format!(
            "server {{ listen 127.0.0.1:{port};
               keepalive_requests 2;
               location /two/ {{ proxy_pass http://{b}; }}
               location /off/ {{ proxy_pass http://{b}; keepalive_timeout 0; }}
               location /header/ {{ proxy_pass http://{b}; keepalive_timeout 1 7s; keepalive_requests 3; }}
             }}",
            b = backend.addr()
        )
    };
    let runs = |port: u16| {
        vec![
            keep_alive_run(port, "/two/", 3),
            keep_alive_run(port, "/off/", 2),
            keep_alive_run(port, "/header/", 2),
        ]
    };
    let port = free_port();
    let _rginx = start_rginx(&conf(port), port);
    let got = runs(port);
    assert_eq!(
        got[0][1], "200 connection=Some(\"close\") keep-alive=None",
        "{got:?}"
    );
    assert_eq!(
        got[2][0],
        "200 connection=Some(\"keep-alive\") keep-alive=Some(\"timeout=7\")"
    );

    let Some(nginx) = nginx() else { return };
    let nginx_port = free_port();
    let _nginx = NginxServer::start(&nginx, &conf(nginx_port), nginx_port);
    assert_eq!(got, runs(nginx_port));
}

#[test]
fn a_slow_request_head_is_dropped_like_nginx() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let conf = |port: u16| header_timeout_conf(port, backend.addr());
    // half a head, then nothing: what comes back before the close
    let slow = |port: u16| {
        let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        c.write_all(b"GET /slow HTTP/1.1\r\nHost: s.test\r\n")
            .unwrap();
        let started = std::time::Instant::now();
        let mut got = Vec::new();
        let closed = c.read_to_end(&mut got).is_ok();
        (closed, started.elapsed() < Duration::from_secs(6), got)
    };
    let port = free_port();
    let _rginx = start_rginx(&conf(port), port);
    let got = slow(port);
    assert!(got.0 && got.1, "the connection stayed open: {got:?}");

    let Some(nginx) = nginx() else { return };
    let nginx_port = free_port();
    let _nginx = NginxServer::start(&nginx, &conf(nginx_port), nginx_port);
    assert_eq!(got, slow(nginx_port));
}

/// A server with `client_header_timeout 1s` in front of `backend`.
fn header_timeout_conf(port: u16, backend: std::net::SocketAddr) -> String {
    format!(
        "server {{ listen 127.0.0.1:{port}; client_header_timeout 1s;
           location / {{ proxy_pass http://{backend}; }} }}"
    )
}

#[test]
fn a_dripping_head_is_bounded_by_client_header_timeout_like_nginx() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let conf = |port: u16| header_timeout_conf(port, backend.addr());
    // slowloris: a header line every 200 ms, for up to 5 s; nginx's timer
    // runs from the start of the head, progress does not reset it
    let drip = |port: u16| {
        let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        c.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let started = std::time::Instant::now();
        let _ = c.write_all(b"GET /drip HTTP/1.1\r\nHost: s.test\r\n");
        let mut buf = [0u8; 512];
        for i in 0..25 {
            if c.write_all(format!("X-Drip-{i}: x\r\n").as_bytes())
                .is_err()
            {
                break;
            }
            match c.read(&mut buf) {
                // still waiting for the rest of the head
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                // closed (EOF or reset), or answered
                _ => break,
            }
        }
        started.elapsed()
    };
    let port = free_port();
    let _rginx = start_rginx(&conf(port), port);
    let took = drip(port);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "rginx held the dripping head for {took:?}"
    );

    let Some(nginx) = nginx() else { return };
    let nginx_port = free_port();
    let _nginx = NginxServer::start(&nginx, &conf(nginx_port), nginx_port);
    let took = drip(nginx_port);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "nginx held the dripping head for {took:?}"
    );
}

#[test]
fn oversized_heads_are_refused_like_nginx() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let conf = |port: u16| {
        format!(
            "server {{ listen 127.0.0.1:{port};
               location / {{ proxy_pass http://{}; }} }}",
            backend.addr()
        )
    };
    let long = "a".repeat(9000);
    let big = "b".repeat(7000);
    let requests = [
        format!("GET /{long} HTTP/1.1\r\nHost: h\r\n\r\n"),
        format!("GET / HTTP/1.1\r\nHost: h\r\nX-Long: {long}\r\n\r\n"),
        format!(
            "GET / HTTP/1.1\r\nHost: h\r\nA: {big}\r\nB: {big}\r\nC: {big}\r\nD: {big}\r\nE: {big}\r\n\r\n"
        ),
        // within the limits: passes
        format!("GET /ok HTTP/1.1\r\nHost: h\r\nA: {big}\r\nConnection: close\r\n\r\n"),
    ];
    let view = |port: u16| -> Vec<String> {
        requests
            .iter()
            .map(|r| {
                let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                let m = common::wire::send(addr, r.as_bytes(), false, Duration::from_secs(5));
                let Some(m) = m else {
                    return "no answer".to_string();
                };
                let mut lines: Vec<String> = m
                    .head
                    .iter()
                    .filter(|l| {
                        let l = l.to_ascii_lowercase();
                        !l.starts_with("date:")
                            && !l.starts_with("server:")
                            && !l.starts_with("content-length:")
                    })
                    .map(|l| l.to_ascii_lowercase())
                    .collect();
                let body = String::from_utf8_lossy(&m.body).replace(NGINX_TOKEN, RGINX_TOKEN);
                if m.status() != 200 {
                    lines.push(body);
                }
                lines.join("\n")
            })
            .collect()
    };
    let port = free_port();
    let _rginx = start_rginx(&conf(port), port);
    let got = view(port);
    assert!(
        got[0].starts_with("http/1.1 414 request-uri too large"),
        "{got:?}"
    );
    assert!(got[1].starts_with("http/1.1 400 bad request"), "{got:?}");
    assert!(got[3].starts_with("http/1.1 200 ok"), "{got:?}");

    let Some(nginx) = nginx() else { return };
    let nginx_port = free_port();
    let _nginx = NginxServer::start(&nginx, &conf(nginx_port), nginx_port);
    assert_eq!(got, view(nginx_port));
}

#[test]
fn bytes_sent_with_the_101_reach_the_client_and_the_tunnel_is_logged() {
    // a backend that sends its first frame in the same write as its 101
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut leftover = Vec::new();
            if common::wire::read_message(&mut conn, &mut leftover, true, false).is_none() {
                continue;
            }
            let mut out = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n".to_vec();
            out.extend_from_slice(&[0x81, 5]);
            out.extend_from_slice(b"hello");
            let _ = conn.write_all(&out);
            // then close: the proxy closes the client too
        }
    });
    let dir = TempDir::new("tunnel-log");
    let conf = |port: u16, log: &std::path::Path| {
        format!(
            "server {{ listen 127.0.0.1:{port};
               access_log {log};
               location / {{ proxy_pass http://{backend}; proxy_http_version 1.1;
                 proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection upgrade; }} }}",
            log = log.display()
        )
    };
    let run = |port: u16| -> Vec<u8> {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(
            b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        )
        .unwrap();
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got);
        let at = got
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(0, |i| i + 4);
        got[at..].to_vec()
    };
    let log_line = |path: &std::path::Path| {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.split_once("] ")
            .map(|(_, rest)| rest.to_string())
            .unwrap_or(text)
    };
    let rginx_log = dir.0.join("rginx.log");
    let port = free_port();
    let rginx_server = start_rginx(&conf(port, &rginx_log), port);
    assert_eq!(run(port), b"\x81\x05hello");
    std::thread::sleep(Duration::from_millis(200));
    drop(rginx_server);
    let got = log_line(&rginx_log);
    assert!(got.starts_with("\"GET /ws HTTP/1.1\" 101 7 "), "{got}");

    let Some(nginx) = nginx() else { return };
    let nginx_log = dir.0.join("nginx.log");
    let nginx_port = free_port();
    let nginx_server = NginxServer::start(&nginx, &conf(nginx_port, &nginx_log), nginx_port);
    assert_eq!(run(nginx_port), b"\x81\x05hello");
    std::thread::sleep(Duration::from_millis(200));
    drop(nginx_server);
    assert_eq!(got, log_line(&nginx_log));
}

#[test]
fn access_log_paths_may_hold_variables() {
    // nginx writes such a log only when the request's root directory
    // exists (rginx has no root), so this one is checked on rginx alone
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let dir = TempDir::new("log-vars");
    // such logs are opened per request, by the account rginx runs as
    // (nobody when started as root, as nginx's workers)
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let port = free_port();
    let _rginx = start_rginx(
        &format!(
            "server {{ listen 127.0.0.1:{port}; access_log {}/by-host-$host.log;
               location / {{ proxy_pass http://{}; }} }}",
            dir.0.display(),
            backend.addr()
        ),
        port,
    );
    for host in ["a.test", "b.test"] {
        exchange(
            port,
            &format!("GET /x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        );
    }
    std::thread::sleep(Duration::from_millis(200));
    for host in ["a.test", "b.test"] {
        let log = std::fs::read_to_string(dir.0.join(format!("by-host-{host}.log")));
        assert!(
            log.is_ok_and(|l| l.contains("\"GET /x HTTP/1.1\" 200")),
            "{host}"
        );
    }
}

#[test]
fn error_logs_below_the_main_level_take_their_requests_lines() {
    let dead = free_port();
    let dir = TempDir::new("errlog-levels");
    let conf = |port: u16, tag: &str| {
        format!(
            "error_log {d}/{tag}-http.log;
             server {{ listen 127.0.0.1:{port}; server_name srv.test;
               error_log {d}/{tag}-server.log warn;
               location /own/ {{ proxy_pass http://127.0.0.1:{dead}; error_log {d}/{tag}-location.log; }}
               location / {{ proxy_pass http://127.0.0.1:{dead}; }} }}",
            d = dir.0.display()
        )
    };
    let requests = [
        "GET /own/a HTTP/1.1\r\nHost: srv.test\r\nConnection: close\r\n\r\n",
        "GET /b HTTP/1.1\r\nHost: srv.test\r\nConnection: close\r\n\r\n",
    ];
    // how many lines each file got
    let counts = |tag: &str| -> Vec<usize> {
        ["http", "server", "location"]
            .iter()
            .map(|level| {
                std::fs::read_to_string(dir.0.join(format!("{tag}-{level}.log"))).map_or(0, |t| {
                    t.lines().filter(|l| l.contains("connect() failed")).count()
                })
            })
            .collect()
    };
    let port = free_port();
    let main_log = dir.0.join("main.log");
    let rginx_server = start_rginx_main(
        &format!("error_log {};", main_log.display()),
        &conf(port, "rginx"),
        port,
    );
    for r in requests {
        exchange(port, r);
    }
    std::thread::sleep(Duration::from_millis(100));
    drop(rginx_server);
    let got = counts("rginx");
    // the location's own list, else the server's (which replaced http's)
    assert_eq!(got, [0, 1, 1]);
    let main = std::fs::read_to_string(&main_log).unwrap_or_default();
    assert!(!main.contains("connect() failed"), "{main}");

    let Some(nginx) = nginx() else { return };
    let nginx_port = free_port();
    let nginx_server = NginxServer::start(&nginx, &conf(nginx_port, "nginx"), nginx_port);
    for r in requests {
        exchange(nginx_port, r);
    }
    std::thread::sleep(Duration::from_millis(100));
    drop(nginx_server);
    assert_eq!(got, counts("nginx"));
}

#[test]
fn the_pid_file_is_written_and_root_gives_way_to_user() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let dir = TempDir::new("pid-user");
    let pid_file = dir.0.join("rginx.pid");
    let root = as_root();
    let user_line = if root { "user www-data;" } else { "" };
    let port = free_port();
    let rginx = start_rginx_main(
        &format!("pid {}; {user_line}", pid_file.display()),
        &format!(
            "server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://{}; }} }}",
            backend.addr()
        ),
        port,
    );
    let pid = rginx.0.id();
    // the sockets listen before the pid file is written (as in nginx): a
    // connection can come first; the pid is the master's
    let mut written = String::new();
    for _ in 0..200 {
        written = std::fs::read_to_string(&pid_file).unwrap_or_default();
        if !written.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(written, format!("{pid}\n"));
    if root {
        // the master keeps root (it reads the configuration again on a
        // reload); its worker runs as `user`
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
        let www = passwd
            .lines()
            .find(|l| l.starts_with("www-data:"))
            .and_then(|l| l.split(':').nth(2))
            .unwrap_or("?");
        let uid_of = |pid: &str| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2))
                .unwrap_or("")
                .to_string()
        };
        assert_eq!(uid_of(&pid.to_string()), "0", "the master gave up root");
        let mut uid = String::new();
        for _ in 0..200 {
            let children =
                std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
            if let Some(worker) = children.split_whitespace().next() {
                uid = uid_of(worker);
                if uid == www {
                    break;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(uid, www, "the worker does not run as www-data");
        // and still serves
        let (status_line, _) = exchange(
            port,
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status_line, "HTTP/1.1 200 OK");
    }
}

#[test]
fn worker_connections_bounds_clients_and_upstreams_together() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = free_port();
    // three slots, all held by idle clients; a request needs one for its
    // client connection and one for its upstream connection
    let _rginx = start_rginx_full(
        "worker_processes 1;",
        "worker_connections 3;",
        &format!(
            "server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://{}; }} }}",
            backend.addr()
        ),
        port,
    );
    // the start-up probe's connection must be gone first
    std::thread::sleep(Duration::from_millis(200));
    let idle1 = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let idle2 = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let idle3 = TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // a fourth finds no slot: closed at once, as nginx does
    let mut fourth = TcpStream::connect(("127.0.0.1", port)).unwrap();
    fourth
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = Vec::new();
    assert!(
        fourth.read_to_end(&mut got).is_ok() && got.is_empty(),
        "{got:?}"
    );
    // one idle client leaves: a request is taken, but its upstream
    // connection finds no slot (nginx: 500)
    drop(idle1);
    std::thread::sleep(Duration::from_millis(200));
    let (status, _) = exchange(
        port,
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert!(status.starts_with("HTTP/1.1 500 "), "{status}");
    // with two idle clients gone there is room for the whole request
    drop(idle2);
    let _ = &idle3;
    std::thread::sleep(Duration::from_millis(200));
    let (status, _) = exchange(
        port,
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
}

#[test]
fn several_workers_share_the_connections() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = free_port();
    let _rginx = start_rginx_main(
        "worker_processes 3;",
        &format!(
            "server {{ listen 127.0.0.1:{port};
               location / {{ proxy_pass http://{b}; proxy_http_version 1.1;
                 proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection upgrade; }} }}",
            b = backend.addr()
        ),
        port,
    );
    // connections go to the workers in turn: every one must be served
    for i in 0..12 {
        let (status, body) = exchange(
            port,
            &format!("GET /n{i} HTTP/1.1\r\nHost: w\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(status, "HTTP/1.1 200 OK", "request {i}");
        assert!(body.contains(&format!("\"uri\":\"/n{i}\"")), "{body}");
    }
    for _ in 0..3 {
        let head = websocket_round_trip(port, "/ws/");
        assert_eq!(head[0], "HTTP/1.1 101 Switching Protocols");
    }
}

/// A backend answering every request with a 16 MiB body.
fn big_body_backend() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                if read_request_head(&mut conn).is_none() {
                    return;
                }
                let size = 16 << 20;
                let _ = conn.write_all(
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n").as_bytes(),
                );
                let chunk = vec![b'x'; 1 << 16];
                for _ in 0..size / chunk.len() {
                    if conn.write_all(&chunk).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn a_client_that_stops_reading_is_dropped_after_send_timeout_like_nginx() {
    let backend = big_body_backend();
    let conf = |port: u16| {
        format!(
            "server {{ listen 127.0.0.1:{port}; send_timeout 1s;
               location / {{ proxy_pass http://{backend}; }} }}"
        )
    };
    // ask for 16 MiB, read nothing for 3 s, then read what is left: the
    // proxy gave up on the client after send_timeout, so the body ends short
    let stalled = |port: u16| {
        let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"GET /big HTTP/1.1\r\nHost: s.test\r\nConnection: close\r\n\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_secs(3));
        let mut got = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        let ended = loop {
            match c.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        (ended, got < 16 << 20)
    };
    let port = free_port();
    let _rginx = start_rginx(&conf(port), port);
    let got = stalled(port);
    assert_eq!(got, (true, true), "(closed, body cut short)");

    let Some(nginx) = nginx() else { return };
    let nginx_port = free_port();
    let _nginx = NginxServer::start(&nginx, &conf(nginx_port), nginx_port);
    assert_eq!(stalled(nginx_port), got);
}

#[test]
fn max_headers_bounds_the_header_lines_as_nginx_does() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let http = |port: u16| {
        format!(
            "max_headers 3;
             server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://{}; }} }}",
            backend.addr()
        )
    };
    let requests = [
        "GET /a HTTP/1.0\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n",
        "GET /a HTTP/1.0\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
        // a line nginx drops for its name does not count
        "GET /a HTTP/1.0\r\nHost: h\r\nA: 1\r\nX@Y: 2\r\nB: 2\r\n\r\n",
    ];
    let port = free_port();
    let _rginx = start_rginx(&http(port), port);
    let got: Vec<String> = requests.iter().map(|r| exchange(port, r).0).collect();
    assert_eq!(
        got,
        [
            "HTTP/1.1 200 OK",
            "HTTP/1.1 400 Bad Request",
            "HTTP/1.1 200 OK"
        ]
    );
    let Some(nginx) = nginx() else { return };
    let nginx_port = free_port();
    let _nginx = NginxServer::start(&nginx, &http(nginx_port), nginx_port);
    let want: Vec<String> = requests.iter().map(|r| exchange(nginx_port, r).0).collect();
    assert_eq!(got, want);
}

#[test]
fn refused_heads_are_logged_as_nginx_logs_them() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let dir = TempDir::new("refused-log");
    let conf = |port: u16, log: &std::path::Path| {
        format!(
            "error_log {} info;
             server {{ listen 127.0.0.1:{port}; server_name first.test;
                       location / {{ proxy_pass http://{}; }} }}",
            log.display(),
            backend.addr()
        )
    };
    let long_line = format!(
        "GET /a HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "u".repeat(9000));
    let requests: Vec<String> = vec![
        "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".into(),
        "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n".into(),
        "POST /a HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".into(),
        "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n".into(),
        "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n".into(),
        "GET /a HTTP/2.0\r\nHost: h\r\n\r\n".into(),
        "GET /a HTTP/1.1\r\nHost: h\r\nA : 1\r\n\r\n".into(),
        long_line,
        long_uri,
        "GET /p1 HTTP/1.1\r\nHost: h\r\n\r\nGET /p2 HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n".into(),
        // lines dropped under ignore_invalid_headers, before and after Host
        "GET /a HTTP/1.1\r\nHost: h\r\nX@At: 1\r\nConnection: close\r\n\r\n".into(),
        "GET /a HTTP/1.1\r\nX.Y:  2 \r\nX_U: 3\r\nHost: h\r\nConnection: close\r\n\r\n".into(),
    ];
    // what is compared: the message and its context, without the date,
    // the process and the connection number
    let lines = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains(" client sent "))
            .filter_map(|l| l.split_once(": *"))
            .map(|(_, rest)| rest.split_once(' ').map_or("", |(_, r)| r).to_string())
            .collect()
    };
    let send_all = |port: u16| {
        for r in &requests {
            if let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = c.write_all(r.as_bytes());
                let mut sink = Vec::new();
                let _ = c.read_to_end(&mut sink);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = dir.0.join("rginx.log");
    let port = free_port();
    let rginx = start_rginx(&conf(port, &log), port);
    send_all(port);
    drop(rginx);
    let got = lines(&std::fs::read_to_string(&log).unwrap_or_default());
    assert_eq!(got.len(), requests.len() + 1, "{got:#?}");
    let Some(nginx) = nginx() else { return };
    let nginx_log = dir.0.join("nginx.log");
    let nginx_port = free_port();
    let _nginx = NginxServer::start(&nginx, &conf(nginx_port, &nginx_log), nginx_port);
    send_all(nginx_port);
    let want = lines(&std::fs::read_to_string(&nginx_log).unwrap_or_default());
    let shown = |v: &[String]| {
        v.iter()
            .map(|l| {
                if l.len() > 300 {
                    format!("{}...({} bytes)", &l[..300], l.len())
                } else {
                    l.clone()
                }
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        got.len(),
        want.len(),
        "{:#?}\n{:#?}",
        shown(&got),
        shown(&want)
    );
    for (g, w) in got.iter().zip(&want) {
        assert!(
            g == w,
            "rginx: {}\nnginx: {}",
            shown(std::slice::from_ref(g))[0],
            shown(std::slice::from_ref(w))[0]
        );
    }
}

#[test]
fn expect_100_continue_is_answered_as_nginx_answers_it() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let http = |port: u16| {
        format!(
            "server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://{}; }} }}",
            backend.addr()
        )
    };
    // what the client reads before it sends its body: the interim
    // response, also for an empty body (nginx sends it whenever it reads a
    // body), and nothing for HTTP/1.0
    let interim = |port: u16, head: &str| -> String {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        c.write_all(head.as_bytes()).unwrap();
        let mut got = [0u8; 64];
        let n = c.read(&mut got).unwrap_or(0);
        String::from_utf8_lossy(&got[..n]).into_owned()
    };
    let heads = [
        "POST /a HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
        "POST /a HTTP/1.0\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
    ];
    let port = free_port();
    let _rginx = start_rginx(&http(port), port);
    let got: Vec<String> = heads
        .iter()
        .map(|h| interim(port, h).lines().next().unwrap_or("").to_string())
        .collect();
    assert_eq!(got[0], "HTTP/1.1 100 Continue");
    assert_eq!(got[1], "HTTP/1.1 100 Continue");
    let Some(nginx) = nginx() else { return };
    let nginx_port = free_port();
    let _nginx = NginxServer::start(&nginx, &http(nginx_port), nginx_port);
    let want: Vec<String> = heads
        .iter()
        .map(|h| {
            interim(nginx_port, h)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(got, want);
}
