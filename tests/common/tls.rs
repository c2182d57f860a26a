//! TLS test helpers: certificates made with `openssl req` when a test
//! starts, and the real clients asked (`curl`, `openssl s_client`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::TempDir;

/// A directory of certificates and keys, each `NAME.crt` and `NAME.key`.
pub struct Certs {
    dir: TempDir,
}

/// The certificates every TLS test has: `rsa` and `ec` for `example.com`
/// and `*.example.com`, `other` for `other.test`.
impl Certs {
    /// Makes them (RSA 2048 and ECDSA P-256, self-signed, valid 30 days).
    pub fn make() -> Certs {
        let certs = Certs {
            dir: TempDir::new("certs"),
        };
        let names = "subjectAltName=DNS:example.com,DNS:*.example.com";
        certs.add("rsa", &["-newkey", "rsa:2048"], "example.com", names, "30");
        certs.add(
            "ec",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "example.com",
            names,
            "30",
        );
        certs.add(
            "other",
            &["-newkey", "rsa:2048"],
            "other.test",
            "subjectAltName=DNS:other.test",
            "30",
        );
        certs
    }

    /// Makes `NAME.crt` and `NAME.key` for `cn` (`key` chooses the key).
    pub fn add(&self, name: &str, key: &[&str], cn: &str, ext: &str, days: &str) {
        let (subject, key_file, cert_file) = (
            format!("/CN={cn}"),
            format!("{name}.key"),
            format!("{name}.crt"),
        );
        let mut args = vec!["req", "-x509"];
        args.extend_from_slice(key);
        args.extend([
            "-nodes", "-days", days, "-subj", &subject, "-addext", ext, "-keyout", &key_file,
            "-out", &cert_file,
        ]);
        self.openssl(&args);
    }

    /// Runs `openssl ARGS` in the directory; it must succeed.
    pub fn openssl(&self, args: &[&str]) {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(self.dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run openssl");
        assert!(status.success(), "openssl {args:?}");
    }

    /// A file's full path.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.0.join(file)
    }

    /// `ssl_certificate` and `ssl_certificate_key` lines for `NAME`.
    pub fn lines(&self, name: &str) -> String {
        format!(
            "ssl_certificate {};\n        ssl_certificate_key {};",
            self.path(&format!("{name}.crt")).display(),
            self.path(&format!("{name}.key")).display()
        )
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }
}

/// `curl -sk` of `https://NAME:PORT/PATH` (NAME resolved to 127.0.0.1,
/// and sent as SNI unless it is an address), with `extra` options: the
/// body, or `curl failed (N)` for a handshake or transfer curl gave up
/// on.
pub fn curl(port: u16, name: &str, path: &str, extra: &[&str]) -> String {
    let output = Command::new("curl")
        .args(["-sk", "--max-time", "10", "--resolve"])
        .arg(format!("{name}:{port}:127.0.0.1"))
        .args(extra)
        .arg(format!("https://{name}:{port}{path}"))
        .output()
        .expect("run curl");
    if output.status.success() {
        String::from_utf8_lossy(&output.stdout).into_owned()
    } else {
        format!("curl failed ({})", output.status.code().unwrap_or(-1))
    }
}

/// `openssl s_client` to 127.0.0.1:PORT (SNI `name` if given) sending
/// `request`, with `extra` options: what it printed, stdout then stderr.
pub fn s_client(port: u16, name: Option<&str>, request: &str, extra: &[&str]) -> String {
    let mut command = Command::new("openssl");
    command
        .args(["s_client", "-ign_eof", "-connect"])
        .arg(format!("127.0.0.1:{port}"));
    match name {
        Some(name) => command.args(["-servername", name]),
        None => command.arg("-noservername"),
    };
    let mut child = command
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl s_client");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(request.as_bytes());
    }
    let output = child.wait_with_output().expect("s_client output");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// What a handshake agreed on, from `s_client`'s output: the session
/// line (`New, TLSv1.3, Cipher is ...` or `Reused, ...`), the server's key
/// size and its certificate's subject; `no handshake` when it failed.
pub fn agreed(output: &str) -> String {
    let wanted = |prefix: &str| {
        output
            .lines()
            .find(|l| l.starts_with(prefix))
            .map(str::trim)
            .unwrap_or("")
            .to_string()
    };
    let session = output
        .lines()
        .find(|l| l.starts_with("New, ") || l.starts_with("Reused, "))
        .unwrap_or("");
    if session.is_empty() || session.contains("(NONE)") {
        return "no handshake".to_string();
    }
    format!(
        "{session} | {} | {}",
        wanted("Server public key is"),
        wanted("subject=")
    )
}

/// A rustls client that takes any certificate (the tests' are
/// self-signed): what `curl -k` is to curl.
pub fn trusting_client() -> std::sync::Arc<rustls::ClientConfig> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(TakesAny(provider)))
        .with_no_client_auth();
    std::sync::Arc::new(config)
}

/// Accepts every certificate, checking only that signatures verify.
#[derive(Debug)]
struct TakesAny(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for TakesAny {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl Certs {
    /// Makes an authority `ca` and, signed by it, a client certificate
    /// `client` for `client.example` (X.509 v3, for client
    /// authentication) and `clientv1`, the same as X.509 v1.
    pub fn add_client_chain(&self) {
        let run = |args: &[&str]| self.openssl(args);
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/C=US/O=Test CA/CN=Test Root",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ]);
        run(&[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/C=US/O=Clients, Inc./CN=client.example",
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
        ]);
        std::fs::write(
            self.path("client.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        // the authority signs the request: with the extensions (v3), and
        // without (X.509 v1, as most client certificate recipes make it)
        let sign = |serial: &str, extensions: &[&str], out: &str| {
            let mut args = vec![
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-set_serial",
                serial,
                "-days",
                "30",
                "-out",
                out,
            ];
            args.extend_from_slice(extensions);
            run(&args);
        };
        sign("0x0a1b2c", &["-extfile", "client.ext"], "client.crt");
        sign("7", &[], "clientv1.crt");
        std::fs::copy(self.path("client.key"), self.path("clientv1.key")).unwrap();
    }
}

impl Certs {
    /// Makes `v1.crt` and `v1.key`: an X.509 v1 certificate (no
    /// extensions), which OpenSSL takes and webpki does not parse.
    pub fn add_v1(&self) {
        for args in [
            &[
                "req",
                "-new",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=v1.test",
                "-keyout",
                "v1.key",
                "-out",
                "v1.csr",
            ][..],
            &[
                "x509", "-req", "-in", "v1.csr", "-signkey", "v1.key", "-days", "30", "-out",
                "v1.crt",
            ][..],
        ] {
            self.openssl(args);
        }
    }
}
