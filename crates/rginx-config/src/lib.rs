//! # rginx-config
//!
//! The nginx configuration language: a tokeniser and parser (built with
//! `nom`) that read `nginx.conf` the way nginx itself does, keep every word's
//! file, line and column, and expand `include` (globs included) while reading.
//!
//! ```
//! let parsed = rginx_config::parse_str("t.conf".as_ref(), "events { }\nhttp { }\n");
//! assert!(parsed.error.is_none());
//! assert_eq!(parsed.config.directives[1].name(), "http");
//! ```

#![forbid(unsafe_code)]
// no panics on input: errors are values (clippy.toml allows both in tests)
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![warn(missing_docs)]

pub mod ast;
pub mod lexer;
pub mod parser;
pub mod print;
pub mod source;

pub use ast::{Block, Config, Directive, Include, Quote, Word};
pub use parser::{
    parse_file, parse_file_with_globals, parse_str, Parsed, MAX_BLOCK_DEPTH, MAX_INCLUDE_DEPTH,
};
pub use print::{quote_word, write_directives};
pub use source::{FileId, SourceFile, Span};

/// A syntax error, worded as nginx words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    /// nginx's message, without the ` in FILE:LINE` suffix.
    pub message: String,
    /// Where nginx reports it; `None` for the main file that could not be
    /// opened (nginx names no position then).
    pub span: Option<Span>,
    /// Order in the token stream, to sort it among validation errors.
    pub seq: u32,
}
