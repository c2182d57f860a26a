//! The syntax tree: directives, their words and blocks, with positions.

use std::sync::Arc;

use crate::source::{FileId, SourceFile, Span};

/// How a word was written in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quote {
    /// A bare word.
    None,
    /// `'...'`
    Single,
    /// `"..."`
    Double,
}

/// One word of a directive (its name or an argument).
///
/// A word borrows its text from its file (shared through an `Arc`), so
/// reading a configuration allocates nothing per word unless unescaping
/// changed it. Cloning a word is cheap.
#[derive(Clone)]
pub struct Word {
    source: Arc<SourceFile>,
    /// Byte range of the word as written, quotes included.
    raw: (u32, u32),
    /// The value when nginx's unescaping changed it.
    unescaped: Option<Box<str>>,
    /// How the word was quoted.
    pub quote: Quote,
    /// Where the word starts (its opening quote, if quoted).
    pub span: Span,
}

impl Word {
    /// A word of `source` at the byte range `raw` (quotes included). The
    /// range must hold valid UTF-8 (the lexer checks it).
    pub(crate) fn new(
        source: Arc<SourceFile>,
        raw: (u32, u32),
        unescaped: Option<Box<str>>,
        quote: Quote,
        span: Span,
    ) -> Word {
        Word {
            source,
            raw,
            unescaped,
            quote,
            span,
        }
    }

    fn slice(&self, from: u32, to: u32) -> &str {
        self.source
            .text
            .get(from as usize..to as usize)
            .unwrap_or_default()
    }

    /// The value after nginx's unescaping (`\"`, `\'`, `\\`, `\t`, `\r`,
    /// `\n`), without quotes. Variables (`$x`, `${x}`) are kept as text.
    pub fn as_str(&self) -> &str {
        if let Some(v) = &self.unescaped {
            return v;
        }
        let (from, to) = self.raw;
        match self.quote {
            Quote::None => self.slice(from, to),
            Quote::Single | Quote::Double => {
                self.slice(from + 1, to.saturating_sub(1).max(from + 1))
            }
        }
    }

    /// The word exactly as written, quotes included.
    pub fn raw(&self) -> &str {
        self.slice(self.raw.0, self.raw.1)
    }
}

impl PartialEq for Word {
    fn eq(&self, other: &Word) -> bool {
        self.as_str() == other.as_str()
            && self.raw() == other.raw()
            && self.quote == other.quote
            && self.span == other.span
    }
}

impl Eq for Word {}

impl std::fmt::Debug for Word {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Word")
            .field("value", &self.as_str())
            .field("raw", &self.raw())
            .field("quote", &self.quote)
            .field("span", &self.span)
            .finish()
    }
}

/// A directive: `name args;` or `name args { ... }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    /// The first word.
    pub name: Word,
    /// The remaining words.
    pub args: Vec<Word>,
    /// The body, when the directive was terminated by `{` (boxed: most
    /// directives have none, and a small node keeps large trees compact).
    pub block: Option<Box<Block>>,
    /// Where the terminating `;` or `{` is. nginx reports errors about a
    /// directive at this line, because that is where its parser stands when
    /// the directive's handler runs.
    pub end: Span,
    /// Order of the terminator in the token stream (includes expanded), used to
    /// put diagnostics in the order nginx would find them.
    pub seq: u32,
}

impl Directive {
    /// The directive's name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The directives of the block, or an empty slice.
    pub fn children(&self) -> &[Directive] {
        self.block.as_ref().map_or(&[], |b| &b.directives)
    }
}

/// The body of a block directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// Directives inside the braces, includes expanded in place.
    pub directives: Vec<Directive>,
    /// Where the closing `}` is; `None` when the file ended first.
    pub close: Option<Span>,
    /// Order of the closing brace in the token stream.
    pub close_seq: u32,
}

/// An expanded `include` directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Include {
    /// The include directive's name word.
    pub span: Span,
    /// The path or glob as written.
    pub pattern: String,
    /// The files it read, in order.
    pub files: Vec<FileId>,
}

/// A parsed configuration: the main file with every include expanded.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Every file read, the main file first.
    pub files: Vec<Arc<SourceFile>>,
    /// The top-level (main context) directives.
    pub directives: Vec<Directive>,
    /// Every include that was expanded, in the order it was read.
    pub includes: Vec<Include>,
    /// Order number of the end of the main file.
    pub end_seq: u32,
}

impl Config {
    /// The file behind an id.
    pub fn file(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize).map(|f| f.as_ref())
    }
}
