//! `ip_hash` and `hash` through nginx and rginx: clients from many
//! addresses (bound on 127.0.N.1, the loopback network) and requests with
//! many keys are sent to the same backend by both, over weights and a
//! `down` server, `consistent` (ketama) too.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use common::wire::{scripted_backend, Message};
use common::*;

fn backend_a(_: &Message) -> Option<String> {
    Some(named("a"))
}
fn backend_b(_: &Message) -> Option<String> {
    Some(named("b"))
}
fn backend_c(_: &Message) -> Option<String> {
    Some(named("c"))
}

fn named(name: &str) -> String {
    format!("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n{name}")
}

fn http_body(port: u16, [a, b, c]: [SocketAddr; 3]) -> String {
    format!(
        "upstream hashed {{ ip_hash; server {a}; server {b} weight=2; server {c}; }}
upstream hashed_down {{ ip_hash; server {a} down; server {b}; server {c}; }}
upstream keyed {{ hash $arg_k; server {a}; server {b} weight=2; server {c}; }}
upstream keyed_down {{ hash $arg_k; server {a}; server {b} down; server {c}; }}
upstream ketama {{ hash $arg_k consistent; server {a}; server {b} weight=2; server {c}; }}
upstream ketama_down {{ hash $arg_k consistent; server {a}; server {b}; server {c} down; }}
server {{
    listen 127.0.0.1:{port};
    location /h/ {{ proxy_pass http://hashed; }}
    location /d/ {{ proxy_pass http://hashed_down; }}
    location /k/ {{ proxy_pass http://keyed; }}
    location /kd/ {{ proxy_pass http://keyed_down; }}
    location /c/ {{ proxy_pass http://ketama; }}
    location /cd/ {{ proxy_pass http://ketama_down; }}
}}"
    )
}

/// The backend that answered a request from `from` (its body).
fn answered_by(port: u16, from: [u8; 4], target: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let std_stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::from((from, 0)))
            .expect("bind a loopback source");
        let stream = socket
            .connect(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .expect("connect");
        stream.into_std().unwrap()
    });
    let mut c = std_stream;
    c.set_nonblocking(false).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(
        format!("GET {target} HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    text.rsplit("\r\n\r\n").next().unwrap_or("").to_string()
}

#[test]
fn ip_hash_sends_each_client_where_nginx_does() {
    let Some(nginx) = nginx() else { return };
    let backends = [
        scripted_backend(backend_a),
        scripted_backend(backend_b),
        scripted_backend(backend_c),
    ];
    let (nginx_port, rginx_port) = (free_port(), free_port());
    let _theirs = NginxServer::start(&nginx, &http_body(nginx_port, backends), nginx_port);
    let _ours = start_rginx(&http_body(rginx_port, backends), rginx_port);
    let mut differences = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for n in 0..60u8 {
        for target in ["/h/x", "/d/x"] {
            let from = [127, n / 8, n, 1];
            let (a, b) = (
                answered_by(nginx_port, from, target),
                answered_by(rginx_port, from, target),
            );
            seen.insert(a.clone());
            if a != b {
                differences.push(format!("{from:?} {target}: nginx {a}, rginx {b}"));
            }
        }
    }
    assert!(seen.len() >= 3, "the hash reached only {seen:?}");
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn hash_sends_each_key_where_nginx_does() {
    let Some(nginx) = nginx() else { return };
    let backends = [
        scripted_backend(backend_a),
        scripted_backend(backend_b),
        scripted_backend(backend_c),
    ];
    let (nginx_port, rginx_port) = (free_port(), free_port());
    let _theirs = NginxServer::start(&nginx, &http_body(nginx_port, backends), nginx_port);
    let _ours = start_rginx(&http_body(rginx_port, backends), rginx_port);
    let mut differences = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for k in 0..80 {
        for prefix in ["/k/", "/kd/", "/c/", "/cd/"] {
            let target = format!("{prefix}x?k=key{k}");
            let from = [127, 0, 0, 1];
            let (a, b) = (
                answered_by(nginx_port, from, &target),
                answered_by(rginx_port, from, &target),
            );
            seen.insert((prefix, a.clone()));
            if a != b {
                differences.push(format!("{target}: nginx {a}, rginx {b}"));
            }
        }
    }
    assert!(seen.len() >= 8, "the keys reached only {seen:?}");
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
