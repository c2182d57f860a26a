//! Regexes as nginx compiles and runs them: PCRE2 on bytes
//! (`ngx_regex_compile` and `ngx_regex_exec` in src/core/ngx_regex.c of
//! nginx 1.22 built with PCRE2).
//!
//! - No UTF mode: a pattern and a subject are bytes, so `.` is one byte,
//!   `\d` and `\w` are ASCII only and `~*` folds ASCII letters only (the
//!   Kelvin sign is not `k`, `ſ` is not `s`).
//! - `PCRE2_CASELESS` is the only option (`~*`, a `server_name` regex with
//!   an upper-case letter, a `map` key `~*`); `$` also matches before a
//!   final newline, as PCRE's does.
//! - PCRE2's default match limit (10,000,000) bounds a backtracking
//!   pattern, as in nginx, which sets no limit of its own: a match that
//!   hits it fails with the code nginx logs (`pcre2_match() failed: -47`).
//! - Patterns are JIT-compiled where the library can (nginx's `pcre_jit
//!   on`). A match that overflows the JIT's stack is run again by the
//!   interpreter, which nginx uses with `pcre_jit off` (its default), so
//!   a deep pattern answers as it does in nginx.

use std::fmt;

use pcre2::bytes::{Regex, RegexBuilder};

/// `PCRE2_ERROR_JITSTACKLIMIT`: the JIT ran out of stack.
const JIT_STACK_LIMIT: i32 = -46;

/// A pattern compiled as nginx compiles it.
#[derive(Clone)]
pub struct Pcre {
    /// JIT-compiled where the library can.
    code: Regex,
    /// The same pattern for PCRE2's interpreter, made when the JIT's stack
    /// first overflows.
    interpreted: std::sync::OnceLock<Option<Regex>>,
    caseless: bool,
    /// Capture groups, the whole match included.
    groups: usize,
}

/// A match that PCRE2 could not finish (a limit was reached).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchError {
    /// PCRE2's error code, as nginx logs it (`-47`: the match limit).
    pub code: i32,
}

impl MatchError {
    /// nginx's alert for a failed match (`ngx_http_regex_exec`).
    pub fn message(&self, subject: &[u8], pattern: &str) -> String {
        format!(
            "pcre2_match() failed: {} on \"{}\" using \"{pattern}\"",
            self.code,
            String::from_utf8_lossy(subject)
        )
    }
}

impl fmt::Debug for Pcre {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Pcre({:?}, caseless: {})",
            self.code.as_str(),
            self.caseless
        )
    }
}

/// Capture spans of a match: `(start, end)` per group, `None` for a group
/// that did not take part.
pub type Spans = Vec<Option<(usize, usize)>>;

impl Pcre {
    /// Compiles `pattern`; the error is nginx's message
    /// (`pcre2_compile() failed: MESSAGE in "PATTERN" at "REST"`).
    pub fn compile(pattern: &str, caseless: bool) -> Result<Pcre, String> {
        let code = builder(caseless)
            .jit_if_available(true)
            .build(pattern)
            .map_err(|e| compile_message(pattern, &e))?;
        let groups = code.captures_len();
        Ok(Pcre {
            code,
            interpreted: std::sync::OnceLock::new(),
            caseless,
            groups,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.code.as_str()
    }

    /// Whether it was compiled caseless.
    pub fn caseless(&self) -> bool {
        self.caseless
    }

    /// Names of the capture groups (index 0, the whole match, has none).
    pub fn capture_names(&self) -> &[Option<String>] {
        self.code.capture_names()
    }

    /// Whether `subject` matches.
    pub fn is_match(&self, subject: &[u8]) -> Result<bool, MatchError> {
        match self.code.is_match(subject) {
            Err(e) if e.code() == JIT_STACK_LIMIT => match self.interpreter() {
                Some(re) => re.is_match(subject).map_err(match_error),
                None => Err(match_error(e)),
            },
            other => other.map_err(match_error),
        }
    }

    /// Matches `subject` and, when it matches, puts the spans of every
    /// group into `spans`.
    pub fn captures(&self, subject: &[u8], spans: &mut Spans) -> Result<bool, MatchError> {
        spans.clear();
        if self.groups <= 1 {
            // no groups: the whole match from the regex's own match data
            // (nothing allocated)
            return Ok(match self.find(&self.code, subject) {
                Err(e) if e.code == JIT_STACK_LIMIT => match self.interpreter() {
                    Some(re) => self.find(re, subject)?,
                    None => return Err(e),
                },
                other => other?,
            }
            .map(|span| spans.push(Some(span)))
            .is_some());
        }
        let re = &self.code;
        let mut locations = re.capture_locations();
        let found = match re.captures_read(&mut locations, subject) {
            Err(e) if e.code() == JIT_STACK_LIMIT => match self.interpreter() {
                Some(plain) => {
                    locations = plain.capture_locations();
                    plain.captures_read(&mut locations, subject)
                }
                None => Err(e),
            },
            other => other,
        }
        .map_err(match_error)?;
        if found.is_none() {
            return Ok(false);
        }
        spans.extend((0..locations.len()).map(|i| locations.get(i)));
        Ok(true)
    }

    fn find(&self, re: &Regex, subject: &[u8]) -> Result<Option<(usize, usize)>, MatchError> {
        re.find(subject)
            .map(|m| m.map(|m| (m.start(), m.end())))
            .map_err(match_error)
    }

    /// The pattern compiled without the JIT, made once.
    fn interpreter(&self) -> Option<&Regex> {
        self.interpreted
            .get_or_init(|| builder(self.caseless).build(self.as_str()).ok())
            .as_ref()
    }
}

/// The names of a pattern's named groups (`(?<n>..)`, `(?P<n>..)`,
/// `(?'n'..)`), which nginx makes variables; none when it does not compile.
pub fn capture_names(pattern: &str, caseless: bool) -> Vec<String> {
    builder(caseless).build(pattern).map_or_else(
        |_| Vec::new(),
        |re| re.capture_names().iter().flatten().cloned().collect(),
    )
}

fn builder(caseless: bool) -> RegexBuilder {
    let mut b = RegexBuilder::new();
    b.caseless(caseless).utf(false).ucp(false);
    b
}

fn match_error(e: pcre2::Error) -> MatchError {
    MatchError { code: e.code() }
}

/// nginx's words for a compile error: PCRE2's message, the pattern, and
/// the rest of the pattern from where PCRE2 stopped unless that is its end.
fn compile_message(pattern: &str, e: &pcre2::Error) -> String {
    // the library's own text, without the crate's prefix
    let shown = e.to_string();
    let text = match shown.split_once(": ") {
        Some((_, rest)) => rest.to_string(),
        None => shown,
    };
    let text = text
        .split_once(": ")
        .filter(|_| text.starts_with("error compiling"))
        .map_or(text.clone(), |(_, t)| t.to_string());
    match e.offset() {
        Some(at) if at < pattern.len() && pattern.is_char_boundary(at) => {
            format!(
                "pcre2_compile() failed: {text} in \"{pattern}\" at \"{}\"",
                &pattern[at..]
            )
        }
        _ => format!("pcre2_compile() failed: {text} in \"{pattern}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, caseless: bool, subject: &[u8]) -> bool {
        Pcre::compile(pattern, caseless)
            .unwrap()
            .is_match(subject)
            .unwrap()
    }

    #[test]
    fn bytes_not_unicode() {
        // ſ (C5 BF) and the Kelvin sign (E2 84 AA) fold to ASCII only in
        // Unicode mode
        assert!(!m(r"\.(css|js)$", true, "/x.c\u{17f}\u{17f}".as_bytes()));
        assert!(!m("^/kelvin$", true, "/\u{212a}elvin".as_bytes()));
        assert!(m("^/KELVIN$", true, b"/kelvin"));
        // \d, \w: ASCII only; `.` is one byte
        assert!(!m(r"^/\d$", false, "/\u{663}".as_bytes()));
        assert!(!m(r"^/\w$", false, "/é".as_bytes()));
        assert!(m("^/..$", false, "/é".as_bytes()));
        assert!(m("^/.$", false, b"/\xff"));
    }

    #[test]
    fn dollar_matches_before_a_final_newline() {
        assert!(m(r"\.php$", false, b"/x.php\n"));
        assert!(!m(r"\.php$", false, b"/x.php\n\n"));
    }

    #[test]
    fn pcre_syntax_compiles() {
        for p in [
            r"^/(?!admin)",
            r"(?<=/)x",
            r"^/(a)\1$",
            r"\Q.x\E$",
            r"^/a++$",
            r"(?i)^/x",
            r"^/(?<user>[a-z]+)/(?P<id>\d+)$",
        ] {
            Pcre::compile(p, false).unwrap();
        }
    }

    #[test]
    fn captures_and_names() {
        let re = Pcre::compile(r"^/(?<user>[a-z]+)(/(\d+))?$", false).unwrap();
        let mut spans = Spans::new();
        assert!(re.captures(b"/bob", &mut spans).unwrap());
        assert_eq!(spans, [Some((0, 4)), Some((1, 4)), None, None]);
        assert_eq!(re.capture_names()[1].as_deref(), Some("user"));
        let plain = Pcre::compile(r"\.jpg$", false).unwrap();
        assert!(plain.captures(b"/a.jpg", &mut spans).unwrap());
        assert_eq!(spans, [Some((2, 6))]);
        assert!(!plain.captures(b"/a.png", &mut spans).unwrap());
    }

    #[test]
    fn errors_read_like_nginx() {
        let e = |p: &str| Pcre::compile(p, false).unwrap_err();
        assert_eq!(
            e("^/(a"),
            "pcre2_compile() failed: missing closing parenthesis in \"^/(a\""
        );
        assert_eq!(
            e("a)b"),
            "pcre2_compile() failed: unmatched closing parenthesis in \"a)b\" at \")b\""
        );
    }

    #[test]
    fn backtracking_is_bounded_by_the_match_limit() {
        let re = Pcre::compile("^/r1/(a+)+$", false).unwrap();
        let subject = format!("/r1/{}!", "a".repeat(40));
        let err = re.is_match(subject.as_bytes()).unwrap_err();
        assert_eq!(err.code, -47);
        assert_eq!(
            err.message(b"/x", "^/r1/(a+)+$"),
            "pcre2_match() failed: -47 on \"/x\" using \"^/r1/(a+)+$\""
        );
    }
}
