//! Follows a client connection's bytes from one request to the next: the
//! head (through [`HeadScanner`], nginx's checks and limits), then its body
//! as the head frames it (a length, or the chunked coding to its last
//! chunk), then nothing more until the request is answered.
//!
//! A connection reader uses it to hand an HTTP parser exactly one request
//! at a time: the bytes of the current request pass, anything after them
//! (a pipelined head, or a tunnel's first bytes after an upgrade) is held
//! back until the answer is out, and then goes through the checks as the
//! next head. So every head is checked, pipelined or not, as nginx checks
//! every head it reads (`ngx_http_set_keepalive` reads a pipelined request
//! only once the previous one is finalized).

use crate::chunked::ChunkedDecoder;
use crate::head_scan::{BodyFraming, HeadRefusal, HeadScanner};

/// Where the current request is.
#[derive(Debug, Clone)]
enum Part {
    /// Its head (or the empty lines before it).
    Head,
    /// This many body bytes are still to come.
    Length(u64),
    /// A chunked body.
    Chunked(ChunkedDecoder),
    /// All of it has been read.
    Complete,
}

/// What [`RequestFramer::advance`] found in a run of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advance {
    /// How many bytes, from the start, belong to the current request.
    pub taken: usize,
    /// The current request has been read whole: what follows `taken`
    /// belongs to the next one (or to a tunnel).
    pub complete: bool,
}

/// Follows the requests of one client connection.
#[derive(Debug, Clone)]
pub struct RequestFramer {
    scanner: HeadScanner,
    part: Part,
}

impl RequestFramer {
    /// A framer whose heads are checked by `scanner`.
    pub fn new(scanner: HeadScanner) -> RequestFramer {
        RequestFramer {
            scanner,
            part: Part::Head,
        }
    }

    /// Whether the current request has been read whole.
    pub fn complete(&self) -> bool {
        matches!(self.part, Part::Complete)
    }

    /// Whether no byte of a request has come yet (waiting for a head).
    pub fn between_requests(&self) -> bool {
        matches!(self.part, Part::Head) && self.scanner.untouched()
    }

    /// The request was answered: the next bytes start the next head.
    pub fn next_request(&mut self) {
        self.scanner.reset();
        self.part = Part::Head;
    }

    /// Reads `bytes` as the continuation of the current request. A head
    /// nginx refuses is an error as soon as it is known; a chunked body
    /// nginx cannot read is an error too (the bytes before it are
    /// `taken`, so a parser sees the body end short).
    pub fn advance(&mut self, bytes: &[u8]) -> Result<Advance, (usize, HeadRefusal)> {
        let mut at = 0;
        loop {
            match &mut self.part {
                Part::Head => {
                    let used = self.scanner.feed(&bytes[at..]).map_err(|r| (at, r))?;
                    at += used;
                    let Some(framing) = self.scanner.body() else {
                        return Ok(Advance {
                            taken: at,
                            complete: false,
                        });
                    };
                    self.part = match framing {
                        BodyFraming::None => Part::Complete,
                        BodyFraming::Length(n) => Part::Length(n),
                        BodyFraming::Chunked => Part::Chunked(ChunkedDecoder::new()),
                    };
                }
                Part::Length(left) => {
                    let rest = (bytes.len() - at) as u64;
                    let take = rest.min(*left);
                    *left -= take;
                    at += take as usize;
                    if *left == 0 {
                        self.part = Part::Complete;
                    } else {
                        return Ok(Advance {
                            taken: at,
                            complete: false,
                        });
                    }
                }
                Part::Chunked(decoder) => {
                    let (used, done) = decoder
                        .skip(&bytes[at..])
                        .map_err(|_| (at, HeadRefusal::InvalidChunk))?;
                    at += used;
                    if done {
                        self.part = Part::Complete;
                    } else {
                        return Ok(Advance {
                            taken: at,
                            complete: false,
                        });
                    }
                }
                Part::Complete => {
                    return Ok(Advance {
                        taken: at,
                        complete: true,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framer() -> RequestFramer {
        RequestFramer::new(HeadScanner::new(4, 8192))
    }

    #[test]
    fn a_request_without_a_body_ends_with_its_head() {
        let mut f = framer();
        let two = b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\n";
        let a = f.advance(two).unwrap();
        assert_eq!(
            a,
            Advance {
                taken: 28,
                complete: true
            }
        );
        // nothing more is taken until the next request starts
        assert_eq!(f.advance(&two[28..]).unwrap().taken, 0);
        f.next_request();
        assert_eq!(
            f.advance(&two[28..]).unwrap(),
            Advance {
                taken: 17,
                complete: false
            }
        );
    }

    #[test]
    fn bodies_are_followed_to_their_end_in_any_pieces() {
        let stream = b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcPOST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\nGET /";
        for piece in [1, 3, 7, 1000] {
            let mut f = framer();
            let mut at = 0;
            let mut ends = Vec::new();
            while at < stream.len() {
                let end = (at + piece).min(stream.len());
                let a = f.advance(&stream[at..end]).unwrap();
                at += a.taken;
                if a.complete {
                    ends.push(at);
                    f.next_request();
                }
            }
            assert_eq!(ends, vec![41, 99], "pieces of {piece}");
        }
    }

    #[test]
    fn a_bad_pipelined_head_is_refused_where_it_starts() {
        let mut f = framer();
        let first = b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n";
        assert!(f.advance(first).unwrap().complete);
        f.next_request();
        let second = b"POST /2 HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(
            f.advance(second).err().map(|e| e.1),
            Some(HeadRefusal::LengthAndChunked)
        );
        let mut f = framer();
        assert_eq!(
            f.advance(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\nzz"),
            Err((47, HeadRefusal::InvalidChunk))
        );
    }
}
