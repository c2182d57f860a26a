//! Statement parser: turns tokens into directives and blocks, and expands
//! `include` while reading, as nginx does (`ngx_conf_parse`,
//! `ngx_conf_include`).

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::ast::{Block, Config, Directive, Include, Word};
use crate::lexer::{Lexer, Token, EOF_IN_DIRECTIVE};
use crate::source::{FileId, SourceFile, Span};
use crate::SyntaxError;

/// Deepest block nesting rginx accepts (nginx has no limit; real configs use
/// fewer than ten levels, and a bound keeps recursion safe).
pub const MAX_BLOCK_DEPTH: usize = 100;
/// Deepest chain of nested includes.
pub const MAX_INCLUDE_DEPTH: usize = 32;

/// The result of parsing: the (possibly partial) tree and the first syntax
/// error, if any. A partial tree lets the validator report errors nginx
/// would have found before reaching the syntax error.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Everything read up to the end or up to the error.
    pub config: Config,
    /// The syntax error that stopped parsing.
    pub error: Option<SyntaxError>,
}

/// Parses the main configuration file at `path`, expanding includes.
/// Relative include paths resolve against the directory of `path`.
pub fn parse_file(path: &Path) -> Parsed {
    parse_file_with_globals(path, None)
}

/// [`parse_file`] with `-g`'s directives (`globals`) in front of the
/// file's, as nginx reads them before the file (`ngx_conf_param`); they
/// are named `command line` in messages. The main file stays the first
/// of [`Config::files`].
pub fn parse_file_with_globals(path: &Path, globals: Option<&str>) -> Parsed {
    let conf_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut parser = ConfParser::new(conf_dir);
    let mut directives = Vec::new();
    let error = match read_file(path) {
        Ok(text) => parser.parse_source(path.to_path_buf(), text, &mut directives, None),
        Err(message) => Err(SyntaxError {
            message,
            span: None,
            seq: 0,
        }),
    }
    .err();
    let Some(globals) = globals else {
        return parser.finish(directives, error);
    };
    let mut given = Vec::new();
    let first = parser.files.len();
    let given_error = parser
        .parse_source(
            PathBuf::from("command line"),
            globals.as_bytes().to_vec(),
            &mut given,
            None,
        )
        .err()
        .map(|mut e| {
            // ngx_conf_read_token's words for the end of a parameter
            if e.message == EOF_IN_DIRECTIVE {
                e.message = "unexpected end of parameter, expecting \";\"".to_string();
            }
            e
        });
    if let Some(file) = parser.files.get_mut(first) {
        let mut marked = (**file).clone();
        marked.command_line = true;
        *file = Arc::new(marked);
    }
    given.append(&mut directives);
    // nginx stops at the command line's error before it reads the file
    parser.finish(given, given_error.or(error))
}

/// Parses configuration text held in memory. `path` names it in messages;
/// includes resolve against `path`'s directory.
pub fn parse_str(path: &Path, text: &str) -> Parsed {
    let conf_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut parser = ConfParser::new(conf_dir);
    let mut directives = Vec::new();
    let error = parser
        .parse_source(
            path.to_path_buf(),
            text.as_bytes().to_vec(),
            &mut directives,
            None,
        )
        .err();
    parser.finish(directives, error)
}

/// Reads a whole file; the error names the call that failed, as nginx's
/// messages do (`open() "x" failed (2: ...)`, `read() "x" failed (21: ...)`).
fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    let fail = |call: &str, e: io::Error| {
        format!("{call}() \"{}\" failed ({})", path.display(), os_error(&e))
    };
    let mut file = File::open(path).map_err(|e| fail("open", e))?;
    let mut text = Vec::new();
    file.read_to_end(&mut text).map_err(|e| fail("read", e))?;
    Ok(text)
}

/// `2: No such file or directory`, as nginx prints errno.
fn os_error(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let text = io::Error::from_raw_os_error(code).to_string();
            let text = match text.rfind(" (os error") {
                Some(i) => text[..i].to_string(),
                None => text,
            };
            format!("{code}: {text}")
        }
        None => e.to_string(),
    }
}

struct ConfParser {
    conf_dir: PathBuf,
    files: Vec<Arc<SourceFile>>,
    includes: Vec<Include>,
    /// canonical paths of the files being read, outermost first
    open: Vec<PathBuf>,
    seq: u32,
}

/// How a body ended.
enum BodyEnd {
    Close(Span),
    Eof,
}

impl ConfParser {
    fn new(conf_dir: PathBuf) -> Self {
        ConfParser {
            conf_dir,
            files: Vec::new(),
            includes: Vec::new(),
            open: Vec::new(),
            seq: 0,
        }
    }

    fn finish(mut self, directives: Vec<Directive>, error: Option<SyntaxError>) -> Parsed {
        let end_seq = self.next_seq();
        Parsed {
            config: Config {
                files: self.files,
                directives,
                includes: self.includes,
                end_seq,
            },
            error,
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq += 1;
        self.seq
    }

    fn error(&mut self, message: impl Into<String>, span: Span) -> SyntaxError {
        SyntaxError {
            message: message.into(),
            span: Some(span),
            seq: self.next_seq(),
        }
    }

    /// Reads one file's directives into `out` (the current context).
    fn parse_source(
        &mut self,
        path: PathBuf,
        text: Vec<u8>,
        out: &mut Vec<Directive>,
        depth: Option<usize>,
    ) -> Result<FileId, SyntaxError> {
        let id = FileId(u32::try_from(self.files.len()).unwrap_or(u32::MAX));
        let file = Arc::new(SourceFile::new(path.clone(), text));
        self.files.push(file.clone());
        let canonical = std::fs::canonicalize(&path).unwrap_or(path);
        self.open.push(canonical);
        let mut lexer = Lexer::new(&file, id);
        let result = self.parse_body(&mut lexer, out, depth.unwrap_or(0), false);
        self.open.pop();
        result.map(|_| id)
    }

    /// Parses directives until `}` (when `in_block`) or end of file.
    fn parse_body(
        &mut self,
        lexer: &mut Lexer<'_>,
        out: &mut Vec<Directive>,
        depth: usize,
        in_block: bool,
    ) -> Result<BodyEnd, SyntaxError> {
        let mut words: Vec<Word> = Vec::new();
        loop {
            let token = match lexer.next_token() {
                Ok(t) => t,
                Err(e) => return Err(self.error(e.message, e.span)),
            };
            match token {
                Token::Word(w) => words.push(w),
                Token::Semicolon(span) => {
                    let Some(directive) = self.directive(&mut words, span, None) else {
                        return Err(self.error("unexpected \";\"", span));
                    };
                    if is_include(&directive) {
                        self.include(&directive, out, depth)?;
                    } else {
                        out.push(directive);
                    }
                }
                Token::OpenBrace(span) => {
                    let block = Block {
                        directives: Vec::new(),
                        close: None,
                        close_seq: 0,
                    };
                    let Some(directive) = self.directive(&mut words, span, Some(Box::new(block)))
                    else {
                        return Err(self.error("unexpected \"{\"", span));
                    };
                    out.push(directive);
                    if depth + 1 > MAX_BLOCK_DEPTH {
                        return Err(self.error(
                            format!("blocks are nested too deeply (rginx allows {MAX_BLOCK_DEPTH} levels)"),
                            span,
                        ));
                    }
                    let Some(block) = out.last_mut().and_then(|d| d.block.as_mut()) else {
                        continue;
                    };
                    let mut children = Vec::new();
                    let end = self.parse_body(lexer, &mut children, depth + 1, true);
                    block.directives = children;
                    match end {
                        Ok(BodyEnd::Close(close)) => {
                            block.close = Some(close);
                            block.close_seq = self.next_seq();
                        }
                        Ok(BodyEnd::Eof) => {}
                        Err(e) => return Err(e),
                    }
                }
                Token::CloseBrace(span) => {
                    if !words.is_empty() || !in_block {
                        return Err(self.error("unexpected \"}\"", span));
                    }
                    return Ok(BodyEnd::Close(span));
                }
                Token::Eof(span) => {
                    if !words.is_empty() {
                        return Err(self.error(EOF_IN_DIRECTIVE, span));
                    }
                    if in_block {
                        return Err(self.error("unexpected end of file, expecting \"}\"", span));
                    }
                    return Ok(BodyEnd::Eof);
                }
            }
        }
    }

    fn directive(
        &mut self,
        words: &mut Vec<Word>,
        end: Span,
        block: Option<Box<Block>>,
    ) -> Option<Directive> {
        if words.is_empty() {
            return None;
        }
        // exact-size argument list; `words` keeps its buffer for the next one
        let args: Vec<Word> = words.drain(1..).collect();
        let name = words.pop()?;
        Some(Directive {
            name,
            args,
            block,
            end,
            seq: self.next_seq(),
        })
    }

    /// Expands `include PATTERN;` into `out`.
    fn include(
        &mut self,
        directive: &Directive,
        out: &mut Vec<Directive>,
        depth: usize,
    ) -> Result<(), SyntaxError> {
        let pattern = directive.args[0].as_str().to_string();
        let path = self.conf_dir.join(&pattern);
        let mut record = Include {
            span: directive.name.span,
            pattern: pattern.clone(),
            files: Vec::new(),
        };
        let paths = if pattern.contains(['*', '?', '[']) {
            self.glob(&path, directive)?
        } else {
            vec![path]
        };
        if self.open.len() > MAX_INCLUDE_DEPTH {
            return Err(self.error(
                format!("includes are nested too deeply (rginx allows {MAX_INCLUDE_DEPTH} levels)"),
                directive.end,
            ));
        }
        for path in paths {
            let text = match read_file(&path) {
                Ok(t) => t,
                Err(message) => return Err(self.error(message, directive.end)),
            };
            let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if self.open.contains(&canonical) {
                let message = format!(
                    "include cycle: \"{}\" is already being included",
                    path.display()
                );
                return Err(self.error(message, directive.end));
            }
            let result = self.parse_source(path, text, out, Some(depth));
            match result {
                Ok(id) => record.files.push(id),
                Err(e) => {
                    self.includes.push(record);
                    return Err(e);
                }
            }
        }
        self.includes.push(record);
        Ok(())
    }

    /// Expands a glob as glob(3) would: sorted, hidden files only when the
    /// pattern names the dot; no match is not an error.
    fn glob(&mut self, path: &Path, directive: &Directive) -> Result<Vec<PathBuf>, SyntaxError> {
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        let pattern = path.to_string_lossy().into_owned();
        let entries = match glob::glob_with(&pattern, options) {
            Ok(entries) => entries,
            Err(_) => return Err(self.error(format!("glob() \"{pattern}\" failed"), directive.end)),
        };
        // unreadable directories are skipped, as glob(3) does without GLOB_ERR
        let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).collect();
        paths.sort();
        let mut seen = HashSet::new();
        paths.retain(|p| seen.insert(p.clone()));
        Ok(paths)
    }
}

fn is_include(d: &Directive) -> bool {
    d.name.as_str() == "include" && d.args.len() == 1 && d.block.is_none()
}
