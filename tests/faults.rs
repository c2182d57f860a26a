//! Faults on either side, run through nginx and rginx on the same
//! configuration: a backend that refuses, hangs before or after its head,
//! sends garbage, resets mid-response or closes mid-tunnel, and a client
//! that leaves mid-body, while the backend thinks, or mid-tunnel. For each,
//! the access log's status, what the client got, and whether each socket
//! was closed afterwards must be the same.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use rginx_proxy::echo::{client_frame, client_handshake, read_frame};

/// What a scripted backend does once it read a request head.
#[derive(Clone, Copy)]
enum Backend {
    /// Nothing: it waits (for the proxy to give up or close).
    Hang,
    /// A head promising 100 bytes, 10 of them, then a close.
    ShortBody,
    /// A head promising 100 bytes, 10 of them, then nothing.
    HangAfterHead,
    /// Bytes that are not HTTP.
    Garbage,
    /// A WebSocket handshake, one echo, then a close.
    TunnelThenClose,
    /// A WebSocket handshake, then echoes until the proxy closes.
    Tunnel,
}

/// Starts a backend; each connection reports on the channel whether the
/// proxy closed it within 5 s of the script's end.
fn backend(script: Backend) -> (SocketAddr, mpsc::Receiver<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut conn = conn;
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                if read_request_head(&mut conn).is_none() {
                    return;
                }
                let ok = |c: &mut TcpStream, b: &[u8]| c.write_all(b).is_ok();
                match script {
                    Backend::Hang => {}
                    Backend::ShortBody => {
                        ok(
                            &mut conn,
                            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
                        );
                        let _ = conn.shutdown(std::net::Shutdown::Both);
                        let _ = tx.send(true);
                        return;
                    }
                    Backend::HangAfterHead => {
                        ok(
                            &mut conn,
                            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
                        );
                    }
                    Backend::Garbage => {
                        ok(&mut conn, b"\x00\x01garbage that is not HTTP\r\n\r\n");
                    }
                    Backend::TunnelThenClose | Backend::Tunnel => {
                        ok(
                            &mut conn,
                            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
                        );
                        let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
                        if let Ok((_, _, payload)) = read_frame(&mut reader) {
                            let mut frame = vec![0x81, payload.len() as u8];
                            frame.extend_from_slice(&payload);
                            ok(&mut conn, &frame);
                        }
                        if matches!(script, Backend::TunnelThenClose) {
                            let _ = conn.shutdown(std::net::Shutdown::Both);
                            let _ = tx.send(true);
                            return;
                        }
                    }
                }
                // did the proxy close this connection?
                let mut rest = [0u8; 1024];
                let closed = loop {
                    match conn.read(&mut rest) {
                        Ok(0) => break true,
                        Ok(_) => continue,
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                        Err(_) => break false,
                    }
                };
                let _ = tx.send(closed);
            });
        }
    });
    (addr, rx)
}

/// What the client does.
#[derive(Clone, Copy)]
enum Client {
    /// Sends a GET and reads until the connection ends.
    Get,
    /// Sends a GET and leaves after 300 ms without an answer.
    LeaveWhileWaiting,
    /// Promises a 100-byte body, sends 10 bytes and leaves.
    LeaveMidBody,
    /// Promises a 100-byte body, sends 10 bytes and waits.
    StallMidBody,
    /// Opens a WebSocket, sends one message, reads until the end.
    Tunnel,
    /// Opens a WebSocket, sends one message, gets its echo and leaves.
    LeaveMidTunnel,
}

/// What the client saw: the status line (or nothing) and whether the
/// connection ended within 5 s.
fn client(port: u16, path: &str, how: Client) -> (String, bool) {
    let read_all = |c: &mut TcpStream| -> (Vec<u8>, bool) {
        let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match c.read(&mut buf) {
                Ok(0) => return (got, true),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (got, true),
                Err(_) => return (got, false),
            }
        }
    };
    let status = |got: &[u8]| {
        String::from_utf8_lossy(got)
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    };
    match how {
        Client::Get | Client::LeaveWhileWaiting | Client::LeaveMidBody | Client::StallMidBody => {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let request = match how {
                Client::LeaveMidBody | Client::StallMidBody => format!(
                    "POST {path} HTTP/1.1\r\nHost: f\r\nContent-Length: 100\r\n\r\n0123456789"
                ),
                _ => format!("GET {path} HTTP/1.1\r\nHost: f\r\nConnection: close\r\n\r\n"),
            };
            c.write_all(request.as_bytes()).unwrap();
            if matches!(how, Client::Get | Client::StallMidBody) {
                let (got, ended) = read_all(&mut c);
                return (status(&got), ended);
            }
            std::thread::sleep(Duration::from_millis(300));
            drop(c);
            (String::new(), true)
        }
        Client::Tunnel | Client::LeaveMidTunnel => {
            let (mut c, mut r, head) = client_handshake(("127.0.0.1", port), path).unwrap();
            c.write_all(&client_frame(0x1, true, b"hello")).unwrap();
            let echoed = read_frame(&mut r).map(|f| f.2).unwrap_or_default();
            assert_eq!(echoed, b"hello", "{path}");
            if matches!(how, Client::LeaveMidTunnel) {
                drop((c, r));
                return (head[0].clone(), true);
            }
            let (_, ended) = read_all(&mut c);
            (head[0].clone(), ended)
        }
    }
}

/// The statuses in an access log written with `$status` only.
fn statuses(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

struct Case {
    name: &'static str,
    backend: Option<Backend>,
    client: Client,
}

const CASES: &[Case] = &[
    Case {
        name: "refused",
        backend: None,
        client: Client::Get,
    },
    Case {
        name: "hang-before-head",
        backend: Some(Backend::Hang),
        client: Client::Get,
    },
    Case {
        name: "reset-mid-body",
        backend: Some(Backend::ShortBody),
        client: Client::Get,
    },
    Case {
        name: "hang-after-head",
        backend: Some(Backend::HangAfterHead),
        client: Client::Get,
    },
    Case {
        name: "garbage",
        backend: Some(Backend::Garbage),
        client: Client::Get,
    },
    Case {
        name: "closes-mid-tunnel",
        backend: Some(Backend::TunnelThenClose),
        client: Client::Tunnel,
    },
    Case {
        name: "client-leaves-waiting",
        backend: Some(Backend::Hang),
        client: Client::LeaveWhileWaiting,
    },
    Case {
        name: "client-leaves-mid-body",
        backend: Some(Backend::Hang),
        client: Client::LeaveMidBody,
    },
    Case {
        name: "client-stalls-mid-body",
        backend: Some(Backend::Hang),
        client: Client::StallMidBody,
    },
    Case {
        name: "client-leaves-mid-tunnel",
        backend: Some(Backend::Tunnel),
        client: Client::LeaveMidTunnel,
    },
];

/// Where rginx ends a fault otherwise than nginx, why (docs/security.md),
/// and how rginx ends it (the compared summary, without the case's name).
/// The test fails when one of them starts to match nginx or when rginx's
/// own summary changes.
const DIFFERENCES: &[Listed] = &[
    (
        "garbage",
        "a backend answer that is not HTTP is a 502; nginx takes it for an HTTP/0.9 answer and passes the bytes on, logged as status 009",
        r#"client "HTTP/1.1 502 Bad Gateway" ended=true | backend closed | logged ["502"]"#,
    ),
];

/// Runs every case through one proxy: (case, client's view, backend
/// connection closed, access log status).
fn run_all(start: &dyn Fn(&str, u16) -> Box<dyn std::any::Any>, dir: &Path) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    let mut out = Vec::new();
    for case in CASES {
        let (addr, closed) = match case.backend {
            Some(script) => {
                let (addr, rx) = backend(script);
                (addr, Some(rx))
            }
            None => (SocketAddr::from(([127, 0, 0, 1], free_port())), None),
        };
        let log = dir.join(format!("{}.log", case.name));
        let port = free_port();
        let config = format!(
            "log_format status '$status';
             map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
             server {{
                listen 127.0.0.1:{port};
                access_log {log} status;
                proxy_read_timeout 1s;
                client_body_timeout 1s;
                location / {{
                    proxy_pass http://{addr};
                    proxy_http_version 1.1;
                    proxy_set_header Upgrade $http_upgrade;
                    proxy_set_header Connection $connection_upgrade;
                }}
            }}",
            log = log.display()
        );
        let proxy = start(&config, port);
        let seen = client(port, "/f", case.client);
        // the backend's side: closed by the proxy, or still open
        let backend_closed = closed.map(|rx| {
            rx.recv_timeout(Duration::from_secs(6))
                .map_or("backend open".to_string(), |c| {
                    if c { "backend closed" } else { "backend open" }.to_string()
                })
        });
        // the access log line is written when the request ends
        let mut logged = Vec::new();
        for _ in 0..100 {
            logged = statuses(&log);
            if !logged.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(proxy);
        out.push(format!(
            "{}: client {:?} ended={} | {} | logged {:?}",
            case.name,
            seen.0.replace("HTTP/1.0", "HTTP/1.1"),
            seen.1,
            backend_closed.unwrap_or_else(|| "no backend".to_string()),
            logged
        ));
    }
    out
}

#[test]
fn faults_end_as_nginx_ends_them() {
    let dir = TempDir::new("faults");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o777));
    }
    let ours = run_all(
        &|config, port| Box::new(start_rginx(config, port)) as Box<dyn std::any::Any>,
        &dir.0.join("rginx"),
    );
    let Some(nginx) = nginx() else {
        return;
    };
    let nginx_dir = dir.0.join("nginx");
    let theirs = run_all(
        &|config, port| {
            Box::new(NginxServer::start(&nginx, config, port)) as Box<dyn std::any::Any>
        },
        &nginx_dir,
    );
    let mut failures = Vec::new();
    for ((case, a), b) in CASES.iter().zip(&ours).zip(&theirs) {
        let answer = a.strip_prefix(&format!("{}: ", case.name)).unwrap_or(a);
        let judged = against_listed(
            case.name,
            a == b,
            answer,
            DIFFERENCES,
            "DIFFERENCES",
            || format!("nginx: {b}\nrginx: {a}"),
        );
        if let Err(e) = judged {
            failures.push(e);
        }
    }
    eprintln!(
        "faults: {} cases, {} as nginx, {} listed differences",
        CASES.len(),
        CASES.len() - DIFFERENCES.len(),
        DIFFERENCES.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
