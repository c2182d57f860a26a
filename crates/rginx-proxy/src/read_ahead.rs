//! `proxy_buffering on`: the backend's body is read ahead of the client,
//! as nginx's event pipe reads it (`ngx_event_pipe`): into memory up to
//! `proxy_buffers`, then into a temp file up to `proxy_max_temp_file_size`,
//! so that a slow client does not hold the backend; its connection goes
//! back to the pool (and its peer is free) once the whole body is read.
//! When memory and file are both full, reading waits for the client.
//!
//! A task of its own reads the backend; the client side is a body the
//! connection's writer polls. They share one queue of pieces, in order:
//! bytes in memory, or a stretch of the temp file.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use rginx_core::model::TempPath;
use tokio::sync::Notify;

use crate::pool::BoxError;
use crate::spool::{Lifetime, TempFile};

/// How much a response may hold ahead of its client.
#[derive(Debug, Clone)]
pub struct Limits {
    /// In memory (`proxy_buffers`: count times size).
    pub memory: usize,
    /// In the temp file (`proxy_max_temp_file_size`; 0: no file).
    pub max_file: u64,
    /// Where the file goes (`proxy_temp_path`).
    pub temp_path: TempPath,
}

/// nginx's error log lines for the reading side: the connection's number,
/// the log list and the line's end (client, server, request, upstream,
/// host), made once.
#[derive(Debug, Clone)]
pub struct LogContext {
    /// `*N`.
    pub connection: u64,
    /// The `error_log` list.
    pub log_set: u64,
    /// `, client: ...`.
    pub suffix: String,
}

/// One piece of the queue.
enum Piece {
    Memory(Bytes),
    /// Bytes `from..to` of the temp file.
    File {
        from: u64,
        to: u64,
    },
}

#[derive(Default)]
struct State {
    queue: VecDeque<Piece>,
    /// Bytes of `queue` in memory.
    in_memory: usize,
    file: Option<TempFile>,
    /// How the backend's body ended, once it did (taken by the client).
    end: Option<Result<(), BoxError>>,
    /// The end was passed on.
    ended: bool,
    /// The client side waits for a piece.
    waiting: Option<Waker>,
    /// The client side was dropped: reading stops.
    gone: bool,
}

struct Shared {
    state: Mutex<State>,
    /// The client took a piece (there may be room now) or left.
    room: Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The client's side: the body as read ahead.
pub struct ReadAhead {
    shared: Arc<Shared>,
}

/// Starts reading `body` ahead on a task of the current runtime.
pub fn read_ahead<B>(body: B, limits: Limits, log: LogContext) -> ReadAhead
where
    B: Body<Data = Bytes, Error = BoxError> + Send + Unpin + 'static,
{
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        room: Notify::new(),
    });
    tokio::spawn(fill(body, shared.clone(), limits, log));
    ReadAhead { shared }
}

/// Where a piece went.
enum Put {
    Queued,
    /// Memory and file are full: wait for the client.
    Full(Bytes),
    /// The client left.
    Gone,
}

/// The reading side: frames from the backend into the queue.
async fn fill<B>(mut body: B, shared: Arc<Shared>, limits: Limits, log: LogContext)
where
    B: Body<Data = Bytes, Error = BoxError> + Unpin,
{
    let end = loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            () = wait_gone(&shared) => return,
        };
        let data = match frame {
            None => break Ok(()),
            Some(Err(e)) => {
                let what = crate::upstream::body_failure_words(&e);
                tracing::error!(
                    log_set = log.log_set,
                    "*{} {what} while reading upstream{}",
                    log.connection,
                    log.suffix
                );
                break Err(e);
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if !data.is_empty() => data,
                _ => continue,
            },
        };
        let mut data = data;
        loop {
            match put(&shared, data, &limits, &log) {
                Ok(Put::Queued) => break,
                Ok(Put::Full(back)) => {
                    data = back;
                    shared.room.notified().await;
                }
                Ok(Put::Gone) => return,
                Err(e) => {
                    let mut state = shared.lock();
                    state.end = Some(Err(e));
                    wake(&mut state);
                    return;
                }
            }
        }
    };
    let mut state = shared.lock();
    state.end = Some(end);
    wake(&mut state);
    // the backend's connection went back to its pool (or closed) with
    // `body`, now: before the client has it all
}

/// Returns when the client side has gone.
async fn wait_gone(shared: &Shared) {
    loop {
        if shared.lock().gone {
            return;
        }
        shared.room.notified().await;
    }
}

/// Puts `data` in memory, else in the file, else hands it back.
fn put(shared: &Shared, data: Bytes, limits: &Limits, log: &LogContext) -> Result<Put, BoxError> {
    let mut state = shared.lock();
    if state.gone {
        return Ok(Put::Gone);
    }
    let len = data.len();
    // an empty queue always takes a piece (one read of the backend)
    if state.queue.is_empty() || state.in_memory + len <= limits.memory {
        state.in_memory += len;
        state.queue.push_back(Piece::Memory(data));
        wake(&mut state);
        return Ok(Put::Queued);
    }
    let file_len = state.file.as_ref().map_or(0, |f| f.len);
    if limits.max_file == 0 || file_len + len as u64 > limits.max_file {
        return Ok(Put::Full(data));
    }
    if state.file.is_none() {
        let file = TempFile::create(&limits.temp_path, Lifetime::Anonymous)
            .map_err(|e| temp_failure(e, log))?;
        tracing::warn!(
            log_set = log.log_set,
            "*{} an upstream response is buffered to a temporary file {} while reading upstream{}",
            log.connection,
            file.path,
            log.suffix
        );
        state.file = Some(file);
    }
    let Some(file) = state.file.as_mut() else {
        return Ok(Put::Full(data));
    };
    let from = file.len;
    file.append(&data).map_err(|e| temp_failure(e, log))?;
    let to = file.len;
    match state.queue.back_mut() {
        Some(Piece::File { to: end, .. }) if *end == from => *end = to,
        _ => state.queue.push_back(Piece::File { from, to }),
    }
    wake(&mut state);
    Ok(Put::Queued)
}

/// A temp file failure: nginx's critical line, and the error that ends
/// the client's body.
fn temp_failure(error: crate::spool::TempError, log: &LogContext) -> BoxError {
    tracing::error!(
        log_set = log.log_set,
        crit = true,
        "*{} {error} while reading upstream{}",
        log.connection,
        log.suffix
    );
    Box::new(error)
}

fn wake(state: &mut State) {
    if let Some(waker) = state.waiting.take() {
        waker.wake();
    }
}

impl Body for ReadAhead {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let shared = &self.get_mut().shared;
        let mut state = shared.lock();
        let state = &mut *state;
        match state.queue.front_mut() {
            Some(Piece::Memory(_)) => {
                let Some(Piece::Memory(data)) = state.queue.pop_front() else {
                    return Poll::Pending;
                };
                state.in_memory -= data.len();
                shared.room.notify_one();
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Some(Piece::File { from, to }) => {
                let Some(file) = state.file.as_ref() else {
                    return Poll::Ready(None);
                };
                let want = usize::try_from(*to - *from)
                    .unwrap_or(usize::MAX)
                    .min(crate::spool::READ_PIECE);
                let mut buf = BytesMut::zeroed(want);
                match file.read_at(&mut buf, *from) {
                    Ok(n) if n > 0 => {
                        buf.truncate(n);
                        *from += n as u64;
                        if *from == *to {
                            state.queue.pop_front();
                        }
                        shared.room.notify_one();
                        Poll::Ready(Some(Ok(Frame::data(buf.freeze()))))
                    }
                    Ok(_) => Poll::Ready(Some(Err("temp file ended early".into()))),
                    Err(e) => Poll::Ready(Some(Err(Box::new(e)))),
                }
            }
            None => match state.end.take() {
                Some(Ok(())) => {
                    state.ended = true;
                    Poll::Ready(None)
                }
                Some(Err(e)) => {
                    state.ended = true;
                    Poll::Ready(Some(Err(e)))
                }
                None if state.ended => Poll::Ready(None),
                None => {
                    state.waiting = Some(cx.waker().clone());
                    Poll::Pending
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        let state = self.shared.lock();
        state.ended
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.shared.lock().gone = true;
        // the reader may wait for room or for the backend: both see it
        self.shared.room.notify_waiters();
        self.shared.room.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames given in advance.
    struct Pieces(VecDeque<Bytes>);

    impl Body for Pieces {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Ready(self.get_mut().0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    fn limits(memory: usize, max_file: u64, dir: &str) -> Limits {
        Limits {
            memory,
            max_file,
            temp_path: TempPath::plain(dir),
        }
    }

    fn log() -> LogContext {
        LogContext {
            connection: 1,
            log_set: 0,
            suffix: String::new(),
        }
    }

    fn pieces(n: usize, size: usize) -> Pieces {
        Pieces(
            (0..n)
                .map(|i| Bytes::from(vec![b'a' + (i % 26) as u8; size]))
                .collect(),
        )
    }

    #[tokio::test]
    async fn a_body_read_ahead_into_memory_and_a_file_comes_out_whole_and_in_order() {
        let dir = std::env::temp_dir().join(format!("rginx-ahead-{}", std::process::id()));
        let ahead = read_ahead(
            pieces(40, 1000),
            limits(4000, 1 << 20, &dir.display().to_string()),
            log(),
        );
        // let the reader run ahead of a client that has not started
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let body = ahead.collect().await.expect("body").to_bytes();
        let expected: Vec<u8> = (0..40)
            .flat_map(|i| vec![b'a' + (i % 26) as u8; 1000])
            .collect();
        assert_eq!(body.as_ref(), expected.as_slice());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn without_a_file_reading_waits_for_the_client() {
        let ahead = read_ahead(pieces(10, 1000), limits(2000, 0, "/nonexistent"), log());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        {
            let state = ahead.shared.lock();
            assert!(state.in_memory <= 2000 && state.file.is_none());
            assert!(state.end.is_none());
        }
        let body = ahead.collect().await.expect("body").to_bytes();
        assert_eq!(body.len(), 10_000);
    }
}
