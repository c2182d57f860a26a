//! The golden cases of fixtures/plan (format in fixtures/plan/README.md).

use std::path::{Path, PathBuf};

/// One recorded case.
pub struct Case {
    pub name: String,
    pub config: String,
    pub request: Vec<String>,
    pub upstream: Vec<String>,
    pub response: Vec<String>,
    /// The request body (`--- body`), lines joined with CRLF.
    pub body: Option<Vec<u8>>,
    /// What the backend received as body (`--- upstream-body`).
    pub upstream_body: Option<Vec<u8>>,
}

/// The `--- NAME` sections of a case file, in order.
pub fn sections(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("--- ") {
            out.push((name.trim().to_string(), Vec::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push(line.to_string());
        }
    }
    out
}

/// Reads a case file.
pub fn load(path: &Path) -> Case {
    let text = std::fs::read_to_string(path).expect("case file");
    let mut case = Case {
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        config: String::new(),
        request: Vec::new(),
        upstream: Vec::new(),
        response: Vec::new(),
        body: None,
        upstream_body: None,
    };
    for (name, mut body) in sections(&text) {
        // body sections keep every line: empty ones are bytes too
        let bytes = || Some(body.join("\r\n").into_bytes());
        match name.as_str() {
            "body" => case.body = bytes(),
            "upstream-body" => case.upstream_body = bytes(),
            _ => {}
        }
        while body.last().is_some_and(|l| l.is_empty()) {
            body.pop();
        }
        match name.as_str() {
            "config" => case.config = body.join("\n"),
            "request" => case.request = body,
            "upstream" => case.upstream = body,
            "response" => case.response = body,
            _ => {}
        }
    }
    case
}

/// Every case file, sorted by name.
pub fn all() -> Vec<PathBuf> {
    let dir = super::root().join("fixtures/plan");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "case"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
