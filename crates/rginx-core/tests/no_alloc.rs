//! Matching a request to its server and location allocates nothing for a
//! prefix hit (counted with a global allocator wrapper).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use rginx_core::locate::LocationMatch;
use rginx_core::plan::{RequestHead, Runtime};
use rginx_core::{build, BuildOptions, LiteralResolver};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn prefix_hits_allocate_nothing() {
    let mut text = String::from(
        "events {}\nhttp { server { listen 127.0.0.1:8080; server_name example.com;\n",
    );
    for i in 0..1000 {
        text.push_str(&format!(
            "location /s{i}/ {{ proxy_pass http://127.0.0.1:9000; }}\n"
        ));
    }
    for i in 0..100 {
        text.push_str(&format!(
            "location ~ ^/re{i}/ {{ proxy_pass http://127.0.0.1:9000; }}\n"
        ));
    }
    text.push_str("} }\n");
    let parsed = rginx_config::parse_str(Path::new("t.conf"), &text);
    let checked = build(&parsed, &LiteralResolver, BuildOptions::default());
    assert!(!checked.has_errors());
    let runtime = Runtime::new(&checked.model, "t").unwrap();
    let headers = [("Host", "example.com"), ("Accept", "*/*")];
    let req = RequestHead {
        method: "GET",
        target: "/s500/page?x=1",
        minor_version: 1,
        headers: &headers,
        local: "127.0.0.1:8080".parse().unwrap(),
        remote: "127.0.0.1:50000".parse().unwrap(),
        time: std::time::SystemTime::now(),
        request_id: [7; 16],
    };
    // warm up lazily initialised state, then count
    let first = runtime.match_location(&req);
    assert!(matches!(first, Some((_, LocationMatch::Found(_)))));
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for _ in 0..100 {
        std::hint::black_box(runtime.match_location(std::hint::black_box(&req)));
    }
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(after - before, 0, "matching allocated");
}
