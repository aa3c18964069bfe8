//! Checking, when the pipeline loads, the variables built-in stages read against the columns
//! known before anything runs, so `repro run`, `status` and `dag` report a misspelt variable at
//! once, every one of them, before any stage runs.
//!
//! Owns: what is known of each project path's columns: declared by the built-in stage that writes
//! it (`BuiltinStage::output_columns`), a source (no stage writes it or a folder above it: the
//! reading kind may look at its header), or unknown (a command stage writes it). Deliberately does
//! not own: which variables a stage reads or reading a header (the kinds, through
//! `check_columns`).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use repro_kind::columns::{ColumnsCtx, Known};
use repro_kind::diag::Diagnostic;

use super::model::{Action, Stage};

/// Every variable a built-in stage reads that is not among its data file's known columns.
pub(super) fn check(root: &Path, stages: &[Stage]) -> Vec<Diagnostic> {
    let mut declared: HashMap<String, (&str, Vec<String>)> = HashMap::new();
    for s in stages {
        if let Action::Builtin(b) = &s.action {
            for (path, columns) in b.output_columns() {
                declared.insert(path, (s.name.as_str(), columns));
            }
        }
    }
    let outs: HashSet<&str> = stages
        .iter()
        .flat_map(|s| s.outs.iter().map(String::as_str))
        .collect();
    let known = |path: &str| -> Known<'_> {
        if let Some((stage, columns)) = declared.get(path) {
            return Known::Declared { stage, columns };
        }
        // The path or a folder above it is an output (`path_within`), by lookups, not a scan
        // of every stage's outputs for every reader.
        let written = std::iter::once(path)
            .chain(path.rmatch_indices('/').map(|(i, _)| &path[..i]))
            .any(|p| outs.contains(p));
        if written {
            Known::Unknown
        } else {
            Known::Source
        }
    };
    let ctx = ColumnsCtx {
        root,
        known: &known,
    };
    let mut out = Vec::new();
    for s in stages {
        if let Action::Builtin(b) = &s.action {
            out.extend(b.check_columns(&ctx));
        }
    }
    out
}
