//! A `proxy_pass` with variables through nginx and rginx: a host an
//! `upstream` block names (without a port), the host and port of a
//! literal `proxy_pass` (nginx's implicit upstream), an address, or a
//! name for the location's `resolver`, asked of a real name server on the
//! loopback (each proxy has its own, so the questions each asked can be
//! compared too: A then AAAA, answers kept for their TTL, errors not, a
//! truncated answer asked again over TCP, a CNAME followed). Names that do
//! not resolve, time out, or have no resolver to ask are 502s, a URL
//! nginx cannot parse a 500, each with nginx's error line; an error_page
//! takes them. The whole answer (but Date and Server), what the backend
//! got, the error lines and the questions must be nginx's.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use common::wire::{scripted_backend, Message};
use common::*;
use rginx_testkit::dns::{DnsServer, Entry, Record};

/// The backend answers with what it got: the request line, `Host`, body.
fn answer(request: &Message) -> Option<String> {
    let body = format!(
        "{} | {} | {}",
        request.head[0],
        request.header("host").unwrap_or("-"),
        String::from_utf8_lossy(&request.body)
    );
    Some(format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ))
}

fn zone() -> Vec<(&'static str, Entry)> {
    let local = Record::A(Ipv4Addr::LOCALHOST);
    vec![
        ("one.test", Entry::records(vec![local.clone()], 60)),
        (
            "alias.test",
            Entry::records(vec![Record::Cname("one.test".into())], 60),
        ),
        (
            "dual.test",
            Entry::records(vec![local.clone(), Record::Aaaa(Ipv6Addr::LOCALHOST)], 60),
        ),
        (
            "six.test",
            Entry::records(vec![Record::Aaaa(Ipv6Addr::LOCALHOST)], 60),
        ),
        ("short.test", Entry::records(vec![local.clone()], 0)),
        (
            "trunc.test",
            Entry {
                truncated: true,
                ..Entry::records(vec![local], 60)
            },
        ),
        ("fail.test", Entry::code(2)),
        ("refused.test", Entry::code(5)),
        ("empty.test", Entry::records(Vec::new(), 60)),
        (
            "silent.test",
            Entry {
                silent: true,
                ..Entry::default()
            },
        ),
    ]
}

fn http_body(
    port: u16,
    backend: std::net::SocketAddr,
    dns: std::net::SocketAddr,
    dir: &std::path::Path,
) -> String {
    let bport = backend.port();
    format!(
        r#"error_log {dir}/error.log;
client_body_temp_path {dir}/client_body;
proxy_temp_path {dir}/proxy;
upstream app {{ server {backend}; }}
server {{
    listen 127.0.0.1:{port};
    location /none/ {{ proxy_pass http://$arg_h; }}
    location /literal/ {{ proxy_pass http://localhost:{bport}; }}
    location /v4/ {{
        resolver {dns} ipv6=off;
        resolver_timeout 1s;
        proxy_pass http://$arg_h;
    }}
    location /both/ {{
        resolver {dns};
        resolver_timeout 1s;
        proxy_pass http://$arg_h$arg_u;
    }}
    location /caught/ {{
        resolver {dns} ipv6=off;
        resolver_timeout 1s;
        error_page 502 500 = /fallback;
        proxy_pass http://$arg_h;
    }}
    location /fallback {{ return 200 "fallback $status\n"; }}
}}"#,
        dir = dir.display()
    )
}

/// The error lines, but for requests whose addresses come in a random
/// order (a kept answer with two addresses is rotated by both).
fn error_lines(dir: &std::path::Path) -> Vec<String> {
    log_lines(dir, "error.log")
        .into_iter()
        .filter(|l| l.starts_with("[error]") && !l.contains("dual.test"))
        .collect()
}

#[test]
fn variables_name_upstreams_addresses_and_resolved_hosts_as_nginx_s() {
    let Some(nginx) = nginx() else { return };
    let backend = scripted_backend(answer);
    let bport = backend.port();
    let (their_dns, our_dns) = (
        DnsServer::start(zone()).expect("dns"),
        DnsServer::start(zone()).expect("dns"),
    );
    let (nginx_port, rginx_port) = (free_port(), free_port());
    let (nginx_dir, rginx_dir) = (TempDir::new("res-nginx"), TempDir::new("res-rginx"));
    let _theirs = NginxServer::start(
        &nginx,
        &http_body(nginx_port, backend, their_dns.addr, &nginx_dir.0),
        nginx_port,
    );
    let _ours = start_rginx(
        &http_body(rginx_port, backend, our_dns.addr, &rginx_dir.0),
        rginx_port,
    );
    let b = bport;
    let mut targets: Vec<String> = vec![
        // no resolver: upstream blocks, implicit upstreams, addresses
        "/none/?h=app".into(),
        format!("/none/?h=app:{b}"),
        format!("/none/?h=localhost:{b}"),
        format!("/none/?h=LocalHost:{b}"),
        format!("/none/?h=127.0.0.1:{b}"),
        format!("/none/?h=one.test:{b}"),
        "/none/?h=one.test".into(),
        "/none/?h=ftp:".into(),
        "/none/?h=:80".into(),
        "/none/?h=".into(),
        format!("/none/?h=one.test:0{b}"),
        format!("/none/?h=one.test:99999"),
        format!("/none/?h=[::1"),
        // the resolver
        format!("/v4/?h=one.test:{b}"),
        format!("/v4/?h=one.test:{b}"),
        format!("/v4/?h=ONE.Test:{b}"),
        format!("/v4/?h=one.test.:{b}"),
        format!("/v4/?h=alias.test:{b}"),
        // a TTL of 0 is good for the rest of the second in both: asked
        // once, since a second may end between two asks
        format!("/v4/?h=short.test:{b}"),
        format!("/v4/?h=trunc.test:{b}"),
        format!("/v4/?h=trunc.test:{b}"),
        format!("/v4/?h=six.test:{b}"),
        format!("/v4/?h=nx.test:{b}"),
        format!("/v4/?h=nx.test:{b}"),
        format!("/v4/?h=fail.test:{b}"),
        format!("/v4/?h=refused.test:{b}"),
        format!("/v4/?h=empty.test:{b}"),
        format!("/v4/?h=a..b:{b}"),
        format!("/v4/?h=silent.test:{b}"),
        format!("/both/?h=dual.test:{b}"),
        format!("/both/?h=dual.test:{b}&u=/fixed"),
        format!("/both/?h=one.test:{b}&u=%3Fq=1"),
        format!("/both/?h=six.test:{b}"),
        format!("/both/?h=empty.test:{b}"),
        format!("/caught/?h=nx.test:{b}"),
        "/caught/?h=ftp:".into(),
        format!("/caught/?h=one.test:{b}"),
    ];
    // the URI part and the Host sent: `$arg_u` is taken as it is
    targets.push(format!("/both/?h=one.test:{b}&u=/a/b?c"));
    let mut differences = Vec::new();
    let mut asked = 0;
    for target in &targets {
        for (method, body) in [("GET", ""), ("POST", "posted")] {
            if !body.is_empty() && !target.contains("one.test") {
                continue;
            }
            let request = format!(
                "{method} {target} HTTP/1.1\r\nHost: e.test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            asked += 1;
            differences.extend(answers_differ(
                (nginx_port, rginx_port),
                &request,
                format_args!("{method} {target}"),
            ));
        }
    }
    let (theirs, ours) = (error_lines(&nginx_dir.0), error_lines(&rginx_dir.0));
    assert!(
        theirs.iter().any(|l| l.contains("no resolver defined"))
            && theirs.iter().any(|l| l.contains("Operation timed out"))
            && theirs.iter().any(|l| l.contains("invalid port")),
        "nginx wrote the lines compared: {theirs:#?}"
    );
    if theirs != ours {
        differences.push(format!(
            "error lines:\n  nginx: {theirs:#?}\n  rginx: {ours:#?}"
        ));
    }
    let (their_questions, our_questions) = (their_dns.asked(), our_dns.asked());
    if their_questions != our_questions {
        differences.push(format!(
            "questions:\n  nginx: {their_questions:?}\n  rginx: {our_questions:?}"
        ));
    }
    assert_no_differences(&differences, asked);
}
