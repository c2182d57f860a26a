//! Peer selection for an `upstream` group, as nginx's round-robin module
//! does it (`src/http/ngx_http_upstream_round_robin.c`):
//! - smooth weighted round-robin: each pick adds every available peer's
//!   effective weight to its current weight, takes the largest, and
//!   subtracts the total from the winner;
//! - a peer that failed `max_fails` times within `fail_timeout` is skipped
//!   for `fail_timeout`, then tried again by one request; each failure also
//!   lowers its effective weight, which recovers by one per pick;
//! - `down` peers are never used; `backup` peers only when no primary is;
//! - a group of a single peer ignores failures (only `down` blocks it);
//! - a peer already tried for this request is not tried again;
//! - `ip_hash` (`ngx_http_upstream_ip_hash_module.c`) hashes the client's
//!   address (IPv4: its first three bytes) over the weights, up to 20
//!   tries, then falls back to round-robin;
//! - `least_conn` (`ngx_http_upstream_least_conn_module.c`) takes the
//!   peer with the fewest active requests for its weight, round-robin
//!   among equals, then the backups;
//! - `hash KEY` (`ngx_http_upstream_hash_module.c`) adds
//!   `(crc32([REHASH] KEY) >> 16) & 0x7fff` per step over the weights;
//!   `consistent` walks ketama points (160 per weight unit, crc32 of
//!   `HOST \0 PORT PREV_HASH`), 20 steps, then round-robin.
//!
//! Time is passed in, so the logic is deterministic and tested without
//! sleeping.

use std::net::IpAddr;

use rginx_core::peer::PeerAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rginx_core::model::{Balancing, UpstreamConf};

use crate::status::PeerStats;

/// One backend address with nginx's round-robin state.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Where to connect.
    pub addr: PeerAddr,
    /// Its `server` as written (`peer->server`: what `consistent` points
    /// name).
    server: Arc<str>,
    weight: i64,
    effective_weight: i64,
    current_weight: i64,
    max_fails: u64,
    fail_timeout: Duration,
    down: bool,
    fails: u64,
    /// Requests on it now (`peer->conns`).
    conns: i64,
    /// `max_conns` (0: none).
    max_conns: i64,
    /// When the last failure happened.
    accessed: Option<Instant>,
    /// When the peer was last checked (failure, or a probe after the
    /// timeout).
    checked: Option<Instant>,
    /// Its figures for the status page, shared by every engine (and kept
    /// across reloads) under the group's name and this address.
    pub stats: Arc<PeerStats>,
}

impl Peer {
    /// At its `max_conns`.
    fn full(&self) -> bool {
        self.max_conns > 0 && self.conns >= self.max_conns
    }

    fn new(
        group: &str,
        addr: PeerAddr,
        weight: u64,
        max_fails: u64,
        fail_timeout: Duration,
        down: bool,
    ) -> Peer {
        let weight = i64::try_from(weight).unwrap_or(i64::MAX).max(1);
        Peer {
            stats: crate::status::UPSTREAMS.peer(group, &addr),
            addr,
            server: Arc::from(""),
            weight,
            effective_weight: weight,
            current_weight: 0,
            max_fails,
            fail_timeout,
            down,
            fails: 0,
            conns: 0,
            max_conns: 0,
            accessed: None,
            checked: None,
        }
    }

    /// Not down, not failed within `fail_timeout`, not at `max_conns`.
    fn available(&self, now: Instant) -> bool {
        if self.down || self.full() {
            return false;
        }
        if self.max_fails > 0 && self.fails >= self.max_fails {
            if let Some(checked) = self.checked {
                return now.saturating_duration_since(checked) > self.fail_timeout;
            }
        }
        true
    }
}

/// Which peer list a pick came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// The primary servers.
    Primary,
    /// The `backup` servers.
    Backup,
}

/// A chosen peer: its tier and index, to report the outcome with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    /// Primary or backup list.
    pub tier: Tier,
    /// Index in that list.
    pub index: usize,
}

/// The peers that one request has already tried (nginx's `tried` bitmap),
/// and where its `ip_hash` stands.
#[derive(Debug, Clone, Default)]
pub struct Tried {
    primary: Vec<usize>,
    backup: Vec<usize>,
    /// The hash so far (`iphp->hash`; `None`: 89, nginx's start).
    hash: Option<u32>,
    /// Hash steps taken (`iphp->tries`): past 20, round-robin.
    hash_tries: u32,
    /// `hash`'s rehash count (`hp->rehash`).
    rehash: u32,
}

/// What a pick knows of the request.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    /// The client's address (`ip_hash`).
    pub ip: IpAddr,
    /// The group's `hash` key for the request.
    pub key: Option<&'a str>,
}

impl Tried {
    fn contains(&self, pick: Pick) -> bool {
        match pick.tier {
            Tier::Primary => self.primary.contains(&pick.index),
            Tier::Backup => self.backup.contains(&pick.index),
        }
    }

    fn insert(&mut self, pick: Pick) {
        match pick.tier {
            Tier::Primary => self.primary.push(pick.index),
            Tier::Backup => self.backup.push(pick.index),
        }
    }
}

/// The round-robin state of one upstream group.
#[derive(Debug, Clone)]
pub struct RoundRobin {
    primary: Vec<Peer>,
    backup: Vec<Peer>,
    method: Balancing,
    /// `hash ... consistent`'s points: (hash, server), sorted, distinct.
    points: Vec<(u32, Arc<str>)>,
    /// `random`'s generator state (per worker, as nginx's `ngx_random`).
    draws: u64,
}

impl RoundRobin {
    /// One peer per resolved address of every `server`, as nginx expands
    /// names that resolve to several addresses.
    pub fn new(conf: &UpstreamConf) -> RoundRobin {
        let mut primary = Vec::new();
        let mut backup = Vec::new();
        let group = conf.name.to_ascii_lowercase();
        for server in &conf.servers {
            let list = if server.backup {
                &mut backup
            } else {
                &mut primary
            };
            for addr in &server.addrs {
                let mut peer = Peer::new(
                    &group,
                    addr.clone(),
                    server.weight,
                    server.max_fails,
                    server.fail_timeout,
                    server.down,
                );
                peer.max_conns = i64::try_from(server.max_conns).unwrap_or(i64::MAX);
                peer.server = Arc::from(server.name.as_str());
                list.push(peer);
            }
        }
        let points = match conf.method {
            Balancing::Hash {
                consistent: true, ..
            } => chash_points(&primary),
            _ => Vec::new(),
        };
        RoundRobin {
            primary,
            backup,
            method: conf.method.clone(),
            points,
            draws: seed(),
        }
    }

    /// A group of fixed addresses (a `proxy_pass` host that resolved to
    /// them), with nginx's defaults: weight 1, `max_fails=1`,
    /// `fail_timeout=10s`.
    pub fn from_addrs(addrs: &[PeerAddr]) -> RoundRobin {
        let primary = addrs
            .iter()
            .map(|a| Peer::new("", a.clone(), 1, 1, Duration::from_secs(10), false))
            .collect();
        RoundRobin {
            primary,
            backup: Vec::new(),
            method: Balancing::RoundRobin,
            points: Vec::new(),
            draws: 0,
        }
    }

    /// The peer behind a pick.
    pub fn peer(&self, pick: Pick) -> Option<&Peer> {
        match pick.tier {
            Tier::Primary => self.primary.get(pick.index),
            Tier::Backup => self.backup.get(pick.index),
        }
    }

    /// Every server of the group, backups included.
    pub fn len(&self) -> usize {
        self.primary.len() + self.backup.len()
    }

    /// How many servers a request may try: those not marked `down`,
    /// backups included (`ngx_http_upstream_tries`).
    pub fn tries(&self) -> usize {
        self.primary
            .iter()
            .chain(&self.backup)
            .filter(|p| !p.down)
            .count()
    }

    /// Whether the group has no servers at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Chooses the next peer for a request from `client`, by the group's
    /// method, skipping those in `tried`; `None` is nginx's "no live
    /// upstreams" (502).
    pub fn pick(&mut self, now: Instant, tried: &mut Tried, client: Client<'_>) -> Option<Pick> {
        let key = client.key.filter(|k| !k.is_empty());
        let pick = match (&self.method, key) {
            _ if self.single() => self.pick_round_robin(now, tried),
            (Balancing::IpHash, _) => self.pick_ip_hash(now, tried, client.ip),
            (Balancing::LeastConn, _) => self.pick_least_conn(now, tried),
            (Balancing::Random { two }, _) if tried.hash_tries <= 20 => {
                let two = *two;
                self.pick_random(now, tried, two)
            }
            (Balancing::Hash { consistent, .. }, Some(key)) if tried.hash_tries <= 20 => {
                if *consistent {
                    self.pick_chash(now, tried, key)
                } else {
                    self.pick_hash(now, tried, key)
                }
            }
            _ => self.pick_round_robin(now, tried),
        }?;
        if let Some(peer) = self.peer_mut(pick) {
            peer.conns += 1;
        }
        Some(pick)
    }

    /// A request on the pick's peer ended (its response read through, its
    /// tunnel closed, or its attempt failed): one request fewer in progress.
    fn release(&mut self, pick: Pick) {
        if let Some(peer) = self.peer_mut(pick) {
            peer.conns = (peer.conns - 1).max(0);
        }
    }

    fn peer_mut(&mut self, pick: Pick) -> Option<&mut Peer> {
        match pick.tier {
            Tier::Primary => self.primary.get_mut(pick.index),
            Tier::Backup => self.backup.get_mut(pick.index),
        }
    }

    /// `ngx_http_upstream_get_ip_hash_peer`.
    fn pick_ip_hash(&mut self, now: Instant, tried: &mut Tried, client: IpAddr) -> Option<Pick> {
        if tried.hash_tries > 20 {
            return self.pick_round_robin(now, tried);
        }
        let v4;
        let v6;
        let bytes: &[u8] = match client {
            IpAddr::V4(ip) => {
                v4 = ip.octets();
                &v4[..3]
            }
            IpAddr::V6(ip) => {
                v6 = ip.octets();
                &v6
            }
        };
        let total = self.total_weight();
        if total == 0 {
            return self.pick_round_robin(now, tried);
        }
        let mut hash = tried.hash.unwrap_or(89);
        let index = loop {
            for b in bytes {
                hash = (hash * 113 + u32::from(*b)) % 6271;
            }
            let index = self.weighted_index(u64::from(hash) % total);
            if self.usable_primary(index, now, tried) {
                break index;
            }
            tried.hash_tries += 1;
            if tried.hash_tries > 20 {
                tried.hash = Some(hash);
                return self.pick_round_robin(now, tried);
            }
        };
        tried.hash = Some(hash);
        Some(self.take_primary(index, now, tried))
    }

    /// `ngx_http_upstream_get_hash_peer`.
    fn pick_hash(&mut self, now: Instant, tried: &mut Tried, key: &str) -> Option<Pick> {
        let total = self.total_weight().max(1);
        let mut hash = tried.hash.unwrap_or(0);
        let index = loop {
            // ((crc32([REHASH] KEY) >> 16) & 0x7fff) + PREV_HASH
            let mut crc = crc32fast::Hasher::new();
            if tried.rehash > 0 {
                crc.update(tried.rehash.to_string().as_bytes());
            }
            crc.update(key.as_bytes());
            hash = hash.wrapping_add((crc.finalize() >> 16) & 0x7fff);
            tried.rehash += 1;
            let index = self.weighted_index(u64::from(hash) % total);
            if self.usable_primary(index, now, tried) {
                break index;
            }
            tried.hash_tries += 1;
            if tried.hash_tries > 20 {
                tried.hash = Some(hash);
                return self.pick_round_robin(now, tried);
            }
        };
        tried.hash = Some(hash);
        Some(self.take_primary(index, now, tried))
    }

    /// `ngx_http_upstream_get_chash_peer`: from the first point at or
    /// after the key's crc32, the next point whose server has a usable
    /// peer (round-robin among that server's addresses).
    fn pick_chash(&mut self, now: Instant, tried: &mut Tried, key: &str) -> Option<Pick> {
        if self.points.is_empty() {
            return self.pick_round_robin(now, tried);
        }
        let mut at = match tried.hash {
            Some(at) => at,
            None => {
                let hash = crc32fast::hash(key.as_bytes());
                self.points.partition_point(|(h, _)| *h < hash) as u32
            }
        };
        loop {
            let server = Arc::clone(&self.points[at as usize % self.points.len()].1);
            let mut best: Option<usize> = None;
            let mut total = 0;
            for i in 0..self.primary.len() {
                let pick = Pick {
                    tier: Tier::Primary,
                    index: i,
                };
                let peer = &self.primary[i];
                if tried.contains(pick) || !peer.available(now) || peer.server != server {
                    continue;
                }
                let peer = &mut self.primary[i];
                peer.current_weight += peer.effective_weight;
                total += peer.effective_weight;
                if peer.effective_weight < peer.weight {
                    peer.effective_weight += 1;
                }
                if best
                    .is_none_or(|b| self.primary[i].current_weight > self.primary[b].current_weight)
                {
                    best = Some(i);
                }
            }
            if let Some(best) = best {
                self.primary[best].current_weight -= total;
                tried.hash = Some(at);
                return Some(self.take_primary(best, now, tried));
            }
            at = at.wrapping_add(1);
            tried.hash_tries += 1;
            if tried.hash_tries > 20 {
                tried.hash = Some(at);
                return self.pick_round_robin(now, tried);
            }
        }
    }

    /// Every primary's weight, down ones too (`peers->total_weight`).
    fn total_weight(&self) -> u64 {
        self.primary
            .iter()
            .map(|p| u64::try_from(p.weight).unwrap_or(1))
            .sum()
    }

    /// The primary a hash's share `w` of the total weight falls on (past
    /// the end when the weights do not cover it).
    fn weighted_index(&self, mut w: u64) -> usize {
        let mut index = 0;
        while let Some(peer) = self.primary.get(index) {
            let weight = u64::try_from(peer.weight).unwrap_or(1);
            if w < weight {
                break;
            }
            w -= weight;
            index += 1;
        }
        index
    }

    /// Whether a hash may take primary `index`: there, not tried for this
    /// request, and available.
    fn usable_primary(&self, index: usize, now: Instant, tried: &Tried) -> bool {
        let pick = Pick {
            tier: Tier::Primary,
            index,
        };
        self.primary
            .get(index)
            .is_some_and(|p| !tried.contains(pick) && p.available(now))
    }

    /// A primary peer chosen by a hash: checked once per `fail_timeout`,
    /// and tried.
    fn take_primary(&mut self, index: usize, now: Instant, tried: &mut Tried) -> Pick {
        let peer = &mut self.primary[index];
        if peer
            .checked
            .is_none_or(|c| now.saturating_duration_since(c) > peer.fail_timeout)
        {
            peer.checked = Some(now);
        }
        let pick = Pick {
            tier: Tier::Primary,
            index,
        };
        tried.insert(pick);
        pick
    }

    /// `ngx_http_upstream_get_random_peer` and `_random2_peer`: primaries
    /// drawn by weight until one is usable (with `two`, until two are, and
    /// the one with fewer requests for its weight wins); after 20 draws
    /// for the request, round-robin.
    fn pick_random(&mut self, now: Instant, tried: &mut Tried, two: bool) -> Option<Pick> {
        let total = self.total_weight();
        let mut first: Option<usize> = None;
        loop {
            let draw = self.draw() % total.max(1);
            let index = self.weighted_index(draw);
            let usable = Some(index) != first && self.usable_primary(index, now, tried);
            if usable {
                match first {
                    _ if !two => return Some(self.take_primary(index, now, tried)),
                    None => first = Some(index),
                    Some(prev) => {
                        let (a, b) = (&self.primary[index], &self.primary[prev]);
                        let chosen = if a.conns * b.weight > b.conns * a.weight {
                            prev
                        } else {
                            index
                        };
                        return Some(self.take_primary(chosen, now, tried));
                    }
                }
            }
            // `rp->tries`: kept for the request's later attempts
            tried.hash_tries += 1;
            if tried.hash_tries > 20 {
                return self.pick_round_robin(now, tried);
            }
        }
    }

    /// The next draw (xorshift64*: what `random()` is for nginx here, a
    /// cheap generator, not a secret).
    fn draw(&mut self) -> u64 {
        let mut x = self.draws;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.draws = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32
    }

    /// `ngx_http_upstream_get_least_conn_peer`: the primaries, then the
    /// backups.
    fn pick_least_conn(&mut self, now: Instant, tried: &mut Tried) -> Option<Pick> {
        for tier in [Tier::Primary, Tier::Backup] {
            if let Some(pick) = self.least_conn_in(tier, now, tried) {
                tried.insert(pick);
                return Some(pick);
            }
        }
        None
    }

    fn least_conn_in(&mut self, tier: Tier, now: Instant, tried: &Tried) -> Option<Pick> {
        let peers = match tier {
            Tier::Primary => &mut self.primary,
            Tier::Backup => &mut self.backup,
        };
        let usable =
            |i: usize, p: &Peer| !tried.contains(Pick { tier, index: i }) && p.available(now);
        // fewest requests for the weight (conns / weight, compared
        // crosswise); `many`: more than one peer has that many
        let mut best: Option<usize> = None;
        let mut many = false;
        for (i, peer) in peers.iter().enumerate() {
            if !usable(i, peer) {
                continue;
            }
            match best {
                None => best = Some(i),
                Some(b) => {
                    let (lhs, rhs) = (peer.conns * peers[b].weight, peers[b].conns * peer.weight);
                    if lhs < rhs {
                        best = Some(i);
                        many = false;
                    } else if lhs == rhs {
                        many = true;
                    }
                }
            }
        }
        let mut best = best?;
        if many {
            // smooth round-robin among the equals, from the first of them
            let first = best;
            let mut total = 0;
            for i in first..peers.len() {
                let equal =
                    peers[i].conns * peers[first].weight == peers[first].conns * peers[i].weight;
                if !usable(i, &peers[i]) || !equal {
                    continue;
                }
                let peer = &mut peers[i];
                peer.current_weight += peer.effective_weight;
                total += peer.effective_weight;
                if peer.effective_weight < peer.weight {
                    peer.effective_weight += 1;
                }
                if peers[i].current_weight > peers[best].current_weight {
                    best = i;
                }
            }
            peers[best].current_weight -= total;
        }
        let peer = &mut peers[best];
        if peer
            .checked
            .is_none_or(|c| now.saturating_duration_since(c) > peer.fail_timeout)
        {
            peer.checked = Some(now);
        }
        Some(Pick { tier, index: best })
    }

    /// nginx's weighted round-robin (`ngx_http_upstream_get_round_robin_peer`).
    fn pick_round_robin(&mut self, now: Instant, tried: &mut Tried) -> Option<Pick> {
        // a lone server is always used unless it is down, and a failure is
        // never retried elsewhere
        if self.single() {
            let pick = Pick {
                tier: Tier::Primary,
                index: 0,
            };
            if tried.contains(pick) {
                return None;
            }
            if self.primary[0].down || self.primary[0].full() {
                return None;
            }
            tried.insert(pick);
            return Some(pick);
        }
        for tier in [Tier::Primary, Tier::Backup] {
            if let Some(pick) = self.pick_in(tier, now, tried) {
                tried.insert(pick);
                return Some(pick);
            }
        }
        None
    }

    /// nginx's `peers->single`: one primary server and no backups (with a
    /// backup, a failed primary is retried there, as nginx does).
    fn single(&self) -> bool {
        self.primary.len() == 1 && self.backup.is_empty()
    }

    fn pick_in(&mut self, tier: Tier, now: Instant, tried: &Tried) -> Option<Pick> {
        let peers = match tier {
            Tier::Primary => &mut self.primary,
            Tier::Backup => &mut self.backup,
        };
        let mut best: Option<usize> = None;
        let mut total = 0i64;
        for index in 0..peers.len() {
            if tried.contains(Pick { tier, index }) || !peers[index].available(now) {
                continue;
            }
            let peer = &mut peers[index];
            peer.current_weight += peer.effective_weight;
            total += peer.effective_weight;
            if peer.effective_weight < peer.weight {
                peer.effective_weight += 1;
            }
            // ties go to the first peer, as in nginx
            if best.is_none_or(|b| peers[index].current_weight > peers[b].current_weight) {
                best = Some(index);
            }
        }
        let best = best?;
        let peer = &mut peers[best];
        peer.current_weight -= total;
        // once per fail_timeout a pick counts as a check: a failed peer
        // gets one probe, and a success after it clears the failures
        if peer
            .checked
            .is_none_or(|c| now.saturating_duration_since(c) > peer.fail_timeout)
        {
            peer.checked = Some(now);
        }
        Some(Pick { tier, index: best })
    }

    /// Reports how a request to a peer ended (nginx's `free_peer`): a
    /// failure counts toward `max_fails` and lowers the effective weight;
    /// a success after the last failure was checked clears the count.
    pub fn report(&mut self, pick: Pick, failed: bool, now: Instant) {
        let single = self.single() && pick.tier == Tier::Primary;
        let peer = match pick.tier {
            Tier::Primary => self.primary.get_mut(pick.index),
            Tier::Backup => self.backup.get_mut(pick.index),
        };
        let Some(peer) = peer else { return };
        if single {
            return;
        }
        if failed {
            peer.fails += 1;
            peer.accessed = Some(now);
            peer.checked = Some(now);
            if peer.max_fails > 0 {
                let step = peer.weight / i64::try_from(peer.max_fails).unwrap_or(i64::MAX).max(1);
                peer.effective_weight = (peer.effective_weight - step).max(0);
            }
        } else if peer.accessed < peer.checked {
            peer.fails = 0;
        }
    }
}

/// A request in progress on a peer (nginx's `peer->conns` between
/// `get` and `free`): dropped when the request is done with the peer, its
/// response read to the end or its tunnel closed, which `least_conn` and
/// `max_conns` count on.
pub struct PeerLease {
    balancer: Arc<std::sync::Mutex<RoundRobin>>,
    pick: Pick,
}

impl PeerLease {
    /// The lease of a pick `balancer` just made.
    pub fn new(balancer: Arc<std::sync::Mutex<RoundRobin>>, pick: Pick) -> PeerLease {
        PeerLease { balancer, pick }
    }
}

impl Drop for PeerLease {
    fn drop(&mut self) {
        if let Ok(mut rr) = self.balancer.lock() {
            rr.release(self.pick);
        }
    }
}

impl std::fmt::Debug for PeerLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PeerLease({:?})", self.pick)
    }
}

/// `ngx_http_upstream_init_chash`: 160 points per weight unit of each
/// primary peer, crc32 of `HOST \0 PORT` then the previous point's hash
/// (little-endian), sorted, equal hashes kept once.
/// A generator seed per balancer, as nginx seeds `random()` from its pid
/// and the time (never zero: xorshift would stay there).
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish() | 1
}

fn chash_points(peers: &[Peer]) -> Vec<(u32, Arc<str>)> {
    let mut points = Vec::new();
    for peer in peers {
        let server = &*peer.server;
        // the port is the digits after the last `:`
        let (host, port) = match server.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, p),
            _ => (server, ""),
        };
        let mut base = crc32fast::Hasher::new();
        base.update(host.as_bytes());
        base.update(b"\0");
        base.update(port.as_bytes());
        let mut prev: u32 = 0;
        for _ in 0..peer.weight * 160 {
            let mut crc = base.clone();
            crc.update(&prev.to_le_bytes());
            let hash = crc.finalize();
            points.push((hash, Arc::clone(&peer.server)));
            prev = hash;
        }
    }
    points.sort_by_key(|(hash, _)| *hash);
    points.dedup_by_key(|(hash, _)| *hash);
    points
}

#[cfg(test)]
mod tests {
    use super::*;
    use rginx_core::model::UpstreamServer;
    use std::net::SocketAddr;

    const LOCAL: Client<'static> = Client {
        ip: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        key: None,
    };

    fn server(port: u16, weight: u64, backup: bool, down: bool) -> UpstreamServer {
        UpstreamServer {
            name: format!("127.0.0.1:{port}"),
            host: "127.0.0.1".into(),
            port,
            addrs: vec![SocketAddr::from(([127, 0, 0, 1], port)).into()],
            weight,
            max_fails: 1,
            fail_timeout: Duration::from_secs(10),
            backup,
            down,
            max_conns: 0,
            span: Default::default(),
        }
    }

    fn group(servers: Vec<UpstreamServer>) -> RoundRobin {
        RoundRobin::new(&UpstreamConf {
            name: "u".into(),
            servers,
            ..UpstreamConf::default()
        })
    }

    fn sequence(rr: &mut RoundRobin, n: usize, now: Instant) -> Vec<u16> {
        (0..n)
            .map(|_| {
                let pick = rr.pick(now, &mut Tried::default(), LOCAL).expect("a peer");
                rr.peer(pick)
                    .expect("peer")
                    .addr
                    .inet()
                    .map_or(0, |a| a.port())
            })
            .collect()
    }

    #[test]
    fn smooth_weighted_round_robin_matches_nginx() {
        // nginx's own example: weights 5, 1, 1 give a a b a c a a
        let mut rr = group(vec![
            server(1, 5, false, false),
            server(2, 1, false, false),
            server(3, 1, false, false),
        ]);
        assert_eq!(sequence(&mut rr, 7, Instant::now()), [1, 1, 2, 1, 3, 1, 1]);
        assert_eq!(sequence(&mut rr, 7, Instant::now()), [1, 1, 2, 1, 3, 1, 1]);
    }

    #[test]
    fn down_peers_are_skipped_and_backups_used_last() {
        let now = Instant::now();
        let mut rr = group(vec![
            server(1, 1, false, true),
            server(2, 1, false, false),
            server(3, 1, true, false),
        ]);
        assert_eq!(sequence(&mut rr, 3, now), [2, 2, 2]);
        let mut tried = Tried::default();
        let first = rr.pick(now, &mut tried, LOCAL).unwrap();
        rr.report(first, true, now);
        let second = rr.pick(now, &mut tried, LOCAL).unwrap();
        assert_eq!(second.tier, Tier::Backup);
        assert_eq!(rr.pick(now, &mut tried, LOCAL), None);
    }

    #[test]
    fn failed_peers_rest_for_fail_timeout_then_get_one_probe() {
        let t0 = Instant::now();
        let mut rr = group(vec![server(1, 1, false, false), server(2, 1, false, false)]);
        let pick = rr.pick(t0, &mut Tried::default(), LOCAL).unwrap();
        assert_eq!(
            rr.peer(pick).unwrap().addr.inet().map_or(0, |a| a.port()),
            1
        );
        rr.report(pick, true, t0);
        // within fail_timeout only port 2 is used
        assert_eq!(
            sequence(&mut rr, 4, t0 + Duration::from_secs(5)),
            [2, 2, 2, 2]
        );
        // after it, port 1 gets tried again
        let later = t0 + Duration::from_secs(11);
        let ports = sequence(&mut rr, 4, later);
        assert!(ports.contains(&1), "{ports:?}");
    }

    #[test]
    fn a_success_after_a_check_clears_failures() {
        let t0 = Instant::now();
        let mut s = server(1, 1, false, false);
        s.max_fails = 3;
        let mut rr = group(vec![s, server(2, 1, false, false)]);
        let first = rr.pick(t0, &mut Tried::default(), LOCAL).unwrap();
        rr.report(first, true, t0);
        assert_eq!(rr.peer(first).unwrap().fails, 1);
        // a success before the next check keeps the count
        rr.report(first, false, t0 + Duration::from_secs(1));
        assert_eq!(rr.peer(first).unwrap().fails, 1);
        // after fail_timeout a pick checks the peer; a success then clears it
        let later = t0 + Duration::from_secs(11);
        let again = (0..2)
            .map(|_| rr.pick(later, &mut Tried::default(), LOCAL).unwrap())
            .find(|p| *p == first)
            .expect("picked again");
        rr.report(again, false, later);
        assert_eq!(rr.peer(first).unwrap().fails, 0);
    }

    #[test]
    fn a_single_primary_with_a_backup() {
        let now = Instant::now();
        let mut rr = group(vec![server(1, 1, false, false), server(2, 1, true, false)]);
        assert_eq!(sequence(&mut rr, 3, now), [1, 1, 1]);
        let mut tried = Tried::default();
        let pick = rr.pick(now, &mut tried, LOCAL).unwrap();
        rr.report(pick, true, now);
        // with a backup the group is not "single": a failed request moves
        // on to the backup (observed with nginx 1.22, differential_proxy.rs)
        assert_eq!(
            rr.pick(now, &mut tried, LOCAL).map(|p| p.tier),
            Some(Tier::Backup)
        );
        let mut rr = group(vec![server(1, 1, false, true), server(2, 1, true, false)]);
        assert_eq!(sequence(&mut rr, 2, now), [2, 2]);
    }

    #[test]
    fn a_single_server_ignores_failures() {
        let now = Instant::now();
        let mut rr = group(vec![server(1, 1, false, false)]);
        for _ in 0..5 {
            let pick = rr.pick(now, &mut Tried::default(), LOCAL).unwrap();
            rr.report(pick, true, now);
        }
        assert!(rr.pick(now, &mut Tried::default(), LOCAL).is_some());
        // but one request does not try it twice
        let mut tried = Tried::default();
        assert!(rr.pick(now, &mut tried, LOCAL).is_some());
        assert!(rr.pick(now, &mut tried, LOCAL).is_none());
    }

    #[test]
    fn a_peer_at_max_conns_is_skipped_until_one_ends() {
        let mut first = server(8001, 1, false, false);
        first.max_conns = 1;
        let mut rr = group(vec![first, server(8002, 1, false, false)]);
        let now = Instant::now();
        let busy = rr.pick(now, &mut Tried::default(), LOCAL).unwrap();
        assert_eq!(
            rr.peer(busy).unwrap().addr.inet().map_or(0, |a| a.port()),
            8001
        );
        // 8001 is full: every pick goes to 8002
        for _ in 0..3 {
            let pick = rr.pick(now, &mut Tried::default(), LOCAL).unwrap();
            assert_eq!(
                rr.peer(pick).unwrap().addr.inet().map_or(0, |a| a.port()),
                8002
            );
            rr.release(pick);
        }
        rr.release(busy);
        let ports: Vec<u16> = (0..2)
            .map(|_| {
                let pick = rr.pick(now, &mut Tried::default(), LOCAL).unwrap();
                rr.release(pick);
                rr.peer(pick).unwrap().addr.inet().map_or(0, |a| a.port())
            })
            .collect();
        assert!(ports.contains(&8001), "{ports:?}");
    }

    fn random_group(two: bool, servers: Vec<UpstreamServer>) -> RoundRobin {
        RoundRobin::new(&UpstreamConf {
            name: "r".into(),
            servers,
            method: Balancing::Random { two },
            ..UpstreamConf::default()
        })
    }

    #[test]
    fn random_draws_by_weight_and_skips_what_cannot_serve() {
        let mut rr = random_group(
            false,
            vec![
                server(8001, 3, false, false),
                server(8002, 1, false, false),
                server(8003, 5, false, true),
            ],
        );
        let now = Instant::now();
        let mut counts = [0u32; 3];
        for _ in 0..4000 {
            let pick = rr.pick(now, &mut Tried::default(), LOCAL).unwrap();
            counts
                [usize::from(rr.peer(pick).unwrap().addr.inet().map_or(0, |a| a.port()) - 8001)] +=
                1;
            rr.release(pick);
        }
        // 3:1, and never the down one
        assert_eq!(counts[2], 0);
        assert!((2600..3400).contains(&counts[0]), "{counts:?}");
    }

    #[test]
    fn random_two_takes_the_less_loaded_of_two() {
        let mut rr = random_group(
            true,
            vec![server(8001, 1, false, false), server(8002, 1, false, false)],
        );
        let now = Instant::now();
        // 8001 holds a request: of the two drawn, 8002 always wins
        let held = loop {
            let pick = rr.pick(now, &mut Tried::default(), LOCAL).unwrap();
            if rr.peer(pick).unwrap().addr.inet().map_or(0, |a| a.port()) == 8001 {
                break pick;
            }
            rr.release(pick);
        };
        for _ in 0..20 {
            let pick = rr.pick(now, &mut Tried::default(), LOCAL).unwrap();
            assert_eq!(
                rr.peer(pick).unwrap().addr.inet().map_or(0, |a| a.port()),
                8002
            );
            rr.release(pick);
        }
        rr.release(held);
    }
}
