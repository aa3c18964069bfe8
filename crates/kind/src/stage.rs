//! The built-in stage contract: what the engine asks of a kind, and what a kind may use.
//!
//! Owns: the [`BuiltinStage`] trait (implied paths, seeds, canonical definition, code
//! fingerprint, run), the [`KindRegistry`] the pipeline parser asks to turn `kind:` and `params:`
//! into a stage, and the small context types passed across. Deliberately does not own: any kind
//! (they live in their own crates and are named in one place, the binary's `kinds.rs`), or how
//! stages are scheduled.

use std::path::Path;
use std::sync::Arc;

use crate::diag::{Diagnostic, Location};

/// A built-in stage, parsed and validated: everything the engine needs to key, plan and run it.
pub trait BuiltinStage: std::fmt::Debug + Send + Sync {
    /// The name used in `kind:`.
    fn kind_name(&self) -> &'static str;
    /// Paths the stage reads and writes because of its params (its spec file, data files).
    fn implied_io(&self) -> ImpliedIo;
    /// Seeds of the random draws the stage makes, as its params or spec declare them.
    fn seeds(&self) -> Vec<u64>;
    /// The canonical text of the kind and its parameters: enters the stage key and the lock.
    fn definition(&self) -> String;
    /// The fingerprint of the code that computes this kind's outputs (its crate, the workspace
    /// crates and third-party packages that crate depends on, the assets it embeds, the compiler):
    /// enters the stage key, so a repro whose kind code changed reruns the stage
    /// (docs/caching.md).
    fn fingerprint(&self) -> String;
    /// The stage spec files among its deps (`stages/*.yaml`): the lock records their fields so
    /// `repro status` can say which field changed (docs/caching.md). None by default.
    fn spec_files(&self) -> Vec<String> {
        Vec::new()
    }
    /// The columns of data files the stage writes, as its spec declares them (output path and
    /// column names), so stages reading them are checked before anything runs. None by default.
    fn output_columns(&self) -> Vec<(String, Vec<String>)> {
        Vec::new()
    }
    /// Checks the variables the stage reads against what is known of its data files' columns
    /// (`crate::columns`); every problem at once. Nothing by default.
    fn check_columns(&self, _ctx: &crate::columns::ColumnsCtx<'_>) -> Vec<Diagnostic> {
        Vec::new()
    }
    /// Computes the outputs. Errors are the stage's failure, as the user reads it.
    fn run(&self, ctx: &BuiltinCtx<'_>) -> Result<(), Diagnostic>;
}

/// The closed set of built-in kinds, as the binary assembles it.
pub trait KindRegistry: Sync {
    /// The names accepted in `kind:`.
    fn names(&self) -> &[&'static str];
    /// Parses and validates one stage's `params` for `kind`; unknown kinds are an error that lists
    /// the known ones.
    fn parse(
        &self,
        kind: &str,
        params: serde_json::Value,
        ctx: &ParseCtx<'_>,
    ) -> Result<Arc<dyn BuiltinStage>, KindError>;
}

/// A registry with no kinds: for command-only pipelines and the engine's own tests.
pub struct NoKinds;

impl KindRegistry for NoKinds {
    fn names(&self) -> &[&'static str] {
        &[]
    }

    fn parse(
        &self,
        kind: &str,
        _params: serde_json::Value,
        _ctx: &ParseCtx<'_>,
    ) -> Result<Arc<dyn BuiltinStage>, KindError> {
        Err(unknown_kind(kind, self.names()))
    }
}

/// The error for a `kind:` that is not in `names`.
pub fn unknown_kind(kind: &str, names: &[&str]) -> KindError {
    let known: Vec<String> = names.iter().map(|k| format!("`{k}`")).collect();
    KindError {
        message: format!("unknown built-in kind `{kind}`"),
        location: None,
        hint: Some(if known.is_empty() {
            "this version of repro has no built-in kinds; use `cmd:`".to_string()
        } else {
            format!("built-in kinds: {}", known.join(", "))
        }),
    }
}

/// A problem with a built-in stage's params or its stage spec, found when the pipeline loads.
#[derive(Debug)]
pub struct KindError {
    pub message: String,
    pub hint: Option<String>,
    /// Where in a stage spec file the problem is (errors in `params` point at the stage).
    pub location: Option<Location>,
}

/// What parsing a kind may look at: the project root, to read the stage spec files a kind names
/// (their content is also a dependency of the stage, so it enters the key).
pub struct ParseCtx<'a> {
    pub root: &'a Path,
    /// Where the pipeline file writes word `.1` in the value of param `.0` (the value's start
    /// when the word is not written in it), for kinds configured in `params` (`fit`); `None`
    /// when the param is absent.
    pub param_at: &'a dyn Fn(&str, &str) -> Option<Location>,
}

/// Paths a kind reads and writes because of its parameters (e.g. its data file).
#[derive(Debug, Default)]
pub struct ImpliedIo {
    pub deps: Vec<String>,
    pub outs: Vec<String>,
}

/// What a running built-in stage may use.
pub struct BuiltinCtx<'a> {
    pub root: &'a Path,
    pub stage: &'a str,
    /// Results of parts of the work kept between runs (`crate::memo`); the engine hands in its
    /// store's memo under `cache/memo/`.
    pub memo: &'a dyn crate::memo::Memo,
}
