//! # rginx-http
//!
//! HTTP/1 as nginx reads it off the wire, with no I/O of its own: the
//! checks and limits nginx applies to a request head as its bytes arrive
//! ([`head_scan`]), the head parsed as nginx parses it ([`request`]), the
//! chunked coding as `ngx_http_parse_chunked` reads it ([`chunked`]); and
//! the upstream side: a request head written as nginx writes it
//! ([`upstream_request`]) and a response head read with its names' case
//! and order kept ([`response`]).

#![forbid(unsafe_code)]
// no panics on input: errors are values (clippy.toml allows both in tests)
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![warn(missing_docs)]

pub mod chunked;
pub mod head_scan;
pub mod request;
pub mod response;
pub mod upstream_request;
