//! Answers and response shaping: `return`, `error_page`, `internal`,
//! `add_header`, `expires`, `types`.

use rginx_config::Directive;

use crate::build::{Builder, Frame, Msg};
use crate::model::{AddHeader, ErrorPageConf, Expires, ExpiresTime, Value};

use super::{arg, duplicate_check, setting};

/// `return CODE [TEXT] | URL` (`ngx_http_rewrite_return`). Only a
/// level's first one can run: the rewrite module stops at it.
pub fn return_(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let first = arg(d, 0);
    let invalid = || Msg::own(format!("invalid return code \"{first}\""));
    // ngx_atoi: digits only
    let number = first
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| first.parse::<u32>().ok())
        .flatten();
    let (code, text) = match number.ok_or(()) {
        Ok(code) if code > 999 => return Err(invalid()),
        Ok(code) => (code as u16, d.args.get(1).map(|w| w.as_str())),
        Err(_)
            if d.args.len() == 1
                && ["http://", "https://", "$scheme"]
                    .iter()
                    .any(|p| first.starts_with(p)) =>
        {
            (302, Some(first))
        }
        Err(_) => return Err(invalid()),
    };
    if let Some(text) = text {
        b.use_template(text)?;
    }
    let settings = f.settings();
    if !settings.contains("return") {
        let value = Value::Return {
            code,
            text: text.map(str::to_string),
        };
        settings.insert("return", setting(d, value));
    }
    Ok(())
}

/// `error_page CODE ... [=[RESPONSE]] URI` (`ngx_http_core_error_page`).
pub fn error_page(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let n = d.args.len();
    let invalid = |w: &str| Msg::own(format!("invalid value \"{w}\""));
    let digits = |w: &str| w.bytes().all(|c| c.is_ascii_digit()) && !w.is_empty();
    let second_last = arg(d, n - 2);
    let (overwrite, codes_end) = match second_last.strip_prefix('=') {
        Some(_) if n - 2 == 0 => return Err(invalid(second_last)),
        Some("") => (Some(0), n - 2),
        Some(code) if digits(code) => (
            Some(code.parse::<u16>().map_err(|_| invalid(second_last))?),
            n - 2,
        ),
        Some(_) => return Err(invalid(second_last)),
        None => (None, n - 1),
    };
    let target = arg(d, n - 1);
    b.use_template(target)?;
    let mut codes = Vec::new();
    for w in &d.args[..codes_end] {
        let w = w.as_str();
        let code = digits(w)
            .then(|| w.parse::<u32>().ok())
            .flatten()
            .filter(|c| *c != 499)
            .ok_or_else(|| invalid(w))?;
        if !(300..=599).contains(&code) {
            return Err(Msg::own(format!(
                "value \"{w}\" must be between 300 and 599"
            )));
        }
        codes.push(code as u16);
    }
    let entry = ErrorPageConf {
        codes,
        overwrite,
        target: target.to_string(),
    };
    let settings = f.settings();
    match settings.get_mut("error_page").map(|s| &mut s.value) {
        Some(Value::ErrorPages(list)) => list.push(entry),
        _ => {
            settings.insert("error_page", setting(d, Value::ErrorPages(vec![entry])));
        }
    }
    Ok(())
}

/// `internal`: the location answers internal redirects only.
pub fn internal(_: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    f.settings()
        .insert("internal", setting(d, Value::Flag(true)));
    Ok(())
}

/// `add_header NAME VALUE [always]` (`ngx_http_headers_add`).
pub fn add_header(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let value = arg(d, 1);
    if !value.is_empty() {
        b.use_template(value)?;
    }
    let always = match d.args.get(2).map(|w| w.as_str()) {
        None => false,
        Some("always") => true,
        Some(other) => return Err(Msg::own(format!("invalid parameter \"{other}\""))),
    };
    let header = AddHeader {
        name: arg(d, 0).to_string(),
        value: value.to_string(),
        always,
    };
    let settings = f.settings();
    match settings.get_mut("add_header").map(|s| &mut s.value) {
        Some(Value::AddHeaders(list)) => list.push(header),
        _ => {
            settings.insert("add_header", setting(d, Value::AddHeaders(vec![header])));
        }
    }
    Ok(())
}

/// `expires [modified] TIME | epoch | max | off | @TIME`
/// (`ngx_http_headers_expires`).
pub fn expires(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    duplicate_check(f.settings(), "expires")?;
    let (modified, value) = match d.args.len() {
        1 => (false, arg(d, 0)),
        _ if arg(d, 0) == "modified" => (true, arg(d, 1)),
        _ => return Err(Msg::directive("invalid value")),
    };
    let expires = if b.use_template(value)? {
        Expires::Variable {
            value: value.to_string(),
            modified,
        }
    } else {
        Expires::Fixed(ExpiresTime::parse(value, modified).map_err(Msg::directive)?)
    };
    f.settings()
        .insert("expires", setting(d, Value::Expires(expires)));
    Ok(())
}

/// `types { type ext ...; }`: accepted, checked for shape, ignored.
pub fn types(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let mut types: Vec<(String, String)> = Vec::new();
    for entry in d.children() {
        if entry.block.is_some() {
            b.error_at_end(entry, "unexpected \"{\"");
            return Ok(());
        }
        // `ngx_http_core_type`: a repeated extension takes the later type
        for ext in &entry.args {
            let ext = ext.as_str().to_ascii_lowercase();
            if let Some(previous) = types.iter_mut().find(|(e, _)| *e == ext) {
                let message = format!(
                    "duplicate extension \"{ext}\", content type: \"{}\", previous content type: \"{}\"",
                    entry.name(),
                    previous.1
                );
                b.warn_at(entry, message);
                previous.1 = entry.name().to_string();
            } else {
                types.push((ext, entry.name().to_string()));
            }
        }
    }
    f.settings()
        .insert("types", setting(d, Value::Types(types)));
    Ok(())
}

/// `limit_rate RATE`: bytes per second to the client (0: no limit).
pub fn limit_rate(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    complex_size(b, d, f, "limit_rate")
}

/// `limit_rate_after SIZE`: what goes at full speed first.
pub fn limit_rate_after(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    complex_size(b, d, f, "limit_rate_after")
}

/// A size, or a value with variables that is one once evaluated
/// (`ngx_http_set_complex_value_size_slot`): kept as the size, or as text.
fn complex_size(
    b: &mut Builder<'_>,
    d: &Directive,
    f: &mut Frame<'_>,
    key: &'static str,
) -> Result<(), Msg> {
    duplicate_check(f.settings(), key)?;
    let value = arg(d, 0);
    let value = if b.use_template(value)? {
        Value::Text(value.to_string())
    } else {
        Value::Size(
            crate::values::parse_size(value).ok_or_else(|| Msg::directive("invalid value"))?,
        )
    };
    f.settings().insert(key, setting(d, value));
    Ok(())
}
