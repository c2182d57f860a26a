//! The HTTP/1 server works over any stream, not only a TCP socket (a TLS
//! stream drops in the same way): here requests are served over an
//! in-memory pipe, pipelined, and answered as over a socket.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rginx_core::plan::Runtime;
use rginx_proxy::engine::{Engine, EngineCell};
use rginx_proxy::http1::{serve, ClientConnection};
use rginx_proxy::transport::{Stream, Transport};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

/// An in-memory stream; it has no readiness of its own, so it is always
/// "ready" and the server simply reads.
struct Pipe(DuplexStream);

impl AsyncRead for Pipe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Pipe {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl Transport for Pipe {
    fn poll_read_ready(&self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn into_tcp(self: Box<Self>) -> Result<tokio::net::TcpStream, Stream> {
        Err(self)
    }
}

const CONFIG: &str = "events {}
http {
    server {
        listen 127.0.0.1:8080;
        location = /status { stub_status; }
    }
}";

#[tokio::test(flavor = "current_thread")]
async fn requests_are_served_over_an_in_memory_stream() {
    let (_, checked) = rginx_testkit::config::check("pipe.conf", CONFIG);
    let runtime = Runtime::new(&checked.model, "pipe.conf").unwrap();
    let engine = Arc::new(Engine::new(&checked.model, runtime, 1));
    let current = Arc::new(EngineCell::new(engine.clone()));
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (_quit_tx, quit) = tokio::sync::watch::channel(false);
    let slot = Arc::new(tokio::sync::Semaphore::new(1))
        .try_acquire_owned()
        .unwrap();
    let connection = ClientConnection {
        number: 1,
        local: "127.0.0.1:8080".parse().unwrap(),
        remote: "127.0.0.1:5555".parse().unwrap(),
        served: 0,
        opened: rginx_proxy::http1::uptime_ms(),
        plain_on_tls: false,
    };
    let served = tokio::spawn(serve(
        current,
        engine,
        Box::new(Pipe(server)),
        connection,
        quit,
        slot,
        tokio::time::Instant::now() + std::time::Duration::from_secs(60),
    ));
    let mut client = client;
    client
        .write_all(
            b"GET /status HTTP/1.1\r\nHost: a\r\n\r\nGET /missing HTTP/1.0\r\nHost: a\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    client.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    assert!(
        answer.starts_with(concat!(
            "HTTP/1.1 200 OK\r\nServer: rginx/",
            env!("CARGO_PKG_VERSION"),
            "\r\nDate: "
        )),
        "{answer}"
    );
    assert!(answer.contains("\r\n\r\nActive connections: "), "{answer}");
    // the HTTP/1.0 request without keep-alive ends the connection, with
    // an HTTP/1.1 status line as nginx writes it
    let second = &answer[answer.find("HTTP/1.1 404").expect("the second answer")..];
    assert!(second.contains("Connection: close\r\n"), "{second}");
    assert!(second.ends_with(concat!(
        "<hr><center>rginx/",
        env!("CARGO_PKG_VERSION"),
        "</center>\r\n</body>\r\n</html>\r\n"
    )));
    served.await.unwrap();
}
