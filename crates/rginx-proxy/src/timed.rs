//! nginx's "time between two operations" timeouts: a body that fails when
//! no data comes for a while (`proxy_read_timeout` for a response body,
//! `client_body_timeout` for a request body) and a stream whose writes fail
//! when the peer takes nothing for a while (`send_timeout` to clients,
//! `proxy_send_timeout` to upstreams). The timer runs only while an
//! operation waits, as nginx's does, so an idle keep-alive connection is
//! not affected. A client connection's read timers are in
//! [`crate::http1::conn`].

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

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

/// A timeout that is set again and again with the same length (a
/// connection's `keepalive_timeout` between requests, a request's
/// `proxy_read_timeout`): setting it only notes the deadline, and the
/// timer entry is moved, always later, when it fires before that deadline,
/// as the tunnel's idle timer does. A busy connection then costs the
/// timer wheel one entry per period instead of one per request, and never
/// moves a deadline earlier (which wakes the reactor's thread through its
/// eventfd: a system call per request).
#[derive(Debug, Default)]
pub struct LazyTimer {
    sleep: Option<Pin<Box<Sleep>>>,
    due: Option<tokio::time::Instant>,
}

impl LazyTimer {
    /// A timer that is not set.
    pub fn new() -> LazyTimer {
        LazyTimer::default()
    }

    /// Expires `after` from now (zero: never); the deadline it set.
    pub fn set(&mut self, after: Duration) -> Option<tokio::time::Instant> {
        if after.is_zero() {
            self.due = None;
            return None;
        }
        let due = tokio::time::Instant::now() + after;
        self.set_until(due);
        Some(due)
    }

    /// Expires at `due`.
    pub fn set_until(&mut self, due: tokio::time::Instant) {
        self.due = Some(due);
        match &mut self.sleep {
            // fires early, and is moved then
            Some(sleep) if sleep.deadline() <= due => {}
            Some(sleep) => sleep.as_mut().reset(due),
            None => self.sleep = Some(Box::pin(tokio::time::sleep_until(due))),
        }
    }

    /// Ready once the deadline set last has passed (never when unset).
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let (Some(due), Some(sleep)) = (self.due, self.sleep.as_mut()) else {
            return Poll::Pending;
        };
        loop {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if tokio::time::Instant::now() >= due {
                return Poll::Ready(());
            }
            sleep.as_mut().reset(due);
        }
    }

    /// Returns once the deadline set last has passed.
    pub async fn expired(&mut self) {
        std::future::poll_fn(|cx| self.poll_expired(cx)).await;
    }
}

/// A body that ends with [`TimedOut`] when no frame comes for a while.
pub struct TimedBody<B> {
    inner: B,
    deadline: Deadline,
}

impl<B> TimedBody<B> {
    /// Wraps `inner`; `after` zero means no limit.
    pub fn new(inner: B, after: Duration) -> TimedBody<B> {
        TimedBody {
            inner,
            deadline: Deadline::new(after),
        }
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
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending if this.deadline.expired(cx) => {
                Poll::Ready(Some(Err(Box::new(TimedOut(this.deadline.after)))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
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

    /// The time a write may wait (zero: no limit).
    pub fn timeout(&self) -> Duration {
        self.deadline.after
    }

    /// The stream inside, by reference.
    pub fn get_ref(&self) -> &S {
        &self.inner
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

    #[tokio::test(start_paused = true)]
    async fn a_lazy_timer_fires_at_its_last_deadline() {
        let mut timer = LazyTimer::new();
        timer.set(Duration::from_secs(10));
        tokio::time::sleep(Duration::from_secs(5)).await;
        // set again: the entry stays where it is and moves when it fires
        timer.set(Duration::from_secs(10));
        let started = tokio::time::Instant::now();
        timer.expired().await;
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        timer.set(Duration::ZERO);
        let never = tokio::time::timeout(Duration::from_secs(60), timer.expired()).await;
        assert!(never.is_err());
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
