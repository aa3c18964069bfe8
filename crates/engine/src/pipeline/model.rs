//! The pipeline model: what a validated `pipeline.yaml` holds.
//!
//! Owns: [`Pipeline`], [`Stage`], [`Action`], [`Source`], [`Exhibit`] and the questions asked of
//! them (which stages a selection needs, who produces a path, where the lock lives). Deliberately
//! does not own: reading or validating the file (`parse`), or the dependency graph's construction
//! (`graph`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use repro_kind::diag::{Diagnostic, Failure};
use repro_kind::paths::path_within;
use repro_kind::BuiltinStage;

use super::param_refs::ParamRef;
use crate::params::Param;
use crate::yaml::Pos;

pub use super::dvc::{OutOpts, RunOpts};

/// The default params file, as in DVC.
pub const DEFAULT_PARAMS_FILE: &str = "params.yaml";

#[derive(Debug)]
pub struct Pipeline {
    /// The pipeline file as the user named it (for messages).
    pub file: PathBuf,
    /// The folder every stage path is relative to: the pipeline file's folder.
    pub root: PathBuf,
    /// Stages in a dependency order: every stage comes after the stages it depends on.
    pub stages: Vec<Stage>,
    /// `report: PATH`: where `repro run` rewrites the HTML report after a run in which a stage
    /// ran (absent: no automatic report).
    pub report: Option<String>,
    /// Data sources (`sources:`), in file order. Metadata for packages and lint; not in any key.
    pub sources: Vec<Source>,
    /// Which output is which exhibit (`exhibits:`), in file order. Not in any key.
    pub exhibits: Vec<Exhibit>,
    /// The params files the stages read (relative paths, sorted).
    pub params_files: Vec<String>,
    /// The top-level `executor:`, for stages that name none (`cluster`). Not in any key.
    pub executor: Option<ExecutorKind>,
    /// `title:` of the paper the pipeline reproduces. Metadata for packages; not in any key.
    pub title: Option<String>,
    /// `authors:` of that paper, in file order. Metadata for packages; not in any key.
    pub authors: Vec<String>,
    /// `license:` of the pipeline's own code (specs, scripts). Metadata for packages.
    pub license: Option<String>,
    /// `remote:`: the shared cache, if any. Not in any key.
    pub remote: Option<super::RemoteSpec>,
}

/// A data source: where its files come from and whether the package may include them.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    /// Files or folders of the source (normalised relative paths).
    pub files: Vec<String>,
    pub citation: Option<String>,
    pub license: Option<String>,
    /// How a replicator obtains the data.
    pub access: Option<String>,
    /// Whether the data are in the package (default true).
    pub provided: bool,
    /// The data availability statement (required in spirit when not provided; `repro lint`).
    pub statement: Option<String>,
    pub pos: Pos,
}

/// One output that is a table or figure of the paper.
#[derive(Debug, Clone)]
pub struct Exhibit {
    /// An output path (or a file inside a folder output).
    pub output: String,
    /// The label in the paper: `Table 2`, `Figure 1`.
    pub label: String,
}

#[derive(Debug, Clone)]
pub enum Action {
    Cmd(String),
    Builtin(Arc<dyn BuiltinStage>),
}

#[derive(Debug, Clone)]
pub struct Stage {
    pub name: String,
    pub action: Action,
    /// Normalised relative paths, in declared order (built-in kinds add theirs first).
    pub deps: Vec<String>,
    pub outs: Vec<String>,
    /// Resolved parameter values by name (dotted names for keys of a params file).
    pub params: BTreeMap<String, Param>,
    /// Where params named from files came from: read again before the stage runs when
    /// `params_from_outputs`, since a stage of the run may rewrite such a file.
    pub param_refs: Vec<ParamRef>,
    /// A params file this stage names is another stage's output (`graph` links the two).
    pub params_from_outputs: bool,
    pub desc: Option<String>,
    /// The seed a command stage declares (`seed:`); it enters the key and the command sees it
    /// as `${seed}` and `REPRO_SEED`. Built-in kinds declare theirs in their params.
    pub seed: Option<u64>,
    /// DVC's run options (`frozen`, `always_changed`, `wdir`, each output's `cache`/`persist`/
    /// `push`, the command's lines, the template a stage was generated from): see `dvc.rs`.
    pub run: RunOpts,
    /// Indices (into `Pipeline::stages`) of the stages that produce this stage's deps.
    pub upstream: Vec<usize>,
    pub pos: Pos,
    /// The stage's own `executor:`, and its `resources:` over the top-level ones (`cluster`).
    /// Neither enters the key: outputs are the same bytes wherever the stage runs.
    pub executor: Option<ExecutorKind>,
    pub resources: Resources,
    /// A built-in stage's spec files, field by field as the pipeline was loaded
    /// (`fields::read_spec`): recorded in the lock, compared by `repro status`. Not in the key.
    pub spec_fields: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

impl Stage {
    /// Every seed the stage's random draws use: its `seed:` (command stages) or the seeds its
    /// built-in kind declares in its params or spec.
    pub fn seeds(&self) -> Vec<u64> {
        match &self.action {
            Action::Cmd(_) => self.seed.into_iter().collect(),
            Action::Builtin(b) => b.seeds(),
        }
    }
}

impl Pipeline {
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name == name)
    }

    /// The lock file beside the pipeline file: `pipeline.yaml` -> `repro.lock`, `x.yaml` ->
    /// `x.lock`, and `dvc.yaml` -> `dvc.repro.lock`, so that DVC's `dvc.lock` stays DVC's.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join(lock_name(&self.file))
    }

    /// The stages named and everything they need, in dependency order. Unknown names are an error.
    pub fn select(&self, names: &[String]) -> Result<Vec<usize>, Failure> {
        if names.is_empty() {
            return Ok((0..self.stages.len()).collect());
        }
        let mut wanted = vec![false; self.stages.len()];
        let mut diags = Vec::new();
        for name in names {
            match self.index_of(name) {
                Some(i) => mark_upstream(self, i, &mut wanted),
                None => diags.push(
                    Diagnostic::new(format!("no stage named `{name}`"))
                        .hint(format!("stages: {}", self.stage_list())),
                ),
            }
        }
        if !diags.is_empty() {
            return Err(Failure::usage_many(diags));
        }
        Ok((0..self.stages.len()).filter(|&i| wanted[i]).collect())
    }

    /// The stage whose outputs hold `path` (an output or a file inside a folder output).
    pub fn producer_of(&self, path: &str) -> Option<usize> {
        self.stages
            .iter()
            .position(|s| s.outs.iter().any(|o| path_within(path, o)))
    }

    /// Deps that no stage produces: the files a rebuild starts from (data, scripts, specs), sorted.
    pub fn source_deps(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .stages
            .iter()
            .flat_map(|s| s.deps.iter())
            .filter(|d| {
                !self.stages.iter().any(|s| {
                    s.outs
                        .iter()
                        .any(|o| path_within(d, o) || path_within(o, d))
                })
            })
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        out
    }

    fn stage_list(&self) -> String {
        let names: Vec<String> = self
            .stages
            .iter()
            .map(|s| format!("`{}`", s.name))
            .collect();
        names.join(", ")
    }
}

fn mark_upstream(p: &Pipeline, i: usize, wanted: &mut [bool]) {
    if wanted[i] {
        return;
    }
    wanted[i] = true;
    for &u in &p.stages[i].upstream {
        mark_upstream(p, u, wanted);
    }
}

/// The name of the lock file of pipeline file `file` (see [`Pipeline::lock_path`]).
pub fn lock_name(file: &std::path::Path) -> String {
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("pipeline");
    match stem {
        "pipeline" => "repro.lock".to_string(),
        "dvc" => "dvc.repro.lock".to_string(),
        _ => format!("{stem}.lock"),
    }
}

/// Where a stage's work runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutorKind {
    /// On this machine (commands by `sh -c`, built-in kinds inside the `repro` process).
    #[default]
    Local,
    /// As one `sbatch` job per stage.
    Slurm,
}

impl ExecutorKind {
    pub const NAMES: &'static [&'static str] = &["local", "slurm"];

    pub fn parse(name: &str) -> Option<ExecutorKind> {
        match name {
            "local" => Some(ExecutorKind::Local),
            "slurm" => Some(ExecutorKind::Slurm),
            _ => None,
        }
    }
}

/// What a stage asks of the cluster (`resources:`); only the Slurm executor reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPUs for the job's one task (`--cpus-per-task`).
    pub cpus: Option<u32>,
    /// Memory per node as Slurm writes it: a number with an optional K, M, G or T (`--mem`).
    pub memory: Option<String>,
    /// Wall-time limit in one of Slurm's formats (`--time`).
    pub time: Option<String>,
    /// `--partition` (a partition or a comma-separated list).
    pub partition: Option<String>,
    /// Further `sbatch` options, passed as they are, after the ones above.
    pub sbatch: Vec<String>,
}

impl Resources {
    /// `self` over `defaults`: each field the stage sets wins; extra options are appended.
    pub fn over(&self, defaults: &Resources) -> Resources {
        Resources {
            cpus: self.cpus.or(defaults.cpus),
            memory: self.memory.clone().or_else(|| defaults.memory.clone()),
            time: self.time.clone().or_else(|| defaults.time.clone()),
            partition: self
                .partition
                .clone()
                .or_else(|| defaults.partition.clone()),
            sbatch: defaults
                .sbatch
                .iter()
                .chain(&self.sbatch)
                .cloned()
                .collect(),
        }
    }
}
