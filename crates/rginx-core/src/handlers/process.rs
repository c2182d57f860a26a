//! The main and events levels: worker processes and connections, the event
//! method, `user`.

use rginx_config::Directive;

use crate::build::{Builder, Frame, Msg};
use crate::model::Value;
use crate::values::parse_number;

use super::{arg, duplicate_check, setting};

/// `worker_processes N | auto`
pub fn worker_processes(_: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let s = f.settings();
    duplicate_check(s, "worker_processes")?;
    let v = arg(d, 0);
    let value = if v == "auto" {
        Value::Text("auto".into())
    } else {
        Value::Number(parse_number(v).ok_or_else(|| Msg::directive("invalid value"))?)
    };
    s.insert("worker_processes", setting(d, value));
    Ok(())
}

/// `pid FILE`: under the prefix when relative (`ngx_core_module_init_conf`
/// makes it a full name).
pub fn pid(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let s = f.settings();
    duplicate_check(s, "pid")?;
    let file = b.options.full_name(arg(d, 0));
    s.insert("pid", setting(d, Value::Text(file)));
    Ok(())
}

/// `worker_connections N`
pub fn worker_connections(
    _: &mut Builder<'_>,
    d: &Directive,
    f: &mut Frame<'_>,
) -> Result<(), Msg> {
    let s = f.settings();
    duplicate_check(s, "worker_connections")?;
    let n = parse_number(arg(d, 0))
        .ok_or_else(|| Msg::own(format!("invalid number \"{}\"", arg(d, 0))))?;
    s.insert("worker_connections", setting(d, Value::Number(n)));
    Ok(())
}

/// `use method`: only epoll exists on Linux builds.
pub fn event_type(_: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let s = f.settings();
    duplicate_check(s, "use")?;
    let v = arg(d, 0);
    if v != "epoll" {
        return Err(Msg::own(format!("invalid event type \"{v}\"")));
    }
    s.insert("use", setting(d, Value::Text(v.to_string())));
    Ok(())
}

/// `user name [group]`: as root the accounts must exist (the group
/// defaults to the user's name); otherwise it is ignored with nginx's
/// warning.
pub fn user(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let s = f.settings();
    duplicate_check(s, "user")?;
    if !b.options.as_root {
        b.warn_at(
            d,
            "the \"user\" directive makes sense only if the master process runs with super-user privileges, ignored",
        );
        return Ok(());
    }
    let user = arg(d, 0);
    if !b.resolver.user_exists(user) {
        return Err(Msg::own(format!("getpwnam(\"{user}\") failed")));
    }
    let group = d.args.get(1).map_or(user, |w| w.as_str());
    if !b.resolver.group_exists(group) {
        return Err(Msg::own(format!("getgrnam(\"{group}\") failed")));
    }
    let s = f.settings();
    let words = d.args.iter().map(|w| w.as_str().to_string()).collect();
    s.insert("user", setting(d, Value::Words(words)));
    Ok(())
}
