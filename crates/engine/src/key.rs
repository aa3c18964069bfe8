//! The stage key: one blake3 hash over everything that decides a stage's outputs.
//!
//! Owns: the list of key inputs and their unambiguous encoding. docs/caching.md lists the same
//! inputs in prose; change both together and bump [`KEY_VERSION`] whenever the list or the encoding
//! changes, so that old cache entries are never mistaken for new ones. Deliberately does not own:
//! hashing files (`fsstate`) or comparing with the lock (`planner`). No absolute path, user name,
//! host name or time may ever enter a key.

use std::collections::BTreeMap;

use crate::params::Param;
use crate::pipeline::{Action, Stage};

/// Version of the key's inputs and encoding (docs/caching.md).
pub const KEY_VERSION: u32 = 3;

/// The code fingerprint of a built-in stage's kind (`BuiltinStage::fingerprint`); `None` for a
/// command stage. It enters the key and the lock (`engine`).
pub fn code_fingerprint(stage: &Stage) -> Option<String> {
    match &stage.action {
        Action::Builtin(b) => Some(b.fingerprint()),
        Action::Cmd(_) => None,
    }
}

/// What the stage does, as text: the command template, or the built-in kind with its canonical
/// definition. Also stored in the lock so `repro status` can say what changed.
pub fn action_text(stage: &Stage) -> (Option<String>, Option<String>) {
    match &stage.action {
        Action::Cmd(cmd) => (Some(cmd.clone()), None),
        Action::Builtin(b) => (None, Some(b.definition())),
    }
}

/// Computes the key from the stage definition and the content hashes of its deps
/// (`dep_hashes` maps each declared dep path to its hash).
pub fn stage_key(stage: &Stage, dep_hashes: &BTreeMap<String, String>) -> String {
    let mut h = blake3::Hasher::new();
    // 1. the key version
    field(&mut h, b"repro-stage-key");
    field(&mut h, &KEY_VERSION.to_le_bytes());
    // 2. what the stage does: the command template or the kind and its typed definition
    let (cmd, kind) = action_text(stage);
    match (cmd, kind) {
        (Some(c), _) => {
            field(&mut h, b"cmd");
            field(&mut h, c.as_bytes());
        }
        (None, Some(k)) => {
            field(&mut h, b"kind");
            field(&mut h, k.as_bytes());
            field(&mut h, b"code");
            field(
                &mut h,
                code_fingerprint(stage).unwrap_or_default().as_bytes(),
            );
        }
        (None, None) => field(&mut h, b"none"),
    }
    // 3. params, by name, canonical values
    params_field(&mut h, &stage.params);
    // 4. deps: declared path and content hash, sorted by path
    field(&mut h, &(dep_hashes.len() as u64).to_le_bytes());
    for (path, hash) in dep_hashes {
        field(&mut h, path.as_bytes());
        field(&mut h, hash.as_bytes());
    }
    // 5. declared outputs, sorted
    let mut outs: Vec<&str> = stage.outs.iter().map(String::as_str).collect();
    outs.sort_unstable();
    field(&mut h, &(outs.len() as u64).to_le_bytes());
    for o in outs {
        field(&mut h, o.as_bytes());
    }
    // 6. the declared seed of a command stage, only when there is one: keys of stages without a
    // seed are the same as before seeds existed, so no `KEY_VERSION` bump was needed.
    if let Some(seed) = stage.seed {
        field(&mut h, b"seed");
        field(&mut h, &seed.to_le_bytes());
    }
    // 7. the folder a command runs in, only when it is not the project root (same reason).
    if !stage.run.wdir.is_empty() {
        field(&mut h, b"wdir");
        field(&mut h, stage.run.wdir.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

fn params_field(h: &mut blake3::Hasher, params: &BTreeMap<String, Param>) {
    field(h, &(params.len() as u64).to_le_bytes());
    for (name, value) in params {
        field(h, name.as_bytes());
        field(h, value.canonical().as_bytes());
    }
}

/// Length-prefixed, so no two different input lists encode to the same bytes.
fn field(h: &mut blake3::Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}
