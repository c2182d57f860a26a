//! Hostile requests, sent as raw bytes to nginx and to rginx on the same
//! configuration in front of a backend that records what reaches it. For
//! every case the status code and the requests the backend received (request
//! line, header lines compared without case or order, body) must be the
//! same, except for the cases listed in `DIFFERENCES`, each with its reason,
//! where rginx deliberately or knowingly answers otherwise (the test fails
//! when one of them starts to match, so the list stays true).
//! `RGINX_DEBUG=1` prints every case's outcome.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use std::io::Write;
use std::net::TcpStream;

use common::wire::{read_message, Message, RecordingBackend};
use common::*;

/// One family of cases: a name and (case name, raw request bytes).
struct Family {
    name: &'static str,
    cases: &'static [(&'static str, &'static [u8])],
}

const FAMILIES: &[Family] = &[
    Family {
        name: "content-length with transfer-encoding",
        cases: &[
            ("te-then-cl", b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
            ("cl-then-te", b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
            ("te-cl-zero", b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n0\r\n\r\n"),
            ("te-upper-case", b"POST /a HTTP/1.1\r\nHost: h\r\nTRANSFER-ENCODING: CHUNKED\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
            ("te-http10", b"POST /a HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
        ],
    },
    Family {
        name: "conflicting or repeated content-length",
        cases: &[
            ("two-equal", b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"),
            ("two-different", b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
            ("comma-list", b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc"),
            ("negative", b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n"),
            ("not-a-number", b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n"),
            ("plus-sign", b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc"),
            ("overflow", b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
        ],
    },
    Family {
        name: "malformed chunked bodies",
        cases: &[
            ("bad-size", b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"),
            ("size-overflow", b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nabc\r\n0\r\n\r\n"),
            ("missing-crlf-after-data", b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n"),
            ("extension", b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;name=value\r\nabc\r\n0\r\n\r\n"),
            ("trailer", b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n"),
            ("negative-size", b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n"),
        ],
    },
    Family {
        name: "unsupported transfer codings",
        cases: &[
            ("gzip", b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"),
            ("gzip-chunked", b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
            ("identity", b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n"),
            ("two-te-lines", b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
        ],
    },
    Family {
        name: "whitespace before the colon",
        cases: &[
            ("space", b"GET /a HTTP/1.1\r\nHost: h\r\nX-Ws : v\r\n\r\n"),
            ("tab", b"GET /a HTTP/1.1\r\nHost: h\r\nX-Ws\t: v\r\n\r\n"),
            ("content-length", b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length : 3\r\n\r\nabc"),
            ("host", b"GET /a HTTP/1.1\r\nHost : h\r\n\r\n"),
        ],
    },
    Family {
        name: "tabs around framing values",
        cases: &[
            ("te-tab-before", b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\tchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
            ("te-tab-after", b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\t\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
            ("cl-tab-before", b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length:\t3\r\n\r\nabc"),
            ("host-tab-before", b"GET /a HTTP/1.1\r\nHost:\th\r\n\r\n"),
            ("host-tab-after", b"GET /a HTTP/1.1\r\nHost: h\t\r\n\r\n"),
        ],
    },
    Family {
        name: "connection tokens",
        cases: &[
            ("connection-keep-alive-close", b"GET /a HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n"),
            ("http10-keep-alive", b"GET /a HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\nHost: h\r\n\r\n"),
        ],
    },
    Family {
        name: "obsolete line folding",
        cases: &[
            ("space-fold", b"GET /a HTTP/1.1\r\nHost: h\r\nX-Fold: a\r\n b\r\n\r\n"),
            ("tab-fold", b"GET /a HTTP/1.1\r\nHost: h\r\nX-Fold: a\r\n\tb\r\n\r\n"),
            ("fold-first-line", b"GET /a HTTP/1.1\r\n Host: h\r\n\r\n"),
        ],
    },
    Family {
        name: "bare LF line endings",
        cases: &[
            ("all-lf", b"GET /a HTTP/1.1\nHost: h\nX-Lf: v\n\n"),
            ("mixed", b"GET /a HTTP/1.1\r\nHost: h\nX-Lf: v\r\n\n"),
            ("lf-body", b"POST /a HTTP/1.1\nHost: h\nContent-Length: 3\n\nabc"),
        ],
    },
    Family {
        name: "host",
        cases: &[
            ("missing-http11", b"GET /a HTTP/1.1\r\n\r\n"),
            ("missing-http10", b"GET /a HTTP/1.0\r\n\r\n"),
            ("repeated", b"GET /a HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n"),
            ("slash", b"GET /a HTTP/1.1\r\nHost: a/b\r\n\r\n"),
            ("open-bracket", b"GET /a HTTP/1.1\r\nHost: [::1\r\n\r\n"),
            ("empty", b"GET /a HTTP/1.1\r\nHost:\r\n\r\n"),
            ("dot-dot", b"GET /a HTTP/1.1\r\nHost: a..b\r\n\r\n"),
            ("trailing-dot", b"GET /a HTTP/1.1\r\nHost: h.\r\n\r\n"),
        ],
    },
    Family {
        name: "bad method characters",
        cases: &[
            ("lower-case", b"get /a HTTP/1.1\r\nHost: h\r\n\r\n"),
            ("at-sign", b"G@T /a HTTP/1.1\r\nHost: h\r\n\r\n"),
            ("digit", b"GE1 /a HTTP/1.1\r\nHost: h\r\n\r\n"),
            ("underscore", b"MY_METHOD /a HTTP/1.1\r\nHost: h\r\n\r\n"),
            ("tab-separator", b"GET\t/a HTTP/1.1\r\nHost: h\r\n\r\n"),
        ],
    },
    Family {
        name: "HTTP versions",
        cases: &[
            ("http2", b"GET /a HTTP/2.0\r\nHost: h\r\n\r\n"),
            ("http3", b"GET /a HTTP/3.0\r\nHost: h\r\n\r\n"),
            ("http12", b"GET /a HTTP/1.2\r\nHost: h\r\n\r\n"),
            ("no-minor", b"GET /a HTTP/1\r\nHost: h\r\n\r\n"),
            ("lower-case", b"GET /a http/1.1\r\nHost: h\r\n\r\n"),
            ("http09", b"GET /a\r\n"),
        ],
    },
    Family {
        name: "NUL and control bytes",
        cases: &[
            ("nul-in-value", b"GET /a HTTP/1.1\r\nHost: h\r\nX-Nul: a\0b\r\n\r\n"),
            ("nul-in-name", b"GET /a HTTP/1.1\r\nHost: h\r\nX-\0Nul: v\r\n\r\n"),
            ("ctl-in-value", b"GET /a HTTP/1.1\r\nHost: h\r\nX-Ctl: a\x01b\r\n\r\n"),
            ("del-in-value", b"GET /a HTTP/1.1\r\nHost: h\r\nX-Del: a\x7fb\r\n\r\n"),
            ("nul-in-uri", b"GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n"),
            ("cr-in-value", b"GET /a HTTP/1.1\r\nHost: h\r\nX-Cr: a\rb\r\n\r\n"),
            ("not-utf8-value", b"GET /a HTTP/1.1\r\nHost: h\r\nX-Bytes: \xff\xfe caf\xc3\xa9\r\n\r\n"),
            ("latin1-cookie", b"GET /a HTTP/1.1\r\nHost: h\r\nCookie: n=\xe9t\xe9\r\n\r\n"),
        ],
    },
    Family {
        name: "absolute-form targets",
        cases: &[
            ("host-wins", b"GET http://target.example/x?y=1 HTTP/1.1\r\nHost: header.example\r\n\r\n"),
            ("with-port", b"GET http://target.example:8080/x HTTP/1.1\r\nHost: h\r\n\r\n"),
            ("https", b"GET https://target.example/x HTTP/1.1\r\nHost: h\r\n\r\n"),
            ("no-path", b"GET http://target.example HTTP/1.1\r\nHost: h\r\n\r\n"),
            ("other-scheme", b"GET ftp://target.example/x HTTP/1.1\r\nHost: h\r\n\r\n"),
        ],
    },
    Family {
        name: "dot-segments",
        cases: &[
            ("above-root", b"GET /../x HTTP/1.1\r\nHost: h\r\n\r\n"),
            ("climb", b"GET /a/../../x HTTP/1.1\r\nHost: h\r\n\r\n"),
            ("encoded", b"GET /%2e%2e/x HTTP/1.1\r\nHost: h\r\n\r\n"),
            ("encoded-upper", b"GET /a/%2E%2E/%2e%2E/x HTTP/1.1\r\nHost: h\r\n\r\n"),
            ("inside", b"GET /a/./b/../c HTTP/1.1\r\nHost: h\r\n\r\n"),
            ("backslash", b"GET /a/..\\..\\x HTTP/1.1\r\nHost: h\r\n\r\n"),
        ],
    },
    Family {
        name: "encoded CR and LF into header templates",
        cases: &[
            ("crlf", b"GET /inject%0d%0aX-Injected:%20yes HTTP/1.1\r\nHost: h\r\n\r\n"),
            ("lf", b"GET /inject%0aX-Injected:%20yes HTTP/1.1\r\nHost: h\r\n\r\n"),
            ("in-args", b"GET /inject?a=%0d%0aX-Injected:%20yes HTTP/1.1\r\nHost: h\r\n\r\n"),
        ],
    },
    Family {
        name: "pipelined requests",
        cases: &[
            ("two-gets", b"GET /p1 HTTP/1.1\r\nHost: h\r\n\r\nGET /p2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"),
            ("post-then-get", b"POST /p1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /p2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"),
            ("bad-second", b"GET /p1 HTTP/1.1\r\nHost: h\r\n\r\nGET /p2 HTTP/2.0\r\nHost: h\r\n\r\n"),
            // every pipelined head gets nginx's checks, also one that came
            // in the same write as the one before (issue 13's security bug)
            ("cl-and-te-second", b"GET /p1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /p2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            ("two-lengths-second", b"GET /p1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /p2 HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
            ("gzip-coding-second", b"GET /p1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /p2 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"),
            ("after-chunked-body", b"POST /p1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nPOST /p2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            ("after-sized-body", b"POST /p1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcPOST /p2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            ("smuggled-in-chunked", b"POST /p1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\nGET /p2 HTTP/1.1\r\nHost: h\r\n\r\n"),
            ("three-good", b"GET /p1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /p2 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\nGET /p3 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"),
        ],
    },
    Family {
        name: "h2c and HTTP/2 on a plain port",
        cases: &[
            ("h2c-upgrade", b"GET /a HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"),
            ("h2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        ],
    },
    Family {
        name: "TLS and binary garbage",
        cases: &[
            ("tls-client-hello", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\r\n\r\n"),
            ("binary", b"\x00\x01\x02\x03\xff\xfe\xfd\r\n\r\n"),
            ("empty-lines-only", b"\r\n\r\n\r\n\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n"),
            ("space-first", b" GET /a HTTP/1.1\r\nHost: h\r\n\r\n"),
        ],
    },
];

/// Pipelined heads past nginx's buffer limits (large_client_header_buffers
/// 4 8k), too large to write out: the family's name and (case, bytes).
fn oversized_pipelined() -> (&'static str, Vec<(&'static str, Vec<u8>)>) {
    let first = b"GET /p1 HTTP/1.1\r\nHost: h\r\n\r\n".to_vec();
    let with = |middle: Vec<u8>| [first.clone(), middle].concat();
    let header_line = |len: usize| {
        let mut head = b"GET /p2 HTTP/1.1\r\nHost: h\r\nX-Big: ".to_vec();
        head.extend(std::iter::repeat_n(b'a', len));
        head.extend_from_slice(b"\r\n\r\n");
        with(head)
    };
    let mut long_line = b"GET /p2".to_vec();
    long_line.extend(std::iter::repeat_n(b'a', 9000));
    long_line.extend_from_slice(b" HTTP/1.1\r\nHost: h\r\n\r\n");
    let mut many_lines = b"GET /p2 HTTP/1.1\r\nHost: h\r\n".to_vec();
    for i in 0..40 {
        many_lines.extend_from_slice(format!("X-Line-{i}: {}\r\n", "b".repeat(1000)).as_bytes());
    }
    many_lines.extend_from_slice(b"\r\n");
    (
        "pipelined heads past the buffer limits",
        vec![
            ("9k-header-line", header_line(9000)),
            ("300k-header-line", header_line(300_000)),
            ("9k-request-line", with(long_line)),
            ("40k-of-header-lines", with(many_lines)),
        ],
    )
}

/// Cases where rginx answers otherwise, why (docs/security.md), and what
/// rginx answers: `(statuses, backend's view)` as a case's outcome prints,
/// with the backend's address as `backend`. The test fails when one of them
/// starts to match nginx or when rginx's own answer changes.
const DIFFERENCES: &[Listed] = &[
    (
        "HTTP versions/http09",
        "HTTP/0.9 (no version, no headers) is not served: the line is a whole head, answered with a 400 at once; nginx still serves it",
        "([400], [])",
    ),
    (
        "encoded CR and LF into header templates/crlf",
        "a header whose value would hold CR or LF (here $uri decoded) is not sent; nginx sends the bytes and the backend reads an injected header",
        r#"([200], ["GET /inject%0d%0aX-Injected:%20yes HTTP/1.0 | X-Host: h | Host: backend | Connection: close | "])"#,
    ),
    (
        "encoded CR and LF into header templates/lf",
        "a header whose value would hold CR or LF is not sent; nginx sends the bytes raw",
        r#"([200], ["GET /inject%0aX-Injected:%20yes HTTP/1.0 | X-Host: h | Host: backend | Connection: close | "])"#,
    ),
];

/// The backend's view of one request: its head's bytes as they came
/// (names in their case, lines in their order, bytes that are not text
/// escaped) and its body.
fn backend_view(m: &Message) -> String {
    format!(
        "{} | {}",
        m.raw_head
            .escape_ascii()
            .to_string()
            .replace("\\r\\n", " | "),
        String::from_utf8_lossy(&m.body)
    )
}

/// What a case did: the status codes the client got (one per answer on
/// the connection, pipelined requests get several) and what reached the
/// backend.
fn run(addr: SocketAddr, backend: &RecordingBackend, request: &[u8]) -> (Vec<u16>, Vec<String>) {
    backend.take();
    let mut statuses = Vec::new();
    if let Ok(mut c) = TcpStream::connect(addr) {
        let _ = c.set_read_timeout(Some(Duration::from_secs(3)));
        let _ = c.write_all(request);
        let mut leftover = Vec::new();
        while let Some(m) = read_message(&mut c, &mut leftover, false, true) {
            statuses.push(m.status());
            // more answers only for pipelined requests, which come at once;
            // a kept-alive connection is not waited out
            let _ = c.set_read_timeout(Some(Duration::from_millis(300)));
        }
    }
    // the backend's thread records after it answered
    std::thread::sleep(Duration::from_millis(50));
    let mut seen: Vec<String> = backend.take().iter().map(backend_view).collect();
    seen.sort();
    (statuses, seen)
}

fn config(port: u16, backend: SocketAddr) -> String {
    format!(
        "server {{
            listen 127.0.0.1:{port};
            server_name h;
            location / {{
                proxy_pass http://{backend};
                proxy_set_header X-Uri \"$uri\";
                proxy_set_header X-Host $host;
            }}
        }}"
    )
}

/// Heads of many short lines, within nginx's buffers and past them (a
/// count of lines is no limit of nginx's: only their bytes are).
fn many_lines() -> (&'static str, Vec<(&'static str, Vec<u8>)>) {
    let head = |lines: usize| {
        let mut head = b"GET /a HTTP/1.1\r\nHost: h\r\n".to_vec();
        for _ in 0..lines {
            head.extend_from_slice(b"X: 1\r\n");
        }
        head.extend_from_slice(b"\r\n");
        head
    };
    (
        "many header lines",
        vec![
            ("1000-lines", head(1000)),
            ("5000-lines", head(5000)),
            ("6000-lines", head(6000)),
        ],
    )
}

/// Pipelined cases whose second head nginx refuses: it must never reach
/// the backend, nginx or not.
const REFUSED_SECOND: &[&str] = &[
    "bad-second",
    "cl-and-te-second",
    "two-lengths-second",
    "gzip-coding-second",
    "after-chunked-body",
    "after-sized-body",
    "smuggled-in-chunked",
    "9k-header-line",
    "300k-header-line",
    "9k-request-line",
    "40k-of-header-lines",
];

/// Every case: (family, case, request bytes).
fn all_cases() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut cases: Vec<_> = FAMILIES
        .iter()
        .flat_map(|f| f.cases.iter().map(|(n, r)| (f.name, *n, r.to_vec())))
        .collect();
    for (family, generated) in [oversized_pipelined(), many_lines()] {
        cases.extend(generated.into_iter().map(|(n, r)| (family, n, r)));
    }
    cases
}

#[test]
fn hostile_requests_are_answered_as_nginx_does() {
    let backend = RecordingBackend::start();
    let cases = all_cases();
    let total = cases.len();
    let families = FAMILIES.len() + 2;
    let port = free_port();
    let _rginx = start_rginx(&config(port, backend.addr()), port);
    let rginx_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let ours: Vec<_> = cases
        .iter()
        .map(|(family, name, request)| (*family, *name, run(rginx_addr, &backend, request)))
        .collect();
    drop(_rginx);
    // nothing a hostile request does may break a header line upstream, and
    // no refused pipelined head may reach the backend
    for (family, name, (_, seen)) in &ours {
        for request in seen {
            assert!(
                !request.to_ascii_lowercase().contains("| x-injected:"),
                "{family}/{name}: a header was injected: {request}"
            );
            assert!(
                !(REFUSED_SECOND.contains(name) && request.contains("/p2 ")),
                "{family}/{name}: a refused pipelined head reached the backend: {request}"
            );
            assert!(
                !request.to_ascii_lowercase().contains("x-big:")
                    && !request.starts_with("GET /p2aaaa"),
                "{family}/{name}: a head past the limits reached the backend"
            );
        }
    }
    let Some(nginx) = nginx() else {
        eprintln!("skipping the nginx comparison: no nginx");
        return;
    };
    let nginx_port = free_port();
    let _nginx = NginxServer::start(&nginx, &config(nginx_port, backend.addr()), nginx_port);
    let nginx_addr = SocketAddr::from(([127, 0, 0, 1], nginx_port));
    let mut failures = Vec::new();
    let mut matched = 0;
    for ((family, name, got), (_, _, request)) in ours.iter().zip(&cases) {
        let want = run(nginx_addr, &backend, request);
        let key = format!("{family}/{name}");
        let same = got.0 == want.0 && got.1 == want.1;
        if std::env::var_os("RGINX_DEBUG").is_some() {
            eprintln!("{key}: nginx {want:?}\n{key}: rginx {got:?}");
        }
        if same {
            matched += 1;
        }
        let answer = format!("{got:?}").replace(&backend.addr().to_string(), "backend");
        let judged = against_listed(&key, same, &answer, DIFFERENCES, "DIFFERENCES", || {
            format!("{key}:\n  nginx: {want:?}\n  rginx: {got:?}")
        });
        if let Err(e) = judged {
            failures.push(e);
        }
    }
    eprintln!(
        "hostile: {families} families, {total} cases, {matched} as nginx, {} listed differences",
        DIFFERENCES.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
