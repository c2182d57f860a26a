//! `error_page`, `internal` and named locations through nginx and rginx:
//! rginx's own error answers (a `return`, no location, a dead backend) and,
//! with `proxy_intercept_errors`, a backend's, sent to a URI (an internal
//! redirect through the location search, a GET), a named location, or a
//! URL; the answer's status as nginx settles it (the error's, `=code`,
//! `=`, or a page of the target's own); one `error_page` per request. The
//! whole answer (but Date and Server, ports masked, page lengths and
//! signatures masked), the backend's view of the request included, must
//! be nginx's for every case; so must `$upstream_addr` and
//! `$upstream_status` after tries and redirects.

mod common;

use common::wire::{scripted_backend, Message};
use common::*;

/// The backend answers with the status asked for in `X-Status` (200 by
/// default) and, as its body, the request it got (first line, then the
/// header names in order).
fn answer(request: &Message) -> Option<String> {
    let status = request
        .header("x-status")
        .filter(|s| !s.is_empty())
        .unwrap_or("200");
    let mut body = request.head[0].clone();
    for line in &request.head[1..] {
        body.push_str(" | ");
        body.push_str(line.split(':').next().unwrap_or(""));
    }
    let challenge = if status == "401" {
        "WWW-Authenticate: Basic realm=\"x\"\r\n"
    } else {
        ""
    };
    Some(format!(
        "HTTP/1.1 {status} From Backend\r\nContent-Type: text/plain\r\nX-Backend: yes\r\n{challenge}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ))
}

fn http_body(port: u16, backend: std::net::SocketAddr) -> String {
    format!(
        r#"upstream first_dead {{
    server 127.0.0.1:1 max_fails=0;
    server {backend} backup;
}}
upstream one_up {{
    server {backend};
    server 127.0.0.1:2 down;
}}
server {{
    listen 127.0.0.1:{port};
    error_page 404 /not-found;
    location /not-found {{ internal; return 200 "custom 404 for $uri ($request_uri, $args)\n"; }}
    location /keep/ {{ return 404; }}
    location /own/ {{ error_page 404 =200 /found; return 404; }}
    location /found {{ return 200 "found $uri $args\n"; }}
    location /eq/ {{ error_page 404 = /created; return 404; }}
    location /created {{ return 201 "created\n"; }}
    location /url/ {{ error_page 403 http://example.org/denied; return 403; }}
    location /url301/ {{ error_page 403 =301 https://example.org/moved; return 403; }}
    location /named/ {{ error_page 404 = @fallback; return 404; }}
    location /named-keep/ {{ error_page 404 @fallback; return 404; }}
    location @fallback {{ proxy_pass http://{backend}; }}
    location /proxied/ {{
        proxy_pass http://{backend};
        proxy_intercept_errors on;
        error_page 404 500 401 /oops?from=backend;
    }}
    location /notintercepted/ {{ proxy_pass http://{backend}; error_page 404 /oops; }}
    location /oops {{ return 200 "oops $args (after $upstream_status)\n"; }}
    location /dead/ {{ proxy_pass http://127.0.0.1:1; error_page 502 /gateway; }}
    location /gateway {{ return 503; }}
    location /twice/ {{ error_page 404 /missing-too; return 404; }}
    location /int {{ internal; return 200 "secret\n"; }}
    location /var/ {{ error_page 404 /found?was=$uri; return 404; }}
    location /to-proxy/ {{ error_page 404 /backend/path%20x?a=1; return 404; }}
    location /backend/ {{
        proxy_pass http://{backend};
        add_header X-Upstream "$upstream_addr|$upstream_status";
    }}
    location /tried/ {{
        proxy_pass http://first_dead;
        add_header X-Upstream "$upstream_addr|$upstream_status";
    }}
    location /one-up/ {{ proxy_pass http://one_up; proxy_next_upstream http_404; }}
    location /timed/ {{
        proxy_pass http://first_dead;
        add_header X-Times "$upstream_connect_time|$upstream_header_time|$upstream_response_time";
    }}
    location /dead-timed/ {{ proxy_pass http://127.0.0.1:1; error_page 502 /times; }}
    location /times {{
        return 200 "$upstream_connect_time|$upstream_header_time|$upstream_response_time\n";
    }}
    location /dead-was/ {{ proxy_pass http://127.0.0.1:1; error_page 502 /was; }}
    location /was {{ return 200 "was $upstream_addr $upstream_status\n"; }}
    location /moved/ {{ error_page 301 /found; return 301 /elsewhere; }}
    location /again/ {{
        proxy_pass http://{backend};
        proxy_intercept_errors on;
        error_page 404 /backend/again;
        error_page 500 @fallback;
    }}
}}"#
    )
}

#[test]
fn error_pages_answer_as_nginx_s() {
    let Some(nginx) = nginx() else { return };
    let backend = scripted_backend(answer);
    let pair = ServerPair::start(&nginx, |port| http_body(port, backend));
    let (nginx_port, rginx_port) = pair.ports();
    let mut cases: Vec<(&str, &str)> = vec![
        ("/keep/a?x=1", ""),
        ("/own/a", ""),
        ("/eq/a", ""),
        ("/url/a", ""),
        ("/url301/a", ""),
        ("/named/a?q=2", ""),
        ("/named-keep/a", ""),
        ("/notintercepted/a", "X-Status: 404\r\n"),
        ("/dead/a", ""),
        ("/twice/a", ""),
        ("/int", ""),
        ("/not-found", ""),
        ("/nowhere", ""),
        ("/nowhere/", ""),
        ("/var/a", ""),
        ("/to-proxy/a", ""),
        ("/moved/a", ""),
        // $upstream_addr and $upstream_status in a header and in an
        // error page: every server tried, every use of an upstream
        ("/tried/a", ""),
        ("/dead-was/a", ""),
        ("/again/a", "X-Status: 404\r\n"),
        // a down server is not one more try (`ngx_http_upstream_tries`):
        // the only live one's 404 goes through
        ("/one-up/a", "X-Status: 404\r\n"),
    ];
    for status in ["200", "404", "500", "401", "302", "503"] {
        cases.push(("/proxied/a", status));
    }
    let mut differences = Vec::new();
    let mut asked = 0;
    for (target, extra) in cases {
        let extra = if extra.len() == 3 {
            format!("X-Status: {extra}\r\n")
        } else {
            extra.to_string()
        };
        for method in ["GET", "HEAD", "DELETE"] {
            let request = format!(
                "{method} {target} HTTP/1.1\r\nHost: e.test\r\n{extra}Connection: close\r\n\r\n"
            );
            asked += 1;
            differences.extend(answers_differ(
                (nginx_port, rginx_port),
                &request,
                format_args!("{method} {target} {}", extra.trim()),
            ));
        }
    }
    // a body read for an intercepted backend goes again where the
    // error_page sends the request; one never read does not
    for (target, status) in [
        ("/again/a", "404"),
        ("/again/a", "500"),
        ("/again/a", "200"),
        ("/keep/a", ""),
        ("/named/a", ""),
    ] {
        let body = "the body";
        let request = format!(
            "POST {target} HTTP/1.1\r\nHost: e.test\r\nX-Status: {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        asked += 1;
        differences.extend(answers_differ(
            (nginx_port, rginx_port),
            &request,
            format_args!("POST {target} {status}"),
        ));
    }
    assert_no_differences(&differences, asked);
}

/// The `$upstream_*_time` variables take nginx's shape (a time or `-` per
/// try, in each phase); the digits, which are the clock's, are masked.
#[test]
fn upstream_times_have_nginx_s_shape() {
    let Some(nginx) = nginx() else { return };
    let backend = scripted_backend(answer);
    let pair = ServerPair::start(&nginx, |port| http_body(port, backend));
    let (nginx_port, rginx_port) = pair.ports();
    let times = |port: u16, target: &str| {
        let answer = answer_text(
            port,
            &format!("GET {target} HTTP/1.1\r\nHost: e.test\r\nConnection: close\r\n\r\n"),
        );
        let times = match answer.split_once("\r\n\r\n") {
            Some((head, body)) => head
                .lines()
                .find_map(|l| l.strip_prefix("X-Times: "))
                .unwrap_or(body.trim_end())
                .to_string(),
            None => answer,
        };
        times.replace(|c: char| c.is_ascii_digit(), "9")
    };
    for target in ["/timed/a", "/dead-timed/a"] {
        assert_eq!(
            times(rginx_port, target),
            times(nginx_port, target),
            "{target}"
        );
    }
    // a connect failure has a response time only; the backup answered,
    // and while its head goes out its response is not done yet
    assert_eq!(times(rginx_port, "/timed/a"), "-, 9.999|-, 9.999|9.999, -");
}
