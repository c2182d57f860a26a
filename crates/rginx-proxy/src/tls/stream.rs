//! A TLS connection as a [`Transport`] (a client's, or one to an
//! upstream): rustls over the TCP socket, with the two things the engine
//! relies on that a bare TLS stream does not give.
//!
//! - **Readiness counts what rustls holds.** A read may leave decrypted
//!   bytes in rustls (a record larger than the caller's buffer, or a
//!   request that came in the same packet as the handshake's end); the
//!   socket then has nothing to read while the stream has. Waiting for the
//!   socket would wait forever, so the stream is "readable" until a read
//!   finds nothing left.
//! - **A write is done when its bytes are on the socket.** rustls keeps
//!   the records a write made until they are sent; the engine never
//!   flushes (a TCP socket needs no flush), so a write returns only once
//!   rustls has handed them all to the socket.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rginx_core::plan::TlsFacts;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsStream;

use crate::transport::{Stream, Transport};

/// A TLS connection whose handshake is done.
pub struct TlsConn {
    inner: TlsStream<TcpStream>,
    /// The last read may have left decrypted bytes in rustls.
    buffered: AtomicBool,
    /// A write whose bytes rustls took and has not sent whole yet: how
    /// many it took (the caller is told once they are sent).
    unsent: Option<usize>,
    /// A client's session, as its requests' `$ssl_*` see it.
    facts: Option<Arc<TlsFacts>>,
}

impl TlsConn {
    /// A client's connection.
    pub fn accepted(inner: tokio_rustls::server::TlsStream<TcpStream>, facts: TlsFacts) -> TlsConn {
        TlsConn {
            inner: TlsStream::Server(inner),
            // the request often comes in the packet that ends the handshake
            buffered: AtomicBool::new(true),
            unsent: None,
            facts: Some(Arc::new(facts)),
        }
    }

    /// A connection to an upstream.
    pub fn connected(inner: tokio_rustls::client::TlsStream<TcpStream>) -> TlsConn {
        TlsConn {
            inner: TlsStream::Client(inner),
            buffered: AtomicBool::new(false),
            unsent: None,
            facts: None,
        }
    }

    fn tcp(&self) -> &TcpStream {
        self.inner.get_ref().0
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        // a read that filled the buffer may have left more behind
        let full = buf.remaining() == 0 && buf.filled().len() > before;
        this.buffered.store(
            matches!(polled, Poll::Ready(Ok(()))) && full,
            Ordering::Relaxed,
        );
        polled
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let taken = match this.unsent {
            Some(taken) => taken,
            None => {
                let taken = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
                this.unsent = Some(taken);
                taken
            }
        };
        let flushed = Pin::new(&mut this.inner).poll_flush(cx);
        if flushed.is_ready() {
            this.unsent = None;
        }
        ready!(flushed)?;
        Poll::Ready(Ok(taken))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // close_notify, then the socket's write side
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A connection that ends says so first (nginx's `ngx_ssl_shutdown`): a
/// TLS client takes an end without `close_notify` for a truncation, and
/// OpenSSL then forgets the session instead of resuming it. The alert is
/// written without waiting: a few bytes a socket's buffer has room for.
impl Drop for TlsConn {
    fn drop(&mut self) {
        match &mut self.inner {
            TlsStream::Server(s) => {
                let (tcp, conn) = s.get_mut();
                close_notify(tcp, conn);
            }
            TlsStream::Client(s) => {
                let (tcp, conn) = s.get_mut();
                close_notify(tcp, conn);
            }
        }
    }
}

/// Queues `close_notify` and writes what rustls holds without waiting.
fn close_notify<D>(tcp: &TcpStream, conn: &mut rustls::ConnectionCommon<D>) {
    conn.send_close_notify();
    let mut out = TryWriter(tcp);
    while conn.wants_write() {
        if !matches!(conn.write_tls(&mut out), Ok(n) if n > 0) {
            break;
        }
    }
}

/// `std::io::Write` over a tokio socket's writes that do not wait.
struct TryWriter<'a>(&'a TcpStream);

impl io::Write for TryWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for TlsConn {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.buffered.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(()));
        }
        self.tcp().poll_read_ready(cx)
    }

    fn quiet(&self) -> bool {
        // a peek that does not wait: readiness left over from the last
        // read would say "readable" where nothing is
        if self.buffered.load(Ordering::Relaxed) {
            return false;
        }
        let mut probe = [0u8; 1];
        let mut buf = ReadBuf::new(&mut probe);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        self.tcp().poll_peek(&mut cx, &mut buf).is_pending()
    }

    fn into_tcp(self: Box<Self>) -> Result<TcpStream, Stream> {
        // the session state goes with the socket: it waits in its task
        Err(self)
    }

    fn tls(&self) -> Option<&Arc<TlsFacts>> {
        self.facts.as_ref()
    }
}
