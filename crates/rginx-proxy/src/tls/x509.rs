//! What `rginx check` tells about a server's certificates beyond whether
//! they load (nginx says nothing of either): one that has expired, and one
//! whose names match none of the server's `server_name`s. Only the few
//! fields needed are read from the DER (RFC 5280): the validity's end, the
//! DNS names of the subject alternative names, the subject's common name.

use rginx_core::model::{ServerConf, ServerName};
use rustls::pki_types::CertificateDer;

use super::Findings;
use rginx_core::model::FileRef;

/// The parts of an end-entity certificate the checks read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Leaf {
    /// `notAfter`, in seconds since the epoch.
    pub not_after: i64,
    /// Its DNS names (`subjectAltName`, else the subject's CN), lowercase.
    pub names: Vec<String>,
}

/// Warns when `cert` (loaded from `file` for `server`) has expired or is
/// for names the server does not answer to.
pub fn check(
    cert: &CertificateDer<'_>,
    file: &FileRef,
    server: &ServerConf,
    findings: &mut Findings,
) {
    let Some(leaf) = parse(cert) else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if leaf.not_after < now {
        findings.warning(
            format!(
                "certificate \"{}\" expired on {}: clients will refuse it",
                file.path,
                httpdate::fmt_http_date(
                    std::time::UNIX_EPOCH
                        + std::time::Duration::from_secs(leaf.not_after.max(0) as u64)
                )
            ),
            file.span,
        );
    }
    let named = server.names.iter().any(|n| match n {
        ServerName::Exact(name) => !name.is_empty() && name != "_",
        _ => true,
    });
    if named && !leaf.names.is_empty() && !server.names.iter().any(|n| covers(&leaf.names, n)) {
        findings.warning(
            format!(
                "certificate \"{}\" is for {}, which matches no \"server_name\" of its server: clients reaching it by name will refuse it",
                file.path,
                leaf.names.join(", ")
            ),
            file.span,
        );
    }
}

/// Whether a certificate's names cover a server name.
fn covers(names: &[String], server_name: &ServerName) -> bool {
    let matches = |host: &str| {
        names.iter().any(|n| match n.strip_prefix("*.") {
            // a wildcard covers one label
            Some(base) => host
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == base),
            None => n == host,
        })
    };
    match server_name {
        ServerName::Exact(host) => matches(host),
        ServerName::LeadingWildcard { suffix, also_bare } => {
            names.iter().any(|n| n.ends_with(suffix.as_str()))
                || (*also_bare && matches(&suffix[1..]))
        }
        ServerName::TrailingWildcard(prefix) => {
            names.iter().any(|n| n.starts_with(prefix.as_str()))
        }
        // what a regex answers to cannot be listed
        ServerName::Regex(_) => true,
    }
}

/// A DER element: its tag and contents, and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[count..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The elements of a SEQUENCE's contents, in order.
fn elements(mut input: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (tag, body, rest) = element(input)?;
        input = rest;
        Some((tag, body))
    })
}

const SEQUENCE: u8 = 0x30;
/// 2.5.29.17, subjectAltName.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
/// 2.5.4.3, commonName.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// The key bits of a whole SubjectPublicKeyInfo (a private key's public
/// half).
pub fn public_key(spki_der: &[u8]) -> Option<&[u8]> {
    let (SEQUENCE, spki, _) = element(spki_der)? else {
        return None;
    };
    spki_parts(spki).map(|(_, bits)| bits)
}

/// A SubjectPublicKeyInfo's algorithm (its contents) and key bits (after
/// the BIT STRING's count of unused bits).
fn spki_parts(spki: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut parts = elements(spki);
    let (SEQUENCE, algorithm) = parts.next()? else {
        return None;
    };
    let (0x03, bits) = parts.next()? else {
        return None;
    };
    Some((algorithm, bits.get(1..)?))
}

/// The fields of a certificate's tbsCertificate after its version:
/// serial, signature, issuer, validity, subject, key, then the optional
/// ones. X.509 v1 certificates (no version) included.
fn tbs(der: &[u8]) -> Option<std::iter::Peekable<impl Iterator<Item = (u8, &[u8])>>> {
    let (SEQUENCE, cert, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = element(cert)? else {
        return None;
    };
    let mut fields = elements(tbs).peekable();
    // [0] version, when present
    if fields.peek().is_some_and(|(tag, _)| *tag == 0xa0) {
        fields.next();
    }
    Some(fields)
}

/// Reads the fields the checks need (`None`: not a certificate this
/// reader understands, and nothing is said).
pub fn parse(der: &[u8]) -> Option<Leaf> {
    let mut fields = tbs(der)?;
    let _serial = fields.next()?;
    let _signature = fields.next()?;
    let _issuer = fields.next()?;
    let (SEQUENCE, validity) = fields.next()? else {
        return None;
    };
    let mut times = elements(validity);
    let _not_before = times.next()?;
    let (time_tag, not_after) = times.next()?;
    let not_after = time(time_tag, not_after)?;
    let (SEQUENCE, subject) = fields.next()? else {
        return None;
    };
    let _spki = fields.next()?;
    let mut names = Vec::new();
    for (tag, body) in fields {
        // [3] extensions
        if tag != 0xa3 {
            continue;
        }
        let (SEQUENCE, list, _) = element(body)? else {
            return None;
        };
        for (_, extension) in elements(list) {
            let mut parts = elements(extension);
            let (0x06, oid) = parts.next()? else {
                continue;
            };
            if oid != SUBJECT_ALT_NAME {
                continue;
            }
            // critical, when present, then the OCTET STRING
            let value = parts.find(|(tag, _)| *tag == 0x04)?.1;
            let (SEQUENCE, general_names, _) = element(value)? else {
                return None;
            };
            for (tag, name) in elements(general_names) {
                // [2] dNSName
                if tag == 0x82 {
                    names.push(String::from_utf8_lossy(name).to_ascii_lowercase());
                }
            }
        }
    }
    if names.is_empty() {
        names.extend(common_name(subject));
    }
    Some(Leaf { not_after, names })
}

/// The subject's common name, if any.
fn common_name(subject: &[u8]) -> Option<String> {
    for (_, set) in elements(subject) {
        for (_, pair) in elements(set) {
            let mut parts = elements(pair);
            if parts.next()?.1 == COMMON_NAME {
                return Some(String::from_utf8_lossy(parts.next()?.1).to_ascii_lowercase());
            }
        }
    }
    None
}

/// A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) in
/// seconds since the epoch.
fn time(tag: u8, text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i64 = text.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
        }
        0x18 => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    let field = |at: usize| -> Option<i64> { rest.get(at..at + 2)?.parse().ok() };
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    let days = rginx_core::calendar::days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_seconds() {
        assert_eq!(time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(time(0x17, b"260101000000Z"), Some(1_767_225_600));
        assert_eq!(time(0x18, b"20491231235959Z"), Some(2_524_607_999));
        assert_eq!(time(0x17, b"26"), None);
    }

    #[test]
    fn certificate_names_cover_server_names_as_tls_clients_match_them() {
        let names = vec!["*.example.com".to_string(), "example.org".to_string()];
        assert!(covers(&names, &ServerName::Exact("a.example.com".into())));
        assert!(!covers(
            &names,
            &ServerName::Exact("a.b.example.com".into())
        ));
        assert!(!covers(&names, &ServerName::Exact("example.com".into())));
        assert!(covers(&names, &ServerName::Exact("example.org".into())));
        assert!(covers(&names, &ServerName::Regex("^x$".into())));
    }

    #[test]
    fn truncated_input_is_not_a_certificate() {
        assert_eq!(parse(&[0x30, 0x82, 0x01]), None);
        assert_eq!(parse(&[]), None);
    }
}

/// What `$ssl_client_*` show of a certificate (`error`: what its
/// verification found).
pub fn client_facts(
    der: &[u8],
    error: Option<(u32, &'static str)>,
) -> rginx_core::plan::ClientCertFacts {
    let mut facts = rginx_core::plan::ClientCertFacts {
        error,
        pem: pem(der),
        fingerprint: hex_lower(
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref(),
        ),
        ..Default::default()
    };
    let Some(fields) = tbs_fields(der) else {
        return facts;
    };
    let [serial, issuer, validity, subject] = fields;
    let serial = match serial.iter().position(|b| *b != 0) {
        Some(at) => &serial[at..],
        None => &serial[serial.len().saturating_sub(1)..],
    };
    facts.serial = serial.iter().map(|b| format!("{b:02X}")).collect();
    facts.s_dn = rfc2253(subject);
    facts.i_dn = rfc2253(issuer);
    facts.s_dn_legacy = oneline(subject);
    facts.i_dn_legacy = oneline(issuer);
    let mut times = elements(validity);
    if let (Some((t1, start)), Some((t2, end))) = (times.next(), times.next()) {
        let (start, end) = (time(t1, start), time(t2, end));
        facts.v_start = start.map(asn1_time).unwrap_or_default();
        facts.v_end = end.map(asn1_time).unwrap_or_default();
        facts.not_after = end.unwrap_or(0);
    }
    facts
}

/// A certificate's validity: `notBefore` and `notAfter`, in seconds since
/// the epoch.
pub fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let [_, _, validity, _] = tbs_fields(der)?;
    let mut times = elements(validity);
    let (t1, start) = times.next()?;
    let (t2, end) = times.next()?;
    Some((time(t1, start)?, time(t2, end)?))
}

/// Whether a certificate's issuer is its subject (it signed itself).
pub fn self_issued(der: &[u8]) -> bool {
    tbs_fields(der).is_some_and(|[_, issuer, _, subject]| issuer == subject)
}

/// The serial's bytes, and the issuer, validity and subject contents.
fn tbs_fields(der: &[u8]) -> Option<[&[u8]; 4]> {
    let mut fields = tbs(der)?;
    let (_, serial) = fields.next()?;
    let _signature = fields.next()?;
    let (_, issuer) = fields.next()?;
    let (_, validity) = fields.next()?;
    let (_, subject) = fields.next()?;
    Some([serial, issuer, validity, subject])
}

/// A certificate in PEM, as `PEM_write_bio_X509` writes it.
fn pem(der: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::with_capacity(der.len() * 4 / 3 + 4);
    for chunk in der.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                text.push('=');
            }
        }
    }
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// OpenSSL's short name of an attribute type.
fn short_name(oid: &[u8]) -> Option<&'static str> {
    Some(match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x09] => "street",
        [0x55, 0x04, 0x0a] => "O",
        [0x55, 0x04, 0x0b] => "OU",
        [0x55, 0x04, 0x05] => "serialNumber",
        [0x55, 0x04, 0x04] => "SN",
        [0x55, 0x04, 0x2a] => "GN",
        [0x55, 0x04, 0x0c] => "title",
        [0x55, 0x04, 0x11] => "postalCode",
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID",
        _ => return None,
    })
}

/// An OID in dotted form.
fn dotted(oid: &[u8]) -> String {
    let mut parts: Vec<u64> = Vec::new();
    let mut n: u64 = 0;
    for (i, b) in oid.iter().enumerate() {
        n = (n << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() && i < oid.len() {
                let first = (n / 40).min(2);
                parts.push(first);
                parts.push(n - first * 40);
            } else {
                parts.push(n);
            }
            n = 0;
        }
    }
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// One attribute of a Name: its type (OID bytes), its value's tag and
/// contents, and the value's DER from its tag on.
type Attribute<'a> = (&'a [u8], u8, &'a [u8], &'a [u8]);

/// The attributes of a Name, set by set.
fn attributes(name: &[u8]) -> Vec<Vec<Attribute<'_>>> {
    let mut sets = Vec::new();
    for (_, set) in elements(name) {
        let mut attrs = Vec::new();
        for (_, pair) in elements(set) {
            let Some((0x06, oid, rest)) = element(pair) else {
                continue;
            };
            let Some((tag, value, _)) = element(rest) else {
                continue;
            };
            attrs.push((oid, tag, value, rest));
        }
        sets.push(attrs);
    }
    sets
}

/// A value as UTF-8 text (BMPString as UTF-16).
fn text(tag: u8, value: &[u8]) -> String {
    match tag {
        0x1e => {
            let units: Vec<u16> = value
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        _ => String::from_utf8_lossy(value).into_owned(),
    }
}

/// A Name as `X509_NAME_print_ex` with `XN_FLAG_RFC2253` writes it: the
/// last set first, `,` between sets, `+` within one, RFC 2253's escapes,
/// bytes above 0x7f as `\XX`, unknown types as `OID=#DER`.
fn rfc2253(name: &[u8]) -> String {
    let mut out = String::new();
    for (i, set) in attributes(name).iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, (oid, tag, value, der)) in set.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            match short_name(oid) {
                Some(short) => {
                    out.push_str(short);
                    out.push('=');
                    let value = text(*tag, value);
                    let last = value.len().saturating_sub(1);
                    for (k, byte) in value.bytes().enumerate() {
                        let special =
                            matches!(byte, b',' | b'+' | b'"' | b'\\' | b'<' | b'>' | b';')
                                || (k == 0 && (byte == b'#' || byte == b' '))
                                || (k == last && byte == b' ');
                        if !(0x20..0x80).contains(&byte) {
                            out.push_str(&format!("\\{byte:02X}"));
                        } else if special {
                            out.push('\\');
                            out.push(char::from(byte));
                        } else {
                            out.push(char::from(byte));
                        }
                    }
                }
                None => {
                    out.push_str(&dotted(oid));
                    out.push_str("=#");
                    out.push_str(
                        &hex_lower(&der[..der.len() - element(der).map_or(0, |e| e.2.len())])
                            .to_uppercase(),
                    );
                }
            }
        }
    }
    out
}

/// A Name as `X509_NAME_oneline` writes it: `/C=US/O=Org/CN=name`.
fn oneline(name: &[u8]) -> String {
    let mut out = String::new();
    for set in attributes(name) {
        for (oid, tag, value, _) in set {
            out.push('/');
            match short_name(oid) {
                Some(short) => out.push_str(short),
                None => out.push_str(&dotted(oid)),
            }
            out.push('=');
            for byte in text(tag, value).bytes() {
                if !(0x20..0x7f).contains(&byte) {
                    out.push_str(&format!("\\x{byte:02X}"));
                } else {
                    out.push(char::from(byte));
                }
            }
        }
    }
    out
}

/// A time as `ASN1_TIME_print` writes it: `Dec  4 19:00:00 2026 GMT`.
fn asn1_time(secs: i64) -> String {
    let (year, month, day) = rginx_core::calendar::civil_date(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{} {day:2} {:02}:{:02}:{:02} {year} GMT",
        rginx_core::calendar::MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod client_tests {
    use super::*;

    #[test]
    fn times_print_as_openssl_prints_them() {
        assert_eq!(asn1_time(0), "Jan  1 00:00:00 1970 GMT");
        assert_eq!(asn1_time(1_796_412_045), "Dec  4 19:20:45 2026 GMT");
    }

    #[test]
    fn names_print_as_openssl_prints_them() {
        // SEQUENCE { SET { C=US }, SET { O="A, B" }, SET { CN=x } }
        let name: &[u8] = &[
            0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, b'U', b'S', 0x31,
            0x0d, 0x30, 0x0b, 0x06, 0x03, 0x55, 0x04, 0x0a, 0x0c, 0x04, b'A', b',', b' ', b'B',
            0x31, 0x0a, 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x01, b'x',
        ];
        assert_eq!(rfc2253(name), "CN=x,O=A\\, B,C=US");
        assert_eq!(oneline(name), "/C=US/O=A, B/CN=x");
        assert_eq!(
            dotted(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]),
            "1.2.840.113549"
        );
    }
}

/// What a certificate's signature covers and is: the tbsCertificate's DER,
/// the signature algorithm's contents, and the signature's bits.
pub fn signed_parts(der: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (SEQUENCE, cert, _) = element(der)? else {
        return None;
    };
    let (_, _, after_tbs) = element(cert)?;
    let tbs = &cert[..cert.len() - after_tbs.len()];
    let (SEQUENCE, algorithm, rest) = element(after_tbs)? else {
        return None;
    };
    let (0x03, signature, _) = element(rest)? else {
        return None;
    };
    Some((tbs, algorithm, signature.get(1..)?))
}

/// A certificate's key: its algorithm's contents and its bits (X.509 v1
/// certificates included, which webpki does not parse).
pub fn key_parts(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (SEQUENCE, spki) = tbs(der)?.nth(5)? else {
        return None;
    };
    spki_parts(spki)
}

/// A certificate's issuer and subject (their DER contents).
pub fn names(der: &[u8]) -> Option<(&[u8], &[u8])> {
    tbs_fields(der).map(|[_, issuer, _, subject]| (issuer, subject))
}
