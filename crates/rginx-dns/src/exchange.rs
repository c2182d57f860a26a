//! One lookup on the wire, as nginx's resolver makes it: the A query (and
//! the AAAA one with `ipv6=on`) over UDP to one server, sent again to the
//! next server every 5 seconds (`resend_timeout`), over TCP when an
//! answer comes truncated, until the answers are in or time is up.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use crate::message::{self, Qtype, Reply};
use crate::{Failure, Resolver, SocketError};

/// nginx's `resend_timeout` (5 s, fixed): each server's turn.
const RESEND: Duration = Duration::from_secs(5);

/// The largest answer read over UDP (nginx's is 4096 bytes too).
const UDP_SIZE: usize = 4096;

/// The answers of one lookup, put together.
pub(crate) struct Answer {
    pub v4: Vec<Ipv4Addr>,
    pub v6: Vec<Ipv6Addr>,
    pub cname: Option<String>,
    pub ttl: u32,
}

impl Resolver {
    /// Asks for `name`'s addresses until `deadline`.
    pub(crate) async fn lookup(
        &self,
        name: &str,
        deadline: Instant,
        on_error: &mut (dyn FnMut(SocketError) + Send),
    ) -> Result<Answer, Failure> {
        let types: &[Qtype] = if self.ipv6 {
            &[Qtype::A, Qtype::Aaaa]
        } else {
            &[Qtype::A]
        };
        let mut asked = Vec::with_capacity(types.len());
        for &qtype in types {
            let id = self.random() as u16;
            let bytes = message::query(id, name, qtype).ok_or(Failure::Code(3))?;
            asked.push((qtype, id, bytes));
        }
        // the answers in the order they came
        let mut got: Vec<(Qtype, Reply)> = Vec::with_capacity(asked.len());
        while Instant::now() < deadline {
            let server = self.next_server();
            let round_end = deadline.min(Instant::now() + RESEND);
            self.round(server, name, &asked, &mut got, round_end, on_error)
                .await;
            if got.len() == asked.len() {
                return combine(got);
            }
        }
        Err(Failure::TimedOut)
    }

    /// One server's turn: the queries not answered yet are sent, and
    /// answers read until `round_end`.
    async fn round(
        &self,
        server: SocketAddr,
        name: &str,
        asked: &[(Qtype, u16, Vec<u8>)],
        got: &mut Vec<(Qtype, Reply)>,
        round_end: Instant,
        on_error: &mut (dyn FnMut(SocketError) + Send),
    ) {
        let socket = match udp_socket(server).await {
            Ok(socket) => socket,
            Err(error) => {
                on_error(SocketError::new(server, "connect()", error));
                tokio::time::sleep_until(round_end).await;
                return;
            }
        };
        for (qtype, _, bytes) in asked {
            if got.iter().any(|(t, _)| t == qtype) {
                continue;
            }
            if let Err(error) = socket.send(bytes).await {
                on_error(SocketError::new(server, "send()", error));
            }
        }
        let mut buf = vec![0; UDP_SIZE];
        while got.len() < asked.len() {
            let n = match tokio::time::timeout_at(round_end, socket.recv(&mut buf)).await {
                Err(_) => return,
                Ok(Ok(n)) => n,
                // a refusal comes back as the socket's error: the server
                // gets no more of this round, as nginx then waits
                Ok(Err(_)) => {
                    tokio::time::sleep_until(round_end).await;
                    return;
                }
            };
            let found = asked.iter().find_map(|(qtype, id, bytes)| {
                let pending = !got.iter().any(|(t, _)| t == qtype);
                pending
                    .then(|| message::reply(&buf[..n], *id, name, *qtype))
                    .flatten()
                    .map(|reply| (*qtype, *id, bytes, reply))
            });
            let Some((qtype, id, bytes, reply)) = found else {
                continue;
            };
            if !reply.truncated {
                got.push((qtype, reply));
                continue;
            }
            // too long for UDP: the same query over TCP, within this
            // server's turn (nginx's resend timer runs on while it waits
            // for a TCP answer: a server that accepts and never answers
            // does not hold up the next one)
            match tokio::time::timeout_at(round_end, tcp_exchange(server, bytes)).await {
                Ok(Ok(answer)) => {
                    if let Some(reply) = message::reply(&answer, id, name, qtype) {
                        got.push((qtype, reply));
                    }
                }
                Ok(Err(error)) => on_error(SocketError::new(server, "recv()", error)),
                Err(_) => {}
            }
        }
    }
}

/// A UDP socket of the server's family, connected to it.
async fn udp_socket(server: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = if server.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    Ok(socket)
}

/// A query over TCP: two bytes of length before each message.
async fn tcp_exchange(server: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(server).await?;
    let length = u16::try_from(query.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
    let mut out = Vec::with_capacity(query.len() + 2);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(query);
    stream.write_all(&out).await?;
    let mut length = [0; 2];
    stream.read_exact(&mut length).await?;
    let mut answer = vec![0; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut answer).await?;
    Ok(answer)
}

/// The answers of a lookup as one (`ngx_resolver_process_a`): an error
/// code in either fails it (the later one's, if both), addresses of both
/// types go together, and none at all is "Host not found" unless the
/// answer that came last names a CNAME to look up next (nginx drops a
/// CNAME in the first of two answers while it waits for the second).
fn combine(got: Vec<(Qtype, Reply)>) -> Result<Answer, Failure> {
    if let Some((_, failed)) = got.iter().rev().find(|(_, r)| r.code != 0) {
        return Err(Failure::Code(failed.code));
    }
    let mut answer = Answer {
        v4: Vec::new(),
        v6: Vec::new(),
        cname: None,
        ttl: u32::MAX,
    };
    for (_, reply) in got {
        answer.v4.extend(reply.v4);
        answer.v6.extend(reply.v6);
        answer.cname = reply.cname;
        answer.ttl = answer.ttl.min(reply.ttl.unwrap_or(u32::MAX));
    }
    if answer.v4.is_empty() && answer.v6.is_empty() && answer.cname.is_none() {
        return Err(Failure::Code(3));
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u8, v4: &[u8]) -> Reply {
        Reply {
            code,
            v4: v4.iter().map(|o| Ipv4Addr::new(10, 0, 0, *o)).collect(),
            ttl: Some(30),
            ..Reply::default()
        }
    }

    #[test]
    fn answers_combine_as_nginx_s() {
        // AAAA's failure fails the A answer's addresses too
        let failed = combine(vec![
            (Qtype::A, reply(0, &[1])),
            (Qtype::Aaaa, reply(2, &[])),
        ]);
        assert_eq!(failed.err(), Some(Failure::Code(2)));
        let both = combine(vec![
            (Qtype::Aaaa, reply(0, &[])),
            (Qtype::A, reply(0, &[1, 2])),
        ]);
        assert_eq!(both.map(|a| (a.v4.len(), a.ttl)).ok(), Some((2, 30)));
        let none = combine(vec![
            (Qtype::A, reply(0, &[])),
            (Qtype::Aaaa, reply(0, &[])),
        ]);
        assert_eq!(none.err(), Some(Failure::Code(3)));
        // only the last answer's CNAME is followed
        let cname = |name: &str| Reply {
            cname: Some(name.to_string()),
            ..reply(0, &[])
        };
        let first_only = combine(vec![
            (Qtype::A, cname("a.example")),
            (Qtype::Aaaa, reply(0, &[])),
        ]);
        assert_eq!(first_only.err(), Some(Failure::Code(3)));
        let both = combine(vec![
            (Qtype::A, cname("a.example")),
            (Qtype::Aaaa, cname("b.example")),
        ]);
        assert_eq!(
            both.ok().and_then(|a| a.cname).as_deref(),
            Some("b.example")
        );
    }
}
