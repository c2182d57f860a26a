//! A response on the wire, as nginx's `ngx_http_header_filter` writes it:
//! always an `HTTP/1.1` status line (with the backend's reason phrase when
//! it came from one), then `Server`, `Date`, `Content-Type`,
//! `Content-Length`, `Location` (rginx's own, or a backend's that
//! `proxy_redirect` rewrote), `Transfer-Encoding` when rginx chunks,
//! `Connection` and `Keep-Alive`, then the backend's other lines as they
//! came (names in their case, in their order, repeats apart). A body of
//! unknown length goes chunked to an HTTP/1.1 client (nginx's
//! `chunked_transfer_encoding on`) and until close to an HTTP/1.0 one.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, SERVER};
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use rginx_core::plan::RateLimit;
use rginx_http::response::HeaderSpan;

use super::conn::ClientConn;
use super::pace::{paced_write, Pace};
use crate::pool::Body;

/// The backend's head as it passes to the client, kept as it sent it:
/// the bytes of its head, its reason phrase and the spans of the lines
/// that pass (no copy of a name or value is made).
#[derive(Debug, Clone)]
pub struct RawLines {
    /// The backend's response head.
    pub head: Bytes,
    /// The backend's reason phrase, where it is not the standard one:
    /// nginx passes the backend's status line as it came.
    pub reason: Option<std::ops::Range<usize>>,
    /// The lines written, in order, with where each goes.
    pub lines: Vec<(Place, HeaderSpan)>,
    /// New values for some of `lines` (by index): a `Refresh` or an
    /// earlier `Location` that `proxy_redirect` rewrote. Usually empty.
    pub rewritten: Vec<(usize, Vec<u8>)>,
    /// Whether the backend's `Server` and `Date` pass (`proxy_pass_header`),
    /// in place of nginx's own.
    pub passes_own: (bool, bool),
}

/// Where a backend's header line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// `Content-Type`, in nginx's place and spelling.
    ContentType,
    /// `Content-Length`, in nginx's place and spelling.
    ContentLength,
    /// `Location`, in nginx's place and spelling.
    Location,
    /// After nginx's own lines, as it came.
    AsIs,
    /// Not written (a rewritten `Location` that went in the response's
    /// own headers).
    Removed,
}

impl Place {
    /// The lines nginx writes in places of its own, in its order, with
    /// its own spelling.
    const OWN: [(Place, HeaderName, &'static str); 3] = [
        (Place::ContentType, CONTENT_TYPE, "Content-Type"),
        (Place::ContentLength, CONTENT_LENGTH, "Content-Length"),
        (Place::Location, LOCATION, "Location"),
    ];

    /// Where a backend's line named `name` goes (any case).
    pub fn of(name: &str) -> Place {
        Place::OWN
            .iter()
            .find(|(_, _, spelled)| spelled.eq_ignore_ascii_case(name))
            .map_or(Place::AsIs, |(place, _, _)| *place)
    }
}

impl RawLines {
    /// The value line `i` is written with (rewritten, or as it came).
    pub fn value(&self, i: usize) -> &[u8] {
        match self.rewritten.iter().find(|(at, _)| *at == i) {
            Some((_, value)) => value,
            None => self
                .lines
                .get(i)
                .map_or(&[][..], |(_, span)| &self.head[span.value.clone()]),
        }
    }

    /// Line `i` is written with `value`.
    pub fn rewrite(&mut self, i: usize, value: Vec<u8>) {
        match self.rewritten.iter_mut().find(|(at, _)| *at == i) {
            Some(line) => line.1 = value,
            None => self.rewritten.push((i, value)),
        }
    }

    /// Line `i` is not written.
    pub fn remove(&mut self, i: usize) {
        if let Some(line) = self.lines.get_mut(i) {
            line.0 = Place::Removed;
        }
    }

    /// The values of the lines that go in `place`.
    fn values(&self, place: Place) -> impl Iterator<Item = &[u8]> + '_ {
        self.lines
            .iter()
            .filter(move |(p, _)| *p == place)
            .map(|(_, span)| &self.head[span.value.clone()])
    }
}

/// Marks a response rginx wrote itself (not the backend's): after some
/// of them nginx never keeps the connection.
#[derive(Debug, Clone, Copy)]
pub struct OwnPage;

/// Lines a request's earlier answers left to its last one (what a
/// backend's `X-Accel-Redirect` carries, nginx's `r->headers_out` list):
/// written after nginx's own lines, before the answer's others.
#[derive(Debug, Clone, Default)]
pub struct CarriedLines(pub Vec<(Bytes, Bytes)>);

/// Marks a request nginx closes without an answer (a timed-out body).
#[derive(Debug, Clone, Copy)]
pub struct Unanswered;

/// How a response is written for the request it answers.
#[derive(Debug, Clone, Copy)]
pub struct Framing {
    /// The request was `HEAD`: the head only.
    pub head_request: bool,
    /// The connection may stay open after the response.
    pub keep_alive: bool,
    /// `keepalive_timeout`'s second value (the `Keep-Alive` header).
    pub keepalive_header: Option<Duration>,
    /// The client's HTTP minor version.
    pub client_minor: u8,
    /// Keep a copy of the head written ([`Written::head`]), for an access
    /// log that reads `$sent_http_NAME`.
    pub keep_head: bool,
    /// The time the head is written for (its `Date`; the headers filter's
    /// `Expires` counts from the same second, as nginx's cached time).
    pub now: std::time::SystemTime,
    /// `server_tokens`: the version in `Server`.
    pub tokens: bool,
    /// `limit_rate`, and when the request started (nginx's
    /// `r->start_sec`).
    pub pace: Option<(RateLimit, std::time::SystemTime)>,
}

/// What became of a written response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Written {
    /// It was written whole and the connection may serve another request.
    pub keep: bool,
    /// Body bytes written (`$body_bytes_sent`).
    pub body: u64,
    /// Bytes written in all, the head's included (`$bytes_sent`).
    pub total: u64,
    /// The head as written, when [`Framing::keep_head`] asked for it.
    pub head: Option<Vec<u8>>,
}

/// nginx's reason phrases (`ngx_http_status_lines`, 1.22): empty for the
/// codes it has none for (its status line is then `418 ` alone).
pub fn nginx_reason(code: StatusCode) -> &'static str {
    match code.as_u16() {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Time-out",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Large",
        415 => "Unsupported Media Type",
        416 => "Requested Range Not Satisfiable",
        421 => "Misdirected Request",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Temporarily Unavailable",
        504 => "Gateway Time-out",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        _ => "",
    }
}

/// Writes `response` on `conn`, with the backend's lines `raw` when it
/// came from one, and the headers filter's `added` lines last.
pub async fn write_response(
    conn: &mut ClientConn,
    response: Response<Body>,
    raw: Option<&RawLines>,
    added: &[(String, String)],
    framing: Framing,
) -> Written {
    if response.extensions().get::<Unanswered>().is_some() {
        return Written::default();
    }
    let (parts, mut body) = response.into_parts();
    let status = parts.status.as_u16();
    let own = parts.extensions.get::<OwnPage>().is_some();
    let has_body = !(framing.head_request || status < 200 || status == 204 || status == 304);
    let length = match raw {
        Some(raw) => raw
            .values(Place::ContentLength)
            .next()
            .and_then(rginx_http::response::parse_length),
        None => parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| rginx_http::response::parse_length(v.as_bytes())),
    };
    let chunked = has_body && length.is_none() && framing.client_minor >= 1;
    // a body that ends only when the connection does cannot be followed
    // by another request
    let mut keep_alive = framing.keep_alive && !(has_body && length.is_none() && !chunked);
    let connection = match status {
        101 => "upgrade",
        400 | 413 | 414 | 500 | 501 if own => "close",
        _ if keep_alive => "keep-alive",
        _ => "close",
    };
    keep_alive &= connection == "keep-alive";

    let mut head = conn.heads.take();
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(parts.status.as_str().as_bytes());
    head.push(b' ');
    match raw.and_then(|raw| Some(&raw.head[raw.reason.clone()?])) {
        Some(reason) => head.extend_from_slice(reason),
        None => head.extend_from_slice(nginx_reason(parts.status).as_bytes()),
    }
    head.extend_from_slice(b"\r\n");
    // a backend's Server or Date passed on (`proxy_pass_header`) replaces
    // nginx's own, where the backend put it
    let (server, date) = raw.map_or((false, false), |r| r.passes_own);
    if !server {
        head.extend_from_slice(b"Server: ");
        head.extend_from_slice(crate::engine::signature(framing.tokens).as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if !date {
        head.extend_from_slice(b"Date: ");
        crate::date::append(framing.now, &mut head);
        head.extend_from_slice(b"\r\n");
    }
    for (place, name, written) in Place::OWN {
        for value in parts.headers.get_all(&name) {
            line(&mut head, written.as_bytes(), value.as_bytes());
        }
        for value in raw.into_iter().flat_map(|raw| raw.values(place)) {
            line(&mut head, written.as_bytes(), value);
        }
    }
    if chunked {
        head.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    line(&mut head, b"Connection", connection.as_bytes());
    if let (Some(t), "keep-alive") = (framing.keepalive_header, connection) {
        line(
            &mut head,
            b"Keep-Alive",
            format!("timeout={}", t.as_secs()).as_bytes(),
        );
    }
    if let Some(CarriedLines(carried)) = parts.extensions.get::<CarriedLines>() {
        for (name, value) in carried {
            line(&mut head, name, value);
        }
    }
    for (name, value) in &parts.headers {
        if ![SERVER, CONTENT_TYPE, CONTENT_LENGTH, LOCATION, CONNECTION].contains(name)
            && name.as_str() != "keep-alive"
        {
            line(&mut head, title_case(name).as_bytes(), value.as_bytes());
        }
    }
    if let Some(raw) = raw {
        for (i, (place, span)) in raw.lines.iter().enumerate() {
            if *place == Place::AsIs {
                line(&mut head, &raw.head[span.name.clone()], raw.value(i));
            }
        }
    }
    for (name, value) in added {
        line(&mut head, name.as_bytes(), value.as_bytes());
    }
    head.extend_from_slice(b"\r\n");

    let head_len = head.len() as u64;
    let mut written = Written {
        keep: false,
        body: 0,
        total: 0,
        head: framing.keep_head.then(|| head.clone()),
    };
    let mut pace = framing
        .pace
        .map(|(limit, started)| Pace::new(limit, started));
    if !has_body {
        if send_head(conn, head, pace.as_mut()).await.is_ok() {
            written.total = head_len;
            written.keep = keep_alive;
        }
        return written;
    }
    // a body known whole (a page, a small buffered answer) goes with the
    // head in one write
    if let Some(size) = http_body::Body::size_hint(&body)
        .exact()
        .filter(|n| *n <= WHOLE_WRITE)
    {
        head.reserve(usize::try_from(size).unwrap_or(0));
        let mut complete = true;
        while let Some(frame) = body.frame().await {
            match frame.map(|f| f.into_data()) {
                Ok(Ok(data)) => head.extend_from_slice(&data),
                Ok(Err(_)) => {}
                Err(_) => {
                    // the head and what came, then the connection closes
                    complete = false;
                    break;
                }
            }
        }
        let total = head.len() as u64;
        if send_head(conn, head, pace.as_mut()).await.is_ok() {
            written.total = total;
            written.body = total - head_len;
            written.keep = complete && keep_alive;
        }
        return written;
    }
    if send_head(conn, head, pace.as_mut()).await.is_err() {
        return written;
    }
    written.total = head_len;
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let data = match frame.map(|f| f.into_data()) {
            Ok(Ok(data)) => data,
            Ok(Err(_)) => continue,
            Err(_) => return written,
        };
        if data.is_empty() {
            continue;
        }
        let sent = if chunked {
            out.clear();
            rginx_http::chunked::put_chunk(&mut out, &data);
            paced_write(conn, &out, pace.as_mut())
                .await
                .map(|()| out.len())
        } else {
            paced_write(conn, &data, pace.as_mut())
                .await
                .map(|()| data.len())
        };
        match sent {
            Ok(n) => {
                written.body += data.len() as u64;
                written.total += n as u64;
            }
            Err(_) => return written,
        }
    }
    if chunked {
        let last = rginx_http::chunked::LAST_CHUNK;
        if paced_write(conn, last, pace.as_mut()).await.is_err() {
            return written;
        }
        written.total += last.len() as u64;
    }
    written.keep = keep_alive;
    written
}

/// Writes a head (and what was gathered with it), paced when `pace` is
/// given; its buffer goes back to the connection.
async fn send_head(
    conn: &mut ClientConn,
    head: Vec<u8>,
    pace: Option<&mut Pace>,
) -> std::io::Result<()> {
    match pace {
        None => conn.write_head(head).await,
        Some(pace) => {
            let written = paced_write(conn, &head, Some(pace)).await;
            conn.heads.give_back(head);
            written
        }
    }
}

/// The longest body of known length gathered with its head for one
/// write; a longer one streams (so a large backend body is never held
/// whole).
pub(crate) const WHOLE_WRITE: u64 = 64 * 1024;

/// One header line.
fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A header name rginx sets itself, written as nginx spells such names
/// (`keep-alive` -> `Keep-Alive`).
fn title_case(name: &HeaderName) -> String {
    let mut out = String::with_capacity(name.as_str().len());
    let mut upper = true;
    for c in name.as_str().chars() {
        out.push(if upper { c.to_ascii_uppercase() } else { c });
        upper = c == '-';
    }
    out
}
