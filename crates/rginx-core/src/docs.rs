//! docs/directives.md, generated from the directive table so the two cannot
//! drift apart (a test compares the file with this output).

use std::fmt::Write;

use crate::names::nginx_directives;
use crate::table::{Body, DirectiveSpec, Status, DIRECTIVES};

fn contexts(spec: &DirectiveSpec) -> String {
    let names: Vec<&str> = spec.contexts.iter().map(|c| c.name()).collect();
    if names.len() == 6 {
        "any".to_string()
    } else {
        names.join(", ")
    }
}

fn arguments(spec: &DirectiveSpec) -> String {
    let args = spec.arity.describe();
    match spec.body {
        Body::None => args,
        _ => format!("{args} + block"),
    }
}

/// The complete text of docs/directives.md.
pub fn directives_markdown() -> String {
    let mut out = String::new();
    out.push_str("# Directives\n\n");
    out.push_str("Generated from the directive table in `crates/rginx-core/src/table.rs`; a test fails when\n");
    out.push_str("this file and the table disagree (regenerate with `RGINX_BLESS=1 cargo test --test docs`).\n\n");
    out.push_str("Every directive has one of three statuses:\n\n");
    out.push_str("- **supported**: validated with nginx's own checks and messages, and applied;\n");
    out.push_str("- **ignored**: validated like nginx does, then ignored with a `[warn]` naming the reason\n");
    out.push_str("  (tuning knobs that do not change what is served or who may access it);\n");
    out.push_str(
        "- **unsupported**: every other directive nginx documents. `rginx check` and start-up\n",
    );
    out.push_str("  fail with `directive \"NAME\" is not supported by rginx in FILE:LINE`, because ignoring\n");
    out.push_str(
        "  access control or rewriting would silently open doors. A name nginx does not know\n",
    );
    out.push_str("  gets nginx's own `unknown directive \"NAME\"`.\n\n");
    out.push_str(
        "Compatibility target: nginx 1.22 (Debian). Where later nginx changed a default, rginx\n",
    );
    out.push_str(
        "follows 1.22: `proxy_http_version` defaults to 1.0 (1.1 from nginx 1.29.7) and the\n",
    );
    out.push_str("default upstream `Connection` header is `close` (none from 1.29.7).\n\n");
    let row = |out: &mut String, spec: &DirectiveSpec, note: &str| {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            spec.name,
            contexts(spec),
            arguments(spec),
            note
        );
    };
    out.push_str(
        "## Supported\n\n| Directive | Contexts | Arguments | Notes |\n|---|---|---|---|\n",
    );
    for spec in DIRECTIVES.iter().filter(|s| s.status == Status::Supported) {
        row(&mut out, spec, spec.summary);
    }
    out.push_str("\n## Accepted and ignored (warning)\n\n| Directive | Contexts | Arguments | Why it is ignored |\n|---|---|---|---|\n");
    for spec in DIRECTIVES.iter() {
        if let Status::Ignored(reason) = spec.status {
            row(&mut out, spec, reason);
        }
    }
    out.push_str("\n`listen` parameters: `default_server` (and `default`) and `ssl` are supported; `backlog=`, `rcvbuf=`,\n");
    out.push_str(
        "`sndbuf=`, `deferred`, `bind`, `ipv6only=`, `reuseport`, `so_keepalive=`, `fastopen=`,\n",
    );
    out.push_str(
        "`accept_filter=`, `setfib=` are ignored with a warning; `http2` with `ssl` is accepted with a\n",
    );
    out.push_str("warning (HTTP/1.1 is offered); `http2` without `ssl`, `quic`, `proxy_protocol` are unsupported (error).\n");
    out.push_str("\n## Variables\n\n");
    out.push_str(
        "Computed per request from the compiled configuration (crates/rginx-core/src/plan/eval.rs):\n",
    );
    let vars: Vec<String> = crate::template::IMPLEMENTED
        .iter()
        .map(|v| {
            if v.ends_with('_') {
                format!("`${v}NAME`")
            } else {
                format!("`${v}`")
            }
        })
        .collect();
    let _ = writeln!(
        out,
        "{}, `map` results, `$1`..`$9` and named captures.\n",
        vars.join(", ")
    );
    out.push_str(
        "`$time_local` and `$time_iso8601` are in the machine's time zone, as nginx's; in the access log they and\n\
         `$msec` are the time the line is written, as nginx's. `$connections_*` read the\n\
         counters `stub_status` shows, when the value is used. `$connection` counts accepted and\n\
         upstream connections from 1, as nginx's counter does (resolver sockets excepted). Of the\n\
         response variables, `$status`, `$body_bytes_sent`, `$bytes_sent`, `$request_length`\n\
         (the head and a body read; a discarded body does not count) and `$request_time` are\n\
         computed for the access log, and `$sent_http_NAME` for any header, read from the\n\
         head as written (the head is kept only when a `log_format` uses one; as in nginx,\n\
         `Server` and `Date` are not found and `Connection` reads `close` by then).\n\
         `$upstream_addr`,\n\
         `$upstream_status`, `$upstream_connect_time`, `$upstream_header_time`,\n\
         `$upstream_response_time`, `$upstream_bytes_received`, `$upstream_bytes_sent` and\n\
         `$upstream_response_length` in every phase (each server tried, `, ` between tries and\n\
         ` : ` between the upstream uses of an internal redirect, as nginx writes them; the last\n\
         try's response time ends when the client has the response, where nginx's ends when the\n\
         backend's part is read). `$upstream_http_NAME` reads the answer passed on (the head is\n\
         kept only when some value uses it). `$remote_user` is the Basic credentials' user.\n\
         Any other variable nginx\n\
         defines is an error\n\
         (`variable \"$x\" is not supported by rginx`), never an empty string.\n",
    );
    out.push_str(
        "\n`$request_body` and `$request_body_file` are nginx's: empty until the body is read,\n\
         then the bytes while they are in memory or the temp file's name once it went to one;\n\
         with `proxy_request_buffering off`, what came with the head and a first buffer.\n\
         A location whose `proxy_set_header`, `proxy_set_body`, `proxy_method`, variable\n\
         `proxy_pass` or `hash` key uses them is evaluated once the body is read, as nginx does.\n",
    );
    // the prose lives in markdown beside the crate, easier to edit than code
    out.push('\n');
    out.push_str(include_str!("../prose/sent-upstream.md"));
    out.push_str(include_str!("../prose/known-differences.md"));
    let known: Vec<&str> = DIRECTIVES.iter().map(|s| s.name).collect();
    let unsupported: Vec<&str> = nginx_directives().filter(|n| !known.contains(n)).collect();
    let _ = write!(
        out,
        "\n## Unsupported ({} directives)\n\nEach of these is an error naming the directive and its line.\n\n",
        unsupported.len()
    );
    for chunk in unsupported.chunks(6) {
        let names: Vec<String> = chunk.iter().map(|n| format!("`{n}`")).collect();
        let _ = writeln!(out, "{}", names.join(", "));
    }
    out
}
