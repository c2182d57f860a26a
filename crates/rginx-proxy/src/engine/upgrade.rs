//! After a `101` to a client that asked for an upgrade, the connection
//! becomes a tunnel to the upstream ([`crate::tunnel`]) until either side
//! closes or `proxy_read_timeout` passes idle; its access log line is
//! written then, with the bytes sent to the client.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::log::LogRecord;
use crate::timed::TimedWrites;
use crate::transport::Stream;
use crate::upstream::UpstreamTunnel;

/// The upstream side of a tunnel, and what it needs to run.
pub(crate) struct TunnelPlan {
    /// The upstream stream, what it sent after its 101 head, the peer's
    /// request in progress (for as long as the tunnel lasts) and where
    /// its bytes count.
    pub(super) upstream: UpstreamTunnel,
    /// `proxy_read_timeout`: the tunnel closes after this long idle.
    pub(super) idle: Duration,
    /// Written when the tunnel closes.
    pub(super) log: Option<LogRecord>,
    /// nginx's info line for a tunnel that idled out, made while the
    /// request was at hand (when info lines are logged).
    pub(super) timeout_line: Option<TimeoutLine>,
    /// The worker's `worker_connections` slots.
    pub(super) slots: Arc<tokio::sync::Semaphore>,
}

/// What nginx's "upstream timed out ... while proxying upgraded
/// connection" line says about the request.
pub(super) struct TimeoutLine {
    /// The connection's number (`*N`).
    pub connection: u64,
    /// The `error_log` list the line goes to.
    pub log_set: u64,
    /// The line's context (`, client: ..., upstream: ..., host: ...`).
    pub describe: String,
}

impl TunnelPlan {
    /// Relays between `client` (and what it sent after its request) and
    /// the upstream until either side closes or the tunnel idles out.
    pub(crate) async fn run(self: Box<Self>, client: TimedWrites<Stream>, client_early: Bytes) {
        // the upstream connection left its slot with the exchange: the
        // tunnel holds one for it, if it can
        let _slot = self.slots.clone().try_acquire_owned().ok();
        let UpstreamTunnel {
            stream,
            early,
            lease,
            bytes,
        } = self.upstream;
        let moved = crate::tunnel::run((client, client_early), (stream, early), self.idle).await;
        if let (true, Some(line)) = (moved.timed_out, &self.timeout_line) {
            // ngx_http_upstream_process_upgraded: an ETIMEDOUT on the
            // client's connection, logged at info (its log_error)
            tracing::info!(
                log_set = line.log_set,
                "*{} upstream timed out (110: Connection timed out) while proxying upgraded connection{}",
                line.connection,
                line.describe
            );
        }
        // what came with the 101 head was counted as it was read
        bytes.received(moved.from_upstream);
        bytes.sent(moved.to_upstream);
        if let Some(record) = &self.log {
            record.write(moved.to_client);
        }
        // the peer's request in progress ends with the tunnel
        drop(lease);
    }
}
