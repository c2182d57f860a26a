//! Regex errors in PCRE2's words, as nginx prints them
//! (`pcre2_compile() failed: MESSAGE in "PATTERN" at "REST"`), for the
//! mistakes both engines reject the same way.

use regex_syntax::ast::ErrorKind;

/// The message for a pattern that failed to compile.
pub fn describe(pattern: &str, error: &str) -> String {
    let parsed = regex_syntax::ast::parse::Parser::new().parse(pattern);
    let Err(e) = parsed else {
        return unsupported(pattern, error);
    };
    let (text, at_end) = match e.kind() {
        ErrorKind::GroupUnclosed => ("missing closing parenthesis", true),
        ErrorKind::GroupUnopened => ("unmatched closing parenthesis", false),
        ErrorKind::ClassUnclosed => ("missing terminating ] for character class", true),
        ErrorKind::RepetitionMissing => ("quantifier does not follow a repeatable item", false),
        ErrorKind::EscapeUnexpectedEof => ("\\ at end of pattern", true),
        _ => return unsupported(pattern, error),
    };
    let offset = if at_end {
        pattern.len()
    } else {
        e.span().start.offset
    };
    if offset < pattern.len() {
        format!(
            "pcre2_compile() failed: {text} in \"{pattern}\" at \"{}\"",
            &pattern[offset..]
        )
    } else {
        format!("pcre2_compile() failed: {text} in \"{pattern}\"")
    }
}

/// A pattern the regex engine refuses though PCRE may accept it
/// (look-around, back-references): rginx's own message.
fn unsupported(pattern: &str, error: &str) -> String {
    let last = error
        .lines()
        .last()
        .unwrap_or("")
        .trim()
        .trim_start_matches("error: ");
    format!("regex \"{pattern}\" is not supported by rginx: {last}")
}

/// Names of the named captures of a pattern (`(?<n>…)`, `(?P<n>…)`,
/// `(?'n'…)`): nginx makes each a variable.
pub fn capture_names(pattern: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(i) = rest.find("(?") {
        let after = &rest[i + 2..];
        let (open, close) = if after.starts_with("P<") {
            (2, '>')
        } else if after.starts_with('<') && !after.starts_with("<=") && !after.starts_with("<!") {
            (1, '>')
        } else if after.starts_with('\'') {
            (1, '\'')
        } else {
            rest = after;
            continue;
        };
        let name_part = &after[open..];
        if let Some(end) = name_part.find(close) {
            out.push(name_part[..end].to_string());
        }
        rest = after;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(p: &str) -> String {
        describe(p, &regex::Regex::new(p).unwrap_err().to_string())
    }

    #[test]
    fn common_mistakes_read_like_pcre2() {
        assert_eq!(
            msg("^/(a"),
            "pcre2_compile() failed: missing closing parenthesis in \"^/(a\""
        );
        assert_eq!(
            msg("a)b"),
            "pcre2_compile() failed: unmatched closing parenthesis in \"a)b\" at \")b\""
        );
        assert!(msg("(?=a)").starts_with("regex \"(?=a)\" is not supported by rginx"));
        assert_eq!(
            capture_names("^/(?<user>[a-z]+)/(?P<id>\\d+)(?:x)(?=y)"),
            ["user", "id"]
        );
    }
}
