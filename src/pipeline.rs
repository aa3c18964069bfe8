//! The validated pipeline: stages with resolved params, normalised paths and the dependency graph.
//!
//! Owns: turning `pipeline.yaml` (and the params files it names) into a [`Pipeline`] whose stages
//! are in a dependency order, collecting every problem into one report: YAML syntax, unknown keys,
//! bad paths, duplicate outputs, cycles, unknown built-in kinds and their parameter errors.
//! Deliberately does not own: whether files exist or what they hash to (`fsstate`), or what is stale
//! (`planner`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Failure, Location};
use crate::kinds::Builtin;
use crate::params::Param;
use crate::yaml::{self, Key, Node, Pos, Value};

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
    Builtin(Box<Builtin>),
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
    pub desc: Option<String>,
    /// The seed a command stage declares (`seed:`); it enters the key and the command sees it
    /// as `${seed}` and `REPRO_SEED`. Built-in kinds declare theirs in their params.
    pub seed: Option<u64>,
    /// Indices (into `Pipeline::stages`) of the stages that produce this stage's deps.
    pub upstream: Vec<usize>,
    pub pos: Pos,
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

    /// The lock file beside the pipeline file: `pipeline.yaml` -> `repro.lock`, `x.yaml` -> `x.lock`.
    pub fn lock_path(&self) -> PathBuf {
        let stem = self
            .file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("pipeline");
        let name = if stem == "pipeline" {
            "repro.lock".to_string()
        } else {
            format!("{stem}.lock")
        };
        self.root.join(name)
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

/// Reads and validates a pipeline file. Every problem found is reported at once.
pub fn load(file: &Path) -> Result<Pipeline, Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        let d = Diagnostic::new(format!("cannot read pipeline file `{}`", file.display()))
            .cause(e.to_string());
        let d = if e.kind() == std::io::ErrorKind::NotFound {
            d.hint("run repro in the folder that holds `pipeline.yaml`, or pass `-f FILE`")
        } else {
            d
        };
        Failure::usage(d)
    })?;
    let root = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    parse_pipeline(file, &root, &text)
}

/// Validates pipeline text; `root` is where params files and stage paths are resolved.
pub fn parse_pipeline(file: &Path, root: &Path, text: &str) -> Result<Pipeline, Failure> {
    let mut cx = Cx {
        file: file.to_path_buf(),
        root: root.to_path_buf(),
        diags: Vec::new(),
        params_files: HashMap::new(),
    };
    let doc = match yaml::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let d = Diagnostic::new(format!("invalid yaml in `{}`", file.display()))
                .at(e.pos.map(|p| cx.loc(p)))
                .cause(e.message);
            return Err(Failure::usage(d));
        }
    };
    let report = cx.report(&doc);
    let stages = cx.stages(&doc);
    let mut stages = stages;
    link(&mut cx, &mut stages);
    let sources = cx.sources(&doc);
    let exhibits = cx.exhibits(&doc, &stages);
    let order = if cx.diags.is_empty() {
        topo_order(&mut cx, &stages)
    } else {
        Vec::new()
    };
    if !cx.diags.is_empty() {
        return Err(Failure::usage_many(cx.diags));
    }
    let mut params_files: Vec<String> = cx
        .params_files
        .iter()
        .filter(|(_, parsed)| parsed.is_some())
        .filter_map(|(name, _)| normalize_path(name).ok())
        .collect();
    params_files.sort();
    params_files.dedup();
    Ok(Pipeline {
        file: file.to_path_buf(),
        root: root.to_path_buf(),
        stages: reorder(stages, &order),
        sources,
        exhibits,
        params_files,
        report,
    })
}

struct Cx {
    file: PathBuf,
    root: PathBuf,
    diags: Vec<Diagnostic>,
    params_files: HashMap<String, Option<Param>>,
}

const TOP_KEYS: &[&str] = &["stages", "sources", "exhibits", "report"];
const STAGE_KEYS: &[&str] = &[
    "cmd", "kind", "deps", "outs", "params", "desc", "meta", "seed",
];
const SOURCE_KEYS: &[&str] = &[
    "files",
    "citation",
    "license",
    "access",
    "provided",
    "statement",
];

impl Cx {
    fn loc(&self, pos: Pos) -> Location {
        Location {
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
        }
    }

    fn error(&mut self, pos: Pos, message: String) -> &mut Diagnostic {
        let d = Diagnostic::new(message).at(Some(self.loc(pos)));
        self.diags.push(d);
        self.diags.last_mut().expect("just pushed")
    }

    fn unknown_key(&mut self, key: &Key, context: &str, allowed: &[&str]) {
        let list: Vec<String> = allowed.iter().map(|k| format!("`{k}`")).collect();
        let suggestion = closest(&key.name, allowed);
        let d = self
            .error(key.pos, format!("unknown key `{}` {context}", key.name))
            .clone()
            .cause(format!("expected one of {}", list.join(", ")));
        let d = match suggestion {
            Some(s) => d.hint(format!("did you mean `{s}`?")),
            None => d,
        };
        *self.diags.last_mut().expect("just pushed") = d;
    }

    /// The optional top-level `report: PATH` (a relative path inside the project).
    fn report(&mut self, doc: &Node) -> Option<String> {
        let Value::Map(entries) = &doc.value else {
            return None;
        };
        let (_, node) = entries.iter().find(|(k, _)| k.name == "report")?;
        let Value::Str(raw) = &node.value else {
            self.error(
                node.pos,
                format!("`report` must be a path, found {}", node.value.type_name()),
            );
            return None;
        };
        match normalize_path(raw) {
            Ok(p) => Some(p),
            Err(why) => {
                self.error(node.pos, format!("invalid `report` path `{raw}`: {why}"));
                None
            }
        }
    }

    fn stages(&mut self, doc: &Node) -> Vec<Stage> {
        let entries = match &doc.value {
            Value::Map(entries) => entries,
            Value::Null => {
                self.error(doc.pos, "the pipeline file is empty".into())
                    .hint = Some("declare `stages:` with at least one stage".into());
                return Vec::new();
            }
            other => {
                self.error(
                    doc.pos,
                    format!(
                        "the pipeline must be a mapping, found {}",
                        other.type_name()
                    ),
                );
                return Vec::new();
            }
        };
        let mut stages_node = None;
        for (k, v) in entries {
            if k.name == "stages" {
                stages_node = Some(v);
            } else if !TOP_KEYS.contains(&k.name.as_str()) {
                self.unknown_key(k, "at the top level", TOP_KEYS);
            }
        }
        let Some(stages_node) = stages_node else {
            self.error(doc.pos, "the pipeline has no `stages:`".into());
            return Vec::new();
        };
        let Value::Map(stage_entries) = &stages_node.value else {
            self.error(
                stages_node.pos,
                format!(
                    "`stages` must be a mapping from stage name to stage, found {}",
                    stages_node.value.type_name()
                ),
            );
            return Vec::new();
        };
        stage_entries
            .iter()
            .filter_map(|(k, v)| self.stage(k, v))
            .collect()
    }

    fn stage(&mut self, key: &Key, node: &Node) -> Option<Stage> {
        let name = key.name.clone();
        if name.is_empty()
            || name
                .chars()
                .any(|c| c.is_whitespace() || c == '/' || c == ':')
        {
            self.error(
                key.pos,
                format!("stage name `{name}` may not be empty or contain spaces, `/` or `:`"),
            );
        }
        let Value::Map(fields) = &node.value else {
            self.error(
                node.pos,
                format!(
                    "stage `{name}` must be a mapping with `cmd` or `kind`, found {}",
                    node.value.type_name()
                ),
            );
            return None;
        };
        let mut cmd = None;
        let mut kind = None;
        let mut deps = Vec::new();
        let mut outs = Vec::new();
        let mut params = BTreeMap::new();
        let mut params_node = None;
        let mut desc = None;
        let mut seed = None;
        let owner = format!("stage `{name}`");
        let before = self.diags.len();
        for (k, v) in fields {
            match k.name.as_str() {
                "cmd" => cmd = self.command(&name, v),
                "kind" => kind = self.string(&owner, "kind", v),
                "deps" => deps = self.paths(&owner, "deps", v),
                "outs" => outs = self.paths(&owner, "outs", v),
                "params" => {
                    params = self.params(&name, v);
                    params_node = Some(v);
                }
                "desc" => desc = self.string(&owner, "desc", v),
                "seed" => seed = self.seed(&name, v),
                // Free-form metadata for people and later tooling; not part of the key.
                "meta" => {}
                _ => self.unknown_key(k, &format!("in stage `{name}`"), STAGE_KEYS),
            }
        }
        let action = match (cmd, kind) {
            (Some(c), None) => Some(Action::Cmd(c)),
            (None, Some(kind)) => self.builtin(&name, &kind, key.pos, params_node),
            (Some(_), Some(_)) => {
                self.error(key.pos, format!("stage `{name}` has both `cmd` and `kind`"))
                    .hint = Some("a stage is either a command or a built-in kind".into());
                None
            }
            (None, None) if self.diags.len() > before => None,
            (None, None) => {
                self.error(
                    key.pos,
                    format!("stage `{name}` has neither `cmd` nor `kind`"),
                )
                .hint = Some("add `cmd: <shell command>` or `kind: <built-in kind>`".into());
                None
            }
        };
        // A stage with problems still takes part in the graph checks below, with the paths that
        // were valid, so one report shows every problem.
        let action = action?;
        if let (Action::Builtin(_), Some(_)) = (&action, seed) {
            self.error(
                key.pos,
                format!("stage `{name}` is a built-in kind and cannot take `seed:`"),
            )
            .hint = Some("built-in kinds declare their seed in their params (e.g. `se: bootstrap:REPS:SEED`)".into());
            return None;
        }
        if let Action::Cmd(c) = &action {
            if c.contains(crate::executor::SEED_VAR) && seed.is_none() {
                self.error(
                    key.pos,
                    format!("stage `{name}` uses `${{seed}}` but declares no `seed:`"),
                )
                .hint = Some("add `seed: <integer>` to the stage".into());
                return None;
            }
            // Catch a `${params.typo}` now rather than when the stage runs.
            if let Err(why) = crate::executor::substitute(c, &params) {
                self.error(key.pos, format!("invalid command in stage `{name}`"))
                    .causes
                    .push(why);
                return None;
            }
        }
        if let Action::Builtin(b) = &action {
            let io = b.implied_io();
            deps = merge_paths(io.deps, deps);
            outs = merge_paths(io.outs, outs);
        }
        Some(Stage {
            name,
            action,
            deps,
            outs,
            params,
            desc,
            seed,
            upstream: Vec::new(),
            pos: key.pos,
        })
    }

    fn seed(&mut self, stage: &str, v: &Node) -> Option<u64> {
        match &v.value {
            Value::Int(i) if *i >= 0 => Some(*i as u64),
            other => {
                let found = match other {
                    Value::Int(i) => i.to_string(),
                    other => other.type_name().to_string(),
                };
                self.error(
                    v.pos,
                    format!(
                        "`seed` of stage `{stage}` must be a non-negative integer, found {found}"
                    ),
                );
                None
            }
        }
    }

    /// The top-level mapping `key`, if present and a mapping (other shapes are reported).
    fn top_map<'n>(&mut self, doc: &'n Node, key: &str, what: &str) -> &'n [(Key, Node)] {
        let Value::Map(entries) = &doc.value else {
            return &[];
        };
        let Some((_, node)) = entries.iter().find(|(k, _)| k.name == key) else {
            return &[];
        };
        match &node.value {
            Value::Map(m) => m,
            Value::Null => &[],
            other => {
                self.error(
                    node.pos,
                    format!(
                        "`{key}` must be a mapping from {what}, found {}",
                        other.type_name()
                    ),
                );
                &[]
            }
        }
    }

    /// `sources:`: name -> {files, citation, license, access, provided, statement}.
    fn sources(&mut self, doc: &Node) -> Vec<Source> {
        let entries = self.top_map(doc, "sources", "source name to its description");
        let mut out = Vec::new();
        for (key, node) in entries {
            let name = key.name.clone();
            let Value::Map(fields) = &node.value else {
                self.error(
                    node.pos,
                    format!(
                        "source `{name}` must be a mapping, found {}",
                        node.value.type_name()
                    ),
                )
                .hint = Some(format!("keys: {}", SOURCE_KEYS.join(", ")));
                continue;
            };
            let mut src = Source {
                name: name.clone(),
                files: Vec::new(),
                citation: None,
                license: None,
                access: None,
                provided: true,
                statement: None,
                pos: key.pos,
            };
            let mut has_files = false;
            let context = format!("source `{name}`");
            for (k, v) in fields {
                match k.name.as_str() {
                    "files" => {
                        has_files = true;
                        src.files = self.paths(&context, "files", v);
                    }
                    "citation" => src.citation = self.string(&context, "citation", v),
                    "license" => src.license = self.string(&context, "license", v),
                    "access" => src.access = self.string(&context, "access", v),
                    "statement" => src.statement = self.string(&context, "statement", v),
                    "provided" => match v.value {
                        Value::Bool(b) => src.provided = b,
                        _ => {
                            self.error(
                                v.pos,
                                format!("`provided` of source `{name}` must be `true` or `false`"),
                            );
                        }
                    },
                    _ => self.unknown_key(k, &format!("in source `{name}`"), SOURCE_KEYS),
                }
            }
            if !has_files {
                self.error(key.pos, format!("source `{name}` lists no `files`"))
                    .hint =
                    Some("add `files: [data/...]`, the files or folders of the source".into());
            }
            out.push(src);
        }
        out
    }

    /// `exhibits:`: output path -> label (`Table 2`). Each path must be a stage's output.
    fn exhibits(&mut self, doc: &Node, stages: &[Stage]) -> Vec<Exhibit> {
        let entries = self.top_map(doc, "exhibits", "output path to exhibit label");
        let mut out: Vec<Exhibit> = Vec::new();
        for (key, node) in entries {
            let Value::Str(label) = &node.value else {
                self.error(
                    node.pos,
                    format!(
                        "the exhibit of `{}` must be a label such as `Table 2`, found {}",
                        key.name,
                        node.value.type_name()
                    ),
                );
                continue;
            };
            let output = match normalize_path(&key.name) {
                Ok(p) => p,
                Err(why) => {
                    self.error(
                        key.pos,
                        format!("invalid path `{}` in `exhibits`", key.name),
                    )
                    .causes
                    .push(why);
                    continue;
                }
            };
            if !stages
                .iter()
                .any(|s| s.outs.iter().any(|o| path_within(&output, o)))
            {
                self.error(
                    key.pos,
                    format!("exhibit `{label}` names `{output}`, which no stage outputs"),
                )
                .hint = Some("keys of `exhibits` are output paths declared in `outs` (or implied by a built-in kind)".into());
                continue;
            }
            out.push(Exhibit {
                output,
                label: label.clone(),
            });
        }
        out
    }

    fn command(&mut self, stage: &str, v: &Node) -> Option<String> {
        match &v.value {
            Value::Str(s) if !s.trim().is_empty() => Some(s.clone()),
            // DVC allows a list of commands run one after another.
            Value::Seq(items) if !items.is_empty() => {
                let mut parts = Vec::new();
                for item in items {
                    parts.push(self.string(&format!("stage `{stage}`"), "cmd", item)?);
                }
                Some(parts.join(" && "))
            }
            _ => {
                self.error(
                    v.pos,
                    format!(
                        "`cmd` of stage `{stage}` must be a non-empty string or list of strings"
                    ),
                );
                None
            }
        }
    }

    fn string(&mut self, owner: &str, field: &str, v: &Node) -> Option<String> {
        match &v.value {
            Value::Str(s) => Some(s.clone()),
            other => {
                self.error(
                    v.pos,
                    format!(
                        "`{field}` of {owner} must be a string, found {}",
                        other.type_name()
                    ),
                );
                None
            }
        }
    }

    fn paths(&mut self, owner: &str, field: &str, v: &Node) -> Vec<String> {
        let items: Vec<&Node> = match &v.value {
            Value::Seq(items) => items.iter().collect(),
            Value::Null => Vec::new(),
            _ => vec![v],
        };
        let mut out = Vec::new();
        for item in items {
            // DVC allows `- path: {cache: false}`; accept the path, ignore the options.
            let (raw, pos) = match &item.value {
                Value::Str(s) => (s.clone(), item.pos),
                Value::Map(m) if m.len() == 1 => (m[0].0.name.clone(), m[0].0.pos),
                other => {
                    self.error(
                        item.pos,
                        format!(
                            "each entry of `{field}` in {owner} must be a path, found {}",
                            other.type_name()
                        ),
                    );
                    continue;
                }
            };
            match normalize_path(&raw) {
                Ok(p) => {
                    if out.contains(&p) {
                        self.error(
                            pos,
                            format!("`{p}` is listed twice in `{field}` of {owner}"),
                        );
                    } else {
                        out.push(p);
                    }
                }
                Err(why) => {
                    self.error(pos, format!("invalid path `{raw}` in `{field}` of {owner}"))
                        .causes
                        .push(why);
                    if let Some(d) = self.diags.last_mut() {
                        d.hint = Some(
                            "paths are relative to the pipeline file's folder and stay inside it"
                                .into(),
                        );
                    }
                }
            }
        }
        out
    }

    fn params(&mut self, stage: &str, v: &Node) -> BTreeMap<String, Param> {
        let mut out = BTreeMap::new();
        match &v.value {
            Value::Null => {}
            // Inline values.
            Value::Map(entries) => {
                for (k, val) in entries {
                    out.insert(k.name.clone(), Param::from_node(val));
                }
            }
            // DVC references: `- key` (params.yaml) or `- file.yaml: [key, ...]`.
            Value::Seq(items) => {
                for item in items {
                    match &item.value {
                        Value::Str(key) => {
                            self.param_ref(stage, DEFAULT_PARAMS_FILE, key, item.pos, &mut out)
                        }
                        Value::Map(m) => {
                            for (file_key, keys) in m {
                                self.param_file_refs(stage, file_key, keys, &mut out);
                            }
                        }
                        other => {
                            self.error(
                                item.pos,
                                format!(
                                    "entries of `params` in stage `{stage}` must be a key or `file: [keys]`, found {}",
                                    other.type_name()
                                ),
                            );
                        }
                    }
                }
            }
            other => {
                self.error(
                    v.pos,
                    format!(
                        "`params` of stage `{stage}` must be a mapping of values or a list of params-file keys, found {}",
                        other.type_name()
                    ),
                );
            }
        }
        out
    }

    fn param_file_refs(
        &mut self,
        stage: &str,
        file_key: &Key,
        keys: &Node,
        out: &mut BTreeMap<String, Param>,
    ) {
        match &keys.value {
            // The whole file: every top-level key.
            Value::Null => {
                let Some(Param::Map(all)) = self.params_file(&file_key.name, file_key.pos) else {
                    return;
                };
                for (k, v) in all {
                    out.insert(k, v);
                }
            }
            Value::Seq(items) if items.is_empty() => {
                let Some(Param::Map(all)) = self.params_file(&file_key.name, file_key.pos) else {
                    return;
                };
                for (k, v) in all {
                    out.insert(k, v);
                }
            }
            Value::Seq(items) => {
                for item in items {
                    if let Value::Str(key) = &item.value {
                        self.param_ref(stage, &file_key.name, key, item.pos, out);
                    } else {
                        self.error(
                            item.pos,
                            format!("params keys of `{}` must be strings", file_key.name),
                        );
                    }
                }
            }
            other => {
                self.error(
                    keys.pos,
                    format!(
                        "`{}` in `params` of stage `{stage}` must list keys, found {}",
                        file_key.name,
                        other.type_name()
                    ),
                );
            }
        }
    }

    fn param_ref(
        &mut self,
        stage: &str,
        file: &str,
        key: &str,
        pos: Pos,
        out: &mut BTreeMap<String, Param>,
    ) {
        let Some(doc) = self.params_file(file, pos) else {
            return;
        };
        match doc.lookup(key) {
            Some(v) => {
                out.insert(key.to_string(), v.clone());
            }
            None => {
                self.error(
                    pos,
                    format!("stage `{stage}` names param `{key}`, which `{file}` does not define"),
                );
            }
        }
    }

    /// Reads and caches a params file; reports a problem once per file.
    fn params_file(&mut self, name: &str, pos: Pos) -> Option<Param> {
        if let Some(cached) = self.params_files.get(name) {
            return cached.clone();
        }
        let parsed = match normalize_path(name) {
            Err(why) => {
                self.error(pos, format!("invalid params file path `{name}`"))
                    .causes
                    .push(why);
                None
            }
            Ok(rel) => match std::fs::read_to_string(self.root.join(&rel)) {
                Err(e) => {
                    self.error(pos, format!("cannot read params file `{rel}`"))
                        .causes
                        .push(e.to_string());
                    None
                }
                Ok(text) => match yaml::parse(&text) {
                    Ok(node) => Some(Param::from_node(&node)),
                    Err(e) => {
                        let at = e
                            .pos
                            .map(|p| format!(" (line {}, column {})", p.line, p.column))
                            .unwrap_or_default();
                        self.error(pos, format!("invalid yaml in params file `{rel}`{at}"))
                            .causes
                            .push(e.message);
                        None
                    }
                },
            },
        };
        self.params_files.insert(name.to_string(), parsed.clone());
        parsed
    }

    fn builtin(
        &mut self,
        stage: &str,
        kind: &str,
        pos: Pos,
        params: Option<&Node>,
    ) -> Option<Action> {
        let json = params
            .map(Node::to_json)
            .unwrap_or(serde_json::Value::Object(Default::default()));
        let ctx = crate::kinds::ParseCtx { root: &self.root };
        match Builtin::parse(kind, json, &ctx) {
            Ok(b) => Some(Action::Builtin(Box::new(b))),
            Err(e) => {
                let at = params.map(|p| p.pos).unwrap_or(pos);
                let d =
                    Diagnostic::new(format!("invalid built-in stage `{stage}` of kind `{kind}`"))
                        .at(Some(e.location.unwrap_or_else(|| self.loc(at))))
                        .cause(e.message);
                let d = match e.hint {
                    Some(h) => d.hint(h),
                    None => d,
                };
                self.diags.push(d);
                None
            }
        }
    }
}

fn merge_paths(first: Vec<String>, then: Vec<String>) -> Vec<String> {
    let mut out = first;
    for p in then {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// Normalises a user path: forward slashes, no `.` parts, no trailing slash; rejects absolute
/// paths and `..`, which would make keys depend on where the project lives.
pub fn normalize_path(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err("the path is empty".into());
    }
    let s = s.replace('\\', "/");
    if s.starts_with('/') || (s.len() > 1 && s.as_bytes()[1] == b':') {
        return Err("absolute paths are not allowed".into());
    }
    let mut parts = Vec::new();
    for part in s.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("`..` is not allowed".into()),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err("the path names the project folder itself".into());
    }
    Ok(parts.join("/"))
}

/// True when `inner` is `outer` or lies inside the folder `outer`.
pub fn path_within(inner: &str, outer: &str) -> bool {
    inner == outer
        || (inner.len() > outer.len()
            && inner.starts_with(outer)
            && inner.as_bytes()[outer.len()] == b'/')
}

/// Finds which stage produces each dep, and rejects outputs declared twice or nested in each
/// other. Uses an ordered map of outputs so large pipelines stay fast: a path's producers are
/// the output equal to it, the outputs that are folders above it, and the outputs inside it.
fn link(cx: &mut Cx, stages: &mut [Stage]) {
    let mut owners: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for (i, s) in stages.iter().enumerate() {
        for o in &s.outs {
            owners.entry(o.as_str()).or_default().push(i);
        }
    }
    let producers = |path: &str| -> Vec<(usize, String)> {
        let mut found = Vec::new();
        if let Some(v) = owners.get(path) {
            found.extend(v.iter().map(|&i| (i, path.to_string())));
        }
        // Folders above `path`.
        let mut cut = path.len();
        while let Some(pos) = path[..cut].rfind('/') {
            let parent = &path[..pos];
            if let Some(v) = owners.get(parent) {
                found.extend(v.iter().map(|&i| (i, parent.to_string())));
            }
            cut = pos;
        }
        // Paths inside `path` (when it is a folder): keys starting with `path/`.
        let prefix = format!("{path}/");
        for (k, v) in owners.range::<str, _>((
            std::ops::Bound::Excluded(prefix.as_str()),
            std::ops::Bound::Unbounded,
        )) {
            if !k.starts_with(&prefix) {
                break;
            }
            found.extend(v.iter().map(|&i| (i, k.to_string())));
        }
        found
    };
    let mut problems = Vec::new();
    for (i, s) in stages.iter().enumerate() {
        for o in &s.outs {
            for (j, other) in producers(o) {
                // Report each clash once, at the later stage.
                if j > i || (j == i && other == *o) {
                    continue;
                }
                problems.push((other, j, o.clone(), i));
            }
        }
    }
    // In file order: by the later stage, then the earlier one.
    problems.sort_by(|a, b| (a.3, a.1, &a.0, &a.2).cmp(&(b.3, b.1, &b.0, &b.2)));
    problems.dedup();
    for (pa, ia, pb, ib) in problems {
        let what = if pa == pb {
            format!(
                "output `{pa}` is declared by two stages, `{}` and `{}`",
                stages[ia].name, stages[ib].name
            )
        } else if ia == ib {
            format!(
                "outputs `{pa}` and `{pb}` of stage `{}` overlap",
                stages[ia].name
            )
        } else {
            format!(
                "outputs overlap: `{pa}` of stage `{}` and `{pb}` of stage `{}`",
                stages[ia].name, stages[ib].name
            )
        };
        cx.error(stages[ib].pos, what).hint =
            Some("every output belongs to exactly one stage".into());
    }
    let mut upstream_all = Vec::with_capacity(stages.len());
    for s in stages.iter() {
        let mut up: Vec<usize> = s
            .deps
            .iter()
            .flat_map(|d| producers(d))
            .map(|(j, _)| j)
            .collect();
        up.sort_unstable();
        up.dedup();
        upstream_all.push(up);
    }
    for (i, up) in upstream_all.into_iter().enumerate() {
        if up.contains(&i) {
            let name = stages[i].name.clone();
            cx.error(
                stages[i].pos,
                format!("stage `{name}` depends on its own output"),
            )
            .causes
            .push(format!("cycle: {name} -> {name}"));
        }
        stages[i].upstream = up;
    }
}

/// Kahn's algorithm, taking ready stages in file order so the order is stable; reports a cycle
/// as `a -> b -> a`.
fn topo_order(cx: &mut Cx, stages: &[Stage]) -> Vec<usize> {
    let n = stages.len();
    let mut indegree: Vec<usize> = stages.iter().map(|s| s.upstream.len()).collect();
    let mut downstream = vec![Vec::new(); n];
    for (i, s) in stages.iter().enumerate() {
        for &u in &s.upstream {
            downstream[u].push(i);
        }
    }
    let mut ready: std::collections::BTreeSet<usize> =
        (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &d in &downstream[i] {
            indegree[d] -= 1;
            if indegree[d] == 0 {
                ready.insert(d);
            }
        }
    }
    if order.len() < n {
        let cycle = find_cycle(stages, &indegree);
        let names: Vec<&str> = cycle.iter().map(|&i| stages[i].name.as_str()).collect();
        let first = cycle[0];
        cx.error(stages[first].pos, "the stages form a cycle".into())
            .causes
            .push(format!("cycle: {}", names.join(" -> ")));
    }
    order
}

/// Walks upstream links among the stages left with unmet dependencies until one repeats.
fn find_cycle(stages: &[Stage], indegree: &[usize]) -> Vec<usize> {
    let start = (0..stages.len())
        .find(|&i| indegree[i] > 0)
        .unwrap_or_default();
    let mut path = vec![start];
    let mut cur = start;
    loop {
        let next = stages[cur]
            .upstream
            .iter()
            .copied()
            .find(|&u| indegree[u] > 0)
            .unwrap_or(start);
        if let Some(at) = path.iter().position(|&p| p == next) {
            // Show the cycle in the direction data flows: producer -> consumer.
            let mut cycle: Vec<usize> = path[at..].to_vec();
            cycle.reverse();
            cycle.push(cycle[0]);
            return cycle;
        }
        path.push(next);
        cur = next;
    }
}

fn reorder(stages: Vec<Stage>, order: &[usize]) -> Vec<Stage> {
    let mut new_index = vec![0; stages.len()];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = new;
    }
    let mut slots: Vec<Option<Stage>> = stages.into_iter().map(Some).collect();
    order
        .iter()
        .map(|&old| {
            let mut s = slots[old]
                .take()
                .expect("each stage appears once in the order");
            s.upstream = s.upstream.iter().map(|&u| new_index[u]).collect();
            s.upstream.sort_unstable();
            s
        })
        .collect()
}

/// The allowed word closest to `word`, when it is a plausible typo.
fn closest<'a>(word: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (edit_distance(word, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::render;

    fn parse(text: &str) -> Result<Pipeline, String> {
        parse_pipeline(Path::new("pipeline.yaml"), Path::new("."), text).map_err(|f| render(&f))
    }

    #[test]
    fn orders_stages_by_dependency() {
        let p = parse(
            "stages:\n  b:\n    cmd: cp a.txt b.txt\n    deps: [a.txt]\n    outs: [b.txt]\n  a:\n    cmd: echo > a.txt\n    outs: [a.txt]\n",
        )
        .unwrap();
        let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(p.stages[1].upstream, vec![0]);
    }

    #[test]
    fn reports_every_unknown_key_with_its_line() {
        let err =
            parse("stages:\n  a:\n    cmdd: x\n  b:\n    cmd: y\n    dep: [z]\n").unwrap_err();
        assert!(err.contains("unknown key `cmdd` in stage `a`"), "{err}");
        assert!(err.contains("pipeline.yaml:3:5"), "{err}");
        assert!(err.contains("unknown key `dep` in stage `b`"), "{err}");
        assert!(err.contains("pipeline.yaml:6:5"), "{err}");
        assert!(err.contains("did you mean `cmd`?"), "{err}");
    }

    #[test]
    fn reports_a_cycle_as_a_path() {
        let err = parse(
            "stages:\n  a:\n    cmd: x\n    deps: [b.txt]\n    outs: [a.txt]\n  b:\n    cmd: y\n    deps: [a.txt]\n    outs: [b.txt]\n",
        )
        .unwrap_err();
        assert!(
            err.contains("cycle: a -> b -> a") || err.contains("cycle: b -> a -> b"),
            "{err}"
        );
    }

    #[test]
    fn rejects_two_stages_with_one_output() {
        let err =
            parse("stages:\n  a:\n    cmd: x\n    outs: [o]\n  b:\n    cmd: y\n    outs: [o]\n")
                .unwrap_err();
        assert!(
            err.contains("output `o` is declared by two stages, `a` and `b`"),
            "{err}"
        );
    }

    #[test]
    fn reads_sources_exhibits_and_seeds() {
        let p = parse(
            "sources:\n  s:\n    files: [./data/a.csv]\n    citation: C\n    provided: false\n    statement: S\nexhibits:\n  out/t.csv: Table 1\nstages:\n  a:\n    cmd: echo ${seed} > out/t.csv\n    outs: [out/t.csv]\n    seed: 3\n",
        )
        .unwrap();
        assert_eq!(p.sources[0].files, ["data/a.csv"]);
        assert!(!p.sources[0].provided);
        assert_eq!(p.sources[0].statement.as_deref(), Some("S"));
        assert_eq!(p.exhibits[0].label, "Table 1");
        assert_eq!(p.exhibits[0].output, "out/t.csv");
        assert_eq!(p.stages[0].seeds(), [3]);
    }

    #[test]
    fn the_seed_enters_the_key_and_metadata_does_not() {
        let key = |text: &str| {
            let p = parse(text).unwrap();
            crate::key::stage_key(&p.stages[0], &BTreeMap::new())
        };
        let plain = "stages:\n  a:\n    cmd: echo > o\n    outs: [o]\n";
        let seeded = "stages:\n  a:\n    cmd: echo > o\n    outs: [o]\n    seed: 1\n";
        let reseeded = "stages:\n  a:\n    cmd: echo > o\n    outs: [o]\n    seed: 2\n";
        let with_meta = "sources:\n  s:\n    files: [x]\nexhibits:\n  o: Table 1\nstages:\n  a:\n    cmd: echo > o\n    outs: [o]\n";
        assert_ne!(key(plain), key(seeded));
        assert_ne!(key(seeded), key(reseeded));
        assert_eq!(key(plain), key(with_meta));
    }

    #[test]
    fn reports_bad_metadata_with_places() {
        let err = parse(
            "sources:\n  s:\n    citation: 3\n    provided: maybe\nexhibits:\n  nope.csv: Table 1\nstages:\n  a:\n    cmd: echo ${seed} > o\n    outs: [o]\n  b:\n    kind: fit\n    seed: -1\n    params: {data: d.csv, formula: y ~ x, out: r.json}\n",
        )
        .unwrap_err();
        for needed in [
            "`citation` of source `s` must be a string, found a number",
            "`provided` of source `s` must be `true` or `false`",
            "source `s` lists no `files`",
            "exhibit `Table 1` names `nope.csv`, which no stage outputs",
            "stage `a` uses `${seed}` but declares no `seed:`",
            "`seed` of stage `b` must be a non-negative integer, found -1",
        ] {
            assert!(err.contains(needed), "{needed} not in:\n{err}");
        }
    }

    #[test]
    fn normalizes_and_rejects_paths() {
        assert_eq!(normalize_path("./data//x.csv").unwrap(), "data/x.csv");
        assert!(normalize_path("/etc/passwd").is_err());
        assert!(normalize_path("../x").is_err());
        assert!(path_within("out/a.csv", "out"));
        assert!(!path_within("output", "out"));
    }
}
