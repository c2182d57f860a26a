//! A backend's redirects through nginx and rginx: nginx's implicit
//! `proxy_redirect default` rewrites a `Location` (and the URL of a
//! `Refresh`) that starts with the `proxy_pass` URL, and its header filter
//! makes the rewritten one absolute and moves it to its own place; the
//! others pass where the backend put them. The backend's status line
//! passes as it came. Explicit `proxy_redirect` rules (prefixes with
//! variables, `~`/`~*` regexes with groups, `default`, `off`, rules
//! inherited from the server or from an enclosing location) are then
//! tried on Locations the client names. The client's head (but Date and
//! Server, ports masked) must be nginx's for every case.

mod common;

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
    let text = answer_text(port, request);
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
    let pair = ServerPair::start(&nginx, |port| http_body(port, backend));
    let (nginx_port, rginx_port) = pair.ports();
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
    assert_no_differences(&differences, asked);
}

/// The backend for the explicit rules: it answers with the `Location`
/// and `Refresh` the client asked for in `X-Location` and `X-Refresh`
/// (both proxies pass those headers on as they came).
fn echo_location(request: &Message) -> Option<String> {
    let mut out = String::from("HTTP/1.1 302 Found\r\nX-Before: 1\r\n");
    if let Some(l) = request.header("x-location") {
        out.push_str(&format!("Location: {l}\r\n"));
    }
    if let Some(r) = request.header("x-refresh") {
        out.push_str(&format!("Refresh: {r}\r\n"));
    }
    out.push_str("Content-Length: 2\r\nConnection: close\r\n\r\nok");
    Some(out)
}

fn rules_body(port: u16, backend: std::net::SocketAddr) -> String {
    format!(
        r#"server {{
    listen 127.0.0.1:{port};
    proxy_redirect http://srv.example/ /from-server/;
    location /inherit/ {{ proxy_pass http://{backend}/; }}
    location /own/ {{
        proxy_pass http://{backend}/deep/;
        proxy_redirect ~*^http://(?<h>[a-z.]+):(\d+)/(.*)$ https://$h/$3?p=$2;
        proxy_redirect default;
        proxy_redirect http://$host/ /same-host/;
        proxy_redirect http://$proxy_host/ $scheme://$http_host/;
    }}
    location /off/ {{ proxy_pass http://{backend}; proxy_redirect off; }}
    location ~ ^/re/([a-z]+)/ {{
        proxy_pass http://{backend};
        proxy_redirect ~^http://x/(.*) /$1/$1;
        proxy_redirect http://y/ /$1/;
    }}
}}
server {{
    listen 127.0.0.1:{port};
    server_name nested.example;
    location /outer/ {{
        proxy_pass http://{backend}/o/;
        location /outer/inner/ {{ proxy_pass http://{backend}/i/; }}
        location /outer/own/ {{ proxy_pass http://{backend}/w/; proxy_redirect default; }}
    }}
    location /plain/ {{ proxy_pass http://{backend}; proxy_redirect http://a.example/ http://b.example/; }}
}}"#
    )
}

#[test]
fn explicit_rules_rewrite_as_nginx_does() {
    let Some(nginx) = nginx() else { return };
    let backend = scripted_backend(echo_location);
    let (nginx_port, rginx_port) = (free_port(), free_port());
    let _theirs = NginxServer::start(&nginx, &rules_body(nginx_port, backend), nginx_port);
    let _ours = start_rginx(&rules_body(rginx_port, backend), rginx_port);
    let values = [
        "http://srv.example/a".to_string(),
        format!("http://{backend}/deep/z"),
        format!("http://{backend}/z"),
        format!("http://{backend}/o/z"),
        format!("http://{backend}/w/z"),
        format!("http://{backend}/i/z"),
        "HTTP://back.example:81/p/q".into(),
        "http://site.example/k".into(),
        "http://x/abc".into(),
        "http://y/abc".into(),
        "http://a.example/q?x=1".into(),
        "/relative".into(),
        "".into(),
    ];
    let targets = [
        ("site.example", "/inherit/a"),
        ("site.example", "/own/a"),
        ("site.example", "/off/a"),
        ("site.example", "/re/abc/x"),
        ("nested.example", "/outer/a"),
        ("nested.example", "/outer/inner/a"),
        ("nested.example", "/outer/own/a"),
        ("nested.example", "/plain/a"),
    ];
    let mut differences = Vec::new();
    let mut asked = 0;
    let mut changed = 0;
    for (host, target) in targets {
        for value in &values {
            for header in ["X-Location", "X-Refresh"] {
                let value = if header == "X-Refresh" {
                    format!("3; url={value}")
                } else {
                    value.clone()
                };
                let request = format!(
                    "GET {target} HTTP/1.1\r\nHost: {host}\r\n{header}: {value}\r\nConnection: close\r\n\r\n"
                );
                let (a, b) = (ask(nginx_port, &request), ask(rginx_port, &request));
                asked += 1;
                // the rules change a good share of them (ports masked)
                if !value.is_empty() && !a.contains(&mask_ports(&value)) {
                    changed += 1;
                }
                if a != b {
                    differences.push(format!(
                        "{host}{target} {header}: {value}:\n  nginx: {a}\n  rginx: {b}"
                    ));
                }
            }
        }
    }
    assert!(changed >= 25, "only {changed} of {asked} were rewritten");
    assert_no_differences(&differences, asked);
}
