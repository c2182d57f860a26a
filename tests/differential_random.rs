//! Random configurations, valid and broken, through `rginx check` and
//! `nginx -t`: both must give the same verdict and the same first error
//! line. The generator only uses directives rginx implements (or accepts and
//! ignores), so every disagreement is a bug.

mod common;

use common::*;

/// A small deterministic generator (the runs are reproducible).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const TIMES: &[&str] = &[
    "10", "10s", "1m30s", "500ms", "1h", "3x", "0", "1y", "30s1m", "",
];
const SIZES: &[&str] = &["1k", "8k", "1m", "16", "1g", "x", "0"];
const FLAGS: &[&str] = &["on", "off", "yes", "On"];
const NAMES: &[&str] = &[
    "example.com",
    "*.example.org",
    ".example.net",
    "mail.*",
    "~^(?<s>.+)\\.test$",
    "\"\"",
    "_",
    "*x",
];
const HOSTS: &[&str] = &[
    "127.0.0.1:9001",
    "127.0.0.1",
    "[::1]:9002",
    "app",
    "127.0.0.1:99999",
    "app:81",
    "",
];
const VARS: &[&str] = &[
    "$host",
    "$http_upgrade",
    "$connection_upgrade",
    "$remote_addr",
    "$proxy_add_x_forwarded_for",
    "$nope",
    "${host",
    "$",
    "literal",
    "\"\"",
    "$1",
    "$s",
];

/// One `name args;` line valid (or deliberately not) in a location, server
/// or http block.
fn level_directive(r: &mut Rng) -> String {
    match r.below(12) {
        0 => format!(
            "proxy_http_version {};",
            r.pick(&["1.0", "1.1", "2.0", "1"])
        ),
        1 => format!(
            "proxy_set_header {} {};",
            r.pick(&["Host", "Upgrade", "Connection", "X-A"]),
            r.pick(VARS)
        ),
        2 => format!("proxy_read_timeout {};", r.pick(TIMES)),
        3 => format!("proxy_connect_timeout {};", r.pick(TIMES)),
        4 => format!("proxy_buffer_size {};", r.pick(SIZES)),
        5 => format!("client_max_body_size {};", r.pick(SIZES)),
        6 => format!("proxy_buffering {};", r.pick(FLAGS)),
        7 => format!(
            "keepalive_timeout {};",
            r.pick(&["5", "5 5", "x", "75s 60s"])
        ),
        8 => format!(
            "proxy_next_upstream {};",
            r.pick(&["error timeout", "off", "http_502 bogus", "non_idempotent"])
        ),
        9 => format!(
            "access_log {};",
            r.pick(&[
                "off",
                "logs/a.log",
                "logs/a.log combined",
                "logs/a.log nope",
                "off x"
            ])
        ),
        10 => format!(
            "error_log logs/e.log {};",
            r.pick(&["warn", "error", "bogus", "info"])
        ),
        _ => format!("send_timeout {};", r.pick(TIMES)),
    }
}

fn location(r: &mut Rng, depth: usize, parent: &str) -> String {
    let (modifier, name) = match r.below(6) {
        0 => ("= ", format!("{parent}e{}", r.below(3))),
        1 => ("^~ ", format!("{parent}p{}/", r.below(3))),
        2 => ("~ ", format!("\\.{}$", r.pick(&["php", "jpg", "(x"]))),
        3 => ("~* ", "^/(?<s>[a-z]+)/(\\d+)$".to_string()),
        4 if depth == 0 => ("", format!("@n{}", r.below(2))),
        _ => ("", format!("{parent}l{}/", r.below(3))),
    };
    let mut body = String::new();
    if r.chance(80) {
        let uri = if r.chance(30) { "/u/" } else { "" };
        body.push_str(&format!("proxy_pass http://{}{uri};\n", r.pick(HOSTS)));
    }
    for _ in 0..r.below(4) {
        body.push_str(&level_directive(r));
        body.push('\n');
    }
    if depth < 2 && r.chance(25) {
        let nested_parent = if name.starts_with('/') {
            name.trim_end_matches('/').to_string()
        } else {
            "/x".to_string()
        };
        body.push_str(&location(r, depth + 1, &format!("{nested_parent}/")));
    }
    format!("location {modifier}{name} {{\n{body}}}\n")
}

fn server(r: &mut Rng) -> String {
    let mut s = String::from("server {\n");
    let port = 8081 + r.below(2);
    let default = if r.chance(20) { " default_server" } else { "" };
    s.push_str(&format!("listen 127.0.0.1:{port}{default};\n"));
    if r.chance(70) {
        s.push_str(&format!(
            "server_name {} {};\n",
            r.pick(NAMES),
            r.pick(NAMES)
        ));
    }
    for _ in 0..r.below(3) {
        s.push_str(&level_directive(r));
        s.push('\n');
    }
    for _ in 0..1 + r.below(4) {
        s.push_str(&location(r, 0, "/"));
    }
    s.push_str("}\n");
    s
}

fn config(r: &mut Rng) -> String {
    let mut c = String::new();
    if r.chance(30) {
        c.push_str(&format!(
            "worker_processes {};\n",
            r.pick(&["auto", "2", "x"])
        ));
    }
    c.push_str(&format!(
        "events {{ worker_connections {}; }}\n",
        r.pick(&["64", "1024", "x"])
    ));
    c.push_str("http {\n");
    if r.chance(60) {
        c.push_str("map $http_upgrade $connection_upgrade { default upgrade; '' close; }\n");
    }
    if r.chance(60) {
        let servers = if r.chance(85) {
            "server 127.0.0.1:9001 weight=2; server 127.0.0.1:9002 backup;"
        } else {
            ""
        };
        c.push_str(&format!(
            "upstream app {{ {servers} keepalive {}; }}\n",
            r.pick(&["16", "0", "x"])
        ));
    }
    for _ in 0..r.below(2) {
        c.push_str(&level_directive(r));
        c.push('\n');
    }
    for _ in 0..1 + r.below(3) {
        c.push_str(&server(r));
    }
    c.push_str("}\n");
    mutate(r, c)
}

/// Now and then, break the text: drop or add a delimiter, add an unknown
/// or misplaced directive.
fn mutate(r: &mut Rng, mut c: String) -> String {
    if !r.chance(40) {
        return c;
    }
    let places: Vec<usize> = c.match_indices(['\n']).map(|(i, _)| i).collect();
    let at = places[r.below(places.len())];
    let insert = r.pick(&[
        "}",
        ";",
        "{",
        "bogus_directive on;",
        "listen 80;",
        "proxy_pass http://127.0.0.1;",
        "worker_connections 1;",
        "\"q\"x;",
        "server_name;",
    ]);
    match r.below(3) {
        0 => {
            if let Some(i) = c.rfind(';').filter(|i| *i < at) {
                c.remove(i);
            }
        }
        1 => {
            if let Some(i) = c.rfind('}').filter(|i| *i < at) {
                c.remove(i);
            }
        }
        _ => c.insert_str(at, &format!("\n{insert}")),
    }
    c
}

#[test]
fn random_configs_get_nginx_verdict_and_first_error() {
    let Some(nginx) = nginx() else { return };
    let dir = TempDir::new("random");
    // more cases or another seed: RGINX_RANDOM_CASES=5000 RGINX_RANDOM_SEED=7
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let mut rng = Rng(env("RGINX_RANDOM_SEED", 0x9E37_79B9_7F4A_7C15) | 1);
    let mut failures = Vec::new();
    let cases = env("RGINX_RANDOM_CASES", 400);
    for n in 0..cases {
        let text = config(&mut rng);
        let name = format!("r{n}.conf");
        let path = dir.0.join(&name);
        std::fs::write(&path, &text).expect("write");
        let (nginx_ok, nginx_line) = nginx_test(&nginx, &path);
        let out = check_in(&dir.0, &name, &["--no-lint"]);
        let rginx_ok = out.status.success();
        let rginx_line = first_emerg(&out);
        if nginx_ok != rginx_ok || (!nginx_ok && nginx_line != rginx_line) {
            failures.push(format!(
                "{name}:\n  nginx: ok={nginx_ok} {nginx_line:?}\n  rginx: ok={rginx_ok} {rginx_line:?}\n---\n{text}---"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} configs disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
