//! Any text through the configuration's whole path: parsing, validation,
//! diagnostics, lints and compilation into the runtime.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rginx_core::plan::Runtime;
use rginx_core::{build, lint, BuildOptions, LiteralResolver};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parsed = rginx_config::parse_str(Path::new("fuzz.conf"), &text);
    let checked = build(&parsed, &LiteralResolver, BuildOptions::default());
    for d in &checked.diagnostics {
        let _ = d.render(&parsed.config);
        let _ = d.excerpt(&parsed.config);
    }
    if !checked.has_errors() {
        let _ = lint::lint(&checked.model);
        let _ = Runtime::new(&checked.model, "fuzz");
    }
});
