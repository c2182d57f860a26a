//! The browsers nginx recognises in a `User-Agent` header, as
//! `ngx_http_process_user_agent` does (only the first such header counts):
//! they decide the error pages' padding (`msie_padding`) and
//! `keepalive_disable`.

/// What nginx takes a client for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Browser {
    /// MSIE, any version ("MSIE " with room for a version), not Opera.
    pub msie: bool,
    /// MSIE 4 or 5, or 6 without "SV1" (`keepalive_disable msie6`).
    pub msie6: bool,
    /// Opera.
    pub opera: bool,
    /// Gecko (Firefox), when neither MSIE nor Opera.
    pub gecko: bool,
    /// Chrome, when neither MSIE, Opera nor Gecko.
    pub chrome: bool,
    /// Safari on Mac OS X, when none of the above
    /// (`keepalive_disable safari`).
    pub safari: bool,
}

impl Browser {
    /// Reads a `User-Agent` value.
    pub fn of(user_agent: &str) -> Browser {
        let ua = user_agent.as_bytes();
        let has = |word: &str| memchr::memmem::find(ua, word.as_bytes()).is_some();
        let mut browser = Browser::default();
        if let Some(at) = memchr::memmem::find(ua, b"MSIE ") {
            if at + 7 < ua.len() {
                browser.msie = true;
                if ua[at + 6] == b'.' {
                    browser.msie6 = match ua[at + 5] {
                        b'4' | b'5' => true,
                        b'6' => memchr::memmem::find(&ua[at + 8..], b"SV1").is_none(),
                        _ => false,
                    };
                }
            }
        }
        if has("Opera") {
            browser.opera = true;
            browser.msie = false;
            browser.msie6 = false;
        }
        if !browser.msie && !browser.opera {
            if has("Gecko/") {
                browser.gecko = true;
            } else if has("Chrome/") {
                browser.chrome = true;
            } else if has("Safari/") && has("Mac OS X") {
                browser.safari = true;
            }
        }
        browser
    }

    /// Reads the first `User-Agent` of a request's headers (none: no
    /// browser).
    pub fn of_headers(headers: &[(&str, &str)]) -> Browser {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("user-agent"))
            .map_or_else(Browser::default, |(_, v)| Browser::of(v))
    }
}

#[cfg(test)]
mod tests {
    use super::Browser;

    #[test]
    fn browsers_are_told_apart_as_nginx_tells_them() {
        let ie6 = Browser::of("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)");
        assert!(ie6.msie && ie6.msie6);
        let ie6_sv1 = Browser::of("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)");
        assert!(ie6_sv1.msie && !ie6_sv1.msie6);
        assert!(Browser::of("Mozilla/4.0 (compatible; MSIE 5.5; Windows 98)").msie6);
        assert!(!Browser::of("Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)").msie6);
        // no room for a version
        assert_eq!(Browser::of("xMSIE 6"), Browser::default());
        let opera = Browser::of("Opera/9.80 (MSIE 6.0) Chrome/1");
        assert!(opera.opera && !opera.msie && !opera.chrome);
        assert!(Browser::of("Mozilla/5.0 (X11; rv:120.0) Gecko/20100101 Firefox/120.0").gecko);
        let chrome = Browser::of(
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        );
        assert!(chrome.chrome && !chrome.safari);
        let safari = Browser::of("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15");
        assert!(safari.safari);
        assert!(!Browser::of("Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 Safari/604.1").safari);
    }
}
