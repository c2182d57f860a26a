//! The TLS directives with rules of their own (`ngx_http_ssl_module`):
//! certificate and key lists, the session cache. What the files hold is
//! checked where they are loaded (rginx-proxy's `tls`), as nginx checks
//! them when it merges a server's configuration.

use rginx_config::Directive;

use crate::build::{Builder, Frame, Msg};
use crate::model::{FileRef, Value};

use super::{arg, setting};

/// The directive's name as the table spells it (the key its setting is
/// kept under).
fn spec_name(d: &Directive) -> &'static str {
    crate::table::lookup(d.name.as_str())
        .next()
        .map_or("ssl_certificate", |spec| spec.name)
}

/// The file a directive names, by its full name; a name with variables
/// is refused (`what`: what to name instead).
fn file_ref(b: &Builder<'_>, d: &Directive, what: &str) -> Result<FileRef, Msg> {
    let name = arg(d, 0);
    if name.contains('$') {
        return Err(Msg::own(format!(
            "variables in \"{}\" are not supported by rginx (name {what})",
            d.name.as_str()
        )));
    }
    Ok(FileRef {
        path: b.conf_name(name),
        span: d.name.span,
    })
}

/// `ssl_certificate FILE` and `ssl_certificate_key FILE` (and
/// `ssl_session_ticket_key FILE`): each may repeat
/// (a server with an RSA and an ECDSA certificate lists both, each key in
/// the same place as its certificate).
pub fn ssl_file_list(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    // nginx 1.22 loads a certificate named with variables on each handshake
    let file = file_ref(b, d, "the files")?;
    let name = arg(d, 0);
    if name.starts_with("data:") || name.starts_with("engine:") {
        return Err(Msg::own(format!(
            "\"{name}\" in \"{}\" is not supported by rginx (name a PEM file)",
            d.name.as_str()
        )));
    }
    let key = spec_name(d);
    let settings = f.settings();
    match settings.get_mut(key).map(|s| &mut s.value) {
        Some(Value::Files(list)) => list.push(file),
        _ => {
            settings.insert(key, setting(d, Value::Files(vec![file])));
        }
    }
    Ok(())
}

/// A file a directive names once (`proxy_ssl_trusted_certificate`,
/// `proxy_ssl_certificate`, `proxy_ssl_certificate_key`), by its full
/// name (`ngx_conf_full_name` with `conf_prefix`, as nginx reads them).
pub fn conf_file(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let file = file_ref(b, d, "the file")?;
    super::duplicate_check(f.settings(), d.name.as_str())?;
    let key = spec_name(d);
    f.settings()
        .insert(key, setting(d, Value::Files(vec![file])));
    Ok(())
}

/// `ssl_session_cache off | none | [builtin[:size]] [shared:name:size]`
/// (`ngx_http_ssl_session_cache`, with its messages). rginx keeps the
/// sessions of each worker in its memory: the value is how many it keeps
/// (`shared:`'s size counted as nginx fills it), or `off` / `none` (the
/// default: sessions are offered but not kept).
pub fn ssl_session_cache(_: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    // sessions held: OpenSSL's builtin cache, and a shared zone's size
    // (nginx: one megabyte holds about 4000 sessions)
    let (mut builtin, mut shared) = (0u64, 0u64);
    let mut mode = None;
    for w in &d.args {
        let value = w.as_str();
        let invalid = || Msg::own(format!("invalid session cache \"{value}\""));
        match value {
            "off" => mode = Some("off"),
            "none" => mode = Some("none"),
            // OpenSSL's SSL_SESSION_CACHE_MAX_SIZE_DEFAULT
            "builtin" => builtin = 20_480,
            _ => {
                if let Some(n) = value.strip_prefix("builtin:").filter(|n| !n.is_empty()) {
                    builtin = crate::values::parse_number(n).ok_or_else(invalid)?;
                } else if let Some(rest) = value.strip_prefix("shared:").filter(|r| !r.is_empty()) {
                    let (zone, size) = rest.split_once(':').ok_or_else(invalid)?;
                    if zone.is_empty() {
                        return Err(invalid());
                    }
                    let bytes = crate::values::parse_size(size).ok_or_else(invalid)?;
                    if bytes < 8 * 4096 {
                        return Err(Msg::own(format!("session cache \"{value}\" is too small")));
                    }
                    shared = bytes / 256;
                } else {
                    return Err(invalid());
                }
            }
        }
    }
    let value = match (builtin.max(shared), mode) {
        (0, mode) => Value::Choice(mode.unwrap_or("none")),
        (n, _) => Value::Number(n),
    };
    f.settings().insert("ssl_session_cache", setting(d, value));
    Ok(())
}

/// `ssl on|off` (`ngx_http_ssl_enable`): deprecated, as nginx warns; `on`
/// in the default server of an address makes its connections TLS.
pub fn ssl_enable(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let on = match arg(d, 0).to_ascii_lowercase().as_str() {
        "on" => true,
        "off" => false,
        other => {
            return Err(Msg::own(format!(
                "invalid value \"{other}\" in \"ssl\" directive, it must be \"on\" or \"off\""
            )))
        }
    };
    super::duplicate_check(f.settings(), "ssl")?;
    b.warn_at(
        d,
        "the \"ssl\" directive is deprecated, use the \"listen ... ssl\" directive instead",
    );
    f.settings().insert("ssl", setting(d, Value::Flag(on)));
    Ok(())
}

/// `ssl_early_data on|off`: rginx does not take 0-RTT data, so `on` is
/// refused rather than accepted and ignored.
pub fn ssl_early_data(_: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    match arg(d, 0) {
        "off" => {
            f.settings()
                .insert("ssl_early_data", setting(d, Value::Flag(false)));
            Ok(())
        }
        "on" => Err(Msg::own(
            "\"ssl_early_data on\" is not supported by rginx: TLS 1.3 early data (0-RTT) can be replayed, and rginx does not accept it",
        )),
        other => Err(Msg::own(format!(
            "invalid value \"{other}\" in \"ssl_early_data\" directive, it must be \"on\" or \"off\""
        ))),
    }
}
