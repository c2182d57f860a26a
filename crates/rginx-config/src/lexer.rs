//! Tokeniser for the nginx configuration language, written with `nom`.
//!
//! It follows nginx's `ngx_conf_read_token` (src/core/ngx_conf_file.c):
//! - an unquoted word ends at whitespace, `;` or `{`, but not at `}`; `${`
//!   does not end it, and `\x` makes `x` ordinary;
//! - a word that starts with `"` or `'` runs to the matching unescaped quote
//!   (across lines) and must be followed by whitespace, `;`, `{` or `)`;
//! - `#` starts a comment only where a word would start;
//! - `\"`, `\'`, `\\`, `\t`, `\r`, `\n` are unescaped, any other `\x` is kept;
//! - a word of 4096 bytes or more is rejected, as nginx's read buffer is.

use nom::branch::alt;
use nom::bytes::complete::{tag, take, take_till, take_till1, take_while1};
use nom::combinator::recognize;
use nom::multi::many0_count;
use nom::sequence::preceded;
use nom::{IResult, Parser};

use crate::ast::{Quote, Word};
use std::sync::Arc;

use crate::source::{FileId, SourceFile, Span};

/// nginx's `NGX_CONF_BUFFER`: no word may fill the whole read buffer.
pub const MAX_WORD_LEN: usize = 4096;

/// A token of the configuration language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A word (directive name or argument).
    Word(Word),
    /// `;`
    Semicolon(Span),
    /// `{`
    OpenBrace(Span),
    /// `}`
    CloseBrace(Span),
    /// End of the file; the span is where nginx reports it (the last line).
    Eof(Span),
}

/// A lexical error: message (nginx's wording) and where nginx reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    /// nginx's message, without the location suffix.
    pub message: String,
    /// The position nginx names.
    pub span: Span,
}

/// Message for a file that ends inside a directive.
pub const EOF_IN_DIRECTIVE: &str = "unexpected end of file, expecting \";\" or \"}\"";

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Whitespace and `#` comments between tokens.
fn blank(input: &[u8]) -> IResult<&[u8], usize> {
    many0_count(alt((
        take_while1(is_space),
        recognize(preceded(tag("#"), take_till(|b| b == b'\n'))),
    )))
    .parse(input)
}

/// The raw text of an unquoted word: up to whitespace, `;` or `{`, where
/// `\x` never ends the word (nginx's `quoted` state) and the `{` of `${`
/// does not open a block. One pass over the bytes: words are most of a
/// configuration, so this is the lexer's hot loop.
fn bare_word(input: &[u8]) -> IResult<&[u8], &[u8]> {
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        match b {
            b' ' | b'\t' | b'\r' | b'\n' | b';' | b'{' => break,
            b'\\' => i += 2,
            b'$' if input.get(i + 1) == Some(&b'{') => i += 2,
            _ => i += 1,
        }
    }
    let len = i.min(input.len());
    if len == 0 {
        return Err(nom::Err::Error(nom::error::Error::new(
            input,
            nom::error::ErrorKind::TakeWhile1,
        )));
    }
    take(len).parse(input)
}

/// The raw body of a quoted word, up to (not including) the closing quote.
fn quoted_body(quote: u8) -> impl Fn(&[u8]) -> IResult<&[u8], &[u8]> {
    move |input| {
        recognize(many0_count(alt((
            recognize(preceded(tag("\\"), take(1usize))),
            take_till1(|b| b == quote || b == b'\\'),
        ))))
        .parse(input)
    }
}

/// Applies nginx's unescaping to a word's raw body.
pub fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' {
            match raw.get(i + 1) {
                Some(b'"' | b'\'' | b'\\') => i += 1,
                Some(b't') => {
                    out.push(b'\t');
                    i += 2;
                    continue;
                }
                Some(b'r') => {
                    out.push(b'\r');
                    i += 2;
                    continue;
                }
                Some(b'n') => {
                    out.push(b'\n');
                    i += 2;
                    continue;
                }
                _ => {}
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

/// Turns one file's bytes into tokens.
pub struct Lexer<'a> {
    file: &'a Arc<SourceFile>,
    id: FileId,
    pos: usize,
    /// Last position computed: (byte offset, line, column). Tokens come in
    /// order, so positions are found by counting forward from here instead
    /// of from the start of the line each time.
    cursor: std::cell::Cell<(usize, u32, u32)>,
}

impl<'a> Lexer<'a> {
    /// Starts at the beginning of `file`.
    pub fn new(file: &'a Arc<SourceFile>, id: FileId) -> Self {
        Lexer {
            file,
            id,
            pos: 0,
            cursor: std::cell::Cell::new((0, 1, 1)),
        }
    }

    fn span(&self, offset: usize) -> Span {
        let (last, last_line, last_column) = self.cursor.get();
        let between = self
            .file
            .text
            .as_bytes()
            .get(last..offset)
            .unwrap_or_default();
        let width = |bytes: &[u8]| {
            let n = if bytes.is_ascii() {
                bytes.len()
            } else {
                String::from_utf8_lossy(bytes).chars().count()
            };
            u32::try_from(n).unwrap_or(u32::MAX)
        };
        // counted forward from the last position: linear in the file
        let (line, column) = if offset < last {
            self.file.position(offset)
        } else if let Some(nl) = memchr::memrchr(b'\n', between) {
            let lines = memchr::memchr_iter(b'\n', between).count();
            (
                last_line.saturating_add(u32::try_from(lines).unwrap_or(u32::MAX)),
                1 + width(&between[nl + 1..]),
            )
        } else {
            (last_line, last_column.saturating_add(width(between)))
        };
        self.cursor.set((offset, line, column));
        Span {
            file: self.id,
            line,
            column,
        }
    }

    /// Where nginx reports the end of this file.
    pub fn eof_span(&self) -> Span {
        self.span(self.file.text.len())
    }

    fn error(&self, message: String, offset: usize) -> LexError {
        LexError {
            message,
            span: self.span(offset),
        }
    }

    fn rest(&self) -> &'a [u8] {
        &self.file.text.as_bytes()[self.pos..]
    }

    /// The next token.
    pub fn next_token(&mut self) -> Result<Token, LexError> {
        let rest = self.rest();
        // `blank` cannot fail: it matches zero or more items.
        let after_blank = blank(rest).map(|(r, _)| r).unwrap_or(rest);
        self.pos += rest.len() - after_blank.len();
        let start = self.pos;
        let Some(&first) = after_blank.first() else {
            return Ok(Token::Eof(self.eof_span()));
        };
        match first {
            b';' => {
                self.pos += 1;
                Ok(Token::Semicolon(self.span(start)))
            }
            b'{' => {
                self.pos += 1;
                Ok(Token::OpenBrace(self.span(start)))
            }
            b'}' => {
                self.pos += 1;
                Ok(Token::CloseBrace(self.span(start)))
            }
            b'"' | b'\'' => self.quoted(first),
            _ => self.bare(),
        }
    }

    fn bare(&mut self) -> Result<Token, LexError> {
        let start = self.pos;
        let rest = self.rest();
        let raw = match bare_word(rest) {
            Ok((_, raw)) => raw,
            // unreachable for a non-blank, non-special first byte; be safe
            Err(_) => &rest[..1],
        };
        if raw.len() >= MAX_WORD_LEN {
            let head = String::from_utf8_lossy(&raw[..10]);
            return Err(self.error(format!("too long parameter \"{head}...\" started"), start));
        }
        self.pos += raw.len();
        let word = self.make_word(start, self.pos, Quote::None)?;
        Ok(Token::Word(word))
    }

    fn quoted(&mut self, quote: u8) -> Result<Token, LexError> {
        let start = self.pos;
        let rest = &self.rest()[1..];
        let body = match quoted_body(quote)(rest) {
            Ok((_, body)) => body,
            Err(_) => &rest[..0],
        };
        let too_long = body.len() >= MAX_WORD_LEN;
        let closed = rest.get(body.len()) == Some(&quote);
        if too_long {
            let q = quote as char;
            return Err(self.error(
                format!("too long parameter, probably missing terminating \"{q}\" character"),
                start,
            ));
        }
        if closed && body.len() == MAX_WORD_LEN - 1 {
            // the word and its closing quote fill nginx's whole buffer: it
            // reports the word as too long, in its unquoted wording
            let head = String::from_utf8_lossy(&body[..10]);
            return Err(self.error(format!("too long parameter \"{head}...\" started"), start));
        }
        if !closed {
            self.pos = self.file.text.len();
            return Err(self.error(EOF_IN_DIRECTIVE.to_string(), self.file.text.len()));
        }
        let end = start + 1 + body.len() + 1;
        self.pos = end;
        // after a closing quote nginx needs whitespace, `;`, `{` or `)`
        if let Some(&next) = self.rest().first() {
            if !(is_space(next) || matches!(next, b';' | b'{' | b')')) {
                let shown = char_at(self.rest());
                return Err(self.error(format!("unexpected \"{shown}\""), self.pos));
            }
        }
        let kind = if quote == b'"' {
            Quote::Double
        } else {
            Quote::Single
        };
        let word = self.make_word(start, end, kind)?;
        Ok(Token::Word(word))
    }

    /// The word written at `start..end`; `quote` tells whether the ends are
    /// quotes. Only a word whose unescaping changes it gets its own copy.
    fn make_word(&self, start: usize, end: usize, quote: Quote) -> Result<Word, LexError> {
        let raw = &self.file.text.as_bytes()[start..end];
        let text = self.file.text.get(start..end);
        if text.is_none() || (self.file.lossy && text.is_some_and(|w| w.contains('\u{FFFD}'))) {
            return Err(self.error(
                "invalid UTF-8 in a word (is this a binary file?)".to_string(),
                start,
            ));
        }
        let body = match quote {
            Quote::None => raw,
            Quote::Single | Quote::Double => &raw[1..raw.len() - 1],
        };
        let unescaped = if body.contains(&b'\\') {
            let value = unescape(body);
            (value != body).then(|| {
                String::from_utf8_lossy(&value)
                    .into_owned()
                    .into_boxed_str()
            })
        } else {
            None
        };
        let range = (to_u32(start), to_u32(end));
        Ok(Word::new(
            self.file.clone(),
            range,
            unescaped,
            quote,
            self.span(start),
        ))
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The character at the start of `bytes`, for messages (a lone byte when the
/// text is not UTF-8).
fn char_at(bytes: &[u8]) -> String {
    let len = bytes.len().min(4);
    for n in 1..=len {
        if let Ok(s) = std::str::from_utf8(&bytes[..n]) {
            return s.to_string();
        }
    }
    format!("\\x{:02X}", bytes[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(text: &str) -> Result<Vec<Token>, LexError> {
        let file = Arc::new(SourceFile::new("t.conf".into(), text.as_bytes().to_vec()));
        let mut lexer = Lexer::new(&file, FileId(0));
        let mut out = Vec::new();
        loop {
            let t = lexer.next_token()?;
            let eof = matches!(t, Token::Eof(_));
            out.push(t);
            if eof {
                return Ok(out);
            }
        }
    }

    fn words(text: &str) -> Vec<String> {
        lex(text)
            .expect("lexes")
            .into_iter()
            .map(|t| match t {
                Token::Word(w) => w.as_str().to_string(),
                Token::Semicolon(_) => ";".into(),
                Token::OpenBrace(_) => "{".into(),
                Token::CloseBrace(_) => "}".into(),
                Token::Eof(_) => "EOF".into(),
            })
            .collect()
    }

    #[test]
    fn words_end_at_space_semicolon_and_brace_but_not_close_brace() {
        assert_eq!(words("a b;c{d}"), ["a", "b", ";", "c", "{", "d}", "EOF"]);
        assert_eq!(words("listen 80;}"), ["listen", "80", ";", "}", "EOF"]);
    }

    #[test]
    fn hash_is_a_comment_only_at_word_start() {
        assert_eq!(words("a#b # c;\nd;"), ["a#b", "d", ";", "EOF"]);
    }

    #[test]
    fn variable_braces_stay_in_the_word() {
        assert_eq!(words("x ${a}b;"), ["x", "${a}b", ";", "EOF"]);
        assert_eq!(words("x $a{"), ["x", "$a", "{", "EOF"]);
    }

    #[test]
    fn escapes_follow_nginx() {
        assert_eq!(
            words(r#"x "a\"b" 'c\'d' \\ \t \d a\ b;"#),
            ["x", "a\"b", "c'd", "\\", "\t", "\\d", "a\\ b", ";", "EOF"]
        );
    }

    #[test]
    fn quotes_span_lines_and_allow_specials() {
        assert_eq!(words("x \"a;\n{}#\" '';"), ["x", "a;\n{}#", "", ";", "EOF"]);
        assert_eq!(words("x a\"b\";"), ["x", "a\"b\"", ";", "EOF"]);
    }

    #[test]
    fn a_closing_quote_needs_a_separator() {
        let err = lex("listen \"80\"x;").unwrap_err();
        assert_eq!(err.message, "unexpected \"x\"");
        assert_eq!(
            words("if ($a = \"b\")"),
            ["if", "($a", "=", "b", ")", "EOF"]
        );
    }

    #[test]
    fn unterminated_quote_is_end_of_file() {
        let err = lex("a \"b;\n\n").unwrap_err();
        assert_eq!(err.message, EOF_IN_DIRECTIVE);
        assert_eq!(err.span.line, 3);
    }

    #[test]
    fn long_words_are_rejected() {
        let ok = format!("x {};", "a".repeat(MAX_WORD_LEN - 1));
        assert!(lex(&ok).is_ok());
        let long = format!("x\n{};", "a".repeat(MAX_WORD_LEN));
        let err = lex(&long).unwrap_err();
        assert_eq!(err.message, "too long parameter \"aaaaaaaaaa...\" started");
        assert_eq!(err.span.line, 2);
        let quoted = format!("x \"{}\";", "a".repeat(MAX_WORD_LEN));
        let err = lex(&quoted).unwrap_err();
        assert_eq!(
            err.message,
            "too long parameter, probably missing terminating \"\"\" character"
        );
    }
}
