//! Idle keep-alive connections are parked: after a short wait in their own
//! task they are kept as a bare socket in the worker's table, served again
//! when the client sends more, and closed when `keepalive_timeout` passes
//! or the process quits. Real sockets: the server runs on a worker thread
//! of its own, the clients are blocking sockets on the test's thread (so
//! that they allocate nothing the count would see).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rginx_core::plan::Runtime;
use rginx_proxy::engine::{Engine, EngineCell};
use rginx_testkit::alloc::{live_bytes, Counting};
use tokio::sync::watch;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A server on its own current-thread runtime, as a worker runs it.
struct Server {
    addr: SocketAddr,
    cell: Arc<EngineCell>,
    quit: watch::Sender<bool>,
}

fn start(http_extra: &str) -> Server {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let config = format!(
        "events {{}}
http {{
    {http_extra}
    server {{
        listen {addr};
        location = /status {{ stub_status; }}
    }}
}}"
    );
    let (_, checked) = rginx_testkit::config::check("park.conf", &config);
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    let runtime = Runtime::new(&checked.model, "park.conf").unwrap();
    let engine = Arc::new(Engine::new(&checked.model, runtime, 1));
    let cell = Arc::new(EngineCell::new(engine));
    let (quit, quit_rx) = watch::channel(false);
    let worker_cell = cell.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((stream, remote)) = listener.accept().await {
                worker_cell.get().serve_connection(
                    worker_cell.clone(),
                    stream,
                    remote,
                    quit_rx.clone(),
                );
            }
        });
    });
    Server { addr, cell, quit }
}

/// Sends one keep-alive request and reads its whole answer.
fn get(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /status HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    // stub_status answers with a Content-Length: read until the body is in
    loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {answer:?}");
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer);
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            if answer.len() >= end + 4 + length {
                return text.into_owned();
            }
        }
    }
}

/// A new connection that has had one request answered 200 (and is left
/// idle).
fn served_once(server: &Server) -> TcpStream {
    let mut client = TcpStream::connect(server.addr).unwrap();
    let answer = get(&mut client);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    client
}

/// Waits (at most 5 s) until `n` connections are parked.
fn wait_parked(server: &Server, n: usize) {
    let until = Instant::now() + Duration::from_secs(5);
    while server.cell.parked() != n {
        assert!(
            Instant::now() < until,
            "{} parked, not {n}",
            server.cell.parked()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether the server closed `stream` within `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Ok(0))
}

/// The tests one at a time: the byte count is the whole process's.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn an_idle_connection_is_parked_and_served_again() {
    let _one = one_at_a_time();
    let server = start("");
    let mut clients: Vec<TcpStream> = Vec::new();
    // the first connections make what a worker keeps once (its table,
    // its epoll, tokio's per-thread state)
    for _ in 0..20 {
        clients.push(served_once(&server));
    }
    wait_parked(&server, 20);
    let before = live_bytes();
    const MORE: usize = 300;
    for _ in 0..MORE {
        clients.push(served_once(&server));
    }
    wait_parked(&server, 20 + MORE);
    let per_connection = live_bytes().saturating_sub(before) / MORE;
    eprintln!("{per_connection} bytes held per parked connection");
    // nginx keeps about 490 bytes of RSS per idle keep-alive connection
    // (bench/run.sh's figure); a parked one is a socket and its numbers
    // (about 280 bytes with the table's spare room, which grows by doubling)
    assert!(
        per_connection <= 400,
        "{per_connection} bytes held per parked connection"
    );
    // each is served again, and parks again
    for client in &mut clients {
        let answer = get(client);
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.contains("Waiting: "), "{answer}");
    }
    wait_parked(&server, 20 + MORE);
    // a client that closes its parked connection: it is woken, and ends
    drop(clients.pop());
    wait_parked(&server, 19 + MORE);
}

#[test]
fn a_parked_connection_closes_when_keepalive_timeout_passes() {
    let _one = one_at_a_time();
    let server = start("keepalive_timeout 1s;");
    let mut client = served_once(&server);
    let idle_from = Instant::now();
    wait_parked(&server, 1);
    assert!(closed_within(&mut client, Duration::from_secs(5)));
    let waited = idle_from.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    wait_parked(&server, 0);
}

#[test]
fn a_short_keepalive_timeout_closes_in_the_task() {
    let _one = one_at_a_time();
    // shorter than the wait before parking: never parked
    let server = start("keepalive_timeout 50ms;");
    let mut client = served_once(&server);
    assert!(closed_within(&mut client, Duration::from_secs(5)));
    assert_eq!(server.cell.parked(), 0);
}

#[test]
fn parked_connections_close_when_the_process_quits() {
    let _one = one_at_a_time();
    let server = start("");
    let mut clients: Vec<TcpStream> = (0..3).map(|_| served_once(&server)).collect();
    wait_parked(&server, 3);
    server.quit.send_replace(true);
    for client in &mut clients {
        assert!(closed_within(client, Duration::from_secs(5)));
    }
    wait_parked(&server, 0);
}
