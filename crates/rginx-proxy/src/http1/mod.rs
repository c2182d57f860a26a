//! rginx's own HTTP/1 server: one task per client connection reads each
//! request head through nginx's checks and timers ([`conn`]), has the
//! engine serve it, and writes the answer as nginx writes it ([`write`]);
//! a `101` turns the connection into a tunnel.
//!
//! Requests are served one at a time, in order: bytes a client pipelines
//! wait in the connection's buffer and go through the same checks when
//! their turn comes, as nginx reads a pipelined request only once the one
//! before it is finished.

pub mod conn;
pub mod pace;
pub mod park;
pub mod write;

use std::net::SocketAddr;
use std::sync::Arc;

use rginx_http::head_scan::HeadScanner;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::time::Instant;

use crate::engine::{Engine, EngineCell, Next, TunnelPlan};
use crate::transport::Stream;
use conn::{ClientConn, HeadRead, HeadTimers, Idle};

/// What a request knows of the client connection it came on.
#[derive(Debug, Clone, Copy)]
pub struct ClientConnection {
    /// Its number since start (nginx's `*N`).
    pub number: u64,
    /// The address it was accepted on.
    pub local: SocketAddr,
    /// The client's address.
    pub remote: SocketAddr,
    /// Requests on it so far, this one included.
    pub served: u32,
    /// When it was accepted, in [`uptime_ms`] (`keepalive_time` counts
    /// from then; 4 bytes, as a parked connection keeps it).
    pub opened: u32,
    /// It came in on a TLS socket without TLS: its requests get nginx's
    /// 400 "The plain HTTP request was sent to HTTPS port".
    pub plain_on_tls: bool,
}

/// Milliseconds since this process first asked, wrapping after 49 days
/// (ages are taken with `wrapping_sub`, as nginx's `ngx_current_msec`).
pub fn uptime_ms() -> u32 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u32
}

/// Serves an accepted connection (any [`crate::transport::Transport`]:
/// a TCP socket, a TLS stream) until it closes. Each request is served
/// by the engine in `current` (the configuration now), or by `engine` (the
/// one that accepted it) when the new configuration no longer listens
/// where the connection came in. Once `quit` turns true the connection
/// ends after the request it is serving, as nginx's graceful shutdown.
/// A TCP connection idle for [`park::PARK_AFTER`] between requests is
/// parked with the worker's other idle ones until the client sends more.
/// The first request's head is due by `first_deadline`.
pub async fn serve(
    current: Arc<EngineCell>,
    engine: Arc<Engine>,
    stream: Stream,
    connection: ClientConnection,
    quit: watch::Receiver<bool>,
    slot: OwnedSemaphorePermit,
    first_deadline: Instant,
) {
    // before a request names its server, the listening socket's default
    // server decides
    let client = engine.socket_client_settings(connection.local);
    let conn = ClientConn::new(stream, client.send_timeout);
    let session = Session {
        current,
        accepted_by: engine,
        connection,
        limits: HeadLimits {
            buffers: client.header_buffers,
            buffer: client.header_buffer,
            lines: client.max_headers,
        },
        quit,
        slot,
    };
    let timers = HeadTimers {
        first_deadline: Some(first_deadline),
        idle: client.keepalive_timeout,
        header: client.header_timeout,
    };
    run(session, conn, timers, false).await;
}

/// Serves a parked connection the client sent something on.
pub(crate) async fn serve_woken(
    session: Session,
    conn: ClientConn,
    idle: std::time::Duration,
    header: std::time::Duration,
) {
    let timers = HeadTimers {
        first_deadline: None,
        idle,
        header,
    };
    run(session, conn, timers, true).await;
}

/// A client connection's state between requests, apart from its stream.
pub(crate) struct Session {
    /// The worker's engine now, and its parked connections.
    current: Arc<EngineCell>,
    /// The engine that accepted the connection.
    accepted_by: Arc<Engine>,
    connection: ClientConnection,
    limits: HeadLimits,
    quit: watch::Receiver<bool>,
    /// Its `worker_connections` slot, held while it is open.
    slot: OwnedSemaphorePermit,
}

/// Serves requests on a connection until it closes (`woken`: it was
/// parked and the client has sent something since).
async fn run(mut session: Session, mut conn: ClientConn, mut timers: HeadTimers, mut woken: bool) {
    loop {
        // the task's future is sized for serving a request (no allocation
        // per request for it); a connection idle for long is parked, which
        // ends the task, and a tunnel gets a task of its own
        if conn.buf.is_empty() && timers.first_deadline.is_none() && !std::mem::take(&mut woken) {
            let parkable = session.current.parked.available();
            match conn
                .wait_idle(timers.idle, park::PARK_AFTER, parkable, &session.quit)
                .await
            {
                Idle::Ready => {}
                Idle::Ended => return,
                Idle::Quiet(due) => match conn.park() {
                    Ok(parts) => return park(session, parts, timers, due),
                    // a stream that cannot be parked waits on in its task
                    Err(back) => {
                        conn = *back;
                        if !conn
                            .wait_idle_until(due, park::PARK_AFTER, &session.quit)
                            .await
                        {
                            return;
                        }
                    }
                },
            }
        }
        let step = serve_one(
            &session.current,
            &session.accepted_by,
            &mut conn,
            &mut session.connection,
            session.limits,
            timers,
        )
        .await;
        match step {
            Step::Next(next) if !*session.quit.borrow() => timers = next,
            Step::Next(_) | Step::Close => return,
            Step::Tunnel(tunnel) => {
                // a task of its own, holding only the tunnel: this one's
                // future is sized for serving a request
                let (client, early, state) = conn.into_tunnel();
                let slot = session.slot;
                tokio::spawn(async move {
                    let _held = (slot, state);
                    tunnel.run(client, early).await;
                });
                return;
            }
        }
    }
}

/// Hands an idle connection to the worker's parked set.
fn park(session: Session, parts: conn::ParkedParts, timers: HeadTimers, due: Instant) {
    // leaves tokio's epoll
    let Ok(stream) = parts.stream.into_std() else {
        return;
    };
    let parked = park::Parked {
        stream: mio::net::TcpStream::from_std(stream),
        engine: session.accepted_by,
        connection: session.connection,
        slot: session.slot,
        state: parts.state,
        limits: session.limits,
        header_timeout: timers.header.into(),
        idle_timeout: timers.idle.into(),
        send_timeout: parts.send_timeout.into(),
    };
    session
        .current
        .parked
        .park(&session.current, &session.quit, parked, due);
}

/// What comes after one request.
enum Step {
    /// The next request, with these timers.
    Next(HeadTimers),
    /// The connection closes.
    Close,
    /// The connection becomes a tunnel.
    Tunnel(Box<TunnelPlan>),
}

/// nginx's limits on a head, for its scanner.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadLimits {
    buffers: u64,
    buffer: u64,
    lines: u64,
}

/// Reads one request head and serves it.
async fn serve_one(
    current: &EngineCell,
    accepted_by: &Arc<Engine>,
    conn: &mut ClientConn,
    connection: &mut ClientConnection,
    limits: HeadLimits,
    timers: HeadTimers,
) -> Step {
    // a head that starts in bytes read with the request before is
    // pipelined (nginx says so in its error lines)
    let pipelined = !conn.buf.is_empty();
    let mut scanner =
        HeadScanner::new(limits.buffers, limits.buffer).with_max_headers(limits.lines);
    let (head, framing) = match conn.read_head(&mut scanner, timers).await {
        HeadRead::Head(head, framing) => (head, framing),
        HeadRead::Ended | HeadRead::Cut => return Step::Close,
        HeadRead::Closed => {
            accepted_by.log_client_closed(connection);
            return Step::Close;
        }
        HeadRead::Refused(refusal) => {
            accepted_by.log_refused(connection, refusal, &conn.buf, pipelined);
            let tokens = accepted_by.server_tokens(connection.local);
            conn.refuse(&crate::engine::refusal(refusal, tokens)).await;
            return Step::Close;
        }
    };
    let now = current.get();
    let engine = if Arc::ptr_eq(&now, accepted_by) || now.listens_on(connection.local) {
        now
    } else {
        accepted_by.clone()
    };
    connection.served = connection.served.saturating_add(1);
    conn.state.writing();
    match engine
        .serve_request(&head, framing, conn, *connection, pipelined)
        .await
    {
        Next::Close => Step::Close,
        Next::Tunnel(tunnel) => Step::Tunnel(tunnel),
        Next::Keep { idle, header } => {
            conn.state.waiting();
            Step::Next(HeadTimers {
                first_deadline: None,
                idle,
                header,
            })
        }
    }
}
