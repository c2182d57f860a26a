//! `log_format` and `access_log`, compiled: the formats with their
//! escaping, the targets of each level, and a line as nginx writes it
//! (`ngx_http_log_module.c`).

use super::*;
use crate::model::LogBuffer;

/// nginx's predefined `combined` log format.
pub(super) const COMBINED: &str =
    "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\"";

/// A `log_format`, compiled.
#[derive(Debug, Clone)]
pub(super) struct CompiledFormat {
    /// Its name (`combined` for nginx's own).
    pub(super) name: String,
    pub(super) template: Template,
    /// `escape=`.
    pub(super) escape: LogEscape,
}

impl CompiledFormat {
    /// The formats of `http`: `combined` first, then the configuration's.
    pub(super) fn all(
        formats: &[crate::model::LogFormat],
        names: &Names,
    ) -> Result<Vec<CompiledFormat>, RuntimeError> {
        let mut all = vec![CompiledFormat {
            name: "combined".to_string(),
            template: Template::compile_log(COMBINED, names)?,
            escape: LogEscape::Default,
        }];
        for f in formats {
            all.push(CompiledFormat {
                name: f.name.clone(),
                template: Template::compile_log(&f.format, names)?,
                escape: LogEscape::named(&f.escape),
            });
        }
        Ok(all)
    }

    /// Appends its line for a request to `line` (without the line feed):
    /// literal text as it is, each variable escaped
    /// (`ngx_http_log_variable` and its `escape=` kin). Returns how many
    /// more bytes than it wrote nginx reserves for the line: the log
    /// module's own variables count at their longest
    /// (`ngx_http_log_vars`), which decides when a buffer is written.
    pub(super) fn render(&self, ctx: &mut Ctx<'_>, line: &mut Vec<u8>) -> usize {
        let mut value = String::new();
        let mut slack = 0;
        for part in self.template.parts() {
            let v = match part {
                Part::Literal(s) => {
                    line.extend_from_slice(s.as_bytes());
                    continue;
                }
                Part::Var(v) => v,
            };
            let before = line.len();
            match (v, ctx.req.remote.ip()) {
                (Var::BinaryRemoteAddr, IpAddr::V4(ip)) => self.escape.write(&ip.octets(), line),
                (Var::BinaryRemoteAddr, IpAddr::V6(ip)) => self.escape.write(&ip.octets(), line),
                _ => {
                    value.clear();
                    ctx.var(v, &mut value);
                    self.escape.write(value.as_bytes(), line);
                }
            }
            if let Some(longest) = reserved_length(v) {
                slack += longest.saturating_sub(line.len() - before);
            }
        }
        slack
    }
}

/// The length nginx reserves for one of the log module's own variables,
/// whatever its value (`ngx_http_log_vars`: `NGX_TIME_T_LEN + 4`,
/// `NGX_INT_T_LEN`, `NGX_OFF_T_LEN`, `NGX_SIZE_T_LEN`, on 64 bits).
fn reserved_length(v: &Var) -> Option<usize> {
    const INT64_LEN: usize = "-9223372036854775808".len();
    match v {
        Var::Pipe => Some(1),
        Var::TimeLocal => Some("28/Sep/1970:12:00:00 +0600".len()),
        Var::TimeIso8601 => Some("1970-09-28T12:00:00+06:00".len()),
        Var::Msec => Some(INT64_LEN + 4),
        Var::Response(name) => match &**name {
            "request_time" => Some(INT64_LEN + 4),
            "status" | "bytes_sent" | "body_bytes_sent" | "request_length" => Some(INT64_LEN),
            _ => None,
        },
        _ => None,
    }
}

/// One `access_log`, compiled.
#[derive(Debug, Clone)]
pub(super) struct CompiledAccessLog {
    /// The file (with variables: per request).
    pub(super) path: Template,
    /// Its format's place in the runtime's list.
    pub(super) format: usize,
    /// `if=`: no line when it is empty or `0`.
    pub(super) condition: Option<Template>,
    /// The file's buffer, when this `access_log` gives it one.
    pub(super) buffer: Option<LogBuffer>,
}

/// A line for an access log file, made at the end of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLine {
    /// The file.
    pub path: String,
    /// The line, with its line feed.
    pub line: Vec<u8>,
    /// The room nginx makes for it in a buffer (its length, and more for
    /// some variables: see `CompiledFormat::render`).
    pub reserve: usize,
}

pub(super) fn compile_access_logs(
    settings: &Settings,
    names: &Names,
    formats: &[CompiledFormat],
) -> Result<Vec<CompiledAccessLog>, RuntimeError> {
    let Some(crate::model::Value::AccessLogs(logs)) = settings.get("access_log").map(|s| &s.value)
    else {
        return Ok(Vec::new());
    };
    logs.iter()
        .map(|l| {
            let format = formats.iter().position(|f| f.name == l.format);
            // the path may hold variables, evaluated per request
            Ok(CompiledAccessLog {
                path: Template::compile(&l.path, names)?,
                format: format.unwrap_or(0),
                condition: l
                    .condition
                    .as_deref()
                    .map(|c| Template::compile(c, names))
                    .transpose()?,
                buffer: l.buffer,
            })
        })
        .collect()
}

/// How a `log_format` escapes the values of its variables
/// (`ngx_http_log_compile_format`'s `escape=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogEscape {
    /// `\xHH` for `"`, `\\` and bytes outside 0x20..0x7e; a missing
    /// value is `-` (`ngx_http_log_variable`).
    Default,
    /// JSON string escapes (`ngx_escape_json`); a missing value is
    /// nothing.
    Json,
    /// The bytes as they are; a missing value is nothing.
    None,
}

impl LogEscape {
    /// The mode `log_format ... escape=NAME` names.
    pub fn named(name: &str) -> LogEscape {
        match name {
            "json" => LogEscape::Json,
            "none" => LogEscape::None,
            _ => LogEscape::Default,
        }
    }

    /// Appends `value` to a log line, escaped. rginx's values are empty
    /// where nginx's are not found.
    pub fn write(self, value: &[u8], out: &mut Vec<u8>) {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        match self {
            LogEscape::Default if value.is_empty() => out.push(b'-'),
            LogEscape::Default => {
                for &b in value {
                    if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
                        out.extend_from_slice(&[
                            b'\\',
                            b'x',
                            HEX[usize::from(b >> 4)],
                            HEX[usize::from(b & 15)],
                        ]);
                    } else {
                        out.push(b);
                    }
                }
            }
            LogEscape::Json => {
                for &b in value {
                    match b {
                        b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        b'\r' => out.extend_from_slice(b"\\r"),
                        b'\t' => out.extend_from_slice(b"\\t"),
                        0x08 => out.extend_from_slice(b"\\b"),
                        0x0c => out.extend_from_slice(b"\\f"),
                        0..=0x1f => out.extend_from_slice(&[
                            b'\\',
                            b'u',
                            b'0',
                            b'0',
                            HEX[usize::from(b >> 4)],
                            HEX[usize::from(b & 15)],
                        ]),
                        _ => out.push(b),
                    }
                }
            }
            LogEscape::None => out.extend_from_slice(value),
        }
    }
}
