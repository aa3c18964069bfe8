//! `repro status`, `repro run --dry-run`, `repro dag` and `repro gc`: commands that look at the
//! pipeline and the workspace without running anything.
//!
//! Owns: per-stage staleness with reasons (for people and as JSON), the graph in text, dot and
//! mermaid, and which cache objects the lock still needs. Deliberately does not own: the
//! comparison rules (`planner`) or the store's layout (`store`).

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use serde::Serialize;

use crate::fields::FieldChange;
use crate::fsstate::StatCache;
use crate::lock::{self, LockFile};
use crate::lockset;
use crate::observe::observe_once;
use crate::pipeline::Pipeline;
use crate::planner::{self, Reason};
use crate::store::{LockOutcome, Output, Store};
use repro_kind::diag::{Diagnostic, Failure};

#[derive(Debug, Serialize)]
pub struct StageStatus {
    pub name: String,
    pub stale: bool,
    pub reasons: Vec<String>,
    /// True when the stage's outputs for its current key are in the cache (restorable).
    #[serde(skip)]
    pub cached: bool,
    /// The `foreach`/`matrix` stage it was generated from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The fields behind the reasons, one by one: of a spec file (`in` is its path) or of the
    /// kind's definition (`in` is `definition`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
}

/// One changed field, as `repro status --json` lists it.
#[derive(Debug, Serialize)]
pub struct Change {
    #[serde(rename = "in")]
    pub within: String,
    #[serde(flatten)]
    pub field: FieldChange,
}

fn changes_of(reasons: &[Reason]) -> Vec<Change> {
    let mut out = Vec::new();
    for r in reasons {
        let (within, changes) = match r {
            Reason::SpecChanged { path, changes } => (path.clone(), changes),
            Reason::KindChanged {
                changes: Some(c), ..
            } => ("definition".to_string(), c),
            _ => continue,
        };
        out.extend(changes.iter().map(|c| Change {
            within: within.clone(),
            field: c.clone(),
        }));
    }
    out
}

/// Stages in runs of one template: each generated stage listed under the `foreach`/`matrix`
/// stage it came from, at the place of its first member; other stages alone.
fn blocks(groups: &[Option<&str>]) -> Vec<(Option<String>, Vec<usize>)> {
    let mut out: Vec<(Option<String>, Vec<usize>)> = Vec::new();
    // Where each template's block is in `out`: a scan of `out` per stage would be quadratic.
    let mut block_of: HashMap<&str, usize> = HashMap::new();
    for (i, g) in groups.iter().enumerate() {
        match g {
            Some(g) => match block_of.get(g) {
                Some(&b) => out[b].1.push(i),
                None => {
                    block_of.insert(g, out.len());
                    out.push((Some(g.to_string()), vec![i]));
                }
            },
            None => out.push((None, vec![i])),
        }
    }
    out
}

/// Staleness of the selected stages, in dependency order.
pub fn compute(p: &Pipeline, selected: &[usize]) -> Result<Vec<StageStatus>, Failure> {
    let store = Store::new(&p.root);
    let lockfile = lock::read(&p.lock_path())?;
    let stat = store.load_stat_cache();
    let statuses = compute_with(p, selected, &lockfile, &store, &stat)?;
    // Persist what we learnt about file hashes only if no run is writing right now.
    if p.root.join("cache").exists() {
        if let Ok(LockOutcome::Acquired(_g)) = store.lock_project(false) {
            let _ = store.save_stat_cache(&stat);
        }
    }
    Ok(statuses)
}

fn compute_with(
    p: &Pipeline,
    selected: &[usize],
    lockfile: &LockFile,
    store: &Store,
    stat: &StatCache,
) -> Result<Vec<StageStatus>, Failure> {
    let mut stale = vec![false; p.stages.len()];
    let mut out = Vec::with_capacity(selected.len());
    let mut looks = HashMap::new();
    for &i in selected {
        let s = &p.stages[i];
        let view = observe_once(&p.root, s, stat, &mut looks).map_err(|e| {
            Failure::stage(
                Diagnostic::new(format!("cannot read the files of stage `{}`", s.name))
                    .cause(e.to_string()),
            )
        })?;
        let mut reasons: Vec<Reason> = Vec::new();
        for &u in &s.upstream {
            if stale[u] {
                reasons.push(Reason::UpstreamStale {
                    stage: p.stages[u].name.clone(),
                });
            }
        }
        let upstream_stale = !reasons.is_empty();
        let entry = lockfile.stages.get(&s.name);
        if view.missing_deps.is_empty() {
            reasons.extend(planner::reasons(s, &view.observed, entry));
        } else {
            // Without every dep there is no meaningful key; say what is known.
            if !upstream_stale {
                for d in &view.missing_deps {
                    reasons.push(Reason::DepMissing { path: d.clone() });
                }
            }
            if entry.is_none() {
                reasons.push(Reason::NeverRun);
            }
        }
        // Whether a stale stage could be restored; an up-to-date one needs no look at the store
        // (that look is a file read per stage, a tenth of a no-op status).
        let cached = !reasons.is_empty()
            && !upstream_stale
            && store
                .stage_record(&view.observed.key, &s.outs)
                .is_some_and(|outs| store.outputs_available(&outs));
        stale[i] = !reasons.is_empty();
        out.push(StageStatus {
            name: s.name.clone(),
            stale: stale[i],
            reasons: reasons.iter().map(ToString::to_string).collect(),
            cached: cached && s.run.restorable(),
            template: s.run.group.clone(),
            changes: changes_of(&reasons),
        });
    }
    Ok(out)
}

/// The human-readable status report: stale stages with their reasons, then a summary line.
pub fn render_status(statuses: &[StageStatus], verbose: bool) -> String {
    let mut out = String::new();
    let stale = statuses.iter().filter(|s| s.stale).count();
    let groups: Vec<Option<&str>> = statuses.iter().map(|s| s.template.as_deref()).collect();
    // With nothing to list (the usual no-op), no blocks are formed: one vector per stage, about
    // 4% of a no-op status.
    let listed = if stale > 0 || verbose {
        blocks(&groups)
    } else {
        Vec::new()
    };
    for (template, members) in listed {
        let shown: Vec<&StageStatus> = members
            .iter()
            .map(|&i| &statuses[i])
            .filter(|s| s.stale || verbose)
            .collect();
        let indent = match &template {
            Some(t) if !shown.is_empty() => {
                let n = members.iter().filter(|&&i| statuses[i].stale).count();
                let _ = writeln!(
                    out,
                    "{t} ({n} of {} generated stages stale):",
                    members.len()
                );
                "  "
            }
            _ => "",
        };
        for s in shown {
            if !s.stale {
                let _ = writeln!(out, "{indent}{}: up to date", s.name);
                continue;
            }
            let _ = writeln!(out, "{indent}{}: stale", s.name);
            for r in &s.reasons {
                let _ = writeln!(out, "{indent}  - {r}");
            }
        }
    }
    if stale == 0 {
        let _ = writeln!(out, "all {} stages are up to date", statuses.len());
    } else {
        let _ = writeln!(out, "{stale} of {} stages are stale", statuses.len());
    }
    out
}

pub fn render_json(statuses: &[StageStatus]) -> String {
    #[derive(Serialize)]
    struct Doc<'a> {
        stages: &'a [StageStatus],
    }
    serde_json::to_string_pretty(&Doc { stages: statuses }).unwrap_or_default() + "\n"
}

/// What `repro run --dry-run` prints: the stages that would run or be restored, and why.
pub fn render_dry_run(statuses: &[StageStatus], force: bool) -> String {
    let mut out = String::new();
    let mut n = 0;
    for s in statuses {
        if force {
            n += 1;
            let _ = writeln!(out, "would run `{}` (forced)", s.name);
            continue;
        }
        if !s.stale {
            continue;
        }
        n += 1;
        let verb = if s.cached { "restore" } else { "run" };
        let _ = writeln!(out, "would {verb} `{}`: {}", s.name, s.reasons.join("; "));
    }
    if n == 0 {
        let _ = writeln!(
            out,
            "nothing to do: all {} stages are up to date",
            statuses.len()
        );
    }
    out
}

/// How `render_dag` draws the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DagFormat {
    Text,
    Dot,
    Mermaid,
}

/// The stage graph. Text: one stage per line in dependency order, with the stages it needs.
pub fn render_dag(p: &Pipeline, format: DagFormat) -> String {
    let mut out = String::new();
    match format {
        DagFormat::Text => {
            let groups: Vec<Option<&str>> =
                p.stages.iter().map(|s| s.run.group.as_deref()).collect();
            for (template, members) in blocks(&groups) {
                let indent = match &template {
                    Some(t) => {
                        let _ = writeln!(out, "{t} ({} generated stages):", members.len());
                        "  "
                    }
                    None => "",
                };
                for i in members {
                    let s = &p.stages[i];
                    if s.upstream.is_empty() {
                        let _ = writeln!(out, "{indent}{}", s.name);
                    } else {
                        let ups: Vec<&str> = s
                            .upstream
                            .iter()
                            .map(|&u| p.stages[u].name.as_str())
                            .collect();
                        let _ = writeln!(out, "{indent}{} <- {}", s.name, ups.join(", "));
                    }
                }
            }
        }
        DagFormat::Dot => {
            out.push_str("digraph pipeline {\n  rankdir=LR;\n");
            let groups: Vec<Option<&str>> =
                p.stages.iter().map(|s| s.run.group.as_deref()).collect();
            for (n, (template, members)) in blocks(&groups).into_iter().enumerate() {
                if let Some(t) = template {
                    let names: Vec<String> = members
                        .iter()
                        .map(|&i| format!("\"{}\"", dot_escape(&p.stages[i].name)))
                        .collect();
                    let _ = writeln!(
                        out,
                        "  subgraph cluster_{n} {{ label=\"{}\"; {}; }}",
                        dot_escape(&t),
                        names.join("; ")
                    );
                }
            }
            for s in &p.stages {
                match &s.desc {
                    Some(d) => {
                        let _ = writeln!(
                            out,
                            "  \"{}\" [tooltip=\"{}\"];",
                            dot_escape(&s.name),
                            dot_escape(d)
                        );
                    }
                    None => {
                        let _ = writeln!(out, "  \"{}\";", dot_escape(&s.name));
                    }
                }
            }
            for s in &p.stages {
                for &u in &s.upstream {
                    let _ = writeln!(
                        out,
                        "  \"{}\" -> \"{}\";",
                        dot_escape(&p.stages[u].name),
                        dot_escape(&s.name)
                    );
                }
            }
            out.push_str("}\n");
        }
        DagFormat::Mermaid => {
            out.push_str("flowchart LR\n");
            for (i, s) in p.stages.iter().enumerate() {
                let _ = writeln!(out, "  s{i}[\"{}\"]", s.name.replace('"', "#quot;"));
            }
            for (i, s) in p.stages.iter().enumerate() {
                for &u in &s.upstream {
                    let _ = writeln!(out, "  s{u} --> s{i}");
                }
            }
        }
    }
    out
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `repro gc`: removes cache objects and stage records that no lock entry refers to.
pub fn gc(p: &Pipeline, dry_run: bool) -> Result<String, Failure> {
    let store = Store::new(&p.root);
    if !p.root.join("cache").exists() {
        return Ok("the cache is empty\n".to_string());
    }
    let _guard = match store
        .lock_project(false)
        .map_err(|e| Failure::io("cannot take the project lock", &e))?
    {
        LockOutcome::Acquired(g) => g,
        LockOutcome::Busy => {
            return Err(Failure::stage(
                Diagnostic::new("another repro process is running in this project")
                    .hint("run `repro gc` when it has finished"),
            ))
        }
    };
    let set = lockset::find(&p.root, &p.lock_path())?;
    let mut keep = Vec::new();
    let mut keys = BTreeSet::new();
    for entry in set.locks.iter().flat_map(|(_, l)| l.stages.values()) {
        keys.insert(entry.key.clone());
        for (path, o) in &entry.outs {
            keep.push(Output {
                path: path.clone(),
                is_dir: o.dir,
                hash: o.hash.clone(),
            });
        }
    }
    let report = store
        .gc(&keep, &keys, dry_run)
        .map_err(|e| Failure::io("cannot clean the cache", &e))?;
    if !dry_run {
        lockset::forget(&p.root, &set.gone)
            .map_err(|e| Failure::io(format!("cannot write `{}`", lockset::REGISTER), &e))?;
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    let mut out = format!(
        "{verb} {} objects ({}) and {} stage records\n",
        report.objects,
        human_bytes(report.bytes),
        report.records
    );
    let names: Vec<String> = set.locks.iter().map(|(n, _)| format!("`{n}`")).collect();
    if !names.is_empty() {
        let _ = writeln!(
            out,
            "kept the objects these locks refer to: {}",
            names.join(", ")
        );
    }
    for g in &set.gone {
        let _ = writeln!(out, "`{g}` no longer exists: its objects were not kept");
    }
    Ok(out)
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
