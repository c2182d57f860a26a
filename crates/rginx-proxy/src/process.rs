//! The main context's process settings, applied as nginx applies them:
//! `worker_rlimit_nofile` (the open-file limit), `pid` (the file holding
//! the process id) and `user` (the account to run as once the listening
//! sockets are bound, when started as root).

use std::ffi::CString;
use std::io;
use std::path::Path;

/// `CODE: text` of an OS error, as nginx writes them (`2: No such file or
/// directory`).
pub fn os_error(e: &io::Error) -> String {
    let code = e.raw_os_error().unwrap_or(0);
    let text = io::Error::from_raw_os_error(code).to_string();
    let text = text.split(" (os error").next().unwrap_or("");
    format!("{code}: {text}")
}

/// nginx's words for a failed system call on a path:
/// `open() "logs/rginx.pid" failed (2: No such file or directory)`.
fn failed(call: &str, path: &str, e: &io::Error) -> String {
    format!("{call} \"{path}\" failed ({})", os_error(e))
}

/// Sets the soft and hard open-file limits (`worker_rlimit_nofile N`).
pub fn set_nofile(limit: u64) -> Result<(), String> {
    let value = libc::rlim_t::try_from(limit).unwrap_or(libc::RLIM_INFINITY);
    let rlimit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: setrlimit reads the struct we pass and nothing else.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) };
    if rc != 0 {
        return Err(format!(
            "setrlimit(RLIMIT_NOFILE, {limit}) failed ({})",
            os_error(&io::Error::last_os_error())
        ));
    }
    Ok(())
}

/// The mode nginx makes its pid and log files with
/// (`NGX_FILE_DEFAULT_ACCESS`): a daemon's umask is 0, as nginx's.
pub const LOG_MODE: u32 = 0o644;

/// Writes the process id and a newline to `path`, as nginx does.
pub fn write_pid(path: &Path) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .mode(LOG_MODE)
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(format!("{}\n", std::process::id()).as_bytes()))
        .map_err(|e| failed("open()", &path.display().to_string(), &e))
}

/// Removes the pid file when the process exits, as nginx does; where the
/// process may no longer remove it (it gave up root, and the directory is
/// root's) it empties it, so that no `-s` signals a stranger later.
pub fn remove_pid(path: &Path) {
    if std::fs::remove_file(path).is_err() {
        let _ = std::fs::write(path, "");
    }
}

/// The signals `rginx -s` sends, by nginx's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `reload`: SIGHUP.
    Reload,
    /// `quit`: SIGQUIT, a graceful shutdown.
    Quit,
    /// `stop`: SIGTERM, a fast shutdown.
    Stop,
    /// `reopen`: SIGUSR1, reopen the log files.
    Reopen,
}

impl Signal {
    /// The signal `rginx -s NAME` sends.
    pub fn from_name(name: &str) -> Option<Signal> {
        Some(match name {
            "reload" => Signal::Reload,
            "quit" => Signal::Quit,
            "stop" => Signal::Stop,
            "reopen" => Signal::Reopen,
            _ => return None,
        })
    }

    fn number(self) -> libc::c_int {
        match self {
            Signal::Reload => libc::SIGHUP,
            Signal::Quit => libc::SIGQUIT,
            Signal::Stop => libc::SIGTERM,
            Signal::Reopen => libc::SIGUSR1,
        }
    }
}

/// The process id in the pid file `path`; nginx's words when there is
/// none.
pub fn read_pid(path: &Path) -> Result<libc::pid_t, String> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| failed("open()", &shown, &e))?;
    text.trim()
        .parse::<libc::pid_t>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("invalid PID number \"{}\" in \"{shown}\"", text.trim()))
}

/// Reads the process id in the pid file `path` and sends it `signal`;
/// nginx's words when that fails.
pub fn signal_pid_file(path: &Path, signal: Signal) -> Result<(), String> {
    let pid = read_pid(path)?;
    // SAFETY: kill takes two integers and touches no memory of ours.
    let rc = unsafe { libc::kill(pid, signal.number()) };
    if rc != 0 {
        return Err(format!(
            "kill({pid}, {}) failed ({})",
            signal.number(),
            os_error(&io::Error::last_os_error())
        ));
    }
    Ok(())
}

/// Gives the allocator's free memory back to the system: the pages of
/// freed chunks inside the heap, not only its top, which glibc gives back
/// by itself. What the tasks of a burst of connections used stays the
/// process's otherwise, as free heap, after those connections went idle.
pub fn give_back_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes a size and only works on the allocator's
    // own structures, under its locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Whether the process runs as root (only then does `user` apply).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The id of a user account (`getpwnam`).
pub fn user_id(user: &str) -> Option<libc::uid_t> {
    let c_user = CString::new(user).ok()?;
    // SAFETY: getpwnam takes a NUL-terminated string and returns a pointer
    // into static storage (or null), read at once; it runs at start-up,
    // before any other thread looks accounts up.
    unsafe {
        let pw = libc::getpwnam(c_user.as_ptr());
        (!pw.is_null()).then(|| (*pw).pw_uid)
    }
}

/// The id of a group (`getgrnam`).
pub fn group_id(group: &str) -> Option<libc::gid_t> {
    let c_group = CString::new(group).ok()?;
    // SAFETY: as in `user_id`.
    unsafe {
        let gr = libc::getgrnam(c_group.as_ptr());
        (!gr.is_null()).then(|| (*gr).gr_gid)
    }
}

/// Runs the rest of the process as `user` and `group` (by default the
/// group named like the user, as nginx does): supplementary groups, then
/// the group, then the user. Call it only as root.
///
/// The files in `own` (the pid file and the log files, opened as root) are
/// given to the user first, as nginx's master does with the log files when
/// it reopens them: the process can then reopen them after logrotate
/// (`-s reopen`) and empty its pid file when it exits. A file that cannot
/// be given comes back in the list of warnings.
pub fn become_user(user: &str, group: Option<&str>, own: &[&Path]) -> Result<Vec<String>, String> {
    let group = group.unwrap_or(user);
    let uid = user_id(user).ok_or_else(|| format!("getpwnam(\"{user}\") failed"))?;
    let gid = group_id(group).ok_or_else(|| format!("getgrnam(\"{group}\") failed"))?;
    let c_user = CString::new(user).map_err(|_| format!("getpwnam(\"{user}\") failed"))?;
    let mut warnings = Vec::new();
    for path in own {
        if let Err(e) = std::os::unix::fs::chown(path, Some(uid), Some(gid)) {
            warnings.push(failed("chown()", &path.display().to_string(), &e));
        }
    }
    let check = |rc: libc::c_int, call: String| -> Result<(), String> {
        if rc == 0 {
            return Ok(());
        }
        Err(format!(
            "{call} failed ({})",
            os_error(&io::Error::last_os_error())
        ))
    };
    // SAFETY: plain system calls on ids looked up above; glibc applies
    // them to every thread of the process.
    unsafe {
        check(libc::setgid(gid), format!("setgid({gid})"))?;
        check(
            libc::initgroups(c_user.as_ptr(), gid),
            format!("initgroups({user}, {gid})"),
        )?;
        check(libc::setuid(uid), format!("setuid({uid})"))?;
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_file_holds_the_pid_and_a_newline() {
        let path = std::env::temp_dir().join(format!("rginx-pid-test-{}", std::process::id()));
        write_pid(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_pid_file_in_a_missing_directory_is_reported_like_nginx() {
        let e = write_pid(Path::new("/nonexistent-dir/rginx.pid")).unwrap_err();
        assert_eq!(
            e,
            "open() \"/nonexistent-dir/rginx.pid\" failed (2: No such file or directory)"
        );
    }
}
