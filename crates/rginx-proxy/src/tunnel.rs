//! The WebSocket (and any other upgrade) tunnel: bytes copied both ways
//! until either side closes (then both are closed once what it sent is
//! delivered: nginx propagates no half-close) or `proxy_read_timeout`
//! passes with no traffic either way.
//!
//! The two directions are polled independently: while one side cannot
//! take what the other sends, the other direction still flows (a relay
//! that waited for one would let two peers that both write before they
//! read block each other until a send timeout).
//!
//! It works over any `AsyncRead + AsyncWrite` pair (a TLS stream drops
//! in), and an idle tunnel holds no buffer: reads go into one buffer per
//! worker thread and are written on at once; only bytes the receiving
//! side cannot take at once are kept on the heap until it can (HAProxy
//! allocates buffers on demand the same way).

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The bytes a tunnel moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moved {
    /// Written to the client (what the upstream sent with its head
    /// included).
    pub to_client: u64,
    /// Written to the upstream (what the client sent with its request
    /// included).
    pub to_upstream: u64,
    /// Read from the upstream by the relay (after what came with its
    /// head).
    pub from_upstream: u64,
    /// It ended because nothing moved for its idle time.
    pub timed_out: bool,
}

/// How a tunnel ends: the bytes it moved. Each side is its
/// stream and what it sent that was read along with its head (the
/// client's after its request, the upstream's after its 101). The
/// streams' own write timeouts (`send_timeout`, `proxy_send_timeout`)
/// bound each direction's writes.
pub async fn run<C, U>(client: (C, Bytes), upstream: (U, Bytes), idle: Duration) -> Moved
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let (mut client, client_early) = client;
    let (mut upstream, upstream_early) = upstream;
    // bytes read along with the heads go first; then their buffers are
    // let go, so an idle tunnel keeps none
    let mut moved = Moved::default();
    if upstream.write_all(&client_early).await.is_err() {
        return moved;
    }
    moved.to_upstream = client_early.len() as u64;
    if client.write_all(&upstream_early).await.is_err() {
        return moved;
    }
    moved.to_client = upstream_early.len() as u64;
    drop((client_early, upstream_early));
    let relayed = relay(client, upstream, idle).await;
    Moved {
        to_client: moved.to_client + relayed.to_client,
        to_upstream: moved.to_upstream + relayed.to_upstream,
        ..relayed
    }
}

/// Copies between `client` and `upstream` until either closes or fails,
/// or `idle` passes with no traffic either way. Returns the bytes it
/// moved. Moving bytes allocates nothing unless the receiving side is
/// slow (tests/tunnel_no_alloc.rs).
pub async fn relay<C, U>(client: C, upstream: U, idle: Duration) -> Moved
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    Relay {
        client,
        upstream,
        up: Half::default(),
        down: Half::default(),
        idle,
        last_traffic: Instant::now(),
        timer: Box::pin(tokio::time::sleep(idle)),
    }
    .await
}

/// One direction of a tunnel.
#[derive(Default)]
struct Half {
    /// Bytes read that the receiving side has not taken yet.
    pending: Vec<u8>,
    /// How much of `pending` was written.
    written: usize,
    /// The sending side closed (or failed): the direction ends once
    /// `pending` is delivered.
    closed: bool,
    /// Bytes read from the sending side.
    moved: u64,
}

/// What polling one direction found.
enum Progress {
    /// Bytes moved.
    Moved,
    /// Nothing to do until a side is ready.
    Waiting,
    /// The direction ended: its sender closed and all it sent is out, or
    /// a write failed.
    Ended,
}

impl Half {
    /// Moves what it can from `from` to `to`.
    fn poll<R, W>(&mut self, cx: &mut Context<'_>, from: &mut R, to: &mut W) -> Progress
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut moved = false;
        for _ in 0..READS_PER_TURN {
            // the receiver first: what it has not taken yet
            while self.written < self.pending.len() {
                match Pin::new(&mut *to).poll_write(cx, &self.pending[self.written..]) {
                    Poll::Ready(Ok(n)) if n > 0 => {
                        self.written += n;
                        moved = true;
                    }
                    Poll::Ready(_) => return Progress::Ended,
                    Poll::Pending => {
                        return if moved {
                            Progress::Moved
                        } else {
                            Progress::Waiting
                        }
                    }
                }
            }
            if !self.pending.is_empty() {
                // all taken: let the heap buffer go
                self.pending = Vec::new();
                self.written = 0;
                let _ = Pin::new(&mut *to).poll_flush(cx);
            }
            if self.closed {
                return Progress::Ended;
            }
            match pump(cx, from, to, &mut self.pending) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    self.closed = true;
                }
                Poll::Ready(Ok(n)) => {
                    self.moved += n as u64;
                    moved = true;
                }
                Poll::Pending => {
                    return if moved {
                        Progress::Moved
                    } else {
                        Progress::Waiting
                    }
                }
            }
        }
        // a busy direction yields, and is polled again at once
        cx.waker().wake_by_ref();
        Progress::Moved
    }
}

/// The tunnel as one future: both directions and the idle timer.
struct Relay<C, U> {
    client: C,
    upstream: U,
    /// Client to upstream.
    up: Half,
    /// Upstream to client.
    down: Half,
    idle: Duration,
    last_traffic: Instant,
    /// Fires `idle` after the last traffic it knew of; traffic only notes
    /// the time and the timer is moved when it fires (moving it for every
    /// message would cost a timer-wheel update each).
    timer: Pin<Box<Sleep>>,
}

impl<C, U> Relay<C, U> {
    /// What it moved: a direction's bytes read are written unless the
    /// tunnel ends with some still pending.
    fn moved(&self, timed_out: bool) -> Moved {
        let delivered = |half: &Half| half.moved - (half.pending.len() - half.written) as u64;
        Moved {
            to_client: delivered(&self.down),
            to_upstream: delivered(&self.up),
            from_upstream: self.down.moved,
            timed_out,
        }
    }
}

impl<C, U> Future for Relay<C, U>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    type Output = Moved;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Moved> {
        let this = self.get_mut();
        let up = this.up.poll(cx, &mut this.client, &mut this.upstream);
        let down = this.down.poll(cx, &mut this.upstream, &mut this.client);
        if matches!(up, Progress::Ended) || matches!(down, Progress::Ended) {
            // either side closing ends both directions, once what it sent
            // is delivered (a failed write ends at once)
            let _ = Pin::new(&mut this.client).poll_flush(cx);
            return Poll::Ready(this.moved(false));
        }
        if matches!(up, Progress::Moved) || matches!(down, Progress::Moved) {
            this.last_traffic = Instant::now();
        }
        while this.timer.as_mut().poll(cx).is_ready() {
            let due = this.last_traffic + this.idle;
            if due <= Instant::now() {
                return Poll::Ready(this.moved(true));
            }
            this.timer.as_mut().reset(due);
        }
        Poll::Pending
    }
}

/// Bytes being relayed are read into this buffer, one per worker thread:
/// a buffer on the stack would be zeroed for every message, and one per
/// tunnel would sit idle with it.
const RELAY_BUF_SIZE: usize = 16 * 1024;

thread_local! {
    static RELAY_BUF: RefCell<[u8; RELAY_BUF_SIZE]> = const { RefCell::new([0; RELAY_BUF_SIZE]) };
}

/// Reads one direction makes in a row before the other gets its turn.
const READS_PER_TURN: usize = 8;

/// Reads what `from` has into this thread's relay buffer and writes it on
/// at once; what `to` does not take is kept in `pending`. Nothing stays
/// borrowed or allocated while the tunnel waits.
fn pump<R, W>(
    cx: &mut Context<'_>,
    from: &mut R,
    to: &mut W,
    pending: &mut Vec<u8>,
) -> Poll<io::Result<usize>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // pump never awaits nor calls itself, so the buffer is never borrowed
    // twice
    RELAY_BUF.with_borrow_mut(|buf| {
        let mut read = ReadBuf::new(buf);
        match Pin::new(&mut *from).poll_read(cx, &mut read) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        let n = read.filled().len();
        let mut written = 0;
        while written < n {
            match Pin::new(&mut *to).poll_write(cx, &buf[written..n]) {
                Poll::Ready(Ok(w)) if w > 0 => written += w,
                Poll::Ready(Ok(_)) | Poll::Ready(Err(_)) | Poll::Pending => {
                    pending.extend_from_slice(&buf[written..n]);
                    break;
                }
            }
        }
        Poll::Ready(Ok(n))
    })
}
