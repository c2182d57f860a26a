//! Upstream servers on unix sockets through nginx and rginx: `server
//! unix:PATH` in an upstream and `proxy_pass http://unix:PATH:/URI`, what
//! the backend receives (`Host: localhost` for the latter), `$upstream_addr`
//! in the access log, and nginx's error lines for a socket that is missing
//! or that nobody listens on; and `access_log off` beside a file at one
//! level, which logs nothing, as in nginx.

mod common;

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::wire::read_message;
use common::*;

/// A backend on a unix socket that records each request head and answers
/// `200 ok`.
fn unix_backend(path: &Path) -> Arc<Mutex<Vec<String>>> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).expect("bind unix socket");
    // the workers run as nobody
    world_writable(path);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut leftover = Vec::new();
            if let Some(m) = read_message(&mut conn, &mut leftover, false, false) {
                if let Ok(mut seen) = record.lock() {
                    seen.push(m.head.join(" | "));
                }
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            }
        }
    });
    seen
}

fn world_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777));
}

fn http_body(port: u16, dir: &Path, socket: &Path) -> String {
    let (dir, socket) = (dir.display(), socket.display());
    format!(
        "log_format up '$request $status $upstream_addr';
error_log {dir}/error.log;
upstream app {{ server unix:{socket}; }}
upstream gone {{ server unix:{dir}/missing.sock; }}
upstream deaf {{ server unix:{dir}/deaf.sock; }}
server {{
    listen 127.0.0.1:{port};
    access_log {dir}/access.log up;
    location /group/ {{ proxy_pass http://app; }}
    # `off` at a level wins over the level's files (nginx's llcf->off)
    location /quiet/ {{
        access_log off;
        access_log {dir}/access.log up;
        proxy_pass http://app;
    }}
    location /uri/ {{ proxy_pass http://unix:{socket}:/inner/; }}
    location /bare/ {{ proxy_pass http://unix:{socket}; }}
    location /gone/ {{ proxy_pass http://gone; }}
    location /deaf/ {{ proxy_pass http://deaf; }}
}}"
    )
}

#[test]
fn unix_socket_upstreams_behave_as_nginx_s() {
    let Some(nginx) = nginx() else { return };
    let socket_dir = TempDir::new("unix-sock");
    let socket = socket_dir.0.join("app.sock");
    let seen = unix_backend(&socket);
    let mut views = Vec::new();
    for side in ["nginx", "rginx"] {
        let dir = TempDir::new(&format!("unix-{side}"));
        // a socket file nobody listens on
        drop(UnixListener::bind(dir.0.join("deaf.sock")).expect("bind"));
        world_writable(&dir.0.join("deaf.sock"));
        let port = free_port();
        let body = http_body(port, &dir.0, &socket);
        let server: Box<dyn std::any::Any> = if side == "nginx" {
            Box::new(NginxServer::start(&nginx, &body, port))
        } else {
            Box::new(start_rginx(&body, port))
        };
        let mut view = Vec::new();
        for path in [
            "/group/a?x=1",
            "/quiet/q",
            "/uri/b",
            "/bare/c",
            "/gone/d",
            "/deaf/e",
        ] {
            let (status, _) = exchange(
                port,
                &format!("GET {path} HTTP/1.1\r\nHost: unix.test\r\nConnection: close\r\n\r\n"),
            );
            let got = std::mem::take(&mut *seen.lock().unwrap());
            view.push(format!("{path}: {status} backend: {got:?}"));
        }
        drop(server);
        view.extend(log_lines(&dir.0, "access.log"));
        view.extend(
            log_lines(&dir.0, "error.log")
                .into_iter()
                .filter(|l| l.contains("connect()")),
        );
        views.push(view);
    }
    assert!(
        views[0].iter().any(|l| l.contains("Host: localhost")),
        "{:#?}",
        views[0]
    );
    assert_eq!(views[1], views[0]);
}
