//! The proxy content handler: the request body as nginx reads it (a
//! chunked one whole first, a sized one streamed), then the upstream
//! phase ([`super::attempt`]) and the response filters
//! ([`super::response`]).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::Response;
use rginx_core::plan::{
    BodyBuffering, BodyPlan, Decision, InFileOnly, PlanTarget, RequestHead, SentBody, UpstreamPlan,
};

use super::error::{Kind, ProxyError};
use super::request::{SeenBody, Session};
use super::upgrade::TunnelPlan;
use super::Engine;
use crate::http1::conn::{BodyError, BodyReader, ClientConn};
use crate::http1::write::RawLines;
use crate::pool::{Body, Conn};
use crate::spool::{Lifetime, TempError, TempFile};
use rginx_http::upstream_request::BodyFraming;

/// A request's answer: a response (with the backend's lines when it
/// came from one), or a `101` whose connection becomes a tunnel once the
/// head is written.
pub(super) enum Answer {
    Response(Response<Body>, Option<RawLines>),
    Tunnel(Response<Body>, RawLines, Box<TunnelPlan>),
}

/// The request body as it goes upstream: none, bytes held or a temp file
/// (both can be sent again to another server), or the client's body
/// still on its connection (streamed once: `sent` after that).
pub(super) enum RequestBody {
    Empty,
    Held(Bytes),
    InFile(TempFile),
    Stream {
        /// What came with the head, still to send.
        first: Option<Bytes>,
        sent: bool,
        /// A chunked body, sent on chunked again.
        rechunk: Option<Rechunk>,
    },
    /// Read and not sent (`proxy_pass_request_body off`): its length.
    Withheld(u64),
}

impl Engine {
    /// Proxies a request as `plan` says.
    pub(super) async fn proxy(
        self: &Arc<Self>,
        session: &Session<'_>,
        plan: &UpstreamPlan<'_>,
        client_body: &mut BodyReader,
        client: &mut ClientConn,
        expect_continue: bool,
    ) -> Result<Answer, ProxyError> {
        if plan.tls.is_some() {
            session.context.set_https();
        }
        // nginx answers `Expect: 100-continue` once it starts reading the
        // body, also an empty one (ngx_http_read_client_request_body)
        if expect_continue
            && client
                .write(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .is_err()
        {
            return Err(ProxyError::new(Kind::ClientClosed));
        }
        // a body read before an internal redirect is sent again
        let client_sent = matches!(plan.sent_body, SentBody::Client);
        let kept = session.take_kept_body();
        let mut body = match kept {
            Some(kept) if client_sent => kept,
            kept => {
                if let Some(kept) = kept {
                    session.keep_body(kept);
                }
                match request_body(session, plan, client_body, client).await {
                    Ok(body) => body,
                    Err(error) => {
                        error.log(&session.context, &session.context.describe(None));
                        return Err(error);
                    }
                }
            }
        };
        // nginx makes the request upstream once the body is read: a plan
        // that uses the body's variables is made again now
        let head = session.eval_head();
        let again;
        let plan = match plan.needs_body.then(|| self.decide_again(session, &head)) {
            Some(Some(fresh)) => {
                // `proxy_set_body` too is what the body made it
                if let SentBody::Set(value) = &fresh.sent_body {
                    body = RequestBody::Held(Bytes::from(value.clone().into_bytes()));
                }
                again = fresh;
                &*again
            }
            _ => plan,
        };
        // a host for the `resolver` is looked up once the body is read,
        // as nginx starts the upstream then
        session.upstreams().start();
        let reply = match self.target_of(session, plan).await {
            Ok(target) => {
                self.attempts(session, plan, &target, &mut body, client_body, client)
                    .await
            }
            Err(error) => Err(error),
        };
        if client_sent
            && matches!(
                body,
                RequestBody::Empty | RequestBody::Held(_) | RequestBody::InFile(_)
            )
        {
            session.keep_body(body);
        }
        self.upstream_response(session, plan, reply?).await
    }
}

impl Engine {
    /// The request's decision made again with the body read, for its
    /// current location (the client's request or the internal redirect
    /// that led there).
    fn decide_again<'s>(
        &'s self,
        session: &'s Session<'_>,
        head: &RequestHead<'s>,
    ) -> Option<Box<UpstreamPlan<'s>>> {
        let decision = match &session.redirected {
            None => self.runtime.decide_matched(head).0,
            Some(redirect) => {
                self.runtime
                    .decide_redirected(head, &redirect.internal(session.scope.server))
                    .0
            }
        };
        match decision {
            Decision::Proxy(plan) => Some(plan),
            _ => None,
        }
    }

    /// Where the request goes: the plan's target, or the addresses the
    /// `resolver` finds for its host, or the failure with nginx's error
    /// line (`ngx_http_upstream_resolve_handler`); socket errors on the
    /// way get nginx's lines "while resolving".
    async fn target_of<'p>(
        &self,
        session: &Session<'_>,
        plan: &'p UpstreamPlan<'_>,
    ) -> Result<std::borrow::Cow<'p, PlanTarget>, ProxyError> {
        let PlanTarget::Resolve {
            host,
            port,
            resolver,
            timeout,
        } = &*plan.target
        else {
            return Ok(std::borrow::Cow::Borrowed(&*plan.target));
        };
        let Some(resolver) = self.resolvers.get(*resolver) else {
            return Err(ProxyError::new(Kind::NoServer));
        };
        let mut on_error = |e: rginx_dns::SocketError| {
            tracing::error!(
                "{} failed ({}) while resolving, resolver: {}",
                e.call,
                crate::process::os_error(&e.error),
                e.server
            )
        };
        match resolver.resolve(host, *timeout, &mut on_error).await {
            Ok(addrs) => Ok(std::borrow::Cow::Owned(PlanTarget::Addrs(
                addrs
                    .into_iter()
                    .map(|ip| std::net::SocketAddr::new(ip, *port).into())
                    .collect(),
            ))),
            Err(failure) => {
                let error = ProxyError::new(Kind::Unresolved(rginx_dns::query_name(host), failure));
                error.log(&session.context, &session.context.describe(None));
                Err(error)
            }
        }
    }
}

/// The request body as nginx's `ngx_http_read_client_request_body`
/// reads it: with `proxy_request_buffering on` (and always when chunked)
/// whole, before any server is chosen; otherwise a sized body streams.
async fn request_body(
    session: &Session<'_>,
    plan: &UpstreamPlan<'_>,
    body: &mut BodyReader,
    conn: &mut ClientConn,
) -> Result<RequestBody, ProxyError> {
    let in_file = plan.body_buffering.in_file != InFileOnly::Off;
    // a body that is not the client's: the client's is read whole (nginx
    // buffers it then) and dropped
    let nothing_to_read = |b: &BodyReader| matches!(plan.body, BodyPlan::None) || b.done();
    match &plan.sent_body {
        SentBody::Client => {}
        SentBody::Set(value) => {
            if !nothing_to_read(body) {
                read_whole(session, plan, body, conn).await?;
            }
            return Ok(RequestBody::Held(Bytes::from(value.clone().into_bytes())));
        }
        SentBody::Withheld => {
            let read = if nothing_to_read(body) {
                0
            } else {
                read_whole(session, plan, body, conn)
                    .await?
                    .length()
                    .unwrap_or(0)
            };
            return Ok(RequestBody::Withheld(read));
        }
    }
    match plan.body {
        BodyPlan::None => Ok(RequestBody::Empty),
        BodyPlan::Length(_) if !plan.body_buffering.whole => {
            if body.done() {
                return Ok(RequestBody::Empty);
            }
            // nginx reads what is there before it connects: the part
            // read with the head and a first buffer, which
            // `$request_body` then shows
            let first = conn
                .take_ready(body)
                .map_err(|e| ProxyError::new(client_body_failure(&e)))?;
            if let Some(first) = &first {
                let room = header_room(session.head_len);
                let preread = first.len().min(room);
                let rest = body.length().unwrap_or(0) + (first.len() - preread) as u64;
                let buffer = first_buffer(plan.body_buffering.memory, rest, false);
                let shown = preread + (first.len() - preread).min(buffer);
                session.saw_body(SeenBody::Memory(first.slice(..shown)));
            }
            Ok(RequestBody::Stream {
                first,
                sent: false,
                rechunk: None,
            })
        }
        BodyPlan::Rechunk => {
            // nginx reads what is there before it connects: the part read
            // with the head and a first buffer, its first chunk; a body
            // that ended by then goes with its length
            let failure = |e: BodyError| ProxyError::new(client_body_failure(&e));
            let buffer = first_buffer(plan.body_buffering.memory, 0, true);
            let mut rechunk = Rechunk {
                max: plan.max_body,
                buffer,
                read: 0,
                ended: false,
            };
            let (mut first, _) = conn
                .take_chunked_within(body, header_room(session.head_len))
                .map_err(failure)?;
            let (more, _) = conn.take_chunked_within(body, buffer).map_err(failure)?;
            first.extend_from_slice(&more);
            rechunk.count(first.len()).map_err(|(before, chunk)| {
                ProxyError::new(Kind::ClientBodyTooLarge(before, chunk))
            })?;
            let first = first.freeze();
            session.saw_body(SeenBody::Memory(first.clone()));
            if body.done() {
                return Ok(RequestBody::Held(first));
            }
            Ok(RequestBody::Stream {
                first: Some(first),
                sent: false,
                rechunk: Some(rechunk),
            })
        }
        BodyPlan::Length(_) if body.done() && !in_file => Ok(RequestBody::Empty),
        _ => read_whole(session, plan, body, conn).await,
    }
}

/// Reads a whole body: in memory up to `client_body_buffer_size`, the
/// rest in a temp file. As nginx sizes its buffer: the part read with the
/// head stays apart; a sized body whose rest is under 1.25 buffers gets a
/// buffer of its rest and never goes to a file; a longer one, or a chunked
/// one, goes to a file once the buffer is full
/// (`ngx_http_read_client_request_body`,
/// `ngx_http_request_body_save_filter`).
async fn read_whole(
    session: &Session<'_>,
    plan: &UpstreamPlan<'_>,
    body: &mut BodyReader,
    conn: &mut ClientConn,
) -> Result<RequestBody, ProxyError> {
    let buffering = plan.body_buffering;
    let chunked = matches!(plan.body, BodyPlan::Dechunk);
    let failure = |e: BodyError| ProxyError::new(client_body_failure(&e));
    let mut spool = Spool::new(session, buffering);
    // the part read with the head
    while let Some(data) = conn.take_ready(body).map_err(failure)? {
        spool.check_limit(plan, chunked, &data)?;
        spool.memory.extend_from_slice(&data);
    }
    let taken = spool.memory.len();
    let preread = taken.min(header_room(session.head_len));
    let buffer = usize::try_from(buffering.memory).unwrap_or(usize::MAX);
    let rest = body.length().unwrap_or(0) + (taken - preread) as u64;
    let spills = chunked || rest >= buffering.memory + buffering.memory / 4;
    if !chunked {
        spool
            .memory
            .reserve(usize::try_from(rest).unwrap_or(0).min(buffer));
    }
    loop {
        // nginx reads into a buffer of `client_body_buffer_size`: once it
        // is full with more to come, everything goes to the file
        if spool.file.is_none() && spills {
            let buffered = spool.memory.len().saturating_sub(preread);
            if buffered > buffer || (buffered == buffer && !body.done()) {
                spool.spill()?;
            }
        }
        let data = match conn.body_chunk(body).await {
            Ok(Some(data)) => data,
            Ok(None) => break,
            Err(e) => return Err(failure(e)),
        };
        spool.check_limit(plan, chunked, &data)?;
        spool.push(&data)?;
    }
    let read = spool.finish()?;
    match &read {
        RequestBody::Held(bytes) => session.saw_body(SeenBody::Memory(bytes.clone())),
        RequestBody::InFile(file) => session.saw_body(SeenBody::File(file.path.clone())),
        _ => {}
    }
    Ok(read)
}

/// How much of a body nginx's header buffer held past the head: the
/// room left in `client_header_buffer_size` (1k; rginx accepts and
/// ignores the directive), or in a large header buffer for a longer head;
/// the rest of what rginx read with the head counts as read after it.
fn header_room(head_len: usize) -> usize {
    if head_len <= CLIENT_HEADER_BUFFER {
        CLIENT_HEADER_BUFFER - head_len
    } else {
        LARGE_HEADER_BUFFER.saturating_sub(head_len - CLIENT_HEADER_BUFFER)
    }
}

/// The size of the buffer nginx reads a body's `rest` into
/// (`ngx_http_read_client_request_body`): a sized rest under 1.25
/// `client_body_buffer_size` gets a buffer of its own size, anything else
/// one of `client_body_buffer_size`.
fn first_buffer(memory: u64, rest: u64, chunked: bool) -> usize {
    let size = if !chunked && rest < memory + memory / 4 {
        rest
    } else {
        memory
    };
    usize::try_from(size).unwrap_or(usize::MAX)
}

/// nginx's `client_header_buffer_size` default, where a head and the
/// start of its body are read first.
const CLIENT_HEADER_BUFFER: usize = 1024;

/// Its `large_client_header_buffers` size, for longer heads.
const LARGE_HEADER_BUFFER: usize = 8 * 1024;

/// A body being read whole.
struct Spool<'s, 'a> {
    session: &'s Session<'a>,
    buffering: &'s BodyBuffering,
    memory: BytesMut,
    file: Option<TempFile>,
    /// Bytes so far (for `client_max_body_size` on a chunked body).
    read: u64,
}

impl<'s, 'a> Spool<'s, 'a> {
    fn new(session: &'s Session<'a>, buffering: &'s BodyBuffering) -> Self {
        Spool {
            session,
            buffering,
            memory: BytesMut::new(),
            file: None,
            read: 0,
        }
    }

    /// A chunked body is counted against `client_max_body_size` as it
    /// is read (a sized one was checked on its head).
    fn check_limit(
        &mut self,
        plan: &UpstreamPlan<'_>,
        chunked: bool,
        data: &[u8],
    ) -> Result<(), ProxyError> {
        let before = self.read;
        self.read += data.len() as u64;
        if chunked && plan.max_body > 0 && self.read > plan.max_body {
            // nginx's words: what came so far + the chunk that does not fit
            return Err(ProxyError::new(Kind::ClientBodyTooLarge(
                before,
                data.len() as u64,
            )));
        }
        Ok(())
    }

    fn push(&mut self, data: &[u8]) -> Result<(), ProxyError> {
        match &mut self.file {
            Some(file) => file.append(data).map_err(temp_failure),
            None => {
                self.memory.extend_from_slice(data);
                Ok(())
            }
        }
    }

    /// Moves what is in memory to a new temp file, with nginx's log line
    /// (`a client request body is buffered to a temporary file`: a
    /// warning, a notice with `client_body_in_file_only`).
    fn spill(&mut self) -> Result<(), ProxyError> {
        let lifetime = match self.buffering.in_file {
            InFileOnly::Off => Lifetime::Anonymous,
            InFileOnly::Clean => Lifetime::Clean,
            InFileOnly::Keep => Lifetime::Persistent,
        };
        let mut file =
            TempFile::create(&self.buffering.temp_path, lifetime).map_err(temp_failure)?;
        let context = &self.session.context;
        let line = format_args!(
            "*{} a client request body is buffered to a temporary file {}{}",
            context.connection,
            file.path,
            context.describe(None)
        );
        if self.buffering.in_file == InFileOnly::Off {
            tracing::warn!(log_set = context.log_set, "{line}");
        } else {
            tracing::info!(log_set = context.log_set, notice = true, "{line}");
        }
        file.append(&self.memory).map_err(temp_failure)?;
        // the memory goes back now, not at the request's end
        self.memory = BytesMut::new();
        self.file = Some(file);
        Ok(())
    }

    fn finish(mut self) -> Result<RequestBody, ProxyError> {
        if self.file.is_none() && self.buffering.in_file != InFileOnly::Off {
            self.spill()?;
        }
        Ok(match self.file {
            Some(file) => RequestBody::InFile(file),
            None => RequestBody::Held(self.memory.freeze()),
        })
    }
}

fn temp_failure(error: TempError) -> ProxyError {
    ProxyError::new(Kind::TempFile(error))
}

/// What a failure reading the client's body is.
pub(super) fn client_body_failure(error: &BodyError) -> Kind {
    match error {
        BodyError::TimedOut => Kind::ClientBodyTimeout,
        BodyError::Invalid => Kind::ClientBodyInvalid,
        BodyError::Closed | BodyError::Io(_) => Kind::ClientBodyClosed,
    }
}

/// Why sending a request failed.
pub(super) enum SendFailure {
    /// Writing to the upstream.
    Upstream,
    /// Reading the client's body.
    Client(BodyError),
    /// A streamed chunked body passed `client_max_body_size`: what came
    /// before, and the piece that did not fit.
    TooLarge(u64, u64),
}

/// A chunked body sent on chunked again, as nginx's
/// `ngx_http_proxy_body_output_filter` does: the data of each read of the
/// client's is one chunk, and the zero chunk follows the last data.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rechunk {
    /// `client_max_body_size` (0: none).
    max: u64,
    /// The most bytes of the client's one chunk takes
    /// (`client_body_buffer_size`).
    buffer: usize,
    /// Bytes so far.
    read: u64,
    /// The zero chunk went out.
    ended: bool,
}

impl Rechunk {
    /// Counts `n` more bytes against `client_max_body_size`.
    fn count(&mut self, n: usize) -> Result<(), (u64, u64)> {
        let before = self.read;
        self.read += n as u64;
        if self.max > 0 && self.read > self.max {
            return Err((before, n as u64));
        }
        Ok(())
    }

    /// Frames `data` (already counted) as a chunk into `out`, and the
    /// zero chunk after it once the client's body is `done`.
    fn frame(&mut self, data: &[u8], done: bool, out: &mut Vec<u8>) {
        rginx_http::chunked::put_chunk(out, data);
        if done && !self.ended {
            out.extend_from_slice(rginx_http::chunked::LAST_CHUNK);
            self.ended = true;
        }
    }
}

impl RequestBody {
    /// Sends `head` and the body on `conn`: held bytes go with the head in
    /// one write, a stream as it comes from the client (once: it cannot
    /// be sent again). The head's buffer goes back to the client
    /// connection it was taken from.
    pub(super) async fn send(
        &mut self,
        conn: &mut Conn,
        mut head: Vec<u8>,
        body: &mut BodyReader,
        client: &mut ClientConn,
    ) -> Result<(), SendFailure> {
        // what goes with the head, in its one write
        match self {
            RequestBody::Empty | RequestBody::InFile(_) | RequestBody::Withheld(_) => {}
            RequestBody::Held(bytes) => head.extend_from_slice(bytes),
            RequestBody::Stream { sent: true, .. } => return Err(SendFailure::Upstream),
            RequestBody::Stream {
                first,
                sent,
                rechunk,
            } => {
                *sent = true;
                let first = first.take();
                match rechunk {
                    Some(rechunk) => {
                        rechunk.frame(first.as_deref().unwrap_or(&[]), body.done(), &mut head)
                    }
                    None => head.extend_from_slice(first.as_deref().unwrap_or(&[])),
                }
            }
        }
        let written = conn.write(&head).await;
        client.heads.give_back(head);
        written.map_err(|_| SendFailure::Upstream)?;
        match self {
            RequestBody::InFile(file) => send_file(file, conn).await,
            RequestBody::Stream {
                rechunk: Some(rechunk),
                ..
            } => send_rechunked(rechunk, conn, body, client).await,
            RequestBody::Stream { .. } => {
                // the rest of a stream, as it comes from the client
                loop {
                    match client.body_chunk(body).await {
                        Ok(Some(data)) => {
                            conn.write(&data).await.map_err(|_| SendFailure::Upstream)?
                        }
                        Ok(None) => break,
                        Err(e) => return Err(SendFailure::Client(e)),
                    }
                }
                conn.flush().await.map_err(|_| SendFailure::Upstream)
            }
            _ => Ok(()),
        }
    }

    /// Whether another attempt can send it again.
    pub(super) fn resendable(&self) -> bool {
        !matches!(self, RequestBody::Stream { sent: true, .. })
    }

    /// The length of a held body (sent as `Content-Length`).
    pub(super) fn length(&self) -> Option<u64> {
        match self {
            RequestBody::Held(bytes) => Some(bytes.len() as u64),
            RequestBody::InFile(file) => Some(file.len),
            RequestBody::Withheld(n) => Some(*n),
            _ => None,
        }
    }

    /// The framing line a de-chunked or re-chunked body needs: its length
    /// once known whole, `Transfer-Encoding: chunked` while it streams.
    pub(super) fn framing(&self) -> Option<BodyFraming> {
        match self {
            RequestBody::Stream {
                rechunk: Some(_), ..
            } => Some(BodyFraming::Chunked),
            _ => self.length().map(BodyFraming::Length),
        }
    }
}

/// The rest of a chunked body, a chunk for each read of the client's.
async fn send_rechunked(
    rechunk: &mut Rechunk,
    conn: &mut Conn,
    body: &mut BodyReader,
    client: &mut ClientConn,
) -> Result<(), SendFailure> {
    let mut out = Vec::new();
    while !rechunk.ended {
        // a buffer's worth of what the client sent, read when none is
        let (data, used) = client
            .take_chunked_within(body, rechunk.buffer)
            .map_err(SendFailure::Client)?;
        if used == 0 && !body.done() {
            client.read_body(body).await.map_err(SendFailure::Client)?;
            continue;
        }
        rechunk
            .count(data.len())
            .map_err(|(before, chunk)| SendFailure::TooLarge(before, chunk))?;
        out.clear();
        rechunk.frame(&data, body.done(), &mut out);
        if !out.is_empty() {
            conn.write(&out).await.map_err(|_| SendFailure::Upstream)?;
        }
    }
    conn.flush().await.map_err(|_| SendFailure::Upstream)
}

/// A body from its temp file, a piece at a time.
async fn send_file(file: &TempFile, conn: &mut Conn) -> Result<(), SendFailure> {
    let mut piece = vec![0u8; crate::spool::READ_PIECE];
    let mut offset = 0;
    while offset < file.len {
        let n = match file.read_at(&mut piece, offset) {
            Ok(0) | Err(_) => return Err(SendFailure::Upstream),
            Ok(n) => n,
        };
        conn.write(&piece[..n])
            .await
            .map_err(|_| SendFailure::Upstream)?;
        offset += n as u64;
    }
    conn.flush().await.map_err(|_| SendFailure::Upstream)
}
