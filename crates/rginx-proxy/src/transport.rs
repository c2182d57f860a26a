//! The byte streams requests travel on, on either side: anything that
//! reads and writes asynchronously and can say when it has something to
//! read without reading it. A plain TCP socket is one; a TLS stream over
//! one drops in as another. Waiting for readiness instead of reading is
//! what lets an idle tunnel hold no buffer, and an idle keep-alive
//! connection be parked as its bare socket.

use std::io;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::timed::TimedWrites;

/// A stream rginx serves or proxies over.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static {
    /// Ready once the stream has something to read (bytes, its end or an
    /// error), without reading it.
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// The TCP socket this stream is, if it is only that (an idle
    /// keep-alive connection on one is parked as its bare socket); the
    /// stream itself otherwise (a TLS stream keeps its session state).
    fn into_tcp(self: Box<Self>) -> Result<TcpStream, Stream>;

    /// Whether the stream has nothing to read right now (for a kept
    /// connection: the peer neither closed it nor sent anything while it
    /// was idle, as `ngx_http_upstream_keepalive_close_handler` checks).
    fn quiet(&self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        self.poll_read_ready(&mut cx).is_pending()
    }

    /// The TLS session the stream runs in, if it is a TLS stream (its
    /// `$ssl_*` variables).
    fn tls(&self) -> Option<&std::sync::Arc<rginx_core::plan::TlsFacts>> {
        None
    }
}

impl Transport for TcpStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TcpStream::poll_read_ready(self, cx)
    }

    fn into_tcp(self: Box<Self>) -> Result<TcpStream, Stream> {
        Ok(*self)
    }

    fn quiet(&self) -> bool {
        // a read that does not wait: readiness left over from the last
        // read would say "readable" where nothing is
        let mut probe = [0u8; 1];
        matches!(self.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

impl Transport for tokio::net::UnixStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tokio::net::UnixStream::poll_read_ready(self, cx)
    }

    fn into_tcp(self: Box<Self>) -> Result<TcpStream, Stream> {
        Err(self)
    }

    fn quiet(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

/// A boxed stream: the engine handles every kind the same way.
pub type Stream = Box<dyn Transport>;

impl Transport for Stream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        (**self).poll_read_ready(cx)
    }

    fn into_tcp(self: Box<Self>) -> Result<TcpStream, Stream> {
        (*self).into_tcp()
    }

    fn quiet(&self) -> bool {
        (**self).quiet()
    }

    fn tls(&self) -> Option<&std::sync::Arc<rginx_core::plan::TlsFacts>> {
        (**self).tls()
    }
}

impl<S: Transport> TimedWrites<S> {
    /// Waits until the stream has something to read, without reading.
    pub async fn readable(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.get_ref().poll_read_ready(cx)).await
    }

    /// Whether the stream has nothing to read right now.
    pub fn quiet(&self) -> bool {
        self.get_ref().quiet()
    }
}

/// A connection's buffer for the heads it writes, kept from one request to
/// the next so that writing a head allocates nothing (a parked connection
/// drops it with the rest of its state).
#[derive(Debug, Default)]
pub struct HeadBuf(Vec<u8>);

/// The size a head buffer starts at, and the most it keeps.
const HEAD_BUF: usize = 512;
const HEAD_BUF_KEPT: usize = 8 * 1024;

impl HeadBuf {
    /// The buffer, empty, to write a head into.
    pub fn take(&mut self) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.0);
        buf.clear();
        if buf.capacity() == 0 {
            buf.reserve(HEAD_BUF);
        }
        buf
    }

    /// Takes a written buffer back (not one a large head or body grew).
    pub fn give_back(&mut self, buf: Vec<u8>) {
        if buf.capacity() <= HEAD_BUF_KEPT {
            self.0 = buf;
        }
    }
}
