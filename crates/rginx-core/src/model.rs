//! The typed model of a validated configuration.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rginx_config::{Span, Word};

/// A validated configuration.
#[derive(Debug, Default, Clone)]
pub struct Model {
    /// Main-context settings (`worker_processes`, `pid`, `error_log`, ...).
    pub main: Settings,
    /// The `events` block's settings, if the block exists.
    pub events: Option<Settings>,
    /// The `http` block.
    pub http: Option<HttpConf>,
}

/// Directive values set at one level, keyed by directive name. A level
/// that does not set a directive inherits it (see [`Settings::merge_from`]).
#[derive(Debug, Default, Clone)]
pub struct Settings {
    // shared with the levels that inherit it: merging copies pointers
    values: BTreeMap<&'static str, Arc<Setting>>,
}

/// Directives that hold for their own level only: content handlers
/// (nginx's `clcf->handler` is not merged).
const NOT_INHERITED: &[&str] = &["stub_status", "return", "internal"];

/// One directive's value and where it was set.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// The parsed value.
    pub value: Value,
    /// The directive's name.
    pub span: Span,
}

/// A parsed directive value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `on` / `off`.
    Flag(bool),
    /// A time.
    Time(Duration),
    /// A size or offset in bytes.
    Size(u64),
    /// A plain number.
    Number(u64),
    /// One word (a path or a name).
    Text(String),
    /// One of a directive's fixed choices (`1.1`, `on`, ...).
    Choice(&'static str),
    /// Several words.
    Words(Vec<String>),
    /// `count size` buffers.
    Buffers {
        /// Number of buffers.
        count: u64,
        /// Size of each.
        size: u64,
    },
    /// `keepalive_timeout timeout [header_timeout]`.
    KeepaliveTimeout(Duration, Option<Duration>),
    /// `proxy_set_header` entries of one level, in order.
    Headers(Vec<HeaderSetting>),
    /// `access_log` entries of one level (empty = `off`).
    AccessLogs(Vec<AccessLog>),
    /// `error_log` entries of one level.
    ErrorLogs(Vec<ErrorLog>),
    /// `proxy_redirect` at one level: `off`, or its rules in order.
    Redirects(Option<Vec<RedirectRule>>),
    /// `add_header` entries of one level, in order.
    AddHeaders(Vec<AddHeader>),
    /// `expires`.
    Expires(Expires),
    /// A `types` block: (extension, lowercased; MIME type), in order.
    Types(Vec<(String, String)>),
    /// `error_page` entries of one level, in order.
    ErrorPages(Vec<ErrorPageConf>),
    /// `client_body_temp_path` or `proxy_temp_path`.
    TempPath(TempPath),
    /// `proxy_cookie_flags` at one level: `off`, or its rules in order.
    CookieFlags(Option<Vec<CookieFlagRule>>),
    /// `resolver`: the name servers a `proxy_pass` with variables asks.
    Resolver(std::sync::Arc<ResolverConf>),
    /// Files named by a directive that may repeat (`ssl_certificate`,
    /// `ssl_certificate_key`), in order.
    Files(Vec<FileRef>),
    /// The level's first `return` (the rewrite module stops there).
    Return {
        /// The status (302 for a bare URL; 444 closes).
        code: u16,
        /// The text or URL, a template.
        text: Option<String>,
    },
}

impl Settings {
    /// The setting for `name` at this level (after merging: inherited too).
    pub fn get(&self, name: &str) -> Option<&Setting> {
        self.values.get(name).map(|s| &**s)
    }

    /// Whether `name` is set at this level.
    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// Sets `name`; returns the value it replaces.
    pub fn insert(&mut self, name: &'static str, setting: Setting) -> Option<Setting> {
        self.values
            .insert(name, Arc::new(setting))
            .map(Arc::unwrap_or_clone)
    }

    /// Mutable access to a setting of this level.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Setting> {
        self.values.get_mut(name).map(Arc::make_mut)
    }

    /// Fills every setting this level does not set from `parent`: nginx's
    /// merge. List directives (`proxy_set_header`, `access_log`) are
    /// inherited only when the level has none of its own, which is what
    /// a whole-value merge gives.
    pub fn merge_from(&mut self, parent: &Settings) {
        for (name, setting) in &parent.values {
            if NOT_INHERITED.contains(name) {
                continue;
            }
            self.values.entry(name).or_insert_with(|| setting.clone());
        }
    }

    /// A time setting, or `default`.
    pub fn time(&self, name: &str, default: Duration) -> Duration {
        match self.get(name).map(|s| &s.value) {
            Some(Value::Time(t)) => *t,
            _ => default,
        }
    }

    /// A size setting, or `default`.
    pub fn size(&self, name: &str, default: u64) -> u64 {
        match self.get(name).map(|s| &s.value) {
            Some(Value::Size(n)) => *n,
            _ => default,
        }
    }

    /// A flag setting, or `default`.
    pub fn flag(&self, name: &str, default: bool) -> bool {
        match self.get(name).map(|s| &s.value) {
            Some(Value::Flag(f)) => *f,
            _ => default,
        }
    }

    /// A text setting.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.get(name).map(|s| &s.value) {
            Some(Value::Text(t)) => Some(t),
            Some(Value::Choice(c)) => Some(c),
            _ => None,
        }
    }

    /// The effective `proxy_set_header` list of this level (empty when none
    /// is set here or inherited).
    pub fn proxy_headers(&self) -> &[HeaderSetting] {
        match self.get("proxy_set_header").map(|s| &s.value) {
            Some(Value::Headers(h)) => h,
            _ => &[],
        }
    }

    /// The HTTP version rginx speaks to upstreams here (nginx 1.22: 1.0
    /// unless `proxy_http_version 1.1`).
    pub fn proxy_http_version(&self) -> &str {
        self.text("proxy_http_version").unwrap_or("1.0")
    }
}

/// One `proxy_set_header NAME VALUE`.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderSetting {
    /// Header name as written.
    pub name: Word,
    /// Value template as written (variables not yet compiled).
    pub value: Word,
    /// Where the directive is.
    pub span: Span,
}

/// One `error_page CODE ... [=[RESPONSE]] URI` (`ngx_http_core_error_page`).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorPageConf {
    /// The codes it answers for.
    pub codes: Vec<u16>,
    /// What the answer's status becomes: `None` the code itself (nginx's
    /// -1), `Some(0)` the target's (`=`), `Some(n)` that code (`=n`).
    pub overwrite: Option<u16>,
    /// The target: a URI (`/...`), a named location (`@...`) or a URL; a
    /// template.
    pub target: String,
}

/// One `add_header NAME VALUE [always]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AddHeader {
    /// The header's name as written.
    pub name: String,
    /// Its value (a template; empty adds nothing).
    pub value: String,
    /// `always`: also for statuses other than nginx's list of safe ones.
    pub always: bool,
}

/// One `proxy_cookie_flags COOKIE FLAG ...` rule, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieFlagRule {
    /// The cookie's name (variables allowed), or `~REGEX` (caseless).
    pub cookie: String,
    /// Its flags (variables allowed): `secure`, `nosecure`, `httponly`,
    /// `nohttponly`, `samesite=strict|lax|none`, `nosamesite`.
    pub flags: Vec<String>,
}

/// One `resolver` directive (`ngx_resolver_create`): its name servers and
/// parameters. Each directive is a resolver of its own, with its own cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverConf {
    /// The name servers (port 53 unless given), asked in turn.
    pub servers: Vec<std::net::SocketAddr>,
    /// `valid=`: how long an answer is kept, instead of its TTL.
    pub valid: Option<Duration>,
    /// `ipv6=` (on by default): AAAA records are asked for too.
    pub ipv6: bool,
}

/// `client_body_temp_path` and `proxy_temp_path` (`ngx_conf_set_path_slot`):
/// a directory, and the lengths of the hashed subdirectory levels a temp
/// file's name goes under (`1 2`: `DIR/7/45/0000000457`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TempPath {
    /// The directory.
    pub dir: String,
    /// Up to three levels, each 1 or 2 digits long.
    pub levels: Vec<u8>,
}

impl TempPath {
    /// Debian's nginx's compiled-in `client_body_temp_path`
    /// (`--http-client-body-temp-path`).
    pub const CLIENT_BODY: &'static str = "/var/lib/nginx/body";
    /// Debian's nginx's compiled-in `proxy_temp_path`.
    pub const PROXY: &'static str = "/var/lib/nginx/proxy";

    /// A directory with no levels.
    pub fn plain(dir: &str) -> TempPath {
        TempPath {
            dir: dir.to_string(),
            levels: Vec::new(),
        }
    }

    /// Where the temp file numbered `n` goes: `DIR/L1/L2/NNNNNNNNNN`, each
    /// level the name's next digits from its end (`ngx_create_hashed_filename`).
    pub fn file_name(&self, n: u32) -> String {
        let name = format!("{n:010}");
        let mut out = self.dir.trim_end_matches('/').to_string();
        let mut end = name.len();
        for level in &self.levels {
            let start = end - usize::from(*level);
            out.push('/');
            out.push_str(&name[start..end]);
            end = start;
        }
        out.push('/');
        out.push_str(&name);
        out
    }
}

/// `expires [modified] TIME | epoch | max | off | @TIME`, or a value with
/// variables parsed per response (`ngx_http_headers_expires`).
#[derive(Debug, Clone, PartialEq)]
pub enum Expires {
    /// A value known at load.
    Fixed(ExpiresTime),
    /// A template, parsed per response as nginx's `ngx_http_parse_expires`
    /// does (`modified` when given as the first argument).
    Variable {
        /// The value as written.
        value: String,
        /// `expires modified $var`.
        modified: bool,
    },
}

/// A parsed `expires` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiresTime {
    /// `off`: no `Expires` or `Cache-Control` change.
    Off,
    /// `epoch`.
    Epoch,
    /// `max`.
    Max,
    /// Seconds from the response's time (may be negative).
    Access(i64),
    /// Seconds from the response's `Last-Modified` (`modified`).
    Modified(i64),
    /// `@TIME`: the next time of day, seconds after midnight.
    Daily(i64),
}

impl ExpiresTime {
    /// `ngx_http_parse_expires`: `modified` says whether the directive
    /// had that first argument; the error is nginx's text.
    pub fn parse(value: &str, modified: bool) -> Result<ExpiresTime, &'static str> {
        if !modified {
            match value {
                "epoch" => return Ok(ExpiresTime::Epoch),
                "max" => return Ok(ExpiresTime::Max),
                "off" => return Ok(ExpiresTime::Off),
                _ => {}
            }
        }
        let (daily, minus, rest) = if let Some(rest) = value.strip_prefix('@') {
            if modified {
                return Err("daily time cannot be used with \"modified\" parameter");
            }
            (true, false, rest)
        } else if let Some(rest) = value.strip_prefix('+') {
            (false, false, rest)
        } else if let Some(rest) = value.strip_prefix('-') {
            (false, true, rest)
        } else {
            (false, false, value)
        };
        let seconds = crate::values::parse_time(rest, true)
            .and_then(|d| i64::try_from(d.as_secs()).ok())
            .ok_or("invalid value")?;
        if daily {
            if seconds > 24 * 60 * 60 {
                return Err("daily time value must be less than 24 hours");
            }
            return Ok(ExpiresTime::Daily(seconds));
        }
        let seconds = if minus { -seconds } else { seconds };
        Ok(if modified {
            ExpiresTime::Modified(seconds)
        } else {
            ExpiresTime::Access(seconds)
        })
    }
}

/// One `proxy_redirect` rule, as nginx's `ngx_http_proxy_redirect`
/// reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct RedirectRule {
    /// What a backend's `Location` must start with, or match.
    pub pattern: RedirectPattern,
    /// What replaces the matched part (a template, unless `literal`).
    pub replacement: String,
    /// `default`'s rule: pattern and replacement are text as they are
    /// (the `proxy_pass` URL and the location's name), not templates.
    pub literal: bool,
}

/// The first argument of a `proxy_redirect` rule.
#[derive(Debug, Clone, PartialEq)]
pub enum RedirectPattern {
    /// A prefix (a template), compared case-sensitively.
    Prefix(String),
    /// `~re` or `~*re` (`caseless`), matched against the whole value.
    Regex {
        /// The pattern after `~` or `~*`.
        pattern: String,
        /// `~*`.
        caseless: bool,
    },
}

impl Settings {
    /// The effective `proxy_redirect` of this level: `None` when nothing
    /// is set here or inherited, `Some(None)` for `off`.
    pub fn redirects(&self) -> Option<Option<&[RedirectRule]>> {
        match self.get("proxy_redirect").map(|s| &s.value) {
            Some(Value::Redirects(r)) => Some(r.as_deref()),
            _ => None,
        }
    }
}

/// A file a directive names, as the full name it is read by, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRef {
    /// Its full name (relative names are under the configuration's
    /// directory, as `ngx_conf_full_name` with `conf_prefix` makes them).
    pub path: String,
    /// The directive.
    pub span: Span,
}

/// One `access_log` target.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessLog {
    /// File path (may contain variables) or `syslog:...`.
    pub path: String,
    /// Name of the `log_format` (default `combined`).
    pub format: String,
    /// `if=`: the line is written unless this is empty or `0`.
    pub condition: Option<String>,
    /// `buffer=`, `flush=`, `gzip`: lines are held in a buffer of the
    /// file (one per file, whichever `access_log` names it).
    pub buffer: Option<LogBuffer>,
}

/// How an access log file's lines are held before they are written
/// (`ngx_http_log_buf_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogBuffer {
    /// `buffer=`: the bytes held (64k when only `gzip` is given).
    pub size: usize,
    /// `flush=`: the longest a line waits in the buffer.
    pub flush: Option<std::time::Duration>,
    /// `gzip[=level]`: each buffer written as a gzip member at this level.
    pub gzip: Option<u32>,
}

/// One `error_log` target.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorLog {
    /// File path, `stderr`, `syslog:...` or `memory:...`.
    pub path: String,
    /// Lowest level logged (default `error`).
    pub level: LogLevel,
}

/// nginx's error log levels, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// `emerg`
    Emerg,
    /// `alert`
    Alert,
    /// `crit`
    Crit,
    /// `error`
    Error,
    /// `warn`
    Warn,
    /// `notice`
    Notice,
    /// `info`
    Info,
    /// `debug`
    Debug,
}

impl LogLevel {
    /// Parses a level name.
    pub fn parse(name: &str) -> Option<LogLevel> {
        Some(match name {
            "emerg" => LogLevel::Emerg,
            "alert" => LogLevel::Alert,
            "crit" => LogLevel::Crit,
            "error" => LogLevel::Error,
            "warn" => LogLevel::Warn,
            "notice" => LogLevel::Notice,
            "info" => LogLevel::Info,
            "debug" => LogLevel::Debug,
            _ => return None,
        })
    }
}

/// The `http` block.
#[derive(Debug, Default, Clone)]
pub struct HttpConf {
    /// http-level settings.
    pub settings: Settings,
    /// `server` blocks in order.
    pub servers: Vec<ServerConf>,
    /// `upstream` blocks in order.
    pub upstreams: Vec<UpstreamConf>,
    /// `map` blocks in order.
    pub maps: Vec<MapConf>,
    /// `log_format`s in order (`combined` is predefined and not listed).
    pub log_formats: Vec<LogFormat>,
}

impl HttpConf {
    /// The hosts literal `proxy_pass` URLs name, lowercased, with their
    /// ports and addresses: `ngx_http_upstream_add` makes each an
    /// upstream, which a `proxy_pass` with variables naming the same host
    /// and port uses without resolving it.
    pub fn implicit_upstreams(&self) -> Vec<(String, u16, Vec<crate::peer::PeerAddr>)> {
        fn walk(
            locations: &[LocationConf],
            out: &mut Vec<(String, u16, Vec<crate::peer::PeerAddr>)>,
        ) {
            for loc in locations {
                if let Some(ProxyPass {
                    target: ProxyTarget::Host { host, port, addrs },
                    ..
                }) = &loc.proxy_pass
                {
                    let host = host.to_ascii_lowercase();
                    if !out.iter().any(|(h, p, _)| *h == host && p == port) {
                        out.push((host, *port, addrs.clone()));
                    }
                }
                walk(&loc.nested, out);
            }
        }
        let mut out = Vec::new();
        for server in &self.servers {
            walk(&server.locations, &mut out);
        }
        out
    }
}

/// A `server` block.
#[derive(Debug, Default, Clone)]
pub struct ServerConf {
    /// Server-level settings, merged with the http level.
    pub settings: Settings,
    /// Listening addresses (nginx's default when none is given).
    pub listens: Vec<Listen>,
    /// `server_name` entries; the first is the primary name.
    pub names: Vec<ServerName>,
    /// Top-level locations in order.
    pub locations: Vec<LocationConf>,
    /// The `server` directive.
    pub span: Span,
}

/// One `listen` address.
#[derive(Debug, Clone, PartialEq)]
pub struct Listen {
    /// The socket address.
    pub addr: SocketAddr,
    /// `default_server` (or its old spelling `default`).
    pub default_server: bool,
    /// `ssl`: connections to it speak TLS (nginx makes an address TLS
    /// when any `listen` of it says so).
    pub ssl: bool,
    /// `http2`.
    pub http2: bool,
    /// The `listen` directive.
    pub span: Span,
}

/// One `server_name` entry.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerName {
    /// `example.com` (lowercased; may be empty: `""`).
    Exact(String),
    /// `*.example.com` or `.example.com`, stored without `*`: `.example.com`.
    /// `.example.com` also matches `example.com` itself (`also_bare`).
    LeadingWildcard {
        /// The suffix including the leading dot.
        suffix: String,
        /// Whether the bare domain matches too (the `.example.com` form).
        also_bare: bool,
    },
    /// `mail.*`, stored as `mail.`.
    TrailingWildcard(String),
    /// `~regex`, stored without `~`.
    Regex(String),
}

/// A `location` block.
#[derive(Debug, Clone)]
pub struct LocationConf {
    /// How the location matches.
    pub matcher: LocationMatcher,
    /// Location settings, merged with the enclosing levels.
    pub settings: Settings,
    /// Nested locations in order.
    pub nested: Vec<LocationConf>,
    /// `proxy_pass`, if any.
    pub proxy_pass: Option<ProxyPass>,
    /// The `location` directive.
    pub span: Span,
}

/// How a location matches a URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocationMatcher {
    /// `location = /x`
    Exact(String),
    /// `location /x` or `location ^~ /x` (`no_regex`).
    Prefix {
        /// The prefix.
        path: String,
        /// `^~`: when this is the longest prefix, regexes are not tried.
        no_regex: bool,
    },
    /// `location ~ re` / `location ~* re`.
    Regex {
        /// The pattern.
        pattern: String,
        /// `~*`.
        case_insensitive: bool,
    },
    /// `location @name`.
    Named(String),
}

impl LocationMatcher {
    /// The location's name as nginx prints it in messages.
    pub fn name(&self) -> &str {
        match self {
            LocationMatcher::Exact(s)
            | LocationMatcher::Prefix { path: s, .. }
            | LocationMatcher::Regex { pattern: s, .. }
            | LocationMatcher::Named(s) => s,
        }
    }
}

/// A `proxy_pass` target.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyPass {
    /// The URL as written.
    pub url: Word,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// Where requests go.
    pub target: ProxyTarget,
    /// Whether the URL names a port (a host naming an upstream block may not).
    pub explicit_port: bool,
    /// The URI part (`/x/` in `http://b/x/`), if any.
    pub uri: Option<String>,
    /// The `proxy_pass` directive.
    pub span: Span,
    /// Its `;`, where nginx reports a host it cannot resolve.
    pub end: Span,
    /// Its order in the configuration.
    pub seq: u32,
}

impl ProxyPass {
    /// `proxy_redirect default`'s rule for this URL in the location
    /// `location` (pattern, replacement): the URL as written to the
    /// location's name, or, without a URI part, the URL and `/` to `/`
    /// (`ngx_http_proxy_redirect`, `ngx_http_proxy_merge_loc_conf`).
    pub fn default_redirect(&self, location: &str) -> (String, String) {
        match &self.uri {
            Some(_) => (self.url.as_str().to_string(), location.to_string()),
            None => (format!("{}/", self.url.as_str()), "/".to_string()),
        }
    }
}

/// Where a `proxy_pass` sends requests.
#[derive(Debug, Clone, PartialEq)]
pub enum ProxyTarget {
    /// The `upstream` block of that name.
    Upstream(String),
    /// A host (resolved at load time) and port.
    Host {
        /// Host name or IP literal.
        host: String,
        /// Port (80/443 by default).
        port: u16,
        /// Addresses the host resolved to.
        addrs: Vec<crate::peer::PeerAddr>,
    },
    /// A unix socket (`http://unix:/run/app.sock:/uri`), by its path.
    Unix(std::sync::Arc<str>),
    /// The URL contains variables: resolved per request.
    Variable,
}

/// An `upstream` block.
#[derive(Debug, Clone, Default)]
pub struct UpstreamConf {
    /// Its name.
    pub name: String,
    /// `server` entries in order.
    pub servers: Vec<UpstreamServer>,
    /// `keepalive N`: idle connections cached per worker.
    pub keepalive: Option<u64>,
    /// The balancing method (`ip_hash`, `least_conn`; round-robin by
    /// default).
    pub method: Balancing,
    /// Other settings (`keepalive_timeout`, `keepalive_requests`).
    pub settings: Settings,
    /// The `upstream` directive.
    pub span: Span,
}

/// How an upstream group chooses its server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Balancing {
    /// nginx's weighted round-robin.
    #[default]
    RoundRobin,
    /// `ip_hash`: by the client address (IPv4: its first three bytes).
    IpHash,
    /// `least_conn`: the fewest active requests for the weight.
    LeastConn,
    /// `random [two [least_conn]]`: a server drawn by weight; with `two`,
    /// the less loaded of two drawn.
    Random {
        /// `two`.
        two: bool,
    },
    /// `hash KEY [consistent]`: by a value of the request.
    Hash {
        /// The key, a template.
        key: String,
        /// `consistent`: ketama points (160 per weight unit).
        consistent: bool,
    },
}

/// One `server` of an upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamServer {
    /// The address as written (`host[:port]`), nginx's `peer->server`.
    pub name: String,
    /// Host or address as written.
    pub host: String,
    /// Port (80 by default).
    pub port: u16,
    /// Addresses it resolved to.
    pub addrs: Vec<crate::peer::PeerAddr>,
    /// `weight=` (default 1).
    pub weight: u64,
    /// `max_fails=` (default 1).
    pub max_fails: u64,
    /// `fail_timeout=` (default 10s).
    pub fail_timeout: Duration,
    /// `backup`.
    pub backup: bool,
    /// `down`.
    pub down: bool,
    /// `max_conns=` (0: no limit): requests in progress per worker.
    pub max_conns: u64,
    /// The directive.
    pub span: Span,
}

/// A `map` block.
#[derive(Debug, Clone, Default)]
pub struct MapConf {
    /// The source value template (`$http_upgrade`).
    pub source: String,
    /// The variable it defines, without `$`.
    pub variable: String,
    /// `hostnames`.
    pub hostnames: bool,
    /// `volatile`.
    pub volatile: bool,
    /// `default` value (empty when absent).
    pub default: Option<String>,
    /// Keys and values in order.
    pub entries: Vec<MapEntry>,
    /// The `map` directive.
    pub span: Span,
}

/// One `key value;` line of a map.
#[derive(Debug, Clone, PartialEq)]
pub struct MapEntry {
    /// The key as written (after unescaping); `~`/`~*` for regexes.
    pub key: String,
    /// The value template.
    pub value: String,
    /// The line.
    pub span: Span,
}

/// A `log_format`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogFormat {
    /// Its name.
    pub name: String,
    /// `escape=` mode (`default`, `json`, `none`).
    pub escape: String,
    /// The format, its strings joined.
    pub format: String,
    /// The directive.
    pub span: Span,
}
