//! Directive handlers: parse a directive's arguments into the model, with
//! nginx's messages for bad values. Simple value kinds are handled
//! generically in [`crate::build`]; these are the directives with their own
//! rules.

use rginx_config::Directive;

use crate::build::{Builder, Frame, Msg};
use crate::model::{AccessLog, ErrorLog, HeaderSetting, Setting, Settings, Value};
use crate::values::parse_number;

mod blocks;
mod buffers;
mod logs;
mod map;
mod process;
mod proxy;
mod resolver;
mod response;
mod tls;
mod upstream;

pub use blocks::*;
pub use buffers::*;
pub use logs::*;
pub use map::*;
pub use process::*;
pub use proxy::*;
pub use resolver::*;
pub use response::*;
pub use tls::*;
pub use upstream::*;

/// A directive handler: reads `directive` into the current `frame`.
pub type Handler = fn(&mut Builder<'_>, &Directive, &mut Frame<'_>) -> Result<(), Msg>;

fn arg(d: &Directive, i: usize) -> &str {
    d.args.get(i).map_or("", |w| w.as_str())
}

fn setting(d: &Directive, value: Value) -> Setting {
    Setting {
        value,
        span: d.name.span,
    }
}

/// Appends to a list-valued setting of the current level.
fn push_list(settings: &mut Settings, name: &'static str, d: &Directive, item: ListItem) {
    let entry = settings.get_mut(name);
    match (entry.map(|s| &mut s.value), item) {
        (Some(Value::Headers(list)), ListItem::Header(h)) => {
            // lists are short and kept for the life of the configuration
            list.reserve_exact(1);
            list.push(h);
        }
        // `off` anywhere at a level wins over the level's files, before or
        // after it (`llcf->off`, checked before the logs); a level's list
        // is empty only after an `off`
        (Some(Value::AccessLogs(list)), ListItem::Access(a)) => match a {
            Some(entry) if !list.is_empty() => list.push(entry),
            Some(_) => {}
            None => list.clear(),
        },
        (Some(Value::ErrorLogs(list)), ListItem::Error(e)) => list.push(e),
        (_, ListItem::Header(h)) => {
            settings.insert(name, setting(d, Value::Headers(vec![h])));
        }
        (_, ListItem::Access(a)) => {
            settings.insert(name, setting(d, Value::AccessLogs(a.into_iter().collect())));
        }
        (_, ListItem::Error(e)) => {
            settings.insert(name, setting(d, Value::ErrorLogs(vec![e])));
        }
    }
}

enum ListItem {
    Header(HeaderSetting),
    Access(Option<AccessLog>),
    Error(ErrorLog),
}

fn duplicate_check(settings: &Settings, name: &str) -> Result<(), Msg> {
    if settings.contains(name) {
        return Err(Msg::directive("is duplicate"));
    }
    Ok(())
}

/// How many children of a block are `name` directives (to size vectors
/// once: a server may hold thousands of locations).
fn count(d: &Directive, name: &str) -> usize {
    d.children().iter().filter(|c| c.name() == name).count()
}

/// Splits `host:port` as ngx_parse_url does for listen and upstream
/// addresses; `[v6]:port` keeps the brackets out of the host.
pub(crate) fn split_host_port(text: &str) -> (&str, Option<&str>) {
    if let Some(rest) = text.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            let host = &rest[..end];
            let after = &rest[end + 1..];
            return (host, after.strip_prefix(':'));
        }
        return (text, None);
    }
    // ngx_parse_inet_url splits an unbracketed address at its first colon
    match text.find(':') {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    }
}

pub(super) fn parse_port(text: &str) -> Option<u16> {
    parse_number(text)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|p| *p > 0)
}
