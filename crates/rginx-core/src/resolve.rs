//! Host name (and account) resolution, behind a trait so that the model
//! stays free of I/O: the binary passes the system resolver, tests pass a
//! fixed table.

use std::net::{IpAddr, SocketAddr};

/// Resolves host names the way nginx does at load time (once, with the
/// system resolver).
pub trait Resolver {
    /// All addresses of `host` with `port`; `Err` when the host is unknown.
    fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String>;

    /// Whether a user account exists (the `user` directive, checked when
    /// running as root, as nginx checks it). By default every name does.
    fn user_exists(&self, _name: &str) -> bool {
        true
    }

    /// Whether a group exists (`user NAME GROUP`). By default every name does.
    fn group_exists(&self, _name: &str) -> bool {
        true
    }
}

/// A resolver that knows IP literals and `localhost` only; for tests and for
/// checking configurations without touching DNS.
#[derive(Debug, Default, Clone, Copy)]
pub struct LiteralResolver;

impl Resolver for LiteralResolver {
    fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        if let Some(ip) = parse_ip(host) {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        if host.eq_ignore_ascii_case("localhost") {
            return Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]);
        }
        Err("host not found".to_string())
    }
}

/// Parses an IP literal; IPv6 may be in brackets.
pub fn parse_ip(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}
