//! A configuration given as text, parsed and validated as rginx does
//! (addresses resolved literally, default build options), up to its
//! compiled [`Runtime`], and the requests to ask it about.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::SystemTime;

use rginx_config::Parsed;
use rginx_core::plan::{RequestHead, Runtime};
use rginx_core::{build, BuildOptions, Checked, LiteralResolver};

/// `text` parsed as the file `name` and validated: the parse (whose
/// `config` renders the diagnostics) and the model with its diagnostics.
pub fn check(name: &str, text: &str) -> (Parsed, Checked) {
    let parsed = rginx_config::parse_str(Path::new(name), text);
    let checked = build(&parsed, &LiteralResolver, BuildOptions::default());
    (parsed, checked)
}

/// The runtime of a whole configuration, which must be valid: panics with
/// its diagnostics, or the compile error, otherwise.
pub fn runtime(text: &str) -> Runtime {
    let (_, checked) = check("t.conf", text);
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    match Runtime::new(&checked.model, "h") {
        Ok(runtime) => runtime,
        Err(e) => panic!("the runtime: {e}"),
    }
}

/// [`runtime`] of `events {}` and an `http` block holding `http`.
pub fn http_runtime(http: &str) -> Runtime {
    runtime(&format!("events {{}}\nhttp {{\n{http}\n}}\n"))
}

/// `prefixes` prefix locations (`/section0/`, `/section1/` …) and then
/// `regexes` regex ones (`~ ^/re0/(\d+)$` … setting `X-Id` to the
/// capture), each proxying to `pass`, one a line: the many locations of
/// the matching tests and benchmarks.
pub fn many_locations(prefixes: usize, regexes: usize, pass: &str) -> String {
    let mut out = String::new();
    for i in 0..prefixes {
        let _ = writeln!(out, "location /section{i}/ {{ proxy_pass {pass}; }}");
    }
    for i in 0..regexes {
        let _ = writeln!(
            out,
            "location ~ ^/re{i}/(\\d+)$ {{ proxy_pass {pass}; proxy_set_header X-Id $1; }}"
        );
    }
    out
}

/// A `GET` of `target` over HTTP/1.1 with these header lines, arriving
/// on 127.0.0.1:8080 from 127.0.0.1:50000 at the epoch.
pub fn request<'a>(target: &'a str, headers: &'a [(&'a str, &'a str)]) -> RequestHead<'a> {
    RequestHead {
        method: "GET",
        target,
        minor_version: 1,
        headers,
        local: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
        remote: SocketAddr::from((Ipv4Addr::LOCALHOST, 50000)),
        time: SystemTime::UNIX_EPOCH,
        request_id: [7; 16],
        body: None,
        upstreams: None,
        connection: Default::default(),
        tls: None,
    }
}

#[cfg(test)]
mod tests {
    use rginx_core::locate::LocationMatch;
    use rginx_core::plan::Decision;

    use super::*;

    #[test]
    fn many_locations_are_matched() {
        let rt = http_runtime(&format!(
            "server {{ listen 127.0.0.1:8080;\n{}}}",
            many_locations(3, 2, "http://127.0.0.1:9000")
        ));
        let headers = [("Host", "example.com")];
        let hit = rt.match_location(&request("/section2/x", &headers));
        assert!(matches!(hit, Some((_, LocationMatch::Found(_)))));
        let Decision::Proxy(plan) = rt.decide(&request("/re1/42", &headers)) else {
            panic!("not proxied");
        };
        assert!(format!("{plan:?}").contains("42"), "{plan:?}");
    }

    #[test]
    #[should_panic(expected = "unknown directive")]
    fn an_invalid_configuration_panics_with_its_diagnostics() {
        runtime("events {}\nnope;\n");
    }
}
