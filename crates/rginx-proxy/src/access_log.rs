//! A worker's access log files, written by a thread of their own.
//!
//! A finished request hands its lines to the writer thread through a
//! queue and goes on: the request path makes no write system call and
//! takes no lock shared with the other requests' writes. The thread
//! writes each line as nginx does (`ngx_http_log_handler`,
//! `ngx_http_log_write`):
//! - to a file without a buffer, at once; under load (lines come while
//!   the thread writes) within about a millisecond, the lines of which
//!   are written in one call per file, in order (a wake-up of the thread
//!   per line costs the worker more than nginx's write per line);
//! - to a file with `buffer=`, into the buffer, which is written when the
//!   next line does not fit, when `flush=` passed since its first line,
//!   at a reopen and when the worker ends; a line larger than the whole
//!   buffer is written by itself;
//! - with `gzip`, each write of the buffer as a gzip member of its own
//!   (`ngx_http_log_gzip`), which `zcat` reads as one stream.
//!
//! The thread starts with the first line, so a master, which forks
//! workers after opening the files, never has one.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rginx_core::model::LogBuffer;
use rginx_core::plan::AccessLine;

/// Files named with variables a worker keeps open at once (nginx opens
/// and closes them per line without `open_log_file_cache`).
const MAX_VARIABLE_FILES: usize = 64;

/// The access log files named without variables, by path, each with its
/// buffer.
type OpenFiles = HashMap<String, (Arc<File>, Option<LogBuffer>)>;

/// An engine's access log files.
pub(crate) struct AccessLogFiles {
    /// The files named without variables, opened at start (perhaps as
    /// root, before the process gave up its privileges), with the buffer
    /// of each.
    opened: Mutex<OpenFiles>,
    /// The writer thread, from the first line on.
    writer: OnceLock<Writer>,
}

struct Writer {
    queue: Arc<Queue>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Jobs between the requests and the writer thread.
struct Queue {
    state: Mutex<QueueState>,
    /// Rung when the first job arrives in an empty queue, or at the end.
    bell: Condvar,
}

/// How long the writer gathers lines under load: a line then reaches its
/// file within about this (nginx writes it at once).
const GATHER: Duration = Duration::from_millis(1);

#[derive(Default)]
struct QueueState {
    jobs: Vec<Job>,
    /// No more jobs: the thread writes what it has and ends.
    closed: bool,
    /// The thread could not be made: lines are written by their request.
    orphan: bool,
    /// The last batch had more than one job.
    busy: bool,
}

enum Job {
    Line(AccessLine),
    /// The files were opened again (`SIGUSR1`): buffers are written to
    /// the old ones first.
    Reopened(OpenFiles),
}

impl AccessLogFiles {
    /// No file open yet.
    pub(crate) fn new() -> AccessLogFiles {
        AccessLogFiles {
            opened: Mutex::new(HashMap::new()),
            writer: OnceLock::new(),
        }
    }

    /// Opens `files` (each with its buffer), taking those `previous` has
    /// open rather than opening them again: a reloading process may no
    /// longer be allowed to. nginx's words on failure.
    pub(crate) fn open(
        &self,
        files: Vec<(String, Option<LogBuffer>)>,
        previous: Option<&AccessLogFiles>,
    ) -> Result<(), String> {
        let kept = previous.map(|p| p.opened.lock().unwrap_or_else(PoisonError::into_inner));
        let mut opened = HashMap::new();
        for (path, buffer) in files {
            let file = match kept.as_ref().and_then(|k| k.get(&path)) {
                Some((file, _)) => file.clone(),
                None => Arc::new(open_file(&path)?),
            };
            opened.insert(path, (file, buffer));
        }
        *self.opened.lock().unwrap_or_else(PoisonError::into_inner) = opened;
        Ok(())
    }

    /// Opens the files again (after logrotate moved them); those named
    /// with variables are opened again on their next line.
    pub(crate) fn reopen(&self) -> Result<(), String> {
        let mut opened = self.opened.lock().unwrap_or_else(PoisonError::into_inner);
        let mut fresh = HashMap::new();
        for (path, (_, buffer)) in opened.iter() {
            fresh.insert(path.clone(), (Arc::new(open_file(path)?), *buffer));
        }
        *opened = fresh.clone();
        drop(opened);
        if let Some(writer) = self.writer.get() {
            writer.send(Job::Reopened(fresh));
        }
        Ok(())
    }

    /// Hands `line` to the writer thread, starting it on first use.
    pub(crate) fn write(&self, line: AccessLine) {
        let writer = self.writer.get_or_init(|| {
            let files = self
                .opened
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            Writer::start(files)
        });
        writer.send(Job::Line(line));
    }

    /// Writes what the buffers hold and stops the thread: the worker is
    /// ending (nginx flushes its buffered logs as its cycle's pool goes).
    pub(crate) fn close(&self) {
        if let Some(writer) = self.writer.get() {
            writer.stop();
        }
    }
}

impl Drop for AccessLogFiles {
    fn drop(&mut self) {
        self.close();
    }
}

impl Writer {
    fn start(files: OpenFiles) -> Writer {
        let queue = Arc::new(Queue {
            state: Mutex::new(QueueState::default()),
            bell: Condvar::new(),
        });
        let theirs = queue.clone();
        let thread = std::thread::Builder::new()
            .name("rginx-access-log".to_string())
            .spawn(move || Lines::new(files).run(&theirs))
            .ok();
        queue.lock().orphan = thread.is_none();
        Writer {
            queue,
            thread: Mutex::new(thread),
        }
    }

    fn send(&self, job: Job) {
        let mut state = self.queue.lock();
        if state.closed || state.orphan {
            // no thread (it could not be made, or the worker is ending):
            // written here, unbuffered
            drop(state);
            if let Job::Line(line) = job {
                if let Ok(mut file) = open_file(&line.path) {
                    let _ = file.write_all(&line.line);
                }
            }
            return;
        }
        state.jobs.push(job);
        // only the first job wakes the thread: the others of its batch
        // cost a push
        if state.jobs.len() == 1 {
            self.queue.bell.notify_one();
        }
    }

    fn stop(&self) {
        self.queue.lock().closed = true;
        self.queue.bell.notify_one();
        if let Some(thread) = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = thread.join();
        }
    }
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The jobs queued, once there are some, `until` passed or the queue
    /// closed (then `None`).
    fn take(&self, until: Option<Instant>) -> Option<Vec<Job>> {
        let mut state = self.lock();
        while state.jobs.is_empty() && !state.closed {
            match until {
                Some(at) => {
                    let left = at.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Some(Vec::new());
                    }
                    state = self
                        .bell
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                None => {
                    state = self
                        .bell
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
        if state.jobs.is_empty() && state.closed {
            return None;
        }
        // under load (the last batch had company), the lines of the next
        // moment join this batch: one wake-up and one write per file for
        // them, where a wake-up per line costs the worker more than
        // nginx's write per line; a lone line is written at once
        if state.busy {
            drop(state);
            std::thread::sleep(GATHER);
            state = self.lock();
        }
        let jobs = std::mem::take(&mut state.jobs);
        state.busy = jobs.len() > 1;
        Some(jobs)
    }
}

/// The writer thread's state: every file it writes.
struct Lines {
    files: HashMap<String, Target>,
    /// How many of `files` are named with variables.
    variable: usize,
}

struct Target {
    file: Arc<File>,
    /// Lines taken in this batch for a file without a buffer.
    queued: Vec<u8>,
    buffer: Option<Buffered>,
    /// Opened for a line (a name with variables).
    variable: bool,
}

struct Buffered {
    spec: LogBuffer,
    data: Vec<u8>,
    /// When its first line came (for `flush=`).
    since: Option<Instant>,
}

impl Lines {
    fn new(opened: OpenFiles) -> Lines {
        let files = opened
            .into_iter()
            .map(|(path, (file, buffer))| (path, Target::new(file, buffer, false)))
            .collect();
        Lines { files, variable: 0 }
    }

    fn run(mut self, queue: &Queue) {
        while let Some(jobs) = queue.take(self.next_flush()) {
            for job in jobs {
                self.take(job);
            }
            self.write_queued();
            self.flush_due(Instant::now());
        }
        self.write_queued();
        for target in self.files.values_mut() {
            target.flush();
        }
    }

    fn take(&mut self, job: Job) {
        match job {
            Job::Line(line) => self.line(line),
            Job::Reopened(opened) => {
                self.write_queued();
                for target in self.files.values_mut() {
                    target.flush();
                }
                *self = Lines::new(opened);
            }
        }
    }

    fn line(
        &mut self,
        AccessLine {
            path,
            line,
            reserve,
        }: AccessLine,
    ) {
        if !self.files.contains_key(&path) {
            // a name with variables: opened for its first line, as the
            // worker's user
            if self.variable >= MAX_VARIABLE_FILES {
                self.write_queued();
                self.files.retain(|_, t| !t.variable);
                self.variable = 0;
            }
            let Ok(file) = open_file(&path) else { return };
            self.files
                .insert(path.clone(), Target::new(Arc::new(file), None, true));
            self.variable += 1;
        }
        if let Some(target) = self.files.get_mut(&path) {
            target.add(&line, reserve);
        }
    }

    fn write_queued(&mut self) {
        for target in self.files.values_mut() {
            if !target.queued.is_empty() {
                let _ = (&*target.file).write_all(&target.queued);
                target.queued.clear();
            }
        }
    }

    /// The soonest `flush=` deadline of a buffer holding lines.
    fn next_flush(&self) -> Option<Instant> {
        self.files
            .values()
            .filter_map(|t| t.buffer.as_ref()?.flush_at())
            .min()
    }

    fn flush_due(&mut self, now: Instant) {
        for target in self.files.values_mut() {
            if let Some(buffer) = &mut target.buffer {
                if buffer.flush_at().is_some_and(|at| at <= now) {
                    buffer.write_to(&target.file);
                }
            }
        }
    }
}

impl Target {
    fn new(file: Arc<File>, buffer: Option<LogBuffer>, variable: bool) -> Target {
        Target {
            file,
            queued: Vec::new(),
            buffer: buffer.map(|spec| Buffered {
                spec,
                data: Vec::with_capacity(spec.size),
                since: None,
            }),
            variable,
        }
    }

    /// Takes a line, for which nginx makes `reserve` bytes of room
    /// (`ngx_http_log_handler`'s buffer rules).
    fn add(&mut self, line: &[u8], reserve: usize) {
        let Some(buffer) = &mut self.buffer else {
            self.queued.extend_from_slice(line);
            return;
        };
        if reserve > buffer.spec.size - buffer.data.len() {
            buffer.write_to(&self.file);
        }
        if reserve <= buffer.spec.size - buffer.data.len() {
            if buffer.data.is_empty() {
                buffer.since = Some(Instant::now());
            }
            buffer.data.extend_from_slice(line);
        } else {
            write_out(&self.file, line, buffer.spec.gzip);
        }
    }

    /// Writes what the buffer holds (`ngx_http_log_flush`).
    fn flush(&mut self) {
        if let Some(buffer) = &mut self.buffer {
            buffer.write_to(&self.file);
        }
    }
}

impl Buffered {
    /// When `flush=` wants it written: that long after its first line.
    fn flush_at(&self) -> Option<Instant> {
        Some(self.since? + self.spec.flush?)
    }

    /// Writes what it holds to `file` and empties it.
    fn write_to(&mut self, file: &File) {
        write_out(file, &self.data, self.spec.gzip);
        self.data.clear();
        self.since = None;
    }
}

/// Writes `data` to `file`, as one gzip member at `gzip`'s level when
/// set.
fn write_out(mut file: &File, data: &[u8], gzip: Option<u32>) {
    if data.is_empty() {
        return;
    }
    match gzip {
        None => {
            let _ = file.write_all(data);
        }
        Some(level) => {
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(data.len() / 4 + 64),
                flate2::Compression::new(level),
            );
            if encoder.write_all(data).is_ok() {
                if let Ok(member) = encoder.finish() {
                    let _ = file.write_all(&member);
                }
            }
        }
    }
}

/// Opens an access log file for appending, created with nginx's mode.
fn open_file(path: &str) -> Result<File, String> {
    std::fs::OpenOptions::new()
        .mode(crate::process::LOG_MODE)
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            format!(
                "open() \"{path}\" failed ({})",
                crate::process::os_error(&e)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new directory for one test.
    fn scratch(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("rginx-alog-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn read(path: &std::path::Path) -> Vec<u8> {
        std::fs::read(path).unwrap_or_default()
    }

    fn line(path: &std::path::Path, text: &str) -> AccessLine {
        AccessLine {
            path: path.to_string_lossy().into_owned(),
            line: text.as_bytes().to_vec(),
            reserve: text.len(),
        }
    }

    #[test]
    fn plain_lines_are_written_in_order_and_buffered_ones_at_close() {
        let dir = scratch("order");
        let (plain, held) = (dir.join("plain.log"), dir.join("held.log"));
        let logs = AccessLogFiles::new();
        let buffer = LogBuffer {
            size: 1024,
            flush: None,
            gzip: None,
        };
        logs.open(
            vec![
                (plain.to_string_lossy().into_owned(), None),
                (held.to_string_lossy().into_owned(), Some(buffer)),
            ],
            None,
        )
        .unwrap();
        for i in 0..100 {
            logs.write(line(&plain, &format!("{i}\n")));
        }
        logs.write(line(&held, "held\n"));
        let expected: String = (0..100).map(|i| format!("{i}\n")).collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        while read(&plain) != expected.as_bytes() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(read(&plain), expected.as_bytes());
        assert_eq!(read(&held), b"");
        logs.close();
        assert_eq!(read(&held), b"held\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_full_buffer_is_written_before_the_line_that_does_not_fit() {
        let dir = scratch("full");
        let path = dir.join("full.log");
        let file = Arc::new(open_file(&path.to_string_lossy()).unwrap());
        let spec = LogBuffer {
            size: 8,
            flush: None,
            gzip: None,
        };
        let mut target = Target::new(file, Some(spec), false);
        target.add(b"abcde\n", 6);
        assert_eq!(read(&path), b"");
        // room is made for what nginx reserves, not what is written
        target.add(b"f\n", 3);
        assert_eq!(read(&path), b"abcde\n");
        // larger than the whole buffer: written by itself, after it
        target.add(b"0123456789\n", 11);
        assert_eq!(read(&path), b"abcde\nf\n0123456789\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn gzip_members_read_as_one_stream() {
        use std::io::Read as _;
        let dir = scratch("gz");
        let path = dir.join("gz.log");
        let file = open_file(&path.to_string_lossy()).unwrap();
        write_out(&file, b"one\n", Some(1));
        write_out(&file, b"two\n", Some(9));
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&read(&path)[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "one\ntwo\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
