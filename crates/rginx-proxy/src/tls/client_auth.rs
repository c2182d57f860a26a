//! Client certificates (`ssl_verify_client`), as nginx asks for them: the
//! handshake asks for a certificate, naming the authorities of
//! `ssl_client_certificate`, and takes whatever comes
//! (`ngx_http_ssl_verify_callback` accepts all); what verification finds
//! is the request's to act on (nginx's 400 for 495 and 496) and its
//! `$ssl_client_verify` to show.

use std::sync::Arc;

use rginx_core::model::{Settings, Value};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore};

use super::{certs, Findings};

/// A server's client certificate checks.
#[derive(Debug)]
pub struct ClientAuth {
    /// What the handshake runs: asks, names the authorities, takes any.
    pub asking: Arc<Asking>,
    /// The verification done once the handshake is over (`None`:
    /// `optional_no_ca` without authorities: nothing to verify against).
    verifier: Option<Arc<dyn ClientCertVerifier>>,
    /// `ssl_verify_depth`.
    depth: usize,
    /// The trusted certificates themselves (a self-signed client
    /// certificate may be one of them).
    anchors: Vec<CertificateDer<'static>>,
}

/// Reads a server's `ssl_verify_client` and what goes with it; `None`
/// when it is off, or on an error (in `findings`).
pub fn read(
    settings: &Settings,
    provider: &Arc<CryptoProvider>,
    findings: &mut Findings,
) -> Option<Option<Arc<ClientAuth>>> {
    let mode = match settings.get("ssl_verify_client").map(|s| &s.value) {
        Some(Value::Choice(mode)) if *mode != "off" => *mode,
        _ => return Some(None),
    };
    let span = settings
        .get("ssl_verify_client")
        .map(|s| s.span)
        .unwrap_or_default();
    let file = |name: &str| match settings.get(name).map(|s| &s.value) {
        Some(Value::Files(files)) => files.first().cloned(),
        _ => None,
    };
    let client_certificate = file("ssl_client_certificate");
    if client_certificate.is_none() && mode != "optional_no_ca" {
        findings.error(
            "no ssl_client_certificate for ssl_verify_client".to_string(),
            span,
        );
        return None;
    }
    let mut named = RootCertStore::empty();
    let mut anchors = Vec::new();
    let mut roots = RootCertStore::empty();
    for (file, name) in [
        (client_certificate, true),
        (file("ssl_trusted_certificate"), false),
    ] {
        let Some(file) = file else { continue };
        let chain = match certs::load_chain(&file.path) {
            Ok(chain) => chain,
            Err(e) => {
                findings.error(e, file.span);
                return None;
            }
        };
        for cert in chain {
            anchors.push(cert.clone());
            if name {
                let _ = named.add(cert.clone());
            }
            let _ = roots.add(cert);
        }
    }
    let mut crls = Vec::new();
    if let Some(file) = file("ssl_crl") {
        let text = match std::fs::read(&file.path) {
            Ok(text) => text,
            Err(e) => {
                findings.error(
                    format!(
                        "X509_LOOKUP_load_file(\"{}\") failed ({})",
                        file.path,
                        crate::process::os_error(&e)
                    ),
                    file.span,
                );
                return None;
            }
        };
        use rustls::pki_types::pem::PemObject;
        for crl in CertificateRevocationListDer::pem_slice_iter(&text) {
            match crl {
                Ok(crl) => crls.push(crl),
                Err(e) => {
                    findings.error(
                        format!("X509_LOOKUP_load_file(\"{}\") failed ({e})", file.path),
                        file.span,
                    );
                    return None;
                }
            }
        }
    }
    let verifier = if roots.is_empty() {
        None
    } else {
        match WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .with_crls(crls)
            .build()
        {
            Ok(v) => Some(v),
            Err(e) => {
                findings.error(format!("cannot verify client certificates: {e}"), span);
                return None;
            }
        }
    };
    let depth = match settings.get("ssl_verify_depth").map(|s| &s.value) {
        Some(Value::Number(n)) => usize::try_from(*n).unwrap_or(usize::MAX),
        _ => 1,
    };
    Some(Some(Arc::new(ClientAuth {
        asking: Arc::new(Asking {
            hints: named.subjects(),
            provider: provider.clone(),
        }),
        verifier,
        depth,
        anchors,
    })))
}

impl ClientAuth {
    /// What verifying a client's certificates finds: `None` if they pass,
    /// else OpenSSL's code and words for why not.
    pub fn verify(&self, chain: &[CertificateDer<'_>]) -> Option<(u32, &'static str)> {
        let (leaf, intermediates) = chain.split_first()?;
        // a certificate that signed itself is trusted only as it is (which
        // webpki does not do): OpenSSL's error before any other
        if intermediates.is_empty() && super::x509::self_issued(leaf) {
            if !self.anchors.iter().any(|a| a.as_ref() == leaf.as_ref()) {
                return Some((18, "self-signed certificate"));
            }
            let now = UnixTime::now().as_secs() as i64;
            return match super::x509::validity(leaf) {
                Some((start, _)) if now < start => Some((9, "certificate is not yet valid")),
                Some((_, end)) if now > end => Some((10, "certificate has expired")),
                _ => None,
            };
        }
        let Some(verifier) = &self.verifier else {
            // nothing to verify against: the issuer is unknown
            return Some(unknown_issuer(leaf, intermediates));
        };
        // OpenSSL counts the certificates above the client's, the
        // authority included
        if intermediates.len() + 1 > self.depth.max(1) && !intermediates.is_empty() {
            return Some((22, "certificate chain too long"));
        }
        match verifier.verify_client_cert(leaf, intermediates, UnixTime::now()) {
            Ok(_) => None,
            // an X.509 v1 certificate, which webpki does not parse
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(_)))
                if intermediates.is_empty() =>
            {
                self.verify_v1(leaf)
            }
            Err(rustls::Error::InvalidCertificate(e)) => Some(match e {
                CertificateError::UnknownIssuer => unknown_issuer(leaf, intermediates),
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    (10, "certificate has expired")
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    (9, "certificate is not yet valid")
                }
                CertificateError::Revoked => (23, "certificate revoked"),
                CertificateError::UnknownRevocationStatus => (3, "unable to get certificate CRL"),
                CertificateError::ExpiredRevocationList
                | CertificateError::ExpiredRevocationListContext { .. } => (12, "CRL has expired"),
                CertificateError::BadSignature => (7, "certificate signature failure"),
                CertificateError::InvalidPurpose
                | CertificateError::InvalidPurposeContext { .. } => {
                    (26, "unsuitable certificate purpose")
                }
                _ => (1, "unspecified certificate verification error"),
            }),
            Err(_) => Some((1, "unspecified certificate verification error")),
        }
    }
}

impl ClientAuth {
    /// Verifies a certificate webpki cannot parse (X.509 v1, what
    /// `openssl x509 -req -CA` makes without `-extfile`) as OpenSSL does
    /// for a chain of one: an authority whose subject is its issuer, the
    /// authority's signature, the dates. (Its revocation is not looked
    /// up: a CRL with a v1 certificate is for OpenSSL.)
    fn verify_v1(&self, leaf: &CertificateDer<'_>) -> Option<(u32, &'static str)> {
        use super::x509;
        let unknown = (20, "unable to get local issuer certificate");
        let (issuer, _) = x509::names(leaf)?;
        let Some(anchor) = self
            .anchors
            .iter()
            .find(|a| x509::names(a).is_some_and(|(_, subject)| subject == issuer))
        else {
            return Some(unknown);
        };
        let (Some((tbs, algorithm, signature)), Some((key_algorithm, key))) =
            (x509::signed_parts(leaf), x509::key_parts(anchor))
        else {
            return Some((7, "certificate signature failure"));
        };
        let signed = self
            .asking
            .provider
            .signature_verification_algorithms
            .all
            .iter()
            .filter(|alg| {
                alg.signature_alg_id().as_ref() == algorithm
                    && alg.public_key_alg_id().as_ref() == key_algorithm
            })
            .any(|alg| alg.verify_signature(key, tbs, signature).is_ok());
        if !signed {
            return Some((7, "certificate signature failure"));
        }
        let now = UnixTime::now().as_secs() as i64;
        match x509::validity(leaf) {
            Some((start, _)) if now < start => Some((9, "certificate is not yet valid")),
            Some((_, end)) if now > end => Some((10, "certificate has expired")),
            Some(_) => None,
            None => Some((13, "format error in certificate's notBefore field")),
        }
    }
}

/// OpenSSL's error for a certificate whose issuer is not trusted: its own
/// issuer when it signed itself.
fn unknown_issuer(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> (u32, &'static str) {
    if intermediates.is_empty() && super::x509::self_issued(leaf) {
        (18, "self-signed certificate")
    } else {
        (20, "unable to get local issuer certificate")
    }
}

/// The handshake's side: a certificate is asked for (not required) and
/// taken once its signature over the handshake holds.
#[derive(Debug)]
pub struct Asking {
    hints: Vec<DistinguishedName>,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for Asking {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        super::signatures::verify(message, cert, dss, &self.provider, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        super::signatures::verify(message, cert, dss, &self.provider, true)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        super::signatures::schemes(&self.provider)
    }
}
