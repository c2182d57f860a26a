//! Any bytes as a chunked body through rginx's decoder (nginx's
//! `ngx_http_parse_chunked` grammar), as request bodies and upstream
//! response bodies are read: no panic, and the same data, end and
//! verdict whether the bytes come at once or one at a time.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rginx_http::chunked::ChunkedDecoder;

/// The data, the bytes taken and whether the body ended, reading `data`
/// in pieces of `piece` bytes (`None`: invalid).
fn decode(data: &[u8], piece: usize) -> Option<(Vec<u8>, usize, bool)> {
    let mut decoder = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() && !decoder.done() {
        let end = (at + piece).min(data.len());
        let step = decoder.step(&data[at..end]).ok()?;
        out.extend_from_slice(&data[at..end][step.data.clone()]);
        at += step.consumed;
    }
    Some((out, at, decoder.done()))
}

fuzz_target!(|data: &[u8]| {
    assert_eq!(decode(data, data.len().max(1)), decode(data, 1));
    let mut skipping = ChunkedDecoder::new();
    if let (Ok((taken, done)), Some((_, at, ended))) = (skipping.skip(data), decode(data, 7)) {
        assert_eq!((taken, done), (at, ended));
    }
});
