//! An upstream's response head, read as nginx's proxy module reads it
//! (`ngx_http_proxy_process_status_line` and `_process_header` in
//! `src/http/modules/ngx_http_proxy_module.c`), parsed with `httparse`
//! and kept as the backend sent it: header names in their case, lines in
//! their order, repeated lines apart, values as raw bytes.

use std::ops::Range;

/// How many header lines a response head may have: `httparse` parses
/// them into an array on the stack (nginx's `proxy_buffer_size`, 4k by
/// default, leaves room for about as many short lines).
pub const MAX_HEADERS: usize = 100;

/// One header line: where its name and value are in the head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderSpan {
    /// The name, as sent.
    pub name: Range<usize>,
    /// The value, without the white space around it.
    pub value: Range<usize>,
}

/// A parsed response head; its spans point into the bytes it was read
/// from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub minor_version: u8,
    /// The reason phrase.
    pub reason: Range<usize>,
    /// The header lines in order.
    pub headers: Vec<HeaderSpan>,
    /// The length of the head, its empty line included.
    pub len: usize,
}

/// The head is not a valid HTTP/1 response head (nginx: "upstream sent
/// invalid header", or no valid status line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("upstream sent invalid header")]
pub struct InvalidHead;

/// How the response body is framed (RFC 9112 section 6.3, as nginx's
/// `ngx_http_proxy_input_filter_init` decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseBody {
    /// No body: a 204, a 304, an answer to HEAD, a length of 0.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// The chunked coding.
    Chunked,
    /// Everything until the upstream closes the connection.
    UntilClose,
}

impl ResponseHead {
    /// Parses a head from the start of `buf`: `Ok(None)` while it is
    /// incomplete.
    pub fn parse(buf: &[u8]) -> Result<Option<ResponseHead>, InvalidHead> {
        let mut lines = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut lines);
        let len = match response.parse(buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(InvalidHead),
        };
        // httparse's parts lie in `buf`, except an empty one it may give as
        // a static "" (an empty reason phrase, an empty value): that is an
        // empty span at the head's end
        let base = buf.as_ptr() as usize;
        let span = |part: &[u8]| {
            let start = (part.as_ptr() as usize).wrapping_sub(base);
            if part.is_empty() || start > buf.len() || start + part.len() > buf.len() {
                len..len
            } else {
                start..start + part.len()
            }
        };
        let reason = response.reason.map_or(len..len, |r| span(r.as_bytes()));
        let headers = response
            .headers
            .iter()
            .map(|h| HeaderSpan {
                name: span(h.name.as_bytes()),
                value: span(h.value),
            })
            .collect();
        Ok(Some(ResponseHead {
            status: response.code.ok_or(InvalidHead)?,
            minor_version: response.version.ok_or(InvalidHead)?,
            reason,
            headers,
            len,
        }))
    }

    /// The header lines as (name, value) bytes of `buf`, the bytes the
    /// head was parsed from.
    pub fn lines<'a>(&'a self, buf: &'a [u8]) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        self.headers
            .iter()
            .map(move |h| (&buf[h.name.clone()], &buf[h.value.clone()]))
    }

    /// The value of the first line named `name` (any case).
    pub fn get<'a>(&'a self, buf: &'a [u8], name: &str) -> Option<&'a [u8]> {
        self.lines(buf)
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// How the body is framed, for a request whose method was HEAD or
    /// not: nginx's rules, where `Transfer-Encoding` naming `chunked`
    /// anywhere wins over `Content-Length`, and a length it cannot read
    /// is no length at all (`ngx_atoof` gives -1: read until close).
    pub fn body(&self, buf: &[u8], head_request: bool) -> ResponseBody {
        if head_request || self.status == 204 || self.status == 304 {
            return ResponseBody::Empty;
        }
        let chunked = self.lines(buf).any(|(n, v)| {
            n.eq_ignore_ascii_case(b"transfer-encoding") && contains_ignore_case(v, b"chunked")
        });
        if chunked {
            return ResponseBody::Chunked;
        }
        match self.get(buf, "content-length").and_then(parse_length) {
            Some(0) => ResponseBody::Empty,
            Some(n) => ResponseBody::Length(n),
            None => ResponseBody::UntilClose,
        }
    }

    /// Whether the connection may carry another request once this
    /// response is read whole: HTTP/1.1 and no `Connection: close`
    /// (`ngx_http_upstream_process_connection`).
    pub fn keeps_alive(&self, buf: &[u8]) -> bool {
        self.minor_version >= 1
            && !self.lines(buf).any(|(n, v)| {
                n.eq_ignore_ascii_case(b"connection") && contains_ignore_case(v, b"close")
            })
    }
}

/// `ngx_strlcasestrn`: whether `needle` occurs in `hay`, in any case.
fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// `ngx_atoof`: decimal digits only, within `off_t`.
pub fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, &c| {
        if !c.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?
            .checked_add(u64::from(c - b'0'))
            .filter(|&n| n <= i64::MAX as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_keep_case_order_and_repeats() {
        let buf = b"HTTP/1.1 200 Fine Thanks\r\nX-Lower: a\r\nset-Cookie: 1\r\nSet-Cookie: 2\r\nContent-Length: 5\r\n\r\nhello";
        let head = ResponseHead::parse(buf).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(&buf[head.reason.clone()], b"Fine Thanks");
        assert_eq!(head.len, buf.len() - 5);
        let lines: Vec<_> = head.lines(buf).collect();
        assert_eq!(lines[1], (&b"set-Cookie"[..], &b"1"[..]));
        assert_eq!(lines[2], (&b"Set-Cookie"[..], &b"2"[..]));
        assert_eq!(head.body(buf, false), ResponseBody::Length(5));
        assert_eq!(head.body(buf, true), ResponseBody::Empty);
        assert!(head.keeps_alive(buf));
    }

    #[test]
    fn empty_parts_are_empty_spans() {
        for raw in [&b"HTTP/1.1 200 \r\nA:\r\n\r\n"[..], b"HTTP/1.1 200\r\n\r\n"] {
            let head = ResponseHead::parse(raw).unwrap().unwrap();
            assert!(head.reason.is_empty() && head.reason.end <= head.len);
            for span in &head.headers {
                assert!(span.value.end <= head.len);
            }
        }
    }

    #[test]
    fn incomplete_and_invalid_heads() {
        assert_eq!(
            ResponseHead::parse(b"HTTP/1.1 200 OK\r\nA: b\r\n"),
            Ok(None)
        );
        assert_eq!(ResponseHead::parse(b"garbage\r\n\r\n"), Err(InvalidHead));
    }

    #[test]
    fn framing_follows_nginx() {
        let body = |raw: &[u8]| ResponseHead::parse(raw).unwrap().unwrap().body(raw, false);
        assert_eq!(
            body(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\nContent-Length: 3\r\n\r\n"
            ),
            ResponseBody::Chunked
        );
        assert_eq!(
            body(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
            ResponseBody::UntilClose
        );
        assert_eq!(body(b"HTTP/1.0 200 OK\r\n\r\n"), ResponseBody::UntilClose);
        assert_eq!(
            body(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"),
            ResponseBody::Empty
        );
        let raw = b"HTTP/1.1 200 OK\r\nConnection: Close\r\n\r\n";
        assert!(!ResponseHead::parse(raw).unwrap().unwrap().keeps_alive(raw));
        let raw = b"HTTP/1.0 200 OK\r\n\r\n";
        assert!(!ResponseHead::parse(raw).unwrap().unwrap().keeps_alive(raw));
    }
}
