//! Looking at the workspace for one stage: the content hashes of its deps and outputs.
//!
//! Owns: the IO half of planning (the pure half is `planner`): hashing deps and outputs through
//! the stat cache and computing the stage key from them. Deliberately does not own: deciding.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;

use crate::fsstate::{self, PathState, Reading, StatCache};
use crate::key;
use crate::pipeline::Stage;
use crate::planner::Observed;

/// What one stage sees now. `missing_deps` lists deps that do not exist (their hash is absent
/// from `observed.deps`, so the key is not meaningful when any are missing).
pub struct StageView {
    pub observed: Observed,
    pub missing_deps: Vec<String>,
    pub out_states: BTreeMap<String, PathState>,
}

/// Hashes the stage's deps and outputs, reading every file the stat cache cannot vouch for.
pub fn observe(root: &Path, stage: &Stage, cache: &StatCache) -> io::Result<StageView> {
    observe_with(root, stage, cache, Reading::Content, None)
}

/// [`observe`] for a pass over many stages while nothing writes (status): each path is looked
/// at once, so a dep that is another stage's output reuses that stage's look (`looks` keeps
/// them, by path).
pub fn observe_once(
    root: &Path,
    stage: &Stage,
    cache: &StatCache,
    looks: &mut HashMap<String, PathState>,
) -> io::Result<StageView> {
    observe_with(root, stage, cache, Reading::Content, Some(looks))
}

/// The same look with stats only: `None` when some file would have to be read. The dispatcher
/// uses it, so that hashing changed files happens on worker threads.
pub fn observe_known(root: &Path, stage: &Stage, cache: &StatCache) -> Option<StageView> {
    observe_with(root, stage, cache, Reading::StatOnly, None).ok()
}

fn observe_with(
    root: &Path,
    stage: &Stage,
    cache: &StatCache,
    reading: Reading,
    mut looks: Option<&mut HashMap<String, PathState>>,
) -> io::Result<StageView> {
    let mut look = |rel: &str| -> io::Result<PathState> {
        let Some(looks) = looks.as_deref_mut() else {
            return fsstate::look(root, rel, cache, reading);
        };
        if let Some(state) = looks.get(rel) {
            return Ok(state.clone());
        }
        let state = fsstate::look(root, rel, cache, reading)?;
        looks.insert(rel.to_string(), state.clone());
        Ok(state)
    };
    let mut deps = BTreeMap::new();
    let mut missing_deps = Vec::new();
    for d in &stage.deps {
        match look(d)? {
            PathState::Missing => missing_deps.push(d.clone()),
            state => {
                deps.insert(d.clone(), state.hash().unwrap_or_default().to_string());
            }
        }
    }
    let mut outs = BTreeMap::new();
    let mut out_states = BTreeMap::new();
    for o in &stage.outs {
        let state = look(o)?;
        outs.insert(o.clone(), state.hash().map(str::to_string));
        out_states.insert(o.clone(), state);
    }
    let key = key::stage_key(stage, &deps);
    Ok(StageView {
        observed: Observed { key, deps, outs },
        missing_deps,
        out_states,
    })
}
