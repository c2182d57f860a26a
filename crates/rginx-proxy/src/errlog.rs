//! `error_log`: a `tracing` subscriber that writes nginx's error log lines
//! (`2026/11/25 21:59:53 [error] 967#967: *1 connect() failed ...`) to the
//! configured files or stderr, each with its own lowest level.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

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

/// The subscriber: writes each event to the targets of its list. A reload
/// or a log reopening replaces the targets through an [`ErrorLogHandle`].
pub struct ErrorLogSubscriber {
    targets: Arc<RwLock<Arc<Targets>>>,
    next_span: AtomicU64,
}

/// Controls a subscriber installed as the global default.
#[derive(Clone)]
pub struct ErrorLogHandle {
    targets: Arc<RwLock<Arc<Targets>>>,
}

/// Each distinct target opened once, and the lists of targets (with their
/// levels) events are written to: the main level's first, then those of
/// the http, server and location levels. An event with a `log_set = N`
/// field goes to list N (0: the main level's).
struct Targets {
    sinks: Vec<Arc<Sink>>,
    /// The path of each sink (`stderr` for standard error).
    paths: Vec<String>,
    lists: Vec<Vec<(usize, LogLevel)>>,
}

/// nginx's name and rank of a `tracing` level.
/// nginx's `NGX_MAX_ERROR_STR`: the longest error log line.
const MAX_ERROR_STR: usize = 2048;

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

fn open_sink(path: &str) -> std::io::Result<Sink> {
    if path == "stderr" {
        return Ok(Sink::Stderr);
    }
    let file = std::fs::OpenOptions::new()
        .mode(crate::process::LOG_MODE)
        .create(true)
        .append(true)
        .open(path)?;
    Ok(Sink::File(Mutex::new(file)))
}

impl Targets {
    /// Opens every target (`stderr` or a file, appended to) of the main
    /// level's list and of `others`. With no main-level list, errors go to
    /// stderr, as Debian's nginx is built to do.
    /// Targets `previous` has open are shared, not opened again (the
    /// process may no longer be allowed to open them).
    fn open(
        main: &[ErrorLog],
        others: &[Vec<ErrorLog>],
        previous: Option<&Targets>,
    ) -> std::io::Result<Targets> {
        let stderr_default = [ErrorLog {
            path: "stderr".to_string(),
            level: LogLevel::Error,
        }];
        let main = if main.is_empty() {
            &stderr_default[..]
        } else {
            main
        };
        let mut targets = Targets {
            sinks: Vec::new(),
            paths: Vec::new(),
            lists: Vec::new(),
        };
        for list in std::iter::once(main).chain(others.iter().map(Vec::as_slice)) {
            let mut entries = Vec::new();
            for log in list {
                let index = match targets.paths.iter().position(|p| *p == log.path) {
                    Some(i) => i,
                    None => {
                        let kept = previous.and_then(|p| {
                            let i = p.paths.iter().position(|x| *x == log.path)?;
                            p.sinks.get(i).cloned()
                        });
                        let sink = match kept {
                            Some(sink) => sink,
                            None => Arc::new(open_sink(&log.path)?),
                        };
                        targets.sinks.push(sink);
                        targets.paths.push(log.path.clone());
                        targets.sinks.len() - 1
                    }
                };
                entries.push((index, log.level));
            }
            targets.lists.push(entries);
        }
        Ok(targets)
    }

    /// The same targets opened again (after logrotate moved the files).
    fn reopened(&self) -> std::io::Result<Targets> {
        let sinks = self
            .paths
            .iter()
            .map(|p| open_sink(p).map(Arc::new))
            .collect::<std::io::Result<_>>()?;
        Ok(Targets {
            sinks,
            paths: self.paths.clone(),
            lists: self.lists.clone(),
        })
    }
}

impl ErrorLogSubscriber {
    /// Opens the targets of the main level's list and of `others`: see
    /// [`ErrorLogHandle::replace`].
    pub fn open(
        main: &[ErrorLog],
        others: &[Vec<ErrorLog>],
    ) -> std::io::Result<ErrorLogSubscriber> {
        Ok(ErrorLogSubscriber {
            targets: Arc::new(RwLock::new(Arc::new(Targets::open(main, others, None)?))),
            next_span: AtomicU64::new(1),
        })
    }

    /// The handle that replaces or reopens its targets later.
    pub fn handle(&self) -> ErrorLogHandle {
        ErrorLogHandle {
            targets: self.targets.clone(),
        }
    }

    fn targets(&self) -> Arc<Targets> {
        self.targets
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ErrorLogHandle {
    /// Writes to the targets of a new configuration from now on (a
    /// reload); nothing changes when one cannot be opened.
    pub fn replace(&self, main: &[ErrorLog], others: &[Vec<ErrorLog>]) -> std::io::Result<()> {
        let current = self
            .targets
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let targets = Targets::open(main, others, Some(&current))?;
        self.swap(targets);
        Ok(())
    }

    /// Opens the same files again (`rginx -s reopen`, after logrotate
    /// moved them); nothing changes when one cannot be opened.
    pub fn reopen(&self) -> std::io::Result<()> {
        let current = self
            .targets
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        self.swap(current.reopened()?);
        Ok(())
    }

    fn swap(&self, targets: Targets) {
        *self.targets.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(targets);
        // the levels may have changed: `tracing` asks `enabled` again
        tracing::callsite::rebuild_interest_cache();
    }
}

/// An event's text, the list it goes to, and the nginx level `tracing`
/// does not have, if it is one: errors with `crit = true`, `alert = true` or
/// `emerg = true`, information with `notice = true`.
struct Message(String, usize, Option<LogLevel>);

impl Visit for Message {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "log_set" {
            self.1 = usize::try_from(value).unwrap_or(0);
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        let level = match field.name() {
            "alert" => LogLevel::Alert,
            "crit" => LogLevel::Crit,
            "emerg" => LogLevel::Emerg,
            "notice" => LogLevel::Notice,
            _ => return,
        };
        if value {
            self.2 = Some(level);
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
        // notice lines are `info` events: a `notice` list takes them too
        let level = if level == LogLevel::Info {
            LogLevel::Notice
        } else {
            level
        };
        self.targets()
            .lists
            .iter()
            .flatten()
            .any(|(_, min)| level <= *min)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let level = nginx_level(event.metadata().level());
        let mut message = Message(String::new(), 0, None);
        event.record(&mut message);
        let level = message.2.unwrap_or(level);
        let mut line = String::new();
        format_time(
            std::time::SystemTime::now(),
            TimeFormat::ErrorLog,
            &mut line,
        );
        let pid = std::process::id();
        line.push_str(&format!(
            " [{}] {pid}#{pid}: {}",
            level_name(level),
            message.0
        ));
        // nginx builds a line in NGX_MAX_ERROR_STR (2048) bytes, its line
        // feed included, and cuts what does not fit (ngx_log_error_core)
        if line.len() > MAX_ERROR_STR - 1 {
            let mut cut = MAX_ERROR_STR - 1;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
        }
        line.push('\n');
        let targets = self.targets();
        let list = targets.lists.get(message.1).or(targets.lists.first());
        for (index, min) in list.into_iter().flatten() {
            if level > *min {
                continue;
            }
            let Some(sink) = targets.sinks.get(*index) else {
                continue;
            };
            match &**sink {
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
