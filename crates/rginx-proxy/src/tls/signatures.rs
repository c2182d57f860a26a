//! The peer's signature over a handshake, checked with the key of its
//! certificate, also when webpki cannot parse the certificate: OpenSSL
//! takes X.509 v1 certificates (what `openssl req -x509` makes without
//! extensions), webpki does not. The certificate itself is not judged here
//! (`proxy_ssl_verify off`, or client certificates verified afterwards).

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::{DigitallySignedStruct, Error, SignatureScheme};

/// The schemes `verify` takes: the provider's.
pub fn schemes(provider: &CryptoProvider) -> Vec<SignatureScheme> {
    provider
        .signature_verification_algorithms
        .supported_schemes()
}

/// Checks `dss` over `message` with `cert`'s key, by `provider`'s
/// algorithms (`tls13`: the TLS 1.3 rules for the scheme).
pub fn verify(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    provider: &CryptoProvider,
    tls13: bool,
) -> Result<HandshakeSignatureValid, Error> {
    let algorithms = &provider.signature_verification_algorithms;
    let webpki = if tls13 {
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    } else {
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    };
    let unparsed = matches!(
        &webpki,
        Err(Error::InvalidCertificate(rustls::CertificateError::Other(
            _
        ))) | Err(Error::InvalidCertificate(
            rustls::CertificateError::BadEncoding
        ))
    );
    if !unparsed {
        return webpki;
    }
    let Some((_, key)) = super::x509::key_parts(cert.as_ref()) else {
        return webpki;
    };
    let candidates = algorithms
        .mapping
        .iter()
        .find(|(scheme, _)| *scheme == dss.scheme)
        .map_or(&[][..], |(_, algs)| *algs);
    let candidates = if tls13 {
        &candidates[..candidates.len().min(1)]
    } else {
        candidates
    };
    for alg in candidates {
        if alg.verify_signature(key, message, dss.signature()).is_ok() {
            return Ok(HandshakeSignatureValid::assertion());
        }
    }
    webpki
}
