//! Per-request evaluation: from a validated model compiled once per load
//! ([`Runtime`]) and a request head, decide what nginx would do: which
//! server and location, and the exact request sent upstream ([`UpstreamPlan`])
//! — or the answer nginx gives itself (400, 404, the automatic 301).
//!
//! Phases, in nginx's order: parse the request target; find the host;
//! select the server; normalise the URI; match the location; build the
//! upstream request line and headers.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::locate::{LocationId, LocationMatch, LocationSpec, LocationTable, SpecKind};
use crate::model::{
    LocationConf, LocationMatcher, MapConf, Model, ProxyTarget, RedirectPattern, ServerName,
    Settings,
};
use crate::pcre::{MatchError, Pcre, Spans};
use crate::select::{normalize_host, ServerId, ServerSelector};
use crate::template::{CompileError, ConnectionsVar, Names, Part, Template, Var};
use crate::uri;

mod access_log;
mod compile;
mod cookie_flags;
mod credentials;
mod decide;
mod dynamic;
mod errors;
mod eval;
mod head;
mod headers;
mod rate;
mod redirect;
mod ret;
mod runtime;
mod tls;
mod tls_names;

use tls::TlsNaming;
pub use tls::{ClientCertFacts, TlsFacts, UpstreamTls};
mod upstreams;

use access_log::*;
pub use access_log::{AccessLine, LogEscape};
use compile::*;
pub use cookie_flags::CookieFlags;
use cookie_flags::*;
pub use credentials::basic_user;
use decide::*;
pub use decide::{response_header_passes, Internal};
use errors::*;
pub use errors::{ErrorPageHit, ErrorTarget};
use eval::*;
pub use eval::{format_time, set_utc_offset_source, TimeFormat};
pub use head::parse_request_line;
use head::*;
pub use headers::HeaderEdit;
use headers::*;
pub use rate::RateLimit;
use rate::RateSettings;
use redirect::*;
pub use redirect::{rewrite_cookie, OwnLocation, Redirects};
use ret::*;
pub use upstreams::{TryBytes, UpstreamHead, UpstreamStates};

/// The request body as `$request_body` and `$request_body_file` see it
/// once the engine has read it (`ngx_http_variable_request_body`: the
/// bytes while they are in memory, the temp file's name once it went to
/// one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyValue<'a> {
    /// In memory: its bytes.
    Memory(&'a [u8]),
    /// In a temp file: its name.
    File(&'a str),
}

/// A request head as the engine received it.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// Method, as received.
    pub method: &'a str,
    /// Request target, as received.
    pub target: &'a str,
    /// HTTP minor version (0 or 1) of an HTTP/1.x request.
    pub minor_version: u8,
    /// Header lines in order, names as received.
    pub headers: &'a [(&'a str, &'a str)],
    /// The local address the connection arrived on.
    pub local: SocketAddr,
    /// The client's address.
    pub remote: SocketAddr,
    /// When the request arrived (`$msec`, `$time_local`, `$time_iso8601`).
    pub time: SystemTime,
    /// 16 random bytes chosen by the engine (`$request_id`).
    pub request_id: [u8; 16],
    /// The body, once read (`None` before, and when there is none).
    pub body: Option<BodyValue<'a>>,
    /// The upstream servers tried so far (`None`: a request that never
    /// goes upstream, or a head evaluated outside a request).
    pub upstreams: Option<&'a UpstreamStates>,
    /// The client connection it came on.
    pub connection: ConnectionFacts,
    /// Its TLS session (`None`: plain HTTP).
    pub tls: Option<&'a TlsFacts>,
}

/// The client connection a request came on, as its variables see it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionFacts {
    /// Its serial number (`$connection`: nginx's `c->number`).
    pub number: u64,
    /// Requests on it so far, this one included (`$connection_requests`).
    pub requests: u32,
    /// When it was accepted (`$connection_time`; `None` outside a
    /// connection).
    pub accepted: Option<std::time::Instant>,
    /// The request came in the same read as the one before it (`$pipe`:
    /// nginx's `r->pipeline`).
    pub pipelined: bool,
    /// It came to a TLS socket without TLS (nginx answers its requests
    /// with 497, `NGX_HTTP_TO_HTTPS`).
    pub plain_on_tls: bool,
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<'a> {
    /// Send it upstream.
    Proxy(Box<UpstreamPlan<'a>>),
    /// Answer with nginx's page for a redirect `status` and this
    /// `Location` (the automatic 301 to a proxied location's name ending
    /// in `/`, or `return`).
    Moved {
        /// 301, 302, 303, 307 or 308.
        status: u16,
        /// The `Location`.
        location: OwnLocation,
    },
    /// Answer `return`'s text.
    Text {
        /// The status.
        status: u16,
        /// `types` by the URI's extension, else `default_type`.
        content_type: String,
        /// The text.
        body: String,
    },
    /// Close the connection without an answer, logging this status
    /// (`return 444`, also 408 and 499: `ngx_http_terminate_request`).
    Close(u16),
    /// Answer with this status and nginx's error page.
    Respond(u16),
    /// Answer with this status and nginx's error page, after logging this
    /// `[error]` line (a `proxy_pass` with variables that gives no URL
    /// nginx can use, or a host with no `resolver` to resolve it).
    Failed {
        /// 500 or 502.
        status: u16,
        /// `no resolver defined to resolve HOST`, ...
        error: String,
    },
    /// Answer with the status page (`stub_status`).
    Status(StatusFormat),
    /// A regex's match failed (PCRE2's match limit): nginx logs this
    /// `[alert]` line and answers 500, or, for a `server_name` regex,
    /// closes the connection without an answer (`answer` false).
    RegexFailed {
        /// `pcre2_match() failed: -47 on "SUBJECT" using "PATTERN"`.
        alert: String,
        /// Whether nginx sends its 500 page.
        answer: bool,
    },
}

/// The regex groups a request's decision left (the last `server_name`
/// or location regex that matched), for what is evaluated later: the
/// headers filter, the access log.
/// After an internal redirect to a URI it also holds the new `$uri` and
/// `$args`, which nginx's later phases see (`r->uri`, `r->args`).
#[derive(Debug, Clone, Default)]
pub struct Matched {
    captures: Captures,
    redirected: Option<(String, Option<String>)>,
}

/// A response's own header lines, as the headers filter reads them
/// (`$sent_http_*`, `Last-Modified` for `expires modified`).
pub trait SentHeaders {
    /// The first value of the response's header `name` (any case).
    fn sent(&self, name: &str) -> Option<Cow<'_, str>>;
}

/// How the status page is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFormat {
    /// nginx's `stub_status` text.
    Nginx,
    /// Prometheus' text format (`?format=prometheus`).
    Prometheus,
}

/// Where the upstream request goes.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanTarget {
    /// An `upstream` block, by name.
    Upstream(String),
    /// Addresses resolved at load time.
    Addrs(Vec<crate::peer::PeerAddr>),
    /// A host of a `proxy_pass` with variables that no `upstream` names,
    /// resolved per request with the location's `resolver`.
    Resolve {
        /// The host, as the URL has it.
        host: String,
        /// The port (80 unless the URL gives one).
        port: u16,
        /// The resolver: its index in [`Runtime::resolvers`].
        resolver: usize,
        /// `resolver_timeout`.
        timeout: Duration,
    },
}

/// How the request body is sent upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPlan {
    /// No body.
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// A chunked body: read whole (within `client_max_body_size`), then
    /// sent with `Content-Length`, as nginx does with its default request
    /// buffering. The header goes at `UpstreamPlan::length_at`.
    Dechunk,
    /// A chunked body streamed as it comes, chunked again: what each read
    /// of the client's brings is one chunk (`proxy_request_buffering off`
    /// to an HTTP/1.1 upstream, `ngx_http_proxy_body_output_filter`).
    Rechunk,
}
/// How a request body is read before it goes upstream
/// (`proxy_request_buffering` and the `client_body_*` directives).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyBuffering {
    /// The whole body is read before a server is chosen
    /// (`proxy_request_buffering on`, nginx's default); a chunked body is
    /// read whole either way.
    pub whole: bool,
    /// `client_body_buffer_size` (16k, two memory pages): what stays in
    /// memory; a longer body goes to a temp file.
    pub memory: u64,
    /// `client_body_temp_path`.
    pub temp_path: crate::model::TempPath,
    /// `client_body_in_file_only`.
    pub in_file: InFileOnly,
}

/// What goes upstream as a request's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentBody {
    /// The client's (`proxy_pass_request_body on`, the default).
    Client,
    /// Nothing: the client's is read and dropped
    /// (`proxy_pass_request_body off`).
    Withheld,
    /// `proxy_set_body`'s value, evaluated for the request (the client's
    /// is read and dropped).
    Set(String),
}

/// How a backend's response is read ahead of the client
/// (`proxy_buffering` and its buffers and temp files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseBuffering {
    /// `proxy_buffering` (on).
    pub on: bool,
    /// `proxy_buffers`: count times size (8 4k).
    pub memory: u64,
    /// `proxy_max_temp_file_size` (1024m; 0: no file).
    pub max_file: u64,
    /// `proxy_temp_path`.
    pub temp_path: crate::model::TempPath,
}

impl ResponseBuffering {
    fn compile(settings: &Settings) -> ResponseBuffering {
        ResponseBuffering {
            on: settings.flag("proxy_buffering", true),
            memory: match settings.get("proxy_buffers").map(|s| &s.value) {
                Some(crate::model::Value::Buffers { count, size }) => count * size,
                _ => 8 * 4096,
            },
            max_file: settings.size("proxy_max_temp_file_size", 1024 * 1024 * 1024),
            temp_path: match settings.get("proxy_temp_path").map(|s| &s.value) {
                Some(crate::model::Value::TempPath(p)) => p.clone(),
                _ => crate::model::TempPath::plain(crate::model::TempPath::PROXY),
            },
        }
    }
}

/// `proxy_ignore_headers`: the backend headers nginx does not act on
/// (`ngx_http_upstream_ignore_headers_masks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IgnoredHeaders(u16);

impl IgnoredHeaders {
    /// The names the directive takes, in nginx's order (any case).
    pub const NAMES: &'static [&'static str] = &[
        "X-Accel-Redirect",
        "X-Accel-Expires",
        "X-Accel-Limit-Rate",
        "X-Accel-Buffering",
        "X-Accel-Charset",
        "Expires",
        "Cache-Control",
        "Set-Cookie",
        "Vary",
    ];

    fn compile(settings: &Settings) -> IgnoredHeaders {
        let mut mask = 0;
        if let Some(crate::model::Value::Words(words)) =
            settings.get("proxy_ignore_headers").map(|s| &s.value)
        {
            for word in words {
                if let Some(i) = Self::NAMES
                    .iter()
                    .position(|n| n.eq_ignore_ascii_case(word))
                {
                    mask |= 1 << i;
                }
            }
        }
        IgnoredHeaders(mask)
    }

    fn has(self, name: &str) -> bool {
        Self::NAMES
            .iter()
            .position(|n| *n == name)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }

    /// A backend's `X-Accel-Redirect` is not followed.
    pub fn redirect(self) -> bool {
        self.has("X-Accel-Redirect")
    }

    /// A backend's `X-Accel-Charset` is not looked at.
    pub fn charset(self) -> bool {
        self.has("X-Accel-Charset")
    }

    /// A backend's `X-Accel-Limit-Rate` does not change the response's
    /// rate.
    pub fn limit_rate(self) -> bool {
        self.has("X-Accel-Limit-Rate")
    }

    /// A backend's `X-Accel-Buffering` does not change `proxy_buffering`.
    pub fn buffering(self) -> bool {
        self.has("X-Accel-Buffering")
    }
}

/// `client_body_in_file_only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFileOnly {
    /// Only a body longer than the memory buffer goes to a file, removed
    /// when the request ends.
    Off,
    /// Every body goes to a file, removed when the request ends.
    Clean,
    /// Every body goes to a file, which stays.
    Keep,
}

impl BodyBuffering {
    fn compile(settings: &Settings) -> BodyBuffering {
        BodyBuffering {
            whole: settings.flag("proxy_request_buffering", true),
            memory: settings.size("client_body_buffer_size", 16 * 1024),
            temp_path: match settings.get("client_body_temp_path").map(|s| &s.value) {
                Some(crate::model::Value::TempPath(p)) => p.clone(),
                _ => crate::model::TempPath::plain(crate::model::TempPath::CLIENT_BODY),
            },
            in_file: match settings.text("client_body_in_file_only") {
                Some("on") => InFileOnly::Keep,
                Some("clean") => InFileOnly::Clean,
                _ => InFileOnly::Off,
            },
        }
    }
}

/// The request nginx would send upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamPlan<'a> {
    /// The location's `proxy_redirect` rules (nginx's implicit `default`
    /// unless set): how a backend's `Location` and `Refresh` are rewritten.
    pub redirects: Redirects<'a>,
    /// `proxy_cookie_domain` rules for a backend's `Set-Cookie`.
    pub cookie_domains: Redirects<'a>,
    /// `proxy_cookie_path` rules for a backend's `Set-Cookie`.
    pub cookie_paths: Redirects<'a>,
    /// `proxy_cookie_flags` rules for a backend's `Set-Cookie`.
    pub cookie_flags: CookieFlags<'a>,
    /// The `hash` key of the upstream group, evaluated for this request.
    pub balance_key: Option<String>,
    /// The backend response headers hidden from the client, lowercase
    /// (`proxy_hide_header`, `proxy_pass_header`; `None`: nginx's
    /// defaults).
    pub response_hidden: Option<&'a [String]>,
    /// nginx's `[alert]` lines for regex matches that failed while the
    /// request was evaluated (a `map` regex at PCRE2's match limit: the
    /// map took its default).
    pub alerts: Vec<String>,
    /// The server that handles the request.
    pub server: ServerId,
    /// The location that handles it.
    pub location: LocationId,
    /// Where to send it.
    pub target: Cow<'a, PlanTarget>,
    /// The client's method (what decides whether a request may be sent
    /// again, `non_idempotent`).
    pub method: &'a str,
    /// The method of the request line sent upstream: the client's, or
    /// `proxy_method`'s.
    pub sent_method: Cow<'a, str>,
    /// Request target sent upstream.
    pub uri: Cow<'a, str>,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: &'static str,
    /// Header lines in the order nginx sends them (borrowed from the
    /// configuration and the request where they are not rendered).
    pub headers: Vec<(&'a str, Cow<'a, str>)>,
    /// For the lines passed on from the client's request (the last ones of
    /// `headers`, from `headers.len() - passed.len()`): the index of each in
    /// the request's header lines, so that its value can go out as the
    /// client's raw bytes (text here has U+FFFD for bytes that are not
    /// UTF-8; nginx passes the bytes untouched).
    pub passed: Vec<usize>,
    /// The request body.
    pub body: BodyPlan,
    /// What goes upstream uses the body's variables and the body is still
    /// to be read: the engine decides again once it has it, with
    /// [`RequestHead::body`] set.
    pub needs_body: bool,
    /// With [`BodyPlan::Dechunk`]: the index in `headers` where the
    /// `Content-Length` of the de-chunked body goes.
    pub length_at: Option<usize>,
    /// `client_max_body_size` (0: no limit), for bodies counted as read.
    pub max_body: u64,
    /// How the body is read before it is sent.
    pub body_buffering: &'a BodyBuffering,
    /// What goes upstream as the body.
    pub sent_body: SentBody,
    /// How the response is read ahead of the client.
    pub response_buffering: &'a ResponseBuffering,
    /// `proxy_ignore_headers`.
    pub ignored: IgnoredHeaders,
    /// The client's request carried `Upgrade`: a `101` from the backend
    /// then starts a tunnel (nginx's only condition; without it a `101` is
    /// an ordinary response).
    pub upgrade: bool,
    /// `proxy_connect_timeout`
    pub connect_timeout: Duration,
    /// `proxy_read_timeout`
    pub read_timeout: Duration,
    /// `proxy_send_timeout`
    pub send_timeout: Duration,
    /// `proxy_buffer_size` (4k, one memory page): the largest response
    /// head accepted from the backend.
    pub buffer_size: u64,
    /// `proxy_next_upstream` and `proxy_next_upstream_tries`.
    pub next_upstream: NextUpstream,
    /// `proxy_pass https://`: the connection's TLS.
    pub tls: Option<UpstreamTls<'a>>,
}

/// When a request moves on to the next upstream server
/// (`proxy_next_upstream`, `_tries`, `_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextUpstream {
    /// On a connection error, or an error sending the request or reading
    /// the response head (`error`, default on).
    pub error: bool,
    /// On a timeout connecting or reading the response head (`timeout`,
    /// default on).
    pub timeout: bool,
    /// On an empty or invalid response head (`invalid_header`).
    pub invalid_header: bool,
    /// The statuses `http_500` ... `http_429` named, as a bit per entry of
    /// [`NextUpstream::STATUSES`].
    statuses: u8,
    /// Also for POST, LOCK and PATCH once the request was sent
    /// (`non_idempotent`).
    pub non_idempotent: bool,
    /// At most this many servers (0: all).
    pub tries: u64,
    /// Stop trying after this long (zero: no limit).
    pub time_limit: Duration,
}

impl NextUpstream {
    /// The statuses `proxy_next_upstream` can name.
    pub const STATUSES: [u16; 7] = [500, 502, 503, 504, 403, 404, 429];

    /// Whether a response with this status moves on to the next server.
    pub fn on_status(&self, status: u16) -> bool {
        Self::STATUSES
            .iter()
            .position(|s| *s == status)
            .is_some_and(|i| self.statuses & (1 << i) != 0)
    }

    /// Whether moving on after this status counts as a failure of the
    /// server (`max_fails`): 403 and 404 never do.
    pub fn status_is_failure(status: u16) -> bool {
        !matches!(status, 403 | 404)
    }

    /// Whether a request with `method` may go to another server once it
    /// was sent to one: nginx never resends POST, LOCK or PATCH unless
    /// `non_idempotent` is on.
    pub fn may_resend(&self, method: &str) -> bool {
        self.non_idempotent || !matches!(method, "POST" | "LOCK" | "PATCH")
    }
}

impl UpstreamPlan<'_> {
    /// Whether the backend's response header `name` is passed to the
    /// client (`ngx_http_upstream_hide_headers_hash`).
    pub fn passes_response_header(&self, name: &str) -> bool {
        header_passes(name, self.response_hidden)
    }

    /// The request head as it goes on the wire (CRLF line ends).
    /// `body_length` is the length of a de-chunked body, once known.
    pub fn head(&self, body_length: Option<u64>) -> String {
        let mut out = format!("{} {} {}\r\n", self.sent_method, self.uri, self.version);
        for (i, (name, value)) in self.headers.iter().enumerate() {
            if let (Some(at), Some(n)) = (self.length_at, body_length) {
                if at == i {
                    let _ = write!(out, "Content-Length: {n}\r\n");
                }
            }
            let _ = write!(out, "{name}: {value}\r\n");
        }
        if let (Some(at), Some(n)) = (self.length_at, body_length) {
            if at == self.headers.len() {
                let _ = write!(out, "Content-Length: {n}\r\n");
            }
        }
        out.push_str("\r\n");
        out
    }
}

/// What the engine knows once a response is done, for `access_log`.
#[derive(Debug, Clone, Default)]
pub struct ResponseFacts {
    /// Status sent to the client.
    pub status: u16,
    /// Body bytes sent to the client.
    pub body_bytes_sent: u64,
    /// All bytes sent to the client.
    pub bytes_sent: u64,
    /// The request's bytes read: its head, and its body where one was
    /// read (nginx's `r->request_length`: a discarded body is not counted).
    pub request_length: u64,
    /// Time from the first request byte to the last response byte.
    pub request_time: Duration,
}

/// Whose `access_log` settings a request is logged with: its location's
/// once one matched, else its server's (a 404 without a location, or a
/// request refused before one was looked for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogScope {
    /// The server that took the request (the default one for a request
    /// refused before its host was known).
    pub server: ServerId,
    /// The location, when one matched.
    pub location: Option<LocationId>,
}

/// How rginx treats the client connection in a server or location:
/// nginx's keep-alive, timeout and head-size settings, compiled once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSettings {
    /// `keepalive_timeout` (75 s; zero: no keep-alive).
    pub keepalive_timeout: Duration,
    /// Its second value: a `Keep-Alive: timeout=N` response header.
    pub keepalive_header: Option<Duration>,
    /// `keepalive_requests` (1000): the last request of a connection.
    pub keepalive_requests: u64,
    /// `keepalive_time` (1 h): a connection older than this serves no
    /// further request.
    pub keepalive_time: Duration,
    /// `client_header_timeout` (60 s).
    pub header_timeout: Duration,
    /// `client_body_timeout` (60 s), between two reads of a body.
    pub body_timeout: Duration,
    /// `send_timeout` (60 s), between two writes to the client.
    pub send_timeout: Duration,
    /// `large_client_header_buffers` (4 8k): the longest request line or
    /// header line, and how many such buffers a head may fill.
    pub header_buffer: u64,
    /// How many of those buffers.
    pub header_buffers: u64,
    /// `max_headers` (1000): the most header lines a request may have.
    pub max_headers: u64,
    /// `server_tokens` (on; `build` is `on` for a build without a name):
    /// whether the `Server` header and the error pages' signature carry
    /// the version.
    pub server_tokens: bool,
    /// `msie_padding` (on): nginx's error pages get a padding for MSIE
    /// and Chrome, which otherwise show their own "friendly" page.
    pub msie_padding: bool,
    /// `keepalive_disable` (msie6): no keep-alive after a POST from old
    /// MSIE.
    pub keepalive_disable_msie6: bool,
    /// `keepalive_disable safari`: no keep-alive for Safari on Mac OS X.
    pub keepalive_disable_safari: bool,
}

impl ClientSettings {
    fn compile(settings: &Settings) -> ClientSettings {
        let sixty = Duration::from_secs(60);
        let (keepalive_timeout, keepalive_header) =
            match settings.get("keepalive_timeout").map(|s| &s.value) {
                Some(crate::model::Value::KeepaliveTimeout(t, h)) => (*t, *h),
                _ => (Duration::from_secs(75), None),
            };
        let (header_buffers, header_buffer) = match settings
            .get("large_client_header_buffers")
            .map(|s| &s.value)
        {
            Some(crate::model::Value::Buffers { count, size }) => (*count, *size),
            _ => (4, 8192),
        };
        let keepalive_disable = match settings.get("keepalive_disable").map(|s| &s.value) {
            Some(crate::model::Value::Words(words)) => Some(words),
            _ => None,
        };
        ClientSettings {
            keepalive_timeout,
            keepalive_header,
            keepalive_requests: match settings.get("keepalive_requests").map(|s| &s.value) {
                Some(crate::model::Value::Number(n)) => *n,
                _ => 1000,
            },
            keepalive_time: settings.time("keepalive_time", Duration::from_secs(3600)),
            header_timeout: settings.time("client_header_timeout", sixty),
            body_timeout: settings.time("client_body_timeout", sixty),
            send_timeout: settings.time("send_timeout", sixty),
            header_buffer,
            header_buffers,
            max_headers: match settings.get("max_headers").map(|s| &s.value) {
                Some(crate::model::Value::Number(n)) => *n,
                _ => 1000,
            },
            server_tokens: settings.text("server_tokens") != Some("off"),
            msie_padding: settings.flag("msie_padding", true),
            keepalive_disable_msie6: keepalive_disable
                .is_none_or(|w| w.iter().any(|w| w == "msie6")),
            keepalive_disable_safari: keepalive_disable
                .is_some_and(|w| w.iter().any(|w| w == "safari")),
        }
    }
}

/// nginx's defaults for headers to upstreams (1.22), after the user's.
const DEFAULT_HEADERS: &[(&str, DefaultValue)] = &[
    ("Host", DefaultValue::ProxyHost),
    ("Connection", DefaultValue::Close),
    ("Content-Length", DefaultValue::BodyLength),
    ("Transfer-Encoding", DefaultValue::Chunked),
    ("TE", DefaultValue::Empty),
    ("Keep-Alive", DefaultValue::Empty),
    ("Expect", DefaultValue::Empty),
    ("Upgrade", DefaultValue::Empty),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DefaultValue {
    ProxyHost,
    Close,
    BodyLength,
    Chunked,
    Empty,
}

#[derive(Debug, Clone)]
enum HeaderValue {
    User(Template),
    Default(DefaultValue),
}

#[derive(Debug, Clone)]
struct HeaderRule {
    name: String,
    value: HeaderValue,
}

#[derive(Debug, Clone)]
enum ProxyKind {
    /// A literal URL.
    Static {
        target: PlanTarget,
        /// `$proxy_host`
        host: String,
        port: u16,
        /// The URI part, and the length of the location name it replaces.
        uri: Option<(String, usize)>,
        /// `https://`: how the connection's TLS is named.
        tls: Option<TlsNaming>,
    },
    /// A URL with variables, evaluated per request (`tls`: how a
    /// connection is named when the URL turns out `https://`).
    Variable(Template, TlsNaming),
}

#[derive(Debug, Clone)]
struct CompiledLocation {
    /// The location's name (for redirects).
    name: String,
    /// `stub_status` is its content handler.
    status_page: bool,
    proxy: Option<ProxyKind>,
    version: &'static str,
    headers: Vec<HeaderRule>,
    /// Lowercased names of every header rule: client headers with these
    /// names are never passed.
    hidden: Vec<String>,
    pass_request_headers: bool,
    /// `client_max_body_size` in bytes (0: no limit).
    max_body: u64,
    /// How a request body is read.
    body_buffering: BodyBuffering,
    /// `proxy_pass_request_body`.
    pass_request_body: bool,
    /// `proxy_set_body`.
    set_body: Option<Template>,
    /// How a response is read ahead of the client.
    response_buffering: ResponseBuffering,
    ignored: IgnoredHeaders,
    /// `access_log` targets: path and index into `Runtime::formats`.
    access_logs: Vec<CompiledAccessLog>,
    connect_timeout: Duration,
    read_timeout: Duration,
    send_timeout: Duration,
    buffer_size: u64,
    next_upstream: NextUpstream,
    client: ClientSettings,
    /// The location's `error_log` list (inherited), empty when only the
    /// main level has one.
    error_logs: Vec<crate::model::ErrorLog>,
    /// Its index in `Runtime::error_log_sets`, once interned.
    error_log_set: Option<usize>,
    /// The effective `proxy_redirect` rules (empty: none apply).
    redirects: Vec<CompiledRedirect>,
    /// Whether some rule needs the request's variables.
    redirects_vary: bool,
    /// `proxy_cookie_domain` and `proxy_cookie_path` rules, and whether
    /// some need the request's variables.
    cookie_rules: (Vec<CompiledRedirect>, Vec<CompiledRedirect>, bool),
    /// `proxy_cookie_flags` rules.
    cookie_flags: Vec<CompiledCookieFlags>,
    /// `add_header` and `expires` (`None`: neither applies).
    header_filter: Option<HeaderFilter>,
    /// The location's `return`.
    ret: Option<CompiledReturn>,
    /// Its `error_page` entries.
    error_pages: Option<ErrorPages>,
    /// `internal`: reached by internal redirects only.
    internal: bool,
    /// `proxy_intercept_errors`.
    intercept_errors: bool,
    /// `proxy_method`.
    method: Option<Template>,
    /// nginx's default hidden response headers with its
    /// `proxy_hide_header` names, less its `proxy_pass_header` ones
    /// (`None`: neither directive applies).
    response_hidden: Option<Vec<String>>,
    /// `types` and `default_type`.
    types: ContentTypes,
    /// How its relative redirects are made absolute.
    style: RedirectStyle,
    /// Its `resolver` (inherited): an index in `Runtime::resolvers`, set
    /// once every location is compiled.
    resolver: Option<usize>,
    /// The `resolver` setting, until then.
    resolver_conf: Option<std::sync::Arc<crate::model::ResolverConf>>,
    /// `limit_rate` and `limit_rate_after`.
    rate: RateSettings,
    /// The request it sends upstream uses `$request_body` or
    /// `$request_body_file` (set once the maps are known).
    proxy_uses_body: bool,
    /// `resolver_timeout`.
    resolver_timeout: Duration,
}

#[derive(Debug, Clone)]
struct CompiledServer {
    primary_name: String,
    /// `limit_rate` and `limit_rate_after` for its own answers.
    rate: RateSettings,
    /// `stub_status` at the server level: the page for requests no
    /// location takes.
    status_page: bool,
    table: LocationTable,
    locations: Vec<CompiledLocation>,
    underscores_in_headers: bool,
    ignore_invalid_headers: bool,
    /// The server level's `access_log` targets (for requests no location
    /// took).
    access_logs: Vec<CompiledAccessLog>,
    /// The server level's client settings.
    client: ClientSettings,
    /// The server level's `error_log` list and its interned index.
    error_logs: Vec<crate::model::ErrorLog>,
    error_log_set: Option<usize>,
    /// The server level's `add_header` and `expires` (for requests no
    /// location took).
    header_filter: Option<HeaderFilter>,
    /// The server level's `return` (before any location is looked for).
    ret: Option<CompiledReturn>,
    /// The server level's `error_page` entries (for requests no location
    /// took).
    error_pages: Option<ErrorPages>,
    /// The server level's `types` and `default_type`.
    types: ContentTypes,
    /// How the server level's relative redirects are made absolute.
    style: RedirectStyle,
    /// `ssl_verify_client` (`off`, `on`, `optional`, `optional_no_ca`).
    verify_client: &'static str,
}

#[derive(Debug, Clone)]
struct CompiledMap {
    source: Template,
    hostnames: bool,
    /// Exact keys (foldhash: a map of 100,000 keys loads in a few ms),
    /// shared by the workers' copies of the runtime.
    exact: std::sync::Arc<foldhash::HashMap<String, Template>>,
    leading: Vec<(String, Template)>,
    trailing: Vec<(String, Template)>,
    regexes: Vec<(Pcre, Template)>,
    default: Option<Template>,
}

/// A configuration compiled for request evaluation.
#[derive(Debug, Clone)]
pub struct Runtime {
    selector: ServerSelector,
    servers: Vec<CompiledServer>,
    maps: Vec<CompiledMap>,
    /// Names of the `upstream` blocks, lowercased (a `proxy_pass` with
    /// variables may name one).
    upstreams: Vec<String>,
    /// Each of those groups' `hash` key, if it balances by one.
    upstream_keys: Vec<Option<Template>>,
    /// The hosts of `proxy_pass` URLs without variables, lowercased,
    /// with their ports and addresses: nginx makes each an implicit
    /// upstream, which a `proxy_pass` with variables naming the same host
    /// and port uses without resolving.
    implicit: Vec<(String, u16, Vec<crate::peer::PeerAddr>)>,
    /// The distinct `resolver` directives, in the configuration's order.
    resolvers: Vec<std::sync::Arc<crate::model::ResolverConf>>,
    /// `log_format`s by name, `combined` first.
    formats: Vec<CompiledFormat>,
    hostname: String,
    /// The distinct `error_log` lists below the main level.
    error_log_sets: Vec<Vec<crate::model::ErrorLog>>,
    /// Some value reads `$upstream_http_NAME`.
    upstream_headers: bool,
}

/// A problem compiling the model (normally caught by validation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RuntimeError(pub String);

impl From<CompileError> for RuntimeError {
    fn from(e: CompileError) -> Self {
        RuntimeError(e.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_no_copy_path_agrees_with_full_normalisation(path in "/[a/.%2Fb]{0,12}") {
            let full = uri::normalize_path(&path, true);
            match normalized(&path) {
                Ok(fast) => prop_assert_eq!(Ok(fast.into_owned()), full),
                Err(e) => prop_assert_eq!(Err(e), full),
            }
        }
    }

    #[test]
    fn times_are_written_like_nginx() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_633_847);
        let mut out = String::new();
        format_time(t, TimeFormat::Local, &mut out);
        assert_eq!(out, "25/Nov/2026:19:10:47 +0000");
        out.clear();
        format_time(t, TimeFormat::Iso8601, &mut out);
        assert_eq!(out, "2026-11-25T19:10:47+00:00");
        out.clear();
        format_time(
            UNIX_EPOCH + Duration::from_secs(951_782_400),
            TimeFormat::Iso8601,
            &mut out,
        );
        assert_eq!(out, "2000-02-29T00:00:00+00:00");
    }

    fn runtime(http: &str) -> Runtime {
        let text = format!("events {{}}\nhttp {{\n{http}\n}}\n");
        let parsed = rginx_config::parse_str(std::path::Path::new("t.conf"), &text);
        let checked = crate::build(
            &parsed,
            &crate::LiteralResolver,
            crate::BuildOptions::default(),
        );
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
        Runtime::new(&checked.model, "h").unwrap()
    }

    fn decide<'a>(
        rt: &'a Runtime,
        target: &'a str,
        headers: &'a [(&'a str, &'a str)],
    ) -> Decision<'a> {
        rt.decide(&RequestHead {
            method: "GET",
            target,
            minor_version: 1,
            headers,
            local: "127.0.0.1:8081".parse().unwrap(),
            remote: "127.0.0.1:40000".parse().unwrap(),
            time: UNIX_EPOCH,
            request_id: [0xab; 16],
            body: None,
            upstreams: None,
            connection: Default::default(),
            tls: None,
        })
    }

    /// The `Location` a backend's `value` becomes for a request to `target`
    /// (`None`: no rule applies).
    fn rewritten(rt: &Runtime, target: &str, value: &str) -> Option<String> {
        let host = [("Host", "site.example")];
        let Decision::Proxy(plan) = decide(rt, target, &host) else {
            panic!("{target} is not proxied")
        };
        let out = plan.redirects.rewrite(value.as_bytes(), 0)?;
        Some(String::from_utf8(out).unwrap())
    }

    #[test]
    fn proxy_redirect_rules_apply_in_order_as_nginx_s() {
        let rt = runtime(
            r#"server { listen 127.0.0.1:8081;
                proxy_redirect http://srv/ /from-server/;
                location /inherit/ { proxy_pass http://127.0.0.1:9001/; }
                location /own/ {
                    proxy_pass http://127.0.0.1:9001/deep/;
                    proxy_redirect ~*^http://(?<h>[a-z.]+):(\d+)/(.*)$ https://$h/$3?p=$2;
                    proxy_redirect default;
                    proxy_redirect http://$host/ /same-host/;
                }
                location /off/ { proxy_pass http://127.0.0.1:9001; proxy_redirect off; }
                location ~ ^/re/(.*) { proxy_pass http://127.0.0.1:9001; proxy_redirect http://x/ /$1/; }
            }"#,
        );
        // the server's rule replaces the implicit default
        assert_eq!(
            rewritten(&rt, "/inherit/a", "http://srv/x").as_deref(),
            Some("/from-server/x")
        );
        assert_eq!(
            rewritten(&rt, "/inherit/a", "http://127.0.0.1:9001/x"),
            None
        );
        // the regex is tried first, is caseless, and replaces the whole value
        assert_eq!(
            rewritten(&rt, "/own/a", "HTTP://back.example:81/p/q").as_deref(),
            Some("https://back.example/p/q?p=81")
        );
        // then `default` (the URL to the location's name)
        assert_eq!(
            rewritten(&rt, "/own/a", "http://127.0.0.1:9001/deep/z").as_deref(),
            Some("/own/z")
        );
        // then a rule with the request's variables
        assert_eq!(
            rewritten(&rt, "/own/a", "http://site.example/k").as_deref(),
            Some("/same-host/k")
        );
        assert_eq!(rewritten(&rt, "/off/a", "http://127.0.0.1:9001/z"), None);
        // a prefix rule may use the location's captures
        assert_eq!(
            rewritten(&rt, "/re/cap", "http://x/y").as_deref(),
            Some("/cap/y")
        );
        // the nested location inherits the enclosing one's implicit default
        let rt = runtime(
            "server { listen 127.0.0.1:8081;
                location /outer/ {
                    proxy_pass http://127.0.0.1:9001/o/;
                    location /outer/inner/ { proxy_pass http://127.0.0.1:9002/i/; }
                }
            }",
        );
        assert_eq!(
            rewritten(&rt, "/outer/inner/a", "http://127.0.0.1:9001/o/z").as_deref(),
            Some("/outer/z")
        );
        assert_eq!(
            rewritten(&rt, "/outer/inner/a", "http://127.0.0.1:9002/i/z"),
            None
        );
    }

    #[test]
    fn variable_proxy_pass_needs_an_upstream_or_an_address() {
        let rt = runtime(
            "upstream app { server 127.0.0.1:9001; }
             map $arg_to $dest { default app; b 127.0.0.1:9002; c nowhere.test; }
             server { listen 127.0.0.1:8081; location / { proxy_pass http://$dest; } }",
        );
        let host = [("Host", "x")];
        let Decision::Proxy(p) = decide(&rt, "/a?to=a", &host) else {
            panic!()
        };
        assert_eq!(*p.target, PlanTarget::Upstream("app".into()));
        assert_eq!(p.uri, "/a?to=a");
        let Decision::Proxy(p) = decide(&rt, "/a?to=b", &host) else {
            panic!()
        };
        assert_eq!(
            *p.target,
            PlanTarget::Addrs(vec!["127.0.0.1:9002".parse::<SocketAddr>().unwrap().into()])
        );
        assert_eq!(p.headers[0], ("Host", "127.0.0.1:9002".into()));
        assert_eq!(
            decide(&rt, "/a?to=c", &host),
            Decision::Failed {
                status: 502,
                error: "no resolver defined to resolve nowhere.test".into()
            }
        );
    }

    #[test]
    fn variable_hosts_go_to_the_resolver_or_implicit_upstreams() {
        let rt = runtime(
            "upstream app { server 127.0.0.1:9001; }
             server { listen 127.0.0.1:8081;
               location /lit/ { proxy_pass http://localhost:9003; }
               location / { resolver 127.0.0.53 valid=5s; resolver_timeout 2s;
                 proxy_pass http://$arg_h; } }",
        );
        let host = [("Host", "x")];
        let target = |uri: &str| match decide(&rt, uri, &host) {
            Decision::Proxy(p) => Ok((*p.target).clone()),
            other => Err(format!("{other:?}")),
        };
        // an upstream block takes no port; the same host with one is resolved
        assert_eq!(target("/?h=APP"), Ok(PlanTarget::Upstream("APP".into())));
        let resolve = |host: &str, port| PlanTarget::Resolve {
            host: host.into(),
            port,
            resolver: 0,
            timeout: Duration::from_secs(2),
        };
        assert_eq!(target("/?h=app:9001"), Ok(resolve("app", 9001)));
        assert_eq!(target("/?h=one.test"), Ok(resolve("one.test", 80)));
        // a literal proxy_pass's host and port: its addresses
        let Ok(PlanTarget::Addrs(addrs)) = target("/?h=LocalHost:9003") else {
            panic!("{:?}", target("/?h=LocalHost:9003"))
        };
        assert!(!addrs.is_empty());
        assert!(target("/?h=one.test:0")
            .unwrap_err()
            .contains("invalid port"));
        assert!(target("/?h=").unwrap_err().contains("invalid URL prefix"));
        assert_eq!(rt.resolvers().len(), 1);
        assert_eq!(rt.resolvers()[0].valid, Some(Duration::from_secs(5)));
    }

    #[test]
    fn upgrade_follows_the_client_request_and_times_are_filled() {
        let rt = runtime(
            "server { listen 127.0.0.1:8081; location / { proxy_pass http://127.0.0.1:9001;
             proxy_set_header X-Id $request_id; proxy_set_header X-T $time_iso8601; } }",
        );
        let Decision::Proxy(p) = decide(&rt, "/", &[("Host", "x"), ("Upgrade", "websocket")])
        else {
            panic!()
        };
        assert!(p.upgrade);
        assert_eq!(p.headers[0].1, "abababababababababababababababab");
        assert_eq!(p.headers[1].1, "1970-01-01T00:00:00+00:00");
        let Decision::Proxy(p) = decide(&rt, "/", &[("Host", "x")]) else {
            panic!()
        };
        assert!(!p.upgrade);
    }

    #[test]
    fn response_headers_nginx_replaces_are_not_passed() {
        assert!(!response_header_passes("Server"));
        assert!(!response_header_passes("transfer-encoding"));
        assert!(!response_header_passes("X-Accel-Redirect"));
        assert!(response_header_passes("Set-Cookie"));
        assert!(response_header_passes("Upgrade"));
    }

    #[test]
    fn request_lines_are_split_like_nginx() {
        assert_eq!(parse_request_line("GET /x HTTP/1.1"), Ok(("GET", "/x", 1)));
        assert_eq!(parse_request_line("GET /x HTTP/1.0"), Ok(("GET", "/x", 0)));
        assert_eq!(parse_request_line("GET /x HTTP/2.0"), Err(505));
        assert_eq!(parse_request_line("GET /a b HTTP/1.1"), Err(400));
        assert_eq!(parse_request_line("GET /x"), Err(400));
    }
}
