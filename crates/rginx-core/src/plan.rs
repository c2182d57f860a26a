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
    LocationConf, LocationMatcher, MapConf, Model, ProxyTarget, ServerName, Settings,
};
use crate::pcre::{MatchError, Pcre, Spans};
use crate::select::{normalize_host, ServerId, ServerSelector};
use crate::template::{CompileError, Names, Template, Var};
use crate::uri;

mod compile;
mod eval;

use compile::*;
use eval::*;
pub use eval::{format_time, TimeFormat};

/// A request head as the engine received it.
#[derive(Debug, Clone)]
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
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<'a> {
    /// Send it upstream.
    Proxy(Box<UpstreamPlan<'a>>),
    /// Answer `301 Moved Permanently` with this `Location` (nginx's
    /// automatic redirect to a proxied location's name ending in `/`).
    Redirect(String),
    /// Answer with this status and nginx's error page.
    Respond(u16),
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
    Addrs(Vec<SocketAddr>),
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
}
/// The request nginx would send upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamPlan<'a> {
    /// nginx's implicit `proxy_redirect default` (pattern, replacement): a
    /// backend's `Location` (and `Refresh`'s `url=`) that starts with the
    /// pattern gets the replacement instead.
    pub redirect: Option<(&'a str, &'a str)>,
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
    /// The request line: method, URI and version (`GET /x HTTP/1.0`).
    pub method: &'a str,
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
    /// With [`BodyPlan::Dechunk`]: the index in `headers` where the
    /// `Content-Length` of the de-chunked body goes.
    pub length_at: Option<usize>,
    /// `client_max_body_size` (0: no limit), for bodies counted as read.
    pub max_body: u64,
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
    /// The request head as it goes on the wire (CRLF line ends).
    /// `body_length` is the length of a de-chunked body, once known.
    pub fn head(&self, body_length: Option<u64>) -> String {
        let mut out = format!("{} {} {}\r\n", self.method, self.uri, self.version);
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

/// nginx's predefined `combined` log format.
const COMBINED: &str =
    "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\"";

/// What the engine knows once a response is done, for `access_log`.
#[derive(Debug, Clone, Default)]
pub struct ResponseFacts {
    /// Status sent to the client.
    pub status: u16,
    /// Body bytes sent to the client.
    pub body_bytes_sent: u64,
    /// All bytes sent to the client.
    pub bytes_sent: u64,
    /// Time from the first request byte to the last response byte.
    pub request_time: Duration,
    /// The upstream server used.
    pub upstream_addr: Option<SocketAddr>,
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
        ClientSettings {
            keepalive_timeout,
            keepalive_header,
            keepalive_requests: match settings.get("keepalive_requests").map(|s| &s.value) {
                Some(crate::model::Value::Number(n)) => *n,
                _ => 1000,
            },
            header_timeout: settings.time("client_header_timeout", sixty),
            body_timeout: settings.time("client_body_timeout", sixty),
            send_timeout: settings.time("send_timeout", sixty),
            header_buffer,
            header_buffers,
            max_headers: match settings.get("max_headers").map(|s| &s.value) {
                Some(crate::model::Value::Number(n)) => *n,
                _ => 1000,
            },
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
    },
    /// A URL with variables, evaluated per request.
    Variable(Template),
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
    /// `access_log` targets: path and index into `Runtime::formats`.
    access_logs: Vec<(Template, usize)>,
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
    /// nginx's implicit `proxy_redirect default`: (pattern, replacement).
    redirect: Option<(String, String)>,
}

#[derive(Debug, Clone)]
struct CompiledServer {
    primary_name: String,
    /// `stub_status` at the server level: the page for requests no
    /// location takes.
    status_page: bool,
    table: LocationTable,
    locations: Vec<CompiledLocation>,
    underscores_in_headers: bool,
    ignore_invalid_headers: bool,
    /// The server level's `access_log` targets (for requests no location
    /// took).
    access_logs: Vec<(Template, usize)>,
    /// The server level's client settings.
    client: ClientSettings,
    /// The server level's `error_log` list and its interned index.
    error_logs: Vec<crate::model::ErrorLog>,
    error_log_set: Option<usize>,
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
    /// `log_format`s by name, `combined` first.
    formats: Vec<(String, Template)>,
    hostname: String,
    /// The distinct `error_log` lists below the main level.
    error_log_sets: Vec<Vec<crate::model::ErrorLog>>,
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

impl Runtime {
    /// Compiles a validated model. `hostname` is the machine's name
    /// (`$hostname`).
    pub fn new(model: &Model, hostname: &str) -> Result<Runtime, RuntimeError> {
        let names = names_of(model);
        let Some(http) = &model.http else {
            return Ok(Runtime {
                selector: ServerSelector::default(),
                servers: Vec::new(),
                maps: Vec::new(),
                upstreams: Vec::new(),
                formats: Vec::new(),
                hostname: hostname.to_string(),
                error_log_sets: Vec::new(),
            });
        };
        let selector = ServerSelector::new(&http.servers).map_err(RuntimeError)?;
        let mut formats = vec![("combined".to_string(), Template::compile(COMBINED, &names)?)];
        for f in &http.log_formats {
            formats.push((f.name.clone(), Template::compile(&f.format, &names)?));
        }
        let mut maps = Vec::new();
        for map in &http.maps {
            maps.push(compile_map(map, &names)?);
        }
        let mut servers = Vec::new();
        for server in &http.servers {
            let mut specs = Vec::new();
            let mut locations = Vec::new();
            let mut top = Vec::new();
            for loc in &server.locations {
                top.push(compile_location(
                    loc,
                    &names,
                    &formats,
                    &mut specs,
                    &mut locations,
                )?);
            }
            let primary_name = match server.names.first() {
                Some(ServerName::Exact(n)) => n.clone(),
                Some(ServerName::LeadingWildcard { suffix, also_bare }) => {
                    if *also_bare {
                        suffix.trim_start_matches('.').to_string()
                    } else {
                        format!("*{suffix}")
                    }
                }
                Some(ServerName::TrailingWildcard(p)) => format!("{p}*"),
                Some(ServerName::Regex(r)) => format!("~{r}"),
                None => String::new(),
            };
            servers.push(CompiledServer {
                primary_name,
                status_page: server.settings.contains("stub_status"),
                table: LocationTable::new(specs, &top),
                locations,
                underscores_in_headers: server.settings.flag("underscores_in_headers", false),
                ignore_invalid_headers: server.settings.flag("ignore_invalid_headers", true),
                access_logs: compile_access_logs(&server.settings, &names, &formats)?,
                client: ClientSettings::compile(&server.settings),
                error_logs: error_logs_of(&server.settings),
                error_log_set: None,
            });
        }
        let error_log_sets = intern_error_logs(&mut servers);
        Ok(Runtime {
            selector,
            error_log_sets,
            servers,
            maps,
            upstreams: http
                .upstreams
                .iter()
                .map(|u| u.name.to_ascii_lowercase())
                .collect(),
            formats,
            hostname: hostname.to_string(),
        })
    }

    /// Addresses to listen on.
    pub fn listen_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.selector.listen_addrs()
    }

    /// Whether a listening socket of this configuration takes connections
    /// to `local` (the address a connection was accepted on).
    pub fn listens_on(&self, local: SocketAddr) -> bool {
        self.selector.socket_for(local).is_some()
    }

    /// Whether `server` drops a request header line for its name
    /// (`ignore_invalid_headers`, `underscores_in_headers`), as nginx's
    /// header parser does, with an info line for each.
    pub fn drops_header(&self, server: ServerId, name: &str) -> bool {
        self.servers.get(server.0 as usize).is_some_and(|s| {
            s.ignore_invalid_headers
                && !header_name_ok(name, s.underscores_in_headers, s.ignore_invalid_headers)
        })
    }

    /// The primary `server_name` of a server (`$server_name`).
    pub fn server_name(&self, server: ServerId) -> &str {
        self.servers
            .get(server.0 as usize)
            .map_or("", |s| s.primary_name.as_str())
    }

    /// The `access_log` targets a request in `scope` is logged to.
    fn access_logs(&self, scope: LogScope) -> &[(Template, usize)] {
        let Some(srv) = self.servers.get(scope.server.0 as usize) else {
            return &[];
        };
        match scope.location {
            Some(id) => srv
                .locations
                .get(id.0 as usize)
                .map_or(&[], |l| l.access_logs.as_slice()),
            None => &srv.access_logs,
        }
    }

    /// The client settings for a request in `scope` (its location's, else
    /// its server's).
    pub fn client_settings(&self, scope: LogScope) -> ClientSettings {
        let Some(srv) = self.servers.get(scope.server.0 as usize) else {
            return ClientSettings::compile(&Settings::default());
        };
        scope
            .location
            .and_then(|id| srv.locations.get(id.0 as usize))
            .map_or(srv.client, |l| l.client)
    }

    /// The client settings of the default server of the socket a
    /// connection to `local` arrived on: what applies before a request
    /// says which server it is for.
    pub fn socket_client_settings(&self, local: SocketAddr) -> ClientSettings {
        self.client_settings(self.socket_scope(local))
    }

    /// The default server of the socket a connection to `local` arrived
    /// on, as a scope: whose logs take what happens before a request says
    /// which server it is for.
    pub fn socket_scope(&self, local: SocketAddr) -> LogScope {
        let socket = self.selector.socket_for(local).unwrap_or(0);
        LogScope {
            server: self.selector.default_server(socket),
            location: None,
        }
    }

    /// The distinct `error_log` lists of the http, server and location
    /// levels (the main level's is the model's own).
    pub fn error_log_sets(&self) -> &[Vec<crate::model::ErrorLog>] {
        &self.error_log_sets
    }

    /// The index in [`Runtime::error_log_sets`] of the list errors of a
    /// request in `scope` go to; `None`: the main level's.
    pub fn error_log_set(&self, scope: LogScope) -> Option<usize> {
        let srv = self.servers.get(scope.server.0 as usize)?;
        match scope
            .location
            .and_then(|id| srv.locations.get(id.0 as usize))
        {
            Some(loc) => loc.error_log_set,
            None => srv.error_log_set,
        }
    }

    /// The access log files named without variables: opened at start,
    /// before the process gives up root (`user`), as nginx's master does.
    pub fn static_access_log_paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = Vec::new();
        let levels = self.servers.iter().flat_map(|s| {
            std::iter::once(&s.access_logs).chain(s.locations.iter().map(|l| &l.access_logs))
        });
        for (template, _) in levels.flatten() {
            if template.is_literal() {
                let mut path = String::new();
                template.render(&mut path, &mut |_, _| {});
                if !paths.contains(&path) {
                    paths.push(path);
                }
            }
        }
        paths
    }

    /// Whether a request in `scope` writes any access log.
    pub fn has_access_logs(&self, scope: LogScope) -> bool {
        !self.access_logs(scope).is_empty()
    }

    /// The access log lines for a finished request: `(path, line)` for
    /// each `access_log` of its scope, written as nginx does (values
    /// escaped with `\xHH`, empty values as `-`). `alerts` gets nginx's
    /// `[alert]` lines for regex matches that failed on the way.
    pub fn access_log_lines(
        &self,
        scope: LogScope,
        req: &RequestHead<'_>,
        facts: &ResponseFacts,
        alerts: &mut Vec<String>,
    ) -> Vec<(String, String)> {
        let logs = self.access_logs(scope);
        let Some(srv) = self.servers.get(scope.server.0 as usize) else {
            return Vec::new();
        };
        if logs.is_empty() {
            return Vec::new();
        }
        // a request refused for its target is still logged, with what
        // could be read of it
        let target = uri::parse_target(req.target).unwrap_or(uri::RequestTarget {
            host: None,
            raw_path: "",
            args: None,
            request_uri: req.target,
            empty_path: false,
        });
        let host = request_host(req, target.host);
        let path = normalized(target.raw_path).unwrap_or(Cow::Borrowed(target.raw_path.as_bytes()));
        let path = String::from_utf8_lossy(&path);
        let mut ctx = Ctx {
            rt: self,
            req,
            host: &host,
            server: srv,
            uri: &path,
            args: target.args.unwrap_or(""),
            request_uri: target.request_uri,
            captures: Captures::default(),
            proxy_host: "",
            proxy_port: 80,
            map_values: Vec::new(),
            facts: Some(facts),
            alerts: Vec::new(),
        };
        let mut lines = Vec::new();
        for (path_template, format) in logs {
            let Some((_, template)) = self.formats.get(*format) else {
                continue;
            };
            let mut path = String::new();
            path_template.render(&mut path, &mut |v, out| ctx.var(v, out));
            let mut line = String::new();
            template.render(&mut line, &mut |v, out| {
                let mut value = String::new();
                ctx.var(v, &mut value);
                escape_log_value(&value, out);
            });
            line.push('\n');
            lines.push((path, line));
        }
        alerts.append(&mut ctx.alerts);
        lines
    }

    /// Selects the server and matches the location only (no plan): what
    /// routing costs. `None` when the request is one nginx rejects.
    pub fn match_location(&self, req: &RequestHead<'_>) -> Option<(ServerId, LocationMatch)> {
        let target = uri::parse_target(req.target).ok()?;
        let raw_host = target
            .host
            .or_else(|| {
                req.headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("host"))
                    .map(|(_, v)| *v)
            })
            .unwrap_or("");
        let host = if raw_host.is_empty() {
            Cow::Borrowed("")
        } else {
            normalize_host(raw_host)?
        };
        let socket = self.selector.socket_for(req.local).unwrap_or(0);
        let server_id = self
            .selector
            .select(socket, &host, &mut Pcre::is_match)
            .ok()?;
        let server = self.servers.get(server_id.0 as usize)?;
        let path = normalized(target.raw_path).ok()?;
        Some((server_id, server.table.find(&path, &mut Pcre::is_match)))
    }

    /// Decides what to do with a request.
    pub fn decide<'a>(&'a self, req: &RequestHead<'a>) -> Decision<'a> {
        self.decide_scoped(req).0
    }

    /// [`Runtime::decide`], and whose `access_log` the request goes to.
    pub fn decide_scoped<'a>(&'a self, req: &RequestHead<'a>) -> (Decision<'a>, LogScope) {
        let socket = self.selector.socket_for(req.local).unwrap_or(0);
        let mut scope = LogScope {
            server: self.selector.default_server(socket),
            location: None,
        };
        match self.decide_inner(req, socket, &mut scope) {
            Ok(d) | Err(d) => (d, scope),
        }
    }

    fn decide_inner<'a>(
        &'a self,
        req: &RequestHead<'a>,
        socket: usize,
        scope: &mut LogScope,
    ) -> Result<Decision<'a>, Decision<'a>> {
        let bad = Decision::Respond(400);
        check_head(req).map_err(Decision::Respond)?;
        let target = uri::parse_target(req.target).map_err(|_| bad.clone())?; // $host: the request line, then the Host header
        let mut host_headers = req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("host"));
        let host_header = host_headers.next().map(|(_, v)| *v);
        if host_headers.next().is_some() {
            return Err(bad);
        }
        if req.minor_version >= 1 && host_header.is_none() && target.host.is_none() {
            return Err(bad);
        }
        let host: Cow<'_, str> = match (target.host, host_header) {
            (Some(h), _) | (None, Some(h)) => normalize_host(h).ok_or(bad.clone())?,
            (None, None) => Cow::Borrowed(""),
        };
        let mut captures = Captures::default();
        let server_id = self
            .selector
            .select(socket, &host, &mut |re, subject| captures.run(re, subject))
            .map_err(|(e, re)| Decision::RegexFailed {
                alert: e.message(host.as_bytes(), re.as_str()),
                answer: false,
            })?;
        scope.server = server_id;
        let Some(server) = self.servers.get(server_id.0 as usize) else {
            return Err(Decision::Respond(404));
        };
        let path_bytes = normalized(target.raw_path).map_err(|_| bad.clone())?;
        // locations match the decoded bytes, as nginx's PCRE2 does;
        // variables are text, where bytes that are not UTF-8 become U+FFFD
        let found = server
            .table
            .find(&path_bytes, &mut |re, subject| captures.run(re, subject));
        let path = String::from_utf8_lossy(&path_bytes);
        let location_id = match found {
            LocationMatch::Failed {
                prefix,
                regex,
                error,
            } => {
                scope.location = prefix;
                let pattern = match &server.table.spec(regex).kind {
                    SpecKind::Regex(re) => re.as_str(),
                    _ => "",
                };
                return Err(Decision::RegexFailed {
                    alert: error.message(&path_bytes, pattern),
                    answer: true,
                });
            }
            LocationMatch::None if server.status_page => {
                return Err(status_page(req.method, target.args))
            }
            LocationMatch::None => return Err(Decision::Respond(404)),
            LocationMatch::Redirect(id) => {
                scope.location = Some(id);
                let loc = &server.locations[id.0 as usize];
                return Err(Decision::Redirect(redirect_location(
                    req,
                    &host,
                    &loc.name,
                    target.args,
                )));
            }
            LocationMatch::Found(id) => id,
        };
        scope.location = Some(location_id);
        let loc = &server.locations[location_id.0 as usize];
        // nginx refuses a declared body over the location's limit before
        // doing anything else with the request (a chunked body is counted
        // while it is read, by the engine)
        let body = body_plan(req.headers);
        if let BodyPlan::Length(n) = body {
            if loc.max_body > 0 && n > loc.max_body {
                return Err(Decision::Respond(413));
            }
        }
        if loc.status_page {
            return Err(status_page(req.method, target.args));
        }
        let Some(proxy) = &loc.proxy else {
            // rginx serves no files: nginx would look in its root here
            return Err(Decision::Respond(404));
        };
        let mut ctx = Ctx {
            rt: self,
            req,
            host: &host,
            server,
            uri: &path,
            args: target.args.unwrap_or(""),
            request_uri: target.request_uri,
            captures,
            proxy_host: "",
            proxy_port: 80,
            map_values: Vec::new(),
            facts: None,
            alerts: Vec::new(),
        };
        let (plan_target, uri, proxy_host, proxy_port) = match proxy {
            ProxyKind::Static {
                target: t,
                host: ph,
                port,
                uri: uri_part,
            } => {
                let uri = match uri_part {
                    None => Cow::Borrowed(target.request_uri),
                    Some((part, loc_len)) => {
                        let mut out = part.clone();
                        let rest = path_bytes
                            .get((*loc_len).min(path_bytes.len())..)
                            .unwrap_or_default();
                        if target.raw_path.contains('%') {
                            uri::escape_path(rest, &mut out);
                        } else {
                            out.push_str(&String::from_utf8_lossy(rest));
                        }
                        if let Some(a) = target.args.filter(|a| !a.is_empty()) {
                            out.push('?');
                            out.push_str(a);
                        }
                        Cow::Owned(out)
                    }
                };
                (Cow::Borrowed(t), uri, Cow::Borrowed(ph.as_str()), *port)
            }
            ProxyKind::Variable(t) => {
                let mut url = String::new();
                t.render(&mut url, &mut |v, out| ctx.var(v, out));
                match dynamic_target(&url, target.request_uri) {
                    // a host that names no upstream block would need the
                    // `resolver` nginx lacks by default, so 502 there too
                    Some((PlanTarget::Upstream(name), ..))
                        if !self.upstreams.contains(&name.to_ascii_lowercase()) =>
                    {
                        return Err(Decision::Respond(502))
                    }
                    Some((t, uri, host, port)) => {
                        (Cow::Owned(t), Cow::Owned(uri), Cow::Owned(host), port)
                    }
                    None => return Err(Decision::Respond(502)),
                }
            }
        };
        ctx.proxy_host = &proxy_host;
        ctx.proxy_port = proxy_port;
        let mut headers: Vec<(&'a str, Cow<'a, str>)> =
            Vec::with_capacity(loc.headers.len() + req.headers.len());
        let mut length_at = None;
        for rule in &loc.headers {
            let value: Cow<'a, str> = match &rule.value {
                HeaderValue::User(t) => {
                    let mut value = String::new();
                    t.render(&mut value, &mut |v, out| ctx.var(v, out));
                    Cow::Owned(value)
                }
                HeaderValue::Default(d) => match d {
                    DefaultValue::ProxyHost => proxy_host.clone(),
                    DefaultValue::Close => Cow::Borrowed("close"),
                    DefaultValue::BodyLength => match body {
                        BodyPlan::Length(n) => Cow::Owned(n.to_string()),
                        BodyPlan::Dechunk => {
                            length_at = Some(headers.len());
                            Cow::Borrowed("")
                        }
                        BodyPlan::None => Cow::Borrowed(""),
                    },
                    // only for unbuffered bodies, which rginx does not do
                    DefaultValue::Chunked => Cow::Borrowed(""),
                    DefaultValue::Empty => Cow::Borrowed(""),
                },
            };
            if !value.is_empty() {
                headers.push((rule.name.as_str(), value));
            }
        }
        let mut passed = Vec::with_capacity(req.headers.len());
        if loc.pass_request_headers {
            for (i, (name, value)) in req.headers.iter().enumerate() {
                if !header_name_ok(
                    name,
                    server.underscores_in_headers,
                    server.ignore_invalid_headers,
                ) {
                    continue;
                }
                if loc.hidden.iter().any(|h| h.eq_ignore_ascii_case(name)) {
                    continue;
                }
                headers.push((name, Cow::Borrowed(value)));
                passed.push(i);
            }
        }
        let client_upgrade = req
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("upgrade"));

        Ok(Decision::Proxy(Box::new(UpstreamPlan {
            server: server_id,
            location: location_id,
            target: plan_target,
            method: req.method,
            uri,
            version: loc.version,
            headers,
            passed,
            body,
            length_at,
            max_body: loc.max_body,
            upgrade: client_upgrade,
            connect_timeout: loc.connect_timeout,
            read_timeout: loc.read_timeout,
            send_timeout: loc.send_timeout,
            buffer_size: loc.buffer_size,
            next_upstream: loc.next_upstream,
            redirect: loc.redirect.as_ref().map(|(p, r)| (p.as_str(), r.as_str())),
            alerts: std::mem::take(&mut ctx.alerts),
        })))
    }
}

/// Target of a `proxy_pass` with variables: an upstream block of that
/// name, or an IP literal. A name needing DNS would need `resolver`, which
/// rginx does not support (nginx answers 502 without one too).
fn dynamic_target(url: &str, request_uri: &str) -> Option<(PlanTarget, String, String, u16)> {
    {
        let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
        let rest = if lower.starts_with("http://") {
            &url[7..]
        } else {
            return None;
        };
        let (authority, uri) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i..])),
            None => (rest, None),
        };
        // the same address rules as a literal proxy_pass (ngx_parse_url)
        let (host, port) = crate::handlers::split_host_port(authority);
        let port = match port {
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0)?,
            None => 80,
        };
        if host.is_empty() {
            return None;
        }
        let uri = uri.map_or_else(|| request_uri.to_string(), str::to_string);
        if let Some(ip) = crate::resolve::parse_ip(host) {
            return Some((
                PlanTarget::Addrs(vec![SocketAddr::new(ip, port)]),
                uri,
                authority.to_string(),
                port,
            ));
        }
        Some((
            PlanTarget::Upstream(host.to_string()),
            uri,
            authority.to_string(),
            port,
        ))
    }
}

/// `$uri` for a raw path: most paths need no decoding or resolving, and
/// are used as they are without copying.
fn normalized(raw_path: &str) -> Result<Cow<'_, [u8]>, uri::UriError> {
    let b = raw_path.as_bytes();
    let plain = !b.contains(&b'%') && !b.windows(2).any(|w| w == b"//" || w == b"/.");
    if plain {
        return Ok(Cow::Borrowed(b));
    }
    uri::normalize_path(raw_path, true).map(Cow::Owned)
}

/// Whether a header of the backend's response is passed to the client.
/// nginx writes its own `Connection`, `Keep-Alive`, `Transfer-Encoding` and
/// `Content-Length`, and hides by default (`proxy_hide_header`) `Date`,
/// `Server`, `X-Pad` and the `X-Accel-*` controls.
pub fn response_header_passes(name: &str) -> bool {
    const NEVER: &[&str] = &[
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "date",
        "server",
        "x-pad",
        "x-accel-expires",
        "x-accel-redirect",
        "x-accel-limit-rate",
        "x-accel-buffering",
        "x-accel-charset",
    ];
    !NEVER.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// The body, from headers already checked by [`check_head`].
fn body_plan(headers: &[(&str, &str)]) -> BodyPlan {
    if let Some((_, v)) = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        if let Ok(n) = v.parse::<u64>() {
            return BodyPlan::Length(n);
        }
    }
    if headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
    {
        return BodyPlan::Dechunk;
    }
    BodyPlan::None
}

/// The checks nginx makes on a request head before choosing a server
/// (`ngx_http_parse_request_line`, `ngx_http_process_request_headers`,
/// `ngx_http_process_request_header`): the status it answers with.
/// The status page's answer: GET and HEAD only (nginx: 405 otherwise),
/// in Prometheus' format when the arguments hold `format=prometheus`.
fn status_page(method: &str, args: Option<&str>) -> Decision<'static> {
    if method != "GET" && method != "HEAD" {
        return Decision::Respond(405);
    }
    let prometheus = args
        .unwrap_or("")
        .split('&')
        .any(|a| a == "format=prometheus");
    Decision::Status(if prometheus {
        StatusFormat::Prometheus
    } else {
        StatusFormat::Nginx
    })
}

fn check_head(req: &RequestHead<'_>) -> Result<(), u16> {
    // methods are upper-case letters, `_` and `-`
    if req.method.is_empty()
        || !req
            .method
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'_' || b == b'-')
    {
        return Err(400);
    }
    let count = |name: &str| {
        req.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    };
    for unique in ["host", "content-length", "transfer-encoding"] {
        if count(unique) > 1 {
            return Err(400);
        }
    }
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let length = header("content-length");
    if let Some(v) = length {
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) || v.parse::<u64>().is_err() {
            return Err(400);
        }
    }
    if let Some(te) = header("transfer-encoding") {
        if req.minor_version == 0 {
            return Err(400);
        }
        if !te.eq_ignore_ascii_case("chunked") {
            return Err(501);
        }
        if length.is_some() {
            return Err(400);
        }
    }
    Ok(())
}

/// Splits a request line the way nginx reads it: `METHOD SP TARGET SP
/// HTTP/1.x`. Returns the status nginx answers for a line it rejects
/// (400, or 505 for HTTP versions above 1.x).
pub fn parse_request_line(line: &str) -> Result<(&str, &str, u8), u16> {
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    let Some(digits) = version.strip_prefix("HTTP/") else {
        return Err(400);
    };
    let Some((major, minor)) = digits.split_once('.') else {
        return Err(400);
    };
    let (Ok(major), Ok(minor)) = (major.parse::<u32>(), minor.parse::<u32>()) else {
        return Err(400);
    };
    if major > 1 {
        return Err(505);
    }
    if major == 0 {
        return Err(400);
    }
    Ok((method, target, u8::try_from(minor.min(9)).unwrap_or(9)))
}

/// nginx's header-name check at parse time: letters, digits, `-`, and `_`
/// only with `underscores_in_headers on`; anything else is dropped while
/// `ignore_invalid_headers` is on.
fn header_name_ok(name: &str, underscores: bool, ignore_invalid: bool) -> bool {
    if !ignore_invalid {
        return true;
    }
    // one table lookup a byte: 1 for letters, digits and `-`, 2 for `_`
    const CLASS: [u8; 256] = {
        let mut class = [0u8; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            if c.is_ascii_alphanumeric() || c == b'-' {
                class[b] = 1;
            }
            b += 1;
        }
        class[b'_' as usize] = 2;
        class
    };
    let allowed = if underscores { 3 } else { 1 };
    name.bytes().all(|b| CLASS[b as usize] & allowed != 0)
}

/// A relative `Location` made absolute as nginx's header filter does
/// (`absolute_redirect on`, `port_in_redirect on`): the request's host
/// (from the request line, else `Host`), else the local address, and the
/// local port unless it is 80.
pub fn absolute_location(req: &RequestHead<'_>, path: &str) -> String {
    let target_host = uri::parse_target(req.target).ok().and_then(|t| t.host);
    redirect_location(req, &request_host(req, target_host), path, None)
}

/// `$host` of a request already answered: the request line's host
/// (`target_host`), else the `Host` header, normalised; empty when neither
/// is there or valid.
fn request_host<'r>(req: &RequestHead<'r>, target_host: Option<&'r str>) -> Cow<'r, str> {
    let header = req
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("host"))
        .map(|(_, v)| *v);
    target_host
        .or(header)
        .and_then(normalize_host)
        .unwrap_or_default()
}

fn redirect_location(req: &RequestHead<'_>, host: &str, name: &str, args: Option<&str>) -> String {
    // nginx's header filter: the request's host, else the local address
    let mut out = String::from("http://");
    if host.is_empty() {
        match req.local.ip() {
            IpAddr::V4(ip) => {
                let _ = write!(out, "{ip}");
            }
            IpAddr::V6(ip) => {
                let _ = write!(out, "[{ip}]");
            }
        }
    } else {
        out.push_str(host);
    }
    if req.local.port() != 80 {
        let _ = write!(out, ":{}", req.local.port());
    }
    out.push_str(name);
    if let Some(a) = args.filter(|a| !a.is_empty()) {
        out.push('?');
        out.push_str(a);
    }
    out
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
        })
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
            PlanTarget::Addrs(vec!["127.0.0.1:9002".parse().unwrap()])
        );
        assert_eq!(p.headers[0], ("Host", "127.0.0.1:9002".into()));
        assert_eq!(decide(&rt, "/a?to=c", &host), Decision::Respond(502));
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
