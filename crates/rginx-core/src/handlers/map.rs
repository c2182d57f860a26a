//! `map` blocks.

use rginx_config::Directive;

use crate::build::{Builder, Frame, Msg};
use crate::model::{MapConf, MapEntry};

use super::arg;

/// `map source $variable { ... }`
pub fn map(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let Frame::Http(http) = f else { return Ok(()) };
    b.use_template(arg(d, 0))?;
    let var = arg(d, 1);
    let Some(name) = var.strip_prefix('$') else {
        return Err(Msg::own(format!("invalid variable name \"{var}\"")));
    };
    b.define_variable(name);
    let mut map = MapConf {
        source: arg(d, 0).to_string(),
        variable: name.to_string(),
        span: d.name.span,
        ..MapConf::default()
    };
    // a set: a map of 100,000 keys loads in linear time (keys borrowed
    // from the syntax tree unless they need lower-casing)
    let mut seen_keys: foldhash::HashSet<std::borrow::Cow<'_, str>> = foldhash::HashSet::default();
    map.entries.reserve(d.children().len());
    for entry in d.children() {
        if entry.block.is_some() {
            b.error_at_end(entry, "unexpected \"{\"");
            return Ok(());
        }
        let key = entry.name.as_str();
        if entry.args.is_empty() && key == "hostnames" {
            map.hostnames = true;
            continue;
        }
        if entry.args.is_empty() && key == "volatile" {
            map.volatile = true;
            continue;
        }
        if entry.args.len() != 1 {
            b.error_at_end(entry, "invalid number of the map parameters");
            return Ok(());
        }
        let value = entry.args[0].as_str().to_string();
        if let Err(m) = b.use_template(&value) {
            b.report(entry, m);
            return Ok(());
        }
        if key == "default" {
            if map.default.is_some() {
                b.error_at_end(entry, "duplicate default map parameter");
                return Ok(());
            }
            map.default = Some(value);
            continue;
        }
        if let Some(re) = key.strip_prefix("~*") {
            if let Err(m) = b.compile_regex(re, true) {
                b.report(entry, m);
                return Ok(());
            }
        } else if let Some(re) = key.strip_prefix('~') {
            if let Err(m) = b.compile_regex(re, false) {
                b.report(entry, m);
                return Ok(());
            }
        } else {
            let bare = key.strip_prefix('\\').unwrap_or(key);
            let folded = if bare.bytes().any(|b| b.is_ascii_uppercase()) {
                std::borrow::Cow::Owned(bare.to_ascii_lowercase())
            } else {
                std::borrow::Cow::Borrowed(bare)
            };
            if !seen_keys.insert(folded) {
                b.error_at_end(entry, format!("conflicting parameter \"{key}\""));
                return Ok(());
            }
        }
        map.entries.push(MapEntry {
            key: key.to_string(),
            value,
            span: entry.name.span,
        });
    }
    http.maps.push(map);
    Ok(())
}
