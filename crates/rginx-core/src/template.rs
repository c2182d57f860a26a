//! Values with variables (`"$scheme://$host$request_uri"`), compiled once
//! at load into literal and variable parts, so a request only looks values
//! up (nginx's script engine, `ngx_http_script_compile`).

use std::collections::HashMap;

use crate::vars::{scan, Piece, TemplateError};

/// A field of the client certificate (`$ssl_client_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslClientField {
    /// `$ssl_client_verify`
    Verify,
    /// `$ssl_client_s_dn`
    SubjectDn,
    /// `$ssl_client_i_dn`
    IssuerDn,
    /// `$ssl_client_s_dn_legacy`
    SubjectDnLegacy,
    /// `$ssl_client_i_dn_legacy`
    IssuerDnLegacy,
    /// `$ssl_client_serial`
    Serial,
    /// `$ssl_client_fingerprint`
    Fingerprint,
    /// `$ssl_client_v_start`
    Start,
    /// `$ssl_client_v_end`
    End,
    /// `$ssl_client_v_remain`
    Remain,
    /// `$ssl_client_raw_cert`
    RawCert,
    /// `$ssl_client_cert` (deprecated: the PEM with a tab after each
    /// inner line break)
    Cert,
    /// `$ssl_client_escaped_cert`
    EscapedCert,
}

/// A variable a template refers to, resolved at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    /// `$host`
    Host,
    /// `$http_NAME`: the name after `http_` (lowercase, `_` for `-`).
    Http(Box<str>),
    /// `$remote_addr`
    RemoteAddr,
    /// `$remote_port`
    RemotePort,
    /// `$binary_remote_addr`: the client address's bytes (4 or 16); only
    /// in `log_format`, whose escaping makes text of them.
    BinaryRemoteAddr,
    /// `$server_addr`
    ServerAddr,
    /// `$server_port`
    ServerPort,
    /// `$server_name`
    ServerName,
    /// `$server_protocol`
    ServerProtocol,
    /// `$scheme`
    Scheme,
    /// `$https`
    Https,
    /// `$ssl_protocol`
    SslProtocol,
    /// `$ssl_cipher`
    SslCipher,
    /// `$ssl_curve`
    SslCurve,
    /// `$ssl_server_name`
    SslServerName,
    /// `$ssl_session_reused`
    SslSessionReused,
    /// `$ssl_alpn_protocol`
    SslAlpnProtocol,
    /// `$ssl_client_*`: the client certificate's fields.
    SslClient(SslClientField),
    /// `$ssl_ciphers`
    SslCiphers,
    /// `$ssl_curves`
    SslCurves,
    /// `$ssl_early_data`: always empty (rginx takes no early data).
    SslEarlyData,
    /// `$request_method`
    RequestMethod,
    /// `$request`
    Request,
    /// `$request_uri`
    RequestUri,
    /// `$uri` and `$document_uri`
    Uri,
    /// `$args` and `$query_string`
    Args,
    /// `$is_args`
    IsArgs,
    /// `$arg_NAME`
    Arg(Box<str>),
    /// `$cookie_NAME`
    Cookie(Box<str>),
    /// `$content_length`
    ContentLength,
    /// `$content_type`
    ContentType,
    /// `$proxy_host`
    ProxyHost,
    /// `$proxy_port`
    ProxyPort,
    /// `$proxy_add_x_forwarded_for`
    ProxyAddXForwardedFor,
    /// `$hostname`
    Hostname,
    /// `$pid`
    Pid,
    /// `$nginx_version` (rginx reports nginx 1.22's)
    NginxVersion,
    /// `$msec`
    Msec,
    /// `$time_local`
    TimeLocal,
    /// `$time_iso8601`
    TimeIso8601,
    /// `$request_id`
    RequestId,
    /// `$request_body`: the body, once read, when it is in memory.
    RequestBody,
    /// `$request_body_file`: the body's temp file, once read into one.
    RequestBodyFile,
    /// `$connections_active`, `_reading`, `_writing`, `_waiting`: the
    /// process's counters when the value is used.
    Connections(ConnectionsVar),
    /// `$upstream_addr`, `$upstream_status`, the `$upstream_*_time` and
    /// byte count variables: the servers the request tried so far.
    Upstream(UpstreamVar),
    /// `$connection`: the client connection's serial number.
    Connection,
    /// `$connection_requests`: requests on the connection, this one
    /// included.
    ConnectionRequests,
    /// `$connection_time`: seconds (with milliseconds) since the
    /// connection was accepted.
    ConnectionTime,
    /// `$pipe`: `p` for a pipelined request, else `.`.
    Pipe,
    /// `$remote_user`: the user of the request's Basic credentials.
    RemoteUser,
    /// `$upstream_http_NAME`: a header of the last upstream answer (the
    /// name lowercased, `-` as `_`).
    UpstreamHttp(Box<str>),
    /// A `map` result, by map index.
    Map(u32),
    /// `$1`..`$9`
    Capture(u8),
    /// A named regex capture.
    NamedCapture(Box<str>),
    /// A variable only known once a response exists (`$status`,
    /// `$body_bytes_sent`, `$upstream_*`...): evaluated by the logger.
    Response(Box<str>),
}

/// Which of the `stub_status` counters a `$connections_*` variable reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionsVar {
    /// `$connections_active`
    Active,
    /// `$connections_reading`
    Reading,
    /// `$connections_writing`
    Writing,
    /// `$connections_waiting`
    Waiting,
}

/// What of the servers tried an upstream variable writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamVar {
    /// `$upstream_addr`
    Addr,
    /// `$upstream_status`
    Status,
    /// `$upstream_connect_time`
    ConnectTime,
    /// `$upstream_header_time`
    HeaderTime,
    /// `$upstream_response_time`
    ResponseTime,
    /// `$upstream_bytes_received`
    BytesReceived,
    /// `$upstream_bytes_sent`
    BytesSent,
    /// `$upstream_response_length`
    ResponseLength,
}

/// Variables known only after the response (used in `log_format`).
const RESPONSE_VARS: &[&str] = &[
    "status",
    "body_bytes_sent",
    "bytes_sent",
    "request_time",
    "request_length",
];

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text copied as is.
    Literal(Box<str>),
    /// A variable's value.
    Var(Var),
}

/// A compiled value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    parts: Vec<Part>,
}

/// Why a value cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompileError {
    /// Bad `$` syntax (nginx's own messages).
    Syntax(TemplateError),
    /// A variable nginx knows but rginx does not implement.
    Unsupported(String),
    /// A variable nobody defines.
    Unknown(String),
}

impl CompileError {
    /// The message for `rginx check`.
    pub fn message(&self) -> String {
        match self {
            CompileError::Syntax(e) => e.message(),
            CompileError::Unsupported(n) => format!("variable \"${n}\" is not supported by rginx"),
            CompileError::Unknown(n) => format!("unknown \"{n}\" variable"),
        }
    }
}

/// Names that the configuration defines: map results and named captures.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// Set when a compiled value reads `$upstream_http_NAME` (the engine
    /// then keeps each upstream answer's head for it).
    pub upstream_headers: std::cell::Cell<bool>,
    /// Map variable name -> map index.
    pub maps: HashMap<String, u32>,
    /// Named captures of any regex in the configuration.
    pub captures: Vec<String>,
}

fn resolve(name: &str, names: &Names) -> Result<Var, CompileError> {
    if let Some(i) = names.maps.get(name) {
        return Ok(Var::Map(*i));
    }
    if names.captures.iter().any(|c| c == name) {
        return Ok(Var::NamedCapture(name.into()));
    }
    let var = match name {
        "host" => Var::Host,
        "remote_addr" => Var::RemoteAddr,
        "remote_port" => Var::RemotePort,
        "server_addr" => Var::ServerAddr,
        "server_port" => Var::ServerPort,
        "server_name" => Var::ServerName,
        "server_protocol" => Var::ServerProtocol,
        "scheme" => Var::Scheme,
        "https" => Var::Https,
        "ssl_protocol" => Var::SslProtocol,
        "ssl_cipher" => Var::SslCipher,
        "ssl_curve" => Var::SslCurve,
        "ssl_server_name" => Var::SslServerName,
        "ssl_session_reused" => Var::SslSessionReused,
        "ssl_alpn_protocol" => Var::SslAlpnProtocol,
        "ssl_ciphers" => Var::SslCiphers,
        "ssl_curves" => Var::SslCurves,
        "ssl_early_data" => Var::SslEarlyData,
        "ssl_client_verify" => Var::SslClient(SslClientField::Verify),
        "ssl_client_s_dn" => Var::SslClient(SslClientField::SubjectDn),
        "ssl_client_i_dn" => Var::SslClient(SslClientField::IssuerDn),
        "ssl_client_s_dn_legacy" => Var::SslClient(SslClientField::SubjectDnLegacy),
        "ssl_client_i_dn_legacy" => Var::SslClient(SslClientField::IssuerDnLegacy),
        "ssl_client_serial" => Var::SslClient(SslClientField::Serial),
        "ssl_client_fingerprint" => Var::SslClient(SslClientField::Fingerprint),
        "ssl_client_v_start" => Var::SslClient(SslClientField::Start),
        "ssl_client_v_end" => Var::SslClient(SslClientField::End),
        "ssl_client_v_remain" => Var::SslClient(SslClientField::Remain),
        "ssl_client_raw_cert" => Var::SslClient(SslClientField::RawCert),
        "ssl_client_cert" => Var::SslClient(SslClientField::Cert),
        "ssl_client_escaped_cert" => Var::SslClient(SslClientField::EscapedCert),
        "request_method" => Var::RequestMethod,
        "request" => Var::Request,
        "request_uri" => Var::RequestUri,
        "uri" | "document_uri" => Var::Uri,
        "args" | "query_string" => Var::Args,
        "is_args" => Var::IsArgs,
        "content_length" => Var::ContentLength,
        "content_type" => Var::ContentType,
        "proxy_host" => Var::ProxyHost,
        "proxy_port" => Var::ProxyPort,
        "proxy_add_x_forwarded_for" => Var::ProxyAddXForwardedFor,
        "hostname" => Var::Hostname,
        "pid" => Var::Pid,
        "nginx_version" => Var::NginxVersion,
        "msec" => Var::Msec,
        "time_local" => Var::TimeLocal,
        "time_iso8601" => Var::TimeIso8601,
        "request_id" => Var::RequestId,
        "request_body" => Var::RequestBody,
        "request_body_file" => Var::RequestBodyFile,
        "connections_active" => Var::Connections(ConnectionsVar::Active),
        "connections_reading" => Var::Connections(ConnectionsVar::Reading),
        "connections_writing" => Var::Connections(ConnectionsVar::Writing),
        "connections_waiting" => Var::Connections(ConnectionsVar::Waiting),
        "upstream_addr" => Var::Upstream(UpstreamVar::Addr),
        "upstream_status" => Var::Upstream(UpstreamVar::Status),
        "upstream_connect_time" => Var::Upstream(UpstreamVar::ConnectTime),
        "upstream_header_time" => Var::Upstream(UpstreamVar::HeaderTime),
        "upstream_response_time" => Var::Upstream(UpstreamVar::ResponseTime),
        "upstream_bytes_received" => Var::Upstream(UpstreamVar::BytesReceived),
        "upstream_bytes_sent" => Var::Upstream(UpstreamVar::BytesSent),
        "upstream_response_length" => Var::Upstream(UpstreamVar::ResponseLength),
        "connection" => Var::Connection,
        "connection_requests" => Var::ConnectionRequests,
        "connection_time" => Var::ConnectionTime,
        "pipe" => Var::Pipe,
        "remote_user" => Var::RemoteUser,
        n if n.starts_with("upstream_http_") && n.len() > 14 => {
            names.upstream_headers.set(true);
            Var::UpstreamHttp(n[14..].to_ascii_lowercase().into())
        }
        n if RESPONSE_VARS.contains(&n) => Var::Response(n.into()),
        n if n.starts_with("sent_http_") && n.len() > 10 => {
            Var::Response(n.to_ascii_lowercase().into())
        }
        n if n.starts_with("http_") && n.len() > 5 => Var::Http(n[5..].into()),
        n if n.starts_with("arg_") && n.len() > 4 => Var::Arg(n[4..].into()),
        n if n.starts_with("cookie_") && n.len() > 7 => Var::Cookie(n[7..].into()),
        n if crate::vars::is_builtin(n) => return Err(CompileError::Unsupported(n.into())),
        n => return Err(CompileError::Unknown(n.into())),
    };
    Ok(var)
}

/// The variable only a `log_format` computes (its value is bytes, which
/// the log's escaping makes text of): see [`Template::compile_log`].
pub const LOG_ONLY: &str = "binary_remote_addr";

/// Every variable rginx computes, by name (prefix families end in `_`),
/// for docs/directives.md.
pub const IMPLEMENTED: &[&str] = &[
    "host",
    "http_",
    "remote_addr",
    "remote_port",
    "server_addr",
    "server_port",
    "server_name",
    "server_protocol",
    "scheme",
    "https",
    "ssl_protocol",
    "ssl_cipher",
    "ssl_curve",
    "ssl_server_name",
    "ssl_session_reused",
    "ssl_alpn_protocol",
    "ssl_ciphers",
    "ssl_curves",
    "ssl_early_data",
    "ssl_client_verify",
    "ssl_client_s_dn",
    "ssl_client_i_dn",
    "ssl_client_s_dn_legacy",
    "ssl_client_i_dn_legacy",
    "ssl_client_serial",
    "ssl_client_fingerprint",
    "ssl_client_v_start",
    "ssl_client_v_end",
    "ssl_client_v_remain",
    "ssl_client_raw_cert",
    "ssl_client_cert",
    "ssl_client_escaped_cert",
    "request_method",
    "request",
    "request_uri",
    "uri",
    "document_uri",
    "args",
    "query_string",
    "is_args",
    "arg_",
    "cookie_",
    "content_length",
    "content_type",
    "proxy_host",
    "proxy_port",
    "proxy_add_x_forwarded_for",
    "hostname",
    "pid",
    "nginx_version",
    "msec",
    "time_local",
    "time_iso8601",
    "request_id",
    "request_body",
    "request_body_file",
    "connections_active",
    "connections_reading",
    "connections_writing",
    "connections_waiting",
    "connection",
    "connection_requests",
    "connection_time",
    "pipe",
    "remote_user",
    "upstream_http_",
];

/// Whether rginx implements a variable nginx defines by itself.
pub fn is_implemented(name: &str) -> bool {
    !matches!(
        resolve(name, &Names::default()),
        Err(CompileError::Unsupported(_))
    )
}

impl Template {
    /// Compiles `text`, resolving every variable.
    pub fn compile(text: &str, names: &Names) -> Result<Template, CompileError> {
        Template::compile_in(text, names, false)
    }

    /// Compiles a `log_format`: as [`Template::compile`], and
    /// `$binary_remote_addr` too (its bytes are escaped as the line is
    /// written; other values are text).
    pub fn compile_log(text: &str, names: &Names) -> Result<Template, CompileError> {
        Template::compile_in(text, names, true)
    }

    fn compile_in(text: &str, names: &Names, log: bool) -> Result<Template, CompileError> {
        // plain text (most `map` values): one part, sized exactly
        if !text.contains('$') {
            let parts = if text.is_empty() {
                Vec::new()
            } else {
                vec![Part::Literal(text.into())]
            };
            return Ok(Template { parts });
        }
        let mut parts = Vec::new();
        let mut unresolved = None;
        scan(text, |piece| match piece {
            Piece::Literal(s) => parts.push(Part::Literal(s.into())),
            Piece::Capture(d) => parts.push(Part::Var(Var::Capture(d))),
            Piece::Var(name) if log && name == LOG_ONLY => {
                parts.push(Part::Var(Var::BinaryRemoteAddr))
            }
            Piece::Var(name) => match resolve(name, names) {
                Ok(var) => parts.push(Part::Var(var)),
                Err(e) => {
                    unresolved.get_or_insert(e);
                }
            },
        })
        .map_err(CompileError::Syntax)?;
        match unresolved {
            Some(e) => Err(e),
            None => Ok(Template { parts }),
        }
    }

    /// The parts in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The variables it uses, in order.
    pub fn vars(&self) -> impl Iterator<Item = &Var> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v),
            Part::Literal(_) => None,
        })
    }

    /// Whether the template is plain text (no variables).
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// Whether it reads a variable `which` picks.
    pub fn reads(&self, which: impl Fn(&Var) -> bool) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Var(v) if which(v)))
    }

    /// Text as it is, not scanned for variables.
    pub fn literal(text: &str) -> Template {
        let parts = if text.is_empty() {
            Vec::new()
        } else {
            vec![Part::Literal(text.into())]
        };
        Template { parts }
    }

    /// The text of a template without variables (`None` when it has
    /// some, or several parts).
    pub fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Literal(s)] => Some(s),
            _ => None,
        }
    }

    /// Evaluates the template with `lookup` giving each variable's value.
    pub fn render(&self, out: &mut String, lookup: &mut dyn FnMut(&Var, &mut String)) {
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Var(v) => lookup(v, out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_list_is_what_resolves() {
        for name in IMPLEMENTED {
            let name = if name.ends_with('_') {
                format!("{name}x")
            } else {
                name.to_string()
            };
            assert!(is_implemented(&name), "{name}");
            assert!(resolve(&name, &Names::default()).is_ok(), "{name}");
        }
    }

    #[test]
    fn compiles_literals_variables_and_captures() {
        let mut names = Names::default();
        names.maps.insert("connection_upgrade".into(), 0);
        let t = Template::compile("a$host-${http_x_y}z$1$connection_upgrade", &names).unwrap();
        assert_eq!(
            t.parts(),
            &[
                Part::Literal("a".into()),
                Part::Var(Var::Host),
                Part::Literal("-".into()),
                Part::Var(Var::Http("x_y".into())),
                Part::Literal("z".into()),
                Part::Var(Var::Capture(1)),
                Part::Var(Var::Map(0)),
            ]
        );
        assert_eq!(
            Template::compile("$nope", &names).unwrap_err().message(),
            "unknown \"nope\" variable"
        );
        assert_eq!(
            Template::compile("$ssl_session_id", &names)
                .unwrap_err()
                .message(),
            "variable \"$ssl_session_id\" is not supported by rginx"
        );
    }
}
