//! Regexes against real nginx: regex locations, a `server_name` regex and
//! a `map` regex, one configuration run by nginx and by rginx in front of
//! the echo backend, and a generated set of requests (Unicode bytes that
//! case-fold to ASCII, newlines before `$`, PCRE-only syntax, captures,
//! bytes that are not UTF-8, a backtracking pattern at PCRE2's match
//! limit), and the regex locations of the fixture corpus (the published
//! configurations of fixtures/realworld) against request paths of the
//! kinds they serve. For each request the status line and what the backend was told
//! (which location answered, with which captures) must be nginx's.
//! `RGINX_DEBUG=1` prints rginx's answer to each.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use rginx_proxy::echo::EchoBackend;

/// The locations: each tells the backend its name and captures. The
/// `/admin/` prefix is what a `deny` or `auth_basic` would guard: a
/// regex must not take a request for it away through Unicode folding.
fn http_body(port: u16, backend: std::net::SocketAddr) -> String {
    let pass = |name: &str, extra: &str| {
        format!("proxy_pass http://{backend}; proxy_set_header X-Loc \"{name}\"; {extra}")
    };
    let caps = "proxy_set_header X-Cap \"[$1|$2|$3]\";";
    let locations = [
        ("/admin/", "prefix-admin", ""),
        ("~* \\.(css|js)$", "static", caps),
        ("~* ^/kelvin$", "kelvin", ""),
        ("~ \\.php$", "php", ""),
        ("~ ^/num/(\\d+)/(\\w+)$", "num", caps),
        ("~ ^/dot/(.)$", "dot", caps),
        ("~ ^/la/(?!secret)(\\w+)", "lookahead", caps),
        ("~ ^/br/(\\w)\\1$", "backref", caps),
        ("~ \\Q.x+\\E$", "quoted", ""),
        ("~ ^/pos/a++b", "possessive", ""),
        (
            "~ ^/u/(?<user>[a-z]+)",
            "named",
            "proxy_set_header X-User \"$user\";",
        ),
        ("~* ^/CASE/(\\w+)", "caseless", caps),
        ("~ ^/r1/(a+)+$", "redos", ""),
        ("/m/", "map", "proxy_set_header X-Map \"$mapped\";"),
        ("/h/", "host", "proxy_set_header X-Sub \"$sub\";"),
        ("/", "root", ""),
    ];
    let mut out = String::from(
        "map $uri $mapped {\n    default none;\n    ~*^/m/(?<mm>[A-Z]+)$ \"got-$mm\";\n    ~^/m/(a+)+$ redos;\n}\n",
    );
    out.push_str(&format!(
        "server {{\n    listen 127.0.0.1:{port};\n    server_name ~^(?<sub>[A-Z]+)\\.example$;\n"
    ));
    for (matcher, name, extra) in locations {
        out.push_str(&format!(
            "    location {matcher} {{ {} }}\n",
            pass(name, extra)
        ));
    }
    out.push_str("}\n");
    out
}

/// The request targets tried: a few stems, each with tails that are
/// Unicode look-alikes, newlines, case changes and raw bytes.
fn targets() -> Vec<String> {
    let stems = [
        "/admin/x", "/x", "/kelvin", "/KELVIN", "/num/12", "/dot", "/la", "/br", "/pos", "/u",
        "/case", "/CASE", "/m", "/",
    ];
    let tails = [
        "",
        ".css",
        ".CSS",
        ".c%C5%BF%C5%BF",
        ".j%C5%BF",
        ".php",
        ".php%0a",
        ".php%0a%0a",
        ".PHP",
        ".x+",
        ".xx",
        "/abc",
        "/%C3%A9",
        "/%D9%A3",
        "/%EF%BC%91",
        "/%FF",
        "/a",
        "/aa",
        "/ab",
        "/secret",
        "/other",
        "/aaab",
        "/ABC",
        "/bob",
        "/%E2%84%AAelvin",
        "elvin",
    ];
    let mut set = BTreeSet::new();
    for stem in stems {
        for tail in tails {
            set.insert(format!("{stem}{tail}"));
        }
    }
    for extra in [
        "/%E2%84%AAelvin",
        "/kelvin%0a",
        "/num/%D9%A3/x",
        "/num/1/%C3%A9",
        "/r1/aaaa",
        "/m/aaaa",
        "/m/ABC",
        "/m/abc",
    ] {
        set.insert(extra.to_string());
    }
    set.into_iter().collect()
}

/// What a request got: the status line and the header lines the backend
/// reported receiving that the locations set.
fn ask(port: u16, target: &str, host: &str) -> String {
    let (status, body) = exchange(
        port,
        &format!("GET {target} HTTP/1.0\r\nHost: {host}\r\n\r\n"),
    );
    let status = if status.is_empty() {
        "(nothing)".into()
    } else {
        status
    };
    // the echo backend's JSON view: each header line as [name, value]
    let view: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let lines = view["headers"].as_array().cloned().unwrap_or_default();
    let mut seen: Vec<String> = lines
        .iter()
        .filter_map(|pair| {
            let name = pair[0].as_str()?;
            ["X-Loc", "X-Cap", "X-User", "X-Map", "X-Sub"]
                .contains(&name)
                .then(|| format!("{name}: {}", pair[1].as_str().unwrap_or("")))
        })
        .collect();
    seen.insert(0, status);
    seen.join(" ; ")
}

/// nginx and rginx serving the same configuration, made for each's port.
struct Pair(ServerPair);

impl Pair {
    fn start(nginx: &std::path::Path, config: impl Fn(u16) -> String) -> Pair {
        Pair(ServerPair::start(nginx, config))
    }

    /// Asks both and judges the answers against a list of known
    /// differences (`listed`, named `list`); a wrong answer is pushed to
    /// `out`.
    fn compare(
        &self,
        out: &mut Vec<String>,
        case: &str,
        target: &str,
        host: &str,
        (listed, list): (&[Listed], &str),
    ) {
        let (a, b) = (
            ask(self.0.nginx_port, target, host),
            ask(self.0.rginx_port, target, host),
        );
        if std::env::var_os("RGINX_DEBUG").is_some() {
            eprintln!("{case}: {b}");
        }
        if let Err(e) = against_listed(case, a == b, &b, listed, list, || {
            format!("{case}:\n  nginx: {a}\n  rginx: {b}")
        }) {
            out.push(e);
        }
    }
}

/// Known differences: (case, why, rginx's own answer).
const LISTED: &[Listed] = &[(
    "/dot/%FF (Host abc.example)",
    "a capture of a byte that is not UTF-8 is text in rginx (U+FFFD, EF BF BD, in \
     `X-Cap`), where nginx sends the raw byte (which the echo backend refuses: 502); \
     docs/directives.md lists variables that hold U+FFFD",
    "HTTP/1.1 200 OK ; X-Loc: dot ; X-Cap: [\u{fffd}||]",
)];

#[test]
fn regexes_match_as_nginx_matches_them() {
    let Some(nginx) = nginx() else { return };
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let pair = Pair::start(&nginx, |port| http_body(port, backend.addr()));
    let mut differences = Vec::new();
    let mut asked = 0;
    let hosts = ["abc.example", "ABC.example", "x.other", "abc.exampl%C5%BF"];
    for target in targets() {
        for host in if target.starts_with("/h") {
            &hosts[..]
        } else {
            &hosts[..1]
        } {
            asked += 1;
            let case = format!("{target} (Host {host})");
            pair.compare(&mut differences, &case, &target, host, (LISTED, "LISTED"));
        }
    }
    for target in ["/h/", "/h/x"] {
        for host in hosts {
            asked += 1;
            let case = format!("{target} (Host {host})");
            pair.compare(&mut differences, &case, target, host, (LISTED, "LISTED"));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {asked} requests differ:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

/// Every regex location of the fixture corpus (fixtures/realworld, the
/// published configurations, and fixtures/valid), as written: `~` or `~*`
/// and the pattern word with its quotes. Commented lines are skipped.
fn fixture_regexes() -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut BTreeSet<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            for line in text.lines().map(str::trim_start) {
                if line.starts_with('#') {
                    continue;
                }
                let Some(rest) = line.strip_prefix("location") else {
                    continue;
                };
                let rest = rest.trim_start();
                let (op, rest) = match rest.split_once(char::is_whitespace) {
                    Some((op @ ("~" | "~*"), rest)) => (op, rest.trim_start()),
                    _ => continue,
                };
                let word = if let Some(quoted) = rest.strip_prefix('"') {
                    match quoted.find('"') {
                        Some(end) => format!("\"{}\"", &quoted[..end]),
                        None => continue,
                    }
                } else {
                    rest.split(|c: char| c.is_whitespace() || c == '{')
                        .next()
                        .unwrap_or("")
                        .to_string()
                };
                if !word.is_empty() {
                    out.insert(format!("{op} {word}"));
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(&root().join("fixtures/realworld"), &mut out);
    walk(&root().join("fixtures/valid"), &mut out);
    out.into_iter().collect()
}

/// Known differences in the corpus run: (case, why, rginx's own answer).
const CORPUS_LISTED: &[Listed] = &[
    (
        "~ ^/([^/?&:'\"]+)$ on /x.php%0a",
        "the capture holds a newline: nginx sends `X-Cap: [x.php`, a line break and \
         `|]` to the backend (a header injection); rginx leaves a header whose value \
         has CR or LF out of the upstream request (docs/security.md)",
        "HTTP/1.1 200 OK ; X-Loc: regex",
    ),
    (
        "~ ^/([^/?&:'\"]+)$ on /x.css%0a",
        "as /x.php%0a: a newline in the capture",
        "HTTP/1.1 200 OK ; X-Loc: regex",
    ),
    (
        "~ ^/([^/?&:'\"]+)$ on /%FFx.css",
        "a capture of a byte that is not UTF-8 is text in rginx (U+FFFD); nginx sends \
         the raw byte, which the echo backend refuses (502)",
        "HTTP/1.1 200 OK ; X-Loc: regex ; X-Cap: [\u{fffd}x.css|]",
    ),
];

/// The corpus's regexes, each in a server of its own (chosen by `Host`),
/// through nginx and rginx: which answered, and the captures, for request
/// paths of the kinds these configurations serve, with Unicode and
/// case variants.
#[test]
fn the_corpus_regexes_match_as_in_nginx() {
    let Some(nginx) = nginx() else { return };
    let regexes = fixture_regexes();
    assert!(
        regexes.len() > 40,
        "{} regexes in the fixtures",
        regexes.len()
    );
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let config = |port: u16| {
        let mut out = String::new();
        for (i, matcher) in regexes.iter().enumerate() {
            out.push_str(&format!(
                "server {{ listen 127.0.0.1:{port}; server_name r{i};\n  location {matcher} {{ proxy_pass http://{b}; proxy_set_header X-Loc \"regex\"; proxy_set_header X-Cap \"[$1|$2]\"; }}\n  location / {{ proxy_pass http://{b}; proxy_set_header X-Loc \"none\"; }}\n}}\n",
                b = backend.addr()
            ));
        }
        out
    };
    let pair = Pair::start(&nginx, config);
    let paths = [
        "/",
        "/index.php",
        "/x.php",
        "/x.PHP",
        "/x.php/y",
        "/x.php%0a",
        "/remote.php/dav/files",
        "/.well-known/acme-challenge/t",
        "/.git/config",
        "/.htaccess",
        "/a/.ht",
        "/robots.txt",
        "/static/app.js",
        "/static/app.JS",
        "/assets/app.css",
        "/assets/app.c%C5%BF%C5%BF",
        "/img/12.png",
        "/img/%D9%A3.png",
        "/img/%EF%BC%91.png",
        "/x.j%C5%BF",
        "/logo.svg",
        "/api/v1/videos/upload",
        "/api/v1/videos/x/source/replace-resumable",
        "/api/v4/websocket",
        "/_matrix/client/v3/sync",
        "/_synapse/client/x",
        "/plugins/p/ws/",
        "/media/theme_customization/a.xml",
        "/setup/index.php",
        "/setup/pub/x",
        "/update/x",
        "/uploads/a.jpg",
        "/ADMIN/backups/",
        "/admin/backups/x",
        "/client/assets/images/logo.svg",
        "/client/app.woff2",
        "/letter_avatar/x",
        "/emoji/a.png",
        "/_emoji/a.png",
        "/room/config.js",
        "/room/http-bind",
        "/room/xmpp-websocket",
        "/libs/x",
        "/%CE%B1lpha",
        "/%CE%91",
        "/a.bak",
        "/a.conf~",
        "/#a#",
        "/app.abc123.js",
        "/cron.php",
        "/js/container_x_preview.js",
        "/404.html",
        "/re/x",
        "/regex/x",
        "/dup",
        "/%FFx.css",
        "/x.css%0a",
        "/pub/media/customer/a",
    ];
    let mut differences = Vec::new();
    for (i, regex) in regexes.iter().enumerate() {
        let host = format!("r{i}");
        for path in paths {
            let case = format!("{regex} on {path}");
            pair.compare(
                &mut differences,
                &case,
                path,
                &host,
                (CORPUS_LISTED, "CORPUS_LISTED"),
            );
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} requests differ:\n{}",
        differences.len(),
        regexes.len() * paths.len(),
        differences.join("\n")
    );
}

/// A pattern that backtracks past PCRE2's match limit: nginx answers 500
/// and logs an `[alert]`; so does rginx, with the same line.
#[test]
fn a_match_at_the_limit_is_a_500_with_nginx_alert() {
    let Some(nginx) = nginx() else { return };
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let pair = Pair::start(&nginx, |port| http_body(port, backend.addr()));
    let target = format!("/r1/{}!", "a".repeat(40));
    let (a, b) = (
        ask(pair.0.nginx_port, &target, "abc.example"),
        ask(pair.0.rginx_port, &target, "abc.example"),
    );
    assert_eq!(a, b);
    assert!(a.starts_with("HTTP/1.1 500"), "{a}");
    let alert = format!("pcre2_match() failed: -47 on \"{target}\" using \"^/r1/(a+)+$\"");
    let nginx_log = std::fs::read_to_string(pair.0.nginx.error_log()).unwrap_or_default();
    assert!(nginx_log.contains(&alert), "nginx: {nginx_log}");
    let mut rginx_log = String::new();
    for _ in 0..50 {
        rginx_log =
            std::fs::read_to_string(pair.0.rginx.1 .0.join("stderr.log")).unwrap_or_default();
        if rginx_log.contains(&alert) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let line = rginx_log.lines().find(|l| l.contains(&alert));
    let line = line.unwrap_or_else(|| panic!("rginx: {rginx_log}"));
    assert!(line.contains("[alert]"), "{line}");
    assert!(
        line.contains(", client: 127.0.0.1, server: ~^(?<sub>[A-Z]+)\\.example$, request: \"GET"),
        "{line}"
    );
}
