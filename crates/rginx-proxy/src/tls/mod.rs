//! TLS termination on rustls: what a configuration's `ssl_*` settings
//! make of each listening socket that says `ssl` ([`TlsPlan`], built once
//! at load or reload, in the master, which may read root-only keys), and
//! the handshake of each connection ([`accept`]).
//!
//! nginx makes one OpenSSL context per server that has certificates
//! (`ngx_http_ssl_merge_srv_conf`) and switches a connection to the
//! context of the server its SNI names (`ngx_http_ssl_servername`); what
//! switches is the certificate, the protocols and options, and the record
//! size, while the suites, the groups and the session cache stay those of
//! the socket's default server. The plan mirrors that: one rustls config
//! for each server a socket's connections can reach by SNI.

pub mod accept;
mod certs;
mod ciphers;
pub mod client_auth;
mod policy;
mod sessions;
mod signatures;
pub mod stream;
pub mod upstream;
mod x509;

use std::collections::HashMap;
use std::sync::Arc;

use rginx_config::Span;
use rginx_core::model::{FileRef, Model, ServerConf, Settings, Value};
use rginx_core::select::{ServerId, ServerSelector};
use rginx_core::Diagnostic;
use rustls::crypto::CryptoProvider;
use rustls::server::{NoServerSessionStorage, ProducesTickets, StoresServerSessions};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use certs::Certificates;
use policy::Policy;

/// The ALPN protocols an HTTP/1 server agrees to, in nginx's order
/// (`NGX_HTTP_ALPN_PROTOS`); a client offering none of them is refused,
/// as nginx 1.22 refuses it.
const ALPN_HTTP1: [&[u8]; 3] = [b"http/1.1", b"http/1.0", b"http/0.9"];

/// Errors and warnings found while building the plan, each once.
#[derive(Debug, Default)]
pub struct Findings {
    list: Vec<Diagnostic>,
}

impl Findings {
    fn push(&mut self, diagnostic: Diagnostic) {
        if !self.list.contains(&diagnostic) {
            self.list.push(diagnostic);
        }
    }

    /// An error at `span`.
    pub fn error(&mut self, message: String, span: Span) {
        let order = (u32::MAX, 0, self.list.len() as u32);
        self.push(Diagnostic::error(message, Some(span), order));
    }

    /// A warning at `span`.
    pub fn warning(&mut self, message: String, span: Span) {
        let order = (u32::MAX, 0, self.list.len() as u32);
        self.push(Diagnostic::warning(message, Some(span), order));
    }

    fn has_errors(&self) -> bool {
        self.list.iter().any(Diagnostic::is_error)
    }
}

/// What a TLS connection to a socket gets once its hello names a server.
#[derive(Debug, Clone)]
pub enum Choice {
    /// The handshake goes on with this configuration (and, when the
    /// server asks for client certificates, the checks of the one sent).
    Serve(Arc<ServerConfig>, Option<Arc<client_auth::ClientAuth>>),
    /// `ssl_reject_handshake on`: the handshake is refused with an
    /// `unrecognized_name` alert.
    Reject,
}

/// The TLS side of a configuration: for each listening socket that says
/// `ssl` (by its position among the model's sockets), what each of its
/// servers offers.
#[derive(Debug, Default)]
pub struct TlsPlan {
    sockets: Vec<Option<SocketTls>>,
    /// The client configuration of each `proxy_pass https://`, by its
    /// order in the configuration.
    upstreams: upstream::UpstreamConfigs,
}

#[derive(Debug)]
struct SocketTls {
    default: ServerId,
    servers: HashMap<ServerId, Choice>,
}

impl TlsPlan {
    /// What a connection to socket `socket` gets for the server its SNI
    /// selected (the socket's default server's choice for a server with
    /// no TLS settings of its own).
    pub fn choose(&self, socket: usize, server: ServerId) -> Option<&Choice> {
        let tls = self.sockets.get(socket)?.as_ref()?;
        tls.servers
            .get(&server)
            .or_else(|| tls.servers.get(&tls.default))
    }

    /// The TLS client configuration of a `proxy_pass https://`.
    pub fn upstream(&self, proxy: u32) -> Option<&Arc<rustls::ClientConfig>> {
        self.upstreams.get(&proxy)
    }

    /// Whether connections to socket `socket` speak TLS.
    pub fn speaks_tls(&self, socket: usize) -> bool {
        self.sockets.get(socket).is_some_and(Option::is_some)
    }
}

/// The plan for a model and what was found on the way: `None` when an
/// error was (a missing certificate, a key that does not match, a policy
/// that offers nothing).
pub fn build(model: &Model) -> (Option<Arc<TlsPlan>>, Vec<Diagnostic>) {
    let mut findings = Findings::default();
    let plan = Builder::default().plan(model, &mut findings);
    let plan = plan.filter(|_| !findings.has_errors()).map(Arc::new);
    (plan, findings.list)
}

/// What [`build`] finds, for `rginx check`.
pub fn check(model: &Model) -> Vec<Diagnostic> {
    build(model).1
}

/// A server's TLS context (nginx makes one for a server with
/// certificates or `ssl_reject_handshake on`).
struct ServerTls {
    certs: Option<Arc<Certificates>>,
    policy: Policy,
    reject: bool,
    client_auth: Option<Arc<client_auth::ClientAuth>>,
}

/// What the default server of a socket keeps for all of its
/// connections: the session cache and the ticket key.
struct SessionContext {
    storage: Arc<dyn StoresServerSessions>,
    tickets: Arc<dyn ProducesTickets>,
}

#[derive(Default)]
struct Builder {
    /// Certificates loaded, by (certificate, key) file: a pair several
    /// servers name (inherited from `http`) is read once.
    loaded: HashMap<(String, String), Option<Arc<CertifiedKey>>>,
}

impl Builder {
    fn plan(&mut self, model: &Model, findings: &mut Findings) -> Option<TlsPlan> {
        let http = model.http.as_ref()?;
        let provider = rustls::crypto::ring::default_provider();
        let contexts: Vec<Option<ServerTls>> = http
            .servers
            .iter()
            .map(|server| self.server(server, &provider, findings))
            .collect();
        let selector = ServerSelector::new(&http.servers).ok()?;
        let mut plan = TlsPlan {
            upstreams: upstream::configs(model, findings),
            ..TlsPlan::default()
        };
        for (index, _, members) in selector.tls_sockets() {
            let tls = socket(http.servers.as_slice(), &contexts, &members, findings)?;
            if plan.sockets.len() <= index {
                plan.sockets.resize_with(index + 1, || None);
            }
            plan.sockets[index] = Some(tls);
        }
        Some(plan)
    }

    /// A server's context, when it has certificates (set or inherited) or
    /// refuses handshakes.
    fn server(
        &mut self,
        server: &ServerConf,
        provider: &CryptoProvider,
        findings: &mut Findings,
    ) -> Option<ServerTls> {
        let settings = &server.settings;
        let reject = settings.flag("ssl_reject_handshake", false);
        let certificates = files(settings, "ssl_certificate");
        let keys = files(settings, "ssl_certificate_key");
        // `ssl on` (deprecated) has messages of its own
        if let Some(enabled) = settings.get("ssl").filter(|s| s.value == Value::Flag(true)) {
            let missing = if certificates.is_empty() && !reject {
                Some("ssl_certificate")
            } else if !certificates.is_empty() && keys.len() < certificates.len() {
                Some("ssl_certificate_key")
            } else {
                None
            };
            if let Some(missing) = missing {
                findings.error(
                    format!("no \"{missing}\" is defined for the \"ssl\" directive"),
                    enabled.span,
                );
                return None;
            }
        }
        if certificates.is_empty() && !reject {
            return None;
        }
        if keys.len() < certificates.len() {
            let last = &certificates[certificates.len() - 1];
            findings.error(
                format!(
                    "no \"ssl_certificate_key\" is defined for certificate \"{}\"",
                    last.path
                ),
                server.span,
            );
            return None;
        }
        let policy = policy::read(settings, findings)?;
        password_file(settings, "ssl_password_file", findings)?;
        let client_auth = client_auth::read(settings, &Arc::new(provider.clone()), findings)?;
        let mut loaded = Vec::new();
        for (cert, key) in certificates.iter().zip(keys) {
            let certified = self.load(cert, key, provider, findings)?;
            if let Some(leaf) = certified.cert.first() {
                x509::check(leaf, cert, server, findings);
            }
            loaded.push(certified);
        }
        if let Some(response) = staple(settings, findings)? {
            // nginx staples a file's response for each certificate
            loaded = loaded
                .into_iter()
                .map(|k| {
                    Arc::new(CertifiedKey {
                        ocsp: Some(response.clone()),
                        ..(*k).clone()
                    })
                })
                .collect();
        }
        let certs = (!loaded.is_empty()).then(|| Arc::new(Certificates::new(loaded)));
        Some(ServerTls {
            certs,
            policy,
            reject,
            client_auth,
        })
    }

    /// A certificate and its key, read once for every server naming them.
    fn load(
        &mut self,
        cert: &FileRef,
        key: &FileRef,
        provider: &CryptoProvider,
        findings: &mut Findings,
    ) -> Option<Arc<CertifiedKey>> {
        let pair = (cert.path.clone(), key.path.clone());
        if let Some(done) = self.loaded.get(&pair) {
            return done.clone();
        }
        let done = match certs::load(&cert.path, &key.path, provider) {
            Ok(certified) => Some(Arc::new(certified)),
            Err(failed) => {
                let span = failure_span(&failed, cert, key);
                findings.error(failed, span);
                None
            }
        };
        self.loaded.insert(pair, done.clone());
        done
    }
}

/// `ssl_stapling on` with `ssl_stapling_file`: the response to staple
/// (`None` inside: nothing to staple; `None`: an error, in `findings`).
fn staple(settings: &Settings, findings: &mut Findings) -> Option<Option<Vec<u8>>> {
    let Some(on) = settings
        .get("ssl_stapling")
        .filter(|s| s.value == Value::Flag(true))
    else {
        return Some(None);
    };
    let Some(file) = files(settings, "ssl_stapling_file").first() else {
        findings.warning(
            "\"ssl_stapling\" staples nothing without \"ssl_stapling_file\": rginx does not ask OCSP responders (clients check revocation themselves, as when a staple is missing)".to_string(),
            on.span,
        );
        return Some(None);
    };
    match std::fs::read(&file.path) {
        // an OCSPResponse is a DER SEQUENCE (`d2i_OCSP_RESPONSE_bio`)
        Ok(der) if der.first() == Some(&0x30) => Some(Some(der)),
        Ok(_) => {
            findings.error(
                format!(
                    "d2i_OCSP_RESPONSE_bio(\"{}\") failed (not a DER OCSP response)",
                    file.path
                ),
                file.span,
            );
            None
        }
        Err(e) => {
            findings.error(
                format!(
                    "BIO_new_file(\"{}\") failed ({})",
                    file.path,
                    crate::process::os_error(&e)
                ),
                file.span,
            );
            None
        }
    }
}

/// `ssl_password_file` / `proxy_ssl_password_file`: nginx reads it at
/// load (`ngx_ssl_read_password_file`: its error for a file it cannot
/// read); rginx has no use for its passwords, as it refuses encrypted
/// keys where they are loaded.
fn password_file(settings: &Settings, directive: &str, findings: &mut Findings) -> Option<()> {
    match files(settings, directive).first() {
        Some(file) => read_file(file, findings).map(drop),
        None => Some(()),
    }
}

/// The contents of a file a directive names; nginx's `open()` error with
/// the directive's file:line when it cannot be read.
pub(crate) fn read_file(file: &FileRef, findings: &mut Findings) -> Option<Vec<u8>> {
    match std::fs::read(&file.path) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            findings.error(
                format!(
                    "open() \"{}\" failed ({})",
                    file.path,
                    crate::process::os_error(&e)
                ),
                file.span,
            );
            None
        }
    }
}

/// Where a failure of [`certs::load`] is reported: a key's own failure
/// at the key, the certificate's at the certificate.
fn failure_span(failed: &str, cert: &FileRef, key: &FileRef) -> Span {
    if failed.contains("certificate key") || failed.contains("PrivateKey") {
        key.span
    } else {
        cert.span
    }
}

/// The files a repeatable file directive names.
fn files<'s>(settings: &'s Settings, name: &str) -> &'s [FileRef] {
    match settings.get(name).map(|s| &s.value) {
        Some(Value::Files(list)) => list,
        _ => &[],
    }
}

/// A socket's servers' choices; nginx's check that its default server (or,
/// when that one refuses handshakes without a certificate, every server on
/// it) has a certificate (`ngx_http_ssl_init`).
fn socket(
    servers: &[ServerConf],
    contexts: &[Option<ServerTls>],
    members: &[ServerId],
    findings: &mut Findings,
) -> Option<SocketTls> {
    let default = *members.first()?;
    let missing = |id: ServerId, findings: &mut Findings| {
        findings.error(
            "no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive".to_string(),
            servers[id.0 as usize].span,
        );
    };
    let Some(base) = contexts[default.0 as usize].as_ref() else {
        missing(default, findings);
        return None;
    };
    if base.certs.is_none() {
        for id in members {
            if contexts[id.0 as usize].is_none() {
                missing(*id, findings);
                return None;
            }
        }
    }
    let session = session_context(&base.policy, findings)?;
    let mut chosen = HashMap::new();
    for id in members {
        let server = &servers[id.0 as usize];
        let own = contexts[id.0 as usize].as_ref();
        let ctx = own.unwrap_or(base);
        if ctx.reject {
            chosen.insert(*id, Choice::Reject);
            continue;
        }
        // a server with no certificate of its own is only reachable with
        // the default one's (which has one: it does not refuse here)
        let Some(certs) = ctx.certs.clone().or_else(|| base.certs.clone()) else {
            continue;
        };
        let buffer_size = server
            .settings
            .size("ssl_buffer_size", ctx.policy.buffer_size as u64);
        match server_config(base, ctx, certs, &session, buffer_size) {
            Ok(config) => {
                chosen.insert(
                    *id,
                    Choice::Serve(Arc::new(config), ctx.client_auth.clone()),
                );
            }
            Err(e) => {
                findings.error(format!("cannot set up TLS: {e}"), server.span);
                return None;
            }
        }
    }
    Some(SocketTls {
        default,
        servers: chosen,
    })
}

/// The session cache and ticket key of a socket's default server.
fn session_context(policy: &Policy, findings: &mut Findings) -> Option<SessionContext> {
    let storage: Arc<dyn StoresServerSessions> = match policy.session_cache {
        policy::SessionCache::Keep(size) => {
            sessions::SessionCache::new(size, policy.session_timeout)
        }
        policy::SessionCache::None => Arc::new(sessions::KeepsNone),
        policy::SessionCache::Off => Arc::new(NoServerSessionStorage {}),
    };
    let made = if policy.ticket_keys.is_empty() {
        sessions::Tickets::new(policy.session_timeout)
    } else {
        sessions::Tickets::from_files(&policy.ticket_keys, policy.session_timeout)
    };
    let tickets = match made {
        Ok(t) => t,
        Err(e) => {
            findings.error(e, Span::default());
            return None;
        }
    };
    Some(SessionContext { storage, tickets })
}

/// rustls' configuration for the connections that reach `ctx`'s server
/// on a socket whose default server is `base`.
fn server_config(
    base: &ServerTls,
    ctx: &ServerTls,
    certs: Arc<Certificates>,
    session: &SessionContext,
    buffer_size: u64,
) -> Result<ServerConfig, rustls::Error> {
    let mut provider = rustls::crypto::ring::default_provider();
    // suites and groups are the default server's (the connection's first
    // OpenSSL context); the protocols the server's own
    provider.cipher_suites = base
        .policy
        .suites
        .iter()
        .filter(|s| ctx.policy.versions.contains(&s.version()))
        .copied()
        .collect();
    if provider.cipher_suites.is_empty() {
        // the server's protocols have no suite in the default's list:
        // offer its own, rather than fail every handshake
        provider.cipher_suites = ctx.policy.suites.clone();
    }
    provider.kx_groups = base.policy.groups.clone();
    let provider_suites = provider.cipher_suites.clone();
    let builder = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&ctx.policy.versions)?;
    let chooser = certs::Chooser {
        certs,
        tls12: provider_suites
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS12)
            .map(|s| {
                let suite = s.suite();
                (suite, policy::openssl_name(suite).contains("ECDSA"))
            })
            .collect(),
        prefer_server: ctx.policy.prefer_server,
        tls13: ctx.policy.versions.contains(&&rustls::version::TLS13),
    };
    let builder = match &ctx.client_auth {
        Some(auth) => builder.with_client_cert_verifier(auth.asking.clone()),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(chooser));
    config.ignore_client_order = ctx.policy.prefer_server;
    config.max_fragment_size = policy::max_fragment_size(buffer_size);
    config.alpn_protocols = ALPN_HTTP1.iter().map(|p| p.to_vec()).collect();
    config.session_storage = session.storage.clone();
    if ctx.policy.tickets {
        config.ticketer = session.tickets.clone();
    } else if base.policy.session_cache == policy::SessionCache::Off {
        // nothing to resume with: no TLS 1.3 tickets either
        config.send_tls13_tickets = 0;
    }
    config.max_early_data_size = 0;
    Ok(config)
}
