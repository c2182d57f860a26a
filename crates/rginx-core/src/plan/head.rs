//! The checks nginx makes on a request head before anything else: the
//! method, the request line, header names.

use super::*;

pub(super) fn check_head(req: &RequestHead<'_>) -> Result<(), u16> {
    // methods are upper-case letters, `_` and `-`
    if req.method.is_empty()
        || !req
            .method
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'_' || b == b'-')
    {
        return Err(400);
    }
    let count = |name: &str| {
        req.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    };
    for unique in ["host", "content-length", "transfer-encoding"] {
        if count(unique) > 1 {
            return Err(400);
        }
    }
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let length = header("content-length");
    if let Some(v) = length {
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) || v.parse::<u64>().is_err() {
            return Err(400);
        }
    }
    if let Some(te) = header("transfer-encoding") {
        if req.minor_version == 0 {
            return Err(400);
        }
        if !te.eq_ignore_ascii_case("chunked") {
            return Err(501);
        }
        if length.is_some() {
            return Err(400);
        }
    }
    Ok(())
}

/// Splits a request line the way nginx reads it: `METHOD SP TARGET SP
/// HTTP/1.x`. Returns the status nginx answers for a line it rejects
/// (400, or 505 for HTTP versions above 1.x).
pub fn parse_request_line(line: &str) -> Result<(&str, &str, u8), u16> {
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    let Some(digits) = version.strip_prefix("HTTP/") else {
        return Err(400);
    };
    let Some((major, minor)) = digits.split_once('.') else {
        return Err(400);
    };
    let (Ok(major), Ok(minor)) = (major.parse::<u32>(), minor.parse::<u32>()) else {
        return Err(400);
    };
    if major > 1 {
        return Err(505);
    }
    if major == 0 {
        return Err(400);
    }
    Ok((method, target, u8::try_from(minor.min(9)).unwrap_or(9)))
}

/// nginx's header-name check at parse time: letters, digits, `-`, and `_`
/// only with `underscores_in_headers on`; anything else is dropped while
/// `ignore_invalid_headers` is on.
pub(super) fn header_name_ok(name: &str, underscores: bool, ignore_invalid: bool) -> bool {
    if !ignore_invalid {
        return true;
    }
    // one table lookup a byte: 1 for letters, digits and `-`, 2 for `_`
    const CLASS: [u8; 256] = {
        let mut class = [0u8; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            if c.is_ascii_alphanumeric() || c == b'-' {
                class[b] = 1;
            }
            b += 1;
        }
        class[b'_' as usize] = 2;
        class
    };
    let allowed = if underscores { 3 } else { 1 };
    name.bytes().all(|b| CLASS[b as usize] & allowed != 0)
}
