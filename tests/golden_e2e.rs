//! The golden cases of fixtures/plan, end to end: each case's config runs in
//! a real `rginx -c`, its request goes over a real socket, and what a real
//! backend receives (request line, headers, body) and the status the client
//! gets must be what nginx did when the case was recorded (CI re-records
//! them against nginx with `tests/oracle/capture.py --check`).
//!
//! plan_golden.rs checks the same cases against the evaluator alone; this
//! test adds everything between the socket and the plan: rginx's request
//! parsing, body handling, the upstream connection. The head the backend
//! gets must be nginx's byte for byte.

mod common;

use std::time::Duration;

use common::golden::{all, load, Case};
use common::wire::{send, RecordingBackend};
use common::*;

/// Cases where rginx answers differently, each with the reason and rginx's
/// answer (the case's failure as this test reports it, ports as `PORT`);
/// none since rginx reads request heads itself, as nginx does.
/// docs/directives.md lists such differences under "Known differences".
/// The test fails when one of them starts to pass or when rginx's answer
/// changes, so the list stays true.
const KNOWN_GAPS: &[Listed] = &[];

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
            // byte for byte: names in their case, lines in their order
            let (a, b) = (&want_upstream, &got.head);
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
                        let failure = outcome.as_ref().err().map_or("", String::as_str);
                        let answer = mask_ports(failure);
                        let judged = against_listed(
                            stem,
                            outcome.is_ok(),
                            &answer,
                            KNOWN_GAPS,
                            "KNOWN_GAPS",
                            || format!("{}: {failure}", case.name),
                        );
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
