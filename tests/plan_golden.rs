//! Golden cases recorded from real nginx (fixtures/plan/README.md): for each
//! configuration and request, the plan rginx computes must be the request
//! nginx actually sent to the backend, or the answer nginx gave itself.

mod common;

use common::golden::{load, Case};

use std::path::Path;

use rginx_core::plan::{parse_request_line, Decision, RequestHead, Runtime};
use rginx_core::{build, BuildOptions, LiteralResolver};

fn run(case: &Case) -> Result<(), String> {
    let text = format!(
        "events {{}}\nhttp {{\naccess_log off;\n{}\n}}\n",
        case.config
    );
    let parsed = rginx_config::parse_str(Path::new("case.conf"), &text);
    let checked = build(&parsed, &LiteralResolver, BuildOptions::default());
    if checked.has_errors() {
        return Err(format!(
            "config rejected: {:?}",
            checked
                .diagnostics
                .iter()
                .map(|d| &d.message)
                .collect::<Vec<_>>()
        ));
    }
    let runtime = Runtime::new(&checked.model, "rginx-test").map_err(|e| e.to_string())?;
    let (line, header_lines) = case.request.split_first().ok_or("empty request")?;
    let expected_status = case.response.first().map(String::as_str).unwrap_or("");
    let (method, target, minor_version) = match parse_request_line(line) {
        Ok(parts) => parts,
        Err(status)
            if case.upstream.first().map(String::as_str) == Some("(none)")
                && expected_status == status.to_string() =>
        {
            return Ok(());
        }
        Err(status) => {
            return Err(format!(
                "request line rejected with {status}; nginx: {:?}",
                case.response
            ))
        }
    };
    // nginx's header parsing: a line without a colon is a name with an
    // empty value; spaces around the value are dropped, tabs are kept
    let headers: Vec<(&str, &str)> = header_lines
        .iter()
        .map(|l| match l.split_once(':') {
            Some((n, v)) => (n, v.trim_matches(' ')),
            None => (l.as_str(), ""),
        })
        .collect();
    let head = RequestHead {
        method,
        target,
        minor_version,
        headers: &headers,
        local: "127.0.0.1:8081".parse().unwrap(),
        remote: "127.0.0.1:40000".parse().unwrap(),
        time: std::time::SystemTime::now(),
        request_id: [7; 16],
        body: None,
        upstreams: None,
        connection: Default::default(),
        tls: None,
    };
    let decision = runtime.decide(&head);
    match (&decision, case.upstream.first().map(String::as_str)) {
        (Decision::Proxy(plan), Some(first)) if first != "(none)" => {
            // a de-chunked body's length is known once it is read: take it
            // from what nginx sent
            let length = case
                .upstream
                .iter()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.parse().ok());
            let got: Vec<String> = plan
                .head(length)
                .trim_end_matches("\r\n")
                .split("\r\n")
                .map(str::to_string)
                .collect();
            if got != case.upstream {
                return Err(format!(
                    "upstream request differs\n  nginx: {:#?}\n  rginx: {got:#?}",
                    case.upstream
                ));
            }
            Ok(())
        }
        (Decision::Moved { status, location }, Some("(none)")) => {
            let location = &location.value;
            let want_location = case
                .response
                .iter()
                .find_map(|l| l.strip_prefix("Location: "));
            if expected_status != status.to_string() || want_location != Some(location.as_str()) {
                return Err(format!(
                    "redirect differs: nginx {:?}, rginx 301 {location}",
                    case.response
                ));
            }
            Ok(())
        }
        (Decision::Respond(status), Some("(none)")) => {
            if expected_status != status.to_string() {
                return Err(format!(
                    "status differs: nginx {expected_status}, rginx {status}"
                ));
            }
            Ok(())
        }
        (other, _) => Err(format!(
            "nginx: upstream {:?} response {:?}; rginx: {other:?}",
            case.upstream, case.response
        )),
    }
}

#[test]
fn plans_match_what_nginx_sent() {
    let names = common::golden::all();
    let mut failures = Vec::new();
    for path in &names {
        let case = load(path);
        if let Err(e) = run(&case) {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n\n")
    );
}
