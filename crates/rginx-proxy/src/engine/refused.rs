//! nginx's info lines for requests refused before they exist: a head its
//! checks refuse as it arrives (`ngx_http_process_request_line`,
//! `ngx_http_process_request_headers`, `ngx_http_process_request_header`
//! in `src/http/ngx_http_request.c`), or one it cannot read. Each names
//! what was wrong, what nginx was doing ("while reading client request
//! line", "... request headers"), and the context known so far: the
//! client, the socket's default server, the request line and the host
//! once they were read.

use std::borrow::Cow;

use rginx_http::head_scan::HeadRefusal;
use rginx_http::request::InvalidRequest;

use super::context::Suffix;
use super::Engine;
use crate::http1::ClientConnection;

/// nginx's `NGX_MAX_ERROR_STR - 300`: the most of a header line its
/// "too long header line" message quotes.
const QUOTED_LINE: usize = 1748;

/// What a refused head held when it was refused.
struct HeadSoFar<'a> {
    /// The request line, when it ended.
    request_line: Option<&'a [u8]>,
    /// The request line read so far, when it did not.
    partial_request_line: &'a [u8],
    /// The complete header lines.
    lines: Vec<&'a [u8]>,
    /// The line being read when the head was refused.
    current: &'a [u8],
}

impl<'a> HeadSoFar<'a> {
    fn read(bytes: &'a [u8]) -> HeadSoFar<'a> {
        let start = bytes
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(bytes.len());
        let mut rest = &bytes[start..];
        let mut request_line = None;
        let mut lines = Vec::new();
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let line = trim_cr(&rest[..end]);
            rest = &rest[end + 1..];
            if request_line.is_none() {
                request_line = Some(line);
            } else if !line.is_empty() {
                lines.push(line);
            }
        }
        // the line being read: what follows the last line end, or, when
        // the refused bytes ended with one, the last line
        let current = match trim_cr(rest) {
            [] => lines.last().copied().unwrap_or_default(),
            partial => partial,
        };
        HeadSoFar {
            partial_request_line: if request_line.is_none() { rest } else { &[] },
            request_line,
            lines,
            current,
        }
    }

    /// The first complete `Host` line's value.
    fn host(&self) -> Option<&'a [u8]> {
        self.lines.iter().find_map(|l| {
            let (name, value) = split_line(l);
            name.eq_ignore_ascii_case(b"host").then(|| trim(value))
        })
    }

    /// The last complete line named `name`, and the one before it.
    fn named(&self, name: &[u8]) -> (Option<&'a [u8]>, Option<&'a [u8]>) {
        let mut found = self
            .lines
            .iter()
            .rev()
            .filter(|l| split_line(l).0.eq_ignore_ascii_case(name));
        (found.next().copied(), found.next().copied())
    }
}

impl Engine {
    /// nginx's info line for a head refused as it arrived (`read`: its
    /// bytes so far; `pipelined`: it came after another request in the
    /// same read).
    pub(crate) fn log_refused(
        &self,
        connection: &ClientConnection,
        refusal: HeadRefusal,
        read: &[u8],
        pipelined: bool,
    ) {
        let head = HeadSoFar::read(read);
        let in_line = match refusal {
            HeadRefusal::RequestLine | HeadRefusal::Version | HeadRefusal::Malformed => true,
            _ => head.request_line.is_none(),
        };
        let coding = || head.named(b"transfer-encoding").0.map(value_of);
        let message: Cow<'_, str> = match refusal {
            HeadRefusal::RequestLine => "client sent too long URI".into(),
            HeadRefusal::Headers if head.current.is_empty() => {
                "client sent too large request".into()
            }
            HeadRefusal::Headers => {
                let quoted = &head.current[..head.current.len().min(QUOTED_LINE)];
                format!("client sent too long header line: \"{}...\"", text(quoted)).into()
            }
            HeadRefusal::TooManyLines => "client sent too many header lines".into(),
            HeadRefusal::Duplicate => {
                let named = [&b"content-length"[..], b"transfer-encoding"]
                    .into_iter()
                    .map(|n| head.named(n))
                    .find(|(_, before)| before.is_some());
                match named {
                    Some((Some(line), Some(before))) => format!(
                        "client sent duplicate header line: \"{}\", previous value: \"{}\"",
                        header_text(line),
                        header_text(before)
                    )
                    .into(),
                    _ => "client sent duplicate header line".into(),
                }
            }
            HeadRefusal::LengthAndChunked => {
                "client sent \"Content-Length\" and \"Transfer-Encoding\" headers at the same time"
                    .into()
            }
            HeadRefusal::CodingOnHttp10 => {
                "client sent HTTP/1.0 request with \"Transfer-Encoding\" header".into()
            }
            HeadRefusal::UnknownCoding => format!(
                "client sent unknown \"Transfer-Encoding\": \"{}\"",
                text(coding().unwrap_or_default())
            )
            .into(),
            HeadRefusal::InvalidLength => "client sent invalid \"Content-Length\" header".into(),
            HeadRefusal::Version => "client sent invalid version".into(),
            HeadRefusal::Malformed | HeadRefusal::InvalidChunk => {
                "client sent invalid request".into()
            }
        };
        // nginx knows the request line once it was parsed, or, for a URI
        // too long, as far as it was read
        let request = match refusal {
            HeadRefusal::RequestLine => head.request_line.or(Some(head.partial_request_line)),
            HeadRefusal::Malformed => None,
            _ => head.request_line,
        };
        let host = if in_line { None } else { head.host() };
        self.log_info(
            None, connection, &message, in_line, pipelined, request, host,
        );
    }

    /// nginx's info lines for the header lines of `raw` (a whole head,
    /// served in `server`) that the configuration drops for their names
    /// (`ignore_invalid_headers`): "client sent invalid header line".
    pub(crate) fn log_dropped_headers(
        &self,
        connection: &ClientConnection,
        raw: &[u8],
        server: rginx_core::select::ServerId,
    ) {
        let head = HeadSoFar::read(raw);
        let mut host = None;
        for line in &head.lines {
            let (name, value) = split_line(line);
            let Ok(name) = std::str::from_utf8(name) else {
                continue;
            };
            if !self.runtime.drops_header(server, name) {
                if host.is_none() && name.eq_ignore_ascii_case("host") {
                    host = Some(trim(value));
                }
                continue;
            }
            let message = format!(
                "client sent invalid header line: \"{}\"",
                text(line.trim_ascii_end())
            );
            // nginx's server is the request's once its Host line was read
            let scope = host.map(|_| rginx_core::plan::LogScope {
                server,
                location: None,
            });
            self.log_info(
                scope,
                connection,
                &message,
                false,
                false,
                head.request_line,
                host,
            );
        }
    }

    /// nginx's info line for a request refused for its TLS, in the server
    /// its `Host` names: no TLS on a TLS port (497), a client certificate
    /// that failed (495) or is missing (496), another name than the
    /// handshake's (421).
    pub(crate) fn log_tls_refused(
        &self,
        connection: &ClientConnection,
        raw: &[u8],
        server: rginx_core::select::ServerId,
        status: u16,
        tls: Option<&rginx_core::plan::TlsFacts>,
    ) {
        if !tracing::enabled!(tracing::Level::INFO) {
            return;
        }
        let message = match status {
            497 => "client sent plain HTTP request to HTTPS port".to_string(),
            496 => "client sent no required SSL certificate".to_string(),
            495 => {
                let (code, why) = tls
                    .and_then(|t| t.client.as_ref())
                    .and_then(|c| c.error)
                    .unwrap_or((0, ""));
                format!("client SSL certificate verify error: ({code}:{why})")
            }
            _ => "client attempted to request the server name different from the one that was negotiated".to_string(),
        };
        let head = HeadSoFar::read(raw);
        let scope = rginx_core::plan::LogScope {
            server,
            location: None,
        };
        self.log_info(
            Some(scope),
            connection,
            &message,
            false,
            false,
            head.request_line,
            head.host(),
        );
    }

    /// nginx's info line for a whole head it cannot read.
    pub(crate) fn log_unreadable(
        &self,
        connection: &ClientConnection,
        error: InvalidRequest,
        raw: &[u8],
        pipelined: bool,
    ) {
        let head = HeadSoFar::read(raw);
        match error {
            InvalidRequest::Line => self.log_info(
                None,
                connection,
                "client sent invalid request",
                true,
                pipelined,
                None,
                None,
            ),
            InvalidRequest::Header { start, at } => {
                let line = raw.get(start..at).unwrap_or_default();
                let byte = raw.get(at).copied().unwrap_or(0);
                let message = format!(
                    "client sent invalid header line: \"{}\\x{byte:02X}...\"",
                    text(line)
                );
                self.log_info(
                    None,
                    connection,
                    &message,
                    false,
                    pipelined,
                    head.request_line,
                    head.host(),
                );
            }
        }
    }

    /// nginx's info line for a client that closed its connection before a
    /// request: after one, `ngx_http_keepalive_handler`'s (no context);
    /// before the first, `ngx_http_wait_request_handler`'s.
    pub(crate) fn log_client_closed(&self, connection: &ClientConnection) {
        if !tracing::enabled!(tracing::Level::INFO) {
            return;
        }
        let scope = self.runtime.socket_scope(connection.local);
        let log_set = self.log_set(scope);
        if connection.served > 0 {
            tracing::info!(
                log_set,
                "*{} client {} closed keepalive connection",
                connection.number,
                connection.remote.ip()
            );
        } else {
            tracing::info!(
                log_set,
                "*{} client closed connection while waiting for request, client: {}, server: {}",
                connection.number,
                connection.remote.ip(),
                connection.local
            );
        }
    }

    /// nginx's info line for a TLS handshake that did not finish
    /// (`ngx_http_ssl_handshake`, `ngx_ssl_handshake`).
    pub(crate) fn log_handshake_failed(
        &self,
        connection: &ClientConnection,
        error: &crate::tls::accept::HandshakeError,
    ) {
        if !tracing::enabled!(tracing::Level::INFO) {
            return;
        }
        let scope = self.runtime.socket_scope(connection.local);
        let log_set = self.log_set(scope);
        tracing::info!(
            log_set,
            "*{} {} while SSL handshaking, client: {}, server: {}",
            connection.number,
            error,
            connection.remote.ip(),
            connection.local
        );
    }

    /// Writes an info line with nginx's context, to `scope`'s logs (for a
    /// client that has no request yet, the socket's default server's).
    #[allow(clippy::too_many_arguments)]
    fn log_info(
        &self,
        scope: Option<rginx_core::plan::LogScope>,
        connection: &ClientConnection,
        message: &str,
        in_line: bool,
        pipelined: bool,
        request: Option<&[u8]>,
        host: Option<&[u8]>,
    ) {
        let scope = scope.unwrap_or_else(|| self.runtime.socket_scope(connection.local));
        let log_set = self.log_set(scope);
        let during = match (in_line, pipelined) {
            (true, true) => "reading client pipelined request line",
            (true, false) => "reading client request line",
            (false, _) => "reading client request headers",
        };
        let (request, host) = (request.map(text), host.map(text));
        let suffix = Suffix {
            client: connection.remote,
            server: self.runtime.server_name(scope.server),
            request: request.as_ref().map(|r| r as &dyn std::fmt::Display),
            upstream: None,
            host: host.as_ref().map(|h| h as &dyn std::fmt::Display),
        };
        tracing::info!(
            log_set,
            "*{} {message} while {during}{suffix}",
            connection.number
        );
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    let end = line.iter().rposition(|&b| b != b'\r').map_or(0, |e| e + 1);
    &line[..end]
}

fn trim(value: &[u8]) -> &[u8] {
    value.trim_ascii()
}

/// A header line's name and what follows its colon.
fn split_line(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|&b| b == b':') {
        Some(c) => (&line[..c], &line[c + 1..]),
        None => (line, &[]),
    }
}

fn value_of(line: &[u8]) -> &[u8] {
    trim(split_line(line).1)
}

/// A header line as nginx prints it: `Name: value`.
fn header_text(line: &[u8]) -> String {
    let (name, value) = split_line(line);
    format!("{}: {}", text(name), text(trim(value)))
}

/// Bytes as log text.
fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_so_far_knows_its_request_line_host_and_current_line() {
        let head = HeadSoFar::read(b"\r\nGET /p HTTP/1.1\r\nHost: h \r\nX-Big: aaa");
        assert_eq!(head.request_line, Some(&b"GET /p HTTP/1.1"[..]));
        assert_eq!(head.host(), Some(&b"h"[..]));
        assert_eq!(head.current, b"X-Big: aaa");
        let head =
            HeadSoFar::read(b"POST / HTTP/1.1\r\nContent-Length: 1\r\ncontent-length: 2\r\n");
        let (last, before) = head.named(b"content-length");
        assert_eq!(header_text(last.unwrap()), "content-length: 2");
        assert_eq!(header_text(before.unwrap()), "Content-Length: 1");
        let head = HeadSoFar::read(b"GET /aaaa");
        assert_eq!(
            (head.request_line, head.partial_request_line),
            (None, &b"GET /aaaa"[..])
        );
    }
}
