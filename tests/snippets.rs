//! Snippets (fixtures/snippets/README.md): `rginx check FILE` on a file
//! holding part of a configuration, compared with the expected output and
//! with `nginx -t` on the same file wrapped the same way; and a location
//! snippet run on its own with `--listen`, a WebSocket through it.

mod common;

use std::io::Write;

use common::*;
use rginx_proxy::echo::{client_frame, client_handshake, read_frame, EchoBackend};

#[test]
fn snippets_are_checked_in_their_context() {
    let dir = root().join("fixtures/snippets");
    let names = fixtures("snippets");
    assert!(names.len() >= 5, "{names:?}");
    let nginx = nginx();
    for name in &names {
        let output = rginx()
            .current_dir(&dir)
            .args(["check", "--no-lint", name])
            .output()
            .expect("run rginx");
        let got = String::from_utf8_lossy(&output.stderr);
        assert_eq!(got, expected("snippets", name), "{name}");

        // nginx on the snippet wrapped as rginx wraps it (rginx -T prints
        // the wrapper; its include is made absolute for nginx's prefix)
        let Some(nginx) = &nginx else { continue };
        let dump = rginx()
            .current_dir(&dir)
            .args(["-T", "--no-lint", "-q", "-c", name])
            .output()
            .expect("run rginx -T");
        let tmp = TempDir::new("snippet-nginx");
        let wrapper = if output.status.success() {
            let text = String::from_utf8_lossy(&dump.stdout).into_owned();
            let wrapper = text
                .split("# configuration file ")
                .nth(1)
                .and_then(|part| part.split_once('\n'))
                .map(|(_, body)| body.to_string())
                .unwrap_or_default();
            wrapper.replace(
                &format!("include \"{name}\";"),
                &format!("include \"{}\";", dir.join(name).display()),
            )
        } else {
            // -T prints nothing for a failing file: the same wrapper by hand
            let path = dir.join(name);
            let parsed = rginx_config::parse_file(&path);
            let context = rginx_core::snippet::detect(&parsed.config.directives);
            rginx_core::snippet::wrap(&path, context, None).text
        };
        let conf = tmp.0.join("wrapper.conf");
        std::fs::write(&conf, wrapper).unwrap();
        let (nginx_ok, _) = nginx_test(nginx, &conf);
        assert_eq!(output.status.success(), nginx_ok, "{name}: nginx disagrees");
    }
}

#[test]
fn a_location_snippet_runs_with_listen_and_tunnels_websockets() {
    let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
    // the seed's block, its backend address moved to the test's echo backend
    let dir = TempDir::new("snippet-run");
    let text = std::fs::read_to_string(root().join("fixtures/snippets/seed-location.conf"))
        .unwrap()
        .replace("127.0.0.1:9001", &backend.addr().to_string());
    let snippet = dir.0.join("seed-location.conf");
    std::fs::write(&snippet, text).unwrap();
    let port = free_port();
    let child = rginx()
        .arg("-c")
        .arg(&snippet)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start rginx");
    let _rginx = Rginx(child, dir);
    wait_for_port(port, 200);
    let (mut c, mut r, head) = client_handshake(("127.0.0.1", port), "/ws/chat").unwrap();
    assert_eq!(head[0], "HTTP/1.1 101 Switching Protocols");
    c.write_all(&client_frame(0x1, true, b"through a snippet"))
        .unwrap();
    assert_eq!(
        read_frame(&mut r).unwrap(),
        (true, 0x1, b"through a snippet".to_vec())
    );
}

#[test]
fn listen_is_refused_for_a_whole_configuration() {
    let output = rginx()
        .args(["check", "--listen", "127.0.0.1:8080"])
        .arg(root().join("examples/websocket.conf"))
        .output()
        .expect("run rginx");
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("--listen applies to server and location snippets"),
        "{err}"
    );
}
