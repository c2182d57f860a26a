//! The request head rginx sends upstream, written as nginx's
//! `ngx_http_proxy_create_request` writes it: the request line, then each
//! header line as `Name: value` with the name's case as configured or as
//! the client sent it, in nginx's order (a value passed on from the client
//! as its raw bytes), then the empty line.

/// How a body whose framing is known only once it is read goes: a
/// de-chunked one with its length, a re-chunked one chunked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// `Content-Length: N`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Writes a request head into `out`. `headers` are the lines in order;
/// `length`, the framing line of a body known only now (a de-chunked or
/// re-chunked one), is put before the line at its index (or last).
pub fn write_head<'a>(
    out: &mut Vec<u8>,
    method: &str,
    uri: &str,
    version: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    length: Option<(usize, BodyFraming)>,
) {
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(uri.as_bytes());
    out.push(b' ');
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut count = 0;
    for (i, (name, value)) in headers.into_iter().enumerate() {
        if let Some((at, n)) = length {
            if at == i {
                write_length(out, n);
            }
        }
        line(out, name.as_bytes(), value);
        count = i + 1;
    }
    if let Some((at, n)) = length {
        if at >= count {
            write_length(out, n);
        }
    }
    out.extend_from_slice(b"\r\n");
}

fn write_length(out: &mut Vec<u8>, framing: BodyFraming) {
    match framing {
        BodyFraming::Length(n) => line(out, b"Content-Length", n.to_string().as_bytes()),
        BodyFraming::Chunked => line(out, b"Transfer-Encoding", b"chunked"),
    }
}

/// One header line. A value holding CR or LF would end the line early and
/// let the rest pass as a header of its own (a request header injection):
/// such a line is left out, where nginx would send the bytes.
fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    if memchr::memchr2(b'\r', b'\n', value).is_some() || name.is_empty() {
        return;
    }
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_go_out_as_given_with_the_length_in_its_place() {
        let mut out = Vec::new();
        write_head(
            &mut out,
            "POST",
            "/x?y",
            "HTTP/1.0",
            [
                ("Host", &b"b"[..]),
                ("x-lower", b"v\xff"),
                ("Connection", b"close"),
            ],
            Some((2, BodyFraming::Length(12))),
        );
        assert_eq!(
            out,
            b"POST /x?y HTTP/1.0\r\nHost: b\r\nx-lower: v\xff\r\nContent-Length: 12\r\nConnection: close\r\n\r\n"
        );
        let mut out = Vec::new();
        write_head(
            &mut out,
            "GET",
            "/",
            "HTTP/1.1",
            [("A", &b"1"[..])],
            Some((1, BodyFraming::Length(0))),
        );
        assert_eq!(out, b"GET / HTTP/1.1\r\nA: 1\r\nContent-Length: 0\r\n\r\n");
        let mut out = Vec::new();
        write_head(
            &mut out,
            "PUT",
            "/",
            "HTTP/1.1",
            [("A", &b"1"[..])],
            Some((1, BodyFraming::Chunked)),
        );
        assert_eq!(
            out,
            b"PUT / HTTP/1.1\r\nA: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn a_value_with_cr_or_lf_is_left_out() {
        let mut out = Vec::new();
        write_head(
            &mut out,
            "GET",
            "/",
            "HTTP/1.0",
            [("X-Uri", &b"/a\r\nX-Injected: yes"[..]), ("B", b"2")],
            None,
        );
        assert_eq!(out, b"GET / HTTP/1.0\r\nB: 2\r\n\r\n");
    }
}
