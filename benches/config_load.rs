//! Parse and validate a generated configuration with 10,000 locations and
//! 100 upstreams (goal: under 50 ms); load (parse, validate and compile for
//! serving) a `map` of 100,000 keys and 10,000 servers with 20,000 names,
//! which must stay linear. `cargo bench --bench config_load`.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use rginx_core::{build, BuildOptions, LiteralResolver};

/// A config like a large real deployment: 100 upstreams, 100 servers with
/// 100 locations each (prefix, exact and regex), WebSocket headers.
fn generate() -> String {
    let mut c = String::from("events { worker_connections 4096; }\nhttp {\n");
    c.push_str("    map $http_upgrade $connection_upgrade { default upgrade; '' close; }\n");
    for u in 0..100 {
        c.push_str(&format!(
            "    upstream app{u} {{ server 127.0.0.1:{} weight=2 max_fails=3 fail_timeout=5s; server 127.0.0.2:{} backup; keepalive 16; }}\n",
            9000 + u,
            9000 + u
        ));
    }
    for s in 0..100 {
        c.push_str(&format!("    server {{\n        listen 127.0.0.1:{};\n        server_name s{s}.example.com *.s{s}.example.org;\n", 8000 + s));
        for l in 0..100 {
            let up = (s + l) % 100;
            let loc = match l % 4 {
                0 => format!("location /api{l}/ "),
                1 => format!("location = /exact{l} "),
                2 => format!("location ~ ^/re{l}/(.*)$ "),
                _ => format!("location ^~ /static{l}/ "),
            };
            c.push_str(&format!(
                "        {loc}{{ proxy_pass http://app{up}; proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade; proxy_read_timeout 1h; }}\n"
            ));
        }
        c.push_str("    }\n");
    }
    c.push_str("}\n");
    c
}

/// The plainest reading of the goal: 10,000 prefix locations with one
/// `proxy_pass` each, spread over 100 upstreams and 10 servers.
fn generate_plain() -> String {
    let mut c = String::from("events {}\nhttp {\n");
    for u in 0..100 {
        c.push_str(&format!(
            "    upstream app{u} {{ server 127.0.0.1:{}; }}\n",
            9000 + u
        ));
    }
    for s in 0..10 {
        c.push_str(&format!(
            "    server {{\n        listen 127.0.0.1:{};\n",
            8000 + s
        ));
        for l in 0..1000 {
            c.push_str(&format!(
                "        location /s{s}/l{l}/ {{ proxy_pass http://app{}; }}\n",
                (s * 1000 + l) % 100
            ));
        }
        c.push_str("    }\n");
    }
    c.push_str("}\n");
    c
}

/// A `map` of `n` host names.
fn generate_map(n: usize) -> String {
    let mut c = String::from("events {}\nhttp {\n    map $host $m {\n        default 0;\n");
    for i in 0..n {
        c.push_str(&format!("        host{i}.example.com {i};\n"));
    }
    c.push_str("    }\n    server { listen 127.0.0.1:8080; location / { proxy_pass http://127.0.0.1:9000; proxy_set_header X-M $m; } }\n}\n");
    c
}

/// `n` servers on one address, two names each.
fn generate_names(n: usize) -> String {
    let mut c = String::from("events {}\nhttp {\n");
    for i in 0..n {
        c.push_str(&format!("    server {{ listen 127.0.0.1:8080; server_name s{i}.example.com www.s{i}.example.com; location / {{ proxy_pass http://127.0.0.1:9000; }} }}\n"));
    }
    c.push_str("}\n");
    c
}

/// Parse, validate and compile for serving.
fn load(name: &str, text: &str) -> rginx_core::plan::Runtime {
    let parsed = rginx_config::parse_str(Path::new(name), text);
    let checked = build(&parsed, &LiteralResolver, BuildOptions::default());
    assert!(!checked.has_errors());
    rginx_core::plan::Runtime::new(&checked.model, "bench").expect("compiles")
}

fn bench_large(c: &mut Criterion) {
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    let map = generate_map(100_000);
    group.bench_function("a map of 100,000 keys", |b| {
        b.iter(|| load("map.conf", &map))
    });
    let names = generate_names(10_000);
    group.bench_function("10,000 servers, 20,000 names", |b| {
        b.iter(|| load("names.conf", &names))
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    let plain = generate_plain();
    c.bench_function("parse+validate 10k plain locations, 100 upstreams", |b| {
        b.iter(|| {
            let parsed = rginx_config::parse_str(Path::new("plain.conf"), &plain);
            let checked = build(&parsed, &LiteralResolver, BuildOptions::default());
            assert!(!checked.has_errors());
            checked
        })
    });
    let text = generate();
    c.bench_function("parse 10k locations, 100 upstreams", |b| {
        b.iter(|| rginx_config::parse_str(Path::new("bench.conf"), &text))
    });
    let parsed = rginx_config::parse_str(Path::new("bench.conf"), &text);
    c.bench_function("validate 10k locations, 100 upstreams", |b| {
        b.iter(|| build(&parsed, &LiteralResolver, BuildOptions::default()))
    });
    c.bench_function("parse+validate 10k locations, 100 upstreams", |b| {
        b.iter(|| {
            let parsed = rginx_config::parse_str(Path::new("bench.conf"), &text);
            let checked = build(&parsed, &LiteralResolver, BuildOptions::default());
            assert!(!checked.has_errors());
            checked
        })
    });
}

criterion_group!(benches, bench, bench_large);
criterion_main!(benches);
