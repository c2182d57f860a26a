//! nginx's limits on a request head (`large_client_header_buffers N
//! SIZE`, 4 8k by default), checked on the bytes as they arrive: a request
//! line longer than one buffer is a 414, a header line longer than one
//! buffer, or a head that needs more than N buffers, a 400 ("Request Header
//! Or Cookie Too Large").

/// What a head broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadTooLarge {
    /// The request line does not fit in one buffer: 414.
    RequestLine,
    /// A header line, or the whole head, does not fit: 400.
    Headers,
}

impl HeadTooLarge {
    /// The status nginx answers with.
    pub fn status(self) -> u16 {
        match self {
            HeadTooLarge::RequestLine => 414,
            HeadTooLarge::Headers => 400,
        }
    }
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
        }
    }

    /// Starts over for the next request on the connection.
    pub fn reset(&mut self) {
        self.line = 0;
        self.total = 0;
        self.request_line = true;
        self.blank = true;
        self.done = false;
    }

    /// Whether the head's empty line was seen.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Feeds bytes; an error as soon as a limit is broken. Bytes after the
    /// end of the head (a body) are not looked at.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), HeadTooLarge> {
        for &b in bytes {
            if self.done {
                return Ok(());
            }
            if b == b'\n' {
                if self.blank && !self.request_line {
                    self.done = true;
                    continue;
                }
                // empty lines before the request line are skipped, as nginx
                // does
                if !self.blank {
                    self.request_line = false;
                }
                self.line = 0;
                self.blank = true;
                continue;
            }
            self.total += 1;
            self.line += 1;
            if b != b'\r' {
                self.blank = false;
            }
            if self.line > self.buffer {
                return Err(if self.request_line {
                    HeadTooLarge::RequestLine
                } else {
                    HeadTooLarge::Headers
                });
            }
            if self.total > self.total_limit {
                return Err(HeadTooLarge::Headers);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_normal_head_passes_and_ends() {
        let mut s = HeadScanner::new(4, 8192);
        assert_eq!(s.feed(b"GET / HTTP/1.1\r\nHost: a\r\n"), Ok(()));
        assert!(!s.done());
        assert_eq!(s.feed(b"\r\nbody bytes"), Ok(()));
        assert!(s.done());
    }

    #[test]
    fn a_long_request_line_is_a_414() {
        let mut s = HeadScanner::new(4, 100);
        let mut line = b"GET /".to_vec();
        line.extend(std::iter::repeat_n(b'a', 100));
        assert_eq!(s.feed(&line), Err(HeadTooLarge::RequestLine));
        assert_eq!(HeadTooLarge::RequestLine.status(), 414);
    }

    #[test]
    fn a_long_header_line_or_head_is_a_400() {
        let mut s = HeadScanner::new(4, 100);
        s.feed(b"GET / HTTP/1.1\r\n").unwrap();
        assert_eq!(s.feed(&[b'x'; 101]), Err(HeadTooLarge::Headers));
        let mut s = HeadScanner::new(2, 100);
        s.feed(b"GET / HTTP/1.1\r\n").unwrap();
        let line = [b'x'; 90];
        s.feed(&line).unwrap();
        s.feed(b"\r\n").unwrap();
        s.feed(&line).unwrap();
        s.feed(b"\r\n").unwrap();
        // 15 + 91 + 91 bytes so far: the next line passes 2 x 100
        assert_eq!(s.feed(&line), Err(HeadTooLarge::Headers));
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
}
