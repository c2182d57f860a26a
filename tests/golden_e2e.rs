//! The golden cases of fixtures/plan, end to end: each case's config runs in
//! a real `rginx -c`, its request goes over a real socket, and what a real
//! backend receives (request line, headers, body) and the status the client
//! gets must be what nginx did when the case was recorded (CI re-records
//! them against nginx with `tests/oracle/capture.py --check`).
//!
//! plan_golden.rs checks the same cases against the evaluator alone; this
//! test adds everything between the socket and the plan: hyper's request
//! parsing, body handling, the upstream connection.

mod common;

use std::time::Duration;

use common::golden::{all, load, Case};
use common::wire::{send, RecordingBackend};
use common::*;

/// The documented differences (docs/directives.md, "Known differences")
/// taken out of a head: header names compared without case, and repeated
/// names grouped at their first place (hyper's header map keeps one entry
/// per name).
fn without_known_differences(head: &[String]) -> Vec<String> {
    let Some((line, headers)) = head.split_first() else {
        return Vec::new();
    };
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for h in headers {
        let (name, value) = h.split_once(':').unwrap_or((h, ""));
        let name = name.to_ascii_lowercase();
        match grouped.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value.to_string()),
            None => grouped.push((name, vec![value.to_string()])),
        }
    }
    let mut out = vec![line.clone()];
    for (name, values) in grouped {
        out.extend(values.into_iter().map(|v| format!("{name}:{v}")));
    }
    out
}

/// Cases where rginx answers differently today, each with the reason. They
/// all come from hyper's request parsing and `http::Uri`, which are stricter
/// than nginx (a head parser of our own in front of hyper is the fix, issue
/// 8); docs/directives.md lists them under "Known differences". The test
/// fails when one of them starts to pass, so the list stays true.
const KNOWN_GAPS: &[(&str, &str)] = &[
    (
        "hdr-invalid-name-dropped",
        "httparse rejects `X@At:` with 400; nginx drops the header",
    ),
    (
        "hdr-invalid-name-kept",
        "httparse rejects `X@At:` with 400; nginx passes it",
    ),
    (
        "odd-header-no-colon",
        "httparse rejects a line without a colon; nginx takes it as a name",
    ),
    (
        "hdr-client-value-whitespace",
        "httparse trims tabs around values; nginx keeps them",
    ),
    (
        "pp-nouri-unusual-chars",
        "http::Uri rejects raw `{`, `\"`, UTF-8; nginx passes them",
    ),
    (
        "pp-uri-raw-unusual-chars",
        "http::Uri rejects raw `{`, `\"`, UTF-8; nginx passes them",
    ),
    (
        "pp-uri-raw-unusual-chars-quoted",
        "http::Uri rejects raw `{`, `\"`, UTF-8; nginx passes them",
    ),
    (
        "pp-nouri-fragment-location",
        "http::Uri drops `#frag`; nginx passes it on",
    ),
];

fn run(case: &Case) -> Result<(), String> {
    let backend = RecordingBackend::start();
    let port = free_port();
    let ports = |s: &str| {
        s.replace("8081", &port.to_string())
            .replace("9001", &backend.addr().port().to_string())
    };
    let lines = |v: &[String]| v.iter().map(|l| ports(l)).collect::<Vec<_>>();
    let config = ports(&case.config);
    let _rginx = start_rginx(&format!("access_log off;\n{config}"), port);
    let mut request = lines(&case.request).join("\r\n").into_bytes();
    request.extend_from_slice(b"\r\n\r\n");
    if let Some(body) = &case.body {
        request.extend_from_slice(body);
    }
    let head_request = case.request.first().is_some_and(|l| l.starts_with("HEAD "));
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let response = send(addr, &request, head_request, Duration::from_secs(5))
        .ok_or("no response from rginx")?;

    let want = lines(&case.response);
    let want_status = want.first().map(String::as_str).unwrap_or("");
    if response.status().to_string() != want_status {
        return Err(format!(
            "status: nginx {want_status}, rginx {:?}",
            response.head.first()
        ));
    }
    if let Some(location) = want.iter().find_map(|l| l.strip_prefix("Location: ")) {
        if response.header("location") != Some(location) {
            return Err(format!(
                "Location: nginx {location}, rginx {:?}",
                response.header("location")
            ));
        }
    }

    let received = backend.take();
    let want_upstream = lines(&case.upstream);
    match (
        want_upstream.first().map(String::as_str),
        received.as_slice(),
    ) {
        (Some("(none)"), []) => Ok(()),
        (Some("(none)"), got) => Err(format!("nginx sent nothing; rginx sent {got:?}")),
        (_, [got]) => {
            let (a, b) = (
                without_known_differences(&want_upstream),
                without_known_differences(&got.head),
            );
            if a != b {
                return Err(format!("upstream head\n  nginx: {a:#?}\n  rginx: {b:#?}"));
            }
            let want_body = case.upstream_body.clone().unwrap_or_default();
            if got.body != want_body {
                return Err(format!(
                    "upstream body: nginx {:?}, rginx {:?}",
                    String::from_utf8_lossy(&want_body),
                    String::from_utf8_lossy(&got.body)
                ));
            }
            Ok(())
        }
        (_, got) => Err(format!("nginx sent one request; rginx sent {got:?}")),
    }
}

#[test]
fn golden_cases_end_to_end() {
    let paths = all();
    assert!(paths.len() >= 200, "{} cases", paths.len());
    // four at a time: each case starts its own rginx and backend
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let paths = &paths;
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for path in paths.iter().skip(w).step_by(4) {
                        let case = load(path);
                        let stem = case.name.trim_end_matches(".case");
                        let outcome = run(&case);
                        let judged =
                            against_listed(stem, outcome.is_ok(), KNOWN_GAPS, "KNOWN_GAPS", || {
                                format!(
                                    "{}: {}",
                                    case.name,
                                    outcome.clone().err().unwrap_or_default()
                                )
                            });
                        if let Err(e) = judged {
                            failures.push(e);
                        }
                    }
                    failures
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from nginx:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n\n")
    );
}
