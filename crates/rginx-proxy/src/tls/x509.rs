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

/// The public key of a certificate: its SubjectPublicKeyInfo's BIT STRING
/// (X.509 v1 certificates included, which OpenSSL loads and webpki does
/// not parse).
pub fn certificate_key(der: &[u8]) -> Option<&[u8]> {
    let (SEQUENCE, cert, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = element(cert)? else {
        return None;
    };
    let mut fields = elements(tbs).peekable();
    if fields.peek().is_some_and(|(tag, _)| *tag == 0xa0) {
        fields.next();
    }
    // serial, signature, issuer, validity, subject, then the key
    let (SEQUENCE, spki) = fields.nth(5)? else {
        return None;
    };
    spki_key(spki)
}

/// The BIT STRING of a SubjectPublicKeyInfo's contents.
fn spki_key(spki: &[u8]) -> Option<&[u8]> {
    let mut parts = elements(spki);
    let _algorithm = parts.next()?;
    match parts.next()? {
        (0x03, bits) => Some(bits),
        _ => None,
    }
}

/// The BIT STRING of a whole SubjectPublicKeyInfo (a key's).
pub fn public_key(spki_der: &[u8]) -> Option<&[u8]> {
    let (SEQUENCE, spki, _) = element(spki_der)? else {
        return None;
    };
    spki_key(spki)
}

/// Reads the fields the checks need (`None`: not a certificate this
/// reader understands, and nothing is said).
pub fn parse(der: &[u8]) -> Option<Leaf> {
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
    // days from the civil date (Howard Hinnant's algorithm)
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
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
