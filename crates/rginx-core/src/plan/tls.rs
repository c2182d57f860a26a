//! What a request knows of TLS: the client connection's session
//! (`$ssl_*`, `$https`), its client certificate (`$ssl_client_*`), and
//! how an upstream TLS connection is named.

use std::borrow::Cow;

use super::Template;

/// A client connection's TLS session, as nginx's `$ssl_*` variables see
/// it (`ngx_http_ssl_variables`), fixed once the handshake is done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFacts {
    /// `$ssl_protocol`: `TLSv1.2`, `TLSv1.3`.
    pub protocol: &'static str,
    /// `$ssl_cipher`: the suite by OpenSSL's name
    /// (`ECDHE-RSA-AES128-GCM-SHA256`, `TLS_AES_256_GCM_SHA384`).
    pub cipher: &'static str,
    /// `$ssl_curve`: the key exchange group by OpenSSL's name (`X25519`,
    /// `prime256v1`).
    pub curve: &'static str,
    /// `$ssl_server_name`: the name the client sent (SNI), if any.
    pub server_name: Option<Box<str>>,
    /// `$ssl_session_reused`: the session was resumed.
    pub session_reused: bool,
    /// `$ssl_alpn_protocol`: the protocol agreed on with ALPN.
    pub alpn: Option<Box<str>>,
    /// The SNI name selected a server by its name (nginx's
    /// `hc->ssl_servername`: a request for another name is then checked,
    /// `ngx_http_set_virtual_server`).
    pub sni_matched: bool,
    /// The client's certificate, with what its verification found.
    pub client: Option<Box<ClientCertFacts>>,
    /// The suites the client offered, by their codes (`$ssl_ciphers`).
    pub client_suites: Box<[u16]>,
    /// The groups the client offered (`$ssl_curves`).
    pub client_groups: Box<[u16]>,
}

/// A client certificate as nginx's `$ssl_client_*` variables show it
/// (`ngx_ssl_get_*` in `ngx_event_openssl.c`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCertFacts {
    /// Why it failed verification (OpenSSL's code and words), if it did.
    pub error: Option<(u32, &'static str)>,
    /// `$ssl_client_s_dn` (RFC 2253).
    pub s_dn: String,
    /// `$ssl_client_i_dn`.
    pub i_dn: String,
    /// `$ssl_client_s_dn_legacy` (`/C=../CN=..`).
    pub s_dn_legacy: String,
    /// `$ssl_client_i_dn_legacy`.
    pub i_dn_legacy: String,
    /// `$ssl_client_serial`: hexadecimal, upper case.
    pub serial: String,
    /// `$ssl_client_fingerprint`: SHA-1 of the DER, lower-case hex.
    pub fingerprint: String,
    /// `$ssl_client_v_start`: `Dec  4 19:00:00 2026 GMT`.
    pub v_start: String,
    /// `$ssl_client_v_end`.
    pub v_end: String,
    /// The end of validity, in seconds since the epoch
    /// (`$ssl_client_v_remain`).
    pub not_after: i64,
    /// `$ssl_client_raw_cert`: the certificate in PEM.
    pub pem: String,
}

impl ClientCertFacts {
    /// `$ssl_client_verify`: `SUCCESS` or `FAILED:reason`.
    pub fn verify(&self) -> std::borrow::Cow<'static, str> {
        match self.error {
            None => "SUCCESS".into(),
            Some((_, why)) => format!("FAILED:{why}").into(),
        }
    }
}

/// An upstream connection's TLS, as `ngx_http_upstream_ssl_init_connection`
/// sets it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls<'a> {
    /// The `proxy_pass` directive's order in the configuration (the key
    /// of its TLS client configuration).
    pub proxy: u32,
    /// The server's name: sent as SNI with `proxy_ssl_server_name on`,
    /// and what `proxy_ssl_verify` checks the certificate against
    /// (`proxy_ssl_name`, `$proxy_host` by default, without a port).
    pub name: Cow<'a, str>,
}

/// What names an upstream TLS connection (`ngx_http_upstream_ssl_name`).
#[derive(Debug, Clone)]
pub(super) struct TlsNaming {
    /// The `proxy_pass` directive's order (the key of its TLS client
    /// configuration).
    pub(super) proxy: u32,
    /// `proxy_ssl_name` (`None`: `$proxy_host`).
    pub(super) name: Option<Template>,
}
