//! The directive table: every directive rginx knows, where it may appear,
//! how many arguments it takes, how its value is parsed, and whether rginx
//! implements it or accepts and ignores it. Validation, `rginx check` and
//! docs/directives.md are all driven by this one table.

use std::collections::HashMap;

use crate::handlers::{self, Handler};

/// A configuration context (where a directive stands).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    /// Top level of the main file.
    Main,
    /// `events { }`
    Events,
    /// `http { }`
    Http,
    /// `server { }` inside http.
    Server,
    /// `location { }`
    Location,
    /// `upstream { }`
    Upstream,
}

impl Context {
    /// The name used in docs/directives.md.
    pub fn name(self) -> &'static str {
        match self {
            Context::Main => "main",
            Context::Events => "events",
            Context::Http => "http",
            Context::Server => "server",
            Context::Location => "location",
            Context::Upstream => "upstream",
        }
    }
}

/// How many arguments a directive takes (nginx's `NGX_CONF_TAKE*`,
/// `NGX_CONF_FLAG`, `NGX_CONF_1MORE`, `NGX_CONF_2MORE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// Exactly n.
    Exactly(u8),
    /// Between min and max.
    Range(u8, u8),
    /// At least n.
    AtLeast(u8),
    /// Exactly one, `on` or `off`.
    Flag,
}

impl Arity {
    /// Whether `n` arguments fit (nginx never allows more than 8 unless the
    /// directive takes "1 or more").
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exactly(k) => n == k as usize,
            Arity::Range(a, b) => n >= a as usize && n <= b as usize,
            Arity::AtLeast(k) => n >= k as usize,
            Arity::Flag => n == 1,
        }
    }

    /// For docs: `1`, `1-2`, `1+`, `on|off`.
    pub fn describe(self) -> String {
        match self {
            Arity::Exactly(k) => k.to_string(),
            Arity::Range(a, b) => format!("{a}-{b}"),
            Arity::AtLeast(k) => format!("{k}+"),
            Arity::Flag => "on|off".to_string(),
        }
    }
}

/// What follows a block directive's `{`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// Not a block directive: terminated by `;`.
    None,
    /// Directives of that context.
    Directives(Context),
    /// `key value;` lines (`map`, `types`): checked by the handler.
    Entries,
}

/// Whether rginx implements a directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Validated and applied.
    Supported,
    /// Validated, then ignored with a warning naming the reason.
    Ignored(&'static str),
}

/// How a directive's arguments are parsed and stored.
#[derive(Clone, Copy)]
pub enum Kind {
    /// `on|off`.
    Flag,
    /// A time with millisecond precision.
    Time,
    /// A size (`k`, `m`).
    Size,
    /// An offset (`k`, `m`, `g`).
    Offset,
    /// A number.
    Number,
    /// One of these words (nginx's enum slot).
    Enum(&'static [&'static str]),
    /// Any text.
    Text,
    /// Several of these words (nginx's bitmask slot).
    Bitmask(&'static [&'static str]),
    /// `count size`.
    Buffers,
    /// Its own handler.
    Custom(Handler),
}

/// One row of the table.
#[derive(Clone, Copy)]
pub struct DirectiveSpec {
    /// Directive name.
    pub name: &'static str,
    /// Where it may appear.
    pub contexts: &'static [Context],
    /// Argument count.
    pub arity: Arity,
    /// Block or simple directive.
    pub body: Body,
    /// Supported or ignored.
    pub status: Status,
    /// Value parser.
    pub kind: Kind,
    /// One line for the docs.
    pub summary: &'static str,
}

use Context::{Events as E, Http as H, Location as L, Main as M, Server as S, Upstream as U};

const ANY: &[Context] = &[M, E, H, S, L, U];
const HSL: &[Context] = &[H, S, L];
const HS: &[Context] = &[H, S];

const fn spec(
    name: &'static str,
    contexts: &'static [Context],
    arity: Arity,
    kind: Kind,
    summary: &'static str,
) -> DirectiveSpec {
    DirectiveSpec {
        name,
        contexts,
        arity,
        body: Body::None,
        status: Status::Supported,
        kind,
        summary,
    }
}

const fn block(
    name: &'static str,
    contexts: &'static [Context],
    arity: Arity,
    body: Body,
    handler: Handler,
    summary: &'static str,
) -> DirectiveSpec {
    DirectiveSpec {
        name,
        contexts,
        arity,
        body,
        status: Status::Supported,
        kind: Kind::Custom(handler),
        summary,
    }
}

const fn ignored(
    name: &'static str,
    contexts: &'static [Context],
    arity: Arity,
    kind: Kind,
    reason: &'static str,
) -> DirectiveSpec {
    DirectiveSpec {
        name,
        contexts,
        arity,
        body: Body::None,
        status: Status::Ignored(reason),
        kind,
        summary: reason,
    }
}

const NEXT_UPSTREAM: &[&str] = &[
    "error",
    "timeout",
    "invalid_header",
    "http_500",
    "http_502",
    "http_503",
    "http_504",
    "http_403",
    "http_404",
    "http_429",
    "non_idempotent",
    "updating",
    "off",
];

const TUNING: &str = "a performance knob for nginx's own I/O; rginx tunes itself";
const HASH: &str = "sizes nginx's internal hash tables; rginx needs no such setting";
const STATIC: &str = "only affects files nginx serves itself; rginx serves no static files";

/// Every directive rginx knows.
pub static DIRECTIVES: &[DirectiveSpec] = &[
    // main context
    spec(
        "include",
        ANY,
        Arity::Exactly(1),
        Kind::Text,
        "Reads another file (or glob) in place; expanded while parsing.",
    ),
    spec(
        "worker_processes",
        &[M],
        Arity::Exactly(1),
        Kind::Custom(handlers::worker_processes),
        "Number of worker processes (1 by default, as nginx; `auto`: one per core).",
    ),
    spec(
        "pid",
        &[M],
        Arity::Exactly(1),
        Kind::Custom(handlers::pid),
        "File holding the process id, for `rginx -s`.",
    ),
    spec(
        "error_log",
        &[M, H, S, L],
        Arity::AtLeast(1),
        Kind::Custom(handlers::error_log),
        "Error log file (or `stderr`) and level.",
    ),
    spec(
        "daemon",
        &[M],
        Arity::Flag,
        Kind::Flag,
        "Run in the background (`on`, the default, as nginx: the start returns once the pid file is written).",
    ),
    spec(
        "master_process",
        &[M],
        Arity::Flag,
        Kind::Flag,
        "A master process that keeps its privileges and runs `worker_processes` workers (`on`, the default); `off`: one process.",
    ),
    spec(
        "user",
        &[M],
        Arity::Range(1, 2),
        Kind::Custom(handlers::user),
        "User (and group) to run as after binding sockets.",
    ),
    spec(
        "worker_shutdown_timeout",
        &[M],
        Arity::Exactly(1),
        Kind::Time,
        "Longest wait for open connections (tunnels) on a graceful shutdown.",
    ),
    spec(
        "worker_rlimit_nofile",
        &[M],
        Arity::Exactly(1),
        Kind::Number,
        "Open-file limit (RLIMIT_NOFILE) of the process.",
    ),
    block(
        "events",
        &[M],
        Arity::Exactly(0),
        Body::Directives(E),
        handlers::events,
        "Connection-processing settings.",
    ),
    block(
        "http",
        &[M],
        Arity::Exactly(0),
        Body::Directives(H),
        handlers::http,
        "The HTTP server.",
    ),
    ignored(
        "worker_cpu_affinity",
        &[M],
        Arity::AtLeast(1),
        Kind::Text,
        TUNING,
    ),
    ignored(
        "worker_priority",
        &[M],
        Arity::Exactly(1),
        Kind::Text,
        TUNING,
    ),
    ignored(
        "pcre_jit",
        &[M],
        Arity::Flag,
        Kind::Flag,
        "rginx always JIT-compiles its PCRE2 regexes, as nginx with `pcre_jit on`",
    ),
    ignored(
        "timer_resolution",
        &[M],
        Arity::Exactly(1),
        Kind::Time,
        TUNING,
    ),
    // events
    spec(
        "worker_connections",
        &[E],
        Arity::Exactly(1),
        Kind::Custom(handlers::worker_connections),
        "Maximum number of simultaneous connections.",
    ),
    ignored(
        "use",
        &[E],
        Arity::Exactly(1),
        Kind::Custom(handlers::event_type),
        "rginx picks the best event mechanism (epoll) itself",
    ),
    ignored("multi_accept", &[E], Arity::Flag, Kind::Flag, TUNING),
    ignored("accept_mutex", &[E], Arity::Flag, Kind::Flag, TUNING),
    ignored(
        "accept_mutex_delay",
        &[E],
        Arity::Exactly(1),
        Kind::Time,
        TUNING,
    ),
    // http structure
    block(
        "server",
        &[H],
        Arity::Exactly(0),
        Body::Directives(S),
        handlers::server,
        "A virtual server.",
    ),
    spec(
        "listen",
        &[S],
        Arity::AtLeast(1),
        Kind::Custom(handlers::listen),
        "Address and port, or a port range (`8000-8005`: each port), and `default_server`.",
    ),
    spec(
        "server_name",
        &[S],
        Arity::AtLeast(1),
        Kind::Custom(handlers::server_name),
        "Names of the virtual server: exact, `*.x`, `.x`, `x.*`, `~regex`.",
    ),
    block(
        "location",
        &[S, L],
        Arity::Range(1, 2),
        Body::Directives(L),
        handlers::location,
        "URI matching: `=`, `^~`, prefix, `~`, `~*`, `@name`, nested.",
    ),
    block(
        "upstream",
        &[H],
        Arity::Exactly(1),
        Body::Directives(U),
        handlers::upstream,
        "A group of backend servers.",
    ),
    spec(
        "server",
        &[U],
        Arity::AtLeast(1),
        Kind::Custom(handlers::upstream_server),
        "A backend (`host:port` or `unix:PATH`): `weight=`, `max_fails=`, `fail_timeout=`, `max_conns=`, `backup`, `down`.",
    ),
    spec(
        "keepalive",
        &[U],
        Arity::Exactly(1),
        Kind::Custom(handlers::keepalive),
        "Idle upstream connections kept per worker.",
    ),
    block(
        "map",
        &[H],
        Arity::Exactly(2),
        Body::Entries,
        handlers::map,
        "A variable computed from another: exact, `hostnames`, regex keys, `default`, `volatile`.",
    ),
    spec(
        "log_format",
        &[H],
        Arity::AtLeast(2),
        Kind::Custom(handlers::log_format),
        "Named access log format (`escape=default|json|none`; `$binary_remote_addr` only here).",
    ),
    spec(
        "access_log",
        HSL,
        Arity::AtLeast(1),
        Kind::Custom(handlers::access_log),
        "Access log file and format (`if=`, `buffer=`, `flush=`, `gzip[=level]`), or `off`.",
    ),
    // connections and requests
    spec(
        "keepalive_timeout",
        HSL,
        Arity::Range(1, 2),
        Kind::Custom(handlers::keepalive_timeout),
        "Idle time of a client keep-alive connection.",
    ),
    spec(
        "keepalive_timeout",
        &[U],
        Arity::Exactly(1),
        Kind::Time,
        "Idle time of a cached upstream connection.",
    ),
    spec(
        "keepalive_time",
        HSL,
        Arity::Exactly(1),
        Kind::Time,
        "The longest life of a client keep-alive connection (1 h): no request is started on it after.",
    ),
    spec(
        "ip_hash",
        &[U],
        Arity::Exactly(0),
        Kind::Custom(handlers::balancing),
        "Chooses the server by the client's address (IPv4: its first three bytes), as nginx's hash.",
    ),
    spec(
        "random",
        &[U],
        Arity::Range(0, 2),
        Kind::Custom(handlers::balancing),
        "Draws the server by weight (`two [least_conn]`: the less loaded of two drawn), as nginx's; draws are per worker.",
    ),
    spec(
        "hash",
        &[U],
        Arity::Range(1, 2),
        Kind::Custom(handlers::balancing),
        "Chooses the server by a value of the request (`consistent`: ketama, as nginx's).",
    ),
    spec(
        "least_conn",
        &[U],
        Arity::Exactly(0),
        Kind::Custom(handlers::balancing),
        "Chooses the server with the fewest active requests for its weight (round-robin among equals).",
    ),
    spec(
        "keepalive_time",
        &[U],
        Arity::Exactly(1),
        Kind::Time,
        "The longest life of a cached upstream connection (1 h).",
    ),
    ignored(
        "zone",
        &[U],
        Arity::Range(1, 2),
        Kind::Text,
        "shares a group's balancing state between nginx's worker processes; rginx's workers keep their own, as nginx's do without it",
    ),
    spec(
        "keepalive_disable",
        HSL,
        Arity::AtLeast(1),
        Kind::Bitmask(&["none", "msie6", "safari"]),
        "Browsers whose connections are not kept alive (`msie6`, the default: after a POST from MSIE 4 to 6; `safari`: Safari on Mac OS X; `none`).",
    ),
    spec(
        "keepalive_requests",
        HSL,
        Arity::Exactly(1),
        Kind::Number,
        "Requests served over one client connection.",
    ),
    spec(
        "keepalive_requests",
        &[U],
        Arity::Exactly(1),
        Kind::Number,
        "Requests sent over one cached upstream connection.",
    ),
    spec(
        "client_max_body_size",
        HSL,
        Arity::Exactly(1),
        Kind::Offset,
        "Largest request body (413 beyond it; 0: no limit).",
    ),
    spec(
        "large_client_header_buffers",
        HS,
        Arity::Exactly(2),
        Kind::Buffers,
        "Limits of the request line and of each header line (414/400).",
    ),
    spec(
        "max_headers",
        HS,
        Arity::Exactly(1),
        Kind::Number,
        "Most header lines a request may have (1000; 400 beyond, as Debian's nginx 1.22).",
    ),
    spec(
        "underscores_in_headers",
        HS,
        Arity::Flag,
        Kind::Flag,
        "Whether header names with `_` are accepted.",
    ),
    spec(
        "ignore_invalid_headers",
        HS,
        Arity::Flag,
        Kind::Flag,
        "Whether headers with invalid names are dropped.",
    ),
    spec(
        "client_header_timeout",
        HS,
        Arity::Exactly(1),
        Kind::Time,
        "Time to receive the request head.",
    ),
    spec(
        "client_body_timeout",
        HSL,
        Arity::Exactly(1),
        Kind::Time,
        "Time between two reads of the request body.",
    ),
    spec(
        "send_timeout",
        HSL,
        Arity::Exactly(1),
        Kind::Time,
        "Time between two writes to the client.",
    ),
    spec(
        "stub_status",
        &[S, L],
        Arity::Range(0, 1),
        Kind::Custom(handlers::stub_status),
        "nginx's status page (`?format=prometheus`: the same and upstream figures for Prometheus).",
    ),
    // proxy
    spec(
        "proxy_pass",
        &[L],
        Arity::Exactly(1),
        Kind::Custom(handlers::proxy_pass),
        "Backend URL: upstream name, host or `unix:PATH:` socket, optional URI part, variables.",
    ),
    spec(
        "resolver",
        HSL,
        Arity::AtLeast(1),
        Kind::Custom(handlers::resolver),
        "Name servers (port 53 unless given; `valid=`, `ipv6=off`) a `proxy_pass` with variables asks for a host no `upstream` names; answers kept for their TTL.",
    ),
    spec(
        "resolver_timeout",
        HSL,
        Arity::Exactly(1),
        Kind::Time,
        "How long a name may take to resolve (30s); then 502.",
    ),
    spec(
        "proxy_http_version",
        HSL,
        Arity::Exactly(1),
        Kind::Enum(&["1.0", "1.1"]),
        "HTTP version to upstreams (nginx 1.22 default: 1.0).",
    ),
    // TLS to upstreams (`proxy_pass https://`), on rustls
    spec(
        "proxy_ssl_server_name",
        HSL,
        Arity::Flag,
        Kind::Flag,
        "Sends the server's name (`proxy_ssl_name`) as SNI (off).",
    ),
    spec(
        "proxy_ssl_name",
        HSL,
        Arity::Exactly(1),
        Kind::Text,
        "The upstream's name for SNI and verification (`$proxy_host`, its port left out).",
    ),
    spec(
        "proxy_ssl_verify",
        HSL,
        Arity::Flag,
        Kind::Flag,
        "Verifies the upstream's certificate against `proxy_ssl_trusted_certificate` and the name (off).",
    ),
    spec(
        "proxy_ssl_trusted_certificate",
        HSL,
        Arity::Exactly(1),
        Kind::Custom(handlers::conf_file),
        "PEM certificates trusted for `proxy_ssl_verify`.",
    ),
    ignored(
        "proxy_ssl_verify_depth",
        HSL,
        Arity::Exactly(1),
        Kind::Number,
        "rustls verifies a chain of any length up to a trusted certificate; the depth is not limited",
    ),
    spec(
        "proxy_ssl_certificate",
        HSL,
        Arity::Exactly(1),
        Kind::Custom(handlers::conf_file),
        "A client certificate (PEM) shown to upstreams that ask for one.",
    ),
    spec(
        "proxy_ssl_certificate_key",
        HSL,
        Arity::Exactly(1),
        Kind::Custom(handlers::conf_file),
        "The key of `proxy_ssl_certificate`.",
    ),
    spec(
        "proxy_ssl_password_file",
        HSL,
        Arity::Exactly(1),
        Kind::Custom(handlers::conf_file),
        "As `ssl_password_file`, for `proxy_ssl_certificate_key`.",
    ),
    spec(
        "proxy_ssl_protocols",
        HSL,
        Arity::AtLeast(1),
        Kind::Bitmask(&["SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]),
        "Protocols offered to upstreams (nginx 1.22's default `TLSv1 TLSv1.1 TLSv1.2` offers TLS 1.2).",
    ),
    spec(
        "proxy_ssl_ciphers",
        HSL,
        Arity::Exactly(1),
        Kind::Text,
        "An OpenSSL cipher string for the TLS 1.2 suites offered to upstreams (`DEFAULT`).",
    ),
    spec(
        "proxy_ssl_session_reuse",
        HSL,
        Arity::Flag,
        Kind::Flag,
        "Resumes upstream TLS sessions (on).",
    ),
    spec(
        "proxy_set_header",
        HSL,
        Arity::Exactly(2),
        Kind::Custom(handlers::proxy_set_header),
        "Request header to upstreams; a level's list replaces the inherited one.",
    ),
    spec(
        "proxy_redirect",
        HSL,
        Arity::Range(1, 2),
        Kind::Custom(handlers::proxy_redirect),
        "Rewrites a backend's `Location` and `Refresh` (`default`, `off`, prefix or `~`/`~*` regex rules, variables); implicit `default` as nginx.",
    ),
    spec(
        "return",
        &[S, L],
        Arity::Range(1, 2),
        Kind::Custom(handlers::return_),
        "Answers at once: a code with text or a URL (made absolute as nginx does), a URL alone (302), 444 to close.",
    ),
    spec(
        "absolute_redirect",
        HSL,
        Arity::Flag,
        Kind::Flag,
        "Whether rginx makes a relative `Location` it writes absolute (default on).",
    ),
    spec(
        "port_in_redirect",
        HSL,
        Arity::Flag,
        Kind::Flag,
        "Whether such an absolute `Location` names the port (default on; never 80).",
    ),
    spec(
        "server_name_in_redirect",
        HSL,
        Arity::Flag,
        Kind::Flag,
        "Whether it names the server's first `server_name` instead of the request's host (default off).",
    ),
    spec(
        "error_page",
        HSL,
        Arity::AtLeast(2),
        Kind::Custom(handlers::error_page),
        "For rginx's own error answers (and a backend's, with `proxy_intercept_errors`): an internal redirect to a URI or a named location, or a redirect to a URL; `=code` and `=`.",
    ),
    spec(
        "internal",
        &[L],
        Arity::Exactly(0),
        Kind::Custom(handlers::internal),
        "The location answers internal redirects only (`error_page`); a request for it is a 404.",
    ),
    spec(
        "proxy_intercept_errors",
        HSL,
        Arity::Flag,
        Kind::Flag,
        "A backend answer of 300 or more with an `error_page` for its code gets that page instead.",
    ),
    spec(
        "add_header",
        HSL,
        Arity::Range(2, 3),
        Kind::Custom(handlers::add_header),
        "Response header for 200, 201, 204, 206, 301, 302, 303, 304, 307, 308 (any status with `always`); a level's list replaces the inherited one.",
    ),
    spec(
        "limit_rate",
        HSL,
        Arity::Exactly(1),
        Kind::Custom(handlers::limit_rate),
        "Bytes per second to the client for a response (variables allowed; a backend's `X-Accel-Limit-Rate` replaces it), paced as nginx's write filter paces it.",
    ),
    spec(
        "limit_rate_after",
        HSL,
        Arity::Exactly(1),
        Kind::Custom(handlers::limit_rate_after),
        "Bytes of a response (its head included) sent before `limit_rate` applies (variables allowed).",
    ),
    spec(
        "expires",
        HSL,
        Arity::Range(1, 2),
        Kind::Custom(handlers::expires),
        "`Expires` and `Cache-Control` for the same statuses: a time, `modified`, `@time`, `epoch`, `max`, `off`, or a value with variables.",
    ),
    spec(
        "proxy_pass_request_body",
        HSL,
        Arity::Flag,
        Kind::Flag,
        "`off`: the client's body is read but not sent (its `Content-Length` still is, as nginx sends it).",
    ),
    spec(
        "proxy_set_body",
        HSL,
        Arity::Exactly(1),
        Kind::Custom(handlers::proxy_set_body),
        "The body sent instead of the client's (variables allowed), with its `Content-Length`.",
    ),
    spec(
        "proxy_method",
        HSL,
        Arity::Exactly(1),
        Kind::Custom(handlers::proxy_method),
        "The method sent upstream instead of the client's (variables allowed).",
    ),
    spec(
        "proxy_cookie_domain",
        HSL,
        Arity::Range(1, 2),
        Kind::Custom(handlers::proxy_cookie_domain),
        "Rewrites the `domain` of a backend's `Set-Cookie` (whole, any case, after a leading `.`; or a caseless `~` regex).",
    ),
    spec(
        "proxy_cookie_path",
        HSL,
        Arity::Range(1, 2),
        Kind::Custom(handlers::proxy_cookie_path),
        "Rewrites the `path` of a backend's `Set-Cookie` (a prefix, or a `~`/`~*` regex).",
    ),
    spec(
        "proxy_cookie_flags",
        HSL,
        Arity::Range(1, 4),
        Kind::Custom(handlers::proxy_cookie_flags),
        "Sets or removes `Secure`, `HttpOnly` and `SameSite` on a backend's `Set-Cookie` for the cookies a rule names (a name or `~` regex; variables allowed).",
    ),
    spec(
        "proxy_hide_header",
        HSL,
        Arity::Exactly(1),
        Kind::Custom(handlers::header_names),
        "A backend response header not passed to the client, beside nginx's defaults (`Date`, `Server`, `X-Pad`, `X-Accel-*`).",
    ),
    spec(
        "proxy_pass_header",
        HSL,
        Arity::Exactly(1),
        Kind::Custom(handlers::header_names),
        "A header nginx hides by default that is passed after all (`Server`, `Date`, `X-Accel-*`).",
    ),
    spec(
        "proxy_connect_timeout",
        HSL,
        Arity::Exactly(1),
        Kind::Time,
        "Time to connect to an upstream.",
    ),
    spec(
        "proxy_read_timeout",
        HSL,
        Arity::Exactly(1),
        Kind::Time,
        "Time between two reads from an upstream (also a tunnel's idle limit).",
    ),
    spec(
        "proxy_send_timeout",
        HSL,
        Arity::Exactly(1),
        Kind::Time,
        "Time between two writes to an upstream.",
    ),
    spec(
        "proxy_next_upstream",
        HSL,
        Arity::AtLeast(1),
        Kind::Bitmask(NEXT_UPSTREAM),
        "When to try the next upstream server.",
    ),
    spec(
        "proxy_next_upstream_tries",
        HSL,
        Arity::Exactly(1),
        Kind::Number,
        "How many servers to try (0: all).",
    ),
    spec(
        "proxy_next_upstream_timeout",
        HSL,
        Arity::Exactly(1),
        Kind::Time,
        "How long to keep trying servers (0: no limit).",
    ),
    spec(
        "proxy_pass_request_headers",
        HSL,
        Arity::Flag,
        Kind::Flag,
        "Whether client headers are passed to upstreams.",
    ),
    spec(
        "proxy_request_buffering",
        HSL,
        Arity::Flag,
        Kind::Flag,
        "`on` (default): the whole request body is read before a server is chosen, so it can go to the next one; `off`: a sized body streams as it arrives, a chunked one too (chunked again) to an HTTP/1.1 upstream.",
    ),
    spec(
        "client_body_buffer_size",
        HSL,
        Arity::Exactly(1),
        Kind::Size,
        "Memory for a buffered request body (16k); the rest goes to a file in `client_body_temp_path`.",
    ),
    spec(
        "client_body_temp_path",
        HSL,
        Arity::Range(1, 4),
        Kind::Custom(handlers::temp_path),
        "Directory (and hashed levels) of request-body temp files (Debian's `/var/lib/nginx/body`); created at start and given to `user`.",
    ),
    spec(
        "client_body_in_file_only",
        HSL,
        Arity::Exactly(1),
        Kind::Enum(&["on", "clean", "off"]),
        "Every buffered body goes to a temp file: `on` keeps the files, `clean` removes them after the request.",
    ),
    spec(
        "client_body_in_single_buffer",
        HSL,
        Arity::Flag,
        Kind::Flag,
        "Accepted: a body rginx keeps in memory is always one buffer.",
    ),
    spec(
        "proxy_ignore_headers",
        HSL,
        Arity::AtLeast(1),
        Kind::Bitmask(crate::plan::IgnoredHeaders::NAMES),
        "Backend headers not acted on: `X-Accel-Redirect`, `X-Accel-Buffering`, `X-Accel-Limit-Rate`, `X-Accel-Charset`; `X-Accel-Expires`, `Expires`, `Cache-Control`, `Set-Cookie` and `Vary` concern only a cache, which rginx does not have.",
    ),
    spec(
        "proxy_buffering",
        HSL,
        Arity::Flag,
        Kind::Flag,
        "`on` (default): a response is read ahead of the client into `proxy_buffers`, then a temp file, freeing the backend early; `off` (or `X-Accel-Buffering: no`): passed on as it arrives.",
    ),
    spec(
        "proxy_buffers",
        HSL,
        Arity::Exactly(2),
        Kind::Buffers,
        "Memory for a response read ahead of its client (8 4k): count times size.",
    ),
    spec(
        "proxy_busy_buffers_size",
        HSL,
        Arity::Exactly(1),
        Kind::Size,
        "Checked as nginx checks it; rginx hands the client every piece as soon as it can take it.",
    ),
    spec(
        "proxy_max_temp_file_size",
        HSL,
        Arity::Exactly(1),
        Kind::Size,
        "The most of a response held in a temp file (1024m; 0: none, the backend then waits for the client).",
    ),
    spec(
        "proxy_temp_file_write_size",
        HSL,
        Arity::Exactly(1),
        Kind::Size,
        "Checked as nginx checks it; rginx writes each piece read from the backend as it comes.",
    ),
    spec(
        "proxy_temp_path",
        HSL,
        Arity::Range(1, 4),
        Kind::Custom(handlers::temp_path),
        "Directory (and hashed levels) of response temp files (Debian's `/var/lib/nginx/proxy`); created at start and given to `user`.",
    ),
    spec(
        "proxy_buffer_size",
        HSL,
        Arity::Exactly(1),
        Kind::Size,
        "Buffer for the response head and for each direction of a tunnel.",
    ),
    // accepted and ignored
    ignored("sendfile", &[H, S, L], Arity::Flag, Kind::Flag, STATIC),
    ignored("tcp_nopush", HSL, Arity::Flag, Kind::Flag, TUNING),
    ignored(
        "tcp_nodelay",
        HSL,
        Arity::Flag,
        Kind::Flag,
        "rginx always sets TCP_NODELAY (nginx's default)",
    ),
    // MIME types: the Content-Type of rginx's own `return` text (and of
    // files, once rginx serves them)
    DirectiveSpec {
        name: "types",
        contexts: HSL,
        arity: Arity::Exactly(0),
        body: Body::Entries,
        status: Status::Supported,
        kind: Kind::Custom(handlers::types),
        summary: "Extensions to MIME types; a level's block replaces the inherited one (nginx's three defaults without any).",
    },
    spec(
        "default_type",
        HSL,
        Arity::Exactly(1),
        Kind::Text,
        "The Content-Type for extensions no `types` entry names (default `text/plain`).",
    ),
    ignored(
        "types_hash_max_size",
        HSL,
        Arity::Exactly(1),
        Kind::Number,
        HASH,
    ),
    ignored(
        "types_hash_bucket_size",
        HSL,
        Arity::Exactly(1),
        Kind::Size,
        HASH,
    ),
    ignored(
        "server_names_hash_max_size",
        &[H],
        Arity::Exactly(1),
        Kind::Number,
        HASH,
    ),
    ignored(
        "server_names_hash_bucket_size",
        &[H],
        Arity::Exactly(1),
        Kind::Size,
        HASH,
    ),
    ignored(
        "variables_hash_max_size",
        &[H],
        Arity::Exactly(1),
        Kind::Number,
        HASH,
    ),
    ignored(
        "variables_hash_bucket_size",
        &[H],
        Arity::Exactly(1),
        Kind::Size,
        HASH,
    ),
    ignored(
        "map_hash_max_size",
        &[H],
        Arity::Exactly(1),
        Kind::Number,
        HASH,
    ),
    ignored(
        "map_hash_bucket_size",
        &[H],
        Arity::Exactly(1),
        Kind::Size,
        HASH,
    ),
    ignored(
        "proxy_headers_hash_max_size",
        HSL,
        Arity::Exactly(1),
        Kind::Number,
        HASH,
    ),
    ignored(
        "proxy_headers_hash_bucket_size",
        HSL,
        Arity::Exactly(1),
        Kind::Number,
        HASH,
    ),
    spec(
        "server_tokens",
        HSL,
        Arity::Exactly(1),
        Kind::Enum(&["on", "off", "build"]),
        "`on` (default) and `build`: `Server: rginx/VERSION` and pages signed with it; `off`: `rginx` alone (where nginx says `nginx/1.22.1` and `nginx`).",
    ),
    spec(
        "msie_padding",
        HSL,
        Arity::Flag,
        Kind::Flag,
        "`on` (default): error pages of 400 and above get nginx's padding comment for clients whose `User-Agent` nginx takes for MSIE or Chrome.",
    ),
    ignored(
        "client_header_buffer_size",
        HS,
        Arity::Exactly(1),
        Kind::Size,
        TUNING,
    ),
    ignored(
        "reset_timedout_connection",
        HSL,
        Arity::Flag,
        Kind::Flag,
        TUNING,
    ),
    ignored(
        "open_log_file_cache",
        HSL,
        Arity::Range(1, 4),
        Kind::Text,
        "rginx keeps access log files open itself (those named with variables: up to 64 per worker)",
    ),
    // TLS (`ngx_http_ssl_module`), on rustls; what the files hold and what
    // the policy selects is checked where they are loaded
    spec(
        "ssl",
        HS,
        Arity::Flag,
        Kind::Custom(handlers::ssl_enable),
        "Deprecated (nginx warns): `on` in an address's default server makes its connections TLS, as `listen ... ssl`.",
    ),
    spec(
        "ssl_certificate",
        HS,
        Arity::Exactly(1),
        Kind::Custom(handlers::ssl_file_list),
        "A certificate in PEM, its chain after it; may repeat (an RSA and an ECDSA one, each client gets the one it can verify).",
    ),
    spec(
        "ssl_certificate_key",
        HS,
        Arity::Exactly(1),
        Kind::Custom(handlers::ssl_file_list),
        "The private key (PEM: PKCS#8, PKCS#1 or SEC1) of the certificate in the same place.",
    ),
    spec(
        "ssl_protocols",
        HS,
        Arity::AtLeast(1),
        Kind::Bitmask(&["SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]),
        "The protocols offered: of these rustls has TLSv1.2 and TLSv1.3 (the older ones are accepted with a warning). nginx 1.22's default, `TLSv1 TLSv1.1 TLSv1.2`, offers TLS 1.2 only.",
    ),
    spec(
        "ssl_ciphers",
        HS,
        Arity::Exactly(1),
        Kind::Text,
        "An OpenSSL cipher string (`HIGH:!aNULL:!MD5` by default), read as OpenSSL reads it and applied to the TLS 1.2 suites rustls has; one that selects none of them is an error.",
    ),
    spec(
        "ssl_prefer_server_ciphers",
        HS,
        Arity::Flag,
        Kind::Flag,
        "The server's order of suites wins over the client's (`off` by default).",
    ),
    spec(
        "ssl_ecdh_curve",
        HS,
        Arity::Exactly(1),
        Kind::Text,
        "Key exchange groups, `X25519:prime256v1:secp384r1` (`auto`: rustls' own order).",
    ),
    spec(
        "ssl_session_cache",
        HS,
        Arity::AtLeast(1),
        Kind::Custom(handlers::ssl_session_cache),
        "Sessions kept for resumption by ID, in each worker's memory (`shared:` is not shared between workers; tickets resume on any).",
    ),
    spec(
        "ssl_session_timeout",
        HS,
        Arity::Exactly(1),
        Kind::Time,
        "How long a session may be resumed (5m).",
    ),
    spec(
        "ssl_session_tickets",
        HS,
        Arity::Flag,
        Kind::Flag,
        "Session tickets (on): keys made at start, shared by the workers, rotated by rustls.",
    ),
    spec(
        "ssl_password_file",
        HS,
        Arity::Exactly(1),
        Kind::Custom(handlers::conf_file),
        "Read as nginx reads it, but rginx cannot decrypt keys: an encrypted key is an error (decrypt it with `openssl pkey`); with plain keys the file is not needed.",
    ),
    spec(
        "ssl_session_ticket_key",
        HS,
        Arity::Exactly(1),
        Kind::Custom(handlers::ssl_file_list),
        "Files of 48 or 80 random bytes the ticket keys are made from (the first seals, all open): servers given the same files resume each other's sessions. rginx's tickets are not nginx's.",
    ),
    spec(
        "ssl_buffer_size",
        HS,
        Arity::Exactly(1),
        Kind::Size,
        "The largest TLS record written (16k).",
    ),
    spec(
        "ssl_reject_handshake",
        HS,
        Arity::Flag,
        Kind::Flag,
        "Handshakes for this server are refused (an `unrecognized_name` alert): a default server that gives no certificate away.",
    ),
    spec(
        "ssl_early_data",
        HS,
        Arity::Flag,
        Kind::Custom(handlers::ssl_early_data),
        "`off` only: rginx takes no TLS 1.3 early data (replayable).",
    ),
    ignored(
        "ssl_dhparam",
        HS,
        Arity::Exactly(1),
        Kind::Text,
        "rustls offers no DHE suites (ECDHE only, which needs no parameters), so the file has nothing to apply to",
    ),
    spec(
        "ssl_stapling",
        HS,
        Arity::Flag,
        Kind::Flag,
        "Staples the OCSP response of `ssl_stapling_file`; without one a warning (rginx does not ask responders yet: clients check revocation themselves, as when a staple is missing).",
    ),
    spec(
        "ssl_stapling_file",
        HS,
        Arity::Exactly(1),
        Kind::Custom(handlers::conf_file),
        "An OCSP response (DER) stapled for the server's certificates, read at load and reload.",
    ),
    ignored(
        "ssl_stapling_verify",
        HS,
        Arity::Flag,
        Kind::Flag,
        "rginx staples the response of `ssl_stapling_file` as it is, as nginx does for a file",
    ),
    ignored(
        "ssl_stapling_responder",
        HS,
        Arity::Exactly(1),
        Kind::Text,
        "rginx does not ask OCSP responders: give the response in `ssl_stapling_file`",
    ),
    spec(
        "ssl_trusted_certificate",
        HS,
        Arity::Exactly(1),
        Kind::Custom(handlers::conf_file),
        "PEM certificates trusted when verifying client certificates, not named to clients (OCSP staples are not sent yet).",
    ),
    spec(
        "ssl_client_certificate",
        HS,
        Arity::Exactly(1),
        Kind::Custom(handlers::conf_file),
        "PEM certificates of the authorities client certificates are verified against (and named to clients).",
    ),
    spec(
        "ssl_verify_client",
        HS,
        Arity::Exactly(1),
        Kind::Enum(&["off", "on", "optional", "optional_no_ca"]),
        "Asks clients for a certificate; a missing (`on`) or failing one gets nginx's 400 (496, 495).",
    ),
    spec(
        "ssl_verify_depth",
        HS,
        Arity::Exactly(1),
        Kind::Number,
        "The longest chain of intermediates a client certificate may come with (1).",
    ),
    spec(
        "ssl_crl",
        HS,
        Arity::Exactly(1),
        Kind::Custom(handlers::conf_file),
        "Revoked client certificates (PEM CRLs), checked for the client certificate.",
    ),
];

/// The table rows for a directive name (some names have one row per
/// context, like `server` in `http` and in `upstream`).
pub fn lookup(name: &str) -> impl Iterator<Item = &'static DirectiveSpec> + '_ {
    static INDEX: std::sync::OnceLock<HashMap<&'static str, Vec<&'static DirectiveSpec>>> =
        std::sync::OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut map: HashMap<&'static str, Vec<&'static DirectiveSpec>> = HashMap::new();
        for spec in DIRECTIVES {
            map.entry(spec.name).or_default().push(spec);
        }
        map
    });
    index.get(name).into_iter().flatten().copied()
}
