//! Server selection, compiled once per load: which `server` handles a
//! request, from the socket it arrived on and its host
//! (<https://nginx.org/en/docs/http/request_processing.html>,
//! `ngx_http_find_virtual_server`).

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use crate::model::{ServerConf, ServerName};
use crate::pcre::{MatchError, Pcre};

/// Index of a server in the configuration's `http` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerId(pub u32);

/// The servers reachable through one listening address.
#[derive(Debug, Clone)]
struct Socket {
    addr: SocketAddr,
    default: ServerId,
    exact: HashMap<String, ServerId>,
    /// `*.example.com` / `.example.com` by suffix (`.example.com`); the flag
    /// says whether the bare `example.com` matches too.
    leading: HashMap<String, ServerId>,
    /// `.example.com` also matches `example.com`: by that bare name.
    bare: HashMap<String, ServerId>,
    /// `mail.*` by prefix (`mail.`).
    trailing: HashMap<String, ServerId>,
    regexes: Vec<(Pcre, ServerId)>,
    /// The servers whose names are in (a server listening twice on the
    /// address adds them once).
    members: HashSet<ServerId>,
    /// Connections to it speak TLS (some `listen` of it says `ssl`:
    /// nginx joins the options of an address's listens,
    /// `ngx_http_add_addresses`).
    ssl: bool,
}

/// Picks the server for a request.
#[derive(Debug, Clone, Default)]
pub struct ServerSelector {
    sockets: Vec<Socket>,
}

impl ServerSelector {
    /// Compiles the names of every server on every listening address. The
    /// first server to claim a name on an address keeps it, as in nginx.
    /// The error is a regex's compile error, in nginx's words.
    pub fn new(servers: &[ServerConf]) -> Result<ServerSelector, String> {
        let mut sockets: Vec<Socket> = Vec::new();
        for (index, server) in servers.iter().enumerate() {
            let id = ServerId(index as u32);
            for listen in &server.listens {
                let pos = match sockets.iter().position(|s| s.addr == listen.addr) {
                    Some(p) => p,
                    None => {
                        sockets.push(Socket {
                            addr: listen.addr,
                            default: id,
                            exact: HashMap::new(),
                            leading: HashMap::new(),
                            bare: HashMap::new(),
                            trailing: HashMap::new(),
                            regexes: Vec::new(),
                            members: HashSet::new(),
                            ssl: false,
                        });
                        sockets.len() - 1
                    }
                };
                let socket = &mut sockets[pos];
                socket.ssl |= listen.ssl;
                if listen.default_server {
                    socket.default = id;
                }
                if !socket.members.insert(id) {
                    continue; // a second listen of the same server on this address
                }
                for name in &server.names {
                    match name {
                        ServerName::Exact(n) => {
                            socket.exact.entry(n.clone()).or_insert(id);
                        }
                        ServerName::LeadingWildcard { suffix, also_bare } => {
                            socket.leading.entry(suffix.clone()).or_insert(id);
                            if *also_bare {
                                let bare = suffix.trim_start_matches('.').to_string();
                                socket.bare.entry(bare).or_insert(id);
                            }
                        }
                        ServerName::TrailingWildcard(p) => {
                            socket.trailing.entry(p.clone()).or_insert(id);
                        }
                        ServerName::Regex(re) => {
                            socket
                                .regexes
                                .push((Pcre::compile(re, caseless_name(re))?, id));
                        }
                    }
                }
            }
        }
        // `ssl on` in an address's default server makes it TLS
        // (`ngx_http_init_connection`: `sscf->enable || addr_conf->ssl`)
        for socket in &mut sockets {
            if servers
                .get(socket.default.0 as usize)
                .is_some_and(|s| s.settings.flag("ssl", false))
            {
                socket.ssl = true;
            }
        }
        Ok(ServerSelector { sockets })
    }

    /// Every address to listen on, in configuration order.
    pub fn listen_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.sockets.iter().map(|s| s.addr)
    }

    /// The socket a connection to `local` belongs to: an exact address
    /// match first, then the wildcard address of the same port and family.
    pub fn socket_for(&self, local: SocketAddr) -> Option<usize> {
        if let Some(i) = self.sockets.iter().position(|s| s.addr == local) {
            return Some(i);
        }
        self.sockets.iter().position(|s| {
            s.addr.port() == local.port()
                && s.addr.ip().is_unspecified()
                && matches!(
                    (s.addr.ip(), local.ip()),
                    (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_))
                )
        })
    }

    /// The sockets whose connections speak TLS: each one's position, its
    /// address and its servers (the default one first).
    pub fn tls_sockets(&self) -> Vec<(usize, SocketAddr, Vec<ServerId>)> {
        (0..self.sockets.len())
            .filter(|i| self.sockets[*i].ssl)
            .map(|i| (i, self.sockets[i].addr, self.members(i)))
            .collect()
    }

    /// Whether connections to a socket speak TLS.
    pub fn is_ssl(&self, socket: usize) -> bool {
        self.sockets.get(socket).is_some_and(|s| s.ssl)
    }

    /// How many servers are reachable through a socket.
    pub fn member_count(&self, socket: usize) -> usize {
        self.sockets.get(socket).map_or(0, |s| s.members.len())
    }

    /// The servers reachable through a socket, the default one first.
    pub fn members(&self, socket: usize) -> Vec<ServerId> {
        let Some(s) = self.sockets.get(socket) else {
            return Vec::new();
        };
        let mut members: Vec<ServerId> = s.members.iter().copied().collect();
        members.sort_by_key(|id| (*id != s.default, id.0));
        members
    }

    /// The default server of a socket (the first, or `default_server`).
    pub fn default_server(&self, socket: usize) -> ServerId {
        self.sockets.get(socket).map_or(ServerId(0), |s| s.default)
    }

    /// The server for `host` (already normalised: lowercase, no port, no
    /// trailing dot; empty when the request has none) on a socket: exact
    /// name, longest leading wildcard, longest trailing wildcard, first
    /// matching regex, else the default server. `run` matches a
    /// server-name regex against the host (and may keep its captures); a
    /// match that fails is the error, with its regex.
    pub fn select<'s>(
        &'s self,
        socket: usize,
        host: &str,
        run: &mut crate::locate::RegexRunner<'s, '_>,
    ) -> Result<ServerId, (MatchError, &'s Pcre)> {
        let found = self.find(socket, host, run)?;
        Ok(found.unwrap_or_else(|| self.default_server(socket)))
    }

    /// The server whose names take `host` on a socket, if one does.
    pub fn find<'s>(
        &'s self,
        socket: usize,
        host: &str,
        run: &mut crate::locate::RegexRunner<'s, '_>,
    ) -> Result<Option<ServerId>, (MatchError, &'s Pcre)> {
        let Some(s) = self.sockets.get(socket) else {
            return Ok(None);
        };
        if let Some(id) = s.exact.get(host) {
            return Ok(Some(*id));
        }
        if !host.is_empty() {
            // `.example.com` also matches `example.com`
            if let Some(id) = s.bare.get(host) {
                return Ok(Some(*id));
            }
            if !s.leading.is_empty() {
                for (i, _) in host.match_indices('.') {
                    if let Some(id) = s.leading.get(&host[i..]) {
                        return Ok(Some(*id));
                    }
                }
            }
            if !s.trailing.is_empty() {
                for (i, _) in host.rmatch_indices('.') {
                    if let Some(id) = s.trailing.get(&host[..=i]) {
                        return Ok(Some(*id));
                    }
                }
            }
            for (re, id) in &s.regexes {
                match run(re, host.as_bytes()) {
                    Ok(true) => return Ok(Some(*id)),
                    Ok(false) => {}
                    Err(e) => return Err((e, re)),
                }
            }
        }
        Ok(None)
    }
}

/// nginx compiles a `server_name` regex caseless when it has an upper-case
/// letter (`ngx_http_server_names`), since the host it is matched against
/// is lower-cased.
pub fn caseless_name(pattern: &str) -> bool {
    pattern.bytes().any(|b| b.is_ascii_uppercase())
}

/// nginx's `ngx_http_validate_host`: checks a host (from the request line
/// or the Host header), strips the port and one trailing dot and
/// lowercases it. `None` means nginx answers 400 "client sent invalid host
/// header".
pub fn normalize_host(raw: &str) -> Option<Cow<'_, str>> {
    let bytes = raw.as_bytes();
    let mut dot_pos: Option<usize> = None;
    let mut host_len = bytes.len();
    let mut in_literal = false;
    let mut rest = false;
    let mut upper = false;
    for (i, &ch) in bytes.iter().enumerate() {
        match ch {
            b'.' => {
                if i > 0 && dot_pos == Some(i - 1) {
                    return None;
                }
                dot_pos = Some(i);
            }
            b':' if !rest && !in_literal => {
                host_len = i;
                rest = true;
            }
            b'[' if i == 0 => in_literal = true,
            b']' if in_literal => {
                host_len = i + 1;
                in_literal = false;
                rest = true;
            }
            b'/' => return None,
            c if c <= 0x20 || c == 0x7f => return None,
            c if c.is_ascii_uppercase() => upper = true,
            _ => {}
        }
    }
    if host_len > 0 && dot_pos == Some(host_len - 1) {
        host_len -= 1;
    }
    if host_len == 0 {
        return None;
    }
    let host = &raw[..host_len];
    Some(if upper {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Listen;
    use rginx_config::Span;

    fn server(names: &[ServerName], addr: &str, default_server: bool) -> ServerConf {
        ServerConf {
            listens: vec![Listen {
                addr: addr.parse().unwrap(),
                default_server,
                ssl: false,
                http2: false,
                span: Span::default(),
            }],
            names: names.to_vec(),
            ..ServerConf::default()
        }
    }

    #[test]
    fn hosts_are_validated_like_nginx() {
        assert_eq!(
            normalize_host("Example.COM:8080").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            normalize_host("example.com.").as_deref(),
            Some("example.com")
        );
        assert_eq!(normalize_host("[::1]:80").as_deref(), Some("[::1]"));
        assert_eq!(normalize_host("a..b"), None);
        assert_eq!(normalize_host("a/b"), None);
        assert_eq!(normalize_host(""), None);
        assert_eq!(normalize_host(":80"), None);
        assert_eq!(normalize_host("a b"), None);
    }

    #[test]
    fn names_are_tried_in_nginx_order() {
        use ServerName::*;
        let a = "127.0.0.1:80";
        let servers = vec![
            server(&[Exact("first".into())], a, false),
            server(
                &[LeadingWildcard {
                    suffix: ".example.com".into(),
                    also_bare: false,
                }],
                a,
                false,
            ),
            server(
                &[LeadingWildcard {
                    suffix: ".b.example.com".into(),
                    also_bare: false,
                }],
                a,
                false,
            ),
            server(&[TrailingWildcard("mail.".into())], a, false),
            server(&[Regex("^(?<sub>[a-z]+)\\.example\\.net$".into())], a, true),
            server(
                &[LeadingWildcard {
                    suffix: ".example.org".into(),
                    also_bare: true,
                }],
                a,
                false,
            ),
            server(&[Exact("www.example.com".into())], a, false),
        ];
        let sel = ServerSelector::new(&servers).unwrap();
        let s = sel.socket_for(a.parse().unwrap()).unwrap();
        let pick = |h: &str| sel.select(s, h, &mut Pcre::is_match).unwrap().0;
        assert_eq!(pick("www.example.com"), 6);
        assert_eq!(pick("a.example.com"), 1);
        assert_eq!(pick("x.b.example.com"), 2);
        assert_eq!(pick("mail.example.com"), 1);
        assert_eq!(pick("mail.foo"), 3);
        assert_eq!(pick("abc.example.net"), 4);
        assert_eq!(pick("example.org"), 5);
        assert_eq!(pick("x.example.org"), 5);
        assert_eq!(pick("nomatch"), 4);
        assert_eq!(pick(""), 4);
    }

    #[test]
    fn regex_names_with_capitals_are_caseless() {
        let a = "127.0.0.1:80";
        let servers = vec![
            server(&[ServerName::Exact("first".into())], a, true),
            server(&[ServerName::Regex("^WWW\\.".into())], a, false),
        ];
        let sel = ServerSelector::new(&servers).unwrap();
        let pick = |h: &str| sel.select(0, h, &mut Pcre::is_match).unwrap().0;
        assert_eq!(pick("www.example.com"), 1);
        assert!(caseless_name("^WWW") && !caseless_name("^www\\d"));
    }

    #[test]
    fn specific_addresses_win_over_wildcards() {
        let servers = vec![
            server(&[ServerName::Exact(String::new())], "0.0.0.0:80", false),
            server(&[ServerName::Exact(String::new())], "127.0.0.2:80", false),
        ];
        let sel = ServerSelector::new(&servers).unwrap();
        assert_eq!(sel.socket_for("127.0.0.2:80".parse().unwrap()), Some(1));
        assert_eq!(sel.socket_for("127.0.0.3:80".parse().unwrap()), Some(0));
        assert_eq!(sel.socket_for("127.0.0.3:81".parse().unwrap()), None);
    }
}
