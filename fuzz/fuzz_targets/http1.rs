//! Any bytes through rginx's own HTTP/1 head parsers: a client's request
//! head (the request line, then header lines by nginx's rules) and an
//! upstream's response head, with the framing and keep-alive decisions
//! made from it. None may panic, and every span a response head gives
//! must lie inside the bytes it was read from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rginx_http::request::RequestHead;
use rginx_http::response::ResponseHead;

fuzz_target!(|data: &[u8]| {
    if let Ok(head) = RequestHead::parse(data) {
        let _ = head.expects_continue();
        let _ = head.header("host");
    }
    if let Ok(Some(head)) = ResponseHead::parse(data) {
        assert!(head.len <= data.len());
        for span in &head.headers {
            assert!(span.name.end <= head.len && span.value.end <= head.len);
        }
        let _ = head.body(data, false);
        let _ = head.keeps_alive(data);
    }
});
