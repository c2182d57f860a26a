//! `server_tokens` through nginx and rginx: the `Server` header and the
//! error pages' signature carry the version with `on` (the default) and
//! `build`, and not with `off`, per location, and for a head refused
//! before its server is known, the default server's setting.

mod common;

use common::*;

fn http_body(port: u16) -> String {
    format!(
        "server {{
    listen 127.0.0.1:{port};
    server_tokens off;
    location / {{ return 404; }}
    location /on/ {{ server_tokens on; return 404; }}
    location /build/ {{ server_tokens build; return 302 /elsewhere; }}
    location /text/ {{ return 200 text; }}
}}"
    )
}

/// The `Server` line and the signature line of an answer, nginx's names
/// written as rginx's.
fn signs(port: u16, request: &str) -> String {
    let text = answer_text(port, request)
        .replace(NGINX_TOKEN, RGINX_TOKEN)
        .replace(": nginx\r\n", ": rginx\r\n")
        .replace("<center>nginx</center>", "<center>rginx</center>");
    text.split("\r\n")
        .filter(|l| l.starts_with("Server:") || l.starts_with("<hr>"))
        .collect::<Vec<_>>()
        .join(" | ")
}

#[test]
fn the_version_is_shown_where_nginx_shows_its() {
    let Some(nginx) = nginx() else { return };
    let (nginx_port, rginx_port) = (free_port(), free_port());
    let _theirs = NginxServer::start(&nginx, &http_body(nginx_port), nginx_port);
    let _ours = start_rginx(&http_body(rginx_port), rginx_port);
    let requests = [
        "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        "GET /on/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        "GET /build/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        "GET /text/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        // refused before a server is chosen: the default server's setting
        "GET / HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n",
        "BAD\r\n\r\n",
    ];
    let mut differences = Vec::new();
    for request in requests {
        let (theirs, ours) = (signs(nginx_port, request), signs(rginx_port, request));
        if theirs != ours {
            differences.push(format!("{request:?}:\n nginx: {theirs}\n rginx: {ours}"));
        }
    }
    let on = signs(rginx_port, requests[1]);
    assert_eq!(
        on,
        format!("Server: {RGINX_TOKEN} | <hr><center>{RGINX_TOKEN}</center>")
    );
    assert_no_differences(&differences, requests.len());
}
