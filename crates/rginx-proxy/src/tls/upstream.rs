//! TLS to upstreams (`proxy_pass https://`), as nginx's proxy module sets
//! it up for each location (`ngx_http_proxy_set_ssl`): one rustls client
//! configuration per `proxy_pass`, with nginx 1.22's defaults (no SNI, no
//! verification, TLS 1.2, sessions reused).

use std::collections::HashMap;
use std::sync::Arc;

use rginx_core::model::{LocationConf, Model, ProxyTarget, Settings, Value};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::{certs, policy, Findings};

/// nginx's `proxy_ssl_ciphers` default.
const DEFAULT_CIPHERS: &str = "DEFAULT";

/// The client configurations, by the order of their `proxy_pass`.
pub type UpstreamConfigs = HashMap<u32, Arc<ClientConfig>>;

/// A configuration for every `proxy_pass https://` of the model.
pub fn configs(model: &Model, findings: &mut Findings) -> UpstreamConfigs {
    let mut out = HashMap::new();
    let Some(http) = &model.http else {
        return out;
    };
    fn walk(locations: &[LocationConf], out: &mut UpstreamConfigs, findings: &mut Findings) {
        for loc in locations {
            // a URL with variables may turn out https:// at any request
            let tls = |pp: &&rginx_core::model::ProxyPass| {
                pp.scheme == "https" || matches!(pp.target, ProxyTarget::Variable)
            };
            if let Some(pp) = loc.proxy_pass.as_ref().filter(tls) {
                if matches!(pp.target, ProxyTarget::Unix(_)) {
                    findings.error(
                        "TLS to a unix socket upstream is not supported by rginx".to_string(),
                        pp.span,
                    );
                } else if let Some(config) = config(&loc.settings, findings) {
                    out.insert(pp.seq, Arc::new(config));
                }
            }
            walk(&loc.nested, out, findings);
        }
    }
    for server in &http.servers {
        walk(&server.locations, &mut out, findings);
    }
    out
}

/// One location's configuration.
fn config(settings: &Settings, findings: &mut Findings) -> Option<ClientConfig> {
    super::password_file(settings, "proxy_ssl_password_file", findings)?;
    let versions = policy::versions(settings, "proxy_ssl_protocols", findings)?;
    let tls13 = versions.contains(&&rustls::version::TLS13);
    let mut provider = rustls::crypto::ring::default_provider();
    let mut suites: Vec<rustls::SupportedCipherSuite> = provider
        .cipher_suites
        .iter()
        .filter(|s| tls13 && s.version() == &rustls::version::TLS13)
        .copied()
        .collect();
    if versions.contains(&&rustls::version::TLS12) {
        suites.extend(policy::tls12_suites(
            settings,
            ("proxy_ssl_ciphers", DEFAULT_CIPHERS),
            findings,
            tls13,
        )?);
    }
    provider.cipher_suites = suites;
    let provider = Arc::new(provider);
    let builder = match ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
    {
        Ok(builder) => builder,
        Err(e) => {
            let span = settings
                .get("proxy_ssl_protocols")
                .or_else(|| settings.get("proxy_ssl_ciphers"))
                .map(|s| s.span)
                .unwrap_or_default();
            findings.error(format!("cannot set up TLS to upstreams: {e}"), span);
            return None;
        }
    };
    let verifier: Arc<dyn ServerCertVerifier> = if settings.flag("proxy_ssl_verify", false) {
        let Some(Value::Files(trusted)) = settings
            .get("proxy_ssl_trusted_certificate")
            .map(|s| &s.value)
        else {
            let span = settings
                .get("proxy_ssl_verify")
                .map(|s| s.span)
                .unwrap_or_default();
            findings.error(
                "no proxy_ssl_trusted_certificate for proxy_ssl_verify".to_string(),
                span,
            );
            return None;
        };
        let file = &trusted[0];
        let mut roots = RootCertStore::empty();
        let chain = match certs::load_chain(&file.path) {
            Ok(chain) => chain,
            Err(e) => {
                findings.error(e, file.span);
                return None;
            }
        };
        let (added, _) = roots.add_parsable_certificates(chain);
        if added == 0 {
            findings.error(
                format!(
                    "SSL_CTX_load_verify_locations(\"{}\") failed (no certificate rustls can use as a trust anchor)",
                    file.path
                ),
                file.span,
            );
            return None;
        }
        match WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()
        {
            Ok(v) => v,
            Err(e) => {
                findings.error(format!("cannot verify upstreams: {e}"), file.span);
                return None;
            }
        }
    } else {
        Arc::new(TakesAny(provider.clone()))
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match client_certificate(settings, &provider, findings)? {
        Some(certified) => builder.with_client_cert_resolver(Arc::new(ClientCert(certified))),
        None => builder.with_no_client_auth(),
    };
    // nginx sends no SNI unless asked (`proxy_ssl_server_name off`)
    config.enable_sni = settings.flag("proxy_ssl_server_name", false);
    if !settings.flag("proxy_ssl_session_reuse", true) {
        config.resumption = Resumption::disabled();
    }
    Some(config)
}

/// `proxy_ssl_certificate` and its key, loaded as the servers' are (an
/// X.509 v1 certificate too): `Some(None)` without one, `None` on an
/// error (in `findings`).
fn client_certificate(
    settings: &Settings,
    provider: &CryptoProvider,
    findings: &mut Findings,
) -> Option<Option<Arc<rustls::sign::CertifiedKey>>> {
    let file = |name: &str| match settings.get(name).map(|s| &s.value) {
        Some(Value::Files(files)) => files.first().cloned(),
        _ => None,
    };
    let Some(cert) = file("proxy_ssl_certificate") else {
        return Some(None);
    };
    let Some(key) = file("proxy_ssl_certificate_key") else {
        findings.error(
            format!(
                "no \"proxy_ssl_certificate_key\" is defined for certificate \"{}\"",
                cert.path
            ),
            cert.span,
        );
        return None;
    };
    match certs::load(&cert.path, &key.path, provider) {
        Ok(certified) => Some(Some(Arc::new(certified))),
        Err(e) => {
            let span = super::failure_span(&e, &cert, &key);
            findings.error(e, span);
            None
        }
    }
}

/// The one client certificate of a location, for every upstream that asks.
#[derive(Debug)]
struct ClientCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _: &[&[u8]],
        _: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The name a connection is made for: an address, or a DNS name (core
/// hands it over without a port or brackets).
pub fn server_name(name: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(name.to_string())
        .map_err(|_| format!("invalid server name \"{name}\" for TLS to the upstream"))
}

/// `proxy_ssl_verify off`, nginx's default: any certificate is taken;
/// its signature over the handshake is still checked.
#[derive(Debug)]
struct TakesAny(Arc<CryptoProvider>);

impl ServerCertVerifier for TakesAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        super::signatures::verify(message, cert, dss, &self.0, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        super::signatures::verify(message, cert, dss, &self.0, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        super::signatures::schemes(&self.0)
    }
}
