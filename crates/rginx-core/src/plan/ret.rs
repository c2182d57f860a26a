//! The rewrite phase's `return` (`ngx_http_script_return_code`,
//! `ngx_http_send_response`) and the `Content-Type` nginx gives its text
//! (`ngx_http_set_content_type`: `types` by the URI's extension, else
//! `default_type`).

use std::sync::Arc;

use super::*;

/// A level's first `return`.
#[derive(Debug, Clone)]
pub(super) struct CompiledReturn {
    code: u16,
    text: Option<Template>,
}

impl CompiledReturn {
    /// The level's `return`, if it has one.
    pub(super) fn compile(
        settings: &Settings,
        names: &Names,
    ) -> Result<Option<CompiledReturn>, RuntimeError> {
        let Some(crate::model::Value::Return { code, text }) =
            settings.get("return").map(|s| &s.value)
        else {
            return Ok(None);
        };
        let text = match text {
            Some(t) => Some(Template::compile(t, names)?),
            None => None,
        };
        Ok(Some(CompiledReturn { code: *code, text }))
    }

    /// What nginx answers: a redirect's page with its `Location`, the
    /// text, nginx's page for the code, or (444) nothing at all.
    pub(super) fn answer<'a>(&self, level: &Level<'_>, ctx: &mut Ctx<'_>) -> Decision<'a> {
        // an empty text counts as none (`code->text.value.len`)
        let text = self.text.as_ref().filter(|t| t.as_literal() != Some(""));
        if self.code >= 400 && text.is_none() {
            return match self.code {
                // ngx_http_finalize_request terminates these unanswered
                code @ (408 | 444 | 499) => Decision::Close(code),
                code => Decision::Respond(code),
            };
        }
        ctx.answering = Some(level.err_status.unwrap_or(self.code));
        let mut value = String::new();
        if let Some(t) = text {
            t.render(&mut value, &mut |v, out| ctx.var(v, out));
        }
        if matches!(self.code, 301 | 302 | 303 | 307 | 308) {
            let location = own_location(ctx.req, ctx.host, level.server_name, level.style, value);
            return Decision::Moved {
                status: self.code,
                location,
            };
        }
        Decision::Text {
            status: self.code,
            content_type: level.types.of(ctx.uri).to_string(),
            body: value,
        }
    }
}

/// What the answer of a level needs besides the request.
pub(super) struct Level<'r> {
    pub(super) types: &'r ContentTypes,
    pub(super) style: RedirectStyle,
    pub(super) server_name: &'r str,
    /// `r->err_status` after an `error_page`.
    pub(super) err_status: Option<u16>,
}

/// The `types` tables compiled so far, by the address of their setting.
pub(super) type TypesCache = Vec<(usize, Arc<foldhash::HashMap<String, String>>)>;

/// A level's `types` and `default_type`.
#[derive(Debug, Clone)]
pub(super) struct ContentTypes {
    /// `None`: nginx's built-in three (no `types` block at any level).
    types: Option<Arc<foldhash::HashMap<String, String>>>,
    default_type: String,
}

impl ContentTypes {
    /// Compiles a level's settings; levels that inherit the same `types`
    /// block share one table (`cache`, by the setting's address).
    pub(super) fn compile(settings: &Settings, cache: &mut TypesCache) -> ContentTypes {
        let types = settings.get("types").and_then(|s| {
            let crate::model::Value::Types(list) = &s.value else {
                return None;
            };
            let key = s as *const crate::model::Setting as usize;
            if let Some((_, shared)) = cache.iter().find(|(k, _)| *k == key) {
                return Some(Arc::clone(shared));
            }
            let table: foldhash::HashMap<String, String> = list.iter().cloned().collect();
            let table = Arc::new(table);
            cache.push((key, Arc::clone(&table)));
            Some(table)
        });
        ContentTypes {
            types,
            default_type: settings
                .text("default_type")
                .unwrap_or("text/plain")
                .to_string(),
        }
    }

    /// The type for `uri` by its extension (the text after the last `.`
    /// of its last segment, any case).
    pub(super) fn of(&self, uri: &str) -> &str {
        let last = uri.rsplit('/').next().unwrap_or("");
        let Some((_, ext)) = last.rsplit_once('.') else {
            return &self.default_type;
        };
        let ext = ext.to_ascii_lowercase();
        let found = match &self.types {
            Some(table) => table.get(&ext).map(String::as_str),
            // ngx_http_core_default_types
            None => match ext.as_str() {
                "html" => Some("text/html"),
                "gif" => Some("image/gif"),
                "jpg" => Some("image/jpeg"),
                _ => None,
            },
        };
        found.unwrap_or(&self.default_type)
    }
}
