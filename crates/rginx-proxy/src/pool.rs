//! Kept upstream connections (nginx's `keepalive N` in an `upstream`
//! block): at most N idle connections per group (not a limit on open
//! ones), each dropped after `keepalive_timeout` idle (60 s), once it
//! has carried `keepalive_requests` requests (1000), or once it is older
//! than `keepalive_time` (1 h).

use rginx_core::peer::PeerAddr;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rginx_core::model::{UpstreamConf, Value};

use crate::upstream::UpstreamConn;

/// The error of a body in flight: a read failure, or a timeout.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type requests and responses carry through rginx.
pub type Body = http_body_util::combinators::BoxBody<Bytes, BoxError>;

/// A connection to an upstream server, boxed: it moves through the pool,
/// the attempt and the response body, and a pointer moves cheaper than
/// the connection's state (one allocation per connection, not per
/// request).
pub type Conn = Box<UpstreamConn>;

struct Idle {
    conn: Conn,
    since: Instant,
}

/// The idle connections of one upstream group.
pub struct Pool {
    max_idle: usize,
    idle_timeout: Duration,
    max_requests: u64,
    /// `keepalive_time`: the longest life of a kept connection.
    max_age: Duration,
    /// Oldest first: a connection is kept at the back.
    idle: Mutex<VecDeque<Idle>>,
    /// Its configuration was replaced: keeps nothing any more.
    retired: std::sync::atomic::AtomicBool,
}

impl Pool {
    /// The pool of a group with `keepalive N`; `None` without one.
    pub fn for_group(group: &UpstreamConf) -> Option<Pool> {
        let max_idle = usize::try_from(group.keepalive?).unwrap_or(usize::MAX);
        let max_requests = match group.settings.get("keepalive_requests").map(|s| &s.value) {
            Some(Value::Number(n)) => *n,
            _ => 1000,
        };
        Some(Pool {
            max_idle,
            idle_timeout: group
                .settings
                .time("keepalive_timeout", Duration::from_secs(60)),
            max_requests,
            max_age: group
                .settings
                .time("keepalive_time", Duration::from_secs(3600)),
            idle: Mutex::new(VecDeque::new()),
            retired: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The most recently kept connection to `addr` that is still open and
    /// ready for a request.
    pub fn take(&self, addr: &PeerAddr) -> Option<Conn> {
        loop {
            let Idle { conn, since } = {
                let mut idle = self.idle.lock().ok()?;
                let i = idle.iter().rposition(|e| e.conn.addr == *addr)?;
                idle.remove(i)?
            };
            // one the upstream closed (or wrote to) while idle is dropped
            if since.elapsed() < self.idle_timeout && conn.idle_ok() {
                return Some(conn);
            }
        }
    }

    /// Closes the idle connections and keeps none from now on (a reload
    /// replaced the configuration; the new one has its own pool).
    pub fn clear(&self) {
        self.retired
            .store(true, std::sync::atomic::Ordering::Release);
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    /// Keeps a connection for reuse, dropping the oldest beyond the limit
    /// and any that carried its last request.
    pub fn put(&self, mut conn: Conn) {
        // the request is done with the peer
        conn.lease = None;
        if self.max_idle == 0
            || conn.requests >= self.max_requests
            // `ngx_http_upstream_free_keepalive_peer`: older than
            // keepalive_time, it is closed after its response
            || conn.opened.elapsed() > self.max_age
            || self.retired.load(std::sync::atomic::Ordering::Acquire)
        {
            return;
        }
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        // expired ones go first: a pool nobody draws from must not hold
        // connections the backend has long closed (oldest first, so the
        // expired ones are at the front; one clock read)
        let now = Instant::now();
        while idle
            .front()
            .is_some_and(|e| now.saturating_duration_since(e.since) >= self.idle_timeout)
        {
            idle.pop_front();
        }
        if idle.len() >= self.max_idle {
            idle.pop_front();
        }
        idle.push_back(Idle { conn, since: now });
    }
}
