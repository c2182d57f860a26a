//! The upstream servers a request tried, as nginx records them in
//! `r->upstream_states`: `$upstream_addr` and `$upstream_status` read them
//! in any phase (a header added to the response, the `return` of an
//! error page, the access log).

use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

use crate::peer::PeerAddr;

/// One entry: a server tried, or the mark between the upstream uses of
/// one request (an internal redirect to another proxied location).
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    /// `None`: the mark between two uses.
    peer: Option<PeerAddr>,
    /// The status of its answer, or the one its failure gave (502, 504).
    status: Option<u16>,
}

/// The request's record (shared by its phases, so filled through `&self`).
#[derive(Debug, Default)]
pub struct UpstreamStates {
    /// `None` until the request first uses an upstream.
    states: Mutex<Option<Vec<State>>>,
}

impl Clone for UpstreamStates {
    fn clone(&self) -> Self {
        UpstreamStates {
            states: Mutex::new(self.lock().clone()),
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
            Some(list) => list.push(State {
                peer: None,
                status: None,
            }),
        }
    }

    /// A server is tried (`ngx_http_upstream_connect`).
    pub fn tried(&self, peer: &PeerAddr) {
        self.lock().get_or_insert_with(Vec::new).push(State {
            peer: Some(peer.clone()),
            status: None,
        });
    }

    /// The server tried last answered with `status`, or failed with it
    /// (`ngx_http_upstream_next` records 502 for an error, 504 for a
    /// timeout).
    pub fn answered(&self, status: u16) {
        if let Some(last) = self.lock().as_mut().and_then(|l| l.last_mut()) {
            if last.peer.is_some() {
                last.status = Some(status);
            }
        }
    }

    /// The server tried last.
    pub fn last(&self) -> Option<PeerAddr> {
        self.lock()
            .as_ref()?
            .iter()
            .rev()
            .find_map(|s| s.peer.clone())
    }

    /// `$upstream_addr` (`ngx_http_upstream_addr_variable`): the servers
    /// in order, `, ` between tries and ` : ` between uses.
    pub fn write_addrs(&self, out: &mut String) {
        self.write_each(out, |s, out| {
            if let Some(peer) = &s.peer {
                let _ = write!(out, "{peer}");
            }
        });
    }

    /// `$upstream_status` (`ngx_http_upstream_status_variable`): each
    /// try's status, `-` for none.
    pub fn write_statuses(&self, out: &mut String) {
        self.write_each(out, |s, out| match s.status {
            Some(status) => {
                let _ = write!(out, "{status}");
            }
            None => out.push('-'),
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
        states.write_addrs(&mut addrs);
        states.write_statuses(&mut statuses);
        (addrs, statuses)
    }

    #[test]
    fn tries_and_uses_are_written_as_nginx_writes_them() {
        let states = UpstreamStates::default();
        assert_eq!(written(&states), (String::new(), String::new()));
        states.start();
        states.tried(&peer(1));
        states.answered(502);
        states.tried(&peer(2));
        states.answered(404);
        // an error page proxied elsewhere
        states.start();
        states.tried(&peer(3));
        assert_eq!(
            written(&states),
            (
                "127.0.0.1:1, 127.0.0.1:2 : 127.0.0.1:3".to_string(),
                "502, 404 : -".to_string()
            )
        );
        assert_eq!(states.last(), Some(peer(3)));
        // a use that tried no server (its host did not resolve) leaves
        // its mark, as nginx's array does
        let failed_first = UpstreamStates::default();
        failed_first.start();
        failed_first.start();
        failed_first.tried(&peer(4));
        assert_eq!(written(&failed_first).0, ", 127.0.0.1:4");
    }
}
