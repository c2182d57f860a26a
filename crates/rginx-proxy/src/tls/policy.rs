//! A server's TLS policy: its `ssl_*` settings read as nginx reads them
//! (`ngx_http_ssl_merge_srv_conf`, nginx 1.22's defaults) and turned into
//! what rustls offers, with a warning for what rustls does not have and an
//! error naming the line for a setting that leaves nothing to offer.

use std::time::Duration;

use rginx_core::model::{Settings, Value};
use rustls::crypto::ring::{cipher_suite as suite, kx_group};
use rustls::crypto::SupportedKxGroup;
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

use super::ciphers;
use super::Findings;

/// nginx 1.22's `ssl_ciphers` default (`NGX_DEFAULT_CIPHERS`).
const DEFAULT_CIPHERS: &str = "HIGH:!aNULL:!MD5";
/// nginx's `ssl_ecdh_curve` default (`NGX_DEFAULT_ECDH_CURVE`).
const DEFAULT_CURVE: &str = "auto";
/// nginx's `ssl_buffer_size` default (`NGX_SSL_BUFSIZE`).
const DEFAULT_BUFFER: u64 = 16384;

/// What one server's settings ask of TLS.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The protocol versions offered (TLS 1.3 first).
    pub versions: Vec<&'static SupportedProtocolVersion>,
    /// The suites offered: TLS 1.3's (which `ssl_ciphers` does not
    /// choose, in OpenSSL's order), then TLS 1.2's in the string's order.
    pub suites: Vec<SupportedCipherSuite>,
    /// The key exchange groups, in order.
    pub groups: Vec<&'static dyn SupportedKxGroup>,
    /// `ssl_prefer_server_ciphers`.
    pub prefer_server: bool,
    /// `ssl_session_cache`.
    pub session_cache: SessionCache,
    /// `ssl_session_timeout`.
    pub session_timeout: Duration,
    /// `ssl_session_tickets`.
    pub tickets: bool,
    /// `ssl_buffer_size`.
    pub buffer_size: usize,
    /// The contents of the `ssl_session_ticket_key` files (none: a key
    /// made at load).
    pub ticket_keys: Vec<Vec<u8>>,
}

/// Reads a server's policy; what it cannot offer goes to `findings`
/// (`None`: an error there).
pub fn read(settings: &Settings, findings: &mut Findings) -> Option<Policy> {
    let versions = versions(settings, "ssl_protocols", findings)?;
    let tls12 = versions.contains(&&rustls::version::TLS12);
    let tls13 = versions.contains(&&rustls::version::TLS13);
    let mut suites = Vec::new();
    if tls13 {
        // OpenSSL's TLS 1.3 order (`TLS_DEFAULT_CIPHERSUITES`)
        suites.extend([
            suite::TLS13_AES_256_GCM_SHA384,
            suite::TLS13_CHACHA20_POLY1305_SHA256,
            suite::TLS13_AES_128_GCM_SHA256,
        ]);
    }
    if tls12 {
        suites.extend(tls12_suites(
            settings,
            ("ssl_ciphers", DEFAULT_CIPHERS),
            findings,
            tls13,
        )?);
    }
    if suites.is_empty() {
        // TLS 1.2 without a suite, and no TLS 1.3 (an error is out)
        return None;
    }
    Some(Policy {
        versions,
        suites,
        groups: groups(settings, findings)?,
        prefer_server: settings.flag("ssl_prefer_server_ciphers", false),
        session_cache: match settings.get("ssl_session_cache").map(|s| &s.value) {
            Some(Value::Number(n)) => SessionCache::Keep(usize::try_from(*n).unwrap_or(usize::MAX)),
            Some(Value::Choice("off")) => SessionCache::Off,
            // nginx's default
            _ => SessionCache::None,
        },
        session_timeout: settings.time("ssl_session_timeout", Duration::from_secs(300)),
        tickets: settings.flag("ssl_session_tickets", true),
        buffer_size: usize::try_from(settings.size("ssl_buffer_size", DEFAULT_BUFFER))
            .unwrap_or(usize::MAX),
        ticket_keys: ticket_keys(settings, findings)?,
    })
}

/// `ssl_session_cache` (`ngx_ssl_session_cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCache {
    /// `off`: clients are told sessions cannot be resumed by ID.
    Off,
    /// `none`, the default: clients get a session ID (or a TLS 1.3
    /// ticket naming one), but nothing is kept to resume it with.
    None,
    /// Up to this many sessions are kept.
    Keep(usize),
}

/// `ssl_buffer_size` as rustls' largest record (its size counts the
/// record's 5-byte header; rustls takes 32 to 16389).
pub fn max_fragment_size(buffer_size: u64) -> Option<usize> {
    match usize::try_from(buffer_size)
        .unwrap_or(usize::MAX)
        .saturating_add(5)
    {
        n if n >= 16389 => None,
        n => Some(n.max(32)),
    }
}

/// `ssl_session_ticket_key` files, read as `ngx_ssl_session_ticket_keys`
/// reads them (48 or 80 bytes each).
fn ticket_keys(settings: &Settings, findings: &mut Findings) -> Option<Vec<Vec<u8>>> {
    let files = match settings.get("ssl_session_ticket_key").map(|s| &s.value) {
        Some(Value::Files(files)) => files.as_slice(),
        _ => &[],
    };
    let mut keys = Vec::with_capacity(files.len());
    for file in files {
        let bytes = super::read_file(file, findings)?;
        if bytes.len() != 48 && bytes.len() != 80 {
            findings.error(
                format!("\"{}\" must be 48 or 80 bytes", file.path),
                file.span,
            );
            return None;
        }
        keys.push(bytes);
    }
    Some(keys)
}

/// `ssl_protocols` or `proxy_ssl_protocols`, by `directive` (nginx 1.22's
/// default: `TLSv1 TLSv1.1 TLSv1.2`).
pub fn versions(
    settings: &Settings,
    directive: &str,
    findings: &mut Findings,
) -> Option<Vec<&'static SupportedProtocolVersion>> {
    let Some(setting) = settings.get(directive) else {
        return Some(vec![&rustls::version::TLS12]);
    };
    let Value::Words(words) = &setting.value else {
        return Some(vec![&rustls::version::TLS12]);
    };
    let has = |name: &str| words.iter().any(|w| w == name);
    let old: Vec<&str> = ["SSLv2", "SSLv3", "TLSv1", "TLSv1.1"]
        .into_iter()
        .filter(|p| has(p))
        .collect();
    let mut versions = Vec::new();
    if has("TLSv1.3") {
        versions.push(&rustls::version::TLS13);
    }
    if has("TLSv1.2") {
        versions.push(&rustls::version::TLS12);
    }
    if versions.is_empty() {
        findings.error(
            format!(
                "\"{directive} {}\" offers neither TLSv1.2 nor TLSv1.3, the protocols rustls implements",
                words.join(" ")
            ),
            setting.span,
        );
        return None;
    }
    if !old.is_empty() {
        findings.warning(
            format!(
                "{} in \"{directive}\" not offered: rustls implements TLSv1.2 and TLSv1.3 only (the older protocols are deprecated by RFC 8996 and refused by current browsers)",
                old.join(", ")
            ),
            setting.span,
        );
    }
    Some(versions)
}

/// The TLS 1.2 suites a cipher string (`ssl_ciphers` or
/// `proxy_ssl_ciphers`, with its default) selects.
pub fn tls12_suites(
    settings: &Settings,
    (directive, default): (&str, &str),
    findings: &mut Findings,
    tls13: bool,
) -> Option<Vec<SupportedCipherSuite>> {
    let setting = settings.get(directive);
    let text = settings.text(directive).unwrap_or(default);
    let span = setting.map(|s| s.span).unwrap_or_default();
    let selected = match ciphers::select(text) {
        Ok(selected) => selected,
        Err(ciphers::CipherError::Syntax(rule)) => {
            findings.error(
                format!("SSL_CTX_set_cipher_list(\"{text}\") failed (invalid rule \"{rule}\")"),
                span,
            );
            return None;
        }
    };
    if selected.is_empty() && !tls13 {
        findings.error(
            format!(
                "\"{directive} {text}\" selects none of the TLS 1.2 suites rustls has (ECDHE with AES-GCM or ChaCha20-Poly1305)"
            ),
            span,
        );
        return None;
    }
    Some(
        selected
            .iter()
            .filter_map(|s| rustls_suite(s.name))
            .collect(),
    )
}

/// rustls' suite of an OpenSSL name.
fn rustls_suite(name: &str) -> Option<SupportedCipherSuite> {
    Some(match name {
        "ECDHE-ECDSA-AES256-GCM-SHA384" => suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-RSA-AES256-GCM-SHA384" => suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-ECDSA-CHACHA20-POLY1305" => suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        "ECDHE-RSA-CHACHA20-POLY1305" => suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        "ECDHE-ECDSA-AES128-GCM-SHA256" => suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-RSA-AES128-GCM-SHA256" => suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        _ => return None,
    })
}

/// OpenSSL's name of a suite rustls negotiated (`$ssl_cipher`).
pub fn openssl_name(suite: rustls::CipherSuite) -> &'static str {
    use rustls::CipherSuite as C;
    match suite {
        C::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        C::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        C::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-ECDSA-CHACHA20-POLY1305",
        C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        _ => "",
    }
}

/// OpenSSL's name of a key exchange group (`$ssl_curve`).
pub fn group_name(group: rustls::NamedGroup) -> &'static str {
    match group {
        rustls::NamedGroup::X25519 => "X25519",
        rustls::NamedGroup::secp256r1 => "prime256v1",
        rustls::NamedGroup::secp384r1 => "secp384r1",
        _ => "",
    }
}

/// `ssl_ecdh_curve`: `auto` or a list of OpenSSL's names.
fn groups(
    settings: &Settings,
    findings: &mut Findings,
) -> Option<Vec<&'static dyn SupportedKxGroup>> {
    let text = settings.text("ssl_ecdh_curve").unwrap_or(DEFAULT_CURVE);
    let span = settings
        .get("ssl_ecdh_curve")
        .map(|s| s.span)
        .unwrap_or_default();
    if text.eq_ignore_ascii_case("auto") {
        // OpenSSL's default order
        return Some(vec![
            kx_group::X25519,
            kx_group::SECP256R1,
            kx_group::SECP384R1,
        ]);
    }
    let mut groups: Vec<&'static dyn SupportedKxGroup> = Vec::new();
    let mut missing = Vec::new();
    for name in text.split(':') {
        let group = match name.to_ascii_lowercase().as_str() {
            "x25519" => kx_group::X25519,
            "prime256v1" | "secp256r1" | "p-256" => kx_group::SECP256R1,
            "secp384r1" | "p-384" => kx_group::SECP384R1,
            "secp521r1" | "p-521" | "x448" | "ffdhe2048" | "ffdhe3072" | "ffdhe4096"
            | "ffdhe6144" | "ffdhe8192" => {
                missing.push(name);
                continue;
            }
            _ => {
                findings.error(
                    format!(
                        "SSL_CTX_set1_curves_list(\"{text}\") failed (unknown group \"{name}\")"
                    ),
                    span,
                );
                return None;
            }
        };
        if !groups.iter().any(|g| g.name() == group.name()) {
            groups.push(group);
        }
    }
    if groups.is_empty() {
        findings.error(
            format!(
                "\"ssl_ecdh_curve {text}\" names none of the groups rustls has (X25519, prime256v1, secp384r1)"
            ),
            span,
        );
        return None;
    }
    if !missing.is_empty() {
        findings.warning(
            format!(
                "{} in \"ssl_ecdh_curve\" not offered: rustls has X25519, prime256v1 and secp384r1",
                missing.join(", ")
            ),
            span,
        );
    }
    Some(groups)
}
