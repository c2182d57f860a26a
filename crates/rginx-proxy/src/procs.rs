//! The system calls of nginx's process model, wrapped: `fork`, blocked
//! signals taken with `sigtimedwait` (the master's loop), reaping
//! workers, a worker's death with its master, `daemon on`'s detaching, and
//! the counters placed in memory the workers share.

use std::io;
use std::os::unix::fs::OpenOptionsExt as _;
use std::time::Duration;

use rginx_core::stats::{Counters, COUNTERS};

use crate::process::os_error;

/// The signals nginx's master and workers obey.
pub const HANDLED: [libc::c_int; 8] = [
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCHLD,
];

/// `SIGHUP`, for callers without libc.
pub const RELOAD: libc::c_int = libc::SIGHUP;

/// nginx's names for the signals it logs (`signal 1 (SIGHUP) received`).
pub fn signal_name(signo: libc::c_int) -> &'static str {
    match signo {
        libc::SIGHUP => "SIGHUP",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGWINCH => "SIGWINCH",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGKILL => "SIGKILL",
        _ => "?",
    }
}

fn last_error(call: &str) -> String {
    format!("{call} failed ({})", os_error(&io::Error::last_os_error()))
}

fn signal_set(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set it is given; sigaddset adds
    // valid signal numbers to it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
        set
    }
}

/// Blocks [`HANDLED`] in this (single-threaded) process, so that they wait
/// for [`next_signal`] instead of killing it.
pub fn block_signals() -> Result<(), String> {
    let set = signal_set(&HANDLED);
    // SAFETY: sigprocmask reads the set and writes no old set.
    let rc = unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(last_error("sigprocmask()"));
    }
    Ok(())
}

/// Unblocks [`HANDLED`] again (a worker, after `fork`, before it takes the
/// signals its own way).
pub fn unblock_signals() {
    let set = signal_set(&HANDLED);
    // SAFETY: as in `block_signals`.
    unsafe {
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}

/// A signal taken, and who sent it.
#[derive(Debug, Clone, Copy)]
pub struct SignalInfo {
    /// The signal.
    pub signo: libc::c_int,
    /// The sender (0: the kernel).
    pub from: libc::pid_t,
    /// What `sigqueue` sent with it, if it was queued.
    pub queued: Option<libc::c_int>,
}

/// The next of the blocked [`HANDLED`] signals, waiting at most `timeout`.
pub fn next_signal(timeout: Duration) -> Option<SignalInfo> {
    let set = signal_set(&HANDLED);
    let wait = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: sigtimedwait writes the siginfo it is given; the union's
    // pid and value are read only for the signals that carry them.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let signo = libc::sigtimedwait(&set, &mut info, &wait);
        if signo <= 0 {
            return None;
        }
        let queued = (info.si_code == libc::SI_QUEUE)
            .then(|| info.si_value().sival_ptr as usize as libc::c_int);
        Some(SignalInfo {
            signo,
            from: info.si_pid(),
            queued,
        })
    }
}

/// Sends `signo` to `pid`.
pub fn send(pid: libc::pid_t, signo: libc::c_int) -> Result<(), String> {
    // SAFETY: kill takes two integers.
    if unsafe { libc::kill(pid, signo) } != 0 {
        return Err(last_error(&format!("kill({pid}, {signo})")));
    }
    Ok(())
}

/// Sends `signo` to `pid` with `value` (`sigqueue`): the master answers
/// `rginx -s reload` this way.
pub fn send_with(pid: libc::pid_t, signo: libc::c_int, value: libc::c_int) -> Result<(), String> {
    // SAFETY: sigqueue takes integers and a union passed by value.
    let rc = unsafe {
        libc::sigqueue(
            pid,
            signo,
            libc::sigval {
                sival_ptr: value as usize as *mut libc::c_void,
            },
        )
    };
    if rc != 0 {
        return Err(last_error(&format!("sigqueue({pid}, {signo})")));
    }
    Ok(())
}

/// A pipe: its read end and its write end.
pub fn pipe() -> Result<(std::fs::File, std::fs::File), String> {
    use std::os::fd::FromRawFd as _;
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two new descriptors, which the files then own.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(last_error("pipe()"));
        }
        Ok((
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        ))
    }
}

/// `SIGHUP` to `pid` with `value` (`rginx -s reload` asking for an
/// answer).
pub fn queue_reload(pid: libc::pid_t, value: libc::c_int) -> Result<(), String> {
    send_with(pid, libc::SIGHUP, value)
}

/// Where `fork` left this process.
pub enum Forked {
    /// The parent, with the child's pid.
    Parent(libc::pid_t),
    /// The child.
    Child,
}

/// Forks. Call it only while the process has one thread (the master):
/// the child then runs on with a consistent copy of everything.
pub fn fork() -> Result<Forked, String> {
    // SAFETY: the callers are single-threaded (the master never starts a
    // thread), so no lock is held by a thread the child does not have.
    match unsafe { libc::fork() } {
        -1 => Err(last_error("fork()")),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `exit(code)`.
    Code(i32),
    /// Killed by a signal.
    Signal(i32),
}

/// The children that ended since the last call.
pub fn reap() -> Vec<(libc::pid_t, Exit)> {
    let mut ended = Vec::new();
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status it is given.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return ended;
        }
        let exit = if libc::WIFSIGNALED(status) {
            Exit::Signal(libc::WTERMSIG(status))
        } else {
            Exit::Code(libc::WEXITSTATUS(status))
        };
        ended.push((pid, exit));
    }
}

/// A worker ends when its master does (killed, not only stopped): nginx's
/// workers notice their master's channel closing; a worker whose master
/// went is of no use and holds the listening sockets.
pub fn die_with_parent(parent: libc::pid_t) {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number; getppid
    // and _exit have no preconditions.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        if libc::getppid() != parent {
            libc::_exit(0);
        }
    }
}

/// `daemon on`: the process goes on in a child detached from the terminal
/// and session (`ngx_daemon`: `fork`, `setsid`, `umask(0)`, stdin and
/// stdout on /dev/null); the parent exits 0 once the child says it is
/// ready ([`Detached::ready`]), so that a service manager finds the pid
/// file written (nginx's parent exits at once, before the child writes it).
pub fn detach() -> Result<Detached, String> {
    let mut fds = [0; 2];
    // SAFETY: pipe writes two descriptors into the array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(last_error("pipe()"));
    }
    let (read, write) = (fds[0], fds[1]);
    match fork()? {
        Forked::Parent(_) => {
            // SAFETY: our own descriptors; read into a one-byte buffer.
            unsafe {
                libc::close(write);
                let mut byte = 0u8;
                let n = libc::read(read, (&mut byte as *mut u8).cast(), 1);
                libc::_exit(if n == 1 && byte == b'1' { 0 } else { 1 });
            }
        }
        Forked::Child => {}
    }
    // SAFETY: setsid, umask, open, dup2 and close on our own descriptors.
    unsafe {
        libc::close(read);
        if libc::setsid() == -1 {
            return Err(last_error("setsid()"));
        }
        libc::umask(0);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null == -1 {
            return Err(last_error("open(\"/dev/null\")"));
        }
        libc::dup2(null, libc::STDIN_FILENO);
        libc::dup2(null, libc::STDOUT_FILENO);
        if null > libc::STDERR_FILENO {
            libc::close(null);
        }
    }
    Ok(Detached { ready: write })
}

/// A detached process's line to the parent that waits for it.
pub struct Detached {
    ready: libc::c_int,
}

impl Detached {
    /// Lets the parent exit 0 (or 1, with `ok` false: the start failed).
    pub fn ready(self, ok: bool) {
        let byte = if ok { b'1' } else { b'0' };
        // SAFETY: a one-byte write to our pipe, then closing it.
        unsafe {
            libc::write(self.ready, (&byte as *const u8).cast(), 1);
            libc::close(self.ready);
        }
    }
}

/// Sends what the process writes to stderr to the file at `path` from
/// now on (`ngx_log_redirect_stderr`: nginx's stderr is its main error log
/// once that is a file, so a daemon holds no terminal or pipe of its
/// starter's).
pub fn stderr_to(path: &std::path::Path) -> Result<(), String> {
    use std::os::fd::AsRawFd as _;
    let file = std::fs::OpenOptions::new()
        .mode(crate::process::LOG_MODE)
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("open() \"{}\" failed ({})", path.display(), os_error(&e)))?;
    // SAFETY: dup2 onto descriptor 2 of a file we hold open; the file's
    // own descriptor closes when it drops, descriptor 2 stays.
    if unsafe { libc::dup2(file.as_raw_fd(), libc::STDERR_FILENO) } == -1 {
        return Err(last_error("dup2(STDERR_FILENO)"));
    }
    Ok(())
}

/// Places the counters in memory shared with the workers forked from now
/// on (nginx's shared memory for `ngx_stat_*`).
pub fn share_counters() -> Result<(), String> {
    let size = std::mem::size_of::<Counters>();
    // SAFETY: an anonymous shared mapping, zero-filled by the kernel;
    // zeroed memory is a valid `Counters` (atomics), and the mapping is
    // never unmapped, so the reference lives as long as the process.
    unsafe {
        let at = libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if at == libc::MAP_FAILED {
            return Err(last_error("mmap()"));
        }
        let counters: &'static Counters = &*(at as *const Counters);
        COUNTERS.place(counters);
    }
    Ok(())
}

/// The environment variable nginx passes its listening sockets in across
/// a binary upgrade (`NGINX=5;6;`): rginx reads and writes the same, so an
/// nginx master can hand its sockets to rginx and back.
pub const INHERITED_SOCKETS: &str = "NGINX";

/// The listening sockets a previous master left this process (`SIGUSR2`),
/// by address; the variable is removed so that no child sees it again.
pub fn inherited_listeners() -> Vec<(std::net::SocketAddr, std::net::TcpListener)> {
    use std::os::fd::FromRawFd as _;
    let Some(list) = std::env::var_os(INHERITED_SOCKETS) else {
        return Vec::new();
    };
    std::env::remove_var(INHERITED_SOCKETS);
    let mut listeners = Vec::new();
    for fd in list
        .to_string_lossy()
        .split([';', ':'])
        .filter_map(|n| n.parse::<libc::c_int>().ok())
    {
        // a descriptor that is no listening TCP socket is not taken
        let mut kind: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes an int into `kind`; the descriptor is
        // one the previous master left open for this process, owned by the
        // listener from here on.
        let listener = unsafe {
            let rc = libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_ACCEPTCONN,
                (&mut kind as *mut libc::c_int).cast(),
                &mut len,
            );
            if rc != 0 || kind == 0 {
                continue;
            }
            std::net::TcpListener::from_raw_fd(fd)
        };
        let _ = listener.set_nonblocking(true);
        if let Ok(addr) = listener.local_addr() {
            listeners.push((addr, listener));
        }
    }
    listeners
}

/// Starts the binary at `program` (`argv`, this process's arguments) as a
/// new master with the listening sockets `fds` (nginx's
/// `ngx_exec_new_binary`): a child of this one, which execs it with the
/// descriptors kept open and named in [`INHERITED_SOCKETS`].
pub fn exec_new_binary(
    program: &std::ffi::OsStr,
    argv: &[std::ffi::OsString],
    fds: &[libc::c_int],
) -> Result<libc::pid_t, String> {
    use std::os::unix::ffi::OsStrExt as _;
    let c = |s: &std::ffi::OsStr| std::ffi::CString::new(s.as_bytes()).ok();
    let path = c(program).ok_or("the binary's path holds a NUL byte")?;
    let args: Vec<std::ffi::CString> = argv.iter().filter_map(|a| c(a)).collect();
    let list: String = fds.iter().map(|fd| format!("{fd};")).collect();
    let mut env: Vec<std::ffi::CString> = std::env::vars_os()
        .filter(|(k, _)| k != INHERITED_SOCKETS)
        .filter_map(|(k, v)| {
            let mut pair = k.as_bytes().to_vec();
            pair.push(b'=');
            pair.extend_from_slice(v.as_bytes());
            std::ffi::CString::new(pair).ok()
        })
        .collect();
    env.extend(std::ffi::CString::new(format!("{INHERITED_SOCKETS}={list}")).ok());
    let mut arg_ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    arg_ptrs.push(std::ptr::null());
    let mut env_ptrs: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    match fork()? {
        Forked::Parent(pid) => Ok(pid),
        Forked::Child => {
            unblock_signals();
            // SAFETY: the child of a single-threaded fork: it clears
            // close-on-exec on the sockets and execs, with arrays built
            // before the fork; _exit if exec fails.
            unsafe {
                for fd in fds {
                    let flags = libc::fcntl(*fd, libc::F_GETFD);
                    libc::fcntl(*fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
                }
                libc::execve(path.as_ptr(), arg_ptrs.as_ptr(), env_ptrs.as_ptr());
                libc::_exit(2);
            }
        }
    }
}

/// The machine's offset from UTC at `utc` (seconds since the epoch), in
/// seconds: `localtime_r`'s `tm_gmtoff` (`TZ`, else `/etc/localtime`),
/// asked once a second per thread, as nginx's `ngx_time_update` asks it
/// once a second. For `rginx_core::plan::set_utc_offset_source`.
pub fn utc_offset(utc: u64) -> i64 {
    thread_local! {
        static CACHED: std::cell::Cell<Option<(u64, i64)>> = const { std::cell::Cell::new(None) };
    }
    if let Some((second, offset)) = CACHED.get() {
        if second == utc {
            return offset;
        }
    }
    let offset = libc::time_t::try_from(utc).map_or(0, |t| {
        // SAFETY: a plain C struct, all zeroes is a valid value
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: localtime_r writes only the `tm` it is given
        let done = unsafe { libc::localtime_r(&t, &mut tm) };
        if done.is_null() {
            0
        } else {
            tm.tm_gmtoff
        }
    });
    CACHED.set(Some((utc, offset)));
    offset
}
