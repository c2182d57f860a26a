//! The proxy content handler: the request body as nginx reads it (a
//! chunked one whole first, a sized one streamed), then the upstream
//! phase ([`super::attempt`]) and the response filters
//! ([`super::response`]).

use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use rginx_core::plan::{BodyPlan, UpstreamPlan};

use super::error::{Kind, ProxyError};
use super::request::Session;
use super::upgrade::TunnelPlan;
use super::Engine;
use crate::http1::conn::{BodyError, BodyReader, ClientConn};
use crate::http1::write::RawLines;
use crate::pool::{Body, Conn};

/// A request's answer: a response (with the backend's lines when it
/// came from one), or a `101` whose connection becomes a tunnel once the
/// head is written.
pub(super) enum Answer {
    Response(Response<Body>, Option<RawLines>),
    Tunnel(Response<Body>, RawLines, Box<TunnelPlan>),
}

/// The request body as it goes upstream: none, bytes held (which can be
/// sent again to another server), or the client's body still on its
/// connection (streamed once: `sent` after that).
pub(super) enum RequestBody {
    Empty,
    Held(Bytes),
    Stream { sent: bool },
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
        let mut body = match request_body(plan, client_body, client).await {
            Ok(body) => body,
            Err(error) => {
                error.log(&session.context, &session.context.describe(None));
                return Err(error);
            }
        };
        let reply = self
            .attempts(session, plan, &mut body, client_body, client)
            .await?;
        self.upstream_response(session, plan, reply).await
    }
}

/// The request body: a chunked one is read whole first, as nginx's
/// request buffering does (it is sent with a Content-Length, and one over
/// client_max_body_size is a 413 before any upstream is contacted); a
/// sized one streams.
async fn request_body(
    plan: &UpstreamPlan<'_>,
    body: &mut BodyReader,
    conn: &mut ClientConn,
) -> Result<RequestBody, ProxyError> {
    match plan.body {
        BodyPlan::Dechunk => {
            let mut held = bytes::BytesMut::new();
            loop {
                let data = match conn.body_chunk(body).await {
                    Ok(Some(data)) => data,
                    Ok(None) => break,
                    Err(e) => return Err(ProxyError::new(client_body_failure(&e))),
                };
                let before = held.len() as u64;
                if plan.max_body > 0 && before + data.len() as u64 > plan.max_body {
                    // nginx's words: what came so far + the chunk that does
                    // not fit
                    return Err(ProxyError::new(Kind::ClientBodyTooLarge(
                        before,
                        data.len() as u64,
                    )));
                }
                held.extend_from_slice(&data);
            }
            Ok(RequestBody::Held(held.freeze()))
        }
        BodyPlan::None => Ok(RequestBody::Empty),
        _ if body.done() => Ok(RequestBody::Empty),
        _ => Ok(RequestBody::Stream { sent: false }),
    }
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
            RequestBody::Empty => {}
            RequestBody::Held(bytes) => head.extend_from_slice(bytes),
            RequestBody::Stream { sent: true } => return Err(SendFailure::Upstream),
            RequestBody::Stream { sent } => {
                *sent = true;
                if let Ok(Some(first)) = client.take_ready(body) {
                    head.extend_from_slice(&first);
                }
            }
        }
        let written = conn.write(&head).await;
        client.heads.give_back(head);
        written.map_err(|_| SendFailure::Upstream)?;
        if !matches!(self, RequestBody::Stream { .. }) {
            return Ok(());
        }
        // the rest of a stream, as it comes from the client
        loop {
            match client.body_chunk(body).await {
                Ok(Some(data)) => conn.write(&data).await.map_err(|_| SendFailure::Upstream)?,
                Ok(None) => break,
                Err(e) => return Err(SendFailure::Client(e)),
            }
        }
        conn.flush().await.map_err(|_| SendFailure::Upstream)
    }

    /// Whether another attempt can send it again.
    pub(super) fn resendable(&self) -> bool {
        !matches!(self, RequestBody::Stream { sent: true })
    }

    /// The length of a held body (sent as `Content-Length`).
    pub(super) fn length(&self) -> Option<u64> {
        match self {
            RequestBody::Held(bytes) => Some(bytes.len() as u64),
            _ => None,
        }
    }
}
