//! Per-request evaluation: select the server, match the location and build
//! the upstream plan, for a server with 1,000 prefix and 100 regex
//! locations. `cargo bench --bench evaluate`.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use rginx_core::plan::{Decision, RequestHead, Runtime};
use rginx_core::{build, BuildOptions, LiteralResolver};

fn config() -> String {
    let mut c = String::from("events {}\nhttp {\n");
    c.push_str("    map $http_upgrade $connection_upgrade { default upgrade; '' close; }\n");
    c.push_str("    upstream app { server 127.0.0.1:9000; keepalive 16; }\n");
    c.push_str("    server {\n        listen 127.0.0.1:8080;\n        server_name example.com *.example.org;\n");
    c.push_str("        proxy_http_version 1.1;\n        proxy_set_header Host $host;\n");
    c.push_str("        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n");
    for i in 0..1000 {
        c.push_str(&format!(
            "        location /section{i}/ {{ proxy_pass http://app; }}\n"
        ));
    }
    for i in 0..100 {
        c.push_str(&format!(
            "        location ~ ^/re{i}/(\\d+)$ {{ proxy_pass http://app; proxy_set_header X-Id $1; }}\n"
        ));
    }
    c.push_str("        location /ws/ { proxy_pass http://app; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade; }\n");
    c.push_str("    }\n}\n");
    c
}

fn bench(c: &mut Criterion) {
    let parsed = rginx_config::parse_str(Path::new("bench.conf"), &config());
    let checked = build(&parsed, &LiteralResolver, BuildOptions::default());
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    let runtime = Runtime::new(&checked.model, "bench").expect("runtime");
    let headers = [
        ("Host", "example.com"),
        ("User-Agent", "bench/1.0"),
        ("Accept", "*/*"),
        ("X-Forwarded-For", "10.0.0.1"),
    ];
    let head = |target: &'static str| RequestHead {
        method: "GET",
        target,
        minor_version: 1,
        headers: &headers,
        local: "127.0.0.1:8080".parse().unwrap(),
        remote: "127.0.0.1:50000".parse().unwrap(),
        time: std::time::SystemTime::now(),
        request_id: [7; 16],
    };
    for (name, target) in [
        ("prefix hit", "/section500/some/page?x=1"),
        ("regex hit (last of 100)", "/re99/12345"),
        ("websocket location with map", "/ws/chat"),
    ] {
        let req = head(target);
        assert!(matches!(runtime.decide(&req), Decision::Proxy(_)));
        c.bench_function(&format!("decide: {name}"), |b| {
            b.iter(|| runtime.decide(&req))
        });
    }
    let req = head("/section500/some/page");
    c.bench_function("match only: prefix hit", |b| {
        b.iter(|| runtime.match_location(&req))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
