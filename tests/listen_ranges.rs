//! `listen` with a port range through nginx and rginx: each port of the
//! range is listened on, `$server_port` is the port a request came to,
//! and a port named on its own beside the range in another server is its
//! own.

mod common;

use common::*;

fn http_body(first: u16) -> String {
    format!(
        "server {{
    listen 127.0.0.1:{first}-{last};
    location / {{ return 200 \"range $server_port\\n\"; }}
}}
server {{
    listen 127.0.0.1:{after};
    location / {{ return 200 \"alone $server_port\\n\"; }}
}}",
        last = first + 2,
        after = first + 3
    )
}

/// Four free ports in a row, as a base.
fn free_run() -> u16 {
    loop {
        let base = free_port();
        if base < 65000
            && (1..4).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok())
        {
            return base;
        }
    }
}

#[test]
fn each_port_of_a_range_is_served() {
    let Some(nginx) = nginx() else { return };
    let (theirs_base, ours_base) = (free_run(), free_run());
    let _theirs = NginxServer::start(&nginx, &http_body(theirs_base), theirs_base);
    let _ours = start_rginx(&http_body(ours_base), ours_base);
    for i in 0..4 {
        let ask = |base: u16| {
            let (status, body) = exchange(
                base + i,
                "GET / HTTP/1.1\r\nHost: r.test\r\nConnection: close\r\n\r\n",
            );
            format!("{status} {}", body.replace(&(base + i).to_string(), "PORT"))
        };
        let theirs = ask(theirs_base);
        assert!(theirs.starts_with("HTTP/1.1 200"), "nginx: {theirs}");
        assert_eq!(ask(ours_base), theirs, "port {i} of the range");
    }
}
