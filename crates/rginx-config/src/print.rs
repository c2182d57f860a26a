//! Printing a tree back as configuration text.

use std::fmt::{self, Write};

use crate::ast::{Config, Directive};

/// Writes directives as nginx configuration text, one per line, indented by
/// four spaces per level, each word exactly as it was written.
pub fn write_directives(
    out: &mut impl Write,
    directives: &[Directive],
    level: usize,
) -> fmt::Result {
    for d in directives {
        for _ in 0..level {
            out.write_str("    ")?;
        }
        out.write_str(d.name.raw())?;
        for arg in &d.args {
            out.write_char(' ')?;
            out.write_str(arg.raw())?;
        }
        match &d.block {
            None => out.write_str(";\n")?,
            Some(block) => {
                out.write_str(" {\n")?;
                write_directives(out, &block.directives, level + 1)?;
                for _ in 0..level {
                    out.write_str("    ")?;
                }
                out.write_str("}\n")?;
            }
        }
    }
    Ok(())
}

impl fmt::Display for Config {
    /// The whole tree with includes expanded in place.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_directives(f, &self.directives, 0)
    }
}

/// Writes `value` as a word that the lexer reads back as exactly `value`:
/// bare when that is unambiguous, otherwise double-quoted with `"` and `\`
/// escaped.
pub fn quote_word(value: &str) -> String {
    let bare_ok = !value.is_empty()
        && !value.starts_with(['"', '\'', '#', '}', ';', '{'])
        && value.bytes().all(|b| {
            !matches!(
                b,
                b' ' | b'\t' | b'\r' | b'\n' | b';' | b'{' | b'\\' | b'$' | b'"' | b'\''
            )
        });
    if bare_ok {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}
