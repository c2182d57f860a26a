//! `$remote_user`: the user of a request's Basic credentials, as nginx's
//! `ngx_http_auth_basic_user` reads it (with or without `auth_basic`).

use std::sync::OnceLock;

use data_encoding::{Encoding, Specification};

/// nginx's base64 decoder: the standard alphabet, no padding needed, and
/// no check of the last symbol's unused bits (`ngx_decode_base64`).
fn base64() -> Option<&'static Encoding> {
    static ENCODING: OnceLock<Option<Encoding>> = OnceLock::new();
    ENCODING
        .get_or_init(|| {
            let mut spec = Specification::new();
            spec.symbols
                .push_str("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
            spec.check_trailing_bits = false;
            spec.encoding().ok()
        })
        .as_ref()
}

/// The user of an `Authorization: Basic ...` value: what comes before the
/// first `:` of the decoded credentials (`None`: no Basic credentials, bad
/// base64, no `:` or an empty user, where nginx's variable is not found).
pub fn basic_user(authorization: &str) -> Option<String> {
    let scheme = authorization.get(..6)?;
    if !scheme.eq_ignore_ascii_case("basic ") {
        return None;
    }
    let encoded = authorization[6..].trim_start_matches(' ');
    // the decoder stops at the first `=`
    let encoded = encoded.split('=').next().unwrap_or("");
    if encoded.is_empty() || encoded.len() % 4 == 1 {
        return None;
    }
    let decoded = base64()?.decode(encoded.as_bytes()).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    if colon == 0 {
        return None;
    }
    Some(String::from_utf8_lossy(&decoded[..colon]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::basic_user;

    #[test]
    fn the_user_is_read_as_nginx_reads_it() {
        // "alice:secret"
        assert_eq!(
            basic_user("Basic YWxpY2U6c2VjcmV0").as_deref(),
            Some("alice")
        );
        assert_eq!(
            basic_user("basic   YWxpY2U6c2VjcmV0").as_deref(),
            Some("alice")
        );
        // "bob:" without padding, and with it
        assert_eq!(basic_user("Basic Ym9iOg").as_deref(), Some("bob"));
        assert_eq!(basic_user("Basic Ym9iOg==").as_deref(), Some("bob"));
        // no colon, an empty user, bad symbols, other schemes
        assert_eq!(basic_user("Basic YWxpY2U="), None);
        assert_eq!(basic_user("Basic OnNlY3JldA=="), None);
        assert_eq!(basic_user("Basic YW*p"), None);
        assert_eq!(basic_user("Bearer YWxpY2U6c2VjcmV0"), None);
        assert_eq!(basic_user("Basic "), None);
    }
}
