//! Committing a finished stage's outputs: hashing them, then copying them into the cache with the
//! stage's record.
//!
//! The two halves run at different times. The hashes are taken on the stage's worker before the
//! stage counts as done, because the lock and every downstream key need them. The copy into the
//! cache (a full copy of each output, flushed to disk and read back to check it) runs on the same
//! worker afterwards, while downstream stages already run: on the 10M-record benchmark it was a
//! second between `ingest` and `locate`. The dispatcher writes the stage's lock entry only once
//! the copy is done, so a run killed in between leaves the stage unrecorded and the next run
//! builds it again; it never leaves a lock entry whose objects the cache lacks.
//!
//! Owns: which outputs a stage left, their hashes, and storing them. Does not own: where objects
//! live or how they are verified (`store`), or when stages run (`runner`).

use std::path::Path;

use crate::fsstate::{PathState, StatCache};
use crate::pipeline::Stage;
use crate::store::{Output, Store};
use repro_kind::diag::Diagnostic;

/// A stage's outputs, hashed, waiting to be stored.
pub(crate) struct Commit {
    /// The stage's key, under which the cache records its outputs.
    pub key: String,
    /// Each declared output and its state (never missing).
    pub states: Vec<(String, PathState)>,
}

impl Commit {
    /// The outputs as the lock records them.
    pub fn outputs(&self) -> Vec<Output> {
        self.states
            .iter()
            .filter_map(|(rel, state)| {
                let (hash, is_dir) = match state {
                    PathState::File { hash } => (hash, false),
                    PathState::Dir { hash, .. } => (hash, true),
                    PathState::Missing => return None,
                };
                Some(Output {
                    path: rel.clone(),
                    is_dir,
                    hash: hash.clone(),
                })
            })
            .collect()
    }
}

/// Hashes every declared output of a stage that has just run; an error names those it did not
/// create.
pub(crate) fn hash_outputs(
    root: &Path,
    stat: &StatCache,
    stage: &Stage,
    key: &str,
) -> Result<Commit, Diagnostic> {
    let mut states = Vec::new();
    let mut missing = Vec::new();
    for o in &stage.outs {
        let state = crate::fsstate::hash_path(root, o, stat).map_err(|e| {
            Diagnostic::new(format!("stage `{}`: cannot read output `{o}`", stage.name))
                .cause(e.to_string())
        })?;
        match state {
            PathState::Missing => missing.push(format!("`{o}`")),
            state => states.push((o.clone(), state)),
        }
    }
    if !missing.is_empty() {
        return Err(Diagnostic::new(format!("stage `{}` failed", stage.name))
            .cause(format!(
                "declared output {} was not created",
                missing.join(", ")
            ))
            .hint("make the command write every path listed in `outs`, or remove it from `outs`"));
    }
    Ok(Commit {
        key: key.to_string(),
        states,
    })
}

/// Copies the outputs into the cache (each checked against its hash as it is stored) and, when
/// the stage may be restored, records them under its key.
///
/// `cache: false` outputs are stored too: DVC's run cache commits uncached outputs
/// (`StageCache._uncached_outs`), so `dvc repro` restores a deleted one instead of rerunning.
pub(crate) fn store_outputs(store: &Store, stage: &Stage, c: &Commit) -> Result<(), Diagnostic> {
    let fail = |what: String, e: std::io::Error| {
        Diagnostic::new(format!("stage `{}`: {what}", stage.name))
            .cause(e.to_string())
            .hint("its outputs are in place but not in the cache; the next run builds it again")
    };
    for (rel, state) in &c.states {
        store
            .save_output(rel, state)
            .map_err(|e| fail(format!("cannot store output `{rel}` in the cache"), e))?;
    }
    if stage.run.restorable() {
        store
            .record_stage(&c.key, &c.outputs())
            .map_err(|e| fail("cannot record the stage in the cache".into(), e))?;
    }
    Ok(())
}
