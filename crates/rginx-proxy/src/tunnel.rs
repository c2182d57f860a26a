//! The WebSocket (and any other upgrade) tunnel: bytes copied both ways
//! until either side closes (then both are closed: nginx propagates no
//! half-close) or `proxy_read_timeout` passes with no traffic either way.
//!
//! An idle tunnel holds no buffer: it waits for readiness on the two
//! sockets and reads into one buffer per worker thread, writing
//! straight on; only bytes the other side cannot take at once
//! are kept on the heap until it can (HAProxy allocates buffers on demand
//! the same way).

use std::cell::RefCell;
use std::io;
use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;

use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How a tunnel ends: the bytes sent to the client. Each side is its
/// socket and what it sent that was read along with its head (the
/// client's after its request, the upstream's after its 101).
pub async fn run(
    client: (TcpStream, Bytes),
    upstream: (TcpStream, Bytes),
    idle: Duration,
    client_send: Duration,
    upstream_send: Duration,
) -> u64 {
    let (client, client_early) = client;
    let (upstream, upstream_early) = upstream;
    let sides = Sides {
        client: &client,
        upstream: &upstream,
        client_send,
        upstream_send,
    };
    // bytes read along with the heads go first; then their buffers are
    // let go, so an idle tunnel keeps none
    let early = upstream_early.len() as u64;
    let sent_early = sides.forward(&client_early, Direction::Up).await.is_ok()
        && sides
            .forward(&upstream_early, Direction::Down)
            .await
            .is_ok();
    drop((client_early, upstream_early));
    if !sent_early {
        return 0;
    }
    early + relay(&client, &upstream, idle, client_send, upstream_send).await
}

/// Copies between two sockets until either closes or `idle` passes with
/// no traffic either way; each side's writes wait at most its send
/// timeout. Returns the bytes sent to `client`. Moving bytes allocates
/// nothing unless the receiving side is slow (tests/tunnel_no_alloc.rs).
pub async fn relay(
    client: &TcpStream,
    upstream: &TcpStream,
    idle: Duration,
    client_send: Duration,
    upstream_send: Duration,
) -> u64 {
    Sides {
        client,
        upstream,
        client_send,
        upstream_send,
    }
    .copy(idle)
    .await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Client to upstream.
    Up,
    /// Upstream to client.
    Down,
}

struct Sides<'a> {
    client: &'a TcpStream,
    upstream: &'a TcpStream,
    client_send: Duration,
    upstream_send: Duration,
}

impl Sides<'_> {
    fn ends(&self, dir: Direction) -> (&TcpStream, &TcpStream, Duration) {
        match dir {
            Direction::Up => (self.client, self.upstream, self.upstream_send),
            Direction::Down => (self.upstream, self.client, self.client_send),
        }
    }

    /// Writes all of `bytes` to the receiving side of `dir`, waiting for it
    /// at most its send timeout between two writes.
    async fn forward(&self, mut bytes: &[u8], dir: Direction) -> io::Result<()> {
        let (_, to, send_timeout) = self.ends(dir);
        while !bytes.is_empty() {
            match to.try_write(bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let ready = tokio::time::timeout(send_timeout, to.writable()).await;
                    match ready {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return Err(e),
                        Err(_) => return Err(io::ErrorKind::TimedOut.into()),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Copies until a side closes, fails, or `idle` passes without traffic.
    async fn copy(&self, idle: Duration) -> u64 {
        let mut sent = 0u64;
        let mut pending = Vec::new();
        // traffic only notes the time; the timer is moved when it fires
        // (moving it on every message would cost a timer-wheel update each)
        let mut last_traffic = Instant::now();
        let mut timer = pin!(tokio::time::sleep(idle));
        loop {
            let dir = tokio::select! {
                r = self.client.readable() => match r {
                    Ok(()) => Direction::Up,
                    Err(_) => break,
                },
                r = self.upstream.readable() => match r {
                    Ok(()) => Direction::Down,
                    Err(_) => break,
                },
                () = &mut timer => {
                    let due = last_traffic + idle;
                    if due <= Instant::now() {
                        break;
                    }
                    timer.as_mut().reset(due);
                    continue;
                }
            };
            let (from, to, _) = self.ends(dir);
            match pump(from, to, &mut pending) {
                Ok(Pumped::Idle) => continue,
                Ok(Pumped::Closed) | Err(_) => break,
                Ok(Pumped::Moved(n)) => {
                    if dir == Direction::Down {
                        sent += n as u64;
                    }
                    last_traffic = Instant::now();
                }
            }
            if !pending.is_empty() {
                // the other side is slow: hold these bytes until it takes
                // them, reading no more meanwhile
                let held = std::mem::take(&mut pending);
                if self.forward(&held, dir).await.is_err() {
                    break;
                }
            }
        }
        sent
    }
}

/// What one readiness event moved.
enum Pumped {
    /// Nothing was there after all.
    Idle,
    /// The sending side closed.
    Closed,
    /// This many bytes were read (those the other side did not take at
    /// once are in `pending`).
    Moved(usize),
}

/// Bytes being relayed are read into this buffer, one per worker thread:
/// a buffer on the stack would be zeroed for every message, and one per
/// tunnel would sit idle with it.
const RELAY_BUF_SIZE: usize = 16 * 1024;

thread_local! {
    static RELAY_BUF: RefCell<[u8; RELAY_BUF_SIZE]> = const { RefCell::new([0; RELAY_BUF_SIZE]) };
}

/// Reads what is there into this thread's relay buffer and writes it on
/// at once; nothing stays allocated while the tunnel is idle.
fn pump(from: &TcpStream, to: &TcpStream, pending: &mut Vec<u8>) -> io::Result<Pumped> {
    // pump never awaits nor calls itself, so the buffer is never borrowed
    // twice
    RELAY_BUF.with_borrow_mut(|buf| {
        let n = match read_draining(from, buf) {
            Ok(0) => return Ok(Pumped::Closed),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Pumped::Idle),
            Err(e) => return Err(e),
        };
        let mut written = 0;
        while written < n {
            match to.try_write(&buf[written..n]) {
                Ok(w) => written += w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    pending.extend_from_slice(&buf[written..n]);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Pumped::Moved(n))
    })
}

/// Reads what `from` holds; when that fills less than `buf`, the socket is
/// drained, so its readiness is cleared at once (as nginx does after a
/// short `recv`) instead of being found out by one more `recv` that fails
/// with `EAGAIN`: that saves one system call per message. Readiness that
/// arrived after the read is kept (tokio compares the event's tick).
fn read_draining(from: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    let drained = from.try_io(Interest::READABLE, || {
        n = from.try_read(buf)?;
        if n > 0 && n < buf.len() {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(())
        }
    });
    match drained {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && n == 0 => Err(e),
        Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
        _ => Ok(n),
    }
}
