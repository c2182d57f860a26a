//! Memory per connection stays bounded by the configured buffers, as in
//! nginx: the resident size of nginx and of rginx (one worker each) is
//! measured under the loads of issue 15 (stalled chunked uploads, bodies
//! dripping in, clients that never read a large answer, one very large
//! upload), and rginx's growth must stay near nginx's. The figures are
//! printed for the notes (`cargo test --test memory_bounds -- --nocapture`).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

/// Resident size of `pid` in KiB (`VmRSS`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A backend that counts its connections, reads each request to its end
/// (by `Content-Length`) and answers `200` with a body of `answer` bytes.
fn counting_backend(answer: usize) -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    let (accepted, finished) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (a, f) = (accepted.clone(), finished.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            a.fetch_add(1, Ordering::SeqCst);
            let f = f.clone();
            std::thread::spawn(move || {
                let mut conn = conn;
                let Some(head) = read_request_head(&mut conn) else {
                    return;
                };
                let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                let length: u64 = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let _ = std::io::copy(&mut (&mut conn).take(length), &mut std::io::sink());
                let body = vec![b'x'; answer];
                let sent = conn
                    .write_all(
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {answer}\r\nConnection: close\r\n\r\n")
                            .as_bytes(),
                    )
                    .and_then(|()| conn.write_all(&body));
                if sent.is_ok() {
                    f.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    (addr, accepted, finished)
}

fn http_body(port: u16, backend: SocketAddr, dir: &std::path::Path) -> String {
    let dir = dir.display();
    format!(
        "error_log {dir}/error.log info;
client_body_temp_path {dir}/body;
proxy_temp_path {dir}/proxy;
server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://{backend}; }}
    location /unlimited/ {{ proxy_pass http://{backend}; client_max_body_size 0; }}
}}"
    )
}

/// One server under test.
struct Side {
    name: &'static str,
    port: u16,
    pid: u32,
    dir: std::path::PathBuf,
}

/// Opens `n` connections, each sending `start` and then nothing; the
/// growth of the server's RSS while they stall and after they close (KiB).
fn stalled(side: &Side, n: usize, start: &[u8]) -> (u64, u64) {
    let before = rss_kib(side.pid);
    let mut conns = Vec::new();
    for _ in 0..n {
        let Ok(mut c) = TcpStream::connect(("127.0.0.1", side.port)) else {
            continue;
        };
        let _ = c.write_all(start);
        conns.push(c);
    }
    std::thread::sleep(Duration::from_millis(800));
    let during = rss_kib(side.pid).saturating_sub(before);
    drop(conns);
    std::thread::sleep(Duration::from_millis(800));
    let after = rss_kib(side.pid).saturating_sub(before);
    (during, after)
}

/// `n` clients ask for an answer and do not read it: the RSS growth
/// while they wait (KiB).
fn slow_readers(side: &Side, n: usize) -> u64 {
    let before = rss_kib(side.pid);
    let mut conns = Vec::new();
    for _ in 0..n {
        let Ok(mut c) = TcpStream::connect(("127.0.0.1", side.port)) else {
            continue;
        };
        let _ = c.write_all(b"GET /answer HTTP/1.1\r\nHost: m.test\r\nConnection: close\r\n\r\n");
        conns.push(c);
    }
    std::thread::sleep(Duration::from_secs(2));
    rss_kib(side.pid).saturating_sub(before)
}

/// Uploads `size` bytes as fast as the server takes them, sampling its RSS:
/// the peak growth (KiB).
fn big_upload(side: &Side, size: usize) -> u64 {
    let before = rss_kib(side.pid);
    let pid = side.pid;
    let done = Arc::new(AtomicUsize::new(0));
    let watching = done.clone();
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        while watching.load(Ordering::SeqCst) == 0 {
            peak = peak.max(rss_kib(pid));
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    });
    let mut c = TcpStream::connect(("127.0.0.1", side.port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(
        "PUT /unlimited/ HTTP/1.1\r\nHost: m.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            .as_bytes(),
    )
    .unwrap();
    let piece = vec![b'u'; 1 << 20];
    let mut sent = 0;
    while sent < size {
        let _ = c.write_all(format!("{:x}\r\n", piece.len()).as_bytes());
        let _ = c.write_all(&piece);
        let _ = c.write_all(b"\r\n");
        sent += piece.len();
    }
    let _ = c.write_all(b"0\r\n\r\n");
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    done.store(1, Ordering::SeqCst);
    let peak = sampler.join().unwrap_or(0);
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}: {:?} {}",
        side.name,
        std::fs::read_to_string(side.dir.join("error.log")).map(|l| l
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")),
        String::from_utf8_lossy(&answer[..answer.len().min(200)])
    );
    peak.saturating_sub(before)
}

#[test]
fn memory_stays_bounded_by_the_buffers_as_in_nginx() {
    let Some(nginx) = nginx() else { return };
    // each slow reader's answer: 8 MiB, more than the socket buffers take
    let (backend, accepted, finished) = counting_backend(8 << 20);
    let (nginx_port, rginx_port) = (free_port(), free_port());
    let (nginx_dir, rginx_dir) = (TempDir::new("mem-nginx"), TempDir::new("mem-rginx"));
    let theirs = NginxServer::start(
        &nginx,
        &http_body(nginx_port, backend, &nginx_dir.0),
        nginx_port,
    );
    let ours = start_rginx(&http_body(rginx_port, backend, &rginx_dir.0), rginx_port);
    let sides = [
        Side {
            name: "nginx",
            port: nginx_port,
            pid: theirs.pid(),
            dir: nginx_dir.0.clone(),
        },
        Side {
            name: "rginx",
            port: rginx_port,
            pid: ours.0.id(),
            dir: rginx_dir.0.clone(),
        },
    ];
    // a chunked upload of almost 1 MB (the default limit), then silence
    let mut chunked =
        b"PUT / HTTP/1.1\r\nHost: m.test\r\nTransfer-Encoding: chunked\r\n\r\nf4240\r\n".to_vec();
    chunked.extend(std::iter::repeat_n(b'c', 999_000));
    let dripping = b"PUT / HTTP/1.1\r\nHost: m.test\r\nContent-Length: 1000\r\n\r\nd";
    let mut figures = Vec::new();
    for side in &sides {
        let contacted = accepted.load(Ordering::SeqCst);
        let chunked_rss = stalled(side, 200, &chunked);
        let dripping_rss = stalled(side, 300, dripping);
        let stalled_contacts = accepted.load(Ordering::SeqCst) - contacted;
        let finished_before = finished.load(Ordering::SeqCst);
        let readers_rss = slow_readers(side, 50);
        let backend_freed = finished.load(Ordering::SeqCst) - finished_before;
        let upload_rss = big_upload(side, 256 << 20);
        figures.push((
            side.name,
            chunked_rss,
            dripping_rss,
            stalled_contacts,
            readers_rss,
            backend_freed,
            upload_rss,
        ));
    }
    for (name, chunked, dripping, contacts, readers, freed, upload) in &figures {
        eprintln!(
            "{name}: RSS growth KiB: 200 stalled 1 MB chunked uploads {} (after close {}), \
             300 dripping bodies {} (after close {}), 50 slow readers of 8 MiB {}, \
             a 256 MiB upload {}; backend contacted by stalled bodies: {contacts}; \
             backend sends finished for slow readers: {freed}/50",
            chunked.0, chunked.1, dripping.0, dripping.1, readers, upload
        );
    }
    let (n, r) = (&figures[0], &figures[1]);
    // the same backend view as nginx's: stalled bodies never reach it, and
    // the slow readers' answers are read ahead in full
    assert_eq!((r.3, r.5), (n.3, n.5), "backend view differs from nginx's");
    // rginx's growth stays within twice nginx's plus 16 MiB (allocator
    // arenas and thread stacks), for each load
    let near = |ours: u64, theirs: u64| ours <= 2 * theirs + 16 * 1024;
    for (what, ours, theirs) in [
        ("stalled chunked uploads", r.1 .0, n.1 .0),
        ("stalled chunked uploads, after close", r.1 .1, n.1 .1),
        ("dripping bodies", r.2 .0, n.2 .0),
        ("slow readers", r.4, n.4),
        ("a 256 MiB upload", r.6, n.6),
    ] {
        assert!(
            near(ours, theirs),
            "{what}: rginx grew {ours} KiB, nginx {theirs} KiB"
        );
    }
}
