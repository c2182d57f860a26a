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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    /// The value after nginx's unescaping (`\"`, `\'`, `\\`, `\t`, `\r`, `\n`),
    /// without quotes. Variables (`$x`, `${x}`) are kept as text.
    pub value: String,
    /// The word exactly as written, quotes included; `None` when that is
    /// the value itself (a bare word without escapes), to save a copy.
    pub(crate) raw: Option<String>,
    /// How the word was quoted.
    pub quote: Quote,
    /// Where the word starts (its opening quote, if quoted).
    pub span: Span,
}

impl Word {
    /// The value as a string slice.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The word exactly as written, quotes included.
    pub fn raw(&self) -> &str {
        self.raw.as_deref().unwrap_or(&self.value)
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
        &self.name.value
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
