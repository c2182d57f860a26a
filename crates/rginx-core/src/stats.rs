//! The connection and request counters nginx keeps in shared memory
//! (`ngx_stat_*`): one set for the master and all its workers, so that a
//! reload (new workers) does not reset them. `stub_status` reports them and
//! the `$connections_*` variables read them. The master places them in
//! memory its workers share ([`Shared::place`]) before it starts any;
//! until then (and without a master) they are the process's own.
//!
//! nginx's connection states: a connection is *reading* from the first
//! byte of a request head until the head is parsed, *writing* while that
//! request is served (a WebSocket tunnel stays writing until it closes),
//! and *waiting* otherwise (an idle keep-alive connection).

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// The connection and request counters.
#[derive(Debug, Default)]
pub struct Counters {
    accepted: AtomicU64,
    handled: AtomicU64,
    requests: AtomicU64,
    active: AtomicU64,
    reading: AtomicU64,
    writing: AtomicU64,
    /// The last connection number given (`ngx_connection_counter`).
    numbered: AtomicU64,
}

/// The counters of the process until they are placed elsewhere.
static OWN: Counters = Counters {
    accepted: AtomicU64::new(0),
    handled: AtomicU64::new(0),
    requests: AtomicU64::new(0),
    active: AtomicU64::new(0),
    reading: AtomicU64::new(0),
    writing: AtomicU64::new(0),
    numbered: AtomicU64::new(0),
};

/// Where the counters are: the process's own, or memory shared with the
/// master and the other workers.
#[derive(Debug)]
pub struct Shared {
    placed: std::sync::OnceLock<&'static Counters>,
}

impl Shared {
    /// From now on the counters are `at` (zeroed memory is a valid
    /// [`Counters`]); only the first call counts. Call it before any
    /// connection is counted.
    pub fn place(&self, at: &'static Counters) {
        let _ = self.placed.set(at);
    }
}

impl std::ops::Deref for Shared {
    type Target = Counters;

    fn deref(&self) -> &Counters {
        self.placed.get().copied().unwrap_or(&OWN)
    }
}

/// The counters.
pub static COUNTERS: Shared = Shared {
    placed: std::sync::OnceLock::new(),
};

/// Client connections open in this process (a worker that drains waits
/// for its own, not its successors').
static OPEN_HERE: AtomicU64 = AtomicU64::new(0);

/// Client connections open in this process now.
pub fn open_here() -> u64 {
    OPEN_HERE.load(Ordering::Acquire)
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Open client connections (tunnels included).
    pub active: u64,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Of those, the ones served (the others found no `worker_connections`
    /// slot).
    pub handled: u64,
    /// Requests since start (counted when their first byte arrives).
    pub requests: u64,
    /// Connections reading a request head.
    pub reading: u64,
    /// Connections whose request is being served.
    pub writing: u64,
    /// Idle connections (`active - reading - writing`).
    pub waiting: u64,
}

impl Counters {
    /// The number of a new connection, accepted or opened to an upstream
    /// (nginx's `c->number`, `$connection` and the `*N` of its log lines:
    /// both kinds take one from the same counter, from 1).
    pub fn next_number(&self) -> u64 {
        self.numbered.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A connection was accepted.
    pub fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// An accepted connection got a `worker_connections` slot.
    pub fn handled(&self) {
        self.handled.fetch_add(1, Ordering::Relaxed);
    }

    /// Open client connections now.
    pub fn active(&self) -> u64 {
        self.active.load(Ordering::Acquire)
    }

    /// The figures now (read one by one, as nginx does).
    pub fn snapshot(&self) -> Snapshot {
        let active = self.active.load(Ordering::Relaxed);
        let reading = self.reading.load(Ordering::Relaxed);
        let writing = self.writing.load(Ordering::Relaxed);
        Snapshot {
            active,
            accepted: self.accepted.load(Ordering::Relaxed),
            handled: self.handled.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            reading,
            writing,
            waiting: active.saturating_sub(reading + writing),
        }
    }
}

const WAITING: u8 = 0;
const READING: u8 = 1;
const WRITING: u8 = 2;

/// One open client connection's place in the counters: counted active
/// while this lives, and in the state it is in.
#[derive(Debug)]
pub struct ConnectionState {
    state: AtomicU8,
}

impl ConnectionState {
    /// A connection opens, waiting for its first request.
    pub fn open() -> ConnectionState {
        COUNTERS.active.fetch_add(1, Ordering::AcqRel);
        OPEN_HERE.fetch_add(1, Ordering::AcqRel);
        ConnectionState {
            state: AtomicU8::new(WAITING),
        }
    }

    /// The first bytes of a request head came.
    pub fn reading(&self) {
        if self
            .state
            .compare_exchange(WAITING, READING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            COUNTERS.requests.fetch_add(1, Ordering::Relaxed);
            COUNTERS.reading.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A request head was parsed: its request is served now. (A head read
    /// along with the previous request, pipelined, is counted here.)
    pub fn writing(&self) {
        match self.state.swap(WRITING, Ordering::AcqRel) {
            READING => {
                COUNTERS.reading.fetch_sub(1, Ordering::Relaxed);
                COUNTERS.writing.fetch_add(1, Ordering::Relaxed);
            }
            WAITING => {
                COUNTERS.requests.fetch_add(1, Ordering::Relaxed);
                COUNTERS.writing.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// The request was answered: waiting for the next one.
    pub fn waiting(&self) {
        Self::leave(self.state.swap(WAITING, Ordering::AcqRel));
    }

    fn leave(state: u8) {
        match state {
            READING => COUNTERS.reading.fetch_sub(1, Ordering::Relaxed),
            WRITING => COUNTERS.writing.fetch_sub(1, Ordering::Relaxed),
            _ => 0,
        };
    }
}

impl Drop for ConnectionState {
    fn drop(&mut self) {
        Self::leave(*self.state.get_mut());
        COUNTERS.active.fetch_sub(1, Ordering::AcqRel);
        OPEN_HERE.fetch_sub(1, Ordering::AcqRel);
    }
}
