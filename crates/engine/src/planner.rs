//! Deciding what is stale and why. Pure: no file system, no clock.
//!
//! Owns: comparing a stage's current key inputs and output hashes with its lock entry, producing
//! the reasons `repro status` shows (with old -> new values), and building the new lock entry.
//! Deliberately does not own: hashing files or running anything; callers hand in what they observed.

use std::collections::BTreeMap;
use std::fmt;

use crate::fields::{self, FieldChange};
use crate::key;
use crate::lock::{LockEntry, LockOut};
use crate::pipeline::Stage;

/// What the workspace holds for a stage now.
#[derive(Debug, Clone)]
pub struct Observed {
    pub key: String,
    /// Each declared dep with its content hash.
    pub deps: BTreeMap<String, String>,
    /// Each declared output with its hash, None when missing.
    pub outs: BTreeMap<String, Option<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    NeverRun,
    CmdChanged {
        old: String,
        new: String,
    },
    /// The kind's canonical definition changed; `changes` field by field when both are JSON.
    KindChanged {
        old: String,
        new: String,
        changes: Option<Vec<FieldChange>>,
    },
    ActionChanged,
    ParamChanged {
        name: String,
        old: String,
        new: String,
    },
    ParamAdded {
        name: String,
        new: String,
    },
    ParamRemoved {
        name: String,
        old: String,
    },
    DepChanged {
        path: String,
    },
    /// A built-in stage's spec file changed; its fields as recorded and as now.
    SpecChanged {
        path: String,
        changes: Vec<FieldChange>,
    },
    DepAdded {
        path: String,
    },
    DepMissing {
        path: String,
    },
    DepRemoved {
        path: String,
    },
    OutsChanged,
    SeedChanged {
        old: Option<u64>,
        new: Option<u64>,
    },
    KeyVersionChanged,
    EngineChanged,
    OutMissing {
        path: String,
    },
    OutModified {
        path: String,
    },
    UpstreamStale {
        stage: String,
    },
    /// `always_changed: true`, or a command with neither deps nor outputs (DVC's rule).
    AlwaysChanged,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NeverRun => write!(f, "never run"),
            Reason::CmdChanged { old, new } => write!(f, "command changed: `{old}` -> `{new}`"),
            Reason::KindChanged {
                changes: Some(c), ..
            } if !c.is_empty() => write!(f, "definition changed: {}", fields::show_changes(c)),
            Reason::KindChanged { old, new, .. } => write!(
                f,
                "definition changed: `{}` -> `{}`",
                fields::shorten(old),
                fields::shorten(new)
            ),
            Reason::ActionChanged => write!(f, "changed between a command and a built-in kind"),
            Reason::ParamChanged { name, old, new } => {
                write!(f, "param `{name}` changed: `{old}` -> `{new}`")
            }
            Reason::ParamAdded { name, new } => write!(f, "param `{name}` added: `{new}`"),
            Reason::ParamRemoved { name, old } => write!(f, "param `{name}` removed (was `{old}`)"),
            Reason::DepChanged { path } => write!(f, "dep `{path}` changed"),
            Reason::SpecChanged { path, changes } if changes.is_empty() => write!(
                f,
                "spec `{path}` changed: no field changed (comments or layout only)"
            ),
            Reason::SpecChanged { path, changes } => write!(
                f,
                "spec `{path}` changed: {}",
                fields::show_changes(changes)
            ),
            Reason::DepAdded { path } => write!(f, "dep `{path}` added"),
            Reason::DepMissing { path } => write!(f, "dep `{path}` missing"),
            Reason::DepRemoved { path } => write!(f, "dep `{path}` removed"),
            Reason::OutsChanged => write!(f, "declared outputs changed"),
            Reason::SeedChanged { old, new } => {
                let show = |s: &Option<u64>| s.map_or("none".to_string(), |v| v.to_string());
                write!(f, "seed changed: `{}` -> `{}`", show(old), show(new))
            }
            Reason::KeyVersionChanged => write!(f, "stage key format changed (new repro version)"),
            Reason::EngineChanged => {
                write!(
                    f,
                    "the code of its built-in kind changed (repro was built from different source)"
                )
            }
            Reason::OutMissing { path } => write!(f, "output `{path}` missing"),
            Reason::OutModified { path } => write!(f, "output `{path}` modified"),
            Reason::UpstreamStale { stage } => write!(f, "upstream stage `{stage}` is stale"),
            Reason::AlwaysChanged => write!(
                f,
                "always changed (`always_changed`, or no deps and no outputs)"
            ),
        }
    }
}

/// True when the recorded outputs are in place exactly as recorded.
pub fn outputs_intact(entry: &LockEntry, obs: &Observed) -> bool {
    obs.outs.len() == entry.outs.len()
        && obs.outs.iter().all(|(path, hash)| {
            entry
                .outs
                .get(path)
                .is_some_and(|o| hash.as_deref() == Some(o.hash.as_str()))
        })
}

/// Why the stage is stale; empty when it is up to date.
pub fn reasons(stage: &Stage, obs: &Observed, entry: Option<&LockEntry>) -> Vec<Reason> {
    // A frozen stage never runs, whatever changed (DVC).
    if stage.run.frozen {
        return Vec::new();
    }
    if stage.run.always_changed {
        return vec![Reason::AlwaysChanged];
    }
    let Some(entry) = entry else {
        return vec![Reason::NeverRun];
    };
    let mut why = Vec::new();
    if entry.key != obs.key {
        why.extend(definition_changes(stage, obs, entry));
        if why.is_empty() {
            why.push(Reason::KeyVersionChanged);
        }
        return why;
    }
    for (path, hash) in &obs.outs {
        match (hash, entry.outs.get(path)) {
            (None, _) => why.push(Reason::OutMissing { path: path.clone() }),
            (Some(h), Some(rec)) if *h != rec.hash => {
                why.push(Reason::OutModified { path: path.clone() })
            }
            (Some(_), None) => why.push(Reason::OutsChanged),
            _ => {}
        }
    }
    why
}

fn definition_changes(stage: &Stage, obs: &Observed, entry: &LockEntry) -> Vec<Reason> {
    let mut why = Vec::new();
    let (cmd, kind) = key::action_text(stage);
    match (&entry.cmd, &cmd, &entry.kind, &kind) {
        (Some(old), Some(new), _, _) if old != new => why.push(Reason::CmdChanged {
            old: old.clone(),
            new: new.clone(),
        }),
        // A built-in kind's definition repeats its params and its spec files' content; name it
        // only when no param or spec file explains it.
        (_, _, Some(old), Some(new))
            if old != new && params_equal(stage, entry) && !spec_changed(stage, obs, entry) =>
        {
            why.push(Reason::KindChanged {
                old: old.clone(),
                new: new.clone(),
                changes: fields::diff_json(old, new),
            })
        }
        (Some(_), None, _, _) | (None, Some(_), _, _) => why.push(Reason::ActionChanged),
        _ => {}
    }
    for (name, value) in &stage.params {
        let new = value.canonical();
        match entry.params.get(name) {
            None => why.push(Reason::ParamAdded {
                name: name.clone(),
                new,
            }),
            Some(old) if *old != new => why.push(Reason::ParamChanged {
                name: name.clone(),
                old: old.clone(),
                new,
            }),
            _ => {}
        }
    }
    for (name, old) in &entry.params {
        if !stage.params.contains_key(name) {
            why.push(Reason::ParamRemoved {
                name: name.clone(),
                old: old.clone(),
            });
        }
    }
    for (path, hash) in &obs.deps {
        match entry.deps.get(path) {
            None => why.push(Reason::DepAdded { path: path.clone() }),
            Some(old) if old != hash => why.push(dep_changed(stage, entry, path)),
            _ => {}
        }
    }
    for path in entry.deps.keys() {
        if !obs.deps.contains_key(path) {
            why.push(Reason::DepRemoved { path: path.clone() });
        }
    }
    let mut declared: Vec<&String> = stage.outs.iter().collect();
    declared.sort();
    let recorded: Vec<&String> = entry.outs.keys().collect();
    if declared != recorded {
        why.push(Reason::OutsChanged);
    }
    if entry.seed != stage.seed {
        why.push(Reason::SeedChanged {
            old: entry.seed,
            new: stage.seed,
        });
    }
    if let Some(code) = key::code_fingerprint(stage) {
        if entry.engine.as_deref() != Some(code.as_str()) {
            why.push(Reason::EngineChanged);
        }
    }
    why
}

/// Whether a spec file of the stage hashes differently from what the lock recorded.
fn spec_changed(stage: &Stage, obs: &Observed, entry: &LockEntry) -> bool {
    stage
        .spec_fields
        .keys()
        .any(|path| obs.deps.get(path) != entry.deps.get(path))
}

/// A changed dep: field by field when it is a spec file whose fields the lock recorded.
fn dep_changed(stage: &Stage, entry: &LockEntry, path: &str) -> Reason {
    match (entry.spec.get(path), stage.spec_fields.get(path)) {
        (Some(old), Some(new)) => Reason::SpecChanged {
            path: path.to_string(),
            changes: fields::diff(old, new),
        },
        _ => Reason::DepChanged {
            path: path.to_string(),
        },
    }
}

fn params_equal(stage: &Stage, entry: &LockEntry) -> bool {
    stage.params.len() == entry.params.len()
        && stage
            .params
            .iter()
            .all(|(k, v)| entry.params.get(k) == Some(&v.canonical()))
}

/// The lock entry for a stage that has just been built (or restored) with these outputs.
pub fn lock_entry(stage: &Stage, obs: &Observed, outs: BTreeMap<String, LockOut>) -> LockEntry {
    let (cmd, kind) = key::action_text(stage);
    LockEntry {
        key: obs.key.clone(),
        cmd,
        kind,
        params: stage
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.canonical()))
            .collect(),
        deps: obs.deps.clone(),
        outs,
        seed: stage.seed,
        engine: key::code_fingerprint(stage),
        spec: stage.spec_fields.clone(),
    }
}
