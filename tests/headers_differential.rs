//! nginx's headers filter through nginx and rginx: `add_header` (the
//! statuses it applies to, `always`, a level's list replacing the
//! inherited one, empty values, variables and regex groups, `ETag` and
//! `Last-Modified` replacing the response's own, `Cache-Control` added
//! beside it) and `expires` (times, `modified`, `epoch`, `max`, `off`,
//! negative, values from a map), on proxied answers of several statuses
//! and on nginx's own pages. The client's head (but Date and Server, ports
//! masked, `Expires` written as its distance from `Date`) must be nginx's
//! for every case.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime};

use common::wire::{scripted_backend, Message};
use common::*;

/// The backend answers with the status the client asked for in
/// `X-Status`; with `X-Bare` it sends no caching headers, else it sends
/// two `Cache-Control` lines, an `Expires`, an `ETag` and a
/// `Last-Modified`.
fn answer(request: &Message) -> Option<String> {
    let status = request.header("x-status").unwrap_or("200");
    let reason = match status {
        "200" => "OK",
        "201" => "Created",
        "204" => "No Content",
        "302" => "Found",
        "304" => "Not Modified",
        "404" => "Not Found",
        _ => "Whatever",
    };
    let mut out =
        format!("HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nX-Backend: 1\r\n");
    if request.header("x-bare").is_none() {
        out.push_str(
            "Cache-Control: private\r\nExpires: Thu, 01 Dec 1994 16:00:00 GMT\r\nETag: \"theirs\"\r\nCache-Control: no-transform\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n",
        );
    }
    if status == "302" {
        out.push_str("Location: http://elsewhere.example/\r\n");
    }
    let body = if status == "204" || status == "304" {
        ""
    } else {
        "ok"
    };
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    Some(out)
}

fn http_body(port: u16, backend: std::net::SocketAddr) -> String {
    format!(
        r#"map $uri $expiry {{
    default off;
    ~^/var/max max;
    ~^/var/neg -1h;
    ~^/var/junk junk;
    ~^/var/epoch epoch;
    ~^/var/hour 1h;
}}
server {{
    listen 127.0.0.1:{port};
    add_header X-Server server-level;
    add_header X-Always "always on" always;
    location /inherit/ {{ proxy_pass http://{backend}; }}
    location /own/ {{
        proxy_pass http://{backend};
        add_header X-Host $host;
        add_header X-Empty "";
        add_header Cache-Control public;
        add_header X-Uri $uri always;
        add_header x-lower "as written";
    }}
    location /etag/ {{
        proxy_pass http://{backend};
        add_header ETag '"mine"';
        add_header Last-Modified "";
        add_header ETag '"second"';
    }}
    location /exp/ {{ proxy_pass http://{backend}; expires 1h; }}
    location /expmod/ {{ proxy_pass http://{backend}; expires modified 1d; }}
    location /expneg/ {{ proxy_pass http://{backend}; expires -10m; }}
    location /epoch/ {{ expires epoch; proxy_pass http://{backend}; }}
    location /max/ {{ expires max; proxy_pass http://{backend}; add_header X-Max yes; }}
    location /zero/ {{ expires 0; proxy_pass http://{backend}; }}
    location /var/ {{ expires $expiry; proxy_pass http://{backend}; }}
    location ~ ^/cap/(?<word>[a-z]+) {{
        proxy_pass http://{backend};
        add_header X-Word $word;
        add_header X-One $1;
    }}
    location /nothing/ {{ add_header X-Gone gone; }}
    location /always404/ {{ add_header X-A a always; expires 1h; }}
    location /sent/ {{ proxy_pass http://{backend}; add_header X-Type "[$sent_http_content_type]"; }}
    location /slash/ {{ proxy_pass http://{backend}; add_header X-Slash yes; expires max; }}
}}"#
    )
}

/// The client's head: every line but Date and Server, ports masked, an
/// `Expires` within a day of `Date` written as the distance from it, the
/// length of an error page masked.
fn ask(port: u16, request: &str) -> String {
    let text = answer_text(port, request);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let date = head
        .split("\r\n")
        .find_map(|l| l.strip_prefix("Date: "))
        .and_then(|d| httpdate::parse_http_date(d).ok());
    let kept: Vec<String> = head
        .split("\r\n")
        .filter(|l| !l.starts_with("Date:") && !l.starts_with("Server:"))
        .map(|l| match (l.strip_prefix("Expires: "), date) {
            (Some(v), Some(date)) => match httpdate::parse_http_date(v) {
                Ok(at) => relative(at, date).unwrap_or_else(|| l.to_string()),
                Err(_) => l.to_string(),
            },
            _ => l.to_string(),
        })
        .collect();
    // nginx's pages are signed `nginx/1.22.1`, rginx's `rginx/VERSION`
    let kept = kept.join(" | ");
    let kept = match kept.find("Content-Type: text/html | Content-Length: ") {
        Some(at) => {
            let from = at + "Content-Type: text/html | Content-Length: ".len();
            let to = kept[from..].find(' ').map_or(kept.len(), |i| from + i);
            format!("{}PAGE{}", &kept[..from], &kept[to..])
        }
        None => kept,
    };
    mask_ports(&kept)
}

/// `Expires: Date+3600` for a time within a day of the response's date.
fn relative(at: SystemTime, date: SystemTime) -> Option<String> {
    let day = Duration::from_secs(86_400);
    match at.duration_since(date) {
        Ok(d) if d <= day => Some(format!("Expires: Date+{}", d.as_secs())),
        Err(e) if e.duration() <= day => Some(format!("Expires: Date-{}", e.duration().as_secs())),
        _ => None,
    }
}

#[test]
fn add_header_and_expires_are_applied_as_nginx_does() {
    let Some(nginx) = nginx() else { return };
    let backend = scripted_backend(answer);
    let (nginx_port, rginx_port) = (free_port(), free_port());
    let _theirs = NginxServer::start(&nginx, &http_body(nginx_port, backend), nginx_port);
    let _ours = start_rginx(&http_body(rginx_port, backend), rginx_port);
    let targets = [
        "/inherit/a",
        "/own/a",
        "/etag/a",
        "/exp/a",
        "/expmod/a",
        "/expneg/a",
        "/epoch/a",
        "/max/a",
        "/zero/a",
        "/var/max",
        "/var/neg",
        "/var/junk",
        "/var/epoch",
        "/var/hour",
        "/var/other",
        "/cap/abc",
        "/nothing/a",
        "/always404/a",
        "/sent/a",
        "/slash",
        "/elsewhere",
    ];
    let mut differences = Vec::new();
    let mut asked = 0;
    for target in targets {
        for status in ["200", "201", "204", "302", "304", "404", "500"] {
            for bare in ["", "X-Bare: 1\r\n"] {
                let request = format!(
                    "GET {target} HTTP/1.1\r\nHost: site.example\r\nX-Status: {status}\r\n{bare}Connection: close\r\n\r\n"
                );
                let (a, b) = (ask(nginx_port, &request), ask(rginx_port, &request));
                asked += 1;
                if a != b {
                    differences.push(format!(
                        "{target} {status} {}:\n  nginx: {a}\n  rginx: {b}",
                        bare.trim()
                    ));
                }
            }
        }
    }
    assert_no_differences(&differences, asked);
}

/// A backend that sends the headers nginx hides by default beside
/// ordinary ones, one of each, with a relative `Location`.
fn chatty(request: &Message) -> Option<String> {
    let charset = if request.header("x-charset").is_some() {
        "X-Accel-Charset: koi8-r\r\n"
    } else {
        ""
    };
    Some(format!(
        "HTTP/1.1 200 OK\r\nServer: backend/1.0\r\nDate: Thu, 01 Jan 2015 00:00:00 GMT\r\nContent-Type: text/plain\r\nX-Powered-By: PHP/8\r\nX-Pad: avoid browser bug\r\nX-Accel-Buffering: no\r\n{charset}Set-Cookie: a=1\r\nX-Accel-Expires: 10\r\nLocation: /next\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    ))
}

fn hiding_body(port: u16, backend: std::net::SocketAddr) -> String {
    format!(
        r#"proxy_hide_header X-Powered-By;
server {{
    listen 127.0.0.1:{port};
    location /inherit/ {{ proxy_pass http://{backend}; }}
    location /pass/ {{ proxy_pass http://{backend}; proxy_pass_header X-Accel-Buffering; proxy_pass_header X-Pad; }}
    location /own/ {{ proxy_pass http://{backend}; proxy_hide_header Set-Cookie; proxy_hide_header location; }}
    location /type/ {{ proxy_pass http://{backend}; proxy_hide_header Content-Type; }}
    location /length/ {{ proxy_pass http://{backend}; proxy_hide_header Content-Length; }}
    location /server/ {{ proxy_pass http://{backend}; proxy_pass_header Server; proxy_pass_header Date; }}
    location /default/ {{ proxy_pass http://{backend}; proxy_pass_header X-Nothing; }}
}}"#
    )
}

#[test]
fn hidden_and_passed_headers_are_nginx_s() {
    let Some(nginx) = nginx() else { return };
    let backend = scripted_backend(chatty);
    let pair = ServerPair::start(&nginx, |port| hiding_body(port, backend));
    let (nginx_port, rginx_port) = pair.ports();
    // the whole head, Server and Date included (the backend's may pass)
    let head = |port: u16, request: &str| {
        let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(request.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let lines: Vec<&str> = text
            .split("\r\n")
            .map(|l| {
                if l.starts_with("Server: nginx") || l.starts_with("Server: rginx") {
                    "Server: OWN"
                } else if l.starts_with("Date: ") && !l.contains("2015") {
                    "Date: NOW"
                } else {
                    l
                }
            })
            .collect();
        mask_ports(&lines.join(" | "))
    };
    let mut differences = Vec::new();
    for target in [
        "/inherit/a",
        "/pass/a",
        "/own/a",
        "/type/a",
        "/length/a",
        "/server/a",
        "/default/a",
    ] {
        for extra in ["", "X-Charset: 1\r\n"] {
            let request = format!(
                "GET {target} HTTP/1.1\r\nHost: site.example\r\n{extra}Connection: close\r\n\r\n"
            );
            let (a, b) = (head(nginx_port, &request), head(rginx_port, &request));
            if a != b {
                differences.push(format!("{target} {extra}:\n  nginx: {a}\n  rginx: {b}"));
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// A backend that sets cookies in the forms browsers meet.
fn cookies(_: &Message) -> Option<String> {
    Some(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\
         Set-Cookie: a=1; Domain=backend.local; Path=/app/x\r\n\
         Set-Cookie: b=2;domain=.BACKEND.local ;  path = /app ; HttpOnly\r\n\
         Set-Cookie: c=3; Path=/other\r\n\
         Set-Cookie: d=4\r\n\
         Set-Cookie: =5; path=/app\r\n\
         Set-Cookie: noequals; path=/app\r\n\
         Set-Cookie: e=6; Domain=sub.backend.local; Secure; Path=/APP/y\r\n\
         Set-Cookie: sess=7; Path=/app; SameSite=lax; secure\r\n\
         Set-Cookie: Theme=8; samesite=Strict; HTTPONLY\r\n\
         Content-Length: 2\r\nConnection: close\r\n\r\nok"
            .to_string(),
    )
}

fn cookie_body(port: u16, backend: std::net::SocketAddr) -> String {
    format!(
        r#"proxy_cookie_path /app /inherited;
server {{
    listen 127.0.0.1:{port};
    location /inherit/ {{ proxy_pass http://{backend}; }}
    location /dom/ {{ proxy_pass http://{backend}; proxy_cookie_domain backend.local example.org; }}
    location /domre/ {{ proxy_pass http://{backend}; proxy_cookie_domain ~\.?([a-z]+)\.backend\.local$ $1.example.org; }}
    location /path/ {{ proxy_pass http://{backend}; proxy_cookie_path /app/ /; }}
    location /pathre/ {{ proxy_pass http://{backend}; proxy_cookie_path ~*^/APP(.*)$ /new$1; }}
    location /both/ {{
        proxy_pass http://{backend};
        proxy_cookie_domain backend.local $host;
        proxy_cookie_path /app /$host/app;
    }}
    location /off/ {{ proxy_pass http://{backend}; proxy_cookie_path off; }}
    location /flags/ {{
        proxy_pass http://{backend};
        proxy_cookie_flags sess secure httponly samesite=strict;
        proxy_cookie_flags ~^th nosecure nohttponly nosamesite;
        proxy_cookie_flags a samesite=none;
        proxy_cookie_flags ~. $arg_f;
    }}
    location /flags-path/ {{
        proxy_pass http://{backend};
        proxy_cookie_path /app /p;
        proxy_cookie_flags ~ secure unknown;
    }}
    location /flags-off/ {{ proxy_pass http://{backend}; proxy_cookie_flags off; }}
}}"#
    )
}

#[test]
fn cookies_are_rewritten_as_nginx_does() {
    let Some(nginx) = nginx() else { return };
    let backend = scripted_backend(cookies);
    let (nginx_port, rginx_port) = (free_port(), free_port());
    let _theirs = NginxServer::start(&nginx, &cookie_body(nginx_port, backend), nginx_port);
    let _ours = start_rginx(&cookie_body(rginx_port, backend), rginx_port);
    let mut differences = Vec::new();
    for target in [
        "/inherit/a",
        "/dom/a",
        "/domre/a",
        "/path/a",
        "/pathre/a",
        "/both/a",
        "/off/a",
        "/flags/a",
        "/flags/a?f=httponly",
        "/flags/a?f=samesite=lax",
        "/flags-path/a",
        "/flags-off/a",
    ] {
        let request =
            format!("GET {target} HTTP/1.1\r\nHost: site.example\r\nConnection: close\r\n\r\n");
        let (a, b) = (ask(nginx_port, &request), ask(rginx_port, &request));
        if a != b {
            differences.push(format!("{target}:\n  nginx: {a}\n  rginx: {b}"));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
