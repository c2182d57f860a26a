//! Per-request evaluation: select the server, match the location and build
//! the upstream plan, for a server with 1,000 prefix and 100 regex
//! locations. `cargo bench --bench evaluate`.

use criterion::{criterion_group, criterion_main, Criterion};
use rginx_core::plan::Decision;
use rginx_testkit::config::{http_runtime, many_locations, request};

fn http() -> String {
    let mut c = String::new();
    c.push_str("map $http_upgrade $connection_upgrade { default upgrade; '' close; }\n");
    c.push_str("upstream app { server 127.0.0.1:9000; keepalive 16; }\n");
    c.push_str("server {\nlisten 127.0.0.1:8080;\nserver_name example.com *.example.org;\n");
    c.push_str("proxy_http_version 1.1;\nproxy_set_header Host $host;\n");
    c.push_str("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n");
    c.push_str(&many_locations(1000, 100, "http://app"));
    c.push_str("location /ws/ { proxy_pass http://app; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade; }\n");
    c.push_str("}\n");
    c
}

fn bench(c: &mut Criterion) {
    let runtime = http_runtime(&http());
    let headers = [
        ("Host", "example.com"),
        ("User-Agent", "bench/1.0"),
        ("Accept", "*/*"),
        ("X-Forwarded-For", "10.0.0.1"),
    ];
    for (name, target) in [
        ("prefix hit", "/section500/some/page?x=1"),
        ("regex hit (last of 100)", "/re99/12345"),
        ("websocket location with map", "/ws/chat"),
    ] {
        let req = request(target, &headers);
        assert!(matches!(runtime.decide(&req), Decision::Proxy(_)));
        c.bench_function(&format!("decide: {name}"), |b| {
            b.iter(|| runtime.decide(&req))
        });
    }
    let req = request("/section500/some/page", &headers);
    c.bench_function("match only: prefix hit", |b| {
        b.iter(|| runtime.match_location(&req))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
