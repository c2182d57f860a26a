//! The echo backend: what the tests put behind rginx and nginx, and what
//! the built-in demo serves. Plain requests get a JSON view of exactly
//! what arrived (request line, header lines in order and as sent, body);
//! WebSocket upgrades get a `101` and every frame echoed back; `GET /`
//! serves a small page that talks to `/ws/`.
//!
//! It works on raw bytes over std sockets (a thread per connection), so
//! it sees the request head exactly as the proxy wrote it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

/// Largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest body or WebSocket frame accepted.
const MAX_PAYLOAD: u64 = 64 * 1024 * 1024;

/// The demo page served at `/`.
pub const DEMO_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>rginx WebSocket echo</title></head>
<body><h1>rginx WebSocket echo</h1>
<p>Messages go to <code>/ws/</code> through rginx and come back from the echo backend.</p>
<form id="f"><input id="m" autofocus placeholder="type a message"> <button>Send</button></form>
<pre id="log"></pre>
<script>
const log = (t) => document.getElementById('log').textContent += t + '\n';
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws/');
ws.onopen = () => log('connected');
ws.onmessage = (e) => log('echo: ' + e.data);
ws.onclose = () => log('closed');
document.getElementById('f').onsubmit = (e) => {
  e.preventDefault();
  const m = document.getElementById('m');
  ws.send(m.value); log('sent: ' + m.value); m.value = '';
};
</script></body></html>
"#;

/// A running echo backend; stops when dropped.
pub struct EchoBackend {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl EchoBackend {
    /// Listens on `addr` (port 0 for any) and serves in the background.
    pub fn start(addr: SocketAddr) -> io::Result<EchoBackend> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = connections.clone();
        thread::Builder::new()
            .name("echo-accept".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if flag.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    counter.fetch_add(1, Ordering::SeqCst);
                    let _ = thread::Builder::new()
                        .name("echo-conn".into())
                        .spawn(move || {
                            let _ = serve(conn);
                        });
                }
            })?;
        Ok(EchoBackend {
            addr,
            stop,
            connections,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections it has accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for EchoBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // wake the accept loop so it sees the flag
        let _ = TcpStream::connect(self.addr);
    }
}

/// A request head as received.
struct Head {
    method: String,
    uri: String,
    version: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .any(|(_, v)| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn read_head(r: &mut BufReader<TcpStream>) -> io::Result<Option<Head>> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line)?;
        if n == 0 {
            return if lines.is_empty() {
                Ok(None)
            } else {
                Err(bad("eof in head"))
            };
        }
        total += n;
        if total > MAX_HEAD {
            return Err(bad("head too large"));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            if lines.is_empty() {
                continue;
            }
            break;
        }
        lines.push(line);
    }
    let mut parts = lines[0].splitn(3, ' ');
    let method = parts.next().unwrap_or("").to_string();
    let uri = parts.next().unwrap_or("").to_string();
    let version = parts.next().unwrap_or("").to_string();
    let headers = lines[1..]
        .iter()
        .map(|l| match l.split_once(':') {
            Some((n, v)) => (n.to_string(), v.trim_start_matches([' ', '\t']).to_string()),
            None => (l.clone(), String::new()),
        })
        .collect();
    Ok(Some(Head {
        method,
        uri,
        version,
        headers,
    }))
}

fn read_body(r: &mut BufReader<TcpStream>, head: &Head) -> io::Result<Vec<u8>> {
    if head.has_token("transfer-encoding", "chunked") {
        let mut body = Vec::new();
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let size = size.trim().split(';').next().unwrap_or("");
            let n = u64::from_str_radix(size, 16).map_err(|_| bad("chunk size"))?;
            if n == 0 {
                // trailers up to the blank line
                loop {
                    let mut t = String::new();
                    if r.read_line(&mut t)? == 0 || t.trim().is_empty() {
                        return Ok(body);
                    }
                }
            }
            if body.len() as u64 + n > MAX_PAYLOAD {
                return Err(bad("body too large"));
            }
            let start = body.len();
            body.resize(start + n as usize, 0);
            r.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf)?;
        }
    }
    let length: u64 = head
        .header("content-length")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    if length > MAX_PAYLOAD {
        return Err(bad("body too large"));
    }
    let mut body = vec![0u8; length as usize];
    r.read_exact(&mut body)?;
    Ok(body)
}

/// The JSON view of a request.
pub fn describe(
    method: &str,
    uri: &str,
    version: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> String {
    let view = serde_json::json!({
        "method": method,
        "uri": uri,
        "version": version,
        // each line as a `[name, value]` pair
        "headers": headers,
        "body": String::from_utf8_lossy(body),
    });
    format!("{view}\n")
}

fn serve(conn: TcpStream) -> io::Result<()> {
    // frames go out as a head and a payload: without this each echo would
    // wait for the proxy's delayed ACK
    conn.set_nodelay(true)?;
    let mut writer = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    while let Some(head) = read_head(&mut reader)? {
        if head.has_token("upgrade", "websocket") {
            let key = head
                .header("sec-websocket-key")
                .unwrap_or("")
                .trim()
                .to_string();
            let accept = websocket_accept(&key);
            let response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            );
            writer.write_all(response.as_bytes())?;
            return echo_frames(&mut reader, &mut writer);
        }
        let body = read_body(&mut reader, &head)?;
        let keep_alive = head.version == "HTTP/1.1" && !head.has_token("connection", "close");
        let (content_type, payload) = if head.method == "GET" && head.uri == "/" {
            ("text/html; charset=utf-8", DEMO_PAGE.to_string())
        } else {
            (
                "application/json",
                describe(&head.method, &head.uri, &head.version, &head.headers, &body),
            )
        };
        // one write: a response in pieces would wait for the peer's
        // delayed ACK (Nagle) between them
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n{payload}",
            payload.len(),
            if keep_alive { "keep-alive" } else { "close" }
        );
        writer.write_all(response.as_bytes())?;
        if !keep_alive {
            break;
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
    Ok(())
}

/// Echoes WebSocket frames until a close frame or end of stream: data
/// frames come back with the same opcode and FIN bit, pings get pongs,
/// a close is answered with the same close payload.
fn echo_frames(r: &mut BufReader<TcpStream>, w: &mut TcpStream) -> io::Result<()> {
    loop {
        let Ok((fin, opcode, payload)) = read_frame(r) else {
            let _ = w.shutdown(Shutdown::Both);
            return Ok(());
        };
        match opcode {
            0x8 => {
                write_frame(w, true, 0x8, &payload)?;
                let _ = w.shutdown(Shutdown::Both);
                return Ok(());
            }
            0x9 => write_frame(w, true, 0xA, &payload)?,
            0xA => {}
            _ => write_frame(w, fin, opcode, &payload)?,
        }
    }
}

/// Writes one unmasked frame (server to client).
pub fn write_frame(w: &mut impl Write, fin: bool, opcode: u8, payload: &[u8]) -> io::Result<()> {
    let mut head = Vec::with_capacity(10);
    head.push(if fin { 0x80 } else { 0 } | (opcode & 0x0f));
    let len = payload.len();
    if len < 126 {
        head.push(len as u8);
    } else if len <= usize::from(u16::MAX) {
        head.push(126);
        head.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        head.push(127);
        head.extend_from_slice(&(len as u64).to_be_bytes());
    }
    w.write_all(&head)?;
    w.write_all(payload)?;
    w.flush()
}

/// `Sec-WebSocket-Accept` for a key (RFC 6455: base64 of the SHA-1 of the
/// key and the protocol's GUID).
pub fn websocket_accept(key: &str) -> String {
    let mut input = key.as_bytes().to_vec();
    input.extend_from_slice(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64(&sha1(&input))
}

/// SHA-1 (FIPS 180-4), only for the WebSocket handshake.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A client's (masked) frame, for tests that speak WebSocket by hand.
pub fn client_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut f = vec![if fin { 0x80 } else { 0 } | (opcode & 0x0f)];
    let len = payload.len();
    if len < 126 {
        f.push(0x80 | len as u8);
    } else if len <= usize::from(u16::MAX) {
        f.push(0x80 | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Reads one frame, unmasking a client's: FIN bit, opcode and payload.
pub fn read_frame(r: &mut impl Read) -> io::Result<(bool, u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    r.read_exact(&mut h)?;
    let masked = h[1] & 0x80 != 0;
    let mut len = u64::from(h[1] & 0x7f);
    if len == 126 {
        let mut b = [0u8; 2];
        r.read_exact(&mut b)?;
        len = u64::from(u16::from_be_bytes(b));
    } else if len == 127 {
        let mut b = [0u8; 8];
        r.read_exact(&mut b)?;
        len = u64::from_be_bytes(b);
    }
    if len > MAX_PAYLOAD {
        return Err(bad("frame too large"));
    }
    let mut mask = [0u8; 4];
    if masked {
        r.read_exact(&mut mask)?;
    }
    let mut p = vec![0u8; len as usize];
    r.read_exact(&mut p)?;
    if masked {
        for (i, b) in p.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    Ok((h[0] & 0x80 != 0, h[0] & 0x0f, p))
}

/// The `Sec-WebSocket-Key` [`client_handshake`] sends (RFC 6455's example).
pub const CLIENT_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// Opens a WebSocket by hand, for tests: sends the upgrade request for
/// `path` and reads the response head. Returns the stream to write frames
/// to, a reader for the frames that come back, and the head's lines
/// (status line first, line ends removed). Reads time out after 10 s.
pub fn client_handshake(
    addr: impl std::net::ToSocketAddrs,
    path: &str,
) -> io::Result<(TcpStream, BufReader<TcpStream>, Vec<String>)> {
    let mut c = TcpStream::connect(addr)?;
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    c.set_nodelay(true)?;
    // one write: a head in pieces would wait for a delayed ACK
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {CLIENT_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    c.write_all(request.as_bytes())?;
    let mut r = BufReader::new(c.try_clone()?);
    let mut head = Vec::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l)? == 0 || l == "\r\n" {
            break;
        }
        head.push(l.trim_end_matches(['\r', '\n']).to_string());
    }
    Ok((c, r, head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_accept_matches_rfc6455() {
        // the example in RFC 6455, section 1.3
        assert_eq!(
            websocket_accept("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }

    #[test]
    fn plain_requests_are_described_exactly() {
        let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut c = TcpStream::connect(backend.addr()).unwrap();
        c.write_all(b"POST /a?b=1 HTTP/1.0\r\nHost: x\r\nX-Case: V\r\nX-Case: W\r\nContent-Length: 3\r\n\r\nabc").unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        let body = out.split("\r\n\r\n").nth(1).unwrap();
        assert_eq!(
            body,
            "{\"method\":\"POST\",\"uri\":\"/a?b=1\",\"version\":\"HTTP/1.0\",\"headers\":[[\"Host\",\"x\"],[\"X-Case\",\"V\"],[\"X-Case\",\"W\"],[\"Content-Length\",\"3\"]],\"body\":\"abc\"}\n"
        );
    }

    #[test]
    fn websocket_frames_are_echoed() {
        let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
        let (mut c, mut r, head) = client_handshake(backend.addr(), "/ws/").unwrap();
        assert_eq!(head[0], "HTTP/1.1 101 Switching Protocols");
        assert!(
            head.contains(&"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".to_string()),
            "{head:?}"
        );
        c.write_all(&client_frame(0x1, true, b"hello")).unwrap();
        assert_eq!(read_frame(&mut r).unwrap(), (true, 0x1, b"hello".to_vec()));
        let big = vec![7u8; 70_000];
        c.write_all(&client_frame(0x2, false, &big[..1000]))
            .unwrap();
        assert_eq!(
            read_frame(&mut r).unwrap(),
            (false, 0x2, big[..1000].to_vec())
        );
        c.write_all(&client_frame(0x9, true, b"p")).unwrap();
        assert_eq!(read_frame(&mut r).unwrap(), (true, 0xA, b"p".to_vec()));
        c.write_all(&client_frame(0x8, true, &[0x03, 0xE8]))
            .unwrap();
        assert_eq!(read_frame(&mut r).unwrap(), (true, 0x8, vec![0x03, 0xE8]));
    }

    #[test]
    fn the_demo_page_is_served_at_the_root() {
        let backend = EchoBackend::start("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut c = TcpStream::connect(backend.addr()).unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/html"));
        assert!(out.contains("new WebSocket"));
    }
}
