//! rginx's DNS stub resolver, for a `proxy_pass` with variables that names
//! a host: nginx's `resolver` (ngx_resolver.c) rebuilt on tokio.
//!
//! As nginx's, it asks the configured name servers for A (and, with
//! `ipv6=on`, AAAA) records, takes turns between the servers every
//! 5 seconds until `resolver_timeout`, switches to TCP for a truncated
//! answer, follows a CNAME, and keeps an answer for its TTL (or `valid=`);
//! errors are not kept. A fresh answer's addresses come in the answer's
//! order, IPv4 first; a kept one's rotated from a random place
//! (`ngx_resolver_export`). Unlike nginx, concurrent lookups of one name
//! are not merged into one query.

mod exchange;
mod message;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// How many CNAMEs a lookup follows (`NGX_RESOLVER_MAX_RECURSION`).
const MAX_RECURSION: usize = 50;

/// Kept answers past which expired ones are swept out.
const SWEEP_AT: usize = 1024;

/// Why a name was not resolved; [`Failure::code`] and the `Display` text
/// are nginx's (`ngx_resolver_strerror`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The server's response code (3: the name does not exist, or has no
    /// address).
    Code(u8),
    /// No answer within `resolver_timeout`.
    TimedOut,
}

impl Failure {
    /// nginx's number for it: the DNS response code, or `ETIMEDOUT`.
    pub fn code(self) -> u16 {
        match self {
            Failure::Code(c) => u16::from(c),
            Failure::TimedOut => 110,
        }
    }

    /// nginx's words for it.
    pub fn text(self) -> &'static str {
        match self {
            Failure::Code(1) => "Format error",
            Failure::Code(2) => "Server failure",
            Failure::Code(3) => "Host not found",
            Failure::Code(4) => "Unimplemented",
            Failure::Code(5) => "Operation refused",
            Failure::TimedOut => "Operation timed out",
            _ => "Unknown error",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.text())
    }
}

/// The name as it is looked up and logged: in lower case, without one
/// trailing dot (`ngx_resolve_name`, `ngx_resolve_name_locked`).
pub fn query_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// A socket error talking to a name server (nginx logs these "while
/// resolving" and goes on waiting).
#[derive(Debug)]
pub struct SocketError {
    /// The name server.
    pub server: SocketAddr,
    /// The call that failed: `send()`, `recv()`, `connect()`.
    pub call: &'static str,
    /// How it failed.
    pub error: io::Error,
}

impl SocketError {
    fn new(server: SocketAddr, call: &'static str, error: io::Error) -> SocketError {
        SocketError {
            server,
            call,
            error,
        }
    }
}

/// One `resolver` directive's name servers and cache.
pub struct Resolver {
    servers: Vec<SocketAddr>,
    valid: Option<Duration>,
    ipv6: bool,
    cache: Mutex<HashMap<String, Kept>>,
    next: AtomicUsize,
    /// xorshift64* state: query idents and rotations.
    state: AtomicU64,
}

/// A kept answer.
struct Kept {
    addrs: Vec<IpAddr>,
    /// How many of them are IPv4 (they come first).
    v4: usize,
    /// The last second it is good for: nginx counts whole seconds of its
    /// clock (`rn->valid >= ngx_time()`), so a TTL of 0 lasts out the
    /// second it came in.
    until: u64,
}

/// The clock's second now (`ngx_time()`).
fn now_second() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Resolver {
    /// A resolver asking `servers` in turn; `valid` replaces answers'
    /// TTLs; `ipv6` asks for AAAA records too.
    pub fn new(servers: Vec<SocketAddr>, valid: Option<Duration>, ipv6: bool) -> Resolver {
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Resolver {
            servers,
            valid,
            ipv6,
            cache: Mutex::new(HashMap::new()),
            next: AtomicUsize::new(0),
            state: AtomicU64::new(seed | 1),
        }
    }

    /// `name`'s addresses, from the cache or the name servers within
    /// `timeout`; `on_error` hears of socket errors on the way.
    pub async fn resolve(
        &self,
        name: &str,
        timeout: Duration,
        on_error: &mut (dyn FnMut(SocketError) + Send),
    ) -> Result<Vec<IpAddr>, Failure> {
        let name = query_name(name);
        if let Some(addrs) = self.kept(&name) {
            return Ok(addrs);
        }
        if self.servers.is_empty() {
            return Err(Failure::TimedOut);
        }
        let deadline = Instant::now() + timeout;
        let mut current = name.clone();
        for _ in 0..=MAX_RECURSION {
            let answer = self.lookup(&current, deadline, on_error).await?;
            if answer.v4.is_empty() && answer.v6.is_empty() {
                match answer.cname {
                    Some(next) => {
                        current = next;
                        continue;
                    }
                    None => return Err(Failure::Code(3)),
                }
            }
            let v4 = answer.v4.len();
            let addrs: Vec<IpAddr> = answer
                .v4
                .into_iter()
                .map(IpAddr::V4)
                .chain(answer.v6.into_iter().map(IpAddr::V6))
                .collect();
            let valid = self
                .valid
                .unwrap_or(Duration::from_secs(u64::from(answer.ttl)));
            self.keep(name, addrs.clone(), v4, valid);
            return Ok(addrs);
        }
        Err(Failure::Code(3))
    }

    /// A kept answer still valid, rotated as nginx exports one.
    fn kept(&self, name: &str) -> Option<Vec<IpAddr>> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let kept = cache.get(name).filter(|k| k.until >= now_second())?;
        let n = kept.addrs.len();
        let (v4, v6) = kept.addrs.split_at(kept.v4);
        let mut out = vec![kept.addrs[0]; n];
        // each family rotated, the whole placed from a random start
        let mut place = self.random() as usize % n;
        for family in [v4, v6] {
            if family.is_empty() {
                continue;
            }
            let start = self.random() as usize % family.len();
            for i in 0..family.len() {
                out[place] = family[(start + i) % family.len()];
                place = (place + 1) % n;
            }
        }
        Some(out)
    }

    fn keep(&self, name: String, addrs: Vec<IpAddr>, v4: usize, valid: Duration) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let now = now_second();
        if cache.len() >= SWEEP_AT {
            cache.retain(|_, k| k.until >= now);
        }
        cache.insert(
            name,
            Kept {
                addrs,
                v4,
                until: now.saturating_add(valid.as_secs()),
            },
        );
    }

    /// The server whose turn it is.
    fn next_server(&self) -> SocketAddr {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.servers[i % self.servers.len()]
    }

    /// The next random number (xorshift64*).
    fn random(&self) -> u64 {
        let mut x = self.state.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn failures_read_as_nginx_writes_them() {
        assert_eq!(Failure::Code(3).to_string(), "3: Host not found");
        assert_eq!(Failure::TimedOut.to_string(), "110: Operation timed out");
        assert_eq!(Failure::Code(9).to_string(), "9: Unknown error");
    }

    #[tokio::test]
    async fn kept_answers_rotate_within_each_family() {
        let r = Resolver::new(Vec::new(), None, true);
        let addrs: Vec<IpAddr> = vec![
            Ipv4Addr::new(10, 0, 0, 1).into(),
            Ipv4Addr::new(10, 0, 0, 2).into(),
            "::1".parse().unwrap(),
        ];
        r.keep("a.test".into(), addrs.clone(), 2, Duration::from_secs(60));
        for _ in 0..20 {
            let got = r
                .resolve("A.test", Duration::from_secs(1), &mut |_| {})
                .await;
            let got = got.unwrap();
            let mut sorted = got.clone();
            sorted.sort();
            assert_eq!(sorted, addrs);
            // the IPv6 address follows the two IPv4 ones, in a ring
            let six = got.iter().position(|a| a.is_ipv6()).unwrap();
            assert!(got[(six + 1) % 3].is_ipv4() && got[(six + 2) % 3].is_ipv4());
        }
        // kept through the second it came in, as nginx does
        r.keep("now.test".into(), addrs.clone(), 2, Duration::ZERO);
        assert!(r.kept("now.test").is_some());
        r.cache.lock().unwrap().get_mut("now.test").unwrap().until = now_second() - 1;
        let gone = r
            .resolve("now.test", Duration::from_secs(1), &mut |_| {})
            .await;
        assert_eq!(gone, Err(Failure::TimedOut));
    }
}
