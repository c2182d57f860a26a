//! Redirect targets as nginx's header filter writes them.

use super::*;

/// A relative `Location` made absolute as nginx's header filter does
/// (`absolute_redirect on`, `port_in_redirect on`): the request's host
/// (from the request line, else `Host`), else the local address, and the
/// local port unless it is 80.
pub fn absolute_location(req: &RequestHead<'_>, path: &str) -> String {
    let target_host = uri::parse_target(req.target).ok().and_then(|t| t.host);
    redirect_location(req, &request_host(req, target_host), path, None)
}

/// `$host` of a request already answered: the request line's host
/// (`target_host`), else the `Host` header, normalised; empty when neither
/// is there or valid.
pub(super) fn request_host<'r>(
    req: &RequestHead<'r>,
    target_host: Option<&'r str>,
) -> Cow<'r, str> {
    let header = req
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("host"))
        .map(|(_, v)| *v);
    target_host
        .or(header)
        .and_then(normalize_host)
        .unwrap_or_default()
}

pub(super) fn redirect_location(
    req: &RequestHead<'_>,
    host: &str,
    name: &str,
    args: Option<&str>,
) -> String {
    // nginx's header filter: the request's host, else the local address
    let mut out = String::from("http://");
    if host.is_empty() {
        match req.local.ip() {
            IpAddr::V4(ip) => {
                let _ = write!(out, "{ip}");
            }
            IpAddr::V6(ip) => {
                let _ = write!(out, "[{ip}]");
            }
        }
    } else {
        out.push_str(host);
    }
    if req.local.port() != 80 {
        let _ = write!(out, ":{}", req.local.port());
    }
    out.push_str(name);
    if let Some(a) = args.filter(|a| !a.is_empty()) {
        out.push('?');
        out.push_str(a);
    }
    out
}
