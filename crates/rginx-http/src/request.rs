//! A client's request head, once [`crate::head_scan`] found it whole and
//! within nginx's limits, parsed in place: the request line with
//! `httparse`, the header lines as nginx's `ngx_http_parse_header_line`
//! reads them (in `src/http/ngx_http_parse.c`). Names keep the client's
//! case, lines their order, values their raw bytes:
//!
//! - a line that starts with a space, a tab or a colon (obsolete line
//!   folding included), or whose name holds a control byte or a space, is
//!   a 400 ("client sent invalid header line");
//! - a name with other characters nginx does not take (`@`, `.`, `_`)
//!   passes here; whether it reaches the backend is the configuration's
//!   (`ignore_invalid_headers`, `underscores_in_headers`);
//! - a line without a colon is a name with an empty value;
//! - only spaces around a value are not part of it (tabs and control
//!   bytes other than NUL, CR and LF are);
//! - NUL anywhere, or a CR not followed by LF, is a 400.

/// Request lines up to this long are copied to the stack for `httparse`
/// (which needs the head's empty line after them).
const STACK_LINE: usize = 512;

/// A parsed request head, borrowing the bytes it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// The method.
    pub method: &'a str,
    /// The request target as sent.
    pub target: &'a str,
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub minor_version: u8,
    /// The header lines: name as sent, value without the white space
    /// around it.
    pub headers: Vec<(&'a str, &'a [u8])>,
}

/// The head is not one nginx reads as a request (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRequest {
    /// The request line.
    #[error("client sent invalid request")]
    Line,
    /// A header line: where it starts in the head, and where the byte
    /// nginx stops at is (nginx logs the line up to it and the byte).
    #[error("client sent invalid header line")]
    Header {
        /// The line's first byte.
        start: usize,
        /// The offending byte's place.
        at: usize,
    },
}

impl<'a> RequestHead<'a> {
    /// Parses a complete head (through its empty line).
    pub fn parse(head: &'a [u8]) -> Result<RequestHead<'a>, InvalidRequest> {
        // the request line, after the empty lines nginx skips
        let start = head
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .ok_or(InvalidRequest::Line)?;
        let line_end = memchr::memchr(b'\n', &head[start..])
            .map(|i| start + i + 1)
            .ok_or(InvalidRequest::Line)?;
        let (method, target, minor_version) = request_line(&head[..line_end])?;
        let headers = header_lines(&head[line_end..]).map_err(|e| match e {
            InvalidRequest::Header { start, at } => InvalidRequest::Header {
                start: start + line_end,
                at: at + line_end,
            },
            line => line,
        })?;
        Ok(RequestHead {
            method,
            target,
            minor_version,
            headers,
        })
    }

    /// The value of the first line named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// Whether the request asks for `100 Continue` (HTTP/1.1 and
    /// `Expect: 100-continue`, as `ngx_http_test_expect` checks).
    pub fn expects_continue(&self) -> bool {
        self.minor_version >= 1
            && self
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"))
    }
}

/// Parses the request line (`line`, through its LF) with `httparse`,
/// on a copy that ends the head right after it; the parts returned are
/// `line`'s own bytes.
fn request_line(line: &[u8]) -> Result<(&str, &str, u8), InvalidRequest> {
    let text = trim_line_end(line);
    // nginx reads any HTTP/1 minor version up to 99 (`HTTP/1.2` is HTTP/1
    // to it, served as 1.1); httparse knows 1.0 and 1.1 only, so a later
    // minor is given to it as 1.1 and kept for the head
    let later_minor = later_http1_minor(text);
    let parsed_len = match later_minor {
        Some((at, _)) => at + 1,
        None => text.len(),
    };
    let mut stack = [0u8; STACK_LINE];
    let mut heap = Vec::new();
    let copy: &mut [u8] = if parsed_len + 4 <= STACK_LINE {
        &mut stack[..parsed_len + 4]
    } else {
        heap.resize(parsed_len + 4, 0);
        &mut heap
    };
    copy[..parsed_len].copy_from_slice(&text[..parsed_len]);
    if let Some((at, _)) = later_minor {
        copy[at] = b'1';
    }
    copy[parsed_len..].copy_from_slice(b"\r\n\r\n");
    let copy: &[u8] = copy;
    let mut none = [];
    let mut request = httparse::Request::new(&mut none);
    match request.parse(copy) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(InvalidRequest::Line),
    }
    let (Some(method), Some(path), Some(minor)) = (request.method, request.path, request.version)
    else {
        return Err(InvalidRequest::Line);
    };
    // the same bytes in `line`, at the same offsets
    // (an empty part httparse may give as a static "", outside the copy:
    // no method or target nginx would take)
    let own = |part: &str| -> Result<&str, InvalidRequest> {
        let at = (part.as_ptr() as usize)
            .checked_sub(copy.as_ptr() as usize)
            .filter(|_| !part.is_empty())
            .ok_or(InvalidRequest::Line)?;
        let bytes = line.get(at..at + part.len()).ok_or(InvalidRequest::Line)?;
        std::str::from_utf8(bytes).map_err(|_| InvalidRequest::Line)
    };
    let minor = later_minor.map_or(minor, |(_, m)| m);
    Ok((own(method)?, own(path)?, minor))
}

/// A request line without its line end.
fn trim_line_end(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|&b| b != b'\r' && b != b'\n')
        .map_or(0, |e| e + 1);
    &line[..end]
}

/// For a request line ending in `HTTP/1.N` with N from 2 to 99: where N
/// starts, and N.
fn later_http1_minor(text: &[u8]) -> Option<(usize, u8)> {
    let at = text.windows(7).rposition(|w| w == b"HTTP/1.")? + 7;
    let digits = &text[at..];
    if digits.is_empty() || digits.len() > 2 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let minor = digits.iter().fold(0u8, |n, d| n * 10 + (d - b'0'));
    (minor >= 2 && text[..at - 7].ends_with(b" ")).then_some((at, minor))
}

/// The header lines as nginx reads them (`bytes`: from the first header
/// line through the head's empty line).
fn header_lines(bytes: &[u8]) -> Result<Vec<(&str, &[u8])>, InvalidRequest> {
    let mut headers = Vec::with_capacity(16);
    let mut from = 0;
    loop {
        let rest = &bytes[from..];
        let end = memchr::memchr(b'\n', rest).ok_or(InvalidRequest::Line)?;
        let start = from;
        let line = &rest[..end];
        from += end + 1;
        let bad = |at: usize| InvalidRequest::Header {
            start,
            at: start + at,
        };
        // CRs before the LF end the line (nginx: `sw_almost_done` takes
        // more than one); a CR anywhere else is invalid
        let line = match line.iter().rposition(|&b| b != b'\r') {
            None => return Ok(headers),
            Some(last) => &line[..=last],
        };
        if let Some(at) = memchr::memchr2(b'\r', 0, line) {
            return Err(bad(at));
        }
        let first = line[0];
        if first <= 0x20 || first == 0x7f || first == b':' {
            return Err(bad(0));
        }
        let colon = memchr::memchr(b':', line);
        let name = &line[..colon.unwrap_or(line.len())];
        if let Some(at) = name.iter().position(|&b| b <= 0x20 || b == 0x7f) {
            return Err(bad(at));
        }
        let value = match colon {
            None => &line[line.len()..],
            Some(c) => trim_spaces(&line[c + 1..]),
        };
        // a name that is not UTF-8 is one nginx never takes as valid: it
        // goes where ignore_invalid_headers sends such lines
        if let Ok(name) = std::str::from_utf8(name) {
            headers.push((name, value));
        }
    }
}

/// A value without the spaces around it (tabs stay, as in nginx).
pub(crate) fn trim_spaces(value: &[u8]) -> &[u8] {
    let start = value.iter().position(|&b| b != b' ').unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(start, |e| e + 1);
    &value[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_keep_names_order_and_raw_values() {
        let raw = b"GET /a?b HTTP/1.1\r\nHost: h\r\nx-Lower: 1\r\nX-Dup: a\r\nX-Dup: \xff\r\n\r\n";
        let head = RequestHead::parse(raw).unwrap();
        assert_eq!(
            (head.method, head.target, head.minor_version),
            ("GET", "/a?b", 1)
        );
        assert_eq!(
            head.headers,
            vec![
                ("Host", &b"h"[..]),
                ("x-Lower", b"1"),
                ("X-Dup", b"a"),
                ("X-Dup", b"\xff"),
            ]
        );
    }

    #[test]
    fn header_lines_are_read_as_nginx_reads_them() {
        let head = RequestHead::parse(
            b"GET / HTTP/1.0\r\nX@At: 1\r\nNoColon\r\nT:\tv\x01 \r\nB:  2  \r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            head.headers,
            vec![
                ("X@At", &b"1"[..]),
                ("NoColon", b""),
                ("T", b"\tv\x01"),
                ("B", b"2")
            ]
        );
        for bad in [
            &b"GET / HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nA : 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nA\t: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\n: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: a\rb\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: a\0b\r\n\r\n",
        ] {
            assert!(
                matches!(RequestHead::parse(bad), Err(InvalidRequest::Header { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn many_lines_fit() {
        let mut raw = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..500 {
            raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        assert_eq!(RequestHead::parse(&raw).unwrap().headers.len(), 500);
        assert_eq!(
            RequestHead::parse(b"GET\r\n\r\n"),
            Err(InvalidRequest::Line)
        );
        assert_eq!(
            RequestHead::parse(b"GET / HTTP/1.1\r\nA: 1\r\nB : 2\r\n\r\n"),
            Err(InvalidRequest::Header { start: 22, at: 23 })
        );
    }

    #[test]
    fn later_http1_minors_are_read_as_nginx_reads_them() {
        let head = RequestHead::parse(b"GET /a HTTP/1.2\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!((head.target, head.minor_version), ("/a", 2));
        let head = RequestHead::parse(b"GET /a HTTP/1.10\r\n\r\n").unwrap();
        assert_eq!(head.minor_version, 10);
        assert_eq!(
            RequestHead::parse(b"GET /a HTTP/1.100\r\n\r\n"),
            Err(InvalidRequest::Line)
        );
        assert_eq!(
            RequestHead::parse(b"GET /a HTTP/1.1\r\n\r\n")
                .unwrap()
                .minor_version,
            1
        );
    }

    #[test]
    fn expect_continue_is_http11_only() {
        let h = |raw: &'static [u8]| RequestHead::parse(raw).unwrap().expects_continue();
        assert!(h(b"POST / HTTP/1.1\r\nExpect: 100-Continue\r\n\r\n"));
        assert!(!h(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"));
    }
}
