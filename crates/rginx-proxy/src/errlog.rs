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

/// The subscriber: one sink per `error_log`.
pub struct ErrorLogSubscriber {
    sinks: Vec<(Sink, LogLevel)>,
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
    /// Opens every target (`stderr` or a file, appended to). With none
    /// configured, errors go to stderr, as Debian's nginx is built to do.
    pub fn open(logs: &[ErrorLog]) -> std::io::Result<ErrorLogSubscriber> {
        let mut sinks = Vec::new();
        for log in logs {
            let sink = if log.path == "stderr" {
                Sink::Stderr
            } else {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log.path)?;
                Sink::File(Mutex::new(file))
            };
            sinks.push((sink, log.level));
        }
        if sinks.is_empty() {
            sinks.push((Sink::Stderr, LogLevel::Error));
        }
        Ok(ErrorLogSubscriber {
            sinks,
            next_span: AtomicU64::new(1),
        })
    }
}

struct Message(String);

impl Visit for Message {
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
        self.sinks.iter().any(|(_, min)| level <= *min)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let level = nginx_level(event.metadata().level());
        let mut message = Message(String::new());
        event.record(&mut message);
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
        for (sink, min) in &self.sinks {
            if level > *min {
                continue;
            }
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
