//! The per-request evaluation state: variables (`$host`, `$uri`, `$http_*`,
//! maps, captures, times) as nginx computes them.

use super::*;

/// How a time variable is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// `$time_local`: `25/Nov/2026:19:10:47 +0100`.
    Local,
    /// `$time_iso8601`: `2026-11-25T19:10:47+01:00`.
    Iso8601,
    /// The error log's timestamp: `2026/11/25 19:10:47`.
    ErrorLog,
    /// An HTTP date (`Date:`): `Wed, 25 Nov 2026 19:10:47 GMT`.
    Http,
}

/// Writes a time as nginx's `$time_local` / `$time_iso8601` and its error
/// log do: in the machine's time zone (`TZ`, else `/etc/localtime`), with
/// its offset from UTC, as `ngx_time_update` takes them from
/// `localtime_r`; an HTTP date in GMT.
pub fn format_time(time: SystemTime, format: TimeFormat, out: &mut String) {
    use crate::calendar::MONTHS;
    let utc = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let offset = match format {
        TimeFormat::Http => 0,
        _ => utc_offset(utc),
    };
    let secs = utc.saturating_add_signed(offset);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, sec) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let sign = if offset < 0 { '-' } else { '+' };
    let (oh, om) = (
        offset.unsigned_abs() / 3600,
        offset.unsigned_abs() % 3600 / 60,
    );
    let (year, month, day) = crate::calendar::civil_date(days);
    let _ = match format {
        TimeFormat::Local => write!(
            out,
            "{day:02}/{}/{year}:{h:02}:{m:02}:{sec:02} {sign}{oh:02}{om:02}",
            MONTHS[(month - 1) as usize]
        ),
        TimeFormat::Iso8601 => write!(
            out,
            "{year}-{month:02}-{day:02}T{h:02}:{m:02}:{sec:02}{sign}{oh:02}:{om:02}"
        ),
        TimeFormat::ErrorLog => write!(out, "{year}/{month:02}/{day:02} {h:02}:{m:02}:{sec:02}"),
        TimeFormat::Http => {
            // 1970-01-01 was a Thursday
            const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
            write!(
                out,
                "{}, {day:02} {} {year} {h:02}:{m:02}:{sec:02} GMT",
                WEEKDAYS[days.rem_euclid(7) as usize],
                MONTHS[(month - 1) as usize]
            )
        }
    };
}

/// Where the machine's offset from UTC comes from: set once by the
/// process (rginx-proxy asks `localtime_r`, as `ngx_time_update` does);
/// unset, times are UTC. This crate reads no time zone itself.
static UTC_OFFSET: std::sync::OnceLock<fn(u64) -> i64> = std::sync::OnceLock::new();

/// Sets how the offset from UTC (in seconds) of a moment (seconds since
/// the epoch) is found, for `$time_local`, `$time_iso8601` and the error
/// log; the first call wins.
pub fn set_utc_offset_source(source: fn(u64) -> i64) {
    let _ = UTC_OFFSET.set(source);
}

fn utc_offset(utc: u64) -> i64 {
    UTC_OFFSET.get().map_or(0, |source| source(utc))
}

/// Captures of the last regex that matched (a location's, a server
/// name's or a map's), as nginx keeps them per request.
#[derive(Debug, Default, Clone)]
pub(super) struct Captures {
    /// The subject of the last match (bytes: PCRE2 matches bytes).
    subject: Vec<u8>,
    spans: Spans,
    /// The spans of the match being tried.
    trying: Spans,
    /// The names of the groups of the regex that set them.
    names: Option<std::sync::Arc<[Option<String>]>>,
}

impl Captures {
    /// Matches `re` against `subject`; a match replaces the captures, as
    /// in nginx (`ngx_http_regex_exec`), a miss or a failure keeps them.
    pub(super) fn run(&mut self, re: &Pcre, subject: &[u8]) -> Result<bool, MatchError> {
        // most regexes tried do not match: a plain match first, without
        // capture data; the one that matches runs again for its groups
        if !re.is_match(subject)? || !re.captures(subject, &mut self.trying)? {
            return Ok(false);
        }
        std::mem::swap(&mut self.spans, &mut self.trying);
        self.subject.clear();
        self.subject.extend_from_slice(subject);
        self.names = Some(re.shared_names());
        Ok(true)
    }

    /// Group `i` of the last match (`$1`..`$9`; empty when unset). Bytes
    /// that are not UTF-8 become U+FFFD, as every variable's text does.
    fn get(&self, i: usize) -> Cow<'_, str> {
        match self.spans.get(i) {
            Some(Some((a, b))) => {
                String::from_utf8_lossy(self.subject.get(*a..*b).unwrap_or_default())
            }
            _ => Cow::Borrowed(""),
        }
    }

    fn named(&self, name: &str) -> Cow<'_, str> {
        let index = self
            .names
            .as_ref()
            .and_then(|names| names.iter().position(|n| n.as_deref() == Some(name)));
        match index {
            Some(i) => self.get(i),
            None => Cow::Borrowed(""),
        }
    }
}

/// Per-request evaluation state.
pub(super) struct Ctx<'a> {
    pub(super) rt: &'a Runtime,
    pub(super) req: &'a RequestHead<'a>,
    pub(super) host: &'a str,
    pub(super) server: &'a CompiledServer,
    pub(super) uri: &'a str,
    pub(super) args: &'a str,
    pub(super) request_uri: &'a str,
    pub(super) captures: Captures,
    pub(super) proxy_host: &'a str,
    pub(super) proxy_port: u16,
    /// Each map's value once computed (empty until a map is used).
    pub(super) map_values: Vec<Option<String>>,
    /// What the response was, once there is one (for access logs).
    pub(super) facts: Option<&'a ResponseFacts>,
    /// `$status` while a `return` is answered, before there are facts
    /// (`ngx_http_send_response` sets the status first).
    pub(super) answering: Option<u16>,
    /// The response's header lines, once there is a response (the
    /// headers filter's `$sent_http_*`).
    pub(super) sent: Option<&'a dyn SentHeaders>,
    /// nginx's `[alert]` lines for regex matches that failed while
    /// evaluating (a map's regex reaching PCRE2's match limit).
    pub(super) alerts: Vec<String>,
}

impl<'a> Ctx<'a> {
    /// The request headers nginx keeps (it drops invalid names while
    /// reading the request).
    fn kept_headers(&self) -> impl Iterator<Item = &(&str, &str)> + '_ {
        let (u, i) = (
            self.server.underscores_in_headers,
            self.server.ignore_invalid_headers,
        );
        self.req
            .headers
            .iter()
            .filter(move |(n, _)| header_name_ok(n, u, i))
    }

    /// All values of a header, joined the way nginx 1.22 joins them.
    /// Returns whether the header was present (possibly empty).
    fn header(&self, name: &str, out: &mut String) -> bool {
        // $http_NAME: `-` in the header name matches `_` in NAME
        let matches = |h: &str| {
            h.len() == name.len()
                && h.bytes().zip(name.bytes()).all(|(a, b)| {
                    let a = a.to_ascii_lowercase();
                    a == b || (a == b'-' && b == b'_')
                })
        };
        let separator = match name {
            "cookie" => Some("; "),
            "x_forwarded_for" => Some(", "),
            _ => None,
        };
        let mut first = true;
        for (h, v) in self.kept_headers() {
            if !matches(h) {
                continue;
            }
            if !first {
                match separator {
                    Some(s) => out.push_str(s),
                    None => return true,
                }
            }
            out.push_str(v);
            first = false;
        }
        !first
    }
    pub(super) fn var(&mut self, v: &Var, out: &mut String) {
        match v {
            Var::Host => {
                if self.host.is_empty() {
                    out.push_str(&self.server.primary_name);
                } else {
                    out.push_str(self.host);
                }
            }
            Var::Http(name) => {
                self.header(name, out);
            }
            Var::RemoteAddr => {
                let _ = write!(out, "{}", self.req.remote.ip());
            }
            Var::RemotePort => {
                let _ = write!(out, "{}", self.req.remote.port());
            }
            // bytes, not text: only a log line renders it (see
            // `Template::compile_log` and `CompiledFormat::render`)
            Var::BinaryRemoteAddr => {}
            Var::ServerAddr => {
                let _ = write!(out, "{}", self.req.local.ip());
            }
            Var::ServerPort => {
                let _ = write!(out, "{}", self.req.local.port());
            }
            Var::ServerName => out.push_str(&self.server.primary_name),
            Var::ServerProtocol => {
                let _ = write!(out, "HTTP/1.{}", self.req.minor_version);
            }
            Var::Scheme => out.push_str(if self.req.tls.is_some() {
                "https"
            } else {
                "http"
            }),
            Var::Https => {
                if self.req.tls.is_some() {
                    out.push_str("on");
                }
            }
            Var::SslProtocol => out.push_str(self.req.tls.map_or("", |t| t.protocol)),
            Var::SslCipher => out.push_str(self.req.tls.map_or("", |t| t.cipher)),
            Var::SslCurve => out.push_str(self.req.tls.map_or("", |t| t.curve)),
            Var::SslServerName => {
                out.push_str(
                    self.req
                        .tls
                        .and_then(|t| t.server_name.as_deref())
                        .unwrap_or(""),
                );
            }
            // `ngx_ssl_get_session_reused`: "r" or "."
            Var::SslSessionReused => match self.req.tls {
                Some(t) if t.session_reused => out.push('r'),
                Some(_) => out.push('.'),
                None => {}
            },
            Var::SslAlpnProtocol => {
                out.push_str(self.req.tls.and_then(|t| t.alpn.as_deref()).unwrap_or(""));
            }
            Var::SslCiphers => {
                if let Some(tls) = self.req.tls {
                    super::tls_names::write_suites(&tls.client_suites, out);
                }
            }
            Var::SslCurves => {
                if let Some(tls) = self.req.tls {
                    super::tls_names::write_groups(&tls.client_groups, out);
                }
            }
            Var::SslEarlyData => {}
            Var::SslClient(field) => {
                if let Some(tls) = self.req.tls {
                    ssl_client(tls, *field, out);
                }
            }
            Var::RequestMethod => out.push_str(self.req.method),
            Var::Request => {
                let _ = write!(
                    out,
                    "{} {} HTTP/1.{}",
                    self.req.method, self.req.target, self.req.minor_version
                );
            }
            Var::RequestUri => out.push_str(self.request_uri),
            Var::Uri => out.push_str(self.uri),
            Var::Args => out.push_str(self.args),
            Var::IsArgs => {
                if !self.args.is_empty() {
                    out.push('?');
                }
            }
            Var::Arg(name) => out.push_str(uri::arg(self.args, name).unwrap_or("")),
            Var::Cookie(name) => {
                // each Cookie header is searched in turn, as nginx does
                let cookies = self
                    .kept_headers()
                    .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
                    .map(|(_, v)| *v);
                out.push_str(uri::cookie_in(cookies, name).unwrap_or(""));
            }
            Var::ContentLength => {
                self.header("content_length", out);
            }
            Var::ContentType => {
                self.header("content_type", out);
            }
            Var::ProxyHost => out.push_str(self.proxy_host),
            // port 0: a unix socket, which has none
            Var::ProxyPort if self.proxy_port == 0 => {}
            Var::ProxyPort => {
                let _ = write!(out, "{}", self.proxy_port);
            }
            Var::ProxyAddXForwardedFor => {
                if self.header("x_forwarded_for", out) {
                    out.push_str(", ");
                }
                let _ = write!(out, "{}", self.req.remote.ip());
            }
            Var::Hostname => out.push_str(&self.rt.hostname),
            Var::Pid => {
                let _ = write!(out, "{}", std::process::id());
            }
            Var::NginxVersion => out.push_str("1.22.1"),
            Var::Msec => {
                let d = self.req.time.duration_since(UNIX_EPOCH).unwrap_or_default();
                let _ = write!(out, "{}.{:03}", d.as_secs(), d.subsec_millis());
            }
            Var::TimeLocal => format_time(self.req.time, TimeFormat::Local, out),
            Var::TimeIso8601 => format_time(self.req.time, TimeFormat::Iso8601, out),
            Var::RequestId => {
                for b in self.req.request_id {
                    let _ = write!(out, "{b:02x}");
                }
            }
            Var::RequestBody => {
                if let Some(BodyValue::Memory(bytes)) = self.req.body {
                    out.push_str(&String::from_utf8_lossy(bytes));
                }
            }
            Var::RequestBodyFile => {
                if let Some(BodyValue::File(name)) = self.req.body {
                    out.push_str(name);
                }
            }
            // known as soon as a server is tried, in every phase after
            Var::Upstream(which) => {
                if let Some(states) = self.req.upstreams {
                    states.write(*which, out);
                }
            }
            Var::Connection => {
                let _ = write!(out, "{}", self.req.connection.number);
            }
            Var::UpstreamHttp(name) => {
                if let Some(value) = self.req.upstreams.and_then(|u| u.header(name)) {
                    out.push_str(&value);
                }
            }
            Var::RemoteUser => {
                let authorization = self
                    .req
                    .headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("authorization"));
                if let Some(user) = authorization.and_then(|(_, v)| super::basic_user(v)) {
                    out.push_str(&user);
                }
            }
            Var::Pipe => out.push(if self.req.connection.pipelined {
                'p'
            } else {
                '.'
            }),
            Var::ConnectionRequests => {
                let _ = write!(out, "{}", self.req.connection.requests);
            }
            Var::ConnectionTime => {
                // ngx_http_variable_connection_time: "%T.%03M"
                let t = self
                    .req
                    .connection
                    .accepted
                    .map(|at| at.elapsed())
                    .unwrap_or_default();
                let _ = write!(out, "{}.{:03}", t.as_secs(), t.subsec_millis());
            }
            Var::Connections(which) => {
                // read when used, as ngx_http_stub_status_variable does
                let now = crate::stats::COUNTERS.snapshot();
                let n = match which {
                    ConnectionsVar::Active => now.active,
                    ConnectionsVar::Reading => now.reading,
                    ConnectionsVar::Writing => now.writing,
                    ConnectionsVar::Waiting => now.waiting,
                };
                let _ = write!(out, "{n}");
            }
            Var::Response(name) if name.starts_with("sent_http_") => {
                let header = name["sent_http_".len()..].replace('_', "-");
                if let Some(value) = self.sent.and_then(|s| s.sent(&header)) {
                    out.push_str(&value);
                }
            }
            Var::Response(name) if self.facts.is_none() => {
                if let (Some(status), "status") = (self.answering, &**name) {
                    let _ = write!(out, "{status:03}");
                }
            }
            Var::Response(name) => {
                if let Some(f) = self.facts {
                    match &**name {
                        "status" => {
                            let _ = write!(out, "{}", f.status);
                        }
                        "body_bytes_sent" => {
                            let _ = write!(out, "{}", f.body_bytes_sent);
                        }
                        "bytes_sent" => {
                            let _ = write!(out, "{}", f.bytes_sent);
                        }
                        "request_length" => {
                            let _ = write!(out, "{}", f.request_length);
                        }
                        "request_time" => {
                            let t = f.request_time;
                            let _ = write!(out, "{}.{:03}", t.as_secs(), t.subsec_millis());
                        }
                        _ => {}
                    }
                }
            }
            Var::Map(i) => self.map(*i as usize, out),
            Var::Capture(n) => out.push_str(&self.captures.get(*n as usize)),
            Var::NamedCapture(name) => out.push_str(&self.captures.named(name)),
        }
    }

    /// A map's value, computed once per request (<https://nginx.org/en/docs/http/ngx_http_map_module.html>: the value is evaluated when first used).
    fn map(&mut self, i: usize, out: &mut String) {
        if let Some(Some(v)) = self.map_values.get(i) {
            out.push_str(v);
            return;
        }
        let Some(map) = self.rt.maps.get(i) else {
            return;
        };
        let mut input = String::new();
        map.source.render(&mut input, &mut |v, o| self.var(v, o));
        let mut key = input.to_ascii_lowercase();
        if map.hostnames && key.ends_with('.') {
            key.pop();
        }
        let mut chosen: Option<&Template> = map.exact.get(&key);
        if chosen.is_none() && map.hostnames {
            chosen = map
                .leading
                .iter()
                .find(|(suffix, _)| key.ends_with(suffix.as_str()) && key.len() > suffix.len())
                .map(|(_, t)| t)
                .or_else(|| {
                    map.trailing
                        .iter()
                        .find(|(p, _)| key.starts_with(p.as_str()) && key.len() > p.len())
                        .map(|(_, t)| t)
                });
        }
        if chosen.is_none() && !input.is_empty() {
            for (re, t) in &map.regexes {
                match self.captures.run(re, input.as_bytes()) {
                    Ok(false) => continue,
                    Ok(true) => chosen = Some(t),
                    // nginx logs the failure and takes the default
                    // (`ngx_http_map_find` returns no value)
                    Err(e) => self.alerts.push(e.message(input.as_bytes(), re.as_str())),
                }
                break;
            }
        }
        let mut value = String::new();
        if let Some(t) = chosen.or(map.default.as_ref()) {
            t.render(&mut value, &mut |v, o| self.var(v, o));
        }
        out.push_str(&value);
        // the slots are made with the first map a request uses
        if self.map_values.len() < self.rt.maps.len() {
            self.map_values.resize(self.rt.maps.len(), None);
        }
        if let Some(slot) = self.map_values.get_mut(i) {
            *slot = Some(value);
        }
    }
}

/// `$ssl_client_*` of a TLS connection (`ngx_ssl_get_client_verify` and
/// the others): empty without a certificate, but `$ssl_client_verify`,
/// which says `NONE`.
fn ssl_client(tls: &super::TlsFacts, field: crate::template::SslClientField, out: &mut String) {
    use crate::template::SslClientField as F;
    let Some(cert) = tls.client.as_deref() else {
        if field == F::Verify {
            out.push_str("NONE");
        }
        return;
    };
    match field {
        F::Verify => out.push_str(&cert.verify()),
        F::SubjectDn => out.push_str(&cert.s_dn),
        F::IssuerDn => out.push_str(&cert.i_dn),
        F::SubjectDnLegacy => out.push_str(&cert.s_dn_legacy),
        F::IssuerDnLegacy => out.push_str(&cert.i_dn_legacy),
        F::Serial => out.push_str(&cert.serial),
        F::Fingerprint => out.push_str(&cert.fingerprint),
        F::Start => out.push_str(&cert.v_start),
        F::End => out.push_str(&cert.v_end),
        F::Remain => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let days = (cert.not_after - now).max(0) / 86_400;
            let _ = std::fmt::Write::write_fmt(out, format_args!("{days}"));
        }
        F::RawCert => out.push_str(&cert.pem),
        // `ngx_ssl_get_certificate`: without the last line break, a tab
        // after every other
        F::Cert => {
            let text = cert.pem.strip_suffix('\n').unwrap_or(&cert.pem);
            for c in text.chars() {
                out.push(c);
                if c == '\n' {
                    out.push('\t');
                }
            }
        }
        // `ngx_escape_uri` with `NGX_ESCAPE_URI_COMPONENT`
        F::EscapedCert => {
            const COMPONENT: [u32; 8] = [
                0xffff_ffff,
                0xfc00_9fff,
                0x7800_0001,
                0xb800_0001,
                0xffff_ffff,
                0xffff_ffff,
                0xffff_ffff,
                0xffff_ffff,
            ];
            for b in cert.pem.bytes() {
                if COMPONENT[usize::from(b >> 5)] & (1 << (b & 0x1f)) != 0 {
                    let _ = std::fmt::Write::write_fmt(out, format_args!("%{b:02X}"));
                } else {
                    out.push(char::from(b));
                }
            }
        }
    }
}
