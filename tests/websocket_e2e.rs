//! WebSockets through `rginx -c` with a real client and server
//! (tokio-tungstenite): the seed's configuration (examples/websocket.conf)
//! and the `map $http_upgrade $connection_upgrade` recipe, unchanged but for
//! the ports. Where nginx is at hand the same scenarios run through it too,
//! so a scenario that passes shows rginx behaving as nginx does.

// the handshake callback must return tungstenite's own (large) error type
#![allow(clippy::result_large_err)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// A client's connection: TCP, or TLS over it.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

type Client = WebSocketStream<Box<dyn Io>>;

/// Where the scenarios connect: `ws://` or `wss://` on a port.
#[derive(Clone, Copy)]
struct Target {
    port: u16,
    tls: bool,
}

/// No frame or message limit below what the tests send (16 MiB and more).
fn unlimited() -> WebSocketConfig {
    let mut config = WebSocketConfig::default();
    config.max_message_size = None;
    config.max_frame_size = None;
    config
}

/// A tokio-tungstenite server whose behaviour follows the request path:
/// - `/ws/echo...`: echoes every data message (pings are answered by
///   tungstenite itself, a close is answered with the same code);
/// - `/ws/close-CODE`: closes at once with that code and reason "bye";
/// - anything else: reads until the connection ends and then reports the
///   path on `ended`.
struct Backend {
    addr: SocketAddr,
    ended: mpsc::UnboundedReceiver<String>,
}

impl Backend {
    async fn start() -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, ended) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut path = String::new();
                    let callback =
                        |req: &tokio_tungstenite::tungstenite::handshake::server::Request, resp| {
                            path = req.uri().path().to_string();
                            Ok(resp)
                        };
                    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async_with_config(
                        stream,
                        callback,
                        Some(unlimited()),
                    )
                    .await
                    else {
                        return;
                    };
                    if let Some(code) = path.strip_prefix("/ws/close-") {
                        let code: u16 = code.parse().unwrap_or(1000);
                        let _ = ws
                            .close(Some(CloseFrame {
                                code: CloseCode::from(code),
                                reason: "bye".into(),
                            }))
                            .await;
                        // drain until the proxy closes the connection
                        while let Some(Ok(_)) = ws.next().await {}
                        return;
                    }
                    let echo = path.starts_with("/ws/echo");
                    while let Some(Ok(message)) = ws.next().await {
                        let data = message.is_text() || message.is_binary();
                        if echo && data && ws.send(message).await.is_err() {
                            break;
                        }
                    }
                    if !echo {
                        let _ = tx.send(path);
                    }
                });
            }
        });
        Backend { addr, ended }
    }
}

/// The seed's configuration with the ports replaced, plus a location with
/// a one-second `proxy_read_timeout` for the idle test.
fn seed_config(port: u16, backend: SocketAddr) -> String {
    let http = seed_http(port, backend);
    let idle = "location /idle/ {
            proxy_pass http://ws_backend;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 1s;
        }
        location = /ws {";
    http.replacen("location = /ws {", idle, 1)
}

async fn connect(target: Target, path: &str) -> Client {
    let port = target.port;
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let stream: Box<dyn Io> = if target.tls {
        let name = rustls::pki_types::ServerName::try_from("example.com").unwrap();
        Box::new(
            tokio_rustls::TlsConnector::from(common::tls::trusting_client())
                .connect(name, tcp)
                .await
                .expect("TLS handshake"),
        )
    } else {
        Box::new(tcp)
    };
    let scheme = if target.tls { "wss" } else { "ws" };
    let url = format!("{scheme}://127.0.0.1:{port}{path}");
    let (ws, response) =
        tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(unlimited()))
            .await
            .expect("handshake");
    assert_eq!(response.status(), 101);
    ws
}

/// The next message that is not a pong we did not ask about, within 10 s.
async fn next(ws: &mut Client) -> Option<Message> {
    tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("no answer within 10 s")
        .and_then(Result::ok)
}

/// Text, binary, fragments, ping/pong and a client-initiated close with a
/// code of our own.
async fn echo_scenarios(target: Target) {
    let mut ws = connect(target, "/ws/echo").await;
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(next(&mut ws).await, Some(Message::text("hello")));
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    assert_eq!(
        next(&mut ws).await,
        Some(Message::binary(vec![0u8, 1, 2, 255]))
    );

    // one message in three fragments
    for (i, part) in ["frag", "men", "ted"].iter().enumerate() {
        let opcode = if i == 0 {
            OpCode::Data(tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text)
        } else {
            OpCode::Data(tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Continue)
        };
        let frame = Frame::message(part.as_bytes().to_vec(), opcode, i == 2);
        ws.send(Message::Frame(frame)).await.unwrap();
    }
    assert_eq!(next(&mut ws).await, Some(Message::text("fragmented")));

    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    assert_eq!(
        next(&mut ws).await,
        Some(Message::Pong(b"are you there".to_vec().into()))
    );

    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::from(4000),
        reason: "done".into(),
    })))
    .await
    .unwrap();
    match next(&mut ws).await {
        Some(Message::Close(Some(frame))) => {
            assert_eq!(u16::from(frame.code), 4000);
            assert_eq!(frame.reason, "done");
        }
        other => panic!("expected the close echoed, got {other:?}"),
    }
    // then the backend hangs up and so does the proxy
    assert!(next(&mut ws).await.is_none());
}

/// A 16 MiB message each way.
async fn big_message(target: Target) {
    let mut ws = connect(target, "/ws/echo-big").await;
    let payload: Vec<u8> = (0..16u32 << 20).map(|i| (i % 251) as u8).collect();
    ws.send(Message::binary(payload.clone())).await.unwrap();
    match next(&mut ws).await {
        Some(Message::Binary(got)) => {
            assert_eq!(got.len(), payload.len());
            assert!(got[..] == payload[..], "the 16 MiB message changed");
        }
        other => panic!(
            "expected the message back, got {:?}",
            other.map(|m| m.len())
        ),
    }
}

/// The backend closes with a code: the client sees that code, then the end.
async fn backend_closes(target: Target) {
    let mut ws = connect(target, "/ws/close-4001").await;
    match next(&mut ws).await {
        Some(Message::Close(Some(frame))) => {
            assert_eq!(u16::from(frame.code), 4001);
            assert_eq!(frame.reason, "bye");
        }
        other => panic!("expected the backend's close, got {other:?}"),
    }
    assert!(next(&mut ws).await.is_none());
}

/// The client's TCP connection vanishes without a close frame: the
/// backend's connection is closed within a second.
async fn client_vanishes(target: Target, backend: &mut Backend) {
    let mut ws = connect(target, "/ws/watch-vanish").await;
    ws.send(Message::text("still here")).await.unwrap();
    // dropping the stream closes the socket without a WebSocket close
    drop(ws);
    let ended = tokio::time::timeout(Duration::from_secs(1), backend.ended.recv()).await;
    assert_eq!(
        ended.ok().flatten().as_deref(),
        Some("/ws/watch-vanish"),
        "the backend's connection was still open a second after the client left"
    );
}

/// No traffic for `proxy_read_timeout` (1 s): both sides are closed.
async fn idle_close(target: Target, backend: &mut Backend) {
    let mut ws = connect(target, "/idle/watch").await;
    let started = std::time::Instant::now();
    assert!(next(&mut ws).await.is_none(), "the idle tunnel sent data");
    let waited = started.elapsed();
    // closed by the 1 s timer, not by this client's 10 s limit
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < Duration::from_secs(9), "{waited:?}");
    let ended = tokio::time::timeout(Duration::from_secs(5), backend.ended.recv()).await;
    assert_eq!(ended.ok().flatten().as_deref(), Some("/idle/watch"));
}

async fn all_scenarios(target: Target, backend: &mut Backend) {
    echo_scenarios(target).await;
    big_message(target).await;
    backend_closes(target).await;
    client_vanishes(target, backend).await;
    idle_close(target, backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_through_the_seed_config() {
    let mut backend = Backend::start().await;
    let port = free_port();
    let conf = seed_config(port, backend.addr);
    let _rginx = tokio::task::block_in_place(|| start_rginx(&conf, port));
    all_scenarios(Target { port, tls: false }, &mut backend).await;

    let Some(nginx) = nginx() else { return };
    let nginx_port = free_port();
    let conf = seed_config(nginx_port, backend.addr);
    let _nginx = tokio::task::block_in_place(|| NginxServer::start(&nginx, &conf, nginx_port));
    all_scenarios(
        Target {
            port: nginx_port,
            tls: false,
        },
        &mut backend,
    )
    .await;
}

/// The seed's configuration on a TLS port (`listen ... ssl` and a
/// certificate): the same WebSockets over `wss://`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_over_tls_through_the_seed_config() {
    let mut backend = Backend::start().await;
    let certs = common::tls::Certs::make();
    let backend_addr = backend.addr;
    let tls_config = |port: u16| {
        seed_config(port, backend_addr).replace(
            &format!("listen 127.0.0.1:{port};"),
            &format!(
                "listen 127.0.0.1:{port} ssl;\n        {}",
                certs.lines("rsa")
            ),
        )
    };
    let port = free_port();
    let conf = tls_config(port);
    assert!(conf.contains(" ssl;"), "{conf}");
    let _rginx = tokio::task::block_in_place(|| start_rginx(&conf, port));
    all_scenarios(Target { port, tls: true }, &mut backend).await;

    let Some(nginx) = nginx() else { return };
    let nginx_port = free_port();
    let conf = tls_config(nginx_port);
    let _nginx = tokio::task::block_in_place(|| NginxServer::start(&nginx, &conf, nginx_port));
    all_scenarios(
        Target {
            port: nginx_port,
            tls: true,
        },
        &mut backend,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_tunnels_at_once() {
    let backend = Backend::start().await;
    let port = free_port();
    let conf = seed_config(port, backend.addr);
    // 500 tunnels are 1,000 connections: more than nginx's default of 512
    // per worker, so the limit is raised as nginx would need it
    let _rginx = tokio::task::block_in_place(|| {
        start_rginx_full(
            "worker_processes 1;",
            "worker_connections 1100;",
            &conf,
            port,
        )
    });
    let mut clients = Vec::new();
    for i in 0..500 {
        clients.push(tokio::spawn(async move {
            let mut ws = connect(Target { port, tls: false }, &format!("/ws/echo-{i}")).await;
            (
                i,
                ws.send(Message::text(format!("hello {i}"))).await.is_ok(),
                ws,
            )
        }));
    }
    // every tunnel is open at the same time before any answer is read
    let mut open = Vec::new();
    for client in clients {
        let (i, sent, ws) = client.await.expect("client task");
        assert!(sent, "tunnel {i}");
        open.push((i, ws));
    }
    for (i, ws) in &mut open {
        assert_eq!(next(ws).await, Some(Message::text(format!("hello {i}"))));
    }
}
