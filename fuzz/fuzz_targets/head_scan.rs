//! Any bytes as the start of a client connection, through nginx's head
//! checks (`rginx_http::head_scan`), as the server feeds them: no panic,
//! and the same end of the head, the same framing and the same refusal
//! whether the bytes come at once or in pieces (a connection reads them in
//! whatever pieces the network makes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rginx_http::head_scan::{BodyFraming, HeadRefusal, HeadScanner};

/// Where the head ended and how its body is framed, or why it was refused,
/// feeding `data` in pieces of `piece` bytes.
fn scan(data: &[u8], piece: usize) -> Result<Option<(usize, Option<BodyFraming>)>, HeadRefusal> {
    let mut scanner = HeadScanner::new(4, 1024).with_max_headers(50);
    let mut at = 0;
    while at < data.len() {
        let end = (at + piece).min(data.len());
        at += scanner.feed(&data[at..end])?;
        if scanner.done() {
            return Ok(Some((at, scanner.body())));
        }
    }
    Ok(None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, data)) = data.split_first() else {
        return;
    };
    let piece = usize::from(first % 16) + 1;
    assert_eq!(scan(data, data.len().max(1)), scan(data, piece));
});
