//! Any bytes as a request head: nginx's head checks on the raw bytes
//! (`HeadScanner`), then, for what rginx's request head parser takes, the
//! evaluator's whole decision on a configuration with every kind of
//! location, variables in headers and a map.
#![no_main]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rginx_http::head_scan::HeadScanner;
use rginx_core::plan::{RequestHead as PlanHead, Runtime};
use rginx_http::request::RequestHead;
use rginx_core::{build, BuildOptions, LiteralResolver};

const CONF: &str = r#"events {}
http {
    map $http_upgrade $connection_upgrade { default upgrade; '' close; ~^(?<p>x)y $p; }
    upstream app { server 127.0.0.1:9000; keepalive 4; }
    server {
        listen 127.0.0.1:8080 default_server;
        server_name example.com *.example.org ~^(?<sub>.+)\.example\.net$;
        proxy_set_header Host $host;
        proxy_set_header X-Uri "$uri $args $request_uri $sub";
        location / { proxy_pass http://app; }
        location = /ws { proxy_pass http://app/ws/; proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade; }
        location ~* ^/re/(.*)$ { proxy_pass http://127.0.0.1:9001/x/$1$is_args$args; }
        location ^~ /static/ { location /static/a/ { proxy_pass http://app/; } }
        location = /status { stub_status; }
    }
}
"#;

fn runtime() -> Option<&'static Runtime> {
    static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let parsed = rginx_config::parse_str(Path::new("fuzz.conf"), CONF);
            let checked = build(&parsed, &LiteralResolver, BuildOptions::default());
            Runtime::new(&checked.model, "fuzz").ok()
        })
        .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let mut scanner = HeadScanner::new(4, 8192);
    let _ = scanner.feed(data);
    let Some(rt) = runtime() else { return };
    let Ok(req) = RequestHead::parse(data) else {
        return;
    };
    let values: Vec<String> = req
        .headers
        .iter()
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .collect();
    let pairs: Vec<(&str, &str)> = req
        .headers
        .iter()
        .zip(&values)
        .map(|((n, _), v)| (*n, v.as_str()))
        .collect();
    let local: SocketAddr = ([127, 0, 0, 1], 8080).into();
    let head = PlanHead {
        method: req.method,
        target: req.target,
        minor_version: req.minor_version,
        headers: &pairs,
        local,
        remote: ([10, 0, 0, 1], 5555).into(),
        time: std::time::SystemTime::UNIX_EPOCH,
        request_id: [7; 16],
        body: None,
        upstreams: None,
        connection: Default::default(),
        tls: None,
    };
    let _ = rt.decide_scoped(&head);
});
