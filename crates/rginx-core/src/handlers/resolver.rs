//! `resolver` (`ngx_http_core_resolver`, `ngx_resolver_create`): the name
//! servers a `proxy_pass` with variables asks for a host's addresses.

use std::sync::Arc;

use rginx_config::Directive;

use crate::build::{Builder, Frame, Msg};
use crate::model::{ResolverConf, Value};
use crate::values::parse_time;

use super::{duplicate_check, parse_port, setting, split_host_port};

/// `resolver ADDRESS ... [valid=TIME] [ipv6=on|off]`: each address is a
/// host (resolved now, as nginx does at load) or IP, port 53 unless given.
pub fn resolver(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    duplicate_check(f.settings(), "resolver")?;
    let mut conf = ResolverConf {
        servers: Vec::new(),
        valid: None,
        ipv6: true,
    };
    for word in &d.args {
        let w = word.as_str();
        let invalid = || Msg::own(format!("invalid parameter: {w}"));
        if let Some(time) = w.strip_prefix("valid=") {
            conf.valid = Some(parse_time(time, true).ok_or_else(invalid)?);
            continue;
        }
        if let Some(flag) = w.strip_prefix("ipv6=") {
            conf.ipv6 = match flag {
                "on" => true,
                "off" => false,
                _ => return Err(invalid()),
            };
            continue;
        }
        // ngx_parse_url with port 53 by default
        let (host, port) = split_host_port(w);
        if host.is_empty() {
            return Err(Msg::own(format!("no host in resolver \"{w}\"")));
        }
        let port = match port {
            Some(p) => parse_port(p)
                .ok_or_else(|| Msg::own(format!("invalid port in resolver \"{w}\"")))?,
            None => 53,
        };
        let addrs = b
            .resolver
            .resolve(host, port)
            .map_err(|e| Msg::own(format!("{e} in resolver \"{w}\"")))?;
        conf.servers.extend(addrs);
    }
    if conf.servers.is_empty() {
        return Err(Msg::own("no name servers defined".to_string()));
    }
    f.settings()
        .insert("resolver", setting(d, Value::Resolver(Arc::new(conf))));
    Ok(())
}
