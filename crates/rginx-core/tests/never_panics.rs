//! Bad input never panics: random text and random mutations of real
//! configurations go through parsing, validation, lints and compilation.

use proptest::prelude::*;
use rginx_core::lint;
use rginx_core::plan::Runtime;
use rginx_testkit::config::{check, request};

const SEED: &str = r#"events { worker_connections 64; }
http {
    map $http_upgrade $connection_upgrade { default upgrade; '' close; ~^(?<p>x)y $p; }
    upstream app { server 127.0.0.1:9000 weight=2; keepalive 4; }
    server {
        listen 127.0.0.1:8080 default_server;
        server_name example.com *.example.org ~^(?<sub>.+)\.example\.net$;
        proxy_set_header Host $host;
        location / { proxy_pass http://app; }
        location = /ws { proxy_pass http://app/ws/; proxy_http_version 1.1; }
        location ~* \.(png|jpg)$ { proxy_pass http://127.0.0.1:9001; proxy_set_header X $1; }
        location ^~ /static/ { location /static/a/ { proxy_pass http://app; } }
    }
}
"#;

fn run_everything(text: &str) {
    let (parsed, checked) = check("fuzz.conf", text);
    for d in &checked.diagnostics {
        let _ = d.render(&parsed.config);
        let _ = d.excerpt(&parsed.config);
    }
    let _ = parsed.config.to_string();
    if !checked.has_errors() {
        let _ = lint::lint(&checked.model);
        if let Ok(rt) = Runtime::new(&checked.model, "h") {
            let headers = [("Host", "a.example.net"), ("Upgrade", "xy")];
            for target in [
                "/",
                "/ws",
                "/a.PNG",
                "/static/a/b",
                "/%2e%2e/x",
                "http://h/x?y",
            ] {
                let _ = rt.decide(&request(target, &headers));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_text_never_panics(text in "[ -~\t\n{};#\"'\\\\$é]{0,300}") {
        run_everything(&text);
    }

    #[test]
    fn mutated_real_configs_never_panic(cut in 0..SEED.len(), len in 0usize..40, insert in "[ -~\n]{0,12}") {
        let mut text = SEED.to_string();
        let start = (0..=cut).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + len).min(text.len());
        let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
        text.replace_range(start..end, &insert);
        run_everything(&text);
    }
}

#[test]
fn the_seed_itself_is_valid_and_runs() {
    let (_, checked) = check("seed.conf", SEED);
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    run_everything(SEED);
}

#[test]
fn binary_garbage_never_panics() {
    let mut state: u32 = 12345;
    for _ in 0..50 {
        let bytes: Vec<u8> = (0..2000)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (state >> 16) as u8
            })
            .collect();
        let text = String::from_utf8_lossy(&bytes);
        run_everything(&text);
    }
}
