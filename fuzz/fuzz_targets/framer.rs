//! Any bytes as a client connection's stream, through rginx's own request
//! framer (nginx's head checks, then bodies by length or chunked coding;
//! the chunked decoder alone is the `chunked` target's):
//! it must never panic, and it must find the same request boundaries and
//! the same refusal whether the bytes come at once or in pieces (a
//! connection reads them in whatever pieces the network makes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rginx_http::framer::RequestFramer;
use rginx_http::head_scan::{HeadRefusal, HeadScanner};

/// The requests' end offsets and the refusal, if any, reading `data` in
/// pieces of `piece` bytes.
fn boundaries(data: &[u8], piece: usize) -> (Vec<usize>, Option<(usize, HeadRefusal)>) {
    let mut framer = RequestFramer::new(HeadScanner::new(4, 1024));
    let mut ends = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let end = (at + piece).min(data.len());
        match framer.advance(&data[at..end]) {
            Ok(a) => {
                at += a.taken;
                if a.complete {
                    ends.push(at);
                    framer.next_request();
                } else if a.taken == 0 {
                    break;
                }
            }
            Err((taken, refusal)) => return (ends, Some((at + taken, refusal))),
        }
    }
    (ends, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, data)) = data.split_first() else {
        return;
    };
    let piece = usize::from(first % 16) + 1;
    let whole = boundaries(data, data.len().max(1));
    let pieces = boundaries(data, piece);
    // a refusal may be found at a later byte when the bytes come in pieces
    // (a line's limit is checked as it grows), but never elsewhere
    assert_eq!(whole.0, pieces.0, "request boundaries differ");
    assert_eq!(
        whole.1.map(|r| r.1),
        pieces.1.map(|r| r.1),
        "refusals differ"
    );
});
