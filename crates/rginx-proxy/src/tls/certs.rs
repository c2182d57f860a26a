//! A server's certificates: each `ssl_certificate` with the
//! `ssl_certificate_key` in the same place, loaded as nginx loads them
//! (`ngx_ssl_certificate`: the first PEM certificate is the server's, the
//! rest its chain), and the one a client gets chosen by what it can
//! verify (an RSA and an ECDSA certificate side by side).

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{SignatureAlgorithm, SignatureScheme};

use crate::process::os_error;

/// The certificates of a server, in the configuration's order.
#[derive(Debug)]
pub struct Certificates {
    keys: Vec<Arc<CertifiedKey>>,
}

impl Certificates {
    /// The certificates, each with its key.
    pub fn new(keys: Vec<Arc<CertifiedKey>>) -> Certificates {
        Certificates { keys }
    }
}

/// How one server's connections choose among its certificates: by the
/// TLS 1.2 suite OpenSSL would choose first (the client's order, or the
/// server's with `ssl_prefer_server_ciphers on`), each suite needing a
/// certificate of its kind; in TLS 1.3, by the client's signature
/// schemes.
#[derive(Debug)]
pub struct Chooser {
    /// The certificates.
    pub certs: Arc<Certificates>,
    /// The TLS 1.2 suites offered, in order, each with whether it needs
    /// an ECDSA certificate.
    pub tls12: Vec<(rustls::CipherSuite, bool)>,
    /// `ssl_prefer_server_ciphers`.
    pub prefer_server: bool,
    /// TLS 1.3 is offered.
    pub tls13: bool,
}

impl Chooser {
    /// The first certificate of a kind that signs with a scheme the
    /// client offers.
    fn of_kind(&self, ecdsa: bool, offered: &[SignatureScheme]) -> Option<&Arc<CertifiedKey>> {
        self.certs.keys.iter().find(|k| {
            (k.key.algorithm() == SignatureAlgorithm::ECDSA) == ecdsa
                && k.key.choose_scheme(offered).is_some()
        })
    }
}

impl ResolvesServerCert for Chooser {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let offered = hello.signature_schemes();
        let client_suites = hello.cipher_suites();
        let tls13 = self.tls13 && client_suites.iter().any(|s| u16::from(*s) >> 8 == 0x13);
        if !tls13 && self.certs.keys.len() > 1 {
            let ours = |suite: &rustls::CipherSuite| self.tls12.iter().find(|(s, _)| s == suite);
            let usable =
                |(_, ecdsa): &&(rustls::CipherSuite, bool)| self.of_kind(*ecdsa, offered).is_some();
            let chosen = if self.prefer_server {
                self.tls12
                    .iter()
                    .filter(|(s, _)| client_suites.contains(s))
                    .find(usable)
            } else {
                client_suites.iter().filter_map(ours).find(usable)
            };
            if let Some((_, ecdsa)) = chosen {
                return self.of_kind(*ecdsa, offered).cloned();
            }
        }
        // the first certificate the client can verify, in its order of
        // signature schemes; the first one when it can verify none
        offered
            .iter()
            .find_map(|scheme| {
                self.certs
                    .keys
                    .iter()
                    .find(|k| k.key.choose_scheme(std::slice::from_ref(scheme)).is_some())
            })
            .or_else(|| self.certs.keys.first())
            .cloned()
    }
}

/// Loads a certificate chain and its key; nginx's words for what fails
/// (the OpenSSL function nginx names, then why).
pub fn load(
    cert_path: &str,
    key_path: &str,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, String> {
    let chain = load_chain(cert_path)?;
    let key = load_key(key_path)?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("cannot load certificate key \"{key_path}\": {e}"))?;
    // the key must be the certificate's (SSL_CTX_use_PrivateKey checks
    // it); compared here on the DER, as rustls' own check cannot read
    // the X.509 v1 certificates OpenSSL takes
    let cert_key = super::x509::key_parts(&chain[0]).map(|(_, bits)| bits);
    let spki = signing.public_key();
    let key_key = spki
        .as_ref()
        .and_then(|k| super::x509::public_key(k.as_ref()));
    if let (Some(a), Some(b)) = (cert_key, key_key) {
        if a != b {
            return Err(format!(
                "SSL_CTX_use_PrivateKey(\"{key_path}\") failed (key values mismatch)"
            ));
        }
    }
    drop(spki);
    Ok(CertifiedKey::new(chain, signing))
}

/// The PEM certificates in a file, the server's first.
pub(super) fn load_chain(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = std::fs::read(path).map_err(|e| {
        format!(
            "cannot load certificate \"{path}\": BIO_new_file() failed ({})",
            os_error(&e)
        )
    })?;
    let mut chain = Vec::new();
    for item in CertificateDer::pem_slice_iter(&text) {
        let der = item.map_err(|e| format!("cannot load certificate \"{path}\": {e}"))?;
        chain.push(der);
    }
    if chain.is_empty() {
        return Err(format!(
            "cannot load certificate \"{path}\": PEM_read_bio_X509_AUX() failed (no certificate in PEM format in the file)"
        ));
    }
    Ok(chain)
}

/// The PEM private key in a file (PKCS#8, PKCS#1 or SEC1).
pub(super) fn load_key(path: &str) -> Result<PrivateKeyDer<'static>, String> {
    let text = std::fs::read(path).map_err(|e| {
        format!(
            "cannot load certificate key \"{path}\": BIO_new_file() failed ({})",
            os_error(&e)
        )
    })?;
    if text.windows(b"ENCRYPTED".len()).any(|w| w == b"ENCRYPTED") {
        return Err(format!(
            "cannot load certificate key \"{path}\": the key is encrypted, and rginx cannot decrypt keys (ssl_password_file is read but not used); decrypt it with `openssl pkey -in {path} -out KEY`"
        ));
    }
    PrivateKeyDer::from_pem_slice(&text).map_err(|e| {
        let why = match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no private key in PEM format in the file".to_string()
            }
            other => other.to_string(),
        };
        format!("cannot load certificate key \"{path}\": PEM_read_bio_PrivateKey() failed ({why})")
    })
}
