//! A client connection as rginx's HTTP/1 server reads it: request heads
//! through nginx's checks and timers, request bodies by their framing,
//! and what the client sends while its request is served.
//!
//! Between requests the read buffer is kept while the connection waits in
//! its task (the next request reuses it instead of allocating one), unless
//! a large head grew it; a connection idle for longer is parked with no
//! buffer at all, as nginx frees its header buffer between requests
//! (`ngx_http_set_keepalive`).

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rginx_http::chunked::{ChunkedDecoder, Step};
use rginx_http::head_scan::{BodyFraming, HeadRefusal, HeadScanner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::status::ConnectionState;
use crate::timed::{LazyTimer, TimedWrites};
use crate::transport::Stream;

/// How much room a read makes at least (nginx's first header buffer is
/// `client_header_buffer_size`, 1k; one page covers nearly every head).
const READ_ROOM: usize = 4096;

/// A read buffer up to this large is kept between requests.
const KEEP_BUFFER: usize = 4 * READ_ROOM;

/// At most this much of what a client sends while its request is served
/// is kept (for the next request); then it is not read until the answer.
const HOLD_LIMIT: usize = 64 * 1024;

/// nginx's `lingering_timeout` and `lingering_time` defaults: after a
/// refusal, what the client still sends is read and dropped for up to 5 s
/// between reads and 30 s in all, so that it reads the page rather than a
/// reset (`ngx_http_set_lingering_close`).
const LINGERING_TIMEOUT: Duration = Duration::from_secs(5);
const LINGERING_TIME: Duration = Duration::from_secs(30);

/// An accepted client connection.
pub struct ClientConn {
    /// The socket, with `send_timeout` on writes.
    pub stream: TimedWrites<Stream>,
    /// Bytes read and not used yet: the rest of a head, a body, the
    /// requests a client pipelined.
    pub buf: BytesMut,
    /// Its place in `stub_status`'s counters.
    pub state: ConnectionState,
    /// Where response heads are written.
    pub heads: crate::transport::HeadBuf,
    /// The connection's one timer: `keepalive_timeout` between requests,
    /// `proxy_read_timeout` while a request waits for its upstream (never
    /// both at once; one timer entry for the two, moved lazily).
    timer: LazyTimer,
}

/// What waiting between two requests gave.
pub enum Idle {
    /// The client sent something (or closed: the read says which).
    Ready,
    /// The connection ends: the client closed it, `keepalive_timeout`
    /// passed, or the process quits.
    Ended,
    /// Nothing came for the time given to park after; the connection may
    /// wait on elsewhere until this deadline (`keepalive_timeout`).
    Quiet(Instant),
}

/// What a connection leaves to be parked.
pub struct ParkedParts {
    /// Its socket.
    pub stream: tokio::net::TcpStream,
    /// Its place in the counters.
    pub state: ConnectionState,
    /// Its `send_timeout`.
    pub send_timeout: Duration,
}

/// What happened while a request waited for its upstream.
pub enum Waited {
    /// The client closed its connection.
    Closed,
    /// The read timer set with [`ClientConn::wait_upstream`] ran out.
    TimedOut,
}

/// What waiting for a request head gave.
pub enum HeadRead {
    /// A whole head (its bytes) and how its body is framed.
    Head(Bytes, BodyFraming),
    /// The connection ended before a head began (idle too long, or the
    /// process is quitting): closed without an answer.
    Ended,
    /// The client closed it before a head began.
    Closed,
    /// The client closed, or its time ran out, in the middle of a head:
    /// nginx closes without an answer.
    Cut,
    /// nginx refuses the head: its page, then the connection closes.
    Refused(HeadRefusal),
}

/// Why reading a request body failed.
#[derive(Debug)]
pub enum BodyError {
    /// The client closed its connection before the end.
    Closed,
    /// No data for `client_body_timeout`.
    TimedOut,
    /// A chunked body nginx cannot read.
    Invalid,
    /// Reading failed.
    Io(io::Error),
}

/// A request body still to be read from the connection.
#[derive(Debug)]
pub struct BodyReader {
    left: Left,
    timeout: Duration,
    /// Some of it was taken from the connection.
    touched: bool,
    /// Its bytes taken from the connection (chunk framing included).
    taken: u64,
}

#[derive(Debug)]
enum Left {
    Length(u64),
    Chunked(ChunkedDecoder),
    Done,
}

impl BodyReader {
    /// The body of a head framed as `framing`, read with
    /// `client_body_timeout` between reads.
    pub fn new(framing: BodyFraming, timeout: Duration) -> BodyReader {
        let left = match framing {
            BodyFraming::None | BodyFraming::Length(0) => Left::Done,
            BodyFraming::Length(n) => Left::Length(n),
            BodyFraming::Chunked => Left::Chunked(ChunkedDecoder::new()),
        };
        BodyReader {
            left,
            timeout,
            touched: false,
            taken: 0,
        }
    }

    /// Its bytes taken from the connection so far, as received (nginx
    /// counts them in `r->request_length` as it reads a body).
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// Whether none of it was taken from the connection yet (an internal
    /// redirect's proxied location can still read it).
    pub fn untouched(&self) -> bool {
        !self.touched
    }

    /// Whether all of it was read.
    pub fn done(&self) -> bool {
        matches!(self.left, Left::Done)
    }

    /// The body's length, when the head gave one.
    pub fn length(&self) -> Option<u64> {
        match self.left {
            Left::Length(n) => Some(n),
            _ => None,
        }
    }
}

/// When the read timer of a head runs out.
#[derive(Debug, Clone, Copy)]
pub struct HeadTimers {
    /// The first request's head: its timer started at accept.
    pub first_deadline: Option<Instant>,
    /// Between requests: `keepalive_timeout` (zero: none).
    pub idle: Duration,
    /// From a head's first byte: `client_header_timeout`.
    pub header: Duration,
}

impl ClientConn {
    /// A connection just accepted.
    pub fn new(stream: Stream, send_timeout: Duration) -> ClientConn {
        ClientConn::resume(stream, send_timeout, ConnectionState::open())
    }

    /// A parked connection the client has sent something on, to serve
    /// again.
    pub fn resume(stream: Stream, send_timeout: Duration, state: ConnectionState) -> ClientConn {
        ClientConn {
            stream: TimedWrites::new(stream, send_timeout),
            buf: BytesMut::new(),
            state,
            heads: Default::default(),
            timer: LazyTimer::new(),
        }
    }

    /// Waits, between two requests, until the client sends something, it
    /// closes, `idle` (keepalive_timeout; zero: no limit) passes or the
    /// process quits. The wait goes in steps of at most `step`, and `quit`
    /// is read after each (no waiter is registered with it per request:
    /// graceful shutdown closes an idle connection within a step). With
    /// `park`, the first step that passes makes the connection
    /// [`Idle::Quiet`]. It keeps a buffer of the usual size meanwhile.
    pub async fn wait_idle(
        &mut self,
        idle: Duration,
        step: Duration,
        park: bool,
        quit: &tokio::sync::watch::Receiver<bool>,
    ) -> Idle {
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf = BytesMut::new();
        }
        let first = if idle.is_zero() { step } else { step.min(idle) };
        let Some(step_end) = self.timer.set(first) else {
            return Idle::Ended;
        };
        let due = (!idle.is_zero()).then(|| step_end - first + idle);
        self.wait_steps(due, step, park, quit).await
    }

    /// Waits on as [`ClientConn::wait_idle`] does, until `due`, without
    /// parking: true when the client sent something.
    pub async fn wait_idle_until(
        &mut self,
        due: Instant,
        step: Duration,
        quit: &tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        self.timer.set_until(due.min(Instant::now() + step));
        matches!(
            self.wait_steps(Some(due), step, false, quit).await,
            Idle::Ready
        )
    }

    /// The steps of an idle wait, the timer set for the first.
    async fn wait_steps(
        &mut self,
        due: Option<Instant>,
        step: Duration,
        park: bool,
        quit: &tokio::sync::watch::Receiver<bool>,
    ) -> Idle {
        loop {
            let ready = self.stream.readable();
            tokio::select! {
                ready = ready => return if ready.is_ok() { Idle::Ready } else { Idle::Ended },
                () = self.timer.expired() => {}
            }
            if *quit.borrow() {
                return Idle::Ended;
            }
            let now = Instant::now();
            match due {
                Some(due) if now >= due => return Idle::Ended,
                Some(due) if park => return Idle::Quiet(due),
                Some(due) => self.timer.set_until(due.min(now + step)),
                None => self.timer.set_until(now + step),
            }
        }
    }

    /// The socket and what else a parked connection keeps, when the
    /// stream is a TCP socket; the connection as it was otherwise.
    pub fn park(self) -> Result<ParkedParts, Box<ClientConn>> {
        let ClientConn { stream, state, .. } = self;
        let send_timeout = stream.timeout();
        match stream.into_inner().into_tcp() {
            Ok(stream) => Ok(ParkedParts {
                stream,
                state,
                send_timeout,
            }),
            Err(stream) => Err(Box::new(ClientConn::resume(stream, send_timeout, state))),
        }
    }

    /// Reads the next request head through `scanner`'s checks. A head the
    /// client pipelined is already (in part) in the buffer; otherwise the
    /// first request's timer started at accept, a later one's starts with
    /// its first byte.
    pub async fn read_head(&mut self, scanner: &mut HeadScanner, timers: HeadTimers) -> HeadRead {
        scanner.reset();
        let mut scanned = 0;
        let mut deadline = timers.first_deadline;
        loop {
            if scanned < self.buf.len() {
                if deadline.is_none() {
                    deadline = Some(Instant::now() + timers.header);
                }
                self.state.reading();
                match scanner.feed(&self.buf[scanned..]) {
                    Err(refusal) => return HeadRead::Refused(refusal),
                    Ok(used) => scanned += used,
                }
                if let Some(framing) = scanner.body() {
                    let head = self.buf.split_to(scanned).freeze();
                    return HeadRead::Head(head, framing);
                }
            }
            self.buf.reserve(READ_ROOM);
            let read = self.stream.read_buf(&mut self.buf);
            let read = match deadline {
                None => read.await,
                Some(at) => match tokio::time::timeout_at(at, read).await {
                    Ok(read) => read,
                    Err(_) => {
                        return if scanned == 0 && scanner.untouched() {
                            HeadRead::Ended
                        } else {
                            HeadRead::Cut
                        }
                    }
                },
            };
            match read {
                Ok(0) if self.buf.is_empty() && scanner.untouched() => return HeadRead::Closed,
                Err(_) if self.buf.is_empty() && scanner.untouched() => return HeadRead::Ended,
                Ok(0) | Err(_) => return HeadRead::Cut,
                Ok(_) => {}
            }
        }
    }

    /// The next piece of a request body (`None` at its end).
    pub async fn body_chunk(&mut self, body: &mut BodyReader) -> Result<Option<Bytes>, BodyError> {
        loop {
            if let Some(data) = self.take_ready(body)? {
                return Ok(Some(data));
            }
            if body.done() {
                return Ok(None);
            }
            self.read_body(body).await?;
        }
    }

    /// Reads more of a body from the client, within `client_body_timeout`.
    pub async fn read_body(&mut self, body: &BodyReader) -> Result<(), BodyError> {
        self.buf.reserve(READ_ROOM);
        let read = self.stream.read_buf(&mut self.buf);
        let read = if body.timeout.is_zero() {
            read.await
        } else {
            tokio::time::timeout(body.timeout, read)
                .await
                .map_err(|_| BodyError::TimedOut)?
        };
        match read {
            Ok(0) => Err(BodyError::Closed),
            Ok(_) => Ok(()),
            Err(e) => Err(BodyError::Io(e)),
        }
    }

    /// The data of a chunked body from the bytes read so far, decoding at
    /// most `raw` of them (nginx reads a body into a buffer of
    /// `client_body_buffer_size`): the data and the bytes it took.
    pub fn take_chunked_within(
        &mut self,
        body: &mut BodyReader,
        raw: usize,
    ) -> Result<(BytesMut, usize), BodyError> {
        let mut data = BytesMut::new();
        let mut used = 0;
        while used < raw && !self.buf.is_empty() {
            let Left::Chunked(decoder) = &mut body.left else {
                break;
            };
            body.touched = true;
            let limit = (raw - used).min(self.buf.len());
            let Step {
                consumed,
                data: span,
                done,
            } = decoder
                .step(&self.buf[..limit])
                .map_err(|_| BodyError::Invalid)?;
            if consumed == 0 {
                break;
            }
            let read = self.buf.split_to(consumed).freeze();
            body.taken += consumed as u64;
            used += consumed;
            if done {
                body.left = Left::Done;
                break;
            }
            data.extend_from_slice(&read[span]);
        }
        Ok((data, used))
    }

    /// Body data from the bytes read so far, if any (nothing is read).
    pub fn take_ready(&mut self, body: &mut BodyReader) -> Result<Option<Bytes>, BodyError> {
        loop {
            if self.buf.is_empty() {
                return Ok(None);
            }
            body.touched |= !body.done();
            match &mut body.left {
                Left::Done => return Ok(None),
                Left::Length(left) => {
                    let take = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(self.buf.len());
                    *left -= take as u64;
                    body.taken += take as u64;
                    if *left == 0 {
                        body.left = Left::Done;
                    }
                    return Ok(Some(self.buf.split_to(take).freeze()));
                }
                Left::Chunked(decoder) => {
                    let Step {
                        consumed,
                        data,
                        done,
                    } = decoder.step(&self.buf).map_err(|_| BodyError::Invalid)?;
                    let read = self.buf.split_to(consumed).freeze();
                    body.taken += consumed as u64;
                    if done {
                        body.left = Left::Done;
                        return Ok(None);
                    }
                    if !data.is_empty() {
                        return Ok(Some(read.slice(data)));
                    }
                }
            }
        }
    }

    /// Reads and drops what is left of a body (nginx discards an unread
    /// body to keep the connection: `ngx_http_discard_request_body`).
    pub async fn discard(&mut self, body: &mut BodyReader) -> Result<(), BodyError> {
        while self.body_chunk(body).await?.is_some() {}
        Ok(())
    }

    /// While a request waits for its upstream: returns once the client has
    /// closed its connection, or `read_timeout` (`proxy_read_timeout`) has
    /// passed. What the client sends meanwhile is kept for its next
    /// request (up to a bound, then it is no longer read).
    pub async fn wait_upstream(&mut self, read_timeout: Duration) -> Waited {
        self.timer.set(read_timeout);
        let (stream, buf) = (&mut self.stream, &mut self.buf);
        tokio::select! {
            () = closed(stream, buf) => Waited::Closed,
            () = self.timer.expired() => Waited::TimedOut,
        }
    }

    /// Writes all of `bytes` (with `send_timeout`).
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Writes a head taken from [`ClientConn::heads`] (and what was added
    /// to it), and keeps its buffer for the next.
    pub async fn write_head(&mut self, head: Vec<u8>) -> io::Result<()> {
        let written = self.stream.write_all(&head).await;
        self.heads.give_back(head);
        written
    }

    /// Writes a refusal page, then closes as nginx's lingering close does.
    pub async fn refuse(&mut self, page: &[u8]) {
        if self.write(page).await.is_err() {
            return;
        }
        let _ = self.stream.shutdown().await;
        let until = Instant::now() + LINGERING_TIME;
        // on the heap: a buffer in the future would make every
        // connection's task that much larger
        let mut sink = vec![0u8; 4096];
        loop {
            let next = (Instant::now() + LINGERING_TIMEOUT).min(until);
            match tokio::time::timeout_at(next, self.stream.read(&mut sink)).await {
                Ok(Ok(n)) if n > 0 => continue,
                _ => return,
            }
        }
    }

    /// The stream (with `send_timeout` on writes) and the bytes the client
    /// sent after its last request, for a tunnel.
    pub fn into_tunnel(self) -> (TimedWrites<Stream>, Bytes, ConnectionState) {
        (self.stream, self.buf.freeze(), self.state)
    }
}

/// Returns once the client has closed its connection, keeping what it
/// sends meanwhile in `buf` (up to a bound, then it is no longer read).
async fn closed(stream: &mut TimedWrites<Stream>, buf: &mut BytesMut) {
    loop {
        if buf.len() >= HOLD_LIMIT {
            std::future::pending::<()>().await;
        }
        // room is made only once there is something to read: the head
        // being served still shares the buffer, and making room now would
        // allocate a new one for nearly every request
        if stream.readable().await.is_err() {
            return;
        }
        buf.reserve(READ_ROOM);
        match stream.read_buf(buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
