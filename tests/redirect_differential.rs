//! A backend's redirects through nginx and rginx: nginx's implicit
//! `proxy_redirect default` rewrites a `Location` (and the URL of a
//! `Refresh`) that starts with the `proxy_pass` URL, and its header filter
//! makes the rewritten one absolute and moves it to its own place; the
//! others pass where the backend put them. The backend's status line
//! passes as it came. The client's head (but Date and Server, ports
//! masked) must be nginx's for every case.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::wire::{scripted_backend, Message};
use common::*;

/// The backend: the path (after any location prefix) names the redirect;
/// absolute URLs are built from the `Host` it was sent (the proxy_pass
/// host, as both proxies send it).
fn answer(request: &Message) -> Option<String> {
    let target = request.head[0].split(' ').nth(1)?.to_string();
    let host = request.header("host").unwrap_or("").to_string();
    let kind = target.rsplit('/').next().unwrap_or("");
    let (status, locations, refresh): (&str, Vec<String>, Option<String>) = match kind {
        "relative" => ("302 Found", vec!["/elsewhere".into()], None),
        "absolute" => ("302 Found", vec![format!("http://{host}/x/y?q=1")], None),
        "other-host" => (
            "301 Moved Permanently",
            vec!["http://other.example/z".into()],
            None,
        ),
        "upper" => ("302 Found", vec![format!("HTTP://{host}/x")], None),
        "bare" => ("302 Found", vec![format!("http://{host}")], None),
        "pair" => (
            "303 See Other",
            vec![
                format!("http://{host}/first"),
                format!("http://{host}/second"),
            ],
            None,
        ),
        "refresh" => (
            "200 OK",
            vec![],
            Some(format!("5; URL=http://{host}/after")),
        ),
        "refresh-other" => ("200 OK", vec![], Some("0;url=http://other.example/".into())),
        "reason" => ("302 Whatever You Like", vec!["/r".into()], None),
        _ => ("200 OK", vec![], None),
    };
    let mut out = format!("HTTP/1.1 {status}\r\nX-Before: 1\r\n");
    for l in locations {
        out.push_str(&format!("Location: {l}\r\n"));
    }
    if let Some(r) = refresh {
        out.push_str(&format!("Refresh: {r}\r\n"));
    }
    out.push_str("X-After: 2\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    Some(out)
}

fn http_body(port: u16, backend: std::net::SocketAddr) -> String {
    format!(
        "upstream app {{ server {backend}; }}
map $uri $target {{ default app; }}
server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://{backend}; }}
    location /one/ {{ proxy_pass http://{backend}/; }}
    location /two/ {{ proxy_pass http://{backend}/deep/; }}
    location /named/ {{ proxy_pass http://app; }}
    location /named-uri/ {{ proxy_pass http://app/; }}
    location = /exact {{ proxy_pass http://{backend}/absolute; }}
    location /var/ {{ proxy_pass http://$target; }}
}}"
    )
}

/// The client's head: every line but Date and Server, ports masked.
fn ask(port: u16, request: &str) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let kept: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.starts_with("Date:") && !l.starts_with("Server:"))
        .collect();
    mask_ports(&kept.join(" | "))
}

#[test]
fn backend_redirects_are_rewritten_as_nginx_does() {
    let Some(nginx) = nginx() else { return };
    let backend = scripted_backend(answer);
    let (nginx_port, rginx_port) = (free_port(), free_port());
    let _theirs = NginxServer::start(&nginx, &http_body(nginx_port, backend), nginx_port);
    let _ours = start_rginx(&http_body(rginx_port, backend), rginx_port);
    let kinds = [
        "relative",
        "absolute",
        "other-host",
        "upper",
        "bare",
        "pair",
        "refresh",
        "refresh-other",
        "reason",
    ];
    let mut cases = Vec::new();
    for prefix in ["/", "/one/", "/two/", "/named/", "/named-uri/", "/var/"] {
        for kind in kinds {
            cases.push(format!("{prefix}{kind}"));
        }
    }
    cases.push("/exact".into());
    let mut differences = Vec::new();
    let mut asked = 0;
    for target in &cases {
        for host in ["Host: site.example\r\n", "Host: Site.Example:8080\r\n", ""] {
            let version = if host.is_empty() { "1.0" } else { "1.1" };
            let request = format!("GET {target} HTTP/{version}\r\n{host}Connection: close\r\n\r\n");
            let (a, b) = (ask(nginx_port, &request), ask(rginx_port, &request));
            asked += 1;
            if a != b {
                differences.push(format!(
                    "{target} ({}):\n  nginx: {a}\n  rginx: {b}",
                    host.trim()
                ));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {asked} differ:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
