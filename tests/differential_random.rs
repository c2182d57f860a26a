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

    /// Mostly a valid value, sometimes (2%) a broken one.
    fn choose<'a>(&mut self, valid: &[&'a str], broken: &[&'a str]) -> &'a str {
        if self.chance(2) {
            self.pick(broken)
        } else {
            self.pick(valid)
        }
    }
}

const TIMES: (&[&str], &[&str]) = (
    &["10", "10s", "1m30s", "500ms", "1h", "0"],
    &["3x", "1y", "30s1m", ""],
);
const SIZES: (&[&str], &[&str]) = (&["1k", "8k", "16", "0"], &["1g", "x"]);
const FLAGS: (&[&str], &[&str]) = (&["on", "off", "On"], &["yes"]);
const NAMES: (&[&str], &[&str]) = (
    &[
        "example.com",
        "*.example.org",
        ".example.net",
        "mail.*",
        "~^(?<s>.+)\\.test$",
        "\"\"",
        "_",
    ],
    &["*x"],
);
const HOSTS: (&[&str], &[&str]) = (
    &["127.0.0.1:9001", "127.0.0.1", "[::1]:9002", "app"],
    &["127.0.0.1:99999", "app:81", ""],
);
const VARS: (&[&str], &[&str]) = (
    &[
        "$host",
        "$http_upgrade",
        "$remote_addr",
        "$proxy_add_x_forwarded_for",
        "literal",
        "\"\"",
        "$1",
        "$connection_upgrade",
    ],
    &["$nope", "${host", "$", "$s"],
);

/// One `name args;` line valid (or deliberately not) in a location, server
/// or http block.
fn level_directive(r: &mut Rng) -> String {
    match r.below(12) {
        0 => format!(
            "proxy_http_version {};",
            r.choose(&["1.0", "1.1"], &["2.0", "1"])
        ),
        1 => format!(
            "proxy_set_header {} {};",
            r.pick(&["Host", "Upgrade", "Connection", "X-A"]),
            r.choose(VARS.0, VARS.1)
        ),
        2 => format!("proxy_read_timeout {};", r.choose(TIMES.0, TIMES.1)),
        3 => format!("proxy_connect_timeout {};", r.choose(TIMES.0, TIMES.1)),
        4 => format!("proxy_buffer_size {};", r.choose(SIZES.0, SIZES.1)),
        5 => format!(
            "client_max_body_size {};",
            r.choose(&["1k", "8m", "1g", "0"], &["x"])
        ),
        6 => format!("proxy_buffering {};", r.choose(FLAGS.0, FLAGS.1)),
        7 => format!(
            "keepalive_timeout {};",
            r.choose(&["5", "5 5", "75s 60s"], &["x", "5 5ms"])
        ),
        8 => format!(
            "proxy_next_upstream {};",
            r.choose(
                &["error timeout", "off", "http_502 non_idempotent"],
                &["http_502 bogus"]
            )
        ),
        9 => format!(
            "access_log {};",
            r.choose(
                &["off", "logs/a.log", "logs/a.log combined"],
                &["logs/a.log nope", "off x"]
            )
        ),
        10 => format!(
            "error_log logs/e.log {};",
            r.choose(&["warn", "error", "info"], &["bogus"])
        ),
        _ => format!("send_timeout {};", r.choose(TIMES.0, TIMES.1)),
    }
}

fn location(r: &mut Rng, depth: usize, parent: &str) -> String {
    let (modifier, name) = match r.below(6) {
        0 => ("= ", format!("{parent}e{}", r.below(3))),
        1 => ("^~ ", format!("{parent}p{}/", r.below(3))),
        2 => ("~ ", format!("\\.{}$", r.choose(&["php", "jpg"], &["(x"]))),
        3 => ("~* ", "^/(?<s>[a-z]+)/(\\d+)$".to_string()),
        4 if depth == 0 => ("", format!("@n{}", r.below(2))),
        _ => ("", format!("{parent}l{}/", r.below(3))),
    };
    let mut body = String::new();
    if r.chance(80) {
        // a URI part is an error in regex and named locations: rarely there
        let uri_ok = name.starts_with('/') || r.chance(5);
        let uri = if uri_ok && r.chance(30) { "/u/" } else { "" };
        body.push_str(&format!(
            "proxy_pass http://{}{uri};\n",
            r.choose(HOSTS.0, HOSTS.1)
        ));
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
    if r.chance(15) {
        s.push_str(r.pick(&[
            "listen 99999;\n",
            "listen ::1:8081;\n",
            "listen 127.0.0.1:8081;\n",
            "listen 8083 reuseport;\n",
            "listen 8083 bogus;\n",
            "listen [::1]:8084;\n",
        ]));
    }
    if r.chance(70) {
        s.push_str(&format!(
            "server_name {} {};\n",
            r.choose(NAMES.0, NAMES.1),
            r.choose(NAMES.0, NAMES.1)
        ));
    }
    for _ in 0..r.below(3) {
        s.push_str(&level_directive(r));
        s.push('\n');
    }
    for _ in 0..1 + r.below(4) {
        s.push_str(&location(r, 0, "/"));
    }
    if r.chance(4) {
        // the same location again: duplicate unless named or regex
        let again = location(r, 0, "/");
        s.push_str(&again);
        s.push_str(&again);
    }
    s.push_str("}\n");
    s
}

fn config(r: &mut Rng) -> String {
    let mut c = String::new();
    if r.chance(30) {
        c.push_str(&format!(
            "worker_processes {};\n",
            r.choose(&["auto", "2"], &["x"])
        ));
    }
    c.push_str(&format!(
        "events {{ worker_connections {}; }}\n",
        r.choose(&["64", "1024"], &["x", "1"])
    ));
    c.push_str("http {\n");
    if r.chance(60) {
        c.push_str("map $http_upgrade $connection_upgrade { default upgrade; '' close; }\n");
    }
    if r.chance(60) {
        let servers = if r.chance(95) {
            "server 127.0.0.1:9001 weight=2; server 127.0.0.1:9002 backup;"
        } else {
            ""
        };
        c.push_str(&format!(
            "upstream app {{ {servers} keepalive {}; }}\n",
            r.choose(&["16", "2"], &["0", "x"])
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
    if !r.chance(20) {
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
    let mut accepted = 0;
    for n in 0..cases {
        let text = config(&mut rng);
        let name = format!("r{n}.conf");
        let path = dir.0.join(&name);
        std::fs::write(&path, &text).expect("write");
        let (nginx_ok, nginx_line) = nginx_test(&nginx, &path);
        if nginx_ok {
            accepted += 1;
        } else if std::env::var_os("RGINX_RANDOM_DEBUG").is_some() {
            eprintln!("nginx: {nginx_line:?}");
        }
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
    // the generator must exercise both verdicts
    eprintln!("{accepted} of {cases} random configs valid, the rest rejected; rginx agreed on all");
    assert!(
        accepted > cases / 20 && accepted < cases - cases / 20,
        "{accepted} of {cases} valid"
    );
}
