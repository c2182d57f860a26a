//! A global allocator that counts allocations. The allocator of a binary
//! is chosen in that binary, so each test declares it itself:
//!
//! ```
//! use rginx_testkit::alloc::{allocations_during, Counting};
//!
//! #[global_allocator]
//! static GLOBAL: Counting = Counting;
//!
//! let (sum, allocated) = allocations_during(|| [1, 2, 3].iter().sum::<i32>());
//! assert_eq!((sum, allocated), (6, 0));
//! let (_, allocated) = allocations_during(|| std::hint::black_box(vec![1u8; 64]));
//! assert!(allocated >= 1);
//! ```
//!
//! The count is of the whole process (every thread), as it is the
//! allocator's; so are the bytes it holds ([`live_bytes`]: what is
//! allocated and not freed, by the sizes asked for, without the
//! allocator's own overhead).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting every allocation (`alloc`, and the
/// `alloc_zeroed` and `realloc` built on it) made through it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        LIVE.fetch_add(layout.size(), Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations made through [`Counting`] since the process started (0
/// when the binary does not declare it as its global allocator).
pub fn allocations() -> usize {
    ALLOCATIONS.load(Ordering::SeqCst)
}

/// Bytes allocated through [`Counting`] and not freed yet.
pub fn live_bytes() -> usize {
    LIVE.load(Ordering::SeqCst)
}

/// Runs `f`, returning what it returns and how many allocations were made
/// meanwhile (by any thread).
pub fn allocations_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = allocations();
    let result = f();
    (result, allocations() - before)
}
