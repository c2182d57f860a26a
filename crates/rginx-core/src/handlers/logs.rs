//! `error_log`, `log_format` and `access_log`.

use rginx_config::Directive;

use crate::build::{Builder, Frame, Msg};
use crate::model::{AccessLog, ErrorLog, LogBuffer, LogFormat, LogLevel};
use crate::values::{parse_number, parse_size, parse_time};

use super::{arg, push_list, ListItem};

/// Log targets nginx has and rginx does not: refused rather than taken
/// for a file name.
fn unsupported_log_target(path: &str) -> Result<(), Msg> {
    for (prefix, what) in [("syslog:", "syslog"), ("memory:", "a memory buffer")] {
        if path.starts_with(prefix) {
            return Err(Msg::own(format!(
                "logging to {what} (\"{prefix}\") is not supported by rginx"
            )));
        }
    }
    Ok(())
}

/// `error_log path [level]`
pub fn error_log(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let level = match d.args.get(1) {
        None => LogLevel::Error,
        Some(w) => LogLevel::parse(w.as_str())
            .ok_or_else(|| Msg::own(format!("invalid log level \"{}\"", w.as_str())))?,
    };
    if d.args.len() > 2 {
        // nginx takes several levels only for debug_* masks
        let extra = arg(d, 2);
        return Err(Msg::own(format!("invalid log level \"{extra}\"")));
    }
    unsupported_log_target(arg(d, 0))?;
    let path = match arg(d, 0) {
        "stderr" => "stderr".to_string(),
        file => b.options.full_name(file),
    };
    let entry = ErrorLog { path, level };
    push_list(f.settings(), "error_log", d, ListItem::Error(entry));
    Ok(())
}

/// `log_format name [escape=default|json|none] string ...`
pub fn log_format(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let Frame::Http(http) = f else { return Ok(()) };
    let name = arg(d, 0);
    if name == "combined" || http.log_formats.iter().any(|l| l.name == name) {
        return Err(Msg::own(format!(
            "duplicate \"log_format\" name \"{name}\""
        )));
    }
    let mut rest = &d.args[1..];
    let mut escape = "default".to_string();
    if let Some(mode) = rest
        .first()
        .and_then(|w| w.as_str().strip_prefix("escape="))
    {
        if !matches!(mode, "default" | "json" | "none") {
            return Err(Msg::own(format!("unknown log format escaping \"{mode}\"")));
        }
        escape = mode.to_string();
        rest = &rest[1..];
    }
    let format: String = rest.iter().map(|w| w.as_str()).collect();
    b.use_log_template(&format)?;
    b.define_log_format(name);
    http.log_formats.push(LogFormat {
        name: name.to_string(),
        escape,
        format,
        span: d.name.span,
    });
    Ok(())
}

/// `access_log path [format [buffer=size] [gzip[=level]] [flush=time] [if=condition]] | off`
pub fn access_log(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let path = arg(d, 0);
    if path == "off" {
        if let Some(extra) = d.args.get(1) {
            return Err(Msg::own(format!(
                "invalid parameter \"{}\"",
                extra.as_str()
            )));
        }
        push_list(f.settings(), "access_log", d, ListItem::Access(None));
        return Ok(());
    }
    unsupported_log_target(path)?;
    b.use_template(path)?;
    let format = d.args.get(1).map_or("combined", |w| w.as_str());
    if !b.log_format_known(format) {
        return Err(Msg::own(format!("unknown log format \"{format}\"")));
    }
    let mut condition = None;
    let (mut size, mut flush, mut gzip) = (0, None, None);
    // ngx_http_log_set_log
    for w in d.args.iter().skip(2) {
        let p = w.as_str();
        if let Some(value) = p.strip_prefix("if=") {
            b.use_template(value)?;
            condition = Some(value.to_string());
        } else if let Some(value) = p.strip_prefix("buffer=") {
            size = parse_size(value)
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| Msg::own(format!("invalid buffer size \"{value}\"")))?;
        } else if let Some(value) = p.strip_prefix("flush=") {
            flush = Some(
                parse_time(value, false)
                    .filter(|t| !t.is_zero())
                    .ok_or_else(|| Msg::own(format!("invalid flush time \"{value}\"")))?,
            );
        } else if p == "gzip" || p.starts_with("gzip=") {
            if size == 0 {
                size = 64 * 1024;
            }
            gzip = Some(match p.strip_prefix("gzip=") {
                None => 1,
                Some(level) => parse_number(level)
                    .filter(|l| (1..=9).contains(l))
                    .map(|l| l as u32)
                    .ok_or_else(|| Msg::own(format!("invalid compression level \"{level}\"")))?,
            });
        } else {
            return Err(Msg::own(format!("invalid parameter \"{p}\"")));
        }
    }
    if flush.is_some() && size == 0 {
        return Err(Msg::own(format!(
            "no buffer is defined for access_log \"{path}\""
        )));
    }
    let buffer = (size > 0).then_some(LogBuffer { size, flush, gzip });
    if buffer.is_some() && path.contains('$') {
        return Err(Msg::own("buffered logs cannot have variables in name"));
    }
    // a path with variables is made per request (nginx: under the
    // location's root; rginx serves no root yet and takes it as it is)
    let path = if path.contains('$') {
        path.to_string()
    } else {
        b.options.full_name(path)
    };
    if let Some(buffer) = buffer {
        // one buffer per file: every `access_log` buffering it agrees
        if !b.buffer_log_file(&path, buffer) {
            return Err(Msg::own(format!(
                "access_log \"{}\" already defined with conflicting parameters",
                arg(d, 0)
            )));
        }
    }
    let entry = AccessLog {
        path,
        format: format.to_string(),
        condition,
        buffer,
    };
    push_list(f.settings(), "access_log", d, ListItem::Access(Some(entry)));
    Ok(())
}
