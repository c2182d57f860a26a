//! A name server on the loopback for tests of `resolver`: it answers A
//! and AAAA queries from a zone given as data, over UDP and TCP on one
//! port, and can answer with an error code, truncate, or stay silent. It
//! records the questions it was asked.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use simple_dns::rdata::{RData, A, AAAA, CNAME};
use simple_dns::{Name, Packet, PacketFlag, ResourceRecord, CLASS, QTYPE, TYPE};

/// A record of a name.
#[derive(Debug, Clone)]
pub enum Record {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// An alias: the target's records follow it in answers.
    Cname(String),
}

/// How a name is answered.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// The response code (0: the records).
    pub code: u8,
    /// Its records.
    pub records: Vec<Record>,
    /// Their TTL.
    pub ttl: u32,
    /// No answer at all.
    pub silent: bool,
    /// UDP answers come truncated (the whole answer over TCP).
    pub truncated: bool,
}

impl Entry {
    /// An entry with these records and TTL.
    pub fn records(records: Vec<Record>, ttl: u32) -> Entry {
        Entry {
            records,
            ttl,
            ..Entry::default()
        }
    }

    /// An entry answered with this response code.
    pub fn code(code: u8) -> Entry {
        Entry {
            code,
            ..Entry::default()
        }
    }
}

/// The server; it stops when dropped.
pub struct DnsServer {
    /// Where it listens (UDP and TCP).
    pub addr: SocketAddr,
    asked: Arc<Mutex<Vec<(String, u16)>>>,
    stop: Arc<AtomicBool>,
}

type Zone = Arc<HashMap<String, Entry>>;

impl DnsServer {
    /// Starts a server for `zone` (names in any case; unknown ones get
    /// NXDOMAIN) on a free loopback port.
    pub fn start(zone: Vec<(&str, Entry)>) -> std::io::Result<DnsServer> {
        let zone: Zone = Arc::new(
            zone.into_iter()
                .map(|(n, e)| (n.to_ascii_lowercase(), e))
                .collect(),
        );
        // one port for both: a UDP port whose TCP twin is free
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0")?;
            if let Ok(tcp) = TcpListener::bind(udp.local_addr()?) {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr()?;
        udp.set_read_timeout(Some(Duration::from_millis(50)))?;
        tcp.set_nonblocking(true)?;
        let asked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (zone, asked, stop) = (zone.clone(), asked.clone(), stop.clone());
            std::thread::spawn(move || serve_udp(udp, &zone, &asked, &stop));
        }
        {
            let (asked, stop) = (asked.clone(), stop.clone());
            std::thread::spawn(move || serve_tcp(tcp, &zone, &asked, &stop));
        }
        Ok(DnsServer { addr, asked, stop })
    }

    /// The questions asked so far: name and type (1: A, 28: AAAA).
    pub fn asked(&self) -> Vec<(String, u16)> {
        self.asked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve_udp(socket: UdpSocket, zone: &Zone, asked: &Mutex<Vec<(String, u16)>>, stop: &AtomicBool) {
    let mut buf = [0; 1500];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        if let Some(answer) = answer(&buf[..n], zone, asked, true) {
            let _ = socket.send_to(&answer, from);
        }
    }
}

fn serve_tcp(
    listener: TcpListener,
    zone: &Zone,
    asked: &Mutex<Vec<(String, u16)>>,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Relaxed) {
        let Ok((mut stream, _)) = listener.accept() else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let _ = stream.set_nonblocking(false);
        let mut length = [0; 2];
        if stream.read_exact(&mut length).is_err() {
            continue;
        }
        let mut query = vec![0; usize::from(u16::from_be_bytes(length))];
        if stream.read_exact(&mut query).is_err() {
            continue;
        }
        if let Some(answer) = answer(&query, zone, asked, false) {
            let mut out = u16::try_from(answer.len())
                .unwrap_or(0)
                .to_be_bytes()
                .to_vec();
            out.extend_from_slice(&answer);
            let _ = stream.write_all(&out);
        }
    }
}

/// The answer to a query, if the name is not silent.
fn answer(
    query: &[u8],
    zone: &Zone,
    asked: &Mutex<Vec<(String, u16)>>,
    udp: bool,
) -> Option<Vec<u8>> {
    let query = Packet::parse(query).ok()?;
    let question = query.questions.first()?;
    let name = question.qname.to_string().to_ascii_lowercase();
    let qtype = match question.qtype {
        QTYPE::TYPE(TYPE::A) => 1,
        QTYPE::TYPE(TYPE::AAAA) => 28,
        _ => 0,
    };
    asked
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((name.clone(), qtype));
    let nxdomain = Entry::code(3);
    let entry = zone.get(&name).unwrap_or(&nxdomain);
    if entry.silent {
        return None;
    }
    let mut reply = Packet::new_reply(query.id());
    reply.set_flags(PacketFlag::RECURSION_DESIRED | PacketFlag::RECURSION_AVAILABLE);
    *reply.rcode_mut() = u16::from(entry.code).into();
    reply.questions.push(question.clone());
    if udp && entry.truncated {
        reply.set_flags(PacketFlag::TRUNCATION);
        return reply.build_bytes_vec().ok();
    }
    // the name's records, then an alias target's
    let mut owner = name;
    let mut current = Some(entry);
    let mut hops = 0;
    let mut names: Vec<String> = Vec::new();
    let mut records: Vec<(usize, u32, Record)> = Vec::new();
    while let Some(e) = current.take() {
        names.push(owner.clone());
        for r in &e.records {
            records.push((names.len() - 1, e.ttl, r.clone()));
            if let Record::Cname(target) = r {
                if hops < 8 {
                    hops += 1;
                    owner = target.to_ascii_lowercase();
                    current = zone.get(&owner);
                }
            }
        }
    }
    for (i, ttl, record) in &records {
        let rdata = match record {
            Record::A(ip) if qtype == 1 => RData::A(A::from(*ip)),
            Record::Aaaa(ip) if qtype == 28 => RData::AAAA(AAAA::from(*ip)),
            Record::Cname(target) => RData::CNAME(CNAME(Name::new_unchecked(target))),
            _ => continue,
        };
        reply.answers.push(ResourceRecord::new(
            Name::new_unchecked(&names[*i]),
            CLASS::IN,
            *ttl,
            rdata,
        ));
    }
    reply.build_bytes_vec().ok()
}
