//! The content handlers rginx answers itself: nginx's error pages (and the
//! 301 to a location's name with its slash), the page for a head refused
//! before it was parsed, and `stub_status`.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use rginx_core::plan::{OwnLocation, StatusFormat};
use rginx_http::head_scan::HeadRefusal;

use crate::http1::write::{nginx_reason, OwnPage, Unanswered};
use crate::pool::Body;

/// A body of bytes known whole.
pub(super) fn full_body(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A body with nothing in it.
pub(super) fn empty_body() -> Body {
    full_body(Bytes::new())
}

/// nginx's page for `status`, with a `Location` for a redirect.
pub(super) fn own_answer(
    status: u16,
    location: Option<&OwnLocation>,
    tokens: bool,
) -> Response<Body> {
    let mut response = error_page(status, tokens);
    match location {
        Some(l) if l.own_place => {
            if let Ok(v) = HeaderValue::from_str(&l.value) {
                response.headers_mut().insert(LOCATION, v);
            }
        }
        Some(l) => {
            response
                .extensions_mut()
                .insert(PlainLines(vec![("Location".into(), l.value.clone())]));
        }
        None => {}
    }
    response
}

/// Lines nginx writes after its own ones, before those the headers filter
/// adds: a `Location` it did not make absolute, a backend's
/// `WWW-Authenticate` kept by an intercepted 401.
#[derive(Debug, Clone, Default)]
pub(super) struct PlainLines(pub Vec<(String, String)>);

/// Marks an answer whose type is `default_type`'s, which a type the
/// request already has replaces (`ngx_http_set_content_type`: a type an
/// `X-Accel-Redirect` carried).
#[derive(Debug, Clone, Copy)]
pub(super) struct DefaultTyped;

/// `return`'s text: its status, type and length, not a page.
pub(super) fn text_answer(status: u16, content_type: &str, body: String) -> Response<Body> {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let length = body.len();
    let mut response = Response::new(full_body(body));
    *response.status_mut() = code;
    response.extensions_mut().insert(DefaultTyped);
    // a 204 has neither (`ngx_http_header_filter`)
    if status != 204 {
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(content_type) {
            headers.insert(CONTENT_TYPE, v);
        }
        headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    }
    response
}

/// A request nginx closes without an answer (a stalled body, a client
/// that left): nothing is written.
pub(super) fn unanswered() -> Response<Body> {
    let mut response = Response::new(empty_body());
    response.extensions_mut().insert(Unanswered);
    response.extensions_mut().insert(OwnPage);
    response
}

/// The status page (`stub_status`), in nginx's form or Prometheus'.
pub(super) fn status_answer(format: StatusFormat) -> Response<Body> {
    let snapshot = crate::status::COUNTERS.snapshot();
    let (text, content_type) = match format {
        StatusFormat::Nginx => (crate::status::stub_status_text(&snapshot), "text/plain"),
        StatusFormat::Prometheus => (
            crate::status::prometheus_text(&snapshot, &crate::status::UPSTREAMS),
            "text/plain; version=0.0.4",
        ),
    };
    let length = text.len();
    let mut response = Response::new(full_body(text));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    response
}

/// nginx's own codes above 493 for requests it answers with a 400 and a
/// page saying why (`ngx_http_special_response_handler`); an
/// `error_page` for the code itself applies (`error_page 497 https://...`).
#[derive(Debug, Clone, Copy)]
pub(super) struct SpecialError(pub u16);

/// The status and second line of nginx's page for one of its own codes.
fn special(status: u16) -> (u16, Option<&'static str>) {
    match status {
        494 => (400, Some("Request Header Or Cookie Too Large")),
        495 => (400, Some("The SSL certificate error")),
        496 => (400, Some("No required SSL certificate was sent")),
        497 => (400, Some("The plain HTTP request was sent to HTTPS port")),
        _ => (status, None),
    }
}

/// nginx's error page for a status (an empty body for the codes it has
/// no page for, `ngx_http_error_pages`).
pub(super) fn error_page(status: u16, tokens: bool) -> Response<Body> {
    let (shown, detail) = special(status);
    let code = StatusCode::from_u16(shown).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let page = if has_page(status) {
        page_html(shown, detail, tokens)
    } else {
        String::new()
    };
    let page_len = page.len();
    let with_page = page_len > 0;
    let mut response = Response::new(full_body(page));
    *response.status_mut() = code;
    response.extensions_mut().insert(OwnPage);
    if shown != status {
        response.extensions_mut().insert(SpecialError(status));
    }
    let headers = response.headers_mut();
    if with_page {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    }
    // a 204 has no length either (`ngx_http_header_filter`)
    if status != 204 {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(page_len));
    }
    response
}

/// nginx's padding after an error page (`ngx_http_msie_padding`).
const BROWSER_PADDING: &str = concat!(
    "<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n",
    "<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n",
    "<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n",
    "<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n",
    "<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n",
    "<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n",
);

/// nginx's error page of 400 and above with its padding for a browser
/// that would show a page of its own for a short one
/// (`ngx_http_send_special_response` with `msie_padding on`); other
/// answers are left as they are.
pub(super) fn padded_for_browsers(
    response: Response<Body>,
    headers: &[(&str, &str)],
    tokens: bool,
) -> Response<Body> {
    let status = response.status().as_u16();
    let extensions = response.extensions();
    let own_page =
        extensions.get::<OwnPage>().is_some() && extensions.get::<Unanswered>().is_none();
    if status < 400 || !has_page(status) || !own_page {
        return response;
    }
    if !pads_pages(rginx_core::user_agent::Browser::of_headers(headers)) {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let (shown, detail) = match parts.extensions.get::<SpecialError>() {
        Some(SpecialError(code)) => special(*code),
        None => (status, None),
    };
    let mut page = page_html(shown, detail, tokens);
    page.push_str(BROWSER_PADDING);
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(page.len()));
    Response::from_parts(parts, full_body(page))
}

/// Whether nginx pads its pages for a browser: MSIE and Chrome
/// (`ngx_http_send_special_response`).
fn pads_pages(browser: rginx_core::user_agent::Browser) -> bool {
    browser.msie || browser.chrome
}

/// What rginx signs its `Server` header and pages with: its name and
/// version (`server_tokens on`, as nginx's `nginx/1.22.1`), or its name
/// alone (`off`).
pub(crate) fn signature(tokens: bool) -> &'static str {
    if tokens {
        concat!("rginx/", env!("CARGO_PKG_VERSION"))
    } else {
        "rginx"
    }
}

/// Whether nginx 1.22 has a page for `status` (`ngx_http_error_pages`).
fn has_page(status: u16) -> bool {
    matches!(
        status,
        301..=303 | 307 | 308 | 400..=406 | 408..=416 | 421 | 429 | 494..=498 | 500..=505 | 507
    )
}

/// The HTML of nginx's error page for a status (`ngx_http_error_pages`);
/// `detail` is the second line of its special pages ("Request Header Or
/// Cookie Too Large").
fn page_html(status: u16, detail: Option<&str>, tokens: bool) -> String {
    let signature = signature(tokens);
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // two pages' titles are not their status lines
    let heading = match status {
        302 => "302 Found".to_string(),
        401 => "401 Authorization Required".to_string(),
        _ => format!("{} {}", code.as_u16(), nginx_reason(code)),
    };
    match detail {
        None => format!(
            "<html>\r\n<head><title>{heading}</title></head>\r\n<body>\r\n<center><h1>{heading}</h1></center>\r\n<hr><center>{signature}</center>\r\n</body>\r\n</html>\r\n"
        ),
        Some(detail) => format!(
            "<html>\r\n<head><title>{} {detail}</title></head>\r\n<body>\r\n<center><h1>{heading}</h1></center>\r\n<center>{detail}</center>\r\n<hr><center>{signature}</center>\r\n</body>\r\n</html>\r\n",
            code.as_u16()
        ),
    }
}

/// The whole response for a head nginx refuses before it is parsed:
/// nginx's page, then the connection closes.
pub(crate) fn refusal(limit: HeadRefusal, tokens: bool) -> Vec<u8> {
    let status = limit.status();
    let page = match limit {
        HeadRefusal::Headers | HeadRefusal::TooManyLines => {
            let (shown, detail) = special(494);
            page_html(shown, detail, tokens)
        }
        _ => page_html(status, None, tokens),
    };
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    format!(
        "HTTP/1.1 {status} {}\r\nServer: {}\r\nDate: {}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
        nginx_reason(code),
        signature(tokens),
        crate::date::now(),
        page.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rginx_core::user_agent::Browser;

    #[test]
    fn pages_are_padded_for_the_browsers_nginx_pads_them_for() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
        assert!(pads_pages(Browser::of(chrome)));
        assert!(pads_pages(Browser::of(
            "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)"
        )));
        assert!(!pads_pages(Browser::of(
            "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
        )));
        assert!(!pads_pages(Browser::of("Opera/9.80 (MSIE 6.0) Chrome/1")));
        assert!(!pads_pages(Browser::of("xMSIE 6")));
        assert!(!pads_pages(Browser::of("curl/8.0")));
        let headers = [("User-Agent", chrome)];
        let padded = padded_for_browsers(error_page(404, true), &headers, true);
        let length = padded.headers()[CONTENT_LENGTH]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(
            length,
            (page_html(404, None, true).len() + BROWSER_PADDING.len()).to_string()
        );
        let redirect = padded_for_browsers(error_page(301, true), &headers, true);
        assert_eq!(
            redirect.headers()[CONTENT_LENGTH],
            page_html(301, None, true).len().to_string().as_str()
        );
    }

    #[test]
    fn pages_are_nginx_s_with_rginx_s_signature() {
        let page = page_html(504, None, false);
        assert!(page.starts_with("<html>\r\n<head><title>504 Gateway Time-out</title>"));
        assert!(page.ends_with("<hr><center>rginx</center>\r\n</body>\r\n</html>\r\n"));
        let refused = String::from_utf8(refusal(HeadRefusal::Headers, false)).unwrap();
        assert!(refused.starts_with("HTTP/1.1 400 Bad Request\r\nServer: rginx\r\nDate: "));
        assert!(refused.contains("<title>400 Request Header Or Cookie Too Large</title>"));
    }
}
