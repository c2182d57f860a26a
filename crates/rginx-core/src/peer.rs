//! Where an upstream server is: an IP address and port, or a unix
//! socket (`server unix:/run/app.sock`, `proxy_pass http://unix:/run/app.sock:/`).

use std::net::SocketAddr;
use std::sync::Arc;

/// An upstream server's address, as nginx names it in `$upstream_addr`
/// and its error lines (`127.0.0.1:8000`, `unix:/run/app.sock`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerAddr {
    /// TCP to an address and port.
    Inet(SocketAddr),
    /// A unix socket, by its path.
    Unix(Arc<str>),
}

impl PeerAddr {
    /// The TCP address, for a TCP peer.
    pub fn inet(&self) -> Option<SocketAddr> {
        match self {
            PeerAddr::Inet(addr) => Some(*addr),
            PeerAddr::Unix(_) => None,
        }
    }
}

impl PeerAddr {
    /// The address as nginx writes it inside an upstream URL in its error
    /// lines (`http://ADDR/URI`): a unix socket's path ends with a colon
    /// there (`http://unix:/run/app.sock:/URI`).
    pub fn in_url(&self) -> InUrl<'_> {
        InUrl(self)
    }
}

/// [`PeerAddr::in_url`].
pub struct InUrl<'a>(&'a PeerAddr);

impl std::fmt::Display for InUrl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            PeerAddr::Inet(addr) => addr.fmt(f),
            PeerAddr::Unix(path) => write!(f, "unix:{path}:"),
        }
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(addr: SocketAddr) -> Self {
        PeerAddr::Inet(addr)
    }
}

impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerAddr::Inet(addr) => addr.fmt(f),
            PeerAddr::Unix(path) => write!(f, "unix:{path}"),
        }
    }
}
