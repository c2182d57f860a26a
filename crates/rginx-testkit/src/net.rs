//! Sockets for tests that run real connections on the loopback.

use std::io;

use tokio::net::{TcpListener, TcpStream};

/// A connected pair of loopback TCP sockets: (the connecting side, the
/// accepted side).
pub async fn tcp_pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
    Ok((a?, b?.0))
}
