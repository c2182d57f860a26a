//! # rginx-proxy
//!
//! The network side of rginx. For now it holds the system resolver that
//! configuration loading uses and the upstream peer selection
//! ([`balance`]); the hyper/tokio engine lands here next.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod balance;
pub mod echo;
pub mod engine;
pub mod errlog;
pub mod pool;
pub mod timed;

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
