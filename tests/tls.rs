//! TLS termination through nginx and rginx with the same certificates
//! (made at the test's start) and the same clients (curl, openssl
//! s_client): the server SNI selects, the `$ssl_*` variables, the
//! protocols, suites and groups agreed on, session resumption, RSA or
//! ECDSA per client, `ssl_reject_handshake`, a plain HTTP request on the
//! TLS port (400, `error_page 497`), and what `check` says of certificate
//! files that cannot be used.

mod common;

use common::tls::{agreed, curl, s_client, Certs};
use common::*;

/// What every answer shows of the connection.
const FACTS: &str = "$scheme $https $ssl_protocol $ssl_cipher $ssl_curve [$ssl_server_name] $ssl_session_reused [$ssl_alpn_protocol] $host [$ssl_ciphers] [$ssl_curves] [$ssl_early_data]";

/// Servers on one TLS address: exact, wildcard and regex names, and a
/// default server with a certificate of its own.
fn sni_servers(port: u16, certs: &Certs) -> String {
    format!(
        "server {{
        listen 127.0.0.1:{port} ssl;
        server_name example.com;
        {rsa}
        {ec}
        location / {{ return 200 \"exact {FACTS}\\n\"; }}
        location /forwarded {{ return 200 \"$http_x_forwarded_proto\"; }}
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name *.example.com;
        {rsa}
        location / {{ return 200 \"wildcard {FACTS}\\n\"; }}
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name ~^re\\d+\\.test$;
        {other}
        location / {{ return 200 \"regex {FACTS}\\n\"; }}
    }}
    server {{
        listen 127.0.0.1:{port} ssl default_server;
        server_name default.test;
        {other}
        error_page 497 https://$host:{port}$request_uri;
        location / {{ return 200 \"default {FACTS}\\n\"; }}
    }}",
        rsa = certs.lines("rsa"),
        ec = certs.lines("ec"),
        other = certs.lines("other"),
    )
}

#[test]
fn sni_selects_the_server_and_the_variables_are_nginx_s() {
    let Some(nginx) = nginx() else { return };
    let certs = Certs::make();
    let pair = ServerPair::start(&nginx, |port| sni_servers(port, &certs));
    let names = [
        "example.com",
        "a.example.com",
        "re7.test",
        "unknown.test",
        "127.0.0.1",
    ];
    let options: [&[&str]; 6] = [
        &[],
        &["--http1.1"],
        &[
            "--tls-max",
            "1.2",
            "--ciphers",
            "ECDHE-RSA-AES128-GCM-SHA256",
        ],
        &["--ciphers", "ECDHE-ECDSA-CHACHA20-POLY1305"],
        &["--curves", "prime256v1"],
        // nginx 1.22 offers no TLS 1.3 unless told to
        &["--tlsv1.3"],
    ];
    let mut differences = Vec::new();
    let mut asked = 0;
    for name in names {
        for extra in options {
            asked += 1;
            let theirs = curl(pair.nginx_port, name, "/", extra);
            let ours = curl(pair.rginx_port, name, "/", extra);
            if theirs != ours {
                differences.push(format!("{name} {extra:?}:\n nginx: {theirs} rginx: {ours}"));
            }
        }
    }
    // the Host header picks the server for the request, whatever the SNI
    for (sni, host) in [("unknown.test", "example.com"), ("example.com", "other")] {
        asked += 1;
        let extra = ["-H", &format!("Host: {host}")];
        let theirs = curl(pair.nginx_port, sni, "/", &extra);
        let ours = curl(pair.rginx_port, sni, "/", &extra);
        if theirs != ours {
            differences.push(format!("{sni} / {host}:\n nginx: {theirs} rginx: {ours}"));
        }
    }
    assert_no_differences(&differences, asked);
    let ours = curl(pair.rginx_port, "example.com", "/", &[]);
    assert!(
        ours.starts_with("exact https on TLSv1.2 ECDHE-ECDSA-AES256-GCM-SHA384 X25519 [example.com] . [http/1.1]"),
        "{ours}"
    );
}

#[test]
fn each_client_gets_the_certificate_it_can_verify() {
    let Some(nginx) = nginx() else { return };
    let certs = Certs::make();
    let pair = ServerPair::start(&nginx, |port| sni_servers(port, &certs));
    let request = "GET / HTTP/1.0\r\nHost: example.com\r\n\r\n";
    let clients: [&[&str]; 5] = [
        &[],
        &["-tls1_2", "-sigalgs", "RSA-PSS+SHA256:rsa_pss_rsae_sha256"],
        &["-tls1_2", "-sigalgs", "ECDSA+SHA256"],
        &["-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"],
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
    ];
    let mut differences = Vec::new();
    for extra in clients {
        let theirs = agreed(&s_client(
            pair.nginx_port,
            Some("example.com"),
            request,
            extra,
        ));
        let ours = agreed(&s_client(
            pair.rginx_port,
            Some("example.com"),
            request,
            extra,
        ));
        if theirs != ours {
            differences.push(format!("{extra:?}:\n nginx: {theirs}\n rginx: {ours}"));
        }
    }
    assert_no_differences(&differences, clients.len());
}

#[test]
fn plain_http_on_the_tls_port_gets_nginx_s_400_or_error_page_497() {
    let Some(nginx) = nginx() else { return };
    let certs = Certs::make();
    let pair = ServerPair::start(&nginx, |port| sni_servers(port, &certs));
    let requests = [
        // a server without error_page 497: nginx's page, then close
        "GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n",
        // the default server's error_page 497
        "GET /b?x=1 HTTP/1.1\r\nHost: default.test\r\n\r\n",
        "GET /c HTTP/1.0\r\n\r\n",
        "HEAD / HTTP/1.1\r\nHost: example.com\r\n\r\n",
    ];
    let differences: Vec<String> = requests
        .iter()
        .filter_map(|r| answers_differ(pair.ports(), r, format!("{r:?}")))
        .collect();
    assert_no_differences(&differences, requests.len());
    let ours = masked_answer(pair.rginx_port, requests[0]);
    assert!(
        ours.contains("The plain HTTP request was sent to HTTPS port"),
        "{ours}"
    );
}

/// One TLS server with `policy` (lines of `ssl_*` settings).
fn policy_server(port: u16, certs: &Certs, policy: &str) -> String {
    format!(
        "server {{
        listen 127.0.0.1:{port} ssl;
        server_name example.com;
        {rsa}
        {ec}
        {policy}
        location / {{ return 200 \"{FACTS}\\n\"; }}
    }}",
        rsa = certs.lines("rsa"),
        ec = certs.lines("ec"),
    )
}

#[test]
fn protocols_suites_and_groups_are_agreed_as_with_nginx() {
    let Some(nginx) = nginx() else { return };
    let certs = Certs::make();
    let policies = [
        "ssl_protocols TLSv1.2 TLSv1.3;",
        "ssl_protocols TLSv1.3;",
        "ssl_protocols TLSv1.2;
        ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305;
        ssl_prefer_server_ciphers on;",
        "ssl_protocols TLSv1.2;
        ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305;",
        "ssl_ecdh_curve secp384r1:prime256v1;",
        "ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384;
        ssl_prefer_server_ciphers off;",
    ];
    let clients: [&[&str]; 6] = [
        &["--http1.1"],
        &["--tls-max", "1.2"],
        &["--tlsv1.3"],
        &["--tlsv1.1", "--tls-max", "1.1"],
        &[
            "--tls-max",
            "1.2",
            "--ciphers",
            "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256",
        ],
        &["--curves", "X25519:prime256v1"],
    ];
    let mut differences = Vec::new();
    for policy in policies {
        let pair = ServerPair::start(&nginx, |port| policy_server(port, &certs, policy));
        for extra in clients {
            let theirs = curl(pair.nginx_port, "example.com", "/", extra);
            let ours = curl(pair.rginx_port, "example.com", "/", extra);
            if theirs != ours {
                differences.push(format!(
                    "{policy:?} {extra:?}:\n nginx: {theirs} rginx: {ours}"
                ));
            }
        }
    }
    assert_no_differences(&differences, policies.len() * clients.len());
}

#[test]
fn sessions_resume_as_nginx_s_do() {
    let Some(nginx) = nginx() else { return };
    let certs = Certs::make();
    let policies = [
        // nginx's defaults: tickets, no cache
        "ssl_protocols TLSv1.2 TLSv1.3;",
        "ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets off; ssl_session_cache shared:SSL:1m;",
        "ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets off;",
        "ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache builtin:100; ssl_session_timeout 1h;",
    ];
    let request = "GET / HTTP/1.0\r\nHost: example.com\r\n\r\n";
    let mut differences = Vec::new();
    let mut asked = 0;
    for policy in policies {
        let pair = ServerPair::start(&nginx, |port| policy_server(port, &certs, policy));
        for version in ["-tls1_2", "-tls1_3"] {
            asked += 1;
            let mut seen = Vec::new();
            for port in [pair.nginx_port, pair.rginx_port] {
                let file = certs.path(&format!("session-{port}{version}"));
                let file = file.to_string_lossy();
                let first = s_client(
                    port,
                    Some("example.com"),
                    request,
                    &[version, "-sess_out", &file],
                );
                let again = s_client(
                    port,
                    Some("example.com"),
                    request,
                    &[version, "-sess_in", &file],
                );
                let line = |out: &str| agreed(out).split(',').next().unwrap_or("").to_string();
                let reused = again
                    .lines()
                    .find(|l| l.starts_with("https "))
                    .unwrap_or("")
                    .to_string();
                seen.push(format!("{} then {} {reused}", line(&first), line(&again)));
            }
            if seen[0] != seen[1] {
                differences.push(format!(
                    "{policy:?} {version}:\n nginx: {}\n rginx: {}",
                    seen[0], seen[1]
                ));
            }
        }
    }
    assert_no_differences(&differences, asked);
}

#[test]
fn a_default_server_may_refuse_handshakes() {
    let Some(nginx) = nginx() else { return };
    let certs = Certs::make();
    let config = |port: u16| {
        format!(
            "server {{
        listen 127.0.0.1:{port} ssl default_server;
        ssl_reject_handshake on;
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name example.com;
        {rsa}
        location / {{ return 200 \"{FACTS}\\n\"; }}
    }}",
            rsa = certs.lines("rsa")
        )
    };
    let pair = ServerPair::start(&nginx, config);
    let mut differences = Vec::new();
    for name in ["example.com", "unknown.test", "127.0.0.1"] {
        let theirs = curl(pair.nginx_port, name, "/", &[]);
        let ours = curl(pair.rginx_port, name, "/", &[]);
        if theirs != ours {
            differences.push(format!("{name}:\n nginx: {theirs} rginx: {ours}"));
        }
    }
    assert_no_differences(&differences, 3);
    let refused = s_client(
        pair.rginx_port,
        Some("unknown.test"),
        "GET / HTTP/1.0\r\n\r\n",
        &[],
    );
    assert!(refused.contains("unrecognized name"), "{refused}");
}

/// `check` on a configuration with one TLS server whose certificate
/// lines are `lines`: nginx -t's verdict, and rginx's first error.
fn verdicts(nginx: &std::path::Path, lines: &str) -> (bool, bool, String) {
    let dir = TempDir::new("tls-check");
    let conf = dir.0.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "events {{}}\nhttp {{\n    server {{\n        listen 127.0.0.1:8443 ssl;\n        server_name example.com;\n        {lines}\n    }}\n}}\n"
        ),
    )
    .unwrap();
    let (nginx_ok, _) = nginx_test(nginx, &conf);
    let ours = check_in(&dir.0, "nginx.conf", &[]);
    let said = String::from_utf8_lossy(&ours.stderr).into_owned();
    (nginx_ok, ours.status.success(), said)
}

#[test]
fn check_names_the_file_and_line_of_certificates_that_cannot_be_used() {
    let Some(nginx) = nginx() else { return };
    let certs = Certs::make();
    let bad_pem = certs.path("bad.crt");
    std::fs::write(&bad_pem, "not a certificate\n").unwrap();
    let path = |f: &str| certs.path(f).display().to_string();
    let cases = [
        (
            format!("ssl_certificate {};\n        ssl_certificate_key {};", path("missing.crt"), path("rsa.key")),
            format!("cannot load certificate \"{}\": BIO_new_file() failed (2: No such file or directory) in ", path("missing.crt")),
        ),
        (
            format!("ssl_certificate {};\n        ssl_certificate_key {};", path("bad.crt"), path("rsa.key")),
            format!("cannot load certificate \"{}\": PEM_read_bio_X509_AUX() failed", path("bad.crt")),
        ),
        (
            format!("ssl_certificate {};\n        ssl_certificate_key {};", path("rsa.crt"), path("other.key")),
            format!("SSL_CTX_use_PrivateKey(\"{}\") failed (key values mismatch) in ", path("other.key")),
        ),
        (
            format!("ssl_certificate {};", path("rsa.crt")),
            format!("no \"ssl_certificate_key\" is defined for certificate \"{}\" in ", path("rsa.crt")),
        ),
        (
            "ssl_protocols TLSv1.2;".to_string(),
            "no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive in ".to_string(),
        ),
    ];
    for (lines, expected) in &cases {
        let (nginx_ok, ours_ok, said) = verdicts(&nginx, lines);
        assert!(!nginx_ok, "nginx -t accepted {lines}");
        assert!(!ours_ok, "rginx check accepted {lines}:\n{said}");
        assert!(
            said.contains(expected.as_str()),
            "{lines}: expected {expected}\n{said}"
        );
        assert!(said.contains("nginx.conf:"), "{said}");
    }
    // an encrypted key nginx opens with ssl_password_file, rginx refuses,
    // saying how to decrypt it
    let status = std::process::Command::new("openssl")
        .args(["pkey", "-aes256", "-passout", "pass:secret", "-in"])
        .arg(certs.path("rsa.key"))
        .arg("-out")
        .arg(certs.path("encrypted.key"))
        .status()
        .expect("run openssl");
    assert!(status.success());
    std::fs::write(certs.path("password"), "secret\n").unwrap();
    let (nginx_ok, ours_ok, said) = verdicts(
        &nginx,
        &format!(
            "ssl_certificate {};\n        ssl_certificate_key {};\n        ssl_password_file {};",
            path("rsa.crt"),
            path("encrypted.key"),
            path("password")
        ),
    );
    assert!(nginx_ok, "nginx opens the key with the password");
    assert!(!ours_ok, "{said}");
    assert!(
        said.contains("the key is encrypted, and rginx cannot decrypt keys"),
        "{said}"
    );
    // what nginx takes, rginx takes, with warnings for what it cannot offer
    let (nginx_ok, ours_ok, said) = verdicts(
        &nginx,
        &format!(
            "{}\n        ssl_protocols TLSv1 TLSv1.1 TLSv1.2;",
            certs.lines("other")
        ),
    );
    assert!(nginx_ok && ours_ok, "{said}");
    assert!(
        said.contains("TLSv1, TLSv1.1 in \"ssl_protocols\" not offered"),
        "{said}"
    );
    assert!(
        said.contains("which matches no \"server_name\" of its server"),
        "{said}"
    );
}

#[test]
fn a_reload_serves_a_renewed_certificate() {
    let certs = Certs::make();
    let live = certs.path("live");
    std::fs::create_dir_all(&live).unwrap();
    for (from, to) in [("rsa.crt", "fullchain.pem"), ("rsa.key", "privkey.pem")] {
        std::fs::copy(certs.path(from), live.join(to)).unwrap();
    }
    let port = free_port();
    let http = format!(
        "server {{
        listen 127.0.0.1:{port} ssl;
        server_name example.com;
        ssl_certificate {live}/fullchain.pem;
        ssl_certificate_key {live}/privkey.pem;
        location / {{ return 200 ok; }}
        location /slow {{ proxy_pass http://{slow}; }}
    }}",
        live = live.display(),
        slow = common::wire::scripted_backend(|_| {
            std::thread::sleep(std::time::Duration::from_millis(1500));
            Some(
                "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nslow".to_string(),
            )
        })
    );
    let rginx = start_rginx(&http, port);
    let request = "GET / HTTP/1.0\r\nHost: example.com\r\n\r\n";
    let subject = || agreed(&s_client(port, Some("example.com"), request, &[]));
    let before = subject();
    assert!(before.contains("CN = example.com"), "{before}");
    // certbot renews: new files in place, then a reload
    certs.add(
        "renewed",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "example.com",
        "subjectAltName=DNS:example.com",
        "90",
    );
    for (from, to) in [
        ("renewed.crt", "fullchain.pem"),
        ("renewed.key", "privkey.pem"),
    ] {
        std::fs::copy(certs.path(from), live.join(to)).unwrap();
    }
    // a request in flight over TLS while the reload happens is answered
    let in_flight = std::thread::spawn(move || curl(port, "example.com", "/slow", &[]));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &rginx.0.id().to_string()])
        .status();
    let mut after = String::new();
    for _ in 0..100 {
        after = subject();
        if after.contains("256 bit") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        after.contains("Server public key is 256 bit"),
        "before: {before}\nafter: {after}"
    );
    assert_eq!(in_flight.join().unwrap(), "slow");
}

#[test]
fn proxied_requests_tell_the_backend_they_came_over_tls_as_nginx_s_do() {
    let Some(nginx) = nginx() else { return };
    let certs = Certs::make();
    let backend = common::wire::RecordingBackend::start();
    let config = |port: u16| {
        format!(
            "server {{
        listen 127.0.0.1:{port} ssl;
        server_name example.com;
        {rsa}
        location / {{
            proxy_pass http://{backend};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-TLS \"$https $ssl_protocol $ssl_server_name\";
        }}
    }}",
            rsa = certs.lines("rsa"),
            backend = backend.addr()
        )
    };
    let pair = ServerPair::start(&nginx, config);
    let mut heads = Vec::new();
    for port in [pair.nginx_port, pair.rginx_port] {
        let answer = curl(port, "example.com", "/app?x=1", &["-H", "Cookie: a=1"]);
        assert_eq!(answer, "ok");
        let seen = backend.take();
        assert_eq!(seen.len(), 1);
        heads.push(seen[0].head.join(" | "));
    }
    assert_eq!(heads[0], heads[1]);
    assert!(
        heads[1].contains("X-Forwarded-Proto: https"),
        "{}",
        heads[1]
    );
    assert!(
        heads[1].contains("X-TLS: on TLSv1.2 example.com"),
        "{}",
        heads[1]
    );
}

#[test]
fn proxy_pass_https_reaches_a_tls_backend_as_nginx_does() {
    let Some(nginx) = nginx() else { return };
    let certs = Certs::make();
    certs.add_client_chain();
    let backend_port = free_port();
    let backend_conf = format!(
        "server {{
        listen 127.0.0.1:{backend_port} ssl;
        {rsa}
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{ return 200 \"backend [$ssl_server_name] $ssl_protocol $http_host $request_uri $ssl_session_reused\\n\"; }}
    }}",
        rsa = certs.lines("rsa")
    );
    let _backend = NginxServer::start(&nginx, &backend_conf, backend_port);
    let trusted = certs.path("rsa.crt").display().to_string();
    let client_crt = certs.path("client.crt").display().to_string();
    let client_v1 = certs.path("clientv1.crt").display().to_string();
    let client_key = certs.path("client.key").display().to_string();
    let front = |port: u16| {
        format!(
            "upstream kept {{ server 127.0.0.1:{backend_port}; keepalive 4; }}
    # an upstream each: nginx resumes sessions per upstream server across
    # locations, which would hide the client certificate of a new one
    upstream with_client {{ server 127.0.0.1:{backend_port}; }}
    upstream with_client_v1 {{ server 127.0.0.1:{backend_port}; }}
    map $uri $up_scheme {{ default https; }}
    server {{
        listen 127.0.0.1:{port};
        location /plain/ {{ proxy_pass https://127.0.0.1:{backend_port}; }}
        # another upstream (nginx resumes sessions per upstream server,
        # across its locations; rginx per location)
        location /sni/ {{
            proxy_pass https://localhost:{backend_port};
            proxy_ssl_server_name on;
            proxy_ssl_name example.com;
        }}
        location /verified/ {{
            proxy_pass https://127.0.0.1:{backend_port}/v/;
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate {trusted};
            proxy_ssl_name a.example.com;
        }}
        location /wrong-name/ {{
            proxy_pass https://127.0.0.1:{backend_port};
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate {trusted};
            proxy_ssl_name other.test;
        }}
        location /tls13/ {{
            proxy_pass https://127.0.0.1:{backend_port};
            proxy_ssl_protocols TLSv1.3;
        }}
        location /client/ {{
            proxy_pass https://with_client;
            proxy_ssl_certificate {client_crt};
            proxy_ssl_certificate_key {client_key};
        }}
        location /client-v1/ {{
            proxy_pass https://with_client_v1;
            proxy_ssl_certificate {client_v1};
            proxy_ssl_certificate_key {client_key};
        }}
        location /variable/ {{
            proxy_pass $up_scheme://127.0.0.1:{backend_port};
            proxy_ssl_server_name on;
            proxy_ssl_name example.com;
        }}
        location /kept/ {{
            proxy_pass https://kept;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }}
    }}"
        )
    };
    let pair = ServerPair::start(&nginx, front);
    let requests = [
        "/plain/a",
        "/sni/b",
        "/verified/c",
        "/wrong-name/d",
        "/tls13/e",
        "/kept/f",
        "/kept/g",
        "/variable/h",
        "/client/i",
        "/client-v1/j",
    ];
    let mut differences = Vec::new();
    for path in requests {
        let request = format!("GET {path} HTTP/1.0\r\nHost: front\r\n\r\n");
        if let Some(d) = answers_differ(pair.ports(), &request, path) {
            differences.push(d);
        }
    }
    assert_no_differences(&differences, requests.len());
    let (status, body) = exchange(
        pair.rginx_port,
        "GET /sni/b HTTP/1.0\r\nHost: front\r\n\r\n",
    );
    assert!(status.contains("200"), "{status}");
    assert!(body.starts_with("backend [example.com] TLSv1.2"), "{body}");
    let (status, _) = exchange(pair.rginx_port, "GET /wrong-name/d HTTP/1.0\r\n\r\n");
    assert!(status.contains("502"), "{status}");
}

#[test]
fn client_certificates_are_verified_as_nginx_verifies_them() {
    let Some(nginx) = nginx() else { return };
    let certs = Certs::make();
    certs.add_client_chain();
    let facts = "$ssl_client_verify|$ssl_client_s_dn|$ssl_client_i_dn|$ssl_client_s_dn_legacy|$ssl_client_i_dn_legacy|$ssl_client_serial|$ssl_client_fingerprint|$ssl_client_v_start|$ssl_client_v_end|$ssl_client_v_remain";
    let pair_of = |name: &str| {
        vec![
            "--cert".to_string(),
            certs.path(&format!("{name}.crt")).display().to_string(),
            "--key".to_string(),
            certs.path(&format!("{name}.key")).display().to_string(),
        ]
    };
    for name in ["client", "clientv1", "other"] {
        assert!(certs.path(&format!("{name}.crt")).exists(), "{name}.crt");
    }
    let mut third_host = Vec::new();
    // none, the authority's (v3 and v1), a self-signed one
    let clients = [
        Vec::new(),
        pair_of("client"),
        pair_of("clientv1"),
        pair_of("other"),
    ];
    let mut differences = Vec::new();
    let mut asked = 0;
    for mode in ["on", "optional", "optional_no_ca"] {
        let config = |port: u16| {
            format!(
                "server {{
        listen 127.0.0.1:{port} ssl;
        server_name example.com;
        {rsa}
        ssl_client_certificate {ca};
        ssl_verify_client {mode};
        location / {{ return 200 \"{facts}\\n\"; }}
        location /raw {{ return 200 \"$ssl_client_raw_cert|$ssl_client_cert|$ssl_client_escaped_cert\"; }}
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name else.test;
        {rsa}
        location / {{ return 200 \"else $ssl_client_verify\"; }}
    }}",
                rsa = certs.lines("rsa"),
                ca = certs.path("ca.crt").display(),
            )
        };
        let pair = ServerPair::start(&nginx, config);
        for client in &clients {
            let client: Vec<&str> = client.iter().map(String::as_str).collect();
            let client = client.as_slice();
            for path in ["/", "/raw"] {
                asked += 1;
                let mask = |text: String| {
                    text.replace(NGINX_TOKEN, RGINX_TOKEN)
                        .replace("<center>nginx</center>", "<center>rginx</center>")
                };
                let theirs = mask(curl(pair.nginx_port, "example.com", path, client));
                let ours = mask(curl(pair.rginx_port, "example.com", path, client));
                assert!(
                    !ours.starts_with("curl failed"),
                    "{mode} {path} {client:?}: {ours}"
                );
                if path == "/" && client.iter().any(|c| c.ends_with("clientv1.crt")) {
                    assert!(ours.starts_with("SUCCESS|"), "{mode}: {ours}");
                }
                if theirs != ours {
                    differences.push(format!(
                        "{mode} {path} {client:?}:\n nginx: {theirs}\n rginx: {ours}"
                    ));
                }
            }
            // a Host other than the name the handshake was for: 421 where
            // the Host's server verifies clients
            for host in ["else.test", "third.test"] {
                asked += 1;
                let header = format!("Host: {host}");
                let extra: Vec<&str> = client
                    .iter()
                    .copied()
                    .chain(["-H", header.as_str()])
                    .collect();
                let status = |port| {
                    let mut args = extra.clone();
                    args.extend(["-o", "/dev/null", "-w", "%{http_code}"]);
                    curl(port, "example.com", "/", &args)
                };
                let (theirs, ours) = (status(pair.nginx_port), status(pair.rginx_port));
                if host == "third.test" && !client.is_empty() {
                    third_host.push(ours.clone());
                }
                if theirs != ours {
                    differences.push(format!(
                        "{mode} Host {host} {client:?}: nginx {theirs}, rginx {ours}"
                    ));
                }
            }
        }
    }
    assert_no_differences(&differences, asked);
}

#[test]
fn renegotiation_compression_and_weak_suites_are_refused() {
    let Some(nginx) = nginx() else { return };
    let certs = Certs::make();
    // rginx waits for the request after refusing the renegotiation, nginx
    // ends the connection: a short timeout keeps the wait short
    let pair = ServerPair::start(&nginx, |port| {
        policy_server(port, &certs, "client_header_timeout 2s;")
    });
    for port in [pair.nginx_port, pair.rginx_port] {
        // `R` asks an interactive s_client to renegotiate once the
        // handshake is done: both refuse it
        let script = format!(
            "(echo R; sleep 1) | openssl s_client -tls1_2 -connect 127.0.0.1:{port} -servername example.com 2>&1"
        );
        let output = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .expect("run s_client");
        let out = String::from_utf8_lossy(&output.stdout);
        assert!(out.contains("Compression: NONE"), "{port}: {out}");
        assert!(out.contains("no renegotiation"), "{port}: {out}");
    }
    // what rustls never offers, nginx 1.22's default ciphers still take
    // (CBC with SHA-1, RSA key exchange): rginx refuses each handshake
    for weak in ["ECDHE-RSA-AES128-SHA", "AES128-SHA", "AES256-SHA256"] {
        let out = s_client(
            pair.rginx_port,
            Some("example.com"),
            "",
            &["-tls1_2", "-cipher", weak],
        );
        assert_eq!(agreed(&out), "no handshake", "{weak}: {out}");
    }
    for old in ["-tls1", "-tls1_1"] {
        let out = s_client(pair.rginx_port, Some("example.com"), "", &[old]);
        assert_eq!(agreed(&out), "no handshake", "{old}: {out}");
    }
}

#[test]
fn x509_v1_certificates_serve_and_are_proxied_to_as_with_nginx() {
    let Some(nginx) = nginx() else { return };
    let certs = Certs::make();
    certs.add_v1();
    let backend_port = free_port();
    let backend_conf = format!(
        "server {{
        listen 127.0.0.1:{backend_port} ssl;
        {v1}
        location / {{ return 200 \"v1 backend $ssl_protocol\\n\"; }}
    }}",
        v1 = certs.lines("v1")
    );
    let _backend = NginxServer::start(&nginx, &backend_conf, backend_port);
    let front = |port: u16| {
        format!(
            "server {{
        listen 127.0.0.1:{port} ssl;
        {v1}
        location / {{ proxy_pass https://127.0.0.1:{backend_port}; }}
    }}",
            v1 = certs.lines("v1")
        )
    };
    let pair = ServerPair::start(&nginx, front);
    let theirs = curl(pair.nginx_port, "v1.test", "/", &[]);
    let ours = curl(pair.rginx_port, "v1.test", "/", &[]);
    assert_eq!(theirs, ours);
    assert_eq!(ours, "v1 backend TLSv1.2\n");
}

#[test]
fn an_ocsp_response_from_a_file_is_stapled_as_nginx_staples_it() {
    let Some(nginx) = nginx() else { return };
    let certs = Certs::make();
    certs.add_client_chain();
    // a server certificate of the authority, and the authority's OCSP
    // response for it
    let run = |args: &[&str]| certs.openssl(args);
    std::fs::write(certs.path("leaf.ext"), "subjectAltName=DNS:example.com\n").unwrap();
    std::fs::write(certs.path("index.txt"), "").unwrap();
    run(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=example.com",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-set_serial",
        "1000",
        "-days",
        "30",
        "-extfile",
        "leaf.ext",
        "-out",
        "leaf.crt",
    ]);
    run(&[
        "ocsp",
        "-issuer",
        "ca.crt",
        "-cert",
        "leaf.crt",
        "-reqout",
        "req.der",
        "-no_nonce",
    ]);
    run(&[
        "ocsp",
        "-index",
        "index.txt",
        "-CA",
        "ca.crt",
        "-rsigner",
        "ca.crt",
        "-rkey",
        "ca.key",
        "-reqin",
        "req.der",
        "-respout",
        "resp.der",
        "-ndays",
        "1",
    ]);
    let config = |port: u16| {
        format!(
            "server {{
        listen 127.0.0.1:{port} ssl;
        server_name example.com;
        {leaf}
        ssl_stapling on;
        ssl_stapling_file {resp};
        location / {{ return 200 ok; }}
    }}",
            leaf = certs.lines("leaf"),
            resp = certs.path("resp.der").display()
        )
    };
    let pair = ServerPair::start(&nginx, config);
    let stapled = |port| {
        let out = s_client(
            port,
            Some("example.com"),
            "GET / HTTP/1.0\r\n\r\n",
            &["-status", "-tls1_2"],
        );
        out.lines()
            .filter(|l| {
                l.contains("OCSP Response Status")
                    || l.contains("Cert Status")
                    || l.contains("no response sent")
            })
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let (theirs, ours) = (stapled(pair.nginx_port), stapled(pair.rginx_port));
    assert_eq!(theirs, ours);
    assert!(ours.contains("OCSP Response Status: successful"), "{ours}");
}

#[test]
fn servers_given_the_same_ticket_key_files_resume_each_other_s_sessions() {
    let certs = Certs::make();
    std::fs::write(certs.path("ticket.key"), [7u8; 80]).unwrap();
    std::fs::write(certs.path("short.key"), [7u8; 47]).unwrap();
    let config = |port: u16| {
        format!(
            "server {{
        listen 127.0.0.1:{port} ssl;
        server_name example.com;
        {rsa}
        ssl_session_ticket_key {key};
        location / {{ return 200 \"$ssl_session_reused\"; }}
    }}",
            rsa = certs.lines("rsa"),
            key = certs.path("ticket.key").display()
        )
    };
    let (a, b) = (free_port(), free_port());
    let _first = start_rginx(&config(a), a);
    let _second = start_rginx(&config(b), b);
    let file = certs.path("session.pem").display().to_string();
    let request = "GET / HTTP/1.0\r\nHost: example.com\r\n\r\n";
    let made = s_client(
        a,
        Some("example.com"),
        request,
        &["-tls1_2", "-sess_out", &file],
    );
    assert!(agreed(&made).starts_with("New"), "{made}");
    let resumed = s_client(
        b,
        Some("example.com"),
        request,
        &["-tls1_2", "-sess_in", &file],
    );
    assert!(agreed(&resumed).starts_with("Reused"), "{resumed}");
    // nginx's word for a file of another size
    let Some(nginx) = nginx() else { return };
    let lines = format!(
        "{}\n        ssl_session_ticket_key {};",
        certs.lines("rsa"),
        certs.path("short.key").display()
    );
    let (nginx_ok, ours_ok, said) = verdicts(&nginx, &lines);
    assert!(!nginx_ok && !ours_ok, "{said}");
    assert!(
        said.contains("short.key\" must be 48 or 80 bytes in "),
        "{said}"
    );
}
