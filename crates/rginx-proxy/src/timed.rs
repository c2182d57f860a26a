//! nginx's "time between two operations" timeouts: a body that fails when
//! no data comes for a while (`proxy_read_timeout` for a response body,
//! `client_body_timeout` for a request body) and a stream whose writes fail
//! when the peer takes nothing for a while (`send_timeout` to clients,
//! `proxy_send_timeout` to upstreams). The timer runs only while an
//! operation waits, as nginx's does, so an idle keep-alive connection is
//! not affected.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use rginx_core::headlimit::HeadScanner;

use crate::status::ConnectionState;

/// The error a timed-out body or stream reports.
#[derive(Debug, thiserror::Error)]
#[error("timed out ({0:?} without progress)")]
pub struct TimedOut(pub Duration);

/// A timer armed while an operation waits and disarmed on progress.
struct Deadline {
    after: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Deadline {
    fn new(after: Duration) -> Deadline {
        Deadline { after, sleep: None }
    }

    /// Called when an operation returned `Pending`: true once the time is
    /// up (zero means no limit).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.after.is_zero() {
            return false;
        }
        let after = self.after;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(after)));
        sleep.as_mut().poll(cx).is_ready()
    }

    fn progress(&mut self) {
        self.sleep = None;
    }
}

/// A body that ends with [`TimedOut`] when no frame comes for a while.
pub struct TimedBody<B> {
    inner: B,
    deadline: Deadline,
    /// Told when the body ends or its time runs out (a client's request
    /// body: the upstream's read timer starts once it is sent, and a stall
    /// is nginx's 408).
    watch: Option<Arc<BodyWatch>>,
}

/// What became of a request body being sent upstream.
#[derive(Debug, Default)]
pub struct BodyWatch {
    expired: AtomicBool,
    ended: AtomicBool,
    changed: tokio::sync::Notify,
}

impl BodyWatch {
    /// A new request: nothing happened yet.
    pub fn reset(&self) {
        self.expired.store(false, Ordering::Release);
        self.ended.store(false, Ordering::Release);
    }

    /// The body is sent whole (or there was none to send).
    pub fn mark_ended(&self) {
        self.ended.store(true, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// The body stalled past its timeout.
    pub fn expired(&self) -> bool {
        self.expired.load(Ordering::Acquire)
    }

    /// Returns once the body ended or stalled.
    pub async fn settled(&self) {
        until(&self.changed, || {
            self.ended.load(Ordering::Acquire) || self.expired()
        })
        .await;
    }
}

/// Returns once `done` holds, checking it again each time `notify` tells
/// waiters (registered before the first check, so no notice is missed).
async fn until(notify: &tokio::sync::Notify, done: impl Fn() -> bool) {
    loop {
        let notified = notify.notified();
        let mut notified = std::pin::pin!(notified);
        notified.as_mut().enable();
        if done() {
            return;
        }
        notified.await;
    }
}

impl<B> TimedBody<B> {
    /// Wraps `inner`; `after` zero means no limit.
    pub fn new(inner: B, after: Duration) -> TimedBody<B> {
        TimedBody {
            inner,
            deadline: Deadline::new(after),
            watch: None,
        }
    }

    /// Also tells `watch` when the body ends or its time runs out.
    pub fn watched(mut self, watch: Arc<BodyWatch>) -> TimedBody<B> {
        self.watch = Some(watch);
        self
    }
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.deadline.progress();
                if let Some(watch) = &this.watch {
                    // a sized body may be done without a last `None`
                    if frame.is_none() || this.inner.is_end_stream() {
                        watch.mark_ended();
                    }
                }
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending if this.deadline.expired(cx) => {
                if let Some(watch) = &this.watch {
                    watch.expired.store(true, Ordering::Release);
                    watch.changed.notify_waiters();
                }
                Poll::Ready(Some(Err(Box::new(TimedOut(this.deadline.after)))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        let end = self.inner.is_end_stream();
        if let (true, Some(watch)) = (end, &self.watch) {
            watch.mark_ended();
        }
        end
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A stream whose writes fail when the peer accepts nothing for a while;
/// reads pass through untouched.
pub struct TimedWrites<S> {
    inner: S,
    deadline: Deadline,
}

impl<S> TimedWrites<S> {
    /// Wraps `inner`; `after` zero means no limit.
    pub fn new(inner: S, after: Duration) -> TimedWrites<S> {
        TimedWrites {
            inner,
            deadline: Deadline::new(after),
        }
    }

    /// The stream inside.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn check<T>(
        &mut self,
        polled: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Pending if self.deadline.expired(cx) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                TimedOut(self.deadline.after),
            ))),
            Poll::Pending => Poll::Pending,
            ready => {
                self.deadline.progress();
                ready
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedWrites<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedWrites<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.check(polled, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.check(polled, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.check(polled, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

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

/// A client stream with nginx's read timers ([`ClientTimers`]) and
/// `send_timeout` on writes. When a read timer runs out the stream ends,
/// as nginx closes such a connection without an answer.
pub struct ClientIo<S> {
    inner: TimedWrites<S>,
    timers: Arc<ClientTimers>,
    phase: ReadPhase,
    head_started: bool,
    /// A request was served: later heads get a header timer of their own
    /// (the first shares the one that started at accept).
    served_one: bool,
    sleep: Option<Pin<Box<Sleep>>>,
    /// nginx's head size limits, on the bytes of each head.
    scanner: HeadScanner,
    /// A head broke them: the stream has ended.
    refused: bool,
}

impl<S> ClientIo<S> {
    /// Wraps an accepted stream.
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
            scanner,
            refused: false,
        }
    }

    /// The accepted stream inside (for a tunnel, which keeps its own time).
    pub fn into_inner(self) -> S {
        self.inner.into_inner()
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
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for ClientIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.refused {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        let phase = this.current_phase();
        if polled.is_ready() {
            if phase == ReadPhase::Serving && buf.filled().len() == before {
                // end of stream (or an error) while a request is served:
                // the client left (nginx: 499 when it waits for upstream)
                this.timers.client_gone();
            }
            if buf.filled().len() > before && phase == ReadPhase::Idle {
                // the first bytes of a head: its own timer from now
                this.head_started = true;
                this.timers.state.reading();
                this.scanner.reset();
            }
            if phase != ReadPhase::Serving {
                if let Err(limit) = this.scanner.feed(&buf.filled()[before..]) {
                    // nginx answers and closes; hyper never sees this head
                    // (it ends here, and an unfinished head gets no answer
                    // from hyper)
                    let page = crate::engine::refusal(limit);
                    let _ = Pin::new(&mut this.inner).poll_write(cx, &page);
                    buf.set_filled(before);
                    this.refused = true;
                    return Poll::Ready(Ok(()));
                }
            }
            // nginx's header timer runs from the start of the head (of the
            // connection, for its first request) to its end: bytes that
            // trickle in do not move it, or a client sending a byte now
            // and then would hold the connection for ever (slowloris)
            let phase = this.current_phase();
            let keep_timer = match (this.phase, phase) {
                (ReadPhase::Head, ReadPhase::Head) => true,
                (ReadPhase::Idle, ReadPhase::Head) => !this.served_one,
                _ => false,
            };
            if !keep_timer {
                this.sleep = None;
            }
            this.phase = phase;
            return polled;
        }
        if phase != this.phase {
            this.sleep = None;
            this.phase = phase;
        }
        let ms = match phase {
            ReadPhase::Serving => {
                if let Ok(mut parked) = this.timers.parked_read.lock() {
                    *parked = Some(cx.waker().clone());
                }
                // the request may have been answered meanwhile
                if this.timers.in_flight.load(Ordering::Acquire) > 0 {
                    return Poll::Pending;
                }
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            ReadPhase::Idle => this.timers.idle_ms.load(Ordering::Acquire),
            ReadPhase::Head => this.timers.header_ms.load(Ordering::Acquire),
        };
        let after = Duration::from_millis(ms);
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(after)));
        if sleep.as_mut().poll(cx).is_ready() {
            // end of stream: hyper closes the connection
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ClientIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;

    /// A body whose data never comes.
    struct Silent;

    impl Body for Silent {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_body_with_no_data_times_out() {
        let mut timed = TimedBody::new(Silent, Duration::from_millis(50));
        let frame = timed.frame().await;
        assert!(matches!(frame, Some(Err(e)) if e.is::<TimedOut>()));
    }

    #[tokio::test]
    async fn writes_to_a_peer_that_reads_nothing_time_out() {
        let (a, _b) = tokio::io::duplex(16);
        let mut timed = TimedWrites::new(a, Duration::from_millis(50));
        let result = timed.write_all(&[0u8; 1024]).await;
        assert_eq!(result.map_err(|e| e.kind()), Err(io::ErrorKind::TimedOut));
    }
}
