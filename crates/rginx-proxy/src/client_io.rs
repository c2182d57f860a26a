//! A client connection as the HTTP/1 server reads it: nginx's read timers
//! ([`ClientTimers`]), `send_timeout` on writes, and its checks on every
//! request head ([`rginx_http::framer`]).
//!
//! The stream hands the parser one request at a time. The bytes of the
//! current request (its head, then its body as the head frames it) pass;
//! whatever the client sent after them is held back until the request is
//! answered, and only then goes through nginx's head checks as the next
//! request. A pipelined head is therefore checked like any other: one with
//! ambiguous framing or past the buffer limits is refused with nginx's page
//! after the answers before it, as nginx does, and never reaches a
//! backend. After an upgrade the held bytes are the tunnel's first
//! ([`ClientIo::into_parts`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rginx_http::framer::{Advance, RequestFramer};
use rginx_http::head_scan::{HeadRefusal, HeadScanner};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use crate::status::ConnectionState;
use crate::timed::{until, BodyWatch, TimedWrites};

/// At most this many bytes past the current request are held; then the
/// client is not read until the request is answered.
const HOLD_LIMIT: usize = 64 * 1024;

/// nginx's `lingering_timeout` and `lingering_time` defaults: after a
/// refusal page, what the client still sends is read and dropped for up to
/// 5 s between reads and 30 s in all, so that closing with unread bytes
/// does not reset the connection before the client has read the page
/// (`ngx_http_set_lingering_close`).
const LINGERING_TIMEOUT: Duration = Duration::from_secs(5);
const LINGERING_TIME: Duration = Duration::from_secs(30);

/// The read timers of a client connection, shared between its stream and
/// the requests on it. nginx's rules: waiting for the next request is
/// bounded by `keepalive_timeout` (by `client_header_timeout` before the
/// first); once its first bytes came, the rest of the head by
/// `client_header_timeout`; while a request is being served there is no
/// read timer (its body has `client_body_timeout`, a tunnel its own).
/// They also hold the connection's place in `stub_status`'s figures: it
/// counts as open while they live (a tunnel keeps them).
#[derive(Debug)]
pub struct ClientTimers {
    state: ConnectionState,
    in_flight: AtomicU32,
    /// Requests answered on the connection so far.
    answered: AtomicU64,
    idle_ms: AtomicU64,
    header_ms: AtomicU64,
    /// The read waiting without a timer while a request was served: woken
    /// when the request is done, so its idle timer starts.
    parked_read: Mutex<Option<Waker>>,
    /// The client closed its side while a request was being served.
    gone: std::sync::atomic::AtomicBool,
    /// The request body being sent upstream.
    pub body: Arc<BodyWatch>,
    gone_notify: tokio::sync::Notify,
}

impl ClientTimers {
    /// Timers for a new connection: `header` both for the wait for the
    /// first request and for receiving a head.
    pub fn new(header: Duration) -> Arc<ClientTimers> {
        let ms = millis(header);
        Arc::new(ClientTimers {
            state: ConnectionState::open(),
            in_flight: AtomicU32::new(0),
            answered: AtomicU64::new(0),
            idle_ms: AtomicU64::new(ms),
            header_ms: AtomicU64::new(ms),
            parked_read: Mutex::new(None),
            gone: std::sync::atomic::AtomicBool::new(false),
            body: Arc::new(BodyWatch::default()),
            gone_notify: tokio::sync::Notify::new(),
        })
    }

    /// A request head was read: no read timer until it is answered.
    pub fn request_started(&self) {
        self.state.writing();
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// A response was sent: the wait for the next request is bounded by
    /// `keepalive` and the next head by `header`.
    pub fn request_done(&self, keepalive: Duration, header: Duration) {
        self.idle_ms.store(millis(keepalive), Ordering::Release);
        self.header_ms.store(millis(header), Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.answered.fetch_add(1, Ordering::AcqRel);
        self.state.waiting();
        if let Some(waker) = self.parked_read.lock().ok().and_then(|mut w| w.take()) {
            waker.wake();
        }
    }

    /// The client closed its connection while a request was served.
    fn client_gone(&self) {
        self.gone.store(true, Ordering::Release);
        self.gone_notify.notify_waiters();
    }

    /// Returns once the client has closed its connection (never, while
    /// it stays).
    pub async fn gone(&self) {
        until(&self.gone_notify, || self.gone.load(Ordering::Acquire)).await;
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Which read timer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadPhase {
    Serving,
    Idle,
    Head,
}

/// A client stream with nginx's read timers ([`ClientTimers`]), its head
/// checks and `send_timeout` on writes. When a read timer runs out the
/// stream ends, as nginx closes such a connection without an answer.
pub struct ClientIo<S> {
    inner: TimedWrites<S>,
    timers: Arc<ClientTimers>,
    phase: ReadPhase,
    head_started: bool,
    /// A request was served: later heads get a header timer of their own
    /// (the first shares the one that started at accept).
    served_one: bool,
    sleep: Option<Pin<Box<Sleep>>>,
    /// Where the client's bytes are: which request, which part of it.
    framer: RequestFramer,
    /// Requests handed to the parser whole.
    handed: u64,
    /// Bytes read past the current request, held until it is answered
    /// (empty, and holding no memory, unless the client pipelines).
    held: Vec<u8>,
    /// The client's end of stream came while bytes were held.
    eof: bool,
    /// nginx's page for a refused head, and how much of it is written.
    refusal: Option<(Vec<u8>, usize)>,
    /// The parser wrote bytes it has not flushed yet (a refusal page
    /// waits for them: it comes after the answers before it).
    unflushed: bool,
    /// Reads end here: a head was refused or a body could not be read.
    ended: bool,
    /// After a refusal page: the end of lingering (`None` before it).
    lingering_until: Option<tokio::time::Instant>,
}

impl<S> ClientIo<S> {
    /// Wraps an accepted stream; `scanner` holds the server's head limits.
    pub fn new(
        inner: S,
        timers: Arc<ClientTimers>,
        send_timeout: Duration,
        scanner: HeadScanner,
    ) -> ClientIo<S> {
        ClientIo {
            inner: TimedWrites::new(inner, send_timeout),
            timers,
            phase: ReadPhase::Idle,
            head_started: false,
            served_one: false,
            sleep: None,
            framer: RequestFramer::new(scanner),
            handed: 0,
            held: Vec::new(),
            eof: false,
            refusal: None,
            unflushed: false,
            ended: false,
            lingering_until: None,
        }
    }

    /// The accepted stream inside and the bytes the client sent after the
    /// last request (for a tunnel, which keeps its own time and sends them
    /// on first).
    pub fn into_parts(self) -> (S, Vec<u8>) {
        (self.inner.into_inner(), self.held)
    }

    fn current_phase(&mut self) -> ReadPhase {
        if self.timers.in_flight.load(Ordering::Acquire) > 0 {
            // the next head starts afresh once this request is answered
            self.head_started = false;
            self.served_one = true;
            ReadPhase::Serving
        } else if self.head_started {
            ReadPhase::Head
        } else {
            ReadPhase::Idle
        }
    }

    /// Notes a write the parser made (a refusal page waits for its flush).
    fn wrote(&mut self, polled: &Poll<io::Result<usize>>) {
        if let Poll::Ready(Ok(n)) = polled {
            self.unflushed |= *n > 0;
        }
    }

    /// A head nginx refuses: its page is written once the parser has sent
    /// what it holds, then the stream ends. A body nginx cannot read ends
    /// the stream at once (the parser sees it cut short and answers 400).
    fn refuse(&mut self, refusal: HeadRefusal) {
        self.ended = true;
        if refusal != HeadRefusal::InvalidChunk {
            self.refusal = Some((crate::engine::refusal(refusal), 0));
        }
    }

    /// Follows `bytes` as the continuation of the current request: how
    /// many of them belong to it (a refused head ends the stream there).
    fn follow(&mut self, bytes: &[u8]) -> usize {
        match self.framer.advance(bytes) {
            Ok(Advance { taken, complete }) => {
                if complete {
                    self.handed += 1;
                }
                taken
            }
            Err((taken, refusal)) => {
                self.refuse(refusal);
                taken
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ClientIo<S> {
    /// Writes the refusal page; ready once it is out (or cannot be).
    fn poll_refusal(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.unflushed {
            // the parser's answers go first: it flushes before it reads
            // again
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        while let Some((page, written)) = self.refusal.as_mut() {
            if *written == page.len() {
                self.refusal = None;
                break;
            }
            match Pin::new(&mut self.inner).poll_write(cx, &page[*written..]) {
                Poll::Ready(Ok(n)) if n > 0 => *written += n,
                Poll::Ready(_) => self.refusal = None,
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(())
    }

    /// After a refusal page: the write side is shut, and what the client
    /// still sends is dropped until it closes or lingering times out.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let until = *self
            .lingering_until
            .get_or_insert_with(|| tokio::time::Instant::now() + LINGERING_TIME);
        if Pin::new(&mut self.inner).poll_shutdown(cx).is_pending() {
            return Poll::Pending;
        }
        loop {
            let mut chunk = [0u8; 4096];
            let mut chunk_buf = ReadBuf::new(&mut chunk);
            match Pin::new(&mut self.inner).poll_read(cx, &mut chunk_buf) {
                Poll::Ready(Ok(())) if !chunk_buf.filled().is_empty() => {
                    self.sleep = None;
                    continue;
                }
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => {}
            }
            let deadline = until.min(tokio::time::Instant::now() + LINGERING_TIMEOUT);
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            return if sleep.as_mut().poll(cx).is_ready() {
                Poll::Ready(())
            } else {
                Poll::Pending
            };
        }
    }

    /// Reads what the client sends while the current request is whole and
    /// not yet answered: held for the next one (bounded), so that the
    /// client's leaving is still noticed.
    fn poll_hold(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.eof || self.held.len() >= HOLD_LIMIT {
                if let Ok(mut parked) = self.timers.parked_read.lock() {
                    *parked = Some(cx.waker().clone());
                }
                if self.timers.answered.load(Ordering::Acquire) >= self.handed {
                    cx.waker().wake_by_ref();
                }
                return Poll::Pending;
            }
            let mut chunk = [0u8; 4096];
            let mut chunk_buf = ReadBuf::new(&mut chunk);
            match self.poll_timed_read(cx, &mut chunk_buf) {
                Poll::Ready(Ok(())) if chunk_buf.filled().is_empty() => self.eof = true,
                Poll::Ready(Ok(())) => self.held.extend_from_slice(chunk_buf.filled()),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Reads from the client under nginx's read timers.
    fn poll_timed_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let phase = self.current_phase();
        if polled.is_ready() {
            if phase == ReadPhase::Serving && buf.filled().len() == before {
                // end of stream (or an error) while a request is served:
                // the client left (nginx: 499 when it waits for upstream)
                self.timers.client_gone();
            }
            if buf.filled().len() > before && phase == ReadPhase::Idle {
                // the first bytes of a head: its own timer from now
                self.head_started = true;
                self.timers.state.reading();
            }
            // nginx's header timer runs from the start of the head (of the
            // connection, for its first request) to its end: bytes that
            // trickle in do not move it, or a client sending a byte now
            // and then would hold the connection for ever (slowloris)
            let phase = self.current_phase();
            let keep_timer = match (self.phase, phase) {
                (ReadPhase::Head, ReadPhase::Head) => true,
                (ReadPhase::Idle, ReadPhase::Head) => !self.served_one,
                _ => false,
            };
            if !keep_timer {
                self.sleep = None;
            }
            self.phase = phase;
            return polled;
        }
        if phase != self.phase {
            self.sleep = None;
            self.phase = phase;
        }
        let ms = match phase {
            ReadPhase::Serving => {
                if let Ok(mut parked) = self.timers.parked_read.lock() {
                    *parked = Some(cx.waker().clone());
                }
                // the request may have been answered meanwhile
                if self.timers.in_flight.load(Ordering::Acquire) > 0 {
                    return Poll::Pending;
                }
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            ReadPhase::Idle => self.timers.idle_ms.load(Ordering::Acquire),
            ReadPhase::Head => self.timers.header_ms.load(Ordering::Acquire),
        };
        let after = Duration::from_millis(ms);
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(after)));
        if sleep.as_mut().poll(cx).is_ready() {
            // end of stream: the parser closes the connection
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for ClientIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ended {
            if this.refusal.is_some() {
                if this.poll_refusal(cx).is_pending() {
                    return Poll::Pending;
                }
                this.sleep = None;
                this.lingering_until = Some(tokio::time::Instant::now() + LINGERING_TIME);
            }
            if this.lingering_until.is_some() && this.poll_linger(cx).is_pending() {
                return Poll::Pending;
            }
            this.lingering_until = None;
            return Poll::Ready(Ok(()));
        }
        // the next request begins once every one before it is answered
        if this.framer.complete() && this.timers.answered.load(Ordering::Acquire) >= this.handed {
            this.framer.next_request();
        }
        if this.framer.complete() {
            return match this.poll_hold(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Pending,
            };
        }
        if !this.held.is_empty() {
            if this.framer.between_requests() {
                // a pipelined head: its header timer starts now
                this.head_started = true;
                this.timers.state.reading();
                this.sleep = None;
                this.phase = ReadPhase::Head;
            }
            let held = std::mem::take(&mut this.held);
            let n = held.len().min(buf.remaining());
            let taken = this.follow(&held[..n]);
            buf.put_slice(&held[..taken]);
            if taken < held.len() && !this.ended {
                this.held = held[taken..].to_vec();
            }
            return this.after_pass(taken, cx, buf);
        }
        if this.eof {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match this.poll_timed_read(cx, buf) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        if buf.filled().len() == before {
            return Poll::Ready(Ok(()));
        }
        // the bytes are looked at where they were read: only those past
        // the current request are copied (to be held)
        let taken = this.follow(&buf.filled()[before..]);
        if !this.ended {
            this.held.extend_from_slice(&buf.filled()[before + taken..]);
        }
        buf.set_filled(before + taken);
        this.after_pass(taken, cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ClientIo<S> {
    /// After bytes were passed on: a head refused at its first byte has
    /// nothing to hand over (its page comes next); otherwise the bytes go.
    fn after_pass(
        &mut self,
        taken: usize,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if taken == 0 && self.ended {
            return Pin::new(self).poll_read(cx, buf);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ClientIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(&polled);
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        if let Poll::Ready(Ok(())) = polled {
            this.unflushed = false;
        }
        polled
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
