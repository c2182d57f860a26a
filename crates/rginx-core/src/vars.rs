//! Variable names: which ones nginx (as packaged by Debian) knows, and how
//! nginx's script compiler finds them in a value.

/// Variables nginx 1.22's Debian build defines, by exact name.
const KNOWN: &[&str] = &[
    // ngx_http_core / ngx_http_variables.c
    "http_host",
    "http_user_agent",
    "http_referer",
    "http_via",
    "http_x_forwarded_for",
    "http_cookie",
    "content_length",
    "content_type",
    "host",
    "binary_remote_addr",
    "remote_addr",
    "remote_port",
    "proxy_protocol_addr",
    "proxy_protocol_port",
    "proxy_protocol_server_addr",
    "proxy_protocol_server_port",
    "server_addr",
    "server_port",
    "server_protocol",
    "scheme",
    "https",
    "request_uri",
    "uri",
    "document_uri",
    "request",
    "document_root",
    "realpath_root",
    "query_string",
    "args",
    "is_args",
    "request_filename",
    "server_name",
    "request_method",
    "remote_user",
    "bytes_sent",
    "body_bytes_sent",
    "pipe",
    "request_completion",
    "request_body",
    "request_body_file",
    "request_length",
    "request_time",
    "request_id",
    "status",
    "sent_http_content_type",
    "sent_http_content_length",
    "sent_http_location",
    "sent_http_last_modified",
    "sent_http_connection",
    "sent_http_keep_alive",
    "sent_http_transfer_encoding",
    "sent_http_cache_control",
    "sent_http_link",
    "limit_rate",
    "connection",
    "connection_requests",
    "connection_time",
    "nginx_version",
    "hostname",
    "pid",
    "msec",
    "time_iso8601",
    "time_local",
    "tcpinfo_rtt",
    "tcpinfo_rttvar",
    "tcpinfo_snd_cwnd",
    "tcpinfo_rcv_space",
    // proxy and upstream
    "proxy_host",
    "proxy_port",
    "proxy_add_x_forwarded_for",
    "proxy_internal_body_length",
    "proxy_internal_chunked",
    "upstream_addr",
    "upstream_status",
    "upstream_connect_time",
    "upstream_header_time",
    "upstream_response_time",
    "upstream_response_length",
    "upstream_bytes_received",
    "upstream_bytes_sent",
    "upstream_cache_status",
    // other modules built into Debian's package
    "realip_remote_addr",
    "realip_remote_port",
    "gzip_ratio",
    "secure_link",
    "secure_link_expires",
    "limit_conn_status",
    "limit_req_status",
    "fastcgi_script_name",
    "fastcgi_path_info",
    "date_local",
    "date_gmt",
    "uid_got",
    "uid_set",
    "uid_reset",
    "invalid_referer",
    "http2",
    "connections_active",
    "connections_reading",
    "connections_writing",
    "connections_waiting",
    "slice_range",
    "modern_browser",
    "ancient_browser",
    "msie",
    "ssl_protocol",
    "ssl_cipher",
    "ssl_ciphers",
    "ssl_curve",
    "ssl_curves",
    "ssl_session_id",
    "ssl_session_reused",
    "ssl_early_data",
    "ssl_server_name",
    "ssl_alpn_protocol",
    "ssl_client_cert",
    "ssl_client_raw_cert",
    "ssl_client_escaped_cert",
    "ssl_client_s_dn",
    "ssl_client_i_dn",
    "ssl_client_s_dn_legacy",
    "ssl_client_i_dn_legacy",
    "ssl_client_serial",
    "ssl_client_fingerprint",
    "ssl_client_verify",
    "ssl_client_v_start",
    "ssl_client_v_end",
    "ssl_client_v_remain",
    "binary_remote_addr",
];

/// Prefixes of variable families (`$http_NAME`, `$arg_NAME`, ...).
const PREFIXES: &[&str] = &[
    "http_",
    "sent_http_",
    "sent_trailer_",
    "cookie_",
    "arg_",
    "upstream_http_",
    "upstream_trailer_",
    "upstream_cookie_",
];

/// Whether nginx defines `name` by itself (not counting `map` results and
/// regex captures, which the configuration defines).
pub fn is_builtin(name: &str) -> bool {
    KNOWN.contains(&name)
        || PREFIXES
            .iter()
            .any(|p| name.len() > p.len() && name.starts_with(p))
}

/// A problem nginx's script compiler reports in a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// `${name` without `}`.
    MissingBracket(String),
    /// `$` with no name after it.
    InvalidName,
}

impl TemplateError {
    /// nginx's message for `value`.
    pub fn message(&self) -> String {
        match self {
            TemplateError::MissingBracket(name) => {
                format!("the closing bracket in \"{name}\" variable is missing")
            }
            TemplateError::InvalidName => "invalid variable name".to_string(),
        }
    }
}

/// The variable names used in a value (`$name`, `${name}`), in order,
/// without captures (`$1`), following `ngx_http_script_compile`.
pub fn variables_in(value: &str) -> Result<Vec<&str>, TemplateError> {
    let mut out = Vec::new();
    for_each_variable(value, |name| out.push(name))?;
    Ok(out)
}

/// Calls `f` with each variable name used in `value`, in order, without
/// allocating.
pub fn for_each_variable<'v>(
    value: &'v str,
    mut f: impl FnMut(&'v str),
) -> Result<(), TemplateError> {
    scan(value, |piece| {
        if let Piece::Var(name) = piece {
            f(name);
        }
    })
}

/// A piece of a value, as nginx's script compiler splits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'v> {
    /// Text copied as is.
    Literal(&'v str),
    /// `$name` or `${name}`.
    Var(&'v str),
    /// `$1`..`$9`.
    Capture(u8),
}

/// Splits `value` into literal text, variables and captures, in order
/// (`ngx_http_script_compile`): a name is letters, digits and `_`, `${name}`
/// delimits one, `$` and a digit is a capture.
pub fn scan<'v>(value: &'v str, mut f: impl FnMut(Piece<'v>)) -> Result<(), TemplateError> {
    let bytes = value.as_bytes();
    let mut literal_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        if i > literal_start {
            f(Piece::Literal(&value[literal_start..i]));
        }
        i += 1;
        if let Some(d) = bytes.get(i).filter(|b| b.is_ascii_digit()) {
            f(Piece::Capture(d - b'0'));
            i += 1;
            literal_start = i;
            continue;
        }
        let bracket = bytes.get(i) == Some(&b'{');
        if bracket {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        let name = &value[start..i];
        if bracket {
            if bytes.get(i) != Some(&b'}') {
                return Err(TemplateError::MissingBracket(name.to_string()));
            }
            i += 1;
        }
        if name.is_empty() {
            return Err(TemplateError::InvalidName);
        }
        f(Piece::Var(name));
        literal_start = i;
    }
    if bytes.len() > literal_start {
        f(Piece::Literal(&value[literal_start..]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_variables_like_nginx() {
        assert_eq!(variables_in("a$b-${c}d$1").unwrap(), ["b", "c"]);
        assert_eq!(
            variables_in("${x").unwrap_err(),
            TemplateError::MissingBracket("x".into())
        );
        assert_eq!(variables_in("a$").unwrap_err(), TemplateError::InvalidName);
        assert!(is_builtin("http_upgrade"));
        assert!(is_builtin("proxy_add_x_forwarded_for"));
        assert!(!is_builtin("http_"));
        assert!(!is_builtin("connection_upgrade"));
    }
}
