//! The upstream phase: pick a server (the group's balancer), connect or
//! take a kept connection, send the request, read the response head, and
//! move on to the next server as `proxy_next_upstream` allows
//! (`ngx_http_upstream_next`).

use std::sync::Arc;
use std::time::Instant;

use rginx_core::peer::PeerAddr;
use rginx_core::plan::{NextUpstream, PlanTarget, UpstreamPlan};
use rginx_http::response::ResponseHead;
use tokio::net::TcpStream;

use super::error::{Kind, ProxyError, Side};
use super::proxy::{client_body_failure, RequestBody, SendFailure};
use super::request::Session;
use super::Engine;
use crate::balance::{PeerLease, Pick, Tried};
use crate::http1::conn::{BodyReader, ClientConn, Waited};
use crate::pool::{Conn, Pool};
use crate::timed::TimedWrites;
use crate::upstream::HeadError;

/// The server a try went to, when it came from a group: the group's
/// place in the engine and the balancer's pick.
pub(super) type Picked = Option<(usize, Pick)>;

/// A response head that will be passed on, and where it came from.
pub(super) struct Reply {
    pub head: ResponseHead,
    pub conn: Conn,
    pub picked: Picked,
    pub addr: PeerAddr,
}

/// One exchange failed: how, and whether it was a kept connection the
/// upstream had closed meanwhile (tried again at once, on a new one).
struct Failed {
    error: ProxyError,
    stale: bool,
}

impl Engine {
    /// Tries servers until one gives a response head to pass on.
    pub(super) async fn attempts(
        &self,
        session: &Session<'_>,
        plan: &UpstreamPlan<'_>,
        target: &PlanTarget,
        body: &mut RequestBody,
        client_body: &mut BodyReader,
        client: &mut ClientConn,
    ) -> Result<Reply, ProxyError> {
        let next = plan.next_upstream;
        let started = Instant::now();
        // the group is found once for all of the request's tries
        let group = self.group_of(target);
        // nginx's peer.tries: every server of the group, or fewer
        let servers = self.server_count(target, group);
        let allowed = match next.tries {
            0 => servers,
            n => servers.min(usize::try_from(n).unwrap_or(usize::MAX)),
        };
        let mut tried = Tried::default();
        let mut attempt = 0;
        loop {
            // one clock read serves the balancer and the attempt's timing
            let attempt_started = if attempt == 0 {
                started
            } else {
                Instant::now()
            };
            let (addr, picked, lease) = match self.peer_for(
                target,
                group,
                &mut tried,
                attempt,
                attempt_started,
                crate::balance::Client {
                    ip: session.head.remote.ip(),
                    key: plan.balance_key.as_deref(),
                },
            ) {
                Ok(peer) => peer,
                Err(error) => {
                    if let Kind::NoLiveUpstreams(name) = &error.kind {
                        let describe = session.context.describe(Some((name, &plan.uri)));
                        error.log(&session.context, &describe);
                    }
                    return Err(error);
                }
            };
            attempt += 1;
            let more = attempt < allowed
                && (next.time_limit.is_zero()
                    || attempt_started.saturating_duration_since(started) < next.time_limit);
            session.tried(&addr, &plan.uri, attempt_started);
            let at = addr.in_url();
            let describe = session.context.describe(Some((&at, &plan.uri)));
            let outcome = self
                .exchange(session, plan, &addr, &picked, body, client_body, client)
                .await;
            let resend = |error_sent: bool, body: &RequestBody| {
                !error_sent || (body.resendable() && next.may_resend(plan.method))
            };
            match outcome {
                Ok((head, mut conn)) => {
                    session.upstreams().answered(head.status, head.len as u64);
                    // a status named in proxy_next_upstream moves on while
                    // servers are left; the last one's answer goes through
                    if next.on_status(head.status) && more && resend(true, body) {
                        session.upstreams().failed(head.status);
                        let failed = NextUpstream::status_is_failure(head.status);
                        self.report(&picked, &addr, attempt_started, failed);
                        continue;
                    }
                    self.report(&picked, &addr, attempt_started, false);
                    // the peer's request lasts as long as its response
                    conn.lease = lease;
                    return Ok(Reply {
                        head,
                        conn,
                        picked,
                        addr,
                    });
                }
                Err(error) => {
                    error.log(&session.context, &describe);
                    if error.side() == Side::Client {
                        session.upstreams().finished();
                        // the peer is free again, not failed (`free_peer`
                        // with state 0)
                        self.report(&picked, &addr, attempt_started, false);
                        return Err(error);
                    }
                    session.upstreams().failed(error.status());
                    self.report(&picked, &addr, attempt_started, true);
                    if !(error.retryable(&next) && more && resend(error.sent, body)) {
                        return Err(error);
                    }
                }
            }
        }
    }

    /// One server: a kept connection or a new one, the request sent, the
    /// response head read. A kept connection the upstream closed while it
    /// was idle is replaced by a new one without counting a try, as nginx
    /// does.
    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &self,
        session: &Session<'_>,
        plan: &UpstreamPlan<'_>,
        addr: &PeerAddr,
        picked: &Picked,
        body: &mut RequestBody,
        client_body: &mut BodyReader,
        client: &mut ClientConn,
    ) -> Result<(ResponseHead, Conn), ProxyError> {
        let mut pooled = self.pool_of(picked).and_then(|pool| pool.take(addr));
        loop {
            let from_pool = pooled.is_some();
            let mut conn = match pooled.take() {
                Some(conn) => conn,
                None => self.connect(plan, addr).await?,
            };
            conn.requests += 1;
            conn.count_into(session.upstreams().connected());
            // a stream already sent cannot be sent again
            if !body.resendable() {
                return Err(ProxyError::new(Kind::NoServer));
            }
            // the client connection's head buffer: free until the answer
            let mut head = client.heads.take();
            rginx_http::upstream_request::write_head(
                &mut head,
                &plan.sent_method,
                &plan.uri,
                plan.version,
                upstream_lines(plan, session.raw_headers),
                plan.length_at.zip(body.framing()),
            );
            match self
                .send_and_read(plan, &mut conn, head, body, client_body, client)
                .await
            {
                Ok(head) => return Ok((head, conn)),
                Err(Failed { stale: true, .. }) if from_pool && body.resendable() => continue,
                Err(Failed { error, .. }) => return Err(error),
            }
        }
    }

    /// Sends the request on `conn` and reads the response head within
    /// `proxy_read_timeout` (from the end of the body: nginx reads a body
    /// before it connects), noticing meanwhile a client that leaves.
    async fn send_and_read(
        &self,
        plan: &UpstreamPlan<'_>,
        conn: &mut Conn,
        head: Vec<u8>,
        body: &mut RequestBody,
        client_body: &mut BodyReader,
        client: &mut ClientConn,
    ) -> Result<ResponseHead, Failed> {
        let failed = |kind, stale| Failed {
            error: ProxyError::after_sending(kind),
            stale,
        };
        match body.send(conn, head, client_body, client).await {
            Ok(()) => {}
            Err(SendFailure::Upstream) => return Err(failed(Kind::PrematureClose, true)),
            Err(SendFailure::Client(e)) => return Err(failed(client_body_failure(&e), false)),
            Err(SendFailure::TooLarge(before, chunk)) => {
                return Err(failed(Kind::StreamedBodyTooLarge(before, chunk), false))
            }
        }
        let limit = usize::try_from(plan.buffer_size).unwrap_or(usize::MAX);
        tokio::select! {
            read = conn.read_head(limit) => match read {
                Ok(head) => Ok(head),
                Err(HeadError::Closed { early }) => Err(failed(Kind::PrematureClose, early)),
                Err(HeadError::Io(_)) => Err(failed(Kind::PrematureClose, false)),
                Err(HeadError::Invalid) => Err(failed(Kind::InvalidHeader, false)),
                Err(HeadError::TooBig) => Err(failed(Kind::TooBigHeader, false)),
            },
            waited = client.wait_upstream(plan.read_timeout) => match waited {
                Waited::TimedOut => Err(failed(Kind::ReadTimeout, false)),
                // nginx's 499: the client closed its connection while the
                // backend had yet to answer; the backend connection is
                // closed too
                Waited::Closed => Err(failed(Kind::ClientClosed, false)),
            },
        }
    }

    /// How many servers a request may try (nginx's `peer.tries`).
    fn server_count(&self, target: &PlanTarget, group: Option<usize>) -> usize {
        match target {
            PlanTarget::Addrs(addrs) => addrs.len(),
            PlanTarget::Resolve { .. } => 0,
            PlanTarget::Upstream(_) => group
                .and_then(|g| self.groups.get(g))
                .and_then(|g| g.balancer.lock().ok().map(|rr| rr.tries()))
                .unwrap_or(1),
        }
    }

    /// Where the plan's upstream group is in the engine: found by its
    /// name, case-insensitively as nginx compares them.
    fn group_of(&self, target: &PlanTarget) -> Option<usize> {
        let PlanTarget::Upstream(name) = target else {
            return None;
        };
        // names are nearly always written in lower case: no copy then
        match self.group_index.get(&**name) {
            Some(&index) => Some(index),
            None => self.group_index.get(&name.to_ascii_lowercase()).copied(),
        }
    }

    /// A new connection to `addr`, within `proxy_connect_timeout`.
    async fn connect(&self, plan: &UpstreamPlan<'_>, addr: &PeerAddr) -> Result<Conn, ProxyError> {
        // an upstream connection takes a slot too (nginx: a 500 without)
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            return Err(ProxyError::new(Kind::NoSlots(self.slot_count)));
        };
        // an upstream connection takes a number too (`ngx_event_connect_peer`)
        crate::status::COUNTERS.next_number();
        let connecting = async {
            let stream: crate::transport::Stream = match addr {
                PeerAddr::Inet(inet) => {
                    let stream = TcpStream::connect(inet).await?;
                    let _ = stream.set_nodelay(true);
                    Box::new(stream)
                }
                PeerAddr::Unix(path) => Box::new(tokio::net::UnixStream::connect(&**path).await?),
            };
            Ok::<_, std::io::Error>(stream)
        };
        let stream = match tokio::time::timeout(plan.connect_timeout, connecting).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                let unix = match addr {
                    PeerAddr::Unix(path) => Some(path.clone()),
                    PeerAddr::Inet(_) => None,
                };
                return Err(ProxyError::new(Kind::Connect(e, unix)));
            }
            Err(_) => return Err(ProxyError::new(Kind::ConnectTimeout)),
        };
        let stream = match &plan.tls {
            Some(tls) => self.tls_handshake(plan, tls, stream).await?,
            None => stream,
        };
        // proxy_send_timeout, of the request that opened the connection
        Ok(Box::new(crate::upstream::UpstreamConn::new(
            addr.clone(),
            TimedWrites::new(stream, plan.send_timeout),
            slot,
        )))
    }

    /// The TLS handshake on a new upstream connection, within
    /// `proxy_connect_timeout` of its own (`ngx_http_upstream_ssl_init_connection`).
    async fn tls_handshake(
        &self,
        plan: &UpstreamPlan<'_>,
        tls: &rginx_core::plan::UpstreamTls<'_>,
        stream: crate::transport::Stream,
    ) -> Result<crate::transport::Stream, ProxyError> {
        let failed = |why: String| ProxyError::new(Kind::Handshake(why));
        let config = self
            .tls
            .as_ref()
            .and_then(|plan| plan.upstream(tls.proxy))
            .ok_or_else(|| failed("no TLS configuration for the upstream".to_string()))?;
        let name = crate::tls::upstream::server_name(&tls.name).map_err(failed)?;
        let tcp = stream
            .into_tcp()
            .map_err(|_| failed("TLS to this upstream is not supported".to_string()))?;
        let connector = tokio_rustls::TlsConnector::from(config.clone());
        let handshake = connector.connect(name, tcp);
        match tokio::time::timeout(plan.connect_timeout, handshake).await {
            Ok(Ok(conn)) => Ok(Box::new(crate::tls::stream::TlsConn::connected(conn))),
            Ok(Err(e)) => Err(failed(
                match e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                {
                    Some(tls) => format!("rustls: {tls}"),
                    None => crate::process::os_error(&e),
                },
            )),
            Err(_) => Err(ProxyError::new(Kind::HandshakeTimeout)),
        }
    }

    /// The next peer for a request; `tried` holds the ones it already had.
    fn peer_for(
        &self,
        target: &PlanTarget,
        group: Option<usize>,
        tried: &mut Tried,
        attempt: usize,
        now: Instant,
        client: crate::balance::Client<'_>,
    ) -> Result<(PeerAddr, Picked, Option<PeerLease>), ProxyError> {
        let none = || ProxyError::new(Kind::NoServer);
        match target {
            // resolved before the first try
            PlanTarget::Resolve { .. } => Err(none()),
            PlanTarget::Addrs(addrs) => addrs
                .get(attempt)
                .map(|a| (a.clone(), None, None))
                .ok_or_else(none),
            PlanTarget::Upstream(name) => {
                let index = group.ok_or_else(none)?;
                let group = self.groups.get(index).ok_or_else(none)?;
                let mut rr = group.balancer.lock().map_err(|_| none())?;
                // none left: nginx's "no live upstreams"
                let Some(pick) = rr.pick(now, tried, client) else {
                    return Err(ProxyError::new(Kind::NoLiveUpstreams(name.to_string())));
                };
                let addr = rr.peer(pick).ok_or_else(none)?.addr.clone();
                let lease = PeerLease::new(Arc::clone(&group.balancer), pick);
                Ok((addr, Some((index, pick)), Some(lease)))
            }
        }
    }

    /// An attempt on `addr`, started at `started`, ended: the balancer
    /// learns whether it failed, and the upstream figures count it.
    fn report(&self, picked: &Picked, addr: &PeerAddr, started: Instant, failed: bool) {
        let now = Instant::now();
        let took = now.saturating_duration_since(started);
        match picked {
            Some((index, pick)) => {
                if let Some(Ok(mut rr)) = self.groups.get(*index).map(|g| g.balancer.lock()) {
                    rr.report(*pick, failed, now);
                    if let Some(peer) = rr.peer(*pick) {
                        peer.stats.observe(failed, took);
                    }
                }
            }
            // a proxy_pass to addresses: found by address (a lock and a
            // lookup, where a group's peers hold theirs)
            None => crate::status::UPSTREAMS
                .peer("", addr)
                .observe(failed, took),
        }
    }

    /// The pool of the group a pick came from, if it keeps connections.
    pub(super) fn pool_of(&self, picked: &Picked) -> Option<&Arc<Pool>> {
        picked
            .as_ref()
            .and_then(|(index, _)| self.groups.get(*index)?.pool.as_ref())
    }
}

/// The plan's header lines as they go upstream: the lines passed on from
/// the client with the client's raw bytes, the others as the plan says.
fn upstream_lines<'a>(
    plan: &'a UpstreamPlan<'a>,
    raw: &'a [(&'a str, &'a [u8])],
) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
    let first_passed = plan.headers.len().saturating_sub(plan.passed.len());
    plan.headers
        .iter()
        .enumerate()
        .map(move |(j, (name, value))| {
            let from_client = j
                .checked_sub(first_passed)
                .and_then(|k| plan.passed.get(k))
                .and_then(|&i| raw.get(i));
            match from_client {
                Some((_, bytes)) => (*name, *bytes),
                None => (*name, value.as_bytes()),
            }
        })
}
