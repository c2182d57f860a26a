//! nginx's checks on a request head that must be made on the bytes as they
//! arrive, before an HTTP parser that would answer otherwise sees them:
//!
//! - its limits (`large_client_header_buffers N SIZE`, 4 8k by default): a
//!   request line longer than one buffer is a 414, a header line longer
//!   than one buffer, or a head that needs more than N buffers, a 400
//!   ("Request Header Or Cookie Too Large");
//! - its rules for the body's framing (`ngx_http_process_request_header`):
//!   an HTTP major version above 1 is a 505 as soon as the request line
//!   ends; a second `Content-Length` or `Transfer-Encoding` line is a 400
//!   ("client sent duplicate header line"); and once the head ends, a
//!   `Transfer-Encoding` on an HTTP/1.0 request, or `chunked` together with
//!   `Content-Length`, is a 400, and any coding but `chunked` a 501; a
//!   `Content-Length` that is not a plain decimal number is a 400. These
//!   are the requests smuggling attacks are made of: they never reach the
//!   backend.
//!
//! Values are read as nginx's `ngx_http_parse_header_line` reads them:
//! spaces (not tabs) after the colon and at the end are not part of the
//! value, so `Transfer-Encoding:\tchunked` is an unknown coding (501) and
//! `Content-Length:\t5` an invalid length (400), as in nginx.
//!
//! Once a head is complete, [`HeadScanner::body`] says how its body is
//! framed, so that a connection can be followed from one request to the
//! next.

/// Why a head is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadRefusal {
    /// The request line does not fit in one buffer: 414.
    RequestLine,
    /// A header line, or the whole head, does not fit: 400.
    Headers,
    /// A second `Content-Length` or `Transfer-Encoding` line: 400 ("client
    /// sent duplicate header line").
    Duplicate,
    /// `Transfer-Encoding: chunked` together with `Content-Length`: 400.
    LengthAndChunked,
    /// `Transfer-Encoding` on an HTTP/1.0 request: 400.
    CodingOnHttp10,
    /// A transfer coding other than `chunked`: 501.
    UnknownCoding,
    /// HTTP/2 or later on an HTTP/1 connection: 505.
    Version,
    /// A request line nginx cannot read (`PRI * HTTP/2.0`, the HTTP/2
    /// preface): 400.
    Malformed,
    /// A `Content-Length` that is not a decimal number nginx can read
    /// (`ngx_atoof`): 400.
    InvalidLength,
    /// A chunked body nginx cannot read (`ngx_http_parse_chunked`): 400.
    InvalidChunk,
    /// More header lines than `max_headers`: 400, with the page for a
    /// head too large.
    TooManyLines,
}

impl HeadRefusal {
    /// The status nginx answers with.
    pub fn status(self) -> u16 {
        match self {
            HeadRefusal::RequestLine => 414,
            HeadRefusal::Headers
            | HeadRefusal::Duplicate
            | HeadRefusal::LengthAndChunked
            | HeadRefusal::CodingOnHttp10
            | HeadRefusal::Malformed
            | HeadRefusal::InvalidLength
            | HeadRefusal::InvalidChunk
            | HeadRefusal::TooManyLines => 400,
            HeadRefusal::UnknownCoding => 501,
            HeadRefusal::Version => 505,
        }
    }
}

/// nginx's `max_headers` default (Debian's nginx 1.22 has the directive,
/// backported from 1.27): more header lines than this is a 400 ("client
/// sent too many header lines").
pub const MAX_HEADERS: usize = 1000;

/// How many bytes of a header line are kept to read its name and a short
/// value (`Transfer-Encoding: chunked` needs 26, a `Content-Length` of
/// 19 digits 35).
const LINE_PREFIX: usize = 128;

/// How many bytes at the end of the request line are kept for its version.
const LINE_TAIL: usize = 12;

/// What a head said about its body so far.
#[derive(Debug, Clone, Copy, Default)]
struct Framing {
    /// `HTTP/1.0` (or 0.9) on the request line.
    http10: bool,
    /// `Some(None)`: a value that is not a length.
    content_length: Option<Option<u64>>,
    /// `Some(true)` for `chunked`, `Some(false)` for anything else.
    transfer_encoding: Option<bool>,
}

/// How a request's body is framed, once its head is known good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// The chunked coding, to its last chunk.
    Chunked,
}

/// Follows one request head through its bytes.
#[derive(Debug, Clone)]
pub struct HeadScanner {
    buffer: usize,
    total_limit: usize,
    line: usize,
    total: usize,
    request_line: bool,
    /// Bytes seen on the current line are all `\r` (an empty line).
    blank: bool,
    done: bool,
    /// The first bytes of the current header line.
    prefix: [u8; LINE_PREFIX],
    /// The last bytes of the request line, the newest at the end.
    tail: [u8; LINE_TAIL],
    /// The request line's first space was seen.
    after_method: bool,
    /// The first byte of the request target.
    target_first: Option<u8>,
    /// Words on the request line so far (method, target, version).
    words: u8,
    /// The last byte of the request line was a space.
    in_space: bool,
    framing: Framing,
    /// Header lines counted so far, and how many are allowed.
    lines: usize,
    max_lines: usize,
}

impl HeadScanner {
    /// A scanner for `count` buffers of `size` bytes.
    pub fn new(count: u64, size: u64) -> HeadScanner {
        let buffer = usize::try_from(size).unwrap_or(usize::MAX);
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        HeadScanner {
            buffer,
            total_limit: buffer.saturating_mul(count),
            line: 0,
            total: 0,
            request_line: true,
            blank: true,
            done: false,
            prefix: [0; LINE_PREFIX],
            tail: [0; LINE_TAIL],
            after_method: false,
            target_first: None,
            words: 0,
            in_space: true,
            framing: Framing::default(),
            lines: 0,
            max_lines: MAX_HEADERS,
        }
    }

    /// At most `lines` header lines (nginx's `max_headers`).
    pub fn with_max_headers(mut self, lines: u64) -> HeadScanner {
        self.max_lines = usize::try_from(lines).unwrap_or(usize::MAX);
        self
    }

    /// Starts over for the next request on the connection.
    pub fn reset(&mut self) {
        self.line = 0;
        self.total = 0;
        self.request_line = true;
        self.blank = true;
        self.done = false;
        self.after_method = false;
        self.target_first = None;
        self.words = 0;
        self.in_space = true;
        self.framing = Framing::default();
        self.lines = 0;
    }

    /// Whether the head's empty line was seen.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Whether no byte of a head has been fed since the start or the last
    /// [`reset`](HeadScanner::reset).
    pub fn untouched(&self) -> bool {
        self.total == 0 && self.request_line && self.blank && !self.done
    }

    /// Feeds bytes; an error as soon as the head is known to be refused.
    /// Returns how many bytes belong to the head: all of them, or those up
    /// to its empty line (what follows, a body or the next request, is not
    /// looked at).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<usize, HeadRefusal> {
        if self.done {
            return Ok(0);
        }
        // a line at a time: the bytes up to its `\n` in one step, then the
        // `\n`
        let mut at = 0;
        while at < bytes.len() {
            let rest = &bytes[at..];
            let end = memchr::memchr(b'\n', rest);
            let segment = &rest[..end.unwrap_or(rest.len())];
            // a header line whose bytes are all here is read from them,
            // not from a copy
            let whole_line =
                (end.is_some() && self.line == 0 && !self.request_line).then_some(segment);
            if !segment.is_empty() {
                self.take_segment(segment, whole_line.is_some())?;
            }
            let Some(end) = end else {
                break;
            };
            at += end + 1;
            if self.blank && !self.request_line {
                self.done = true;
                self.head_ended()?;
                return Ok(at);
            }
            // empty lines before the request line are skipped, as nginx
            // does
            if !self.blank {
                self.line_ended(whole_line)?;
                if self.request_line && self.words == 2 {
                    // `GET /a` without a version: an HTTP/0.9 request,
                    // which has no header lines
                    self.done = true;
                    self.framing.http10 = true;
                    return Ok(at);
                }
                self.request_line = false;
            }
            self.line = 0;
            self.blank = true;
        }
        Ok(bytes.len())
    }

    /// Bytes of the current line with no `\n` among them.
    fn take_segment(&mut self, segment: &[u8], whole_line: bool) -> Result<(), HeadRefusal> {
        // the first byte past either limit refuses the head; the line's
        // limit is checked first, as nginx finds a line too long before it
        // looks for another buffer
        let line_room = self.buffer.saturating_sub(self.line);
        let total_room = self.total_limit.saturating_sub(self.total);
        if segment.len() > line_room.min(total_room) {
            return Err(if line_room <= total_room && self.request_line {
                HeadRefusal::RequestLine
            } else {
                HeadRefusal::Headers
            });
        }
        if self.request_line {
            let n = segment.len();
            if n >= LINE_TAIL {
                self.tail.copy_from_slice(&segment[n - LINE_TAIL..]);
            } else {
                self.tail.copy_within(n.., 0);
                self.tail[LINE_TAIL - n..].copy_from_slice(segment);
            }
            self.scan_request_line(segment);
        } else if !whole_line {
            if let Some(free) = self.prefix.get_mut(self.line..) {
                let n = free.len().min(segment.len());
                free[..n].copy_from_slice(&segment[..n]);
            }
        }
        self.total += segment.len();
        self.line += segment.len();
        if self.blank && segment.iter().any(|&b| b != b'\r') {
            self.blank = false;
        }
        Ok(())
    }

    /// Follows the request line's words through `segment`: where the
    /// method ends, the target's first byte, and whether there are more
    /// than two words (the one question asked of their count). Inside a
    /// word nothing changes until a space or CR, so the scan jumps there.
    fn scan_request_line(&mut self, segment: &[u8]) {
        let mut at = 0;
        while at < segment.len() {
            if self.words >= 3 && self.target_first.is_some() {
                // nothing left to learn from this line
                return;
            }
            if !self.in_space {
                match memchr::memchr2(b' ', b'\r', &segment[at..]) {
                    Some(skip) => at += skip,
                    None => return,
                }
            }
            let b = segment[at];
            if !self.after_method {
                self.after_method = b == b' ';
            } else if self.target_first.is_none() && b != b' ' {
                self.target_first = Some(b);
            }
            let space = b == b' ' || b == b'\r';
            if self.in_space && !space {
                self.words = self.words.saturating_add(1);
            }
            self.in_space = space;
            at += 1;
        }
    }

    /// A request or header line ended (it is not empty); `whole` is the
    /// line when it came in one piece, else its first bytes are in the
    /// prefix.
    fn line_ended(&mut self, whole: Option<&[u8]>) -> Result<(), HeadRefusal> {
        if self.request_line {
            return self.request_line_ended();
        }
        let kept = match whole {
            Some(line) => &line[..line.len().min(LINE_PREFIX)],
            None => &self.prefix[..self.line.min(LINE_PREFIX)],
        };
        let colon = memchr::memchr(b':', kept);
        let name = &kept[..colon.unwrap_or(kept.len())];
        // nginx counts the lines it keeps: not those whose name it drops
        // as invalid (ngx_http_process_request_headers)
        if name
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        {
            self.lines += 1;
            if self.lines > self.max_lines {
                return Err(HeadRefusal::TooManyLines);
            }
        }
        let Some(colon) = colon else {
            return Ok(());
        };
        // a value cut off by the prefix is longer than any nginx takes
        let whole = self.line <= LINE_PREFIX;
        let value = nginx_value(&kept[colon + 1..]);
        if name.eq_ignore_ascii_case(b"content-length") {
            if self.framing.content_length.is_some() {
                return Err(HeadRefusal::Duplicate);
            }
            self.framing.content_length =
                Some(crate::response::parse_length(value).filter(|_| whole));
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if self.framing.transfer_encoding.is_some() {
                return Err(HeadRefusal::Duplicate);
            }
            self.framing.transfer_encoding = Some(whole && value.eq_ignore_ascii_case(b"chunked"));
        }
        Ok(())
    }

    /// The version at the end of the request line: `HTTP/2.0` and later
    /// are refused at once, HTTP/1.0 noted.
    fn request_line_ended(&mut self) -> Result<(), HeadRefusal> {
        let kept = self.line.min(LINE_TAIL);
        let tail = self.tail[LINE_TAIL - kept..].trim_ascii_end();
        let Some(at) = tail.iter().rposition(|&c| c == b' ') else {
            return Ok(());
        };
        let Some(version) = tail[at + 1..].strip_prefix(b"HTTP/") else {
            return Ok(());
        };
        let mut parts = version.splitn(2, |&c| c == b'.');
        let number = |p: Option<&[u8]>| -> Option<u32> {
            u32::try_from(crate::response::parse_length(p?)?).ok()
        };
        let (major, minor) = (number(parts.next()), number(parts.next()));
        // nginx reads the target before the version: one that is neither a
        // path nor an absolute URI (`PRI * HTTP/2.0`) is a 400 first
        let target_ok = self
            .target_first
            .is_some_and(|c| c == b'/' || c.is_ascii_alphabetic());
        match (major, minor) {
            (Some(major), Some(_)) if major > 1 && !target_ok => Err(HeadRefusal::Malformed),
            (Some(major), Some(_)) if major > 1 => Err(HeadRefusal::Version),
            (Some(major), Some(minor)) => {
                self.framing.http10 = major == 0 || (major == 1 && minor == 0);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// nginx's checks once every header line is in, in the order of
    /// `ngx_http_process_request_header`.
    fn head_ended(&self) -> Result<(), HeadRefusal> {
        let f = self.framing;
        if f.content_length == Some(None) {
            return Err(HeadRefusal::InvalidLength);
        }
        match f.transfer_encoding {
            Some(_) if f.http10 => Err(HeadRefusal::CodingOnHttp10),
            Some(true) if f.content_length.is_some() => Err(HeadRefusal::LengthAndChunked),
            Some(false) => Err(HeadRefusal::UnknownCoding),
            _ => Ok(()),
        }
    }

    /// How the body of the head just read is framed (`None` before the
    /// head is complete).
    pub fn body(&self) -> Option<BodyFraming> {
        if !self.done {
            return None;
        }
        Some(
            match (self.framing.transfer_encoding, self.framing.content_length) {
                (Some(true), _) => BodyFraming::Chunked,
                (_, Some(Some(0))) | (_, None) => BodyFraming::None,
                (_, Some(Some(n))) => BodyFraming::Length(n),
                // refused by head_ended
                (_, Some(None)) => BodyFraming::None,
            },
        )
    }
}

/// A header value as nginx keeps it: without the spaces after the colon
/// and at the end (tabs stay: `ngx_http_parse_header_line` skips only
/// spaces).
fn nginx_value(raw: &[u8]) -> &[u8] {
    crate::request::trim_spaces(raw.strip_suffix(b"\r").unwrap_or(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the request line's scan learns, byte by byte, as it did before
    /// it jumped over words: (method ended, target's first byte, words up
    /// to 3).
    fn request_line_by_bytes(line: &[u8]) -> (bool, Option<u8>, u8) {
        let (mut after_method, mut target_first, mut words, mut in_space) =
            (false, None, 0u8, true);
        for &b in line {
            if !after_method {
                after_method = b == b' ';
            } else if target_first.is_none() && b != b' ' {
                target_first = Some(b);
            }
            let space = b == b' ' || b == b'\r';
            if in_space && !space {
                words = words.saturating_add(1);
            }
            in_space = space;
        }
        (after_method, target_first, words.min(3))
    }

    #[test]
    fn the_request_line_scan_learns_what_a_byte_by_byte_scan_does() {
        // lines of spaces, CRs and word bytes, fed whole and in two pieces
        let alphabet = [b' ', b'\r', b'G', b'/', b'H'];
        let mut seed = 0x2545_f491_u64;
        for _ in 0..20_000 {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let len = (seed >> 59) as usize;
            let line: Vec<u8> = (0..len)
                .map(|i| alphabet[((seed >> (i * 3 % 56)) % 5) as usize])
                .collect();
            let cut = (seed >> 40) as usize % (len + 1);
            let mut scanner = HeadScanner::new(4, 8192);
            scanner.scan_request_line(&line[..cut]);
            scanner.scan_request_line(&line[cut..]);
            let got = (
                scanner.after_method,
                scanner.target_first,
                scanner.words.min(3),
            );
            assert_eq!(got, request_line_by_bytes(&line), "{line:?} cut at {cut}");
        }
    }

    #[test]
    fn a_normal_head_passes_and_ends() {
        let mut s = HeadScanner::new(4, 8192);
        assert_eq!(s.feed(b"GET / HTTP/1.1\r\nHost: a\r\n"), Ok(25));
        assert!(!s.done());
        assert_eq!(s.feed(b"\r\nbody bytes"), Ok(2));
        assert!(s.done());
    }

    #[test]
    fn a_long_request_line_is_a_414() {
        let mut s = HeadScanner::new(4, 100);
        let mut line = b"GET /".to_vec();
        line.extend(std::iter::repeat_n(b'a', 100));
        assert_eq!(s.feed(&line), Err(HeadRefusal::RequestLine));
        assert_eq!(HeadRefusal::RequestLine.status(), 414);
    }

    #[test]
    fn a_long_header_line_or_head_is_a_400() {
        let mut s = HeadScanner::new(4, 100);
        s.feed(b"GET / HTTP/1.1\r\n").unwrap();
        assert_eq!(s.feed(&[b'x'; 101]), Err(HeadRefusal::Headers));
        let mut s = HeadScanner::new(2, 100);
        s.feed(b"GET / HTTP/1.1\r\n").unwrap();
        let line = [b'x'; 90];
        s.feed(&line).unwrap();
        s.feed(b"\r\n").unwrap();
        s.feed(&line).unwrap();
        s.feed(b"\r\n").unwrap();
        // 15 + 91 + 91 bytes so far: the next line passes 2 x 100
        assert_eq!(s.feed(&line), Err(HeadRefusal::Headers));
    }

    #[test]
    fn ambiguous_framing_is_refused_as_nginx_does() {
        let refused = |head: &[u8]| HeadScanner::new(4, 8192).feed(head).err();
        assert_eq!(refused(b"GET / HTTP/2.0\r\n"), Some(HeadRefusal::Version));
        assert_eq!(
            refused(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            Some(HeadRefusal::Malformed)
        );
        assert_eq!(refused(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"), None);
        assert_eq!(
            refused(b"POST / HTTP/1.1\r\nContent-Length: 1\r\ncontent-length: 1\r\n"),
            Some(HeadRefusal::Duplicate)
        );
        assert_eq!(
            refused(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n"),
            Some(HeadRefusal::LengthAndChunked)
        );
        assert_eq!(
            refused(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            Some(HeadRefusal::UnknownCoding)
        );
        assert_eq!(
            refused(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Some(HeadRefusal::CodingOnHttp10)
        );
        assert_eq!(
            refused(b"POST / HTTP/1.1\r\nTransfer-Encoding:  CHUNKED \r\n\r\n"),
            None
        );
        assert_eq!(HeadRefusal::UnknownCoding.status(), 501);
        assert_eq!(HeadRefusal::Version.status(), 505);
    }

    #[test]
    fn more_than_max_headers_lines_are_refused() {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        for _ in 0..MAX_HEADERS {
            head.extend_from_slice(b"X: 1\r\n");
        }
        let mut s = HeadScanner::new(4, 8192);
        assert!(s.feed(&head).is_ok());
        // lines nginx drops for their names are not counted
        assert!(s.feed(b"X@: 1\r\n").is_ok());
        assert_eq!(s.feed(b"Y: 1\r\n"), Err(HeadRefusal::TooManyLines));
    }

    #[test]
    fn an_http09_request_line_is_a_whole_head() {
        let mut s = HeadScanner::new(4, 8192);
        assert_eq!(s.feed(b"GET /a\r\nmore"), Ok(8));
        assert_eq!(s.body(), Some(BodyFraming::None));
    }

    #[test]
    fn leading_empty_lines_are_skipped_and_reset_starts_over() {
        let mut s = HeadScanner::new(4, 8192);
        s.feed(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n").unwrap();
        assert!(s.done());
        s.reset();
        assert!(!s.done());
        s.feed(b"GET /next HTTP/1.1\r\nA: b\r\n\r\n").unwrap();
        assert!(s.done());
    }

    #[test]
    fn values_are_read_as_nginx_reads_them() {
        let refused = |head: &[u8]| HeadScanner::new(4, 8192).feed(head).err();
        assert_eq!(
            refused(b"POST / HTTP/1.1\r\nTransfer-Encoding:\tchunked\r\n\r\n"),
            Some(HeadRefusal::UnknownCoding)
        );
        assert_eq!(
            refused(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\t\r\n\r\n"),
            Some(HeadRefusal::UnknownCoding)
        );
        for bad in ["\t5", "-1", "+3", "abc", "3, 3", "", "99999999999999999999"] {
            let head = format!("POST / HTTP/1.1\r\nContent-Length: {bad}\r\n\r\n");
            assert_eq!(
                refused(head.as_bytes()),
                Some(HeadRefusal::InvalidLength),
                "{bad:?}"
            );
        }
        assert_eq!(HeadRefusal::InvalidLength.status(), 400);
    }

    #[test]
    fn a_complete_head_tells_its_body_framing() {
        let body = |head: &[u8]| {
            let mut s = HeadScanner::new(4, 8192);
            s.feed(head).unwrap();
            s.body()
        };
        assert_eq!(body(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
        assert_eq!(
            body(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(BodyFraming::None)
        );
        assert_eq!(
            body(b"POST / HTTP/1.1\r\ncontent-length:  12  \r\n\r\n"),
            Some(BodyFraming::Length(12))
        );
        assert_eq!(
            body(b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            Some(BodyFraming::None)
        );
        assert_eq!(
            body(b"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n"),
            Some(BodyFraming::Chunked)
        );
    }
}
