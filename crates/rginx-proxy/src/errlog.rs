//! `error_log`: a `tracing` subscriber that writes nginx's error log lines
//! (`2026/11/25 21:59:53 [error] 967#967: *1 connect() failed ...`) to the
//! configured files or stderr, each with its own lowest level.

use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rginx_core::model::{ErrorLog, LogLevel};
use rginx_core::plan::{format_time, TimeFormat};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Where error log lines go.
enum Sink {
    Stderr,
    File(Mutex<File>),
}

/// The subscriber: each distinct target opened once, and the lists of
/// targets (with their levels) events are written to: the main level's
/// first, then those of the http, server and location levels. An event
/// with a `log_set = N` field goes to list N (0: the main level's).
pub struct ErrorLogSubscriber {
    sinks: Vec<Sink>,
    lists: Vec<Vec<(usize, LogLevel)>>,
    next_span: AtomicU64,
}

/// nginx's name and rank of a `tracing` level.
fn nginx_level(level: &Level) -> LogLevel {
    match *level {
        Level::ERROR => LogLevel::Error,
        Level::WARN => LogLevel::Warn,
        Level::INFO => LogLevel::Info,
        _ => LogLevel::Debug,
    }
}

fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Emerg => "emerg",
        LogLevel::Alert => "alert",
        LogLevel::Crit => "crit",
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Notice => "notice",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
    }
}

impl ErrorLogSubscriber {
    /// Opens every target (`stderr` or a file, appended to) of the main
    /// level's list and of `others`. With no main-level list, errors go to
    /// stderr, as Debian's nginx is built to do.
    pub fn open(
        main: &[ErrorLog],
        others: &[Vec<ErrorLog>],
    ) -> std::io::Result<ErrorLogSubscriber> {
        let stderr_default = [ErrorLog {
            path: "stderr".to_string(),
            level: LogLevel::Error,
        }];
        let main = if main.is_empty() {
            &stderr_default[..]
        } else {
            main
        };
        let mut paths: Vec<&str> = Vec::new();
        let mut sinks = Vec::new();
        let mut lists = Vec::new();
        for list in std::iter::once(main).chain(others.iter().map(Vec::as_slice)) {
            let mut entries = Vec::new();
            for log in list {
                let index = match paths.iter().position(|p| *p == log.path) {
                    Some(i) => i,
                    None => {
                        sinks.push(if log.path == "stderr" {
                            Sink::Stderr
                        } else {
                            let file = std::fs::OpenOptions::new()
                                .create(true)
                                .append(true)
                                .open(&log.path)?;
                            Sink::File(Mutex::new(file))
                        });
                        paths.push(&log.path);
                        sinks.len() - 1
                    }
                };
                entries.push((index, log.level));
            }
            lists.push(entries);
        }
        Ok(ErrorLogSubscriber {
            sinks,
            lists,
            next_span: AtomicU64::new(1),
        })
    }
}

/// An event's text, the list it goes to, and whether it is an nginx
/// `alert` (a level `tracing` does not have: such events are errors with
/// `alert = true`).
struct Message(String, usize, bool);

impl Visit for Message {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "log_set" {
            self.1 = usize::try_from(value).unwrap_or(0);
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "alert" {
            self.2 = value;
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            use std::fmt::Write as _;
            let _ = write!(self.0, "{value:?}");
        }
    }
}

impl Subscriber for ErrorLogSubscriber {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        let level = nginx_level(metadata.level());
        self.lists.iter().flatten().any(|(_, min)| level <= *min)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let level = nginx_level(event.metadata().level());
        let mut message = Message(String::new(), 0, false);
        event.record(&mut message);
        let level = if message.2 { LogLevel::Alert } else { level };
        let mut line = String::new();
        format_time(
            std::time::SystemTime::now(),
            TimeFormat::ErrorLog,
            &mut line,
        );
        let pid = std::process::id();
        line.push_str(&format!(
            " [{}] {pid}#{pid}: {}\n",
            level_name(level),
            message.0
        ));
        let list = self.lists.get(message.1).or(self.lists.first());
        for (index, min) in list.into_iter().flatten() {
            if level > *min {
                continue;
            }
            let Some(sink) = self.sinks.get(*index) else {
                continue;
            };
            match sink {
                Sink::Stderr => {
                    let _ = std::io::stderr().write_all(line.as_bytes());
                }
                Sink::File(f) => {
                    if let Ok(mut f) = f.lock() {
                        let _ = f.write_all(line.as_bytes());
                    }
                }
            }
        }
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
