//! `upstream` blocks: their servers, balancing method and `keepalive`.

use rginx_config::Directive;

use crate::build::{Builder, Frame, Msg};
use crate::model::Balancing;
use crate::model::{UpstreamConf, UpstreamServer};
use crate::table::Context;
use crate::values::{parse_number, parse_time};

use crate::peer::PeerAddr;

use super::{arg, parse_port, split_host_port};

/// `upstream name { }`
pub fn upstream(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let Frame::Http(http) = f else { return Ok(()) };
    let name = arg(d, 0).to_string();
    b.define_upstream(&name, d)?;
    let mut up = UpstreamConf {
        name,
        span: d.name.span,
        ..UpstreamConf::default()
    };
    let errors = b.error_count();
    b.walk(
        d.children(),
        Context::Upstream,
        &mut Frame::Upstream(&mut up),
    );
    // a `server` refused inside (a unix: socket) is still a server: nginx
    // stops at that refusal and never finds the block empty
    if up.servers.is_empty() && b.error_count() == errors {
        // checked when the block ends, so nginx names the line of its `}`
        // an unclosed block stopped nginx at the syntax error instead
        if let Some((blk, close)) = d.block.as_ref().and_then(|blk| blk.close.map(|c| (blk, c))) {
            b.error_at(close, blk.close_seq, "no servers are inside upstream");
        }
    }
    http.upstreams.push(up);
    Ok(())
}

/// `server address [parameters]` in an upstream.
pub fn upstream_server(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let Frame::Upstream(up) = f else {
        return Ok(());
    };
    let text = arg(d, 0);
    let socket = text.strip_prefix("unix:");
    if socket == Some("") {
        return Err(Msg::own(format!(
            "no path in the unix domain socket in upstream \"{text}\""
        )));
    }
    let mut server = UpstreamServer {
        name: text.to_string(),
        host: String::new(),
        port: 80,
        addrs: Vec::new(),
        weight: 1,
        max_fails: 1,
        fail_timeout: std::time::Duration::from_secs(10),
        backup: false,
        down: false,
        max_conns: 0,
        span: d.name.span,
    };
    for w in &d.args[1..] {
        let p = w.as_str();
        let invalid = || Msg::own(format!("invalid parameter \"{p}\""));
        if let Some(v) = p.strip_prefix("weight=") {
            server.weight = parse_number(v).filter(|n| *n > 0).ok_or_else(invalid)?;
        } else if let Some(v) = p.strip_prefix("max_fails=") {
            server.max_fails = parse_number(v).ok_or_else(invalid)?;
        } else if let Some(v) = p.strip_prefix("fail_timeout=") {
            server.fail_timeout = parse_time(v, true).ok_or_else(invalid)?;
        } else if let Some(v) = p.strip_prefix("max_conns=") {
            server.max_conns = parse_number(v).ok_or_else(invalid)?;
        } else if p == "backup" {
            if matches!(
                up.method,
                Balancing::IpHash | Balancing::Hash { .. } | Balancing::Random { .. }
            ) {
                return Err(Msg::own(format!(
                    "balancing method does not support parameter \"{p}\""
                )));
            }
            server.backup = true;
        } else if p == "down" {
            server.down = true;
        } else {
            return Err(invalid());
        }
    }
    if let Some(path) = socket {
        server.addrs = vec![PeerAddr::Unix(path.into())];
        up.servers.push(server);
        return Ok(());
    }
    if text.contains('/') {
        return Err(Msg::own(format!("invalid host in upstream \"{text}\"")));
    }
    let (host, port) = split_host_port(text);
    if host.is_empty() {
        return Err(Msg::own(format!("no host in upstream \"{text}\"")));
    }
    if let Some(p) = port {
        server.port = parse_port(p)
            .ok_or_else(|| Msg::own(format!("invalid port in upstream \"{text}\"")))?;
    }
    server.addrs = b
        .resolver
        .resolve(host, server.port)
        .map_err(|e| Msg::own(format!("{e} in upstream \"{text}\"")))?
        .into_iter()
        .map(Into::into)
        .collect();
    server.host = host.to_string();
    up.servers.push(server);
    Ok(())
}

/// `ip_hash`, `least_conn` and `hash KEY [consistent]`
/// (`ngx_http_upstream_ip_hash`, `ngx_http_upstream_least_conn`,
/// `ngx_http_upstream_hash`): the method replaces any set before,
/// with nginx's warning; a `keepalive` before it is lost with it (nginx's
/// keepalive wraps the method it finds, so it must come after).
pub fn balancing(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let Frame::Upstream(up) = f else {
        return Ok(());
    };
    if up.method != Balancing::RoundRobin || up.keepalive.is_some() {
        b.warn_at(d, "load balancing method redefined");
        up.keepalive = None;
    }
    up.method = match d.name() {
        "ip_hash" => Balancing::IpHash,
        "least_conn" => Balancing::LeastConn,
        // `ngx_http_upstream_random`: `two`, then only `least_conn`
        "random" => {
            let invalid = |w: &str| Msg::own(format!("invalid parameter \"{w}\""));
            match (
                d.args.first().map(|w| w.as_str()),
                d.args.get(1).map(|w| w.as_str()),
            ) {
                (None, _) => Balancing::Random { two: false },
                (Some("two"), None | Some("least_conn")) => Balancing::Random { two: true },
                (Some("two"), Some(other)) => return Err(invalid(other)),
                (Some(other), _) => return Err(invalid(other)),
            }
        }
        _ => {
            let key = arg(d, 0);
            b.use_template(key)?;
            let consistent = match d.args.get(1).map(|w| w.as_str()) {
                None => false,
                Some("consistent") => true,
                Some(other) => return Err(Msg::own(format!("invalid parameter \"{other}\""))),
            };
            Balancing::Hash {
                key: key.to_string(),
                consistent,
            }
        }
    };
    Ok(())
}

/// `keepalive N` in an upstream.
pub fn keepalive(_: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let Frame::Upstream(up) = f else {
        return Ok(());
    };
    if up.keepalive.is_some() {
        return Err(Msg::directive("is duplicate"));
    }
    let v = arg(d, 0);
    let n = parse_number(v)
        .filter(|n| *n > 0)
        .ok_or_else(|| Msg::own(format!("invalid value \"{v}\" in \"keepalive\" directive")))?;
    up.keepalive = Some(n);
    Ok(())
}
