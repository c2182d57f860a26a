//! rginx's benchmark tools (bench/README.md):
//!
//! - `loadgen backend ADDR`: an async backend that answers HTTP requests with
//!   `200 ok` (keep-alive) and echoes WebSocket frames;
//! - `loadgen ws ADDR PATH CONNS SIZE SECS`: WebSocket round trips through a
//!   proxy, each connection sending one SIZE-byte message and waiting for
//!   its echo; prints one JSON line: round trips per second, p50 and p99;
//! - `loadgen idle ADDR PATH CONNS`: opens CONNS WebSocket tunnels, prints
//!   `ready`, and holds them until stdin closes; then sends one message on
//!   each and prints `alive N`, the tunnels that echoed it;
//! - `loadgen idle-http ADDR CONNS`: opens CONNS HTTP/1.1 connections, sends
//!   one keep-alive `GET /` on each and reads the whole response, prints
//!   `ready`, and holds them idle until stdin closes; then sends one more
//!   request on each and prints `alive N`, the connections that answered it;
//! - `loadgen burst ADDR CONNS COUNT SECS`: connection churn, CONNS at a time,
//!   each a new connection with one `GET /` and `Connection: close`, read to
//!   the end; stops after COUNT connections or SECS seconds, whichever comes
//!   first, and prints one JSON line: connections, errors, seconds, per second.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn usage() -> ! {
    eprintln!(
        "usage: loadgen backend ADDR | ws ADDR PATH CONNS SIZE SECS | idle ADDR PATH CONNS \
         | idle-http ADDR CONNS | burst ADDR CONNS COUNT SECS"
    );
    std::process::exit(2)
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> T {
    args.get(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| usage())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("loadgen: {e}");
            std::process::exit(1)
        });
    let result = runtime.block_on(async {
        match args.first().map(String::as_str) {
            Some("backend") => backend(arg(&args, 1)).await,
            Some("ws") => {
                ws(
                    arg(&args, 1),
                    arg(&args, 2),
                    arg(&args, 3),
                    arg(&args, 4),
                    arg(&args, 5),
                )
                .await
            }
            Some("idle") => idle(arg(&args, 1), arg(&args, 2), arg(&args, 3)).await,
            Some("idle-http") => idle_http(arg(&args, 1), arg(&args, 2)).await,
            Some("burst") => {
                burst(arg(&args, 1), arg(&args, 2), arg(&args, 3), arg(&args, 4)).await
            }
            _ => usage(),
        }
    });
    if let Err(e) = result {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Reads up to the end of a head; returns it (the bytes after it stay in
/// the reader's buffer).
async fn read_head<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Result<Option<String>> {
    use tokio::io::AsyncBufReadExt;
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        if line == "\r\n" || line == "\n" {
            return Ok(Some(head));
        }
        head.push_str(&line);
    }
}

async fn backend(addr: SocketAddr) -> Result<()> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = serve(stream).await;
        });
    }
}

async fn serve(stream: TcpStream) -> Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    while let Some(head) = read_head(&mut r).await? {
        let lower = head.to_ascii_lowercase();
        if lower.contains("upgrade: websocket") {
            let response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n"
            );
            w.write_all(response.as_bytes()).await?;
            return echo_frames(&mut r, &mut w).await;
        }
        let http10 = head.lines().next().is_some_and(|l| l.ends_with("HTTP/1.0"));
        let close = lower.contains("connection: close")
            || (http10 && !lower.contains("connection: keep-alive"));
        let response: &[u8] = if close {
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        } else {
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        };
        w.write_all(response).await?;
        if close {
            return Ok(());
        }
    }
    Ok(())
}

/// Reads one frame: opcode and payload (unmasked).
async fn read_frame<R: AsyncReadExt + Unpin>(r: &mut R, payload: &mut Vec<u8>) -> Result<u8> {
    let mut h = [0u8; 2];
    r.read_exact(&mut h).await?;
    let masked = h[1] & 0x80 != 0;
    let mut len = u64::from(h[1] & 0x7f);
    if len == 126 {
        let mut b = [0u8; 2];
        r.read_exact(&mut b).await?;
        len = u64::from(u16::from_be_bytes(b));
    } else if len == 127 {
        let mut b = [0u8; 8];
        r.read_exact(&mut b).await?;
        len = u64::from_be_bytes(b);
    }
    let mut mask = [0u8; 4];
    if masked {
        r.read_exact(&mut mask).await?;
    }
    payload.resize(usize::try_from(len)?, 0);
    r.read_exact(payload).await?;
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    Ok(h[0] & 0x0f)
}

/// Appends a frame; client frames are masked (with a zero mask: the
/// bytes stay as they are, which is all a benchmark needs).
fn frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], masked: bool) {
    out.push(0x80 | opcode);
    let bit = if masked { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(bit | len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if masked {
        out.extend_from_slice(&[0, 0, 0, 0]);
    }
    out.extend_from_slice(payload);
}

async fn echo_frames<R, W>(r: &mut R, w: &mut W) -> Result<()>
where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let mut payload = Vec::new();
    let mut out = Vec::new();
    loop {
        let opcode = read_frame(r, &mut payload).await?;
        out.clear();
        match opcode {
            0x8 => {
                frame(&mut out, 0x8, &payload, false);
                w.write_all(&out).await?;
                return Ok(());
            }
            0x9 => frame(&mut out, 0xA, &payload, false),
            op => frame(&mut out, op, &payload, false),
        }
        w.write_all(&out).await?;
    }
}

/// A WebSocket connection through the proxy, past its handshake.
async fn connect(addr: SocketAddr, path: &str) -> Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut stream = BufReader::new(stream);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.get_mut().write_all(request.as_bytes()).await?;
    let head = read_head(&mut stream).await?.unwrap_or_default();
    if !head.starts_with("HTTP/1.1 101") {
        return Err(format!("no 101: {:?}", head.lines().next()).into());
    }
    Ok(stream)
}

async fn ws(addr: SocketAddr, path: String, conns: usize, size: usize, secs: f64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = connect(addr, &path).await?;
            let mut out = Vec::new();
            frame(&mut out, 0x2, &vec![b'x'; size], true);
            let mut payload = Vec::new();
            let mut latencies: Vec<u32> = Vec::new();
            while Instant::now() < deadline {
                let start = Instant::now();
                stream.get_mut().write_all(&out).await?;
                read_frame(&mut stream, &mut payload).await?;
                let us = start.elapsed().as_micros();
                latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(latencies)
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    all.sort_unstable();
    let pick = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{{\"round_trips_per_s\":{:.0},\"p50_us\":{},\"p99_us\":{},\"count\":{}}}",
        all.len() as f64 / elapsed,
        pick(0.50),
        pick(0.99),
        all.len()
    );
    Ok(())
}

/// Returns when stdin closes (read on a plain thread: tokio's stdin is a
/// feature the workspace does not enable).
async fn until_stdin_closes() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        let _ = tx.send(());
    });
    let _ = rx.await;
}

async fn idle(addr: SocketAddr, path: String, conns: usize) -> Result<()> {
    let mut held = Vec::with_capacity(conns);
    for _ in 0..conns {
        held.push(connect(addr, &path).await?);
    }
    println!("ready {}", held.len());
    until_stdin_closes().await;
    // then every tunnel carries one message more: how many still do
    let mut out = Vec::new();
    frame(&mut out, 0x2, b"still there?", true);
    let mut alive = 0;
    let mut payload = Vec::new();
    for stream in &mut held {
        let echoed = async {
            stream.get_mut().write_all(&out).await?;
            read_frame(stream, &mut payload).await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(payload == b"still there?")
        };
        if matches!(
            tokio::time::timeout(Duration::from_secs(2), echoed).await,
            Ok(Ok(true))
        ) {
            alive += 1;
        }
    }
    println!("alive {alive}");
    drop(held);
    Ok(())
}

/// Reads one response (head and body: Content-Length, chunked, or up to
/// the end when it has neither); returns its status and whether the
/// connection stays open after it.
async fn read_response<R>(r: &mut R) -> Result<(u16, bool)>
where
    R: tokio::io::AsyncBufRead + AsyncReadExt + Unpin,
{
    use tokio::io::AsyncBufReadExt;
    let head = read_head(r).await?.ok_or("closed before a response")?;
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    let mut close = status_line.starts_with("HTTP/1.0");
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_ascii_lowercase();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse::<u64>().ok(),
            "transfer-encoding" => chunked = value.contains("chunked"),
            "connection" if value.contains("close") => close = true,
            "connection" if value.contains("keep-alive") => close = false,
            _ => {}
        }
    }
    let mut sink = Vec::new();
    if chunked {
        loop {
            let mut line = String::new();
            r.read_line(&mut line).await?;
            let size = line.trim().split(';').next().unwrap_or_default();
            let size =
                u64::from_str_radix(size, 16).map_err(|_| format!("bad chunk size {line:?}"))?;
            if size == 0 {
                // trailers up to the empty line
                read_head(r).await?;
                break;
            }
            sink.clear();
            r.take(size + 2).read_to_end(&mut sink).await?;
        }
    } else if let Some(n) = length {
        sink.clear();
        if r.take(n).read_to_end(&mut sink).await? as u64 != n {
            return Err("body cut short".into());
        }
    } else if status >= 200 && status != 204 && status != 304 {
        r.read_to_end(&mut sink).await?;
        close = true;
    }
    Ok((status, !close))
}

/// One keep-alive `GET /` on an open connection; Ok(true) when it got a
/// 200 and the connection stays open.
async fn get(stream: &mut BufReader<TcpStream>, request: &[u8]) -> Result<bool> {
    stream.get_mut().write_all(request).await?;
    let (status, open) = read_response(stream).await?;
    Ok(status == 200 && open)
}

async fn idle_http(addr: SocketAddr, conns: usize) -> Result<()> {
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let mut held = Vec::with_capacity(conns);
    for _ in 0..conns {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut stream = BufReader::new(stream);
        if !get(&mut stream, request.as_bytes()).await? {
            return Err("no keep-alive 200 on GET /".into());
        }
        held.push(stream);
    }
    println!("ready {}", held.len());
    until_stdin_closes().await;
    let mut alive = 0;
    for stream in &mut held {
        if matches!(
            tokio::time::timeout(Duration::from_secs(2), get(stream, request.as_bytes())).await,
            Ok(Ok(true))
        ) {
            alive += 1;
        }
    }
    println!("alive {alive}");
    drop(held);
    Ok(())
}

async fn burst(addr: SocketAddr, conns: usize, count: usize, secs: f64) -> Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let request: Arc<[u8]> = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
        .into_bytes()
        .into();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let claimed = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..conns.max(1) {
        let claimed = Arc::clone(&claimed);
        let request = Arc::clone(&request);
        tasks.push(tokio::spawn(async move {
            let (mut done, mut errors) = (0usize, 0usize);
            while Instant::now() < deadline && claimed.fetch_add(1, Ordering::Relaxed) < count {
                let one = async {
                    let stream = TcpStream::connect(addr).await?;
                    stream.set_nodelay(true)?;
                    let mut stream = BufReader::new(stream);
                    stream.get_mut().write_all(&request).await?;
                    let (status, _) = read_response(&mut stream).await?;
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(status == 200)
                };
                match tokio::time::timeout(Duration::from_secs(5), one).await {
                    Ok(Ok(true)) => done += 1,
                    _ => errors += 1,
                }
            }
            (done, errors)
        }));
    }
    let (mut done, mut errors) = (0, 0);
    for t in tasks {
        let (d, e) = t.await?;
        done += d;
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    println!(
        "{{\"connections\":{done},\"errors\":{errors},\"secs\":{elapsed:.1},\"per_s\":{:.0}}}",
        done as f64 / elapsed
    );
    Ok(())
}
