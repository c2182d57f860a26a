//! The chunked transfer coding as nginx reads it (`ngx_http_parse_chunked`
//! in `src/http/ngx_http_parse.c`): hex sizes that may be followed by
//! spaces, tabs or `;extensions`, lines ended by CRLF or a bare LF, a last
//! chunk of size zero, then trailer lines up to an empty one. A size past
//! `off_t`'s range, or any other byte where the grammar has no room for
//! it, makes the body invalid (nginx: 400 for a request).

/// Where the decoder is in the coding (nginx's `sw_*` states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    ChunkStart,
    ChunkSize,
    ChunkExtension,
    ChunkExtensionAlmostDone,
    ChunkData,
    AfterData,
    AfterDataAlmostDone,
    LastChunkExtension,
    LastChunkExtensionAlmostDone,
    Trailer,
    TrailerAlmostDone,
    TrailerHeader,
    TrailerHeaderAlmostDone,
    Done,
}

/// Appends `data` to `out` as one chunk (size in lowercase hex, as
/// nginx's chunked filter writes it); nothing for no data, which would be
/// the last chunk.
pub fn put_chunk(out: &mut Vec<u8>, data: &[u8]) {
    use std::io::Write as _;
    if data.is_empty() {
        return;
    }
    let _ = write!(out, "{:x}\r\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The last chunk, with no trailers.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// nginx's `NGX_MAX_OFF_T_VALUE`: the largest size a chunk may have.
const MAX_SIZE: u64 = i64::MAX as u64;

/// The body is not valid chunked coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid chunked body")]
pub struct InvalidChunk;

/// What one step of decoding found: `consumed` bytes of coding were
/// read; `data` of them, at the end of that span, are body data. More
/// input is needed unless `done`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Bytes of the input taken.
    pub consumed: usize,
    /// The range of the input that is chunk data (empty when none).
    pub data: std::ops::Range<usize>,
    /// The last chunk and the trailers have been read.
    pub done: bool,
}

/// Decodes a chunked body incrementally, byte for byte as nginx does.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// The size of the chunk being read, then what is left of its data.
    size: u64,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder::new()
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a body.
    pub fn new() -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::ChunkStart,
            size: 0,
        }
    }

    /// Whether the whole body (last chunk and trailers) has been read.
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Reads from `input` up to the end of the next run of chunk data (so
    /// that the caller can take it), or to the end of the body, or to the
    /// end of `input`.
    pub fn step(&mut self, input: &[u8]) -> Result<Step, InvalidChunk> {
        let mut pos = 0;
        while pos < input.len() {
            if self.state == State::Done {
                break;
            }
            if self.state == State::ChunkData {
                let left = usize::try_from(self.size).unwrap_or(usize::MAX);
                let take = left.min(input.len() - pos);
                self.size -= take as u64;
                if self.size == 0 {
                    self.state = State::AfterData;
                }
                return Ok(Step {
                    consumed: pos + take,
                    data: pos..pos + take,
                    done: false,
                });
            }
            self.byte(input[pos])?;
            pos += 1;
        }
        Ok(Step {
            consumed: pos,
            data: pos..pos,
            done: self.state == State::Done,
        })
    }

    /// Skips `input` as far as the body goes: how many bytes belong to
    /// it, and whether it ended there.
    pub fn skip(&mut self, input: &[u8]) -> Result<(usize, bool), InvalidChunk> {
        let mut at = 0;
        loop {
            let Step { consumed, done, .. } = self.step(&input[at..])?;
            at += consumed;
            if done || at == input.len() || consumed == 0 {
                return Ok((at, done));
            }
        }
    }

    /// One byte outside chunk data.
    fn byte(&mut self, ch: u8) -> Result<(), InvalidChunk> {
        use State::*;
        self.state = match self.state {
            ChunkStart => {
                self.size = u64::from(hex(ch).ok_or(InvalidChunk)?);
                ChunkSize
            }
            ChunkSize => {
                if self.size > MAX_SIZE / 16 {
                    return Err(InvalidChunk);
                }
                if let Some(digit) = hex(ch) {
                    self.size = self.size * 16 + u64::from(digit);
                    ChunkSize
                } else {
                    let last = self.size == 0;
                    match (ch, last) {
                        (b'\r', true) => LastChunkExtensionAlmostDone,
                        (b'\n', true) => Trailer,
                        (b';' | b' ' | b'\t', true) => LastChunkExtension,
                        (b'\r', false) => ChunkExtensionAlmostDone,
                        (b'\n', false) => ChunkData,
                        (b';' | b' ' | b'\t', false) => ChunkExtension,
                        _ => return Err(InvalidChunk),
                    }
                }
            }
            ChunkExtension => match ch {
                b'\r' => ChunkExtensionAlmostDone,
                b'\n' => ChunkData,
                _ => ChunkExtension,
            },
            ChunkExtensionAlmostDone if ch == b'\n' => ChunkData,
            AfterData => match ch {
                b'\r' => AfterDataAlmostDone,
                b'\n' => ChunkStart,
                _ => return Err(InvalidChunk),
            },
            AfterDataAlmostDone if ch == b'\n' => ChunkStart,
            LastChunkExtension => match ch {
                b'\r' => LastChunkExtensionAlmostDone,
                b'\n' => Trailer,
                _ => LastChunkExtension,
            },
            LastChunkExtensionAlmostDone if ch == b'\n' => Trailer,
            Trailer => match ch {
                b'\r' => TrailerAlmostDone,
                b'\n' => Done,
                _ => TrailerHeader,
            },
            TrailerAlmostDone if ch == b'\n' => Done,
            TrailerHeader => match ch {
                b'\r' => TrailerHeaderAlmostDone,
                b'\n' => Trailer,
                _ => TrailerHeader,
            },
            TrailerHeaderAlmostDone if ch == b'\n' => Trailer,
            Done => Done,
            // chunk data is taken by `step`, never a byte at a time here
            _ => return Err(InvalidChunk),
        };
        Ok(())
    }
}

/// The value of a hex digit.
fn hex(ch: u8) -> Option<u8> {
    match ch {
        b'0'..=b'9' => Some(ch - b'0'),
        _ => match ch | 0x20 {
            c @ b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` in pieces of `piece` bytes: the data, and the bytes
    /// taken in all.
    fn decode(input: &[u8], piece: usize) -> Result<(Vec<u8>, usize, bool), InvalidChunk> {
        let mut d = ChunkedDecoder::new();
        let mut data = Vec::new();
        let mut at = 0;
        while at < input.len() && !d.done() {
            let end = (at + piece).min(input.len());
            let Step {
                consumed,
                data: range,
                ..
            } = d.step(&input[at..end])?;
            data.extend_from_slice(&input[at..end][range]);
            at += consumed;
        }
        Ok((data, at, d.done()))
    }

    #[test]
    fn decodes_chunks_in_any_pieces() {
        let body = b"3\r\nabc\r\nA;ext=1\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nGET /next";
        for piece in [1, 2, 5, 100] {
            let (data, taken, done) = decode(body, piece).unwrap();
            assert_eq!(data, b"abc0123456789");
            assert!(done);
            assert_eq!(&body[taken..], b"GET /next");
        }
    }

    #[test]
    fn bare_lf_and_extensions_after_spaces_are_nginx_s() {
        let (data, _, done) = decode(b"3 ;x\nabc\n0\n\n", 64).unwrap();
        assert_eq!((data.as_slice(), done), (&b"abc"[..], true));
        let (_, taken, done) = decode(b"0\r\n\r\n", 64).unwrap();
        assert_eq!((taken, done), (5, true));
    }

    #[test]
    fn invalid_bodies_are_refused() {
        for bad in [
            &b"zz\r\nabc\r\n0\r\n\r\n"[..],
            b"-3\r\nabc\r\n0\r\n\r\n",
            b"3\r\nabcX\r\n0\r\n\r\n",
            b"fffffffffffffffffff\r\nabc\r\n",
            b"3\r\r",
        ] {
            assert_eq!(decode(bad, 64), Err(InvalidChunk), "{bad:?}");
        }
    }

    #[test]
    fn skip_stops_at_the_end_of_the_body() {
        let mut d = ChunkedDecoder::new();
        assert_eq!(d.skip(b"2\r\nab\r\n"), Ok((7, false)));
        assert_eq!(d.skip(b"0\r\n\r\nrest"), Ok((5, true)));
    }
}
