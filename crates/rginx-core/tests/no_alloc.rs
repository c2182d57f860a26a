//! Matching a request to its server and location allocates nothing for a
//! prefix hit (counted with a global allocator wrapper).

use rginx_core::locate::LocationMatch;
use rginx_testkit::alloc::{allocations_during, Counting};
use rginx_testkit::config::{http_runtime, many_locations, request};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn prefix_hits_allocate_nothing() {
    let runtime = http_runtime(&format!(
        "server {{ listen 127.0.0.1:8080; server_name example.com;\n{}}}",
        many_locations(1000, 100, "http://127.0.0.1:9000")
    ));
    let headers = [("Host", "example.com"), ("Accept", "*/*")];
    let req = request("/section500/page?x=1", &headers);
    // warm up lazily initialised state, then count
    let first = runtime.match_location(&req);
    assert!(matches!(first, Some((_, LocationMatch::Found(_)))));
    let ((), allocated) = allocations_during(|| {
        for _ in 0..100 {
            std::hint::black_box(runtime.match_location(std::hint::black_box(&req)));
        }
    });
    assert_eq!(allocated, 0, "matching allocated");
}
