//! The upstream servers a request tried, as nginx records them in
//! `r->upstream_states`: `$upstream_addr`, `$upstream_status` and the
//! `$upstream_*_time` and `$upstream_bytes_*` variables read them in any
//! phase (a header added to the response, the `return` of an error page,
//! the access log).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::peer::PeerAddr;
use crate::template::UpstreamVar;

/// One entry: a server tried, or the mark between the upstream uses of
/// one request (an internal redirect to another proxied location).
#[derive(Debug, Clone)]
struct State {
    /// `None`: the mark between two uses.
    peer: Option<PeerAddr>,
    /// The status of its answer, or the one its failure gave (502, 504).
    status: Option<u16>,
    /// When the try started (nginx's `u->start_time`).
    started: Option<Instant>,
    /// Connected (`$upstream_connect_time`), head read
    /// (`$upstream_header_time`), done (`$upstream_response_time`).
    connect: Option<Duration>,
    header: Option<Duration>,
    response: Option<Duration>,
    /// What the try's connection moved, counted as it goes.
    bytes: Option<Arc<TryBytes>>,
    /// The length of the head it answered with (`None`: no answer, or one
    /// passed over for its status: its body is not read).
    head_len: Option<u64>,
}

impl State {
    fn mark() -> State {
        State {
            peer: None,
            status: None,
            started: None,
            connect: None,
            header: None,
            response: None,
            bytes: None,
            head_len: None,
        }
    }

    /// `$upstream_bytes_received`, `$upstream_bytes_sent` and
    /// `$upstream_response_length` of this entry (nginx's
    /// `state->bytes_received`, `->bytes_sent`, `->response_length`: 0 for
    /// a mark or a try that moved nothing).
    fn bytes(&self, var: UpstreamVar) -> u64 {
        let Some(bytes) = &self.bytes else { return 0 };
        let received = bytes.received.load(Ordering::Relaxed);
        match var {
            UpstreamVar::BytesSent => bytes.sent.load(Ordering::Relaxed),
            UpstreamVar::ResponseLength => match self.head_len {
                // a 101's tunnel is no response body
                Some(head) if self.status != Some(101) => received.saturating_sub(head),
                _ => 0,
            },
            _ => received,
        }
    }
}

/// The bytes one try moves on its upstream connection: the connection
/// adds what it reads and writes (a kept connection counts anew for each
/// request, as nginx resets `c->sent`).
#[derive(Debug, Default)]
pub struct TryBytes {
    received: AtomicU64,
    sent: AtomicU64,
}

impl TryBytes {
    /// `n` bytes were read from the upstream.
    pub fn received(&self, n: u64) {
        self.received.fetch_add(n, Ordering::Relaxed);
    }

    /// `n` bytes were written to the upstream.
    pub fn sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }
}

/// The head of an upstream's answer, for `$upstream_http_NAME`.
pub trait UpstreamHead: Send + Sync + std::fmt::Debug {
    /// The first header line whose name is `name` in a variable's form
    /// (lowercase, `_` for `-`), as `ngx_http_variable_unknown_header`
    /// finds it.
    fn header(&self, name: &str) -> Option<String>;
}

/// The request's record (shared by its phases, so filled through `&self`).
#[derive(Debug, Default)]
pub struct UpstreamStates {
    /// `None` until the request first uses an upstream.
    states: Mutex<Option<Vec<State>>>,
    /// The last answer's head, when the configuration reads its headers.
    head: Mutex<Option<Arc<dyn UpstreamHead>>>,
}

impl Clone for UpstreamStates {
    fn clone(&self) -> Self {
        UpstreamStates {
            states: Mutex::new(self.lock().clone()),
            head: Mutex::new(
                self.head
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
            ),
        }
    }
}

impl UpstreamStates {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Vec<State>>> {
        self.states.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The request starts using an upstream (`ngx_http_upstream_init_request`:
    /// a use after the first is marked off from the one before).
    pub fn start(&self) {
        let mut states = self.lock();
        match &mut *states {
            None => *states = Some(Vec::new()),
            Some(list) => list.push(State::mark()),
        }
    }

    /// A server is tried from `now` (`ngx_http_upstream_connect`).
    pub fn tried(&self, peer: &PeerAddr, now: Instant) {
        self.lock().get_or_insert_with(Vec::new).push(State {
            peer: Some(peer.clone()),
            started: Some(now),
            ..State::mark()
        });
    }

    /// Runs `f` on the try in progress (the last entry, when a server).
    fn with_last(&self, f: impl FnOnce(&mut State, Duration)) {
        if let Some(last) = self.lock().as_mut().and_then(|l| l.last_mut()) {
            if let Some(started) = last.started {
                f(last, started.elapsed());
            }
        }
    }

    /// The try in progress has its connection (a kept one at once), as
    /// nginx notes it when it first sends (`ngx_http_upstream_send_request`):
    /// the counter its bytes go to from now on.
    pub fn connected(&self) -> Arc<TryBytes> {
        let bytes = Arc::new(TryBytes::default());
        self.with_last(|s, took| {
            s.connect.get_or_insert(took);
            // a kept connection found closed is replaced: the new one counts
            s.bytes = Some(bytes.clone());
        });
        bytes
    }

    /// The try in progress gave a response head of `head_len` bytes with
    /// `status`.
    pub fn answered(&self, status: u16, head_len: u64) {
        self.with_last(|s, took| {
            s.status = Some(status);
            s.header = Some(took);
            s.head_len = Some(head_len);
        });
    }

    /// The try in progress failed with `status` (`ngx_http_upstream_next`:
    /// 502 for an error, 504 for a timeout), or was passed over for its
    /// answer's status; its time ends now.
    pub fn failed(&self, status: u16) {
        self.with_last(|s, took| {
            s.status = Some(status);
            s.response = Some(took);
            // its body is not read: no response length
            s.head_len = None;
        });
    }

    /// The request is done with its upstream: the last try's time ends
    /// (`ngx_http_upstream_finalize_request`), unless it ended already.
    pub fn finished(&self) {
        self.with_last(|s, took| {
            s.response.get_or_insert(took);
        });
    }

    /// The head of the answer passed on (`u->headers_in`: the last one).
    pub fn answered_with(&self, head: Arc<dyn UpstreamHead>) {
        *self.head.lock().unwrap_or_else(PoisonError::into_inner) = Some(head);
    }

    /// `$upstream_http_NAME` (`name` lowercase, `_` for `-`).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self
            .head
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        head?.header(name)
    }

    /// The server tried last.
    pub fn last(&self) -> Option<PeerAddr> {
        self.lock()
            .as_ref()?
            .iter()
            .rev()
            .find_map(|s| s.peer.clone())
    }

    /// The value of `var`, in nginx's form: each try's address
    /// (`ngx_http_upstream_addr_variable`), status (`-` for none:
    /// `ngx_http_upstream_status_variable`) or time in seconds with
    /// milliseconds (`-` for a moment not reached:
    /// `ngx_http_upstream_response_time_variable`) or byte count
    /// (`ngx_http_upstream_response_length_variable`), `, ` between tries
    /// and ` : ` between uses.
    pub fn write(&self, var: UpstreamVar, out: &mut String) {
        let time = |s: &State| match var {
            UpstreamVar::ConnectTime => s.connect,
            UpstreamVar::HeaderTime => s.header,
            _ => s.response,
        };
        self.write_each(out, |s, out| {
            let _ = match var {
                UpstreamVar::Addr => match &s.peer {
                    Some(peer) => write!(out, "{peer}"),
                    None => Ok(()),
                },
                UpstreamVar::Status => match s.status {
                    Some(status) => write!(out, "{status}"),
                    None => write!(out, "-"),
                },
                UpstreamVar::BytesReceived
                | UpstreamVar::BytesSent
                | UpstreamVar::ResponseLength => write!(out, "{}", s.bytes(var)),
                _ => match time(s) {
                    Some(t) => write!(out, "{}.{:03}", t.as_secs(), t.subsec_millis()),
                    None => write!(out, "-"),
                },
            };
        });
    }

    /// nginx's walk over the states: an entry, then `, ` when the next
    /// one is a server, or ` : ` when it is a mark (which is skipped).
    fn write_each(&self, out: &mut String, mut one: impl FnMut(&State, &mut String)) {
        let states = self.lock();
        let Some(list) = states.as_ref().filter(|l| !l.is_empty()) else {
            return;
        };
        let mut i = 0;
        loop {
            one(&list[i], out);
            i += 1;
            if i == list.len() {
                break;
            }
            if list[i].peer.is_some() {
                out.push_str(", ");
            } else {
                out.push_str(" : ");
                i += 1;
                if i == list.len() {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> PeerAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], port)).into()
    }

    fn written(states: &UpstreamStates) -> (String, String) {
        let (mut addrs, mut statuses) = (String::new(), String::new());
        states.write(UpstreamVar::Addr, &mut addrs);
        states.write(UpstreamVar::Status, &mut statuses);
        (addrs, statuses)
    }

    #[test]
    fn tries_and_uses_are_written_as_nginx_writes_them() {
        let states = UpstreamStates::default();
        assert_eq!(written(&states), (String::new(), String::new()));
        let now = Instant::now();
        states.start();
        states.tried(&peer(1), now);
        states.failed(502);
        states.tried(&peer(2), now);
        let bytes = states.connected();
        bytes.sent(100);
        bytes.received(150);
        states.answered(404, 120);
        // an error page proxied elsewhere
        states.start();
        states.tried(&peer(3), now);
        assert_eq!(
            written(&states),
            (
                "127.0.0.1:1, 127.0.0.1:2 : 127.0.0.1:3".to_string(),
                "502, 404 : -".to_string()
            )
        );
        assert_eq!(states.last(), Some(peer(3)));
        let count = |which| {
            let mut out = String::new();
            states.write(which, &mut out);
            out
        };
        assert_eq!(count(UpstreamVar::BytesSent), "0, 100 : 0");
        assert_eq!(count(UpstreamVar::BytesReceived), "0, 150 : 0");
        assert_eq!(count(UpstreamVar::ResponseLength), "0, 30 : 0");
        // the shape of each time (digits as 9: a slow machine takes longer)
        let time = |which| {
            let mut out = String::new();
            states.write(which, &mut out);
            out.replace(|c: char| c.is_ascii_digit(), "9")
        };
        assert_eq!(time(UpstreamVar::ConnectTime), "-, 9.999 : -");
        assert_eq!(time(UpstreamVar::HeaderTime), "-, 9.999 : -");
        assert_eq!(time(UpstreamVar::ResponseTime), "9.999, - : -");
        states.finished();
        assert_eq!(time(UpstreamVar::ResponseTime), "9.999, - : 9.999");
        // a use that tried no server (its host did not resolve) leaves
        // its mark, as nginx's array does
        let failed_first = UpstreamStates::default();
        failed_first.start();
        failed_first.start();
        failed_first.tried(&peer(4), Instant::now());
        assert_eq!(written(&failed_first).0, ", 127.0.0.1:4");
    }
}
