//! A TLS connection's start, as `ngx_http_ssl_handshake` has it: the
//! first byte says whether the client speaks TLS at all (a plain HTTP
//! request gets nginx's 400 later, once its head is read); the hello's
//! server name picks the server whose certificate and protocols the
//! handshake uses; all of it within `client_header_timeout` of the
//! accept.

use std::io;
use std::sync::Arc;

use rginx_core::plan::TlsFacts;
use rustls::server::Acceptor;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::StartHandshake;

use super::stream::TlsConn;
use super::Choice;

/// How a connection to a TLS socket starts.
pub enum Start {
    /// The handshake is done (boxed: it becomes the connection's
    /// [`crate::transport::Stream`]).
    Tls(Box<TlsConn>),
    /// The client sent something that is not TLS: HTTP, presumably.
    Plain(TcpStream),
}

/// Why a handshake did not finish, as nginx's info line says it (`while
/// SSL handshaking` follows).
#[derive(Debug)]
pub enum HandshakeError {
    /// `client_header_timeout` passed.
    TimedOut,
    /// The client closed the connection before sending anything.
    Closed,
    /// The client closed it during the handshake.
    PeerClosed,
    /// The server the client named refuses handshakes.
    Rejected,
    /// rustls refused the hello or a later message.
    Failed(rustls::Error),
    /// Reading or writing the socket failed.
    Io(io::Error),
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::TimedOut => f.write_str("client timed out (110: Connection timed out)"),
            HandshakeError::Closed => f.write_str("client closed connection"),
            HandshakeError::PeerClosed => f.write_str("peer closed connection in SSL handshake"),
            HandshakeError::Rejected => f.write_str("handshake rejected"),
            HandshakeError::Failed(e) => write!(f, "SSL_do_handshake() failed (rustls: {e})"),
            HandshakeError::Io(e) => write!(
                f,
                "SSL_do_handshake() failed ({})",
                crate::process::os_error(e)
            ),
        }
    }
}

impl From<io::Error> for HandshakeError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => {
                HandshakeError::PeerClosed
            }
            _ => match e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                Some(tls) => HandshakeError::Failed(tls.clone()),
                None => HandshakeError::Io(e),
            },
        }
    }
}

/// A fatal `unrecognized_name` alert (TLS 1.2 record framing, which a
/// client reads before any version is agreed).
const UNRECOGNIZED_NAME: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70];

/// Starts a connection to a TLS socket: `choose` gives the configuration
/// for the server name in the hello (`None`: no name, or an empty one),
/// and whether the name selected a server by its name.
pub async fn start(
    stream: TcpStream,
    deadline: Instant,
    choose: impl FnOnce(Option<&str>) -> Option<(Choice, bool)>,
) -> Result<Start, HandshakeError> {
    tokio::time::timeout_at(deadline, handshake(stream, choose))
        .await
        .unwrap_or(Err(HandshakeError::TimedOut))
}

async fn handshake(
    mut stream: TcpStream,
    choose: impl FnOnce(Option<&str>) -> Option<(Choice, bool)>,
) -> Result<Start, HandshakeError> {
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 0 {
        return Err(HandshakeError::Closed);
    }
    // SSLv2's hello has the high bit set; SSLv3 and TLS start a handshake
    // record
    if first[0] & 0x80 == 0 && first[0] != 0x16 {
        return Ok(Start::Plain(stream));
    }
    let mut acceptor = Acceptor::default();
    let accepted = loop {
        stream.readable().await?;
        let mut reader = TryReader(&stream);
        match acceptor.read_tls(&mut reader) {
            Ok(0) => return Err(HandshakeError::PeerClosed),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e.into()),
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => break accepted,
            Ok(None) => continue,
            Err((error, mut alert)) => {
                let mut out = Vec::new();
                let _ = alert.write_all(&mut out);
                let _ = stream.write_all(&out).await;
                return Err(HandshakeError::Failed(error));
            }
        }
    };
    let hello = accepted.client_hello();
    let name = hello
        .server_name()
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let groups = hello.named_groups().unwrap_or_default().to_vec();
    let suites: Box<[u16]> = hello
        .cipher_suites()
        .iter()
        .map(|s| u16::from(*s))
        .collect();
    let (config, client_auth, sni_matched) = match choose(name.as_deref()) {
        Some((Choice::Serve(config, auth), matched)) => (config, auth, matched),
        Some((Choice::Reject, _)) | None => {
            let _ = stream.write_all(&UNRECOGNIZED_NAME).await;
            return Err(HandshakeError::Rejected);
        }
    };
    let group = likely_group(&groups, &config);
    let tls = StartHandshake::from_parts(accepted, stream)
        .into_stream(config)
        .await?;
    let mut facts = facts(tls.get_ref().1, name, group);
    facts.sni_matched = sni_matched;
    facts.client_suites = suites;
    // a resumed TLS 1.2 session has no groups of its own (OpenSSL
    // reports the session's, which keeps none)
    if !(facts.session_reused && facts.protocol == "TLSv1.2") {
        facts.client_groups = groups.iter().map(|g| u16::from(*g)).collect();
    }
    if let (Some(auth), Some(chain)) = (client_auth, tls.get_ref().1.peer_certificates()) {
        if let Some(leaf) = chain.first() {
            let error = auth.verify(chain);
            facts.client = Some(Box::new(super::x509::client_facts(leaf, error)));
        }
    }
    Ok(Start::Tls(Box::new(TlsConn::accepted(tls, facts))))
}

/// The group a full handshake agrees on with a client offering `offered`
/// (OpenSSL's rule: the client's order, the server's with
/// `ssl_prefer_server_ciphers on`). A resumed TLS 1.2 session has no key
/// exchange of its own; OpenSSL names the group of the handshake that
/// made it, which this is for the same client.
fn likely_group(offered: &[rustls::NamedGroup], config: &rustls::ServerConfig) -> &'static str {
    let ours: Vec<rustls::NamedGroup> = config
        .crypto_provider()
        .kx_groups
        .iter()
        .map(|g| g.name())
        .collect();
    let chosen = if config.ignore_client_order {
        ours.iter().find(|g| offered.contains(g))
    } else {
        offered.iter().find(|g| ours.contains(g))
    };
    chosen.map_or("", |g| super::policy::group_name(*g))
}

/// The session's `$ssl_*` facts (`group`: the curve to name when the
/// session was resumed without a key exchange).
fn facts(
    conn: &rustls::ServerConnection,
    server_name: Option<String>,
    group: &'static str,
) -> TlsFacts {
    TlsFacts {
        protocol: match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "",
        },
        cipher: conn
            .negotiated_cipher_suite()
            .map_or("", |s| super::policy::openssl_name(s.suite())),
        curve: conn
            .negotiated_key_exchange_group()
            .map_or(group, |g| super::policy::group_name(g.name())),
        server_name: server_name.map(String::into_boxed_str),
        session_reused: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        alpn: conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into()),
        sni_matched: false,
        client: None,
        client_suites: Box::default(),
        client_groups: Box::default(),
    }
}

/// `std::io::Read` over a tokio socket's non-blocking reads (what
/// rustls' [`Acceptor`] reads the hello with).
struct TryReader<'a>(&'a TcpStream);

impl io::Read for TryReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

/// The configuration a connection's hello selects, as
/// `ngx_http_ssl_servername` finds it, and whether a server has the name.
pub fn chooser<'a>(
    plan: &'a Arc<super::TlsPlan>,
    runtime: &'a rginx_core::plan::Runtime,
    socket: usize,
    local: std::net::SocketAddr,
) -> impl FnOnce(Option<&str>) -> Option<(Choice, bool)> + 'a {
    move |name| {
        let named = name.and_then(|name| runtime.sni_server(local, name));
        let server = named.unwrap_or_else(|| runtime.default_server_of(local));
        Some((plan.choose(socket, server)?.clone(), named.is_some()))
    }
}
