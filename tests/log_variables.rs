//! The access log's byte and connection variables through nginx and
//! rginx: `$request_length` (a body read counts, a discarded one does
//! not), `$bytes_sent` and `$body_bytes_sent`, `$upstream_bytes_received`,
//! `$upstream_bytes_sent` and `$upstream_response_length` per try (a
//! server passed over for its status, a kept upstream connection, a
//! chunked answer, a WebSocket tunnel), `$connection_requests` on a
//! kept-alive connection and `$connection` as counted from the first line
//! (upstream connections take numbers too). Each server proxies to itself;
//! its log lines must be nginx's.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::*;

fn http_body(port: u16, dir: &Path) -> String {
    let dir = dir.display();
    format!(
        r#"log_format bytes '$uri $status len=$request_length sent=$bytes_sent body=$body_bytes_sent up_rx=[$upstream_bytes_received] up_tx=[$upstream_bytes_sent] up_len=[$upstream_response_length] up=[$upstream_status] up_ct=[$upstream_http_content_type] up_len_h=[$upstream_http_Content_Length] req=$connection_requests pipe=$pipe conn=$connection';
upstream kept {{ server 127.0.0.1:{port}; keepalive 4; }}
upstream two {{ server 127.0.0.1:{port}; server 127.0.0.1:{port}; }}
map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
server_tokens off;
server {{
    listen 127.0.0.1:{port};
    access_log {dir}/bytes.log bytes;
    location /plain/ {{ proxy_pass http://127.0.0.1:{port}/end/; }}
    location /kept/ {{
        proxy_pass http://kept/end/;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }}
    location /next/ {{ proxy_pass http://two/missing; proxy_next_upstream http_404; }}
    location /chunked/ {{ proxy_pass http://127.0.0.1:{port}/chunks; proxy_http_version 1.1; }}
    location /ws/ {{
        proxy_pass http://127.0.0.1:{port}/upgrade;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
    }}
    location /ret {{ return 200 "returned\n"; }}
    location /end/ {{ return 200 "end of $uri\n"; }}
    location = /missing {{ return 404; }}
    location = /chunks {{ proxy_pass http://127.0.0.1:{port}/end/; proxy_buffering off; }}
    location = /upgrade {{ return 101; }}
}}"#
    )
}

/// Sends `requests` on one connection and reads until the server closes
/// it (the last request says `Connection: close`).
fn converse(port: u16, requests: &str) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = stream.write_all(requests.as_bytes());
    let mut sink = Vec::new();
    let _ = stream.read_to_end(&mut sink);
}

fn get(path: &str, close: bool) -> String {
    let connection = if close { "Connection: close\r\n" } else { "" };
    format!("GET {path} HTTP/1.1\r\nHost: l.test\r\n{connection}\r\n")
}

fn post(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: l.test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The log lines with `conn=N` made relative to the lowest number.
fn relative(lines: Vec<String>) -> Vec<String> {
    let number = |line: &str| -> Option<u64> { line.rsplit_once("conn=")?.1.parse().ok() };
    let first = lines.iter().filter_map(|l| number(l)).min().unwrap_or(0);
    lines
        .into_iter()
        .map(|line| match (line.rsplit_once("conn="), number(&line)) {
            (Some((head, _)), Some(n)) => format!("{head}conn=+{}", n.wrapping_sub(first)),
            _ => line,
        })
        .collect()
}

#[test]
fn byte_and_connection_variables_are_nginx_s() {
    let Some(nginx) = nginx() else { return };
    let pair = DirPair::start(&nginx, "logvars", http_body);
    let body = "0123456789".repeat(30);
    let conversations = [
        get("/plain/a", true),
        // a kept upstream connection: each request counts its own bytes
        format!("{}{}", get("/kept/1", false), get("/kept/2", true)),
        get("/next/x", true),
        get("/chunked/c", true),
        // a body read (proxied) and one discarded (`return`)
        post("/plain/body", &body),
        post("/ret", &body),
        format!(
            "{}{}{}",
            get("/ret", false),
            get("/ret", false),
            get("/ret", true)
        ),
        "GET /ws/ HTTP/1.1\r\nHost: l.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
            .to_string(),
    ];
    let mut logs = Vec::new();
    for (_, port, dir) in pair.sides() {
        for requests in &conversations {
            converse(port, requests);
        }
        std::thread::sleep(Duration::from_millis(300));
        logs.push(relative(log_lines(dir, "bytes.log")));
    }
    let differences: Vec<String> = if logs[0] == logs[1] {
        Vec::new()
    } else {
        vec![format!(
            "access log:\n  nginx: {:#?}\n  rginx: {:#?}",
            logs[0], logs[1]
        )]
    };
    assert_no_differences(&differences, conversations.len());
}

/// Answers after a second.
fn slow_answer(_: &wire::Message) -> Option<String> {
    std::thread::sleep(Duration::from_millis(1100));
    Some("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n".to_string())
}

#[test]
fn the_line_s_time_is_the_time_it_is_written() {
    let Some(nginx) = nginx() else { return };
    let backend = wire::scripted_backend(slow_answer);
    let pair = DirPair::start(&nginx, "logtime", |port, dir| {
        format!(
            "log_format times '$msec';
             server {{
                 listen 127.0.0.1:{port};
                 access_log {}/times.log times;
                 location / {{ proxy_pass http://{backend}; }}
             }}",
            dir.display()
        )
    });
    for (name, port, dir) in pair.sides() {
        let asked = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        converse(port, &get("/slow", true));
        std::thread::sleep(Duration::from_millis(200));
        let lines = log_lines(dir, "times.log");
        let logged: f64 = lines.first().and_then(|l| l.parse().ok()).unwrap_or(0.0);
        // nginx's $msec in the log is when the line is written: after the
        // backend's second
        assert!(
            logged - asked >= 1.0,
            "{name}: the line's time {logged} is not after the answer (asked at {asked})"
        );
    }
}

#[test]
fn access_log_if_writes_the_lines_nginx_writes() {
    let Some(nginx) = nginx() else { return };
    let pair = DirPair::start(&nginx, "logif", |port, dir| {
        format!(
            "log_format uris '$request_uri';
             map $status $loggable {{ ~^[23] 0; default 1; }}
             server {{
                 listen 127.0.0.1:{port};
                 access_log {dir}/arg.log uris if=$arg_logme;
                 access_log {dir}/errors.log uris if=$loggable;
                 location / {{ return 200 \"ok\\n\"; }}
                 location /missing {{ return 404; }}
             }}",
            dir = dir.display()
        )
    });
    let paths = [
        "/a?logme=1",
        "/b?logme=0",
        "/c",
        "/d?logme=yes",
        "/missing?logme=",
    ];
    let mut logs = Vec::new();
    for (_, port, dir) in pair.sides() {
        for path in paths {
            converse(port, &get(path, true));
        }
        std::thread::sleep(Duration::from_millis(200));
        logs.push((log_lines(dir, "arg.log"), log_lines(dir, "errors.log")));
    }
    assert_eq!(logs[1], logs[0], "rginx's lines, then nginx's");
    assert_eq!(logs[0].0, vec!["/a?logme=1", "/d?logme=yes"]);
}

/// The text of a log of gzip members (`zcat`'s reading).
fn gunzipped(path: &Path) -> String {
    let data = std::fs::read(path).unwrap_or_default();
    let mut text = String::new();
    let _ = flate2::read::MultiGzDecoder::new(&data[..]).read_to_string(&mut text);
    text
}

#[test]
fn buffered_and_gzip_logs_are_written_when_nginx_writes_them() {
    let Some(nginx) = nginx() else { return };
    let mut pair = DirPair::start(&nginx, "logbuf", |port, dir| {
        format!(
            "log_format uris '$request_uri $status';
             server {{
                 listen 127.0.0.1:{port};
                 access_log {dir}/held.log uris buffer=64k;
                 access_log {dir}/gz.log uris gzip=6 flush=100ms;
                 access_log {dir}/small.log uris buffer=40;
                 location / {{ return 200 \"ok\\n\"; }}
             }}",
            dir = dir.display()
        )
    });
    // the three files as the test reads them
    let files = |dir: &Path| {
        (
            log_lines(dir, "held.log"),
            gunzipped(&dir.join("gz.log")),
            log_lines(dir, "small.log"),
        )
    };
    let mut early = Vec::new();
    for (_, port, dir) in pair.sides() {
        for path in ["/first", "/second", "/third"] {
            converse(port, &get(path, true));
        }
        // past flush=: the gzip log is written, the plain buffer is not
        std::thread::sleep(Duration::from_millis(400));
        early.push(files(dir));
    }
    assert_eq!(
        early[1], early[0],
        "rginx's files, then nginx's, before the stop"
    );
    assert_eq!(early[0].0, Vec::<String>::new());
    assert_eq!(early[0].1, "/first 200\n/second 200\n/third 200\n");
    // a buffer of 40 bytes is written when the next line does not fit
    assert_eq!(early[0].2, vec!["/first 200", "/second 200"]);
    for (_, port, _) in pair.sides() {
        converse(port, &get("/last", true));
    }
    pair.quit();
    let late: Vec<_> = pair.sides().iter().map(|(_, _, dir)| files(dir)).collect();
    assert_eq!(
        late[1], late[0],
        "rginx's files, then nginx's, after the stop"
    );
    assert_eq!(
        late[0].0,
        vec!["/first 200", "/second 200", "/third 200", "/last 200"]
    );
}

#[test]
fn escape_modes_and_binary_remote_addr_are_written_as_nginx_writes_them() {
    let Some(nginx) = nginx() else { return };
    let pair = DirPair::start(&nginx, "logescape", |port, dir| {
        format!(
            "log_format plain '$uri|$arg_b|$http_x_odd|$binary_remote_addr';
             log_format json escape=json '$uri|$arg_b|$http_x_odd|$binary_remote_addr';
             log_format none escape=none '$uri|$arg_b|$http_x_odd|$binary_remote_addr';
             server {{
                 listen 127.0.0.1:{port};
                 access_log {dir}/plain.log plain;
                 access_log {dir}/json.log json;
                 access_log {dir}/none.log none;
                 location / {{ return 200 \"ok\\n\"; }}
             }}",
            dir = dir.display()
        )
    });
    let mut logs = Vec::new();
    for (_, port, dir) in pair.sides() {
        converse(
            port,
            "GET /esc/%221%20%1B%09%5C%C3%A9?c=2 HTTP/1.1\r\nHost: x\r\nX-Odd: a\"b\\c\x7f\r\nConnection: close\r\n\r\n",
        );
        std::thread::sleep(Duration::from_millis(200));
        logs.push(
            ["plain.log", "json.log", "none.log"]
                .map(|f| std::fs::read(dir.join(f)).unwrap_or_default()),
        );
    }
    assert_eq!(logs[1], logs[0], "rginx's lines, then nginx's");
    assert!(
        logs[0][0].ends_with(b"|\\x7F\\x00\\x00\\x01\n"),
        "{:?}",
        String::from_utf8_lossy(&logs[0][0])
    );
}

#[test]
fn access_log_buffer_parameters_are_checked_as_nginx_checks_them() {
    let Some(nginx) = nginx() else { return };
    let dir = TempDir::new("logbufcheck");
    let cases = [
        "access_log /tmp/a.log combined flush=5s;",
        "access_log /tmp/a_$host.log combined buffer=32k;",
        "access_log /tmp/a.log combined gzip=10;",
        "access_log /tmp/a.log combined buffer=0;",
        "access_log /tmp/a.log combined flush=0;",
        "access_log /tmp/a.log combined buffer=32k; server { access_log /tmp/a.log combined buffer=16k; }",
        "access_log /tmp/a.log combined gzip buffer=8k flush=1m if=$arg_a;",
    ];
    for (i, case) in cases.iter().enumerate() {
        let name = format!("case{i}.conf");
        std::fs::write(
            dir.0.join(&name),
            format!("events {{}}\nhttp {{\n    {case}\n}}\n"),
        )
        .unwrap();
        let (ok, theirs) = nginx_test(&nginx, &dir.0.join(&name));
        let out = check_in(&dir.0, &name, &[]);
        assert_eq!(out.status.success(), ok, "{case}");
        assert_eq!(first_emerg(&out), theirs, "{case}");
    }
}

#[test]
fn remote_user_is_read_from_basic_credentials_as_nginx_reads_it() {
    let Some(nginx) = nginx() else { return };
    let pair = DirPair::start(&nginx, "remoteuser", |port, dir| {
        format!(
            "log_format users '[$remote_user]';
             server {{
                 listen 127.0.0.1:{port};
                 access_log {dir}/users.log users;
                 add_header X-User $remote_user;
                 location / {{ return 200 \"ok\\n\"; }}
             }}",
            dir = dir.display()
        )
    });
    let credentials = [
        "Basic YWxpY2U6c2VjcmV0",
        "basic   YWxpY2U6c2VjcmV0",
        "Basic Ym9iOg",
        "Basic Ym9iOg==",
        "Basic YWxpY2U=",
        "Basic OnNlY3JldA==",
        "Basic YW*p",
        "Bearer YWxpY2U6c2VjcmV0",
        "Basic w6lsaWU6eA==",
        "Basic YWxpY2U6c2VjcmV0=garbage",
    ];
    let mut answers = Vec::new();
    for (_, port, dir) in pair.sides() {
        let mut headers = Vec::new();
        for c in credentials {
            let request = format!(
                "GET / HTTP/1.1\r\nHost: u.test\r\nAuthorization: {c}\r\nConnection: close\r\n\r\n"
            );
            let text = answer_text(port, &request);
            headers.push(
                text.lines()
                    .find(|l| l.starts_with("X-User"))
                    .unwrap_or("(none)")
                    .to_string(),
            );
        }
        std::thread::sleep(Duration::from_millis(200));
        answers.push((headers, log_lines(dir, "users.log")));
    }
    assert_eq!(answers[1], answers[0], "rginx's, then nginx's");
}

#[test]
fn sent_headers_are_logged_as_nginx_logs_them() {
    let Some(nginx) = nginx() else { return };
    let pair = DirPair::start(&nginx, "senthttp", |port, dir| {
        format!(
            "log_format sent '$uri ct=[$sent_http_content_type] len=[$sent_http_content_length] conn=[$sent_http_connection] loc=[$sent_http_location] cc=[$sent_http_cache_control] x=[$sent_http_x_custom] srv=[$sent_http_server] te=[$sent_http_transfer_encoding]';
             server_tokens off;
             server {{
                 listen 127.0.0.1:{port};
                 access_log {dir}/sent.log sent;
                 location /plain {{ return 200 \"ok\\n\"; }}
                 location /added {{ add_header X-Custom yes; expires 1h; return 200 \"ok\\n\"; }}
                 location /moved {{ return 301 /elsewhere; }}
                 location /missing {{ return 404; }}
                 location /streamed {{
                     proxy_pass http://127.0.0.1:{port}/plain;
                     proxy_http_version 1.1;
                     proxy_buffering off;
                 }}
             }}",
            dir = dir.display()
        )
    });
    let mut logs = Vec::new();
    for (_, port, dir) in pair.sides() {
        for path in ["/plain", "/added", "/moved", "/missing", "/streamed"] {
            converse(port, &get(path, true));
        }
        converse(
            port,
            &format!("{}{}", get("/plain", false), get("/plain", true)),
        );
        std::thread::sleep(Duration::from_millis(200));
        let mut lines = log_lines(dir, "sent.log");
        lines.sort();
        logs.push(lines);
    }
    assert_eq!(logs[1], logs[0], "rginx's, then nginx's");
}

#[test]
fn log_times_are_in_the_machine_s_zone_as_nginx_s() {
    let Some(nginx) = nginx() else { return };
    if !Path::new("/usr/share/zoneinfo/Asia/Kolkata").exists() {
        return;
    }
    let dir = TempDir::new("logzone");
    let mut lines = Vec::new();
    for name in ["nginx", "rginx"] {
        let port = free_port();
        let conf = dir.0.join(format!("{name}.conf"));
        let d = dir.0.display();
        std::fs::write(
            &conf,
            format!(
                "daemon off; master_process off; pid {d}/{name}.pid; error_log {d}/{name}-error.log info;
                 events {{}}
                 http {{
                     log_format zone '$time_local|$time_iso8601';
                     access_log {d}/{name}-access.log zone;
                     server {{ listen 127.0.0.1:{port}; location / {{ return 200 \"ok\\n\"; }} }}
                 }}"
            ),
        )
        .unwrap();
        let mut command = if name == "rginx" {
            rginx()
        } else {
            std::process::Command::new(&nginx)
        };
        let mut child = command
            .env("TZ", "Asia/Kolkata")
            .args([
                "-p",
                &format!("{d}/"),
                "-e",
                &format!("{d}/{name}-error.log"),
                "-c",
            ])
            .arg(&conf)
            .spawn()
            .expect("start");
        wait_for_port(port, 200);
        converse(port, &get("/", true));
        std::thread::sleep(Duration::from_millis(200));
        let _ = child.kill();
        let _ = child.wait();
        let access =
            std::fs::read_to_string(dir.0.join(format!("{name}-access.log"))).unwrap_or_default();
        let error =
            std::fs::read_to_string(dir.0.join(format!("{name}-error.log"))).unwrap_or_default();
        // the zone's offsets, and the error log's clock against the access log's
        let access = access.lines().next().unwrap_or_default().to_string();
        let (local, iso) = access.split_once('|').unwrap_or_default();
        let offsets = [
            local
                .get(local.len().saturating_sub(5)..)
                .unwrap_or_default(),
            iso.get(iso.len().saturating_sub(6)..).unwrap_or_default(),
        ];
        let hour_in_access = access.get(12..14).unwrap_or_default().to_string();
        let hour_in_error = error
            .lines()
            .find(|l| l.contains("[info]"))
            .and_then(|l| l.get(11..13))
            .unwrap_or_default()
            .to_string();
        lines.push((offsets.join(" "), hour_in_access == hour_in_error));
    }
    assert_eq!(lines[1], lines[0], "rginx, then nginx");
    assert_eq!(lines[0], ("+0530 +05:30".to_string(), true));
}
