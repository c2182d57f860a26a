//! Keep-alive connections that have been idle for a while, kept with no
//! task, no buffer and no timer of their own: a worker's parked
//! connections are a socket and a few numbers each in one table, watched
//! by one `epoll` instance and one deadline heap, as nginx keeps an idle
//! keep-alive connection as a small `ngx_connection_t` with its read event
//! armed and a node in the worker's timer tree (`ngx_http_set_keepalive`).
//!
//! A connection goes on serving in its own task for [`PARK_AFTER`] after
//! a request; a client that sends its next request within that time (a
//! busy keep-alive connection) never comes here, so the hot path pays
//! nothing. Parking and waking cost five system calls (the socket leaves
//! tokio's `epoll` for this one, and back); a task is spawned anew when
//! the client sends something.
//!
//! The parked connections of a worker close when `keepalive_timeout`
//! passes, as an idle one in its task does, and when the process quits.
//!
//! Once [`TRIM_AFTER`] connections have parked, the worker gives the free
//! heap back to the system a moment later ([`TRIM_DELAY`]): the tasks
//! those connections had are gone, and their memory would otherwise stay
//! with the process (glibc returns only the top of its heaps by itself).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use mio::{Events, Interest, Token};
use tokio::io::unix::AsyncFd;
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify, OwnedSemaphorePermit};
use tokio::time::Instant;

use super::{ClientConnection, HeadLimits};
use crate::engine::{Engine, EngineCell};
use crate::status::ConnectionState;

/// How long a keep-alive connection waits in its own task before it is
/// parked. Much longer than the gap between requests on a busy connection,
/// much shorter than a browser's idle connection stays open.
pub const PARK_AFTER: Duration = Duration::from_millis(100);

/// Connections parked since the last trim that make the next one worth it.
pub const TRIM_AFTER: usize = 64;

/// How long after that many parked the trim comes (more may follow).
pub const TRIM_DELAY: Duration = Duration::from_millis(100);

/// What a parked connection keeps to go on serving.
pub(crate) struct Parked {
    /// The socket (only an fd: no buffer, no tokio registration).
    pub stream: mio::net::TcpStream,
    /// The engine that accepted it.
    pub engine: Arc<Engine>,
    /// What requests know of the connection.
    pub connection: ClientConnection,
    /// Its `worker_connections` slot.
    pub slot: OwnedSemaphorePermit,
    /// Its place in `stub_status`'s counters (waiting).
    pub state: ConnectionState,
    /// nginx's limits on its heads.
    pub limits: HeadLimits,
    /// `client_header_timeout` from a head's first byte.
    pub header_timeout: Millis,
    /// `keepalive_timeout`, for after the next request.
    pub idle_timeout: Millis,
    /// `send_timeout`.
    pub send_timeout: Millis,
}

/// A timeout kept in 4 bytes (a `Duration` takes 16, for every parked
/// connection): milliseconds, up to 49 days.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Millis(u32);

impl From<Duration> for Millis {
    fn from(d: Duration) -> Millis {
        Millis(u32::try_from(d.as_millis()).unwrap_or(u32::MAX))
    }
}

impl From<Millis> for Duration {
    fn from(m: Millis) -> Duration {
        Duration::from_millis(u64::from(m.0))
    }
}

/// A worker's parked connections (made on the first park).
#[derive(Default)]
pub struct ParkedSet {
    shared: OnceLock<Option<Arc<Shared>>>,
}

impl std::fmt::Debug for ParkedSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ParkedSet")
    }
}

/// What the connections that park and the worker's watching task share.
struct Shared {
    /// Registers sockets with the watching task's `epoll`.
    registry: mio::Registry,
    /// The parked connections themselves, not boxes: no allocation of a
    /// connection's outlives its task, so what the tasks of a burst of
    /// connections left behind can go back to the system.
    table: Mutex<Table<Parked>>,
    /// A deadline earlier than any before came (the task sleeps until the
    /// earliest), or enough connections parked for a trim.
    sooner: Notify,
}

/// The parked connections (`T`), by token, and when each closes.
struct Table<T> {
    slots: Vec<Slot<T>>,
    free: Vec<usize>,
    /// (deadline, slot, its generation): an entry whose slot has been
    /// woken or reused since is skipped when it comes up.
    deadlines: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    generation: u64,
    /// The process quits: nothing parks any more.
    closed: bool,
    /// Parked since the heap was last trimmed.
    untrimmed: usize,
}

/// A place in the table.
enum Slot<T> {
    Free,
    Used(u64, T),
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            slots: Vec::new(),
            free: Vec::new(),
            deadlines: BinaryHeap::new(),
            generation: 0,
            closed: false,
            untrimmed: 0,
        }
    }
}

impl<T> Table<T> {
    /// Puts `parked` in a free place (`None` once closed: it is dropped).
    fn insert(&mut self, parked: T, due: Instant) -> Option<usize> {
        if self.closed {
            return None;
        }
        self.generation += 1;
        self.untrimmed += 1;
        let slot = Slot::Used(self.generation, parked);
        let index = match self.free.pop() {
            Some(index) => {
                self.slots[index] = slot;
                index
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        self.deadlines.push(Reverse((due, index, self.generation)));
        Some(index)
    }

    /// The place the next [`Table::insert`] takes.
    fn vacant(&self) -> usize {
        self.free.last().copied().unwrap_or(self.slots.len())
    }

    /// Takes what is in place `index` (if it is still the occupant of
    /// `generation`, when given).
    fn take(&mut self, index: usize, generation: Option<u64>) -> Option<T> {
        let place = self.slots.get_mut(index)?;
        match place {
            Slot::Used(g, _) if generation.is_none_or(|want| want == *g) => {}
            _ => return None,
        }
        let Slot::Used(_, parked) = std::mem::replace(place, Slot::Free) else {
            return None;
        };
        self.free.push(index);
        Some(parked)
    }

    /// The connections whose deadline is not after `now`.
    fn expired(&mut self, now: Instant) -> Vec<T> {
        let mut gone = Vec::new();
        while let Some(Reverse((due, index, generation))) = self.deadlines.peek().copied() {
            if due > now {
                break;
            }
            self.deadlines.pop();
            gone.extend(self.take(index, Some(generation)));
        }
        gone
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((due, _, _))| *due)
    }

    /// Takes them all, and parks nothing from now on.
    fn close(&mut self) -> Vec<T> {
        self.closed = true;
        self.free.clear();
        self.deadlines.clear();
        std::mem::take(&mut self.slots)
            .into_iter()
            .filter_map(|slot| match slot {
                Slot::Used(_, parked) => Some(parked),
                Slot::Free => None,
            })
            .collect()
    }
}

/// Sockets woken at most per `epoll_wait`.
const EVENTS: usize = 256;

impl ParkedSet {
    /// Parks a connection until the client sends something (it is then
    /// served by a new task on this worker), `due` passes or the process
    /// quits (it closes). On an error the connection closes, as an idle
    /// keep-alive connection may at any time.
    pub(crate) fn park(
        &self,
        current: &Arc<EngineCell>,
        quit: &watch::Receiver<bool>,
        mut parked: Parked,
        due: Instant,
    ) {
        let Some(shared) = self
            .shared
            .get_or_init(|| start(current.clone(), quit.clone()).ok())
        else {
            return;
        };
        if *quit.borrow() {
            return;
        }
        let mut table = shared.table.lock().unwrap_or_else(PoisonError::into_inner);
        // registered under the place it is about to take (no event is read
        // before the lock is let go)
        let token = Token(table.vacant());
        if shared
            .registry
            .register(&mut parked.stream, token, Interest::READABLE)
            .is_err()
        {
            return;
        }
        let Some(index) = table.insert(parked, due) else {
            // closed meanwhile: the connection closes (its socket leaves
            // the epoll with it)
            return;
        };
        debug_assert_eq!(index, token.0);
        let tell = table.next_deadline() == Some(due) || table.untrimmed == TRIM_AFTER;
        drop(table);
        if tell {
            shared.sooner.notify_one();
        }
    }

    /// How many connections are parked now.
    pub fn len(&self) -> usize {
        self.shared
            .get()
            .and_then(Option::as_ref)
            .map_or(0, |shared| {
                let table = shared.table.lock().unwrap_or_else(PoisonError::into_inner);
                table.slots.len() - table.free.len()
            })
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether parking is possible on this worker (its `epoll` could be
    /// made); true before the first park.
    pub fn available(&self) -> bool {
        self.shared.get().is_none_or(Option::is_some)
    }
}

/// Makes a worker's `epoll` for parked connections and starts the task
/// that watches it (on the current runtime: the worker's).
fn start(current: Arc<EngineCell>, quit: watch::Receiver<bool>) -> io::Result<Arc<Shared>> {
    let poll = mio::Poll::new()?;
    let shared = Arc::new(Shared {
        registry: poll.registry().try_clone()?,
        table: Mutex::new(Table::default()),
        sooner: Notify::new(),
    });
    // SAFETY: `AsyncFd::register`'s contract is that the descriptor
    // `as_raw_fd` gives stays open and is not registered elsewhere while
    // the AsyncFd lives: the Poll owns its epoll descriptor, it moves into
    // the AsyncFd and is closed only when that is dropped (after it
    // deregisters).
    #[allow(unsafe_code)]
    let poll = unsafe { AsyncFd::register_with_interest(poll, tokio::io::Interest::READABLE) }
        .map_err(io::Error::from)?;
    tokio::spawn(watch_parked(poll, shared.clone(), current, quit));
    Ok(shared)
}

/// The worker's task for its parked connections: wakes those the client
/// sent something on, closes those whose time is up, and closes them all
/// when the process quits.
async fn watch_parked(
    mut poll: AsyncFd<mio::Poll>,
    shared: Arc<Shared>,
    current: Arc<EngineCell>,
    mut quit: watch::Receiver<bool>,
) {
    let mut events = Events::with_capacity(EVENTS);
    let mut trim_at: Option<Instant> = None;
    loop {
        let (next, untrimmed) = {
            let table = shared.table.lock().unwrap_or_else(PoisonError::into_inner);
            (table.next_deadline(), table.untrimmed)
        };
        if untrimmed >= TRIM_AFTER && trim_at.is_none() {
            trim_at = Some(Instant::now() + TRIM_DELAY);
        }
        let deadline = sleep_until(next);
        let trim = sleep_until(trim_at);
        tokio::select! {
            ready = poll.readable_mut() => {
                let Ok(mut ready) = ready else { return close_all(&shared) };
                loop {
                    events.clear();
                    if ready.get_inner_mut().poll(&mut events, Some(Duration::ZERO)).is_err() {
                        break;
                    }
                    for event in events.iter() {
                        wake(&shared, &current, &quit, event.token().0);
                    }
                    if events.iter().count() < EVENTS {
                        ready.clear_ready();
                        break;
                    }
                }
            }
            () = deadline => {
                let gone = shared
                    .table
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .expired(Instant::now());
                for mut parked in gone {
                    let _ = shared.registry.deregister(&mut parked.stream);
                }
            }
            () = trim => {
                trim_at = None;
                shared.table.lock().unwrap_or_else(PoisonError::into_inner).untrimmed = 0;
                crate::process::give_back_free_memory();
            }
            () = shared.sooner.notified() => {}
            () = crate::engine::quitting(&mut quit) => return close_all(&shared),
        }
    }
}

/// Returns at `at` (never without one).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The client sent something on a parked connection (or closed it): a
/// new task serves it.
fn wake(shared: &Shared, current: &Arc<EngineCell>, quit: &watch::Receiver<bool>, index: usize) {
    let parked = shared
        .table
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take(index, None);
    let Some(mut parked) = parked else {
        return;
    };
    if shared.registry.deregister(&mut parked.stream).is_err() {
        return;
    }
    let Parked {
        stream,
        engine,
        connection,
        slot,
        state,
        limits,
        header_timeout,
        idle_timeout,
        send_timeout,
    } = parked;
    let Ok(stream) = TcpStream::from_std(std::net::TcpStream::from(stream)) else {
        return;
    };
    tokio::spawn(super::serve_woken(
        super::Session {
            current: current.clone(),
            accepted_by: engine,
            connection,
            limits,
            quit: quit.clone(),
            slot,
        },
        super::conn::ClientConn::resume(Box::new(stream), send_timeout.into(), state),
        idle_timeout.into(),
        header_timeout.into(),
    ));
}

fn close_all(shared: &Shared) {
    let all = shared
        .table
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .close();
    for mut parked in all {
        let _ = shared.registry.deregister(&mut parked.stream);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_place_is_not_closed_by_the_deadline_of_the_one_before() {
        let mut table = Table::default();
        let now = Instant::now();
        assert_eq!(table.vacant(), 0);
        let first = table.insert("first", now).unwrap();
        // woken before its time: its place goes to the next one
        assert_eq!(table.take(first, None), Some("first"));
        assert_eq!(table.vacant(), first);
        let second = table
            .insert("second", now + Duration::from_secs(10))
            .unwrap();
        assert_eq!(first, second);
        assert!(table.expired(now + Duration::from_secs(1)).is_empty());
        assert_eq!(table.next_deadline(), Some(now + Duration::from_secs(10)));
        assert_eq!(table.expired(now + Duration::from_secs(10)), vec!["second"]);
        assert_eq!(table.take(second, None), None);
    }

    #[test]
    fn deadlines_come_in_order_and_closing_takes_the_rest() {
        let mut table = Table::default();
        let now = Instant::now();
        for (name, secs) in [("c", 3), ("a", 1), ("b", 2), ("d", 4)] {
            table.insert(name, now + Duration::from_secs(secs)).unwrap();
        }
        assert_eq!(table.expired(now + Duration::from_secs(2)), vec!["a", "b"]);
        let mut rest = table.close();
        rest.sort_unstable();
        assert_eq!(rest, vec!["c", "d"]);
        assert_eq!(table.insert("late", now), None);
        assert!(table.next_deadline().is_none());
    }
}
