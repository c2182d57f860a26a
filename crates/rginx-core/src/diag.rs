//! Diagnostics: errors and warnings with nginx's wording and position.

use rginx_config::{Config, Span, SyntaxError};

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The configuration cannot be used (`[emerg]`).
    Error,
    /// The configuration works, but something needs attention (`[warn]`).
    Warning,
}

impl Severity {
    /// nginx's level name.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Error => "emerg",
            Severity::Warning => "warn",
        }
    }
}

/// One message about the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The message, without the ` in FILE:LINE` suffix.
    pub message: String,
    /// Where: the line is the one nginx names; the column points at the
    /// offending word where it is on that line. `None` for messages nginx
    /// gives without a position.
    pub span: Option<Span>,
    /// A one-line suggestion (lints).
    pub hint: Option<String>,
    /// Order in which nginx would find it: (token sequence, phase, position).
    pub order: (u32, u32, u32),
}

impl Diagnostic {
    /// An error.
    pub fn error(message: impl Into<String>, span: Option<Span>, order: (u32, u32, u32)) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span,
            hint: None,
            order,
        }
    }

    /// A warning.
    pub fn warning(message: impl Into<String>, span: Option<Span>, order: (u32, u32, u32)) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message, span, order)
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The nginx-style line: `[emerg] MESSAGE in FILE:LINE` (without the
    /// program name).
    pub fn render(&self, config: &Config) -> String {
        let mut line = format!("[{}] {}", self.severity.label(), self.message);
        if let Some(location) = self.location(config) {
            line.push_str(" in ");
            line.push_str(&location);
        }
        line
    }

    /// `FILE:LINE`, if the diagnostic has a position.
    pub fn location(&self, config: &Config) -> Option<String> {
        let span = self.span?;
        let file = config.file(span.file)?;
        // nginx's ngx_conf_log_error for `-g`'s directives
        if file.command_line {
            return Some("command line".to_string());
        }
        Some(format!("{}:{}", file.path.display(), span.line))
    }

    /// The source line and a caret under the column, for terminals.
    pub fn excerpt(&self, config: &Config) -> Option<String> {
        let span = self.span?;
        let file = config.file(span.file)?;
        let text = file.line_text(span.line);
        let pad: String = text
            .chars()
            .take(span.column.saturating_sub(1) as usize)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        Some(format!("{text}\n{pad}^"))
    }
}

impl From<&SyntaxError> for Diagnostic {
    fn from(e: &SyntaxError) -> Self {
        Diagnostic::error(e.message.clone(), e.span, (e.seq, 0, 0))
    }
}
