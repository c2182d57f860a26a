//! `$request_body` and `$request_body_file` through nginx and rginx: in
//! `add_header`, in `proxy_set_header` and `proxy_set_body` (evaluated
//! once the body is read, also when it streams), through a `map`, in a
//! `return` an `error_page` leads to, and in the access log; for bodies
//! in memory, in a temp file, streamed, chunked and absent. The whole
//! answer and the log lines (temp file names under each server's
//! directory as `DIR`) must be nginx's.

mod common;

use std::path::Path;

use common::*;

fn http_body(port: u16, dir: &Path) -> String {
    let dir = dir.display();
    let vars = r#"add_header X-Body "$request_body"; add_header X-File "$request_body_file"; proxy_set_header X-Body-Up "$request_body";"#;
    format!(
        r#"client_body_temp_path {dir}/body;
client_body_buffer_size 1k;
log_format bodies '$uri [$request_body] [$request_body_file]';
map $request_body $mapped {{ "" none; default "m:$request_body"; }}
server {{
    listen 127.0.0.1:{port};
    access_log {dir}/bodies.log bodies;
    location /on/ {{ {vars} proxy_pass http://127.0.0.1:{port}/end/; }}
    location /off/ {{ {vars} proxy_request_buffering off; proxy_pass http://127.0.0.1:{port}/end/; }}
    location /off11/ {{
        {vars}
        proxy_request_buffering off;
        proxy_http_version 1.1;
        proxy_pass http://127.0.0.1:{port}/end/;
    }}
    location /set/ {{ proxy_set_body "[$request_body]"; proxy_pass http://127.0.0.1:{port}/got/; }}
    location /withheld/ {{
        add_header X-Body "$request_body";
        proxy_pass_request_body off;
        proxy_pass http://127.0.0.1:{port}/end/;
    }}
    location /mapped/ {{ proxy_set_header X-Body-Up $mapped; proxy_pass http://127.0.0.1:{port}/end/; }}
    location /page/ {{
        proxy_pass http://127.0.0.1:{port}/missing;
        proxy_intercept_errors on;
        error_page 404 /shown;
    }}
    location = /shown {{ add_header X-Body "$request_body"; return 200 "[$request_body]\n"; }}
    location /ret {{ add_header X-Body "$request_body"; return 200 "[$request_body]\n"; }}
    location /got/ {{ add_header X-Got "$request_body"; proxy_pass http://127.0.0.1:{port}/end/; }}
    location /end/ {{ return 200 "up [$http_x_body_up]\n"; }}
    location = /missing {{ return 404; }}
}}"#
    )
}

/// A request with `body` (`None`: none), sized or chunked (in pieces of
/// 700 bytes), sent in one write with the head.
fn request(path: &str, body: Option<&str>, chunked: bool) -> String {
    let mut out = format!("POST {path} HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n");
    match body {
        None => out.push_str("\r\n"),
        Some(body) if chunked => {
            out.push_str("Transfer-Encoding: chunked\r\n\r\n");
            for piece in body.as_bytes().chunks(700) {
                out.push_str(&format!("{:x}\r\n", piece.len()));
                out.push_str(std::str::from_utf8(piece).expect("ascii"));
                out.push_str("\r\n");
            }
            out.push_str("0\r\n\r\n");
        }
        Some(body) => {
            out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        }
    }
    out
}

#[test]
fn body_variables_are_nginx_s_wherever_they_are_used() {
    let Some(nginx) = nginx() else { return };
    let pair = DirPair::start(&nginx, "bodyvars", http_body);
    let long: String = (0..5000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let medium = &long[..1500];
    let mut asked = 0;
    let mut differences = Vec::new();
    for path in [
        "/on/x",
        "/off/x",
        "/off11/x",
        "/set/x",
        "/withheld/x",
        "/mapped/x",
        "/page/x",
        "/ret",
    ] {
        for (label, body, chunked) in [
            ("none", None, false),
            ("short", Some("0123456789"), false),
            ("medium", Some(medium), false),
            ("long", Some(long.as_str()), false),
            ("chunked", Some("hello"), true),
            ("long chunked", Some(long.as_str()), true),
        ] {
            asked += 1;
            let answers: Vec<String> = pair
                .sides()
                .iter()
                .map(|(_, port, dir)| {
                    masked_answer(*port, &request(path, body, chunked))
                        .replace(&dir.display().to_string(), "DIR")
                })
                .collect();
            if answers[0] != answers[1] {
                differences.push(format!(
                    "{path} {label}:\n  nginx: {}\n  rginx: {}",
                    answers[0], answers[1]
                ));
            }
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    // a proxied hop and the hop it proxies to log in either order
    let [theirs, ours] = pair.sides().map(|(_, _, dir)| {
        let mut lines = log_lines(dir, "bodies.log");
        lines.sort();
        lines
    });
    if theirs != ours {
        differences.push(format!(
            "access log:\n  nginx: {theirs:#?}\n  rginx: {ours:#?}"
        ));
    }
    assert_no_differences(&differences, asked);
}
