//! # rginx-proxy
//!
//! The network side of rginx: the hyper/tokio engine ([`engine`]), upstream
//! peer selection ([`balance`]) and connection pools ([`pool`]), nginx's
//! timeouts ([`timed`]), the error log ([`errlog`]), the process settings
//! ([`process`]), the echo backend of the demo and the tests ([`echo`]),
//! and the system resolver configuration loading uses.

// unsafe code only where the process talks to libc (process.rs,
// procs.rs) and where a worker's own epoll is registered with tokio
// (http1/park.rs)
#![deny(unsafe_code)]
// no panics on input: errors are values (clippy.toml allows both in tests)
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![warn(missing_docs)]

mod access_log;
pub mod balance;
pub mod date;
pub mod echo;
pub mod engine;
pub mod errlog;
pub mod http1;
pub mod instance;
pub mod master;
pub mod pool;
#[allow(unsafe_code)]
pub mod process;
#[allow(unsafe_code)]
pub mod procs;
pub mod read_ahead;
pub mod spool;
pub mod status;
pub mod timed;
pub mod tls;
pub mod transport;
pub mod tunnel;
pub mod upstream;

use std::net::{SocketAddr, ToSocketAddrs};

use rginx_core::resolve::{parse_ip, Resolver};

/// Resolves host names with the operating system's resolver, once, as
/// nginx does at load time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        if let Some(ip) = parse_ip(host) {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let mut addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|_| "host not found".to_string())?
            .collect();
        addrs.dedup();
        if addrs.is_empty() {
            return Err("host not found".to_string());
        }
        Ok(addrs)
    }

    fn user_exists(&self, name: &str) -> bool {
        process::user_id(name).is_some()
    }

    fn group_exists(&self, name: &str) -> bool {
        process::group_id(name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_literals_and_rejects_invalid_names() {
        let r = SystemResolver;
        assert_eq!(
            r.resolve("127.0.0.1", 80).unwrap(),
            vec![SocketAddr::from(([127, 0, 0, 1], 80))]
        );
        assert!(r.resolve("[::1]", 81).is_ok());
        assert!(r.resolve("backend.invalid", 80).is_err());
    }
}
