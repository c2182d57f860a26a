//! `return` through nginx and rginx: at server level (before any
//! location) and in locations, every form (a code alone, with text, with
//! a URL, a URL alone, 444), codes with and without nginx pages, the
//! text's `Content-Type` from `types` and `default_type` by the URI's
//! extension, and relative redirects made absolute per
//! `absolute_redirect`, `port_in_redirect` and `server_name_in_redirect`;
//! error pages padded for MSIE and Chrome as `msie_padding` says.
//! The whole answer (but Date and Server, ports masked, the length of a
//! page and its signature masked) must be nginx's for every case.

mod common;

use common::*;

fn http_body(port: u16) -> String {
    format!(
        r#"server {{ listen 127.0.0.1:{port}; server_name redirect.example; return 301 https://$host$request_uri; }}
server {{ listen 127.0.0.1:{port}; server_name bare.example; return https://example.org/x; }}
server {{
    listen 127.0.0.1:{port};
    server_name rel.example www.rel.example;
    server_name_in_redirect on;
    return 302 /moved$is_args$args;
}}
server {{ listen 127.0.0.1:{port}; server_name noport.example; port_in_redirect off; return 307 /p; }}
server {{ listen 127.0.0.1:{port}; server_name norel.example; absolute_redirect off; return 308 /relative; }}
server {{ listen 127.0.0.1:{port}; server_name close.example; return 444; }}
server {{
    listen 127.0.0.1:{port} default_server;
    default_type application/octet-stream;
    location /text {{ return 200 "hello $uri$is_args$args\n"; }}
    location /ext/ {{ return 200 "x"; }}
    location /typed/ {{
        types {{ text/css css; application/json json; }}
        default_type text/x-default;
        return 200 '{{"a":1}}';
    }}
    location /notypes/ {{ types {{ }} return 200 "none"; }}
    location /codes/ {{
        location /codes/404 {{ return 404; }}
        location /codes/418 {{ return 418; }}
        location /codes/499 {{ return 499; }}
        location /codes/500text {{ return 500 "oops"; }}
        location /codes/204 {{ return 204; }}
        location /codes/204text {{ return 204 "x"; }}
        location /codes/200 {{ return 200; }}
        location /codes/301 {{ return 301; }}
        location /codes/301text {{ return 301 /elsewhere; }}
        location /codes/302abs {{ return 302 http://other.example/y; }}
        location /codes/303 {{ return 303 "$scheme://$host/see"; }}
        location /codes/299 {{ return 299 "odd"; }}
        location /codes/304 {{ return 304 "x"; }}
        location /codes/503 {{ return 503; }}
        location /codes/empty {{ return 404 ""; }}
        location /codes/444 {{ return 444; }}
        location /codes/first {{ return 410; return 200 "second"; }}
    }}
    location /proxied/ {{ proxy_pass http://127.0.0.1:1; return 403; }}
    location ~ ^/cap/(\w+) {{ return 200 "got $1"; }}
    location /slash/ {{ proxy_pass http://127.0.0.1:1; absolute_redirect off; }}
    location /noport/ {{ proxy_pass http://127.0.0.1:1; port_in_redirect off; }}
    location /down/ {{ proxy_pass http://127.0.0.1:1; }}
    location /nopad/ {{ msie_padding off; return 404; }}
}}"#
    )
}

#[test]
fn return_answers_as_nginx_does() {
    let Some(nginx) = nginx() else { return };
    let pair = DirPair::start(&nginx, "return", |port, _| http_body(port));
    let ports = (pair.nginx_port, pair.rginx_port);
    let mut cases: Vec<(String, &str)> = Vec::new();
    for host in [
        "redirect.example",
        "bare.example",
        "rel.example",
        "noport.example",
        "norel.example",
        "close.example",
    ] {
        cases.push(("/a/b?x=1".into(), host));
    }
    for target in [
        "/text",
        "/text?q=%20",
        "/ext/a.html",
        "/ext/a.JPG",
        "/ext/a.gif",
        "/ext/a.css",
        "/ext/noext",
        "/ext/a.b/c",
        "/ext/trailing.",
        "/typed/x.json",
        "/typed/x.CSS",
        "/typed/x.html",
        "/notypes/x.html",
        "/codes/404",
        "/codes/418",
        "/codes/499",
        "/codes/500text",
        "/codes/204",
        "/codes/204text",
        "/codes/200",
        "/codes/301",
        "/codes/301text",
        "/codes/302abs",
        "/codes/303",
        "/codes/299",
        "/codes/304",
        "/codes/503",
        "/codes/empty",
        "/codes/444",
        "/codes/first",
        "/proxied/x",
        "/cap/word",
        "/slash",
        "/noport",
        "/down/x",
        "/nopad/x",
    ] {
        cases.push((target.into(), "site.example"));
    }
    let mut differences = Vec::new();
    let mut asked = 0;
    for (target, host) in &cases {
        for form in ["GET", "HEAD", "GET10", "CHROME", "MSIE", "FIREFOX"] {
            // nginx pads its error pages for MSIE and Chrome (`msie_padding`)
            let agent = match form {
                "CHROME" => "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                "MSIE" => "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1)",
                "FIREFOX" => "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
                _ => "",
            };
            let request = match form {
                "GET10" => format!("GET {target} HTTP/1.0\r\n\r\n"),
                "CHROME" | "MSIE" | "FIREFOX" => format!(
                    "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {agent}\r\nConnection: close\r\n\r\n"
                ),
                method => format!(
                    "{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                ),
            };
            asked += 1;
            differences.extend(answers_differ(
                ports,
                &request,
                format_args!("{form} {host}{target}"),
            ));
        }
    }
    assert_no_differences(&differences, asked);
}

/// nginx discards a body before it answers itself: a chunked one it cannot
/// read (what has come of it) turns the answer into its 400.
#[test]
fn a_discarded_body_nginx_cannot_read_is_a_400() {
    let Some(nginx) = nginx() else { return };
    let pair = DirPair::start(&nginx, "return", |port, _| http_body(port));
    let ports = (pair.nginx_port, pair.rginx_port);
    let bodies = [
        "4\r\nSEE-THIS\r\n0\r\n\r\n",
        "4\r\nSEE-\r\n0\r\n\r\n",
        "zz\r\n",
    ];
    let mut differences = Vec::new();
    for target in ["/text", "/codes/404", "/codes/301"] {
        for body in bodies {
            let request = format!(
                "POST {target} HTTP/1.1\r\nHost: site.example\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n{body}"
            );
            differences.extend(answers_differ(
                ports,
                &request,
                format_args!("{target} {body:?}"),
            ));
        }
    }
    assert_no_differences(&differences, 9);
}
