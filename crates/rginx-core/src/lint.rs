//! Lints nginx does not have: warnings about proxy configurations that
//! nginx accepts but that do not do what their authors meant.

use crate::diag::Diagnostic;
use crate::model::Model;

/// Runs every lint over a validated model.
pub fn lint(_model: &Model) -> Vec<Diagnostic> {
    Vec::new()
}
