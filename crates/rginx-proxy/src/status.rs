//! The `stub_status` page, in nginx's form and Prometheus', from the
//! process's counters ([`rginx_core::stats`]) and the per-upstream-server
//! figures.

use rginx_core::peer::PeerAddr;
pub use rginx_core::stats::{ConnectionState, Counters, Snapshot, COUNTERS};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// nginx's `stub_status` page, byte for byte.
pub fn stub_status_text(s: &Snapshot) -> String {
    format!(
        "Active connections: {} \nserver accepts handled requests\n {} {} {} \nReading: {} Writing: {} Waiting: {} \n",
        s.active, s.accepted, s.handled, s.requests, s.reading, s.writing, s.waiting
    )
}

/// Upper bounds (seconds) of the response-time histogram buckets.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// One upstream server's figures.
#[derive(Debug, Default)]
pub struct PeerStats {
    requests: AtomicU64,
    failures: AtomicU64,
    /// Responses whose head came within each bucket's bound (not
    /// cumulative; summed when printed).
    buckets: [AtomicU64; BUCKETS.len()],
    /// All response heads, and their total time in microseconds.
    responses: AtomicU64,
    micros: AtomicU64,
}

impl PeerStats {
    /// An attempt ended: a response head after `took`, or a failure.
    pub fn observe(&self, failed: bool, took: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failures.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let secs = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.responses.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// Every upstream server tried since start, by address, then by the
/// upstream (group name, or the address for a `proxy_pass` to one).
#[derive(Debug, Default)]
pub struct Upstreams {
    peers: Mutex<HashMap<PeerAddr, Vec<NamedPeer>>>,
}

/// A server's figures in one upstream (by its name).
type NamedPeer = (String, Arc<PeerStats>);

impl Upstreams {
    /// The figures of `addr` in `upstream`, made on first use.
    pub fn peer(&self, upstream: &str, addr: &PeerAddr) -> Arc<PeerStats> {
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        let list = peers.entry(addr.clone()).or_default();
        if let Some((_, stats)) = list.iter().find(|(name, _)| name == upstream) {
            return stats.clone();
        }
        let stats = Arc::new(PeerStats::default());
        list.push((upstream.to_string(), stats.clone()));
        stats
    }

    fn sorted(&self) -> Vec<(String, PeerAddr, Arc<PeerStats>)> {
        let peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<_> = peers
            .iter()
            .flat_map(|(addr, list)| {
                list.iter()
                    .map(|(name, stats)| (name.clone(), addr.clone(), stats.clone()))
            })
            .collect();
        all.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        all
    }
}

/// The process's upstream figures.
pub static UPSTREAMS: std::sync::LazyLock<Upstreams> = std::sync::LazyLock::new(Upstreams::default);

/// A per-server counter of the Prometheus form: name, help, value.
type PeerCounter = (&'static str, &'static str, fn(&PeerStats) -> u64);

/// The counters and the upstream figures in Prometheus' text format.
pub fn prometheus_text(s: &Snapshot, upstreams: &Upstreams) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        );
    };
    metric(
        "rginx_connections_active",
        "gauge",
        "Open client connections, tunnels included.",
        s.active,
    );
    metric(
        "rginx_connections_accepted_total",
        "counter",
        "Client connections accepted.",
        s.accepted,
    );
    metric(
        "rginx_connections_handled_total",
        "counter",
        "Client connections served (accepted and given a worker_connections slot).",
        s.handled,
    );
    metric(
        "rginx_http_requests_total",
        "counter",
        "Client requests.",
        s.requests,
    );
    metric(
        "rginx_connections_reading",
        "gauge",
        "Connections reading a request head.",
        s.reading,
    );
    metric(
        "rginx_connections_writing",
        "gauge",
        "Connections whose request is being served.",
        s.writing,
    );
    metric(
        "rginx_connections_waiting",
        "gauge",
        "Idle keep-alive connections.",
        s.waiting,
    );
    let peers = upstreams.sorted();
    // a proxy_pass to an address is its own upstream, named by it
    let label = |name: &str, addr: &PeerAddr| {
        let name = if name.is_empty() {
            addr.to_string()
        } else {
            name.replace('\\', "\\\\").replace('"', "\\\"")
        };
        format!("upstream=\"{name}\",server=\"{addr}\"")
    };
    let counters: [PeerCounter; 2] = [
        (
            "rginx_upstream_requests_total",
            "Attempts sent to an upstream server.",
            |p| p.requests.load(Ordering::Relaxed),
        ),
        (
            "rginx_upstream_failures_total",
            "Attempts that failed: errors, timeouts, invalid or too big headers, and the statuses max_fails counts.",
            |p| p.failures.load(Ordering::Relaxed),
        ),
    ];
    for (metric, help, value) in counters {
        let _ = write!(out, "# HELP {metric} {help}\n# TYPE {metric} counter\n");
        for (name, addr, stats) in &peers {
            let _ = writeln!(out, "{metric}{{{}}} {}", label(name, addr), value(stats));
        }
    }
    out.push_str("# HELP rginx_upstream_header_seconds Time from the start of an attempt to the response head.\n");
    out.push_str("# TYPE rginx_upstream_header_seconds histogram\n");
    for (name, addr, stats) in &peers {
        let labels = label(name, addr);
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(&stats.buckets) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "rginx_upstream_header_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
            );
        }
        let responses = stats.responses.load(Ordering::Relaxed);
        let micros = stats.micros.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "rginx_upstream_header_seconds_bucket{{{labels},le=\"+Inf\"}} {responses}"
        );
        let _ = writeln!(
            out,
            "rginx_upstream_header_seconds_sum{{{labels}}} {}.{:06}",
            micros / 1_000_000,
            micros % 1_000_000
        );
        let _ = writeln!(
            out,
            "rginx_upstream_header_seconds_count{{{labels}}} {responses}"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_nginx_s() {
        let s = Snapshot {
            active: 3,
            accepted: 10,
            handled: 10,
            requests: 25,
            reading: 0,
            writing: 1,
            waiting: 2,
        };
        assert_eq!(
            stub_status_text(&s),
            "Active connections: 3 \nserver accepts handled requests\n 10 10 25 \nReading: 0 Writing: 1 Waiting: 2 \n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let upstreams = Upstreams::default();
        let addr: PeerAddr = "127.0.0.1:9"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into();
        let peer = upstreams.peer("backend", &addr);
        peer.observe(false, Duration::from_millis(3));
        peer.observe(false, Duration::from_millis(30));
        peer.observe(true, Duration::from_millis(1));
        assert!(Arc::ptr_eq(&peer, &upstreams.peer("backend", &addr)));
        let text = prometheus_text(&COUNTERS.snapshot(), &upstreams);
        let l = "upstream=\"backend\",server=\"127.0.0.1:9\"";
        for line in [
            format!("rginx_upstream_requests_total{{{l}}} 3"),
            format!("rginx_upstream_failures_total{{{l}}} 1"),
            format!("rginx_upstream_header_seconds_bucket{{{l},le=\"0.005\"}} 1"),
            format!("rginx_upstream_header_seconds_bucket{{{l},le=\"0.025\"}} 1"),
            format!("rginx_upstream_header_seconds_bucket{{{l},le=\"0.05\"}} 2"),
            format!("rginx_upstream_header_seconds_bucket{{{l},le=\"+Inf\"}} 2"),
            format!("rginx_upstream_header_seconds_sum{{{l}}} 0.033000"),
            format!("rginx_upstream_header_seconds_count{{{l}}} 2"),
        ] {
            assert!(text.lines().any(|x| x == line), "{line} missing in\n{text}");
        }
    }
}
