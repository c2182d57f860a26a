//! `error_page` (`ngx_http_special_response_handler`,
//! `ngx_http_send_error_page`): which page answers an error, and where its
//! internal redirect goes.

use super::*;

/// A level's `error_page` entries.
#[derive(Debug, Clone)]
pub(super) struct ErrorPages(Vec<CompiledErrorPage>);

#[derive(Debug, Clone)]
struct CompiledErrorPage {
    codes: Vec<u16>,
    overwrite: Option<u16>,
    target: Template,
}

/// Where an `error_page` sends a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorTarget {
    /// An internal redirect: the location search again, with this `$uri`
    /// and `$args` (the method becomes GET unless it is HEAD).
    Uri {
        /// The new `$uri`.
        uri: String,
        /// The new `$args` (after the target's `?`).
        args: Option<String>,
    },
    /// The named location `@name` (name with its `@`), `$uri` unchanged.
    Named(String),
    /// A redirect: nginx's page for the code (302 unless `=301`, `=303`,
    /// `=307` or `=308`) with this `Location`, written as it is.
    Url(String),
}

/// The `error_page` that answers an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPageHit {
    /// Where it goes.
    pub target: ErrorTarget,
    /// What the answer's status becomes: `None` the error's own code,
    /// `Some(0)` the target's (`=`), `Some(n)` that code.
    pub overwrite: Option<u16>,
}

impl ErrorPageHit {
    /// The status of the redirect for a URL target.
    pub fn url_status(&self) -> u16 {
        self.overwrite
            .filter(|c| matches!(c, 301 | 302 | 303 | 307 | 308))
            .unwrap_or(302)
    }
}

impl ErrorPages {
    /// A level's entries (`None` when it has none, set or inherited).
    pub(super) fn compile(
        settings: &Settings,
        names: &Names,
    ) -> Result<Option<ErrorPages>, RuntimeError> {
        let Some(crate::model::Value::ErrorPages(list)) =
            settings.get("error_page").map(|s| &s.value)
        else {
            return Ok(None);
        };
        let mut pages = Vec::with_capacity(list.len());
        for e in list {
            pages.push(CompiledErrorPage {
                codes: e.codes.clone(),
                overwrite: e.overwrite,
                target: Template::compile(&e.target, names)?,
            });
        }
        Ok(Some(ErrorPages(pages)))
    }

    /// Whether an entry names `status`.
    pub(super) fn covers(&self, status: u16) -> bool {
        self.0.iter().any(|p| p.codes.contains(&status))
    }

    /// The first entry for `status`, its target evaluated for the request.
    pub(super) fn hit(&self, status: u16, ctx: &mut Ctx<'_>) -> Option<ErrorPageHit> {
        let page = self.0.iter().find(|p| p.codes.contains(&status))?;
        let mut value = String::new();
        page.target
            .render(&mut value, &mut |v, out| ctx.var(v, out));
        let target = if value.starts_with('/') {
            // ngx_http_split_args
            match value.split_once('?') {
                Some((uri, args)) => ErrorTarget::Uri {
                    uri: uri.to_string(),
                    args: Some(args.to_string()),
                },
                None => ErrorTarget::Uri {
                    uri: value,
                    args: None,
                },
            }
        } else if value.starts_with('@') {
            ErrorTarget::Named(value)
        } else {
            ErrorTarget::Url(value)
        };
        Some(ErrorPageHit {
            target,
            overwrite: page.overwrite,
        })
    }
}
