//! Request targets the way nginx 1.22 reads them: splitting the target of
//! the request line ([`parse_target`]), turning the raw path into `$uri`
//! ([`normalize_path`]), escaping a rebuilt URI for `proxy_pass`
//! ([`escape_path`]), and the `$arg_NAME` / `$cookie_NAME` lookups
//! ([`arg`], [`cookie`], [`cookie_in`]).
//!
//! The rules follow nginx's `src/http/ngx_http_parse.c`
//! (`ngx_http_parse_request_line`, `ngx_http_parse_complex_uri`,
//! `ngx_http_arg`, `ngx_http_parse_multi_header_lines`),
//! `src/http/ngx_http_request.c` (`ngx_http_process_request_uri`,
//! `ngx_http_validate_host`) and `src/core/ngx_string.c`
//! (`ngx_escape_uri`); the code here is written from the observed behaviour,
//! and the tests hold answers obtained from a running nginx 1.22.1.
//!
//! Everything works on bytes: `$uri` is what `%XX` decodes to, which need
//! not be UTF-8 (`/a%FFb` gives the three bytes `/a`, `0xFF`, `b`), so
//! [`normalize_path`] returns a `Vec<u8>` and [`escape_path`] takes `&[u8]`.

/// A case in which nginx answers `400 Bad Request` while reading the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// The target is neither origin-form (`/path`) nor absolute-form
    /// (`scheme://host[:port][/path]`): `*`, `host:443` (so `CONNECT` and
    /// `OPTIONS *` fail too), an empty target, `http:/x`, `http://user@h/`,
    /// `http://h_x/`, a non-digit port, `http://h#f`, and so on.
    #[error("client sent invalid request target")]
    BadTarget,
    /// A control character (below 0x20), a space or DEL (0x7f) anywhere in
    /// the path, query or fragment. nginx 1.22 no longer accepts spaces in
    /// the request line (`GET /a b HTTP/1.1` is a 400).
    #[error("client sent control character or space in request target")]
    ControlChar,
    /// The host of an absolute-form target fails `ngx_http_validate_host`:
    /// empty (`http://:80/`), only a dot (`http://./`), or two dots in a row
    /// (`http://a..b/`).
    #[error("client sent invalid host in request line")]
    InvalidHost,
    /// A `%` in the path not followed by two hexadecimal digits (`/a%zz`,
    /// `/a%4`, `/a%`). The query is never decoded, so `?%zz` is fine.
    #[error("client sent invalid percent-encoding in URI path")]
    BadPercentEncoding,
    /// `%00` in the path.
    #[error("client sent %00 in URI path")]
    EncodedNul,
    /// A `..` segment (raw or written `%2E%2E`) that climbs above the root:
    /// `/..`, `/../a`, `/a/../..`.
    #[error("client sent URI climbing above the root")]
    AboveRoot,
}

/// The parts of a request target as nginx splits them
/// (`ngx_http_parse_request_line` and `ngx_http_process_request_uri`).
///
/// Every slice borrows from the target; nothing is decoded here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTarget<'a> {
    /// The host of an absolute-form target (`GET http://Example.COM:8080/x`
    /// gives `Example.COM`), `None` for origin-form.
    ///
    /// The port is removed, and so is one trailing dot (`http://a./` gives
    /// `a`), as `ngx_http_validate_host` does; an IP literal keeps its
    /// brackets (`[::1]`). The case is left as sent because lowercasing
    /// would allocate: nginx lowercases it, so `$host` is
    /// `host.to_ascii_lowercase()` and server names must be compared with
    /// `eq_ignore_ascii_case`. When present it takes precedence over the
    /// `Host` header for `$host` and for choosing the server.
    pub host: Option<&'a str>,
    /// The raw path as received: from the first `/` after the authority up
    /// to the first `?` or `#`, e.g. `/a%20b//c`. Absolute-form targets
    /// without a path (`http://h`, `http://h:1`, `http://h?x`) get `/`.
    pub raw_path: &'a str,
    /// The raw query after the first `?` up to the first `#`, `None` when
    /// there is no `?` or when a `#` comes before it (`/a#f?x=1` has no
    /// args for nginx). `/a?` gives `Some("")`; nginx's `$args` is then
    /// empty and `$is_args` is empty too (see [`RequestTarget::is_args`]).
    pub args: Option<&'a str>,
    /// `$request_uri`: the target from the path on, fragment included
    /// (`/x?a=1#f`). For absolute-form it starts at the path
    /// (`http://h/x?y` gives `/x?y`); with no path it is `/`
    /// (`http://h:1`), or starts at the `?` (`http://h?a=1` gives `?a=1`).
    pub request_uri: &'a str,
    /// The target is absolute-form with a `?` right after the authority
    /// (`http://h?x`); nginx's `empty_path_in_uri`. nginx then considers
    /// `request_uri` unusable as-is (`valid_unparsed_uri` is off), so
    /// `proxy_pass` without a URI part sends the rebuilt `$uri?$args`
    /// instead of the original target.
    pub empty_path: bool,
}

impl<'a> RequestTarget<'a> {
    /// `$is_args`: `"?"` when the query is non-empty, `""` otherwise
    /// (`/a?` gives `""`; `ngx_http_variable_is_args` tests `args.len`).
    /// The same test decides whether `proxy_pass` appends `?args` to a
    /// rebuilt URI.
    pub fn is_args(&self) -> &'static str {
        match self.args {
            Some(a) if !a.is_empty() => "?",
            _ => "",
        }
    }

    /// `$args` (and `$query_string`): the query, or `""` without one.
    pub fn args_or_empty(&self) -> &'a str {
        self.args.unwrap_or("")
    }

    /// Whether the path had a `%` (nginx's `quoted_uri`). When `proxy_pass`
    /// rebuilds the URI (it has a URI part replacing the location prefix),
    /// nginx escapes the decoded path with [`escape_path`] only if this is
    /// set (or the request was internally redirected); otherwise it copies
    /// `$uri` as it is, so `/p/a"b` is sent with a raw `"` while `/p/a"b%41`
    /// is sent as `a%22bA`.
    pub fn quoted(&self) -> bool {
        self.raw_path.contains('%')
    }
}

/// Splits a request target as nginx's request-line parser does.
///
/// `target` is the text between the method and the protocol version
/// (without the separating spaces). Accepted forms:
///
/// * origin-form, starting with `/`;
/// * absolute-form `scheme://authority[path][?query][#fragment]`, where
///   nginx accepts any scheme spelled `ALPHA *(ALPHA / DIGIT / "+" / "-" /
///   ".")` (`ftp://h/x` is served like `http://h/x`), a host made of
///   letters, digits, `.` and `-` only (no `_`, no userinfo), or an IP
///   literal in brackets, then an optional port of digits, possibly empty
///   (`http://h:/x` is fine).
///
/// Anything else, including `*` and authority-form (`h:443`), is a 400.
/// Bytes of 0x80 and above are accepted anywhere in the path and query.
pub fn parse_target(target: &str) -> Result<RequestTarget<'_>, UriError> {
    let b = target.as_bytes();
    let mut host = None;
    let mut empty_path = false;

    let path_start = match b.first() {
        Some(b'/') => 0,
        Some(c) if c.is_ascii_alphabetic() => {
            let mut i = 1;
            while i < b.len() && is_scheme_byte(b[i]) {
                i += 1;
            }
            if !b[i..].starts_with(b"://") {
                return Err(UriError::BadTarget);
            }
            // The second `/` of `://`: nginx points `$request_uri` and the
            // path at it when the authority is all there is.
            let slash = i + 2;
            i += 3;

            let host_start = i;
            if b.get(i) == Some(&b'[') {
                // IP literal: unreserved, sub-delims and `:` up to `]`.
                i += 1;
                loop {
                    match b.get(i) {
                        Some(b']') => {
                            i += 1;
                            break;
                        }
                        Some(&c) if is_ip_literal_byte(c) => i += 1,
                        _ => return Err(UriError::BadTarget),
                    }
                }
            } else {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'-')
                {
                    i += 1;
                }
            }
            let host_end = i;

            if b.get(i) == Some(&b':') {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }

            // Only a path, a query or the end may follow the authority.
            let start = match b.get(i) {
                None => None,
                Some(b'/') => Some(i),
                Some(b'?') => {
                    empty_path = true;
                    Some(i)
                }
                Some(_) => return Err(UriError::BadTarget),
            };

            host = Some(validate_host(&target[host_start..host_end])?);

            match start {
                Some(start) => start,
                None => {
                    let slash = &target[slash..slash + 1];
                    return Ok(RequestTarget {
                        host,
                        raw_path: slash,
                        args: None,
                        request_uri: slash,
                        empty_path: false,
                    });
                }
            }
        }
        _ => return Err(UriError::BadTarget),
    };

    let rest = &target[path_start..];
    // nginx rejects control characters, spaces and DEL in every state of
    // the URI, fragment included; everything else (0x80 and above too) is
    // accepted.
    if rest.bytes().any(|c| c <= b' ' || c == 0x7f) {
        return Err(UriError::ControlChar);
    }

    // The path ends at the first raw `?` or `#`. A `#` ends `$uri` (the
    // complex-URI parser stops there), and when it comes before the `?`
    // nginx finds no args at all; when it comes after, the args stop at it.
    let path_end = rest.find(['?', '#']).unwrap_or(rest.len());
    let args = if rest.as_bytes().get(path_end) == Some(&b'?') {
        let query = &rest[path_end + 1..];
        Some(&query[..query.find('#').unwrap_or(query.len())])
    } else {
        None
    };
    let raw_path = if empty_path { "/" } else { &rest[..path_end] };

    Ok(RequestTarget {
        host,
        raw_path,
        args,
        request_uri: rest,
        empty_path,
    })
}

/// Characters nginx accepts in a scheme after its first letter.
fn is_scheme_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')
}

/// Characters nginx accepts between `[` and `]`: unreserved, sub-delims
/// and `:`.
fn is_ip_literal_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b':' | b'-'
                | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        )
}

/// `ngx_http_validate_host` on a request-line host (port already cut off):
/// two dots in a row are refused, one trailing dot is dropped, and nothing
/// may be left empty. A leading dot is accepted (`http://.a/` gives `.a`).
fn validate_host(host: &str) -> Result<&str, UriError> {
    if host.contains("..") {
        return Err(UriError::InvalidHost);
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() {
        return Err(UriError::InvalidHost);
    }
    Ok(host)
}

/// Where the complex-URI state machine stands after the last byte written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Inside a segment.
    Usual,
    /// Just after a `/`.
    Slash,
    /// After `/.`.
    Dot,
    /// After `/..`.
    DotDot,
}

/// `$uri` from a raw path, as `ngx_http_parse_complex_uri` builds it.
///
/// * `%XX` is decoded (either case of hex digit) and the decoded byte is
///   then treated like a raw one, so `%2F` is a slash and `%2E%2E` a `..`
///   segment: `/a%2F..%2Fb` gives `/b`.
/// * Except `%25`, `%23` and `%3F`: they give a plain `%`, `#` or `?` that
///   neither ends the path nor starts a query (`/a%3Fb` gives `/a?b`).
/// * `%00` is a 400 ([`UriError::EncodedNul`]); a `%` without two hex
///   digits is a 400 ([`UriError::BadPercentEncoding`]). Other control
///   bytes are let through (`%0a` gives a newline, `%7f` DEL).
/// * A raw `?` or `#` ends the path (the rest is query or fragment).
/// * With `merge_slashes`, runs of `/` become one (`%2F%2F` too).
/// * A `.` segment is dropped; a trailing one leaves the slash (`/a/.` gives
///   `/a/`). `.` and `..` are segments only when alone between slashes
///   (`/a/..b`, `/a/...` and `/a/.%41` stay as they are).
/// * A `..` segment removes itself and the segment before; a trailing one
///   leaves the slash (`/a/b/..` gives `/a/`). With `merge_slashes off`,
///   the empty segment between `//` counts (`/a//..` gives `/a/`).
///   Climbing above the root is a 400 ([`UriError::AboveRoot`]).
/// * `\`, `+`, `;` and bytes of 0x80 and above are ordinary bytes on Unix.
///
/// For a path without `%`, `//`, `/.` or `#` this returns the path
/// unchanged, which is what nginx does when it skips the complex parser.
/// An empty path gives `/` (nginx's `empty_path_in_uri`).
///
/// Control characters in the raw path are refused by [`parse_target`],
/// not here.
pub fn normalize_path(raw_path: &str, merge_slashes: bool) -> Result<Vec<u8>, UriError> {
    let src = raw_path.as_bytes();
    if src.is_empty() {
        return Ok(b"/".to_vec());
    }
    let mut out = Vec::with_capacity(src.len());
    let mut state = State::Usual;
    let mut i = 0;
    while let Some(&raw) = src.get(i) {
        let c = if raw == b'%' {
            let decoded = match (src.get(i + 1), src.get(i + 2)) {
                (Some(&h), Some(&l)) => match (hex_value(h), hex_value(l)) {
                    (Some(h), Some(l)) => (h << 4) | l,
                    _ => return Err(UriError::BadPercentEncoding),
                },
                _ => return Err(UriError::BadPercentEncoding),
            };
            i += 3;
            match decoded {
                0 => return Err(UriError::EncodedNul),
                b'%' | b'#' | b'?' => {
                    // Kept literally, and whatever came before it (even a
                    // `/.`) is now an ordinary segment.
                    out.push(decoded);
                    state = State::Usual;
                    continue;
                }
                other => other,
            }
        } else {
            i += 1;
            if raw == b'?' || raw == b'#' {
                break;
            }
            raw
        };
        state = step(state, c, &mut out, merge_slashes)?;
    }
    match state {
        State::Dot => {
            out.pop();
        }
        State::DotDot => climb(&mut out)?,
        State::Usual | State::Slash => {}
    }
    Ok(out)
}

/// Feeds one (decoded) byte to the dot-segment machine.
fn step(state: State, c: u8, out: &mut Vec<u8>, merge_slashes: bool) -> Result<State, UriError> {
    Ok(match (state, c) {
        (State::Slash, b'/') => {
            if !merge_slashes {
                out.push(c);
            }
            State::Slash
        }
        (State::Dot, b'/') => {
            // `/./`: drop the dot, keep the slash already written.
            out.pop();
            State::Slash
        }
        (State::DotDot, b'/') => {
            climb(out)?;
            State::Slash
        }
        (_, b'/') => {
            out.push(c);
            State::Slash
        }
        (State::Slash, b'.') => {
            out.push(c);
            State::Dot
        }
        (State::Dot, b'.') => {
            out.push(c);
            State::DotDot
        }
        _ => {
            out.push(c);
            State::Usual
        }
    })
}

/// Handles a finished `..` segment: `out` ends with `/..`; cut back to just
/// after the slash that starts the previous segment.
fn climb(out: &mut Vec<u8>) -> Result<(), UriError> {
    // Before the `/..` there must be at least one byte (the previous
    // segment's slash); nginx refuses when nothing is left to climb.
    let before = out
        .len()
        .checked_sub(3)
        .filter(|&n| n > 0)
        .ok_or(UriError::AboveRoot)?;
    match out[..before].iter().rposition(|&c| c == b'/') {
        Some(slash) => {
            out.truncate(slash + 1);
            Ok(())
        }
        None => Err(UriError::AboveRoot),
    }
}

/// The value of an ASCII hexadecimal digit.
fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Whether `ngx_escape_uri(…, NGX_ESCAPE_URI)` escapes `c`: control bytes,
/// space, DEL, bytes of 0x80 and above, and `" # % < > ? \ ^ ` { | }`.
/// Everything RFC 3986 allows in a path stays, `!$&'()*+,;=:@[]~` included.
fn escaped_in_uri(c: u8) -> bool {
    c <= b' '
        || c >= 0x7f
        || matches!(
            c,
            b'"' | b'#' | b'%' | b'<' | b'>' | b'?' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
        )
}

/// Appends `path` escaped as nginx escapes a URI it rebuilt
/// (`ngx_escape_uri` with `NGX_ESCAPE_URI`, uppercase hex): what the proxy
/// module sends when `proxy_pass` has a URI part that replaces the matched
/// location prefix. `/p/a%22%3C%E2%82%AC` (location `/p/`, `proxy_pass
/// http://b/q/`) reaches the backend as `/q/a%22%3C%E2%82%AC`, while
/// `%41` and `%2F` arrive as `A` and `/`.
///
/// nginx escapes only when the client's path had a `%`
/// ([`RequestTarget::quoted`]) or the request was internally redirected;
/// otherwise the decoded path is sent byte for byte.
pub fn escape_path(path: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &c in path {
        if escaped_in_uri(c) {
            out.push('%');
            out.push(char::from(HEX[usize::from(c >> 4)]));
            out.push(char::from(HEX[usize::from(c & 0xf)]));
        } else {
            out.push(char::from(c));
        }
    }
}

/// `$arg_NAME`: the raw (undecoded) value of the first argument called
/// `name` in the query `args`, as `ngx_http_arg` finds it.
///
/// * Names compare ASCII case-insensitively (`A=1` is `$arg_a`).
/// * Only `&` separates arguments (`x=1;a=2` has no `a`); the name must
///   start the query or follow a `&`, and be followed by `=`: `aa=1&a=2`
///   gives `2`, and a bare `a` (no `=`) is skipped, so `a&a=3` gives `3`.
/// * The value runs to the next `&`: `a=1=2` gives `1=2`, `a=` gives
///   `Some("")`, and `+`/`%XX` stay as sent.
/// * An empty query or an empty name finds nothing.
pub fn arg<'a>(args: &'a str, name: &str) -> Option<&'a str> {
    let a = args.as_bytes();
    let n = name.as_bytes();
    if n.is_empty() {
        return None;
    }
    let mut i = 0;
    // `name=` must fit: at least one byte (the `=`) after the name.
    while i + n.len() < a.len() {
        if (i == 0 || a[i - 1] == b'&')
            && a[i..i + n.len()].eq_ignore_ascii_case(n)
            && a[i + n.len()] == b'='
        {
            let start = i + n.len() + 1;
            let end = args[start..].find('&').map_or(a.len(), |p| start + p);
            return Some(&args[start..end]);
        }
        i += 1;
    }
    None
}

/// `$cookie_NAME` in one `Cookie` header value, as
/// `ngx_http_parse_multi_header_lines` finds it.
///
/// * Cookies are separated by `;` or `,`, each followed by any number of
///   spaces (not tabs: `x=1;\tc=3` has no `c`).
/// * Names compare ASCII case-insensitively (`C=1` is `$cookie_c`);
///   spaces may surround the `=` (`c =1`, `c= 1`), and those after it are
///   skipped.
/// * The value runs to the next `;` only, so `c=1,d=2` gives `1,d=2` and
///   `c= 1 ; d=2` gives `1 ` (trailing space kept); quotes are kept
///   (`"x y"`). `c=` gives `Some("")`.
/// * A cookie whose name matches but lacks `=` swallows the byte after
///   the name before looking for the next separator, so in `c;c=5` the
///   second `c` is never seen (nginx gives nothing there).
///
/// nginx looks at each `Cookie` header of an HTTP/1 request on its own; use
/// [`cookie_in`] for several. (Over HTTP/2, nginx 1.22 joins them with
/// `"; "` into one value first.)
pub fn cookie<'a>(cookie_header: &'a str, name: &str) -> Option<&'a str> {
    let v = cookie_header.as_bytes();
    let n = name.as_bytes();
    if n.is_empty() || n.len() > v.len() {
        return None;
    }
    let skip_spaces = |mut j: usize| {
        while j < v.len() && v[j] == b' ' {
            j += 1;
        }
        j
    };
    let mut i = 0;
    while i < v.len() {
        // Where to look for the next separator from.
        let mut j = i;
        if v.len() - i >= n.len() && v[i..i + n.len()].eq_ignore_ascii_case(n) {
            j = skip_spaces(i + n.len());
            if j < v.len() {
                if v[j] == b'=' {
                    let start = skip_spaces(j + 1);
                    let end = cookie_header[start..]
                        .find(';')
                        .map_or(v.len(), |p| start + p);
                    return Some(&cookie_header[start..end]);
                }
                // Not `=`: nginx has already stepped over this byte.
                j += 1;
            }
        }
        while j < v.len() {
            let c = v[j];
            j += 1;
            if c == b';' || c == b',' {
                break;
            }
        }
        i = skip_spaces(j);
    }
    None
}

/// `$cookie_NAME` over all `Cookie` header values of a request, in order:
/// the first header in which [`cookie`] finds the name wins.
pub fn cookie_in<'a, I>(cookie_headers: I, name: &str) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    cookie_headers.into_iter().find_map(|h| cookie(h, name))
}

#[cfg(test)]
mod tests {
    //! Every expected value below was observed on nginx 1.22.1 (Debian),
    //! with `return 200 "uri=[$uri] args=[$args] is_args=[$is_args]
    //! request_uri=[$request_uri] arg_a=[$arg_a] cookie_c=[$cookie_c]
    //! host=[$host]"`, a `merge_slashes off` server, and `proxy_pass
    //! http://127.0.0.1:8098/q/` in `location /p/` with a backend printing
    //! the request line it got.

    use super::*;

    /// What nginx printed: `$uri`, `$args`, `$is_args`, `$request_uri`,
    /// `$host` (lowercased, `None` for origin-form).
    type Seen = (Vec<u8>, String, &'static str, String, Option<String>);

    fn see(target: &str, merge_slashes: bool) -> Result<Seen, UriError> {
        let t = parse_target(target)?;
        let uri = normalize_path(t.raw_path, merge_slashes)?;
        Ok((
            uri,
            t.args_or_empty().to_owned(),
            t.is_args(),
            t.request_uri.to_owned(),
            t.host.map(str::to_ascii_lowercase),
        ))
    }

    /// Origin-form targets with `merge_slashes on`: (target, $uri, $args,
    /// $request_uri is the target itself).
    const ORIGIN: &[(&str, &[u8], &str)] = &[
        ("/", b"/", ""),
        ("/%41", b"/A", ""),
        ("/a%20b", b"/a b", ""),
        ("/a%2Fb", b"/a/b", ""),
        ("/a%25b", b"/a%b", ""),
        ("/a%3Fb?x=1", b"/a?b", "x=1"),
        ("/a%23b", b"/a#b", ""),
        ("/a%E2%82%ACb", b"/a\xe2\x82\xacb", ""),
        ("/a%ffb", b"/a\xffb", ""),
        ("/a%0ab", b"/a\nb", ""),
        ("/a%0Ab", b"/a\nb", ""),
        ("/a%7f", b"/a\x7f", ""),
        ("/a?%zz", b"/a", "%zz"),
        ("//a//b", b"/a/b", ""),
        ("/./a/./b/.", b"/a/b/", ""),
        ("/a/../b", b"/b", ""),
        ("/a/..", b"/", ""),
        ("/a/.", b"/a/", ""),
        ("/a/..b", b"/a/..b", ""),
        ("/a/...", b"/a/...", ""),
        ("/a/b/..?x", b"/a/", "x"),
        ("/a/.?x", b"/a/", "x"),
        ("/a/%2E%2E/b", b"/b", ""),
        ("/a/%2e%2e", b"/", ""),
        ("/a%2F..%2Fb", b"/b", ""),
        ("/a%2F%2Fb", b"/a/b", ""),
        ("/a\\b", b"/a\\b", ""),
        ("/a\\..\\b", b"/a\\..\\b", ""),
        ("/a+b?a=1+2", b"/a+b", "a=1+2"),
        ("/a;b=c;d", b"/a;b=c;d", ""),
        ("/a#frag", b"/a", ""),
        ("/a?x=1#frag", b"/a", "x=1"),
        ("/a#f?x=1", b"/a", ""),
        ("/a/..#x", b"/", ""),
        ("/a?", b"/a", ""),
        ("/a?#x", b"/a", ""),
        ("/a/#?x", b"/a/", ""),
        ("/a/.%3F", b"/a/.?", ""),
        ("/a/..%3F", b"/a/..?", ""),
        ("/a/.%41", b"/a/.A", ""),
        ("/a/.%2F", b"/a/", ""),
        ("/a/%2E%23", b"/a/.#", ""),
        ("/a?b?c", b"/a", "b?c"),
        ("/a/.%2e/", b"/", ""),
        ("/a/%25/..", b"/a/", ""),
        ("/a/%2e%2e%3f", b"/a/..?", ""),
        ("/a/b%2f%2e%2e?q", b"/a/", "q"),
        ("/a/./..", b"/", ""),
        ("/a/.b/..", b"/a/", ""),
        ("/%20/..", b"/", ""),
        ("/?a=%00", b"/", "a=%00"),
        ("/a#%zz", b"/a", ""),
        ("/a#/../..", b"/a", ""),
        ("/a#b%00", b"/a", ""),
        ("/.?x", b"/", "x"),
        ("/a//b?x", b"/a/b", "x"),
        ("/%41?x", b"/A", "x"),
        ("/a\"<>{}|^`", b"/a\"<>{}|^`", ""),
        ("/\u{20ac}", b"/\xe2\x82\xac", ""),
    ];

    #[test]
    fn origin_form_like_nginx() {
        for &(target, uri, args) in ORIGIN {
            let (u, a, is_args, request_uri, host) =
                see(target, true).unwrap_or_else(|e| panic!("{target}: {e}"));
            assert_eq!(u, uri, "$uri of {target}");
            assert_eq!(a, args, "$args of {target}");
            let want_is_args = if args.is_empty() { "" } else { "?" };
            assert_eq!(is_args, want_is_args, "$is_args of {target}");
            assert_eq!(request_uri, target, "$request_uri of {target}");
            assert_eq!(host, None);
        }
    }

    #[test]
    fn merge_slashes_off_like_nginx() {
        for &(target, uri) in &[
            ("//a//b", &b"//a//b"[..]),
            ("//..", b"/"),
            ("/a//..", b"/a/"),
            ("/a//../b", b"/a/b"),
            ("//a/%2F/b", b"//a///b"),
            ("/%2F..", b"/"),
            ("//..//..", b"/"),
            ("///..", b"//"),
            ("/a//%2e%2e", b"/a/"),
        ] {
            assert_eq!(see(target, false).unwrap().0, uri, "$uri of {target}");
        }
    }

    /// Targets nginx answered with 400.
    #[test]
    fn bad_requests_like_nginx() {
        use UriError::*;
        for &(target, err) in &[
            ("/a%00b", EncodedNul),
            ("/a/b/.%00", EncodedNul),
            ("/a%zzb", BadPercentEncoding),
            ("/a%2", BadPercentEncoding),
            ("/a%", BadPercentEncoding),
            ("/a%?x", BadPercentEncoding),
            ("/a/..%", BadPercentEncoding),
            ("/a%4?x", BadPercentEncoding),
            ("/..", AboveRoot),
            ("/../a", AboveRoot),
            ("/a/b/../../..", AboveRoot),
            ("/%2e%2e/a", AboveRoot),
            ("/a/b/%2E%2E%2F%2E%2E%2F%2E%2E", AboveRoot),
            ("/a/%2E%2E%2F%2E%2E%2F", AboveRoot),
            ("http://h/a/../..", AboveRoot),
            ("/a b", ControlChar),
            ("/a\tb", ControlChar),
            ("/a\x7fb", ControlChar),
            ("/a\x01b", ControlChar),
            ("/a?b\x01", ControlChar),
            ("*", BadTarget),
            ("h:443", BadTarget),
            ("1http://h/", BadTarget),
            ("a", BadTarget),
            ("?a", BadTarget),
            ("", BadTarget),
            ("http://user@h/x", BadTarget),
            ("http://a_b/x", BadTarget),
            ("http:/h/x", BadTarget),
            ("http:h/x", BadTarget),
            ("http://h:8a/x", BadTarget),
            ("http://h#f", BadTarget),
            ("http://[::1]x/", BadTarget),
            ("http://[::1/", BadTarget),
            ("http://h:80:80/x", BadTarget),
            ("http://h\\x/", BadTarget),
            ("http://:80/x", InvalidHost),
            ("http://./x", InvalidHost),
            ("http://a..b/x", InvalidHost),
            ("http://a../x", InvalidHost),
            ("http:///x", InvalidHost),
        ] {
            assert_eq!(see(target, true), Err(err), "{target:?}");
        }
    }

    #[test]
    fn absolute_form_like_nginx() {
        // (target, $uri, $args, $request_uri, $host)
        for &(target, uri, args, request_uri, host) in &[
            (
                "http://Example.COM:8080/x?y",
                &b"/x"[..],
                "y",
                "/x?y",
                "example.com",
            ),
            ("http://Example.COM./x", b"/x", "", "/x", "example.com"),
            ("http://Example.COM", b"/", "", "/", "example.com"),
            ("http://Example.COM:8080", b"/", "", "/", "example.com"),
            ("http://Example.COM?a=1", b"/", "a=1", "?a=1", "example.com"),
            (
                "http://Example.COM:80?a=1",
                b"/",
                "a=1",
                "?a=1",
                "example.com",
            ),
            ("HTTP://h/x", b"/x", "", "/x", "h"),
            ("ftp://h/x", b"/x", "", "/x", "h"),
            ("https://h/x", b"/x", "", "/x", "h"),
            ("a+b-c.d://h/x", b"/x", "", "/x", "h"),
            ("http://[::1]:80/x", b"/x", "", "/x", "[::1]"),
            ("http://[::1]/x", b"/x", "", "/x", "[::1]"),
            ("http://h:/x", b"/x", "", "/x", "h"),
            ("http://h/x#f", b"/x", "", "/x#f", "h"),
            ("http://h/%41", b"/A", "", "/%41", "h"),
            ("http://.a/x", b"/x", "", "/x", ".a"),
            ("http://a./x", b"/x", "", "/x", "a"),
            (
                "http://[a_b~!$&'()*+,;=:.-]/",
                b"/",
                "",
                "/",
                "[a_b~!$&'()*+,;=:.-]",
            ),
            ("http://[]/", b"/", "", "/", "[]"),
            ("http://-/x", b"/x", "", "/x", "-"),
            ("http://1.2.3.4:99/x", b"/x", "", "/x", "1.2.3.4"),
            ("http://h/x?a=1#f", b"/x", "a=1", "/x?a=1#f", "h"),
            ("http://h:1", b"/", "", "/", "h"),
            ("http://[::1]?a", b"/", "a", "?a", "[::1]"),
            ("http://[::1]:?a", b"/", "a", "?a", "[::1]"),
        ] {
            let (u, a, _, r, h) = see(target, true).unwrap_or_else(|e| panic!("{target}: {e}"));
            assert_eq!(u, uri, "$uri of {target}");
            assert_eq!(a, args, "$args of {target}");
            assert_eq!(r, request_uri, "$request_uri of {target}");
            assert_eq!(h.as_deref(), Some(host), "$host of {target}");
        }
        let t = parse_target("http://Example.COM:8080/x?y").unwrap();
        assert_eq!(t.host, Some("Example.COM"));
        assert!(!t.empty_path);
        assert!(parse_target("http://h?x").unwrap().empty_path);
        assert!(!parse_target("http://h").unwrap().empty_path);
    }

    /// `location /p/ { proxy_pass http://127.0.0.1:8098/q/; }`: what the
    /// backend received for each client target.
    #[test]
    fn proxy_rebuilt_uri_like_nginx() {
        for &(target, sent) in &[
            ("/p/a%20b", "/q/a%20b"),
            ("/p/a%41b", "/q/aAb"),
            ("/p/a\"<>{}|^`\\b", "/q/a\"<>{}|^`\\b"),
            ("/p/a\"b%41", "/q/a%22bA"),
            (
                "/p/%22%3C%3E%7B%7D%7C%5E%60%5C",
                "/q/%22%3C%3E%7B%7D%7C%5E%60%5C",
            ),
            (
                "/p/%21%24%26%27%28%29%2A%2B%2C%3B%3D%3A%40%5B%5D%7E%2D%2E%5F",
                "/q/!$&'()*+,;=:@[]~-._",
            ),
            ("/p/%25%23%3F", "/q/%25%23%3F"),
            ("/p/%0a%09%7f%01", "/q/%0A%09%7F%01"),
            ("/p/%E2%82%AC%ff", "/q/%E2%82%AC%FF"),
            ("/p/\u{20ac}", "/q/\u{20ac}"),
            ("/p/\u{20ac}%41", "/q/%E2%82%ACA"),
            ("/p/a%2Fb", "/q/a/b"),
            ("/p/a%20b?x=1&y", "/q/a%20b?x=1&y"),
            ("/p/a%20b?", "/q/a%20b"),
            ("/p//x//y%41", "/q/x/yA"),
            ("/p/a%20b#frag", "/q/a%20b"),
            ("/p/x#y", "/q/x"),
        ] {
            let t = parse_target(target).unwrap();
            let uri = normalize_path(t.raw_path, true).unwrap();
            let rest = &uri[b"/p/".len()..];
            let mut out = String::from("/q/");
            if t.quoted() {
                escape_path(rest, &mut out);
            } else {
                out.push_str(std::str::from_utf8(rest).unwrap());
            }
            if !t.is_args().is_empty() {
                out.push('?');
                out.push_str(t.args_or_empty());
            }
            assert_eq!(out, sent, "{target}");
        }
    }

    #[test]
    fn escape_path_table() {
        let mut out = String::new();
        let all: Vec<u8> = (1..=255).collect();
        escape_path(&all, &mut out);
        let kept: String = out.split('%').map(|s| s.get(2..).unwrap_or(s)).collect();
        assert_eq!(
            kept,
            "!$&'()*+,-./0123456789:;=@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]_abcdefghijklmnopqrstuvwxyz~"
        );
        assert!(out.starts_with("%01%02"));
        assert!(out.ends_with("%FE%FF"));
    }

    /// `$arg_a` and `$arg_aa` for each query (nginx prints not-found as
    /// empty; `Some("")` is a found empty value).
    #[test]
    fn args_like_nginx() {
        for &(args, a, aa) in &[
            ("a=1", Some("1"), None),
            ("aa=1&a=2", Some("2"), Some("1")),
            ("ba=1&a=2", Some("2"), None),
            ("A=1", Some("1"), None),
            ("a", None, None),
            ("a&a=3", Some("3"), None),
            ("a=", Some(""), None),
            ("a=&a=2", Some(""), None),
            ("&&a=1&&", Some("1"), None),
            ("x=1;a=2", None, None),
            ("x=1&a=2&a=3", Some("2"), None),
            ("a=1=2", Some("1=2"), None),
            ("a=%41+b", Some("%41+b"), None),
            ("aA=1&Aa=2", None, Some("1")),
            ("xa=1", None, None),
            ("a=1&aa=2", Some("1"), Some("2")),
            ("=1&a", None, None),
            ("a%3D1", None, None),
            ("", None, None),
        ] {
            assert_eq!(arg(args, "a"), a, "$arg_a of {args:?}");
            assert_eq!(arg(args, "aa"), aa, "$arg_aa of {args:?}");
        }
        assert_eq!(arg("a=1", ""), None);
        // Through parse_target: the fragment is not part of the args.
        let t = parse_target("/?a=1#x").unwrap();
        assert_eq!(arg(t.args_or_empty(), "a"), Some("1"));
    }

    /// `$cookie_c` for each list of `Cookie` headers.
    #[test]
    fn cookies_like_nginx() {
        for &(headers, want) in &[
            (&["c=1"][..], Some("1")),
            (&["C=1"], Some("1")),
            (&["cc=1; c=2"], Some("2")),
            (&["c =1"], Some("1")),
            (&["c= 1 ; d=2"], Some("1 ")),
            (&["c=\"x y\"; d=1"], Some("\"x y\"")),
            (&["a=1,c=2"], Some("2")),
            (&["a=1, c=2"], Some("2")),
            (&["c=1,d=2"], Some("1,d=2")),
            (&["c;c=5"], None),
            (&["c,c=5"], None),
            (&["c"], None),
            (&["c=1", "c=2"], Some("1")),
            (&["a=1", "c=2"], Some("2")),
            (&["c", "c=7"], Some("7")),
            (&["x=1;c=3"], Some("3")),
            (&["x=1;  c=3"], Some("3")),
            (&["x=1;\tc=3"], None),
            (&["c="], Some("")),
            (&["c=;d=1"], Some("")),
            (&["xc=1"], None),
            (&["c=a=b"], Some("a=b")),
            (&["d=1;c"], None),
            (&["c x=1; c=2"], Some("2")),
            (&["cx=1;c=4"], Some("4")),
        ] {
            assert_eq!(cookie_in(headers.iter().copied(), "c"), want, "{headers:?}");
        }
        assert_eq!(cookie("c=1", ""), None);
    }

    #[test]
    fn empty_path_is_root() {
        assert_eq!(normalize_path("", true).unwrap(), b"/");
    }
}
