//! Source files and positions inside them.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// Index of a file in [`crate::Config::files`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileId(pub u32);

/// A position in a configuration file: which file, 1-based line (nginx counts
/// line feeds) and 1-based column (in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Span {
    /// The file the position is in.
    pub file: FileId,
    /// 1-based line number.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub column: u32,
}

/// One configuration file as it was read, kept for diagnostics and `-T`.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as rginx names it in messages (the main file as given, included
    /// files joined to the main file's directory).
    pub path: PathBuf,
    /// The file's text. A file that is not valid UTF-8 is converted with
    /// U+FFFD in place of bad bytes (`lossy`); the lexer refuses words that
    /// hold such bytes, and comments may hold anything, as in nginx.
    pub text: String,
    /// Whether the file had bytes that are not UTF-8.
    pub lossy: bool,
    /// Whether it is the text of `-g` (nginx's messages then say `in
    /// command line`, and `-T` does not print it).
    pub command_line: bool,
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// Wraps the bytes of a file.
    pub fn new(path: PathBuf, bytes: Vec<u8>) -> Self {
        let (text, lossy) = match String::from_utf8(bytes) {
            Ok(text) => (text, false),
            Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
        };
        let mut line_starts = Vec::with_capacity(text.len() / 32 + 1);
        line_starts.push(0);
        line_starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        SourceFile {
            path,
            text,
            lossy,
            command_line: false,
            line_starts,
        }
    }

    /// The file's path for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Line and column (both 1-based) of a byte offset.
    pub fn position(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let line_index = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line_index];
        let column = match self.text.get(start..offset) {
            Some(s) => s.chars().count(),
            None => offset - start,
        } + 1;
        (to_u32(line_index + 1), to_u32(column))
    }

    /// The text of a 1-based line, without its line ending (lossy for
    /// non-UTF-8 bytes).
    pub fn line_text(&self, line: u32) -> Cow<'_, str> {
        let index = (line as usize).saturating_sub(1);
        let Some(&start) = self.line_starts.get(index) else {
            return Cow::Borrowed("");
        };
        let end = self
            .line_starts
            .get(index + 1)
            .map(|e| e - 1)
            .unwrap_or(self.text.len());
        let line = self.text.get(start..end).unwrap_or_default();
        Cow::Borrowed(line.strip_suffix('\r').unwrap_or(line))
    }

    /// The line number nginx reports at end of file (one more than the
    /// number of line feeds).
    pub fn last_line(&self) -> u32 {
        to_u32(self.line_starts.len())
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let f = SourceFile::new("x".into(), "ab\ncé d\n".as_bytes().to_vec());
        assert_eq!(f.position(0), (1, 1));
        assert_eq!(f.position(3), (2, 1));
        // 'é' is two bytes but one column
        assert_eq!(f.position(7), (2, 4));
        assert_eq!(f.line_text(2), "cé d");
        assert_eq!(f.last_line(), 3);
    }
}
