//! A backend's `X-Accel-Redirect` through nginx and rginx: the request
//! goes to the URI (decoded, its arguments split off, a GET unless HEAD)
//! or the named location the header names, and the answer it gets there
//! (`return` text, nginx's own pages, a redirect, another backend)
//! carries the first backend's `Content-Type`, `Set-Cookie` (after
//! `proxy_cookie_domain`), `Content-Disposition`, `Cache-Control`,
//! `Expires` and `Accept-Ranges`; an unsafe URI is a 404 and a chain of
//! redirects a 500 after ten, each with nginx's error line; the body read
//! for the first backend goes again to the second; `proxy_ignore_headers`
//! and an intercepted error leave the header alone. An `X-Accel-Charset`
//! gets nginx's error line (neither knows a charset without `charset`). The whole answer (but
//! Date and Server, ports and signatures masked), the error lines and what
//! the second backend got must be nginx's.

mod common;

use common::wire::{scripted_backend, Message};
use common::*;

/// The backend: with `X-Redirect` (on a path outside `/back/`, or
/// anywhere with `X-Loop`) it answers with `X-Accel-Redirect` naming its
/// value and the headers nginx carries; otherwise with its own, and as its
/// body the request it got (first line, header names, body).
fn answer(request: &Message) -> Option<String> {
    let path = request.head[0].split(' ').nth(1).unwrap_or("");
    let status = request.header("x-status").unwrap_or("200");
    let redirect = request
        .header("x-redirect")
        .filter(|_| !path.starts_with("/back/") || request.header("x-loop").is_some());
    let mut body = request.head[0].clone();
    for line in &request.head[1..] {
        body.push_str(" | ");
        body.push_str(line.split(':').next().unwrap_or(""));
    }
    body.push_str(" || ");
    body.push_str(&String::from_utf8_lossy(&request.body));
    let lines = match redirect {
        Some(target) => format!(
            "X-Accel-Redirect: {target}\r\nSet-Cookie: a=1; Domain=backend.test\r\n\
             Content-Disposition: attachment\r\nCache-Control: private\r\n\
             Expires: Thu, 01 Jan 1970 00:00:01 GMT\r\nAccept-Ranges: bytes\r\n\
             X-Other: no\r\nContent-Type: application/x-first\r\n"
        ),
        None => "Content-Type: text/second\r\nSet-Cookie: b=2\r\nCache-Control: public\r\n".into(),
    };
    let lines = match request.header("x-charset") {
        Some(charset) => format!("{lines}X-Accel-Charset: {charset}\r\n"),
        None => lines,
    };
    Some(format!(
        "HTTP/1.1 {status} From Backend\r\n{lines}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ))
}

fn http_body(port: u16, backend: std::net::SocketAddr, dir: &std::path::Path) -> String {
    format!(
        r#"error_log {dir}/error.log;
client_body_temp_path {dir}/client_body;
proxy_temp_path {dir}/proxy;
server {{
    listen 127.0.0.1:{port};
    error_page 418 /teapot;
    location /p/ {{ proxy_pass http://{backend}; proxy_cookie_domain backend.test front.test; }}
    location /text {{ return 200 "text $uri $args $request_method\n"; }}
    location /plain {{ default_type text/plain; return 200 "plain\n"; }}
    location /gone {{ return 404; }}
    location /empty {{ return 204; }}
    location /moved {{ return 301 /else; }}
    location /tea {{ return 418; }}
    location /teapot {{ return 200 "teapot $uri\n"; }}
    location /int {{ internal; return 200 "internal $uri\n"; }}
    location /back/ {{ proxy_pass http://{backend}; }}
    location @named {{ return 200 "named $uri $args $request_method\n"; }}
    location @proxied {{ proxy_pass http://{backend}; }}
    location /ign/ {{ proxy_pass http://{backend}; proxy_ignore_headers x-accel-redirect Expires; }}
    location /icpt/ {{
        proxy_pass http://{backend};
        proxy_intercept_errors on;
        error_page 404 /text;
    }}
    location /charset/ {{ proxy_pass http://{backend}; proxy_ignore_headers X-Accel-Charset; }}
    location /added/ {{ proxy_pass http://{backend}; add_header X-Added yes; }}
}}"#,
        dir = dir.display()
    )
}

/// The error lines about redirects.
fn redirect_lines(dir: &std::path::Path) -> Vec<String> {
    log_lines(dir, "error.log")
        .into_iter()
        .filter(|l| {
            l.contains("unsafe URI") || l.contains("redirection cycle") || l.contains("charset")
        })
        .collect()
}

#[test]
fn accel_redirects_answer_as_nginx_s() {
    let Some(nginx) = nginx() else { return };
    let backend = scripted_backend(answer);
    let (nginx_port, rginx_port) = (free_port(), free_port());
    let (nginx_dir, rginx_dir) = (TempDir::new("accel-nginx"), TempDir::new("accel-rginx"));
    let _theirs = NginxServer::start(
        &nginx,
        &http_body(nginx_port, backend, &nginx_dir.0),
        nginx_port,
    );
    let _ours = start_rginx(&http_body(rginx_port, backend, &rginx_dir.0), rginx_port);
    let redirects = [
        "/text?x=1",
        "/plain",
        "/gone",
        "/empty",
        "/moved",
        "/tea",
        "/int",
        "@named",
        "@proxied",
        "@nowhere",
        "/back/z?q=1",
        "/nowhere",
        "/te%78t",
        "/a/../text",
        "/a/../text?y",
        "..?x",
        "/text%00",
        "/%2e%2e/text",
        "?x",
        "",
    ];
    let mut cases: Vec<(String, String, &str)> = Vec::new();
    for target in redirects {
        for path in ["/p/q?orig=1", "/ign/q", "/added/q"] {
            cases.push((path.into(), format!("X-Redirect: {target}\r\n"), ""));
        }
    }
    // a chain: the second backend asks again, ten times
    cases.push((
        "/p/q".into(),
        "X-Redirect: /back/z\r\nX-Loop: 1\r\n".into(),
        "",
    ));
    // an error the location intercepts goes to its error_page
    for status in ["404", "500", "200"] {
        cases.push((
            "/icpt/q".into(),
            format!("X-Redirect: /plain\r\nX-Status: {status}\r\n"),
            "",
        ));
    }
    // `X-Accel-Charset` names a charset neither knows (the line), unless
    // ignored
    for (path, charset) in [
        ("/back/c", "koi8-r"),
        ("/back/c", ""),
        ("/charset/c", "utf-8"),
    ] {
        cases.push((path.into(), format!("X-Charset: {charset}\r\n"), ""));
    }
    // the body read for the first backend goes to the second
    for target in ["/back/z", "@proxied", "/text"] {
        cases.push((
            "/p/q".into(),
            format!("X-Redirect: {target}\r\n"),
            "posted body",
        ));
    }
    let mut differences = Vec::new();
    let mut asked = 0;
    for (path, extra, body) in &cases {
        let methods: &[&str] = if body.is_empty() {
            &["GET", "HEAD", "DELETE"]
        } else {
            &["POST", "PUT"]
        };
        for method in methods {
            let length = if body.is_empty() {
                String::new()
            } else {
                format!("Content-Length: {}\r\n", body.len())
            };
            let request = format!(
                "{method} {path} HTTP/1.1\r\nHost: e.test\r\n{extra}{length}Connection: close\r\n\r\n{body}"
            );
            asked += 1;
            differences.extend(answers_differ(
                (nginx_port, rginx_port),
                &request,
                format_args!("{method} {path} {}", extra.trim()),
            ));
        }
    }
    let (theirs, ours) = (redirect_lines(&nginx_dir.0), redirect_lines(&rginx_dir.0));
    assert!(
        theirs.iter().any(|l| l.contains("unknown charset"))
            && theirs.iter().any(|l| l.contains("unsafe URI"))
            && theirs.iter().any(|l| l.contains("redirection cycle")),
        "nginx wrote the lines compared: {theirs:#?}"
    );
    if theirs != ours {
        differences.push(format!(
            "error lines:\n  nginx: {theirs:#?}\n  rginx: {ours:#?}"
        ));
    }
    assert_no_differences(&differences, asked);
}
