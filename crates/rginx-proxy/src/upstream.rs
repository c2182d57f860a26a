//! rginx's own HTTP/1 client for upstream servers, on the request's task:
//! the head goes out exactly as the plan says (names in their case, lines
//! in nginx's order, `rginx_http::upstream_request`), the response head is
//! read with `httparse` into the connection's buffer (names, case, order
//! and repeated lines kept, `rginx_http::response`) within
//! `proxy_buffer_size`, and the body is read by its framing (length,
//! chunked, until close) as the client takes it ([`UpstreamBody`]). A
//! connection read to the end of a response that keeps it alive goes back
//! to its group's pool.

use rginx_core::peer::PeerAddr;
use rginx_core::plan::TryBytes;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use rginx_http::chunked::{ChunkedDecoder, Step};
use rginx_http::response::{ResponseBody, ResponseHead};
use std::future::Future;

use tokio::io::AsyncWriteExt;
use tokio::sync::OwnedSemaphorePermit;

use crate::pool::{BoxError, Pool};
use crate::timed::TimedWrites;
use crate::transport::Stream;

/// How much is read from an upstream at a time.
const READ_SIZE: usize = 16 * 1024;

/// A connection to an upstream server.
pub struct UpstreamConn {
    /// Where it goes.
    pub addr: PeerAddr,
    /// Requests sent on it so far.
    pub requests: u64,
    /// The peer's request in progress, while the connection carries one.
    pub lease: Option<crate::balance::PeerLease>,
    /// When it was opened (`keepalive_time` counts from then).
    pub opened: std::time::Instant,
    stream: TimedWrites<Stream>,
    /// Bytes read and not yet used (a head being read, then body bytes).
    buf: BytesMut,
    /// Where the bytes of the request it carries are counted
    /// (`$upstream_bytes_*`).
    bytes: Arc<TryBytes>,
    /// Its `worker_connections` slot.
    _slot: OwnedSemaphorePermit,
}

/// Why reading a response head failed.
#[derive(Debug)]
pub enum HeadError {
    /// The upstream closed the connection; `early` when it sent nothing
    /// at all (a kept connection it had closed: tried again elsewhere).
    Closed {
        /// Nothing of a response came.
        early: bool,
    },
    /// Not a valid HTTP/1 response head.
    Invalid,
    /// The head does not fit in `proxy_buffer_size`.
    TooBig,
    /// Reading failed.
    Io(io::Error),
}

impl UpstreamConn {
    /// A connection just opened, holding its slot.
    pub fn new(addr: PeerAddr, stream: TimedWrites<Stream>, slot: OwnedSemaphorePermit) -> Self {
        UpstreamConn {
            addr,
            requests: 0,
            lease: None,
            opened: std::time::Instant::now(),
            stream,
            buf: BytesMut::new(),
            bytes: Arc::default(),
            _slot: slot,
        }
    }

    /// Whether an idle connection is still usable: the upstream has not
    /// closed it nor sent anything since its last response.
    pub fn idle_ok(&self) -> bool {
        self.buf.is_empty() && self.stream.quiet()
    }

    /// Counts what it moves into `bytes` from now on (a request's try).
    pub fn count_into(&mut self, bytes: Arc<TryBytes>) {
        self.bytes = bytes;
    }

    /// Writes `bytes` (with `proxy_send_timeout`).
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let written = self.stream.write_all(bytes).await;
        if written.is_ok() {
            self.bytes.sent(bytes.len() as u64);
        }
        written
    }

    /// Flushes what was written.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.stream.flush().await
    }

    /// Reads the response head; it must fit in `limit` bytes
    /// (`proxy_buffer_size`).
    pub async fn read_head(&mut self, limit: usize) -> Result<ResponseHead, HeadError> {
        loop {
            if !self.buf.is_empty() {
                match ResponseHead::parse(&self.buf) {
                    Ok(Some(head)) if head.len > limit => return Err(HeadError::TooBig),
                    Ok(Some(head)) => return Ok(head),
                    Ok(None) if self.buf.len() >= limit => return Err(HeadError::TooBig),
                    Ok(None) => {}
                    Err(_) => return Err(HeadError::Invalid),
                }
            }
            self.buf.reserve(READ_SIZE.min(limit.max(1024)));
            let read = tokio::io::AsyncReadExt::read_buf(&mut self.stream, &mut self.buf)
                .await
                .map_err(HeadError::Io)?;
            self.bytes.received(read as u64);
            if read == 0 {
                return Err(HeadError::Closed {
                    early: self.buf.is_empty(),
                });
            }
        }
    }

    /// Takes the head's bytes out of the buffer (what [`ResponseHead`]'s
    /// spans point into): what is left are body bytes.
    pub fn take_head(&mut self, head: &ResponseHead) -> Bytes {
        // the buffer stays with the connection, also in the pool, so that
        // the next response reuses it (at most `keepalive` connections per
        // worker keep one)
        self.buf.split_to(head.len.min(self.buf.len())).freeze()
    }

    /// The stream (with `proxy_send_timeout` on writes), the bytes the
    /// upstream sent after the head, and where the tunnel's bytes count,
    /// for a tunnel.
    pub fn into_tunnel(self) -> UpstreamTunnel {
        UpstreamTunnel {
            stream: self.stream,
            early: self.buf.freeze(),
            lease: self.lease,
            bytes: self.bytes,
        }
    }
}

/// The upstream side of a connection that becomes a tunnel.
pub struct UpstreamTunnel {
    /// The stream, with `proxy_send_timeout` on writes.
    pub stream: TimedWrites<Stream>,
    /// What the upstream sent after its 101 head.
    pub early: Bytes,
    /// The peer's request in progress.
    pub lease: Option<crate::balance::PeerLease>,
    /// Where the tunnel's bytes are counted.
    pub bytes: Arc<TryBytes>,
}

/// Where a response body is.
enum Framing {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
    Done,
}

/// A response body read from its upstream connection as the client takes
/// it; the connection goes back to `pool` when the body was read whole and
/// the response keeps it alive.
pub struct UpstreamBody {
    conn: Option<crate::pool::Conn>,
    framing: Framing,
    /// Where the connection goes after the body, if it may be reused.
    pool: Option<Arc<Pool>>,
    length: Option<u64>,
}

/// The upstream closed the connection before the end of the body.
#[derive(Debug, thiserror::Error)]
#[error("upstream prematurely closed connection")]
pub struct Premature;

/// How nginx's "... while reading upstream" line names a failure reading
/// a response body: a read timeout, or a connection that ended.
pub fn body_failure_words(error: &BoxError) -> &'static str {
    if error.is::<crate::timed::TimedOut>() {
        "upstream timed out (110: Connection timed out)"
    } else {
        "upstream prematurely closed connection"
    }
}

/// The body's chunked coding is invalid.
#[derive(Debug, thiserror::Error)]
#[error("upstream sent invalid chunked response")]
pub struct InvalidChunked;

impl UpstreamBody {
    /// The body after `head` (already consumed from `conn`), framed as
    /// `framing` says; `pool` takes the connection back afterwards.
    pub fn new(conn: crate::pool::Conn, framing: ResponseBody, pool: Option<Arc<Pool>>) -> Self {
        let (framing, length) = match framing {
            ResponseBody::Empty => (Framing::Done, Some(0)),
            ResponseBody::Length(n) => (Framing::Length(n), Some(n)),
            ResponseBody::Chunked => (Framing::Chunked(ChunkedDecoder::new()), None),
            ResponseBody::UntilClose => (Framing::UntilClose, None),
        };
        let mut body = UpstreamBody {
            conn: Some(conn),
            framing,
            pool,
            length,
        };
        if matches!(body.framing, Framing::Done) {
            body.finish();
        }
        body
    }

    /// The body is read whole: the connection goes back to its pool if it
    /// may (nothing more came after the body).
    fn finish(&mut self) {
        self.framing = Framing::Done;
        if let (Some(pool), Some(conn)) = (self.pool.take(), self.conn.take()) {
            if conn.buf.is_empty() {
                pool.put(conn);
            }
        }
    }

    /// Takes body data from the bytes read so far, if there are any.
    fn take_buffered(&mut self) -> Result<Option<Bytes>, BoxError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(None);
        };
        if conn.buf.is_empty() {
            return Ok(None);
        }
        match &mut self.framing {
            Framing::Length(left) => {
                let take = usize::try_from(*left)
                    .unwrap_or(usize::MAX)
                    .min(conn.buf.len());
                let data = conn.buf.split_to(take).freeze();
                *left -= take as u64;
                if *left == 0 {
                    self.finish();
                }
                Ok(Some(data))
            }
            Framing::Chunked(decoder) => loop {
                let Step {
                    consumed,
                    data,
                    done,
                } = decoder.step(&conn.buf).map_err(|_| InvalidChunked)?;
                let read = conn.buf.split_to(consumed).freeze();
                if done {
                    self.finish();
                    return Ok(None);
                }
                if !data.is_empty() {
                    return Ok(Some(read.slice(data)));
                }
                if conn.buf.is_empty() {
                    return Ok(None);
                }
            },
            Framing::UntilClose => Ok(Some(conn.buf.split().freeze())),
            Framing::Done => Ok(None),
        }
    }
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            if matches!(this.framing, Framing::Done) {
                return Poll::Ready(None);
            }
            match this.take_buffered() {
                Ok(Some(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Ok(None) if matches!(this.framing, Framing::Done) => return Poll::Ready(None),
                Ok(None) => {}
                Err(e) => {
                    this.framing = Framing::Done;
                    this.conn = None;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            conn.buf.reserve(READ_SIZE);
            // a read future polled once: it reads into the buffer's spare
            // room, or registers for readiness and takes nothing
            let reading = tokio::io::AsyncReadExt::read_buf(&mut conn.stream, &mut conn.buf);
            let read = match std::pin::pin!(reading).poll(cx) {
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => {
                    this.framing = Framing::Done;
                    this.conn = None;
                    return Poll::Ready(Some(Err(Box::new(e))));
                }
                Poll::Pending => return Poll::Pending,
            };
            conn.bytes.received(read as u64);
            if read == 0 {
                let until_close = matches!(this.framing, Framing::UntilClose);
                this.framing = Framing::Done;
                this.conn = None;
                return Poll::Ready(if until_close {
                    None
                } else {
                    Some(Err(Box::new(Premature)))
                });
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.framing, Framing::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.length {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
