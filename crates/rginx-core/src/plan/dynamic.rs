//! Where a `proxy_pass` with variables goes, decided per request as
//! nginx does: the URL is parsed (`ngx_http_proxy_eval`, `ngx_parse_url`
//! without resolving), then its host is looked for among the `upstream`
//! blocks and the implicit upstreams of literal `proxy_pass` URLs, taken
//! as an address, or left to the location's `resolver`
//! (`ngx_http_upstream_init_request`).

use super::*;
use crate::peer::PeerAddr;

/// A `proxy_pass` URL with variables, evaluated.
pub(super) struct Dynamic {
    pub target: PlanTarget,
    /// The request target sent.
    pub uri: String,
    /// `$proxy_host`.
    pub host: String,
    /// `$proxy_port` (0: none, for a unix socket).
    pub port: u16,
    /// The URL said `https://`.
    pub https: bool,
}

/// The longest unix socket path (`sun_path`, with its NUL).
const SUN_PATH: usize = 108;

impl Runtime {
    /// Evaluates `url` for `loc`: a target, or the answer nginx gives
    /// with its error line.
    pub(super) fn dynamic_target(
        &self,
        loc: &CompiledLocation,
        url: &str,
        request_uri: &str,
    ) -> Result<Dynamic, Decision<'static>> {
        let failed = |status, error| Decision::Failed { status, error };
        let https = url.len() > 8 && url.as_bytes()[..8].eq_ignore_ascii_case(b"https://");
        let http = url.len() > 7 && url.as_bytes()[..7].eq_ignore_ascii_case(b"http://");
        if !(http || https) {
            return Err(failed(500, format!("invalid URL prefix in \"{url}\"")));
        }
        let rest = if https { &url[8..] } else { &url[7..] };
        let default_port = if https { 443 } else { 80 };
        let in_upstream = |err: &str| failed(500, format!("{err} in upstream \"{rest}\""));
        // the URI part, a lone `?args` getting its `/`
        let with_uri = |uri: Option<&str>| match uri {
            None | Some("") => request_uri.to_string(),
            Some(u) if u.starts_with('?') => format!("/{u}"),
            Some(u) => u.to_string(),
        };
        if rest.len() >= 5 && rest.as_bytes()[..5].eq_ignore_ascii_case(b"unix:") {
            // ngx_parse_unix_domain_url: the path ends at a `:`
            let (path, uri) = match rest[5..].split_once(':') {
                Some((path, uri)) => (path, Some(uri)),
                None => (&rest[5..], None),
            };
            if path.is_empty() {
                return Err(in_upstream("no path in the unix domain socket"));
            }
            if path.len() + 1 > SUN_PATH {
                return Err(in_upstream("too long path in the unix domain socket"));
            }
            return Ok(Dynamic {
                target: PlanTarget::Addrs(vec![PeerAddr::Unix(path.into())]),
                uri: with_uri(uri),
                host: "localhost".to_string(),
                port: 0,
                https,
            });
        }
        // ngx_parse_inet_url: the URI starts at the first `/` or `?`, the
        // port after a `:` before it
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, uri) = rest.split_at(authority_end);
        let uri = (!uri.is_empty()).then_some(uri);
        let (host, port_text) = if let Some(inner) = authority.strip_prefix('[') {
            let Some((ip, after)) = inner.split_once(']') else {
                return Err(in_upstream("invalid host"));
            };
            if ip.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(in_upstream("invalid IPv6 address"));
            }
            match after {
                "" => (&authority[..ip.len() + 2], None),
                a => match a.strip_prefix(':') {
                    Some(p) => (&authority[..ip.len() + 2], Some(p)),
                    None => return Err(in_upstream("invalid host")),
                },
            }
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port = match port_text {
            None => default_port,
            Some(p) => crate::values::parse_number(p)
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| in_upstream("invalid port"))?,
        };
        if host.is_empty() {
            return Err(in_upstream("no host"));
        }
        // nginx's Host: the port only when it is not the scheme's, as
        // written
        let proxy_host = match port_text {
            Some(p) if port != default_port => format!("{host}:{p}"),
            _ => host.to_string(),
        };
        let dynamic = |target| Dynamic {
            target,
            uri: with_uri(uri),
            host: proxy_host.clone(),
            port,
            https,
        };
        // an `upstream` block takes a URL without a port; an implicit
        // upstream, the same host and port
        if port_text.is_none() && self.upstreams.iter().any(|u| u.eq_ignore_ascii_case(host)) {
            return Ok(dynamic(PlanTarget::Upstream(host.to_string())));
        }
        if let Some((_, _, addrs)) = self
            .implicit
            .iter()
            .find(|(h, p, _)| *p == port && h.eq_ignore_ascii_case(host))
        {
            return Ok(dynamic(PlanTarget::Addrs(addrs.clone())));
        }
        if let Some(ip) = crate::resolve::parse_ip(host) {
            let addr = SocketAddr::new(ip, port);
            return Ok(dynamic(PlanTarget::Addrs(vec![addr.into()])));
        }
        match loc.resolver {
            Some(resolver) => Ok(dynamic(PlanTarget::Resolve {
                host: host.to_string(),
                port,
                resolver,
                timeout: loc.resolver_timeout,
            })),
            None => Err(failed(
                502,
                format!("no resolver defined to resolve {host}"),
            )),
        }
    }
}
