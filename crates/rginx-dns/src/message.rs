//! DNS messages as nginx's resolver writes and reads them
//! (`ngx_resolver_create_name_query`, `ngx_resolver_process_a`): one
//! question with recursion desired; of an answer, its code, its A or AAAA
//! records (whatever name they carry), a CNAME and the lowest TTL.

use std::net::{Ipv4Addr, Ipv6Addr};

use simple_dns::rdata::RData;
use simple_dns::{Name, Packet, PacketFlag, Question, CLASS, QCLASS, QTYPE, TYPE};

/// The two record types asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Qtype {
    A,
    Aaaa,
}

impl Qtype {
    fn dns(self) -> TYPE {
        match self {
            Qtype::A => TYPE::A,
            Qtype::Aaaa => TYPE::AAAA,
        }
    }
}

/// A query for `name`'s records of one type, with this ident; `None` for
/// a name with an empty label, which nginx does not send either (it
/// answers "Host not found"; a label over 63 bytes it sends, for the
/// server to refuse).
pub(crate) fn query(id: u16, name: &str, qtype: Qtype) -> Option<Vec<u8>> {
    if name.is_empty() || name.split('.').any(|l| l.is_empty() || l.len() > 63) {
        return None;
    }
    let mut packet = Packet::new_query(id);
    packet.set_flags(PacketFlag::RECURSION_DESIRED);
    let qname = Name::new(name).ok()?;
    packet.questions.push(Question::new(
        qname,
        QTYPE::TYPE(qtype.dns()),
        QCLASS::CLASS(CLASS::IN),
        false,
    ));
    packet.build_bytes_vec().ok()
}

/// What an answer says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    /// The response code (0: no error).
    pub code: u8,
    /// Too long for UDP: ask again over TCP.
    pub truncated: bool,
    pub v4: Vec<Ipv4Addr>,
    pub v6: Vec<Ipv6Addr>,
    /// The canonical name, when the answer has one.
    pub cname: Option<String>,
    /// The lowest TTL of the answer's records.
    pub ttl: Option<u32>,
}

/// Reads an answer to the query `id` for `name` (`None`: not a
/// well-formed answer to it, as nginx drops a "wrong ident").
pub(crate) fn reply(buf: &[u8], id: u16, name: &str, qtype: Qtype) -> Option<Reply> {
    let packet = Packet::parse(buf).ok()?;
    if packet.id() != id || !packet.has_flags(PacketFlag::RESPONSE) {
        return None;
    }
    let asked = packet.questions.first()?;
    if asked.qtype != QTYPE::TYPE(qtype.dns())
        || !asked.qname.to_string().eq_ignore_ascii_case(name)
    {
        return None;
    }
    let mut out = Reply {
        code: packet.rcode() as u8,
        truncated: packet.has_flags(PacketFlag::TRUNCATION),
        ..Reply::default()
    };
    for record in &packet.answers {
        out.ttl = Some(out.ttl.map_or(record.ttl, |t| t.min(record.ttl)));
        match &record.rdata {
            RData::A(a) if qtype == Qtype::A => out.v4.push(Ipv4Addr::from(a.address)),
            RData::AAAA(a) if qtype == Qtype::Aaaa => out.v6.push(Ipv6Addr::from(a.address)),
            RData::CNAME(c) => out.cname = Some(c.0.to_string()),
            _ => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use simple_dns::rdata::{A, CNAME};
    use simple_dns::ResourceRecord;

    fn answer(id: u16, name: &str, records: Vec<ResourceRecord<'_>>, code: u16) -> Vec<u8> {
        let mut p = Packet::new_reply(id);
        *p.rcode_mut() = code.into();
        p.questions.push(Question::new(
            Name::new_unchecked(name),
            QTYPE::TYPE(TYPE::A),
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
        p.answers = records;
        p.build_bytes_vec().unwrap()
    }

    #[test]
    fn a_query_asks_recursively_for_one_name() {
        let q = query(7, "app.example", Qtype::A).unwrap();
        let p = Packet::parse(&q).unwrap();
        assert_eq!(p.id(), 7);
        assert!(p.has_flags(PacketFlag::RECURSION_DESIRED));
        assert_eq!(p.questions[0].qname.to_string(), "app.example");
        assert!(query(1, "a..b", Qtype::A).is_none());
    }

    #[test]
    fn answers_give_addresses_cname_and_the_lowest_ttl() {
        let records = vec![
            ResourceRecord::new(
                Name::new_unchecked("www.example"),
                CLASS::IN,
                300,
                RData::CNAME(CNAME(Name::new_unchecked("app.example"))),
            ),
            ResourceRecord::new(
                Name::new_unchecked("app.example"),
                CLASS::IN,
                60,
                RData::A(A {
                    address: 0x7f00_0001,
                }),
            ),
        ];
        let buf = answer(9, "www.example", records, 0);
        let r = reply(&buf, 9, "WWW.example", Qtype::A).unwrap();
        assert_eq!(r.v4, vec![Ipv4Addr::LOCALHOST]);
        assert_eq!(r.cname.as_deref(), Some("app.example"));
        assert_eq!((r.ttl, r.code, r.truncated), (Some(60), 0, false));
        // another ident, name or type is not this query's answer
        assert!(reply(&buf, 8, "www.example", Qtype::A).is_none());
        assert!(reply(&buf, 9, "other.example", Qtype::A).is_none());
        assert!(reply(&buf, 9, "www.example", Qtype::Aaaa).is_none());
        let nx = answer(3, "nx.example", Vec::new(), 3);
        assert_eq!(reply(&nx, 3, "nx.example", Qtype::A).unwrap().code, 3);
    }
}
