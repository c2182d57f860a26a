//! Helpers shared by rginx's test binaries and benchmarks, so that they are
//! not copied between crates: [`alloc`], an allocator that counts
//! allocations (for the tests that a path allocates nothing), and
//! [`config`], the model and runtime of a configuration given as text, and
//! [`net`], loopback socket pairs, and [`dns`], a name server for tests
//! of `resolver`.
//!
//! A dev-dependency only: nothing here is part of rginx itself.

#![deny(clippy::unwrap_used, clippy::expect_used)]
#![warn(missing_docs)]

pub mod alloc;
pub mod config;
pub mod dns;
pub mod net;
