//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

pub mod golden;
pub mod tls;
pub mod wire;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A command running the built `rginx` binary.
pub fn rginx() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rginx"))
}

/// Runs `rginx check --no-lint -c NAME` inside `dir`.
pub fn check_in(dir: &Path, name: &str, extra: &[&str]) -> Output {
    rginx()
        .current_dir(dir)
        .arg("check")
        .args(extra)
        .arg("-c")
        .arg(name)
        .output()
        .expect("run rginx")
}

/// The first `rginx: [emerg]` line of a run's stderr.
pub fn first_emerg(output: &Output) -> Option<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .find(|l| l.starts_with("rginx: [emerg]"))
        .map(str::to_string)
}

/// Lines of stderr starting with `rginx: [warn]`.
pub fn warnings(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| l.starts_with("rginx: [warn]"))
        .map(str::to_string)
        .collect()
}

/// The top-level `*.conf` files of a fixture category, sorted.
pub fn fixtures(category: &str) -> Vec<String> {
    let dir = root().join("fixtures").join(category);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".conf"))
        .collect();
    names.sort();
    names
}

/// The expected lines next to a fixture.
pub fn expected(category: &str, name: &str) -> String {
    let path = root()
        .join("fixtures")
        .join(category)
        .join(name.replace(".conf", ".expected"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Path of the nginx binary, when installed. In CI (`CI` set) a missing
/// nginx is a failure, not a skip.
pub fn nginx() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/sbin/nginx");
    if path.exists() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!("nginx is required in CI (install the Debian package `nginx`)");
    }
    eprintln!("skipping: /usr/sbin/nginx is not installed");
    None
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates a fresh directory.
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("rginx-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `nginx -t` on a config in place (relative includes resolve against
/// its directory), with a throw-away prefix; returns (exit ok, first
/// `[emerg]` line rewritten as rginx prints it).
pub fn nginx_test(nginx: &Path, conf: &Path) -> (bool, Option<String>) {
    let prefix = TempDir::new("nginx");
    std::fs::create_dir_all(prefix.0.join("logs")).expect("logs dir");
    let output = Command::new(nginx)
        .arg("-t")
        .arg("-p")
        .arg(format!("{}/", prefix.0.display()))
        .arg("-c")
        .arg(conf)
        .arg("-e")
        .arg(prefix.0.join("logs/error.log"))
        .output()
        .expect("run nginx");
    let dir = conf.parent().expect("conf dir").display().to_string();
    let emerg = String::from_utf8_lossy(&output.stderr)
        .lines()
        .find(|l| l.starts_with("nginx: [emerg]"))
        .map(|l| {
            l.replacen("nginx: ", "rginx: ", 1)
                .replace(&format!("{dir}/"), "")
        });
    (output.status.success(), emerg)
}

/// Waits until a loopback port accepts connections, checking `tries`
/// times 20 ms apart.
pub fn wait_for_port(port: u16, tries: u32) {
    for _ in 0..tries {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the tests run as root (then rginx gives up root for `user`).
pub fn as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .is_ok_and(|s| s.lines().any(|l| l.starts_with("Uid:\t0\t")))
}

/// A scenario's steps as rginx went through them must be nginx's, and
/// each of nginx's must have held (none says `false`): a scenario nginx
/// itself fails proves nothing.
pub fn assert_same_steps(ours: &[String], theirs: &[String]) {
    assert_eq!(ours, theirs, "rginx's steps, then nginx's");
    assert!(
        theirs.iter().all(|l| !l.contains("false")),
        "nginx itself: {theirs:#?}"
    );
}

/// A free loopback port for a server under test: below the kernel's
/// ephemeral range, so that no `bind(port 0)` elsewhere (a test's backend,
/// in another thread) can be handed the same port between this check and
/// the server's own bind, as happened when the port came from that range.
pub fn free_port() -> u16 {
    // never the same one to two tests of this process (they run in
    // parallel, and a proxy that finds its port taken would go unnoticed
    // when the other one answers there)
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let (low, high) = (10_000u32, 30_000u32);
    // each test binary starts elsewhere: a server of the one before may
    // still be going away; ports ten apart, so that a test can take a few
    // in a row from one (tests/listen_ranges.rs)
    let start = std::process::id().wrapping_mul(7919) % (high - low);
    static TRIED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    loop {
        let i = TRIED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let offset = (start + i.wrapping_mul(10) + i / 2000) % (high - low);
        let port = (low + offset) as u16;
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if given.contains(&port) || std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        given.push(port);
        return port;
    }
}

/// A real nginx serving `http_body` (the content of `http { }`) in the
/// foreground; stopped when dropped.
pub struct NginxServer {
    child: std::process::Child,
    _prefix: TempDir,
}

impl NginxServer {
    /// Starts nginx and waits until `port` accepts connections.
    pub fn start(nginx: &Path, http_body: &str, port: u16) -> NginxServer {
        let prefix = TempDir::new("nginx-run");
        std::fs::create_dir_all(prefix.0.join("logs")).expect("logs");
        let conf = prefix.0.join("nginx.conf");
        let text = format!(
            "pid logs/nginx.pid;\nevents {{}}\nhttp {{\naccess_log off;\n{http_body}\n}}\n"
        );
        std::fs::write(&conf, text).expect("conf");
        let child = Command::new(nginx)
            .arg("-p")
            .arg(format!("{}/", prefix.0.display()))
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(prefix.0.join("logs/error.log"))
            .args(["-g", "daemon off; master_process off;"])
            .spawn()
            .expect("start nginx");
        wait_for_port(port, 100);
        NginxServer {
            child,
            _prefix: prefix,
        }
    }
}

impl NginxServer {
    /// Its process id (one process: `master_process off`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its error log (nginx was started with `-e` pointing there).
    pub fn error_log(&self) -> PathBuf {
        self._prefix.0.join("logs/error.log")
    }
}

impl Drop for NginxServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `rginx -c` (killed when dropped) and its directory.
pub struct Rginx(pub Child, pub TempDir);

impl Drop for Rginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx and rginx on the same `http { }` content, `body(port)`, each on
/// a free port; both stop when this is dropped.
pub struct ServerPair {
    /// nginx's port.
    pub nginx_port: u16,
    /// rginx's port.
    pub rginx_port: u16,
    /// The nginx.
    pub nginx: NginxServer,
    /// The rginx.
    pub rginx: Rginx,
}

impl ServerPair {
    /// Starts both and waits until each accepts connections.
    pub fn start(nginx: &Path, body: impl Fn(u16) -> String) -> ServerPair {
        let (nginx_port, rginx_port) = (free_port(), free_port());
        ServerPair {
            nginx_port,
            rginx_port,
            nginx: NginxServer::start(nginx, &body(nginx_port), nginx_port),
            rginx: start_rginx(&body(rginx_port), rginx_port),
        }
    }

    /// Both ports, nginx's first (as [`answers_differ`] takes them).
    pub fn ports(&self) -> (u16, u16) {
        (self.nginx_port, self.rginx_port)
    }
}

/// Starts rginx with `http_body` inside `http { }` and waits for `port`.
pub fn start_rginx(http_body: &str, port: u16) -> Rginx {
    start_rginx_main("", http_body, port)
}

/// Starts rginx with main-context lines before `events` and `http`.
pub fn start_rginx_main(main: &str, http_body: &str, port: u16) -> Rginx {
    start_rginx_full(main, "", http_body, port)
}

/// Starts rginx with main-context lines, the content of `events { }` and
/// that of `http { }`.
pub fn start_rginx_full(main: &str, events: &str, http_body: &str, port: u16) -> Rginx {
    // nginx's default of one worker (rginx's is one per core): balancing
    // state is per worker in both, so sequences compare only this way
    // in the foreground, so that the test holds the master process (its
    // workers end with it)
    let main = if main.contains("daemon") {
        main.to_string()
    } else {
        format!("daemon off;\n{main}")
    };
    let dir = TempDir::new("rginx-run");
    let conf = dir.0.join("rginx.conf");
    std::fs::write(
        &conf,
        format!("{main}\nevents {{ {events} }}\nhttp {{\n{http_body}\n}}\n"),
    )
    .expect("conf");
    let stderr = std::fs::File::create(dir.0.join("stderr.log")).expect("stderr file");
    let mut child = rginx()
        .arg("-c")
        .arg(&conf)
        .stderr(stderr)
        .spawn()
        .expect("start rginx");
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        // a config rginx refuses is a broken test, not a slow start
        if let Ok(Some(status)) = child.try_wait() {
            let said = std::fs::read_to_string(dir.0.join("stderr.log")).unwrap_or_default();
            panic!("rginx exited ({status}) instead of serving:\n{said}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Rginx(child, dir)
}

/// What nginx 1.22 signs its `Server` header and pages with
/// (`server_tokens on`, the default).
pub const NGINX_TOKEN: &str = "nginx/1.22.1";

/// What rginx signs them with.
pub const RGINX_TOKEN: &str = concat!("rginx/", env!("CARGO_PKG_VERSION"));

/// The whole answer to `request` for comparing nginx's with rginx's:
/// head lines but Date and Server, then the body after ` || `; ports and
/// signatures masked, and the length of an HTML answer (a page, signed).
pub fn masked_answer(port: u16, request: &str) -> String {
    let text = answer_text(port, request).replace(NGINX_TOKEN, RGINX_TOKEN);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let page = head.contains("Content-Type: text/html");
    let kept: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.starts_with("Date:") && !l.starts_with("Server:"))
        .map(|l| {
            if page && l.starts_with("Content-Length: ") {
                "Content-Length: PAGE"
            } else {
                l
            }
        })
        .collect();
    mask_ports(&format!("{} || {body}", kept.join(" | ")))
}

/// Sends `request` to nginx and to rginx (`ports`, in that order): their
/// [`masked_answer`]s, under `label`, when they differ.
pub fn answers_differ(
    ports: (u16, u16),
    request: &str,
    label: impl std::fmt::Display,
) -> Option<String> {
    let (a, b) = (
        masked_answer(ports.0, request),
        masked_answer(ports.1, request),
    );
    (a != b).then(|| format!("{label}:\n  nginx: {a}\n  rginx: {b}"))
}

/// Sends raw bytes on a new connection to 127.0.0.1:`port` and reads
/// until the server closes (or 5 s pass): the whole answer as text.
pub fn answer_text(port: u16, request: &str) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Every difference a differential test listed, or none: the count of
/// `asked` cases with each difference.
pub fn assert_no_differences(differences: &[String], asked: usize) {
    assert!(
        differences.is_empty(),
        "{} of {asked} differ:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

/// Sends raw bytes and returns (status line, body).
pub fn exchange(port: u16, request: &str) -> (String, String) {
    let out = answer_text(port, request);
    let status = out.lines().next().unwrap_or("").to_string();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The content of `http { }` in examples/websocket.conf (the seed's
/// configuration), with its backend and listening port replaced.
pub fn seed_http(port: u16, backend: std::net::SocketAddr) -> String {
    let seed = std::fs::read_to_string(root().join("examples/websocket.conf")).expect("seed");
    let http = seed
        .split_once("http {")
        .and_then(|(_, rest)| rest.rsplit_once('}'))
        .map(|(body, _)| body.to_string())
        .expect("http block");
    http.replace("127.0.0.1:9001", &backend.to_string())
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
}

/// A known difference from nginx: (case, why rginx answers otherwise,
/// rginx's own answer in the test's summary form).
pub type Listed<'a> = (&'a str, &'a str, &'a str);

/// Judges one case against a list of known differences from nginx: an
/// unlisted case must match nginx; a listed one must still differ, and
/// rginx must still answer it as the list says (`ours` is its answer now),
/// so that the list stays true and a change in rginx's answer is seen even
/// where it still differs. `Err` says what is wrong; `difference` describes
/// the mismatch of an unlisted case.
pub fn against_listed(
    name: &str,
    matches: bool,
    ours: &str,
    listed: &[Listed],
    list_name: &str,
    difference: impl FnOnce() -> String,
) -> Result<(), String> {
    match (matches, listed.iter().find(|(n, _, _)| *n == name)) {
        (true, None) => Ok(()),
        (false, None) => Err(difference()),
        (true, Some((_, why, _))) => Err(format!(
            "{name}: matches nginx now; take it off {list_name} ({why})"
        )),
        (false, Some((_, _, pinned))) if *pinned != ours => Err(format!(
            "rginx's own answer for {name} changed (it still differs from nginx; \
             if the change is meant, update its entry in {list_name}):\n  was: {pinned}\n  now: {ours}"
        )),
        (false, Some(_)) => Ok(()),
    }
}

/// `text` with every port number after a colon (`:` and four or five
/// digits) as `:PORT`, so that an answer that names the ports a test picked
/// can be pinned in a list of known differences.
pub fn mask_ports(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(':') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if (4..=5).contains(&digits) {
            out.push_str("PORT");
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

/// Reads a request head (through its empty line) a byte at a time, so
/// that nothing after it is consumed; `None` if the peer stops first.
pub fn read_request_head(stream: &mut impl Read) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(head)
}

/// The lines of `dir/NAME`, error-log lines as `[level] text` (without
/// time, pid and connection number), others as they are; the directory
/// as `DIR` and ports masked.
pub fn log_lines(dir: &Path, name: &str) -> Vec<String> {
    let log = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    let shown = dir.display().to_string();
    log.lines()
        .map(|l| {
            let line = error_line_text(l).unwrap_or_else(|| l.to_string());
            mask_ports(&line.replace(&shown, "DIR"))
        })
        .collect()
}

/// "TIME [warn] 12#12: *3 text" as "[warn] text".
fn error_line_text(line: &str) -> Option<String> {
    let (_, rest) = line.split_once(" [")?;
    let (level, rest) = rest.split_once("] ")?;
    let (_, rest) = rest.split_once(": *")?;
    let (_, text) = rest.split_once(' ')?;
    Some(format!("[{level}] {text}"))
}

/// The lines of `dir/error.log` about temp files (and failed calls on
/// them), as [`log_lines`] writes them.
pub fn temp_file_log_lines(dir: &Path) -> Vec<String> {
    log_lines(dir, "error.log")
        .into_iter()
        .filter(|l| l.contains("temporary file") || l.contains("failed ("))
        .collect()
}

/// nginx and rginx on the same configuration (`config(port, dir)`), each
/// with its own port and directory (for its logs and temp files);
/// stopped together.
pub struct DirPair {
    /// nginx's port.
    pub nginx_port: u16,
    /// rginx's port.
    pub rginx_port: u16,
    /// nginx's directory.
    pub nginx_dir: TempDir,
    /// rginx's directory.
    pub rginx_dir: TempDir,
    _nginx: NginxServer,
    _rginx: Rginx,
}

impl DirPair {
    /// Starts both, each on a free port and in a new directory tagged
    /// `tag`.
    pub fn start(nginx: &Path, tag: &str, config: impl Fn(u16, &Path) -> String) -> DirPair {
        let (nginx_port, rginx_port) = (free_port(), free_port());
        let (nginx_dir, rginx_dir) = (
            TempDir::new(&format!("{tag}-nginx")),
            TempDir::new(&format!("{tag}-rginx")),
        );
        let theirs = NginxServer::start(nginx, &config(nginx_port, &nginx_dir.0), nginx_port);
        let ours = start_rginx(&config(rginx_port, &rginx_dir.0), rginx_port);
        DirPair {
            nginx_port,
            rginx_port,
            nginx_dir,
            rginx_dir,
            _nginx: theirs,
            _rginx: ours,
        }
    }

    /// Stops both gracefully (`SIGQUIT`) and waits for them to exit, so
    /// that what they hold back (buffered logs) is written; the
    /// directories stay.
    pub fn quit(&mut self) {
        for child in [&mut self._nginx.child, &mut self._rginx.0] {
            let _ = Command::new("kill")
                .args(["-QUIT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Each side's name, port and directory.
    pub fn sides(&self) -> [(&'static str, u16, &Path); 2] {
        [
            ("nginx", self.nginx_port, &self.nginx_dir.0),
            ("rginx", self.rginx_port, &self.rginx_dir.0),
        ]
    }
}
