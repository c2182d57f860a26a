//! `proxy_request_buffering`, `client_body_buffer_size`,
//! `client_body_temp_path` and `client_body_in_file_only` through nginx
//! and rginx: when the backend is contacted, what it receives, the temp
//! files left and the error log lines about them, and a buffered body
//! sent again to the next server.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use common::wire::{read_message, scripted_backend, RecordingBackend};
use common::*;

/// A server on `port` proxying to `backend`, with its error log (at `info`) and temp files under `dir`.
fn http_body(port: u16, backend: &str, dir: &Path) -> String {
    let dir = dir.display();
    format!(
        "error_log {dir}/error.log info;
client_body_temp_path {dir}/body 1 2;
client_body_buffer_size 1k;
upstream pair {{ server {backend}; }}
server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://pair; }}
    location /keep/ {{ proxy_pass http://pair; client_body_in_file_only on; }}
    location /clean/ {{ proxy_pass http://pair; client_body_in_file_only clean; }}
    location /stream/ {{ proxy_pass http://pair; proxy_request_buffering off; }}
    location /stream11/ {{
        proxy_pass http://pair;
        proxy_request_buffering off;
        proxy_http_version 1.1;
    }}
}}"
    )
}

/// nginx and rginx proxying to `backend`.
fn pair(nginx: &Path, backend: &str) -> DirPair {
    DirPair::start(nginx, "rb", |port, dir| http_body(port, backend, dir))
}

/// Files under `dir/body`, as paths below it, with their sizes.
fn temp_files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, at: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(at) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let size = std::fs::metadata(&path).map_or(0, |m| m.len());
                let name = path.strip_prefix(base).unwrap_or(&path).display();
                out.push(format!("{name} ({size} bytes)"));
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join("body"), &dir.join("body"), &mut out);
    out.sort();
    out
}

/// A request with a body of `size` bytes, sized or chunked (in pieces of
/// 700 bytes).
fn request(path: &str, size: usize, chunked: bool) -> Vec<u8> {
    let body: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    let mut out =
        format!("PUT {path} HTTP/1.1\r\nHost: rb.test\r\nConnection: close\r\n").into_bytes();
    if chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        for piece in body.chunks(700) {
            out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            out.extend_from_slice(piece);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
    } else {
        out.extend_from_slice(format!("Content-Length: {size}\r\n\r\n").as_bytes());
        out.extend_from_slice(&body);
    }
    out
}

/// Sends `request` (in two writes, the head alone first, so that the
/// body is not read with it) and returns the answer's status line.
fn ask(port: u16, request: &[u8]) -> String {
    ask_in(port, request, true)
}

/// Sends `request` in one write, or in two (`split`: the head first).
fn ask_in(port: u16, request: &[u8], split: bool) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let head_end = request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(request.len(), |i| if split { i + 4 } else { request.len() });
    c.write_all(&request[..head_end]).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let _ = c.write_all(&request[head_end..]);
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    String::from_utf8_lossy(&out)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn bodies_reach_the_backend_as_through_nginx_with_the_same_temp_files_and_lines() {
    let Some(nginx) = nginx() else { return };
    let backend = RecordingBackend::start();
    let pair = pair(&nginx, &backend.addr().to_string());
    // sizes around the 1k buffer: nginx gives a sized body whose rest is
    // under 1.25 buffers one buffer of its own length
    let cases: Vec<(String, Vec<u8>, bool)> = [
        ("/", 0, false),
        ("/", 100, false),
        ("/", 1024, false),
        ("/", 1279, false),
        ("/", 1280, false),
        ("/", 5000, false),
        ("/", 100, true),
        ("/", 5000, true),
        ("/keep/", 0, false),
        ("/keep/", 300, false),
        ("/keep/", 3000, true),
        ("/clean/", 300, false),
        ("/clean/", 3000, false),
        ("/stream/", 3000, false),
        // chunked: read whole for an HTTP/1.0 upstream, streamed chunked
        // to an HTTP/1.1 one
        ("/stream/", 3000, true),
        ("/stream11/", 0, true),
        ("/stream11/", 100, true),
        ("/stream11/", 3000, true),
    ]
    .iter()
    .flat_map(|(path, size, chunked)| {
        let name = format!(
            "{path} {size} {}",
            if *chunked { "chunked" } else { "sized" }
        );
        let bytes = request(path, *size, *chunked);
        // also with the body's start read with the head
        [
            (name.clone(), bytes.clone(), true),
            (format!("{name}, one write"), bytes, false),
        ]
    })
    .collect();
    let mut differences = Vec::new();
    for (name, bytes, split) in &cases {
        let mut seen = Vec::new();
        for (_, port, _) in pair.sides() {
            backend.take();
            let status = ask_in(port, bytes, *split);
            let received: Vec<String> = backend
                .take()
                .iter()
                .map(|m| {
                    format!(
                        "{}\n{}",
                        m.head.join("\n"),
                        String::from_utf8_lossy(&m.body)
                    )
                })
                .collect();
            seen.push(format!("{status}\n{}", received.join("\n---\n")));
        }
        if seen[0] != seen[1] {
            differences.push(format!("{name}:\n nginx: {}\n rginx: {}", seen[0], seen[1]));
        }
    }
    let [(_, _, nginx_dir), (_, _, rginx_dir)] = pair.sides();
    let (theirs, ours) = (
        temp_file_log_lines(nginx_dir),
        temp_file_log_lines(rginx_dir),
    );
    if theirs != ours {
        differences.push(format!(
            "error log lines:\n nginx: {theirs:#?}\n rginx: {ours:#?}"
        ));
    }
    let (theirs, ours) = (temp_files(nginx_dir), temp_files(rginx_dir));
    if theirs != ours {
        differences.push(format!("temp files:\n nginx: {theirs:?}\n rginx: {ours:?}"));
    }
    assert!(
        !theirs.is_empty(),
        "client_body_in_file_only on keeps files"
    );
    assert_no_differences(&differences, cases.len());
}

/// Whether `listener` has a connection waiting, within `wait`.
fn connected_within(listener: &TcpListener, wait: Duration) -> Option<TcpStream> {
    listener.set_nonblocking(true).unwrap();
    let until = std::time::Instant::now() + wait;
    while std::time::Instant::now() < until {
        if let Ok((c, _)) = listener.accept() {
            c.set_nonblocking(false).unwrap();
            return Some(c);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

#[test]
fn a_buffered_body_is_read_whole_before_the_backend_is_contacted() {
    let Some(nginx) = nginx() else { return };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let pair = pair(&nginx, &listener.local_addr().unwrap().to_string());
    for (path, connects_early) in [("/", false), ("/stream/", true)] {
        for (side, port, _) in pair.sides() {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            c.write_all(
                format!("PUT {path} HTTP/1.1\r\nHost: rb.test\r\nContent-Length: 10\r\n\r\n12345")
                    .as_bytes(),
            )
            .unwrap();
            let early = connected_within(&listener, Duration::from_millis(400));
            assert_eq!(
                early.is_some(),
                connects_early,
                "{side} {path}: backend contacted before the body's end"
            );
            c.write_all(b"67890").unwrap();
            let mut upstream = early
                .or_else(|| connected_within(&listener, Duration::from_secs(3)))
                .unwrap_or_else(|| panic!("{side} {path}: backend never contacted"));
            upstream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut leftover = Vec::new();
            let got = read_message(&mut upstream, &mut leftover, false, false).expect("request");
            assert_eq!(got.body, b"1234567890", "{side} {path}");
            upstream
                .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut answer = String::new();
            let _ = c.read_to_string(&mut answer);
            assert!(
                answer.starts_with("HTTP/1.1 204"),
                "{side} {path}: {answer}"
            );
        }
    }
}

#[test]
fn a_buffered_put_goes_to_the_next_server_when_the_first_fails() {
    let Some(nginx) = nginx() else { return };
    // the first server reads the request and closes without answering
    let failing = scripted_backend(|_| None);
    let backend = RecordingBackend::start();
    let servers = format!("{failing}; server {}", backend.addr());
    let pair = pair(&nginx, &servers);
    let mut seen = Vec::new();
    for (side, port, _) in pair.sides() {
        // 5000 bytes: the body is in a temp file
        let status = ask(port, &request("/", 5000, false));
        let received = backend.take();
        seen.push((
            status,
            received.len(),
            received.first().map(|m| m.body.len()),
        ));
        assert_eq!(seen.last().unwrap().0, "HTTP/1.1 200 OK", "{side}");
    }
    assert_eq!(seen[0], seen[1]);
}

#[test]
fn a_temp_file_that_cannot_be_made_is_a_500_with_nginx_s_line() {
    let Some(nginx) = nginx() else { return };
    let backend = RecordingBackend::start();
    let pair = pair(&nginx, &backend.addr().to_string());
    let mut seen = Vec::new();
    for (_, port, dir) in pair.sides() {
        // the directory made at start is now a plain file
        std::fs::remove_dir_all(dir.join("body")).unwrap();
        std::fs::write(dir.join("body"), "").unwrap();
        let status = ask(port, &request("/", 5000, false));
        seen.push((status, backend.take().len(), temp_file_log_lines(dir)));
    }
    assert_eq!(seen[0].0, "HTTP/1.1 500 Internal Server Error");
    assert!(
        seen[0].2.iter().any(|l| l.starts_with("[crit] open() ")),
        "{:?}",
        seen[0].2
    );
    assert_eq!(seen[0], seen[1]);
}

#[test]
fn bodies_withheld_or_set_reach_the_backend_as_through_nginx() {
    let Some(nginx) = nginx() else { return };
    let backend = RecordingBackend::start();
    let config = |port: u16| {
        format!(
            "server {{
    listen 127.0.0.1:{port};
    # nginx sends the Content-Length of a body it does not send: the
    # backend waits for it, and the proxy's read timeout (before the
    # backend's and the client's 5 s) settles the answer
    location /off/ {{
        proxy_pass http://{b};
        proxy_pass_request_body off;
        proxy_read_timeout 1s;
    }}
    location /off-nolength/ {{
        proxy_pass http://{b};
        proxy_pass_request_body off;
        proxy_set_header Content-Length \"\";
    }}
    location /set/ {{ proxy_pass http://{b}; proxy_set_body \"a=$arg_a&m=$request_method\"; }}
    location /set-empty/ {{ proxy_pass http://{b}; proxy_set_body \"\"; }}
}}",
            b = backend.addr()
        )
    };
    let (nginx_port, rginx_port) = (free_port(), free_port());
    let _theirs = NginxServer::start(&nginx, &config(nginx_port), nginx_port);
    let _ours = start_rginx(&config(rginx_port), rginx_port);
    let mut differences = Vec::new();
    let mut asked = 0;
    for path in ["/off/", "/off-nolength/", "/set/?a=1", "/set-empty/"] {
        let get = format!("GET {path} HTTP/1.1\r\nHost: rb.test\r\nConnection: close\r\n\r\n");
        for bytes in [
            get.into_bytes(),
            request(path, 300, false),
            request(path, 3000, true),
        ] {
            asked += 1;
            let mut seen = Vec::new();
            for port in [nginx_port, rginx_port] {
                backend.take();
                let status = ask(port, &bytes);
                let received: Vec<String> = backend
                    .take()
                    .iter()
                    .map(|m| {
                        let head = mask_ports(&m.head.join("\n"));
                        format!("{head}\n{}", String::from_utf8_lossy(&m.body))
                    })
                    .collect();
                seen.push(format!("{status}\n{}", received.join("\n---\n")));
            }
            if seen[0] != seen[1] {
                differences.push(format!(
                    "{path} {}:\n nginx: {}\n rginx: {}",
                    bytes.len(),
                    seen[0],
                    seen[1]
                ));
            }
        }
    }
    assert_no_differences(&differences, asked);
}
