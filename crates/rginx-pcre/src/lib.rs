//! Regexes as nginx compiles and runs them: PCRE2 on bytes
//! (`ngx_regex_compile` and `ngx_regex_exec` in src/core/ngx_regex.c of
//! nginx 1.22 built with PCRE2), over the C library through `pcre2-sys`.
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
//!   on`), and matched with `pcre2_jit_match`. A match that overflows the
//!   JIT's stack is run again by the interpreter, which nginx uses with
//!   `pcre_jit off` (its default), so a deep pattern answers as in nginx.
//! - Like nginx's single `ngx_regex_match_data`, each thread has one match
//!   data, grown to the largest pattern it has run: matching allocates
//!   nothing once it is big enough.
//!
//! This is the only crate of rginx's with `unsafe` code for a C library:
//! each call's conditions are next to it.

use std::cell::RefCell;
use std::ffi::c_void;
use std::fmt;
use std::ptr;
use std::sync::Arc;

use pcre2_sys::{
    pcre2_code_8, pcre2_code_free_8, pcre2_compile_8, pcre2_get_error_message_8,
    pcre2_get_ovector_pointer_8, pcre2_jit_compile_8, pcre2_jit_match_8, pcre2_match_8,
    pcre2_match_data_8, pcre2_match_data_create_8, pcre2_match_data_free_8, pcre2_pattern_info_8,
    PCRE2_CASELESS, PCRE2_ERROR_JIT_STACKLIMIT, PCRE2_ERROR_NOMATCH, PCRE2_ERROR_NOMEMORY,
    PCRE2_INFO_CAPTURECOUNT, PCRE2_INFO_NAMECOUNT, PCRE2_INFO_NAMEENTRYSIZE, PCRE2_INFO_NAMETABLE,
    PCRE2_JIT_COMPLETE, PCRE2_NO_JIT, PCRE2_UNSET,
};

/// A compiled pattern, owned; freed when the last [`Pcre`] using it goes.
struct Code(*mut pcre2_code_8);

// SAFETY: a compiled pattern (JIT code included) is read-only once
// `Pcre::compile` returns; PCRE2 documents that one `pcre2_code` may be
// matched from several threads at once, each with its own match data.
unsafe impl Send for Code {}
// SAFETY: as above: shared references only ever match.
unsafe impl Sync for Code {}

impl Code {
    /// `pcre2_compile` with nginx's options (`ngx_regex_compile`).
    fn compile(pattern: &str, caseless: bool) -> Result<Code, String> {
        let options = if caseless { PCRE2_CASELESS } else { 0 };
        let (mut error, mut offset) = (0, 0usize);
        let start = if pattern.is_empty() {
            EMPTY.as_ptr()
        } else {
            pattern.as_ptr()
        };
        // SAFETY: `start` points at `pattern.len()` readable bytes; the
        // error outputs are valid; a null compile context is the default.
        let raw = unsafe {
            pcre2_compile_8(
                start,
                pattern.len(),
                options,
                &mut error,
                &mut offset,
                ptr::null_mut(),
            )
        };
        if raw.is_null() {
            return Err(compile_message(pattern, error, offset));
        }
        Ok(Code(raw))
    }
}

impl Drop for Code {
    fn drop(&mut self) {
        // SAFETY: the pointer came from pcre2_compile_8, is not null, and
        // this is its only owner.
        unsafe { pcre2_code_free_8(self.0) }
    }
}

/// A pattern compiled as nginx compiles it.
#[derive(Clone)]
pub struct Pcre {
    code: Arc<Code>,
    pattern: Arc<str>,
    caseless: bool,
    /// Whether the JIT compiled it (then `pcre2_jit_match` runs it).
    jit: bool,
    /// Capture groups, the whole match included.
    groups: u32,
    /// Names of the groups by number (index 0, the whole match: none).
    names: Arc<[Option<String>]>,
    /// For a pattern that starts `^` and a literal (`^/api/`), the bytes
    /// every match starts with: a subject without them is refused without
    /// calling PCRE2 (a level of 100 such regex locations costs 100
    /// comparisons, not 100 matches).
    prefix: Arc<[u8]>,
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
        write!(f, "Pcre({:?}, caseless: {})", self.pattern, self.caseless)
    }
}

/// Capture spans of a match: `(start, end)` per group, `None` for a group
/// that did not take part.
pub type Spans = Vec<Option<(usize, usize)>>;

/// A pointer PCRE2 may be given for an empty pattern or subject (it reads
/// no byte of it).
const EMPTY: &[u8] = b"\0";

impl Pcre {
    /// Compiles `pattern`; the error is nginx's message
    /// (`pcre2_compile() failed: MESSAGE in "PATTERN" at "REST"`).
    pub fn compile(pattern: &str, caseless: bool) -> Result<Pcre, String> {
        let code = Code::compile(pattern, caseless)?;
        // SAFETY: a valid compiled pattern that nothing else uses yet. A
        // failure (no JIT in the library, no memory) leaves the pattern
        // to the interpreter, as nginx does.
        let jit = unsafe { pcre2_jit_compile_8(code.0, PCRE2_JIT_COMPLETE) } == 0;
        let groups = info_u32(&code, PCRE2_INFO_CAPTURECOUNT).saturating_add(1);
        let names = group_names(&code, groups);
        Ok(Pcre {
            code: Arc::new(code),
            pattern: pattern.into(),
            caseless,
            jit,
            groups,
            names: names.into(),
            prefix: anchored_literal(pattern).into(),
        })
    }

    /// Checks that `pattern` compiles, as [`Pcre::compile`] would, without
    /// the JIT step (a JIT failure never refuses a pattern): the names of
    /// its named groups, which nginx makes variables, or nginx's message.
    pub fn check(pattern: &str, caseless: bool) -> Result<Vec<String>, String> {
        let code = Code::compile(pattern, caseless)?;
        let groups = info_u32(&code, PCRE2_INFO_CAPTURECOUNT).saturating_add(1);
        Ok(group_names(&code, groups).into_iter().flatten().collect())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether it was compiled caseless.
    pub fn caseless(&self) -> bool {
        self.caseless
    }

    /// Names of the capture groups by number (index 0, the whole match,
    /// has none).
    pub fn capture_names(&self) -> &[Option<String>] {
        &self.names
    }

    /// The group names, shared (kept by a match's captures past the
    /// pattern's borrow).
    pub fn shared_names(&self) -> Arc<[Option<String>]> {
        Arc::clone(&self.names)
    }

    /// Whether `subject` matches.
    pub fn is_match(&self, subject: &[u8]) -> Result<bool, MatchError> {
        self.exec(subject, None)
    }

    /// Matches `subject` and, when it matches, puts the spans of every
    /// group into `spans`.
    pub fn captures(&self, subject: &[u8], spans: &mut Spans) -> Result<bool, MatchError> {
        spans.clear();
        self.exec(subject, Some(spans))
    }

    fn exec(&self, subject: &[u8], spans: Option<&mut Spans>) -> Result<bool, MatchError> {
        if !self.prefix.is_empty() {
            let head = subject.get(..self.prefix.len()).unwrap_or_default();
            // without UTF mode PCRE2's caseless matching folds ASCII only
            let same = if self.caseless {
                head.eq_ignore_ascii_case(&self.prefix)
            } else {
                head == &self.prefix[..]
            };
            if !same {
                return Ok(false);
            }
        }
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let data = scratch.fit(self.groups)?;
            let start = if subject.is_empty() {
                EMPTY.as_ptr()
            } else {
                subject.as_ptr()
            };
            let code = self.code.0;
            // SAFETY (all three calls): `code` is a valid compiled pattern,
            // `start` points at `subject.len()` readable bytes, `data` has
            // room for every group of the pattern, a null match context is
            // the default. `pcre2_jit_match` only for a JIT-compiled
            // pattern, as PCRE2 requires; no UTF mode, so any bytes are a
            // valid subject.
            let mut rc = if self.jit {
                unsafe {
                    pcre2_jit_match_8(code, start, subject.len(), 0, 0, data, ptr::null_mut())
                }
            } else {
                unsafe { pcre2_match_8(code, start, subject.len(), 0, 0, data, ptr::null_mut()) }
            };
            if rc == PCRE2_ERROR_JIT_STACKLIMIT {
                rc = unsafe {
                    pcre2_match_8(
                        code,
                        start,
                        subject.len(),
                        0,
                        PCRE2_NO_JIT,
                        data,
                        ptr::null_mut(),
                    )
                };
            }
            if rc == PCRE2_ERROR_NOMATCH {
                return Ok(false);
            }
            if rc < 0 {
                return Err(MatchError { code: rc });
            }
            if let Some(spans) = spans {
                // SAFETY: the ovector of `data` holds 2 * (its pairs)
                // offsets, at least 2 * `self.groups`.
                let ovector = unsafe {
                    std::slice::from_raw_parts(
                        pcre2_get_ovector_pointer_8(data),
                        2 * self.groups as usize,
                    )
                };
                spans.extend(ovector.chunks_exact(2).map(|pair| {
                    (pair[0] != PCRE2_UNSET && pair[0] <= pair[1]).then_some((pair[0], pair[1]))
                }));
            }
            Ok(true)
        })
    }
}

/// The literal bytes right after a leading `^` that every match must
/// start with, or nothing. Conservative: it stops at the first byte with a
/// meaning in PCRE2 syntax, drops the last literal when a quantifier
/// follows it (`^/ab*`), and gives up on any `|` (an alternative may not
/// be anchored) or inline option (`(?i)`, which starts with `(` anyway).
fn anchored_literal(pattern: &str) -> Vec<u8> {
    let bytes = pattern.as_bytes();
    if bytes.first() != Some(&b'^') || bytes.contains(&b'|') {
        return Vec::new();
    }
    let special = |b: u8| b"\\.[]()*+?{}|^$#".contains(&b) || b.is_ascii_whitespace();
    let literal: Vec<u8> = bytes[1..]
        .iter()
        .copied()
        .take_while(|b| !special(*b))
        .collect();
    let next = bytes.get(1 + literal.len()).copied();
    match next {
        // the last literal byte is repeated, perhaps zero times
        Some(b'*' | b'+' | b'?' | b'{') => literal[..literal.len().saturating_sub(1)].to_vec(),
        _ => literal,
    }
}

/// One match data per thread, as nginx keeps one per worker.
struct Scratch {
    data: *mut pcre2_match_data_8,
    pairs: u32,
}

impl Scratch {
    /// The match data, with room for `groups` pairs.
    fn fit(&mut self, groups: u32) -> Result<*mut pcre2_match_data_8, MatchError> {
        if self.data.is_null() || self.pairs < groups {
            let pairs = groups.max(10);
            // SAFETY: a null general context is the default allocator.
            let data = unsafe { pcre2_match_data_create_8(pairs, ptr::null_mut()) };
            if data.is_null() {
                return Err(MatchError {
                    code: PCRE2_ERROR_NOMEMORY,
                });
            }
            self.free();
            self.data = data;
            self.pairs = pairs;
        }
        Ok(self.data)
    }

    fn free(&mut self) {
        if !self.data.is_null() {
            // SAFETY: made by pcre2_match_data_create_8, owned here.
            unsafe { pcre2_match_data_free_8(self.data) };
            self.data = ptr::null_mut();
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.free();
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const {
        RefCell::new(Scratch {
            data: ptr::null_mut(),
            pairs: 0,
        })
    };
}

/// A number from `pcre2_pattern_info` (0 if PCRE2 refuses).
fn info_u32(code: &Code, what: u32) -> u32 {
    let mut value: u32 = 0;
    // SAFETY: these queries write one uint32_t.
    let rc = unsafe { pcre2_pattern_info_8(code.0, what, &mut value as *mut u32 as *mut c_void) };
    if rc == 0 {
        value
    } else {
        0
    }
}

/// The names of the groups from PCRE2's name table: each entry is the
/// group number in two bytes, big-endian, then the name and a NUL.
fn group_names(code: &Code, groups: u32) -> Vec<Option<String>> {
    let mut names = vec![None; groups as usize];
    let count = info_u32(code, PCRE2_INFO_NAMECOUNT) as usize;
    let size = info_u32(code, PCRE2_INFO_NAMEENTRYSIZE) as usize;
    if count == 0 || size < 3 {
        return names;
    }
    let mut table: *const u8 = ptr::null();
    // SAFETY: PCRE2_INFO_NAMETABLE writes a pointer into the pattern.
    let rc = unsafe {
        pcre2_pattern_info_8(
            code.0,
            PCRE2_INFO_NAMETABLE,
            &mut table as *mut *const u8 as *mut c_void,
        )
    };
    if rc != 0 || table.is_null() {
        return names;
    }
    // SAFETY: the table holds `count` entries of `size` bytes and lives as
    // long as the pattern, which `code` keeps.
    let table = unsafe { std::slice::from_raw_parts(table, count * size) };
    for entry in table.chunks_exact(size) {
        let group = usize::from(u16::from_be_bytes([entry[0], entry[1]]));
        let name = &entry[2..];
        let name = &name[..name.iter().position(|b| *b == 0).unwrap_or(name.len())];
        if let Some(slot) = names.get_mut(group) {
            *slot = Some(String::from_utf8_lossy(name).into_owned());
        }
    }
    names
}

/// The names of a pattern's named groups (`(?<n>..)`, `(?P<n>..)`,
/// `(?'n'..)`), which nginx makes variables; none when it does not compile.
pub fn capture_names(pattern: &str, caseless: bool) -> Vec<String> {
    Pcre::check(pattern, caseless).unwrap_or_default()
}

/// nginx's words for a compile error: PCRE2's message, the pattern, and
/// the rest of the pattern from where PCRE2 stopped unless that is its end.
fn compile_message(pattern: &str, error: i32, offset: usize) -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is writable for its length.
    let n = unsafe { pcre2_get_error_message_8(error, buffer.as_mut_ptr(), buffer.len()) };
    let text = match usize::try_from(n) {
        Ok(n) => String::from_utf8_lossy(&buffer[..n.min(buffer.len())]).into_owned(),
        Err(_) => format!("error {error}"),
    };
    match pattern.get(offset..) {
        Some(rest) if !rest.is_empty() => {
            format!("pcre2_compile() failed: {text} in \"{pattern}\" at \"{rest}\"")
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
    fn a_deep_match_gets_an_answer() {
        // deep enough to overflow the JIT's default 32 KiB stack where the
        // JIT needs a frame per repetition: the interpreter answers then
        let re = Pcre::compile("^(?:(a)|b)*$", false).unwrap();
        let subject = "ab".repeat(50_000);
        assert!(re.is_match(subject.as_bytes()).unwrap());
        let mut spans = Spans::new();
        assert!(re.captures(subject.as_bytes(), &mut spans).unwrap());
        assert_eq!(spans[1], Some((99_998, 99_999)));
    }

    #[test]
    fn the_anchored_prefix_refuses_only_what_pcre2_refuses() {
        assert_eq!(anchored_literal("^/re5/(\\d+)$"), b"/re5/");
        assert_eq!(anchored_literal("^/ab*"), b"/a");
        assert_eq!(anchored_literal("^/a|^/b"), b"");
        assert_eq!(anchored_literal("/a"), b"");
        let patterns = [
            "^/api/", "^/ab*c", "^/ab?", "^/ab{0}c", "^/a.b", "^/A/", "^/x\\.y", "^/(a|b)", "^/a+",
            "^/\\xff", "^/é/", "^$", "^/a$",
        ];
        let subjects: [&[u8]; 10] = [
            b"/api/x", b"/API/x", b"/ac", b"/abbbc", b"/a", b"/axb", b"/x.y", b"", b"/\xff", b"/a/",
        ];
        for p in patterns {
            for caseless in [false, true] {
                let fast = Pcre::compile(p, caseless).unwrap();
                let mut plain = fast.clone();
                plain.prefix = Arc::from(&[][..]);
                for s in subjects {
                    assert_eq!(
                        fast.is_match(s).unwrap(),
                        plain.is_match(s).unwrap(),
                        "{p} caseless={caseless} on {s:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn empty_patterns_and_subjects() {
        assert!(m("", false, b""));
        assert!(m("^$", false, b""));
        assert!(!m("^a", false, b""));
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
