//! Raw HTTP/1.x on std sockets for the differential tests: reading one
//! message by its framing, and a backend that records the exact bytes it
//! receives (the same rules as tests/oracle/capture.py).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One message: its head (without the empty line) and its body bytes as
/// they came (chunk framing kept).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Message {
    /// The start line and header lines, CRLF removed (bytes that are not
    /// UTF-8 shown as U+FFFD).
    pub head: Vec<String>,
    /// The head's bytes exactly, without the empty line.
    pub raw_head: Vec<u8>,
    /// The body, framing included.
    pub body: Vec<u8>,
}

impl Message {
    /// The first value of a header, names compared without case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.iter().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The status code of a response.
    pub fn status(&self) -> u16 {
        self.head
            .first()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }
}

/// Reads bytes until `buf` holds `want` bytes; false when the peer stopped.
fn fill(stream: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> bool {
    let mut chunk = [0u8; 65536];
    while buf.len() < want {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    true
}

/// Reads until `buf[from..]` holds `needle`; its index, or None at the end.
fn fill_until(
    stream: &mut impl Read,
    buf: &mut Vec<u8>,
    from: usize,
    needle: &[u8],
) -> Option<usize> {
    loop {
        if let Some(i) = buf[from.min(buf.len())..]
            .windows(needle.len())
            .position(|w| w == needle)
        {
            return Some(from + i);
        }
        let len = buf.len();
        if !fill(stream, buf, len + 1) {
            return None;
        }
    }
}

/// Reads one message from `stream`; `leftover` holds bytes already read
/// past the previous message and keeps those past this one. A response to
/// HEAD, a 1xx, 204 or 304 has no body; a message without a length reads
/// to the end of the stream when `to_eof` is set.
pub fn read_message(
    stream: &mut impl Read,
    leftover: &mut Vec<u8>,
    no_body: bool,
    to_eof: bool,
) -> Option<Message> {
    let mut buf = std::mem::take(leftover);
    let end = fill_until(stream, &mut buf, 0, b"\r\n\r\n")?;
    let head: Vec<String> = String::from_utf8_lossy(&buf[..end])
        .split("\r\n")
        .map(str::to_string)
        .collect();
    let mut message = Message {
        head,
        raw_head: buf[..end].to_vec(),
        body: Vec::new(),
    };
    let mut pos = end + 4;
    let status = message.status();
    let is_response = message.head[0].starts_with("HTTP/");
    if no_body || (is_response && (status < 200 || status == 204 || status == 304)) {
        *leftover = buf.split_off(pos);
        return Some(message);
    }
    let chunked = message
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = message
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok());
    let start = pos;
    if chunked {
        loop {
            let eol = fill_until(stream, &mut buf, pos, b"\r\n")?;
            let line = String::from_utf8_lossy(&buf[pos..eol]).to_string();
            let size =
                usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16).ok()?;
            pos = eol + 2;
            if size == 0 {
                loop {
                    let eol = fill_until(stream, &mut buf, pos, b"\r\n")?;
                    let empty = eol == pos;
                    pos = eol + 2;
                    if empty {
                        break;
                    }
                }
                break;
            }
            if !fill(stream, &mut buf, pos + size + 2) {
                return None;
            }
            pos += size + 2;
        }
    } else if let Some(n) = length {
        if !fill(stream, &mut buf, pos + n) {
            return None;
        }
        pos += n;
    } else if to_eof && is_response {
        let _ = stream.read_to_end(&mut buf);
        pos = buf.len();
    }
    message.body = buf[start..pos].to_vec();
    *leftover = buf.split_off(pos);
    Some(message)
}

/// Sends `request` on a new connection and reads the final response (1xx
/// interim responses are skipped), at most `timeout` per read.
pub fn send(addr: SocketAddr, request: &[u8], head: bool, timeout: Duration) -> Option<Message> {
    let mut c = TcpStream::connect(addr).ok()?;
    c.set_read_timeout(Some(timeout)).ok()?;
    c.write_all(request).ok()?;
    let mut leftover = Vec::new();
    loop {
        let m = read_message(&mut c, &mut leftover, head, true)?;
        let s = m.status();
        if !(100..200).contains(&s) || s == 101 {
            return Some(m);
        }
    }
}

/// A backend that records every request it receives, bytes as they came,
/// and answers `200 ok` with `Connection: close`.
pub struct RecordingBackend {
    addr: SocketAddr,
    /// What it received, in order.
    pub requests: Arc<Mutex<Vec<Message>>>,
}

impl RecordingBackend {
    /// Starts on a free loopback port.
    pub fn start() -> RecordingBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut leftover = Vec::new();
                    if let Some(m) = read_message(&mut conn, &mut leftover, false, false) {
                        if let Ok(mut seen) = seen.lock() {
                            seen.push(m);
                        }
                        let _ = conn.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        );
                    }
                });
            }
        });
        RecordingBackend { addr, requests }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The requests received so far, taken out.
    pub fn take(&self) -> Vec<Message> {
        self.requests
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }
}

/// A backend that reads each request and answers what `answer` makes of
/// it (nothing: it closes the connection).
pub fn scripted_backend(answer: fn(&Message) -> Option<String>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut leftover = Vec::new();
            let request = read_message(&mut conn, &mut leftover, false, false);
            if let Some(response) = request.as_ref().and_then(answer) {
                let _ = conn.write_all(response.as_bytes());
            }
        }
    });
    addr
}
