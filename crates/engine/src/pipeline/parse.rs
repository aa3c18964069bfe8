//! Validating `pipeline.yaml` into a [`Pipeline`]: keys, paths, params, kinds, metadata.
//!
//! Owns: reading the pipeline file and the params files it names, every check of a key or value
//! with its place, and assembling the validated stages. Deliberately does not own: linking stages
//! into a graph (`graph`) or what a built-in kind accepts (the registry answers).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use repro_kind::diag::{Diagnostic, Failure};
use repro_kind::paths::{normalize_path, path_within};
use repro_kind::{KindRegistry, ParseCtx};

use super::cx::Cx;
use super::graph::{link, reorder, topo_order};
use super::model::{Action, Exhibit, Pipeline, Source, Stage, DEFAULT_PARAMS_FILE};
use super::param_refs::{name_params, ParamRef};
use crate::params::Param;
use crate::yaml::{self, Key, Node, Pos, Value};

/// Reads and validates a pipeline file. Every problem found is reported at once.
pub fn load(file: &Path, kinds: &dyn KindRegistry) -> Result<Pipeline, Failure> {
    let root = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if super::dvc::only_nested_pipelines(file, &root) {
        // A DVC project whose pipelines all live in subfolders (`pipelines/dvc.yaml`...): DVC
        // collects them from the root, and so does `-f dvc.yaml`.
        return parse_pipeline(file, &root, "stages: {}\n", kinds);
    }
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
    parse_pipeline(file, &root, &text, kinds)
}

/// Validates pipeline text; `root` is where params files and stage paths are resolved.
pub fn parse_pipeline(
    file: &Path,
    root: &Path,
    text: &str,
    kinds: &dyn KindRegistry,
) -> Result<Pipeline, Failure> {
    let mut cx = Cx {
        file: file.to_path_buf(),
        text: text.to_string(),
        root: root.to_path_buf(),
        kinds,
        diags: Vec::new(),
        params_files: HashMap::new(),
        base: String::new(),
        groups: HashMap::new(),
        dropped_stages: 0,
        missing_params: Vec::new(),
        links: Default::default(),
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
    let doc = if super::template::uses_templates(text) {
        cx.expand(&doc, "")
    } else {
        doc
    };
    let report = cx.report(&doc);
    let remote = cx.remote(&doc);
    let cluster = cx.cluster_defaults(&doc);
    let mut stages = cx.stages(&doc);
    if file.file_name().is_some_and(|n| n == "dvc.yaml") {
        stages.extend(cx.nested_stages());
    }
    super::cluster::apply_defaults(&mut stages, &cluster);
    link(&mut cx, &mut stages);
    missing_params_files(&mut cx, &stages);
    // With every stage valid, the variables stages read are checked against known columns.
    if cx.diags.is_empty() && cx.dropped_stages == 0 {
        cx.diags.extend(super::columns::check(root, &stages));
    }
    let sources = cx.sources(&doc);
    let exhibits = cx.exhibits(&doc, &stages);
    let (title, authors, license) = cx.paper(&doc);
    let order = if cx.diags.is_empty() {
        topo_order(&mut cx, &stages)
    } else {
        Vec::new()
    };
    if !cx.diags.is_empty() {
        return Err(Failure::usage_many(cx.diags));
    }
    // The params files the project brings (a package ships them); those a stage writes are outputs.
    let mut params_files: Vec<String> = cx
        .params_files
        .iter()
        .filter(|(name, parsed)| parsed.is_some() && !written_by_a_stage(&stages, name))
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
        executor: cluster.executor,
        title,
        authors,
        license,
        remote,
    })
}

/// A params file that does not exist is an error unless a stage writes it (then it is read when
/// the stages naming it run).
fn missing_params_files(cx: &mut Cx, stages: &[Stage]) {
    for (rel, at) in std::mem::take(&mut cx.missing_params) {
        if !written_by_a_stage(stages, &rel) {
            cx.diags.push(
                Diagnostic::new(format!("cannot read params file `{rel}`"))
                    .at(Some(at))
                    .cause("no such file, and no stage has it among its outputs")
                    .hint("create the file, or name it in `outs` of the stage that writes it"),
            );
        }
    }
}

/// True when `rel` is a stage's output or lies in an output folder.
fn written_by_a_stage(stages: &[Stage], rel: &str) -> bool {
    stages
        .iter()
        .any(|s| s.outs.iter().any(|o| path_within(rel, o)))
}

const TOP_KEYS: &[&str] = &[
    "stages",
    "sources",
    "exhibits",
    "report",
    "executor",
    "resources",
    "title",
    "authors",
    "license",
    "remote",
    // DVC's: templating variables, and what `dvc metrics/plots/params` and the model registry
    // show (no effect on runs).
    "vars",
    "metrics",
    "plots",
    "params",
    "artifacts",
    "datasets",
];
const STAGE_KEYS: &[&str] = &[
    "cmd",
    "kind",
    "deps",
    "outs",
    "params",
    "desc",
    "meta",
    "seed",
    "executor",
    "resources",
    "metrics",
    "plots",
    "frozen",
    "always_changed",
    "wdir",
];
const SOURCE_KEYS: &[&str] = &[
    "files",
    "citation",
    "license",
    "access",
    "provided",
    "statement",
];

/// A stage's fields as written, before its kind or command is resolved.
#[derive(Default)]
struct StageFields<'n> {
    cmd: Option<String>,
    kind: Option<String>,
    deps: Vec<String>,
    outs: Vec<String>,
    params: BTreeMap<String, Param>,
    param_refs: Vec<ParamRef>,
    /// The `params:` node, which a built-in kind reads itself.
    params_node: Option<&'n Node>,
    desc: Option<String>,
    seed: Option<u64>,
    executor: Option<super::model::ExecutorKind>,
    resources: super::model::Resources,
    run: super::dvc::RunOpts,
}

impl Cx<'_> {
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

    /// The optional `title: TEXT` and `authors: [NAME, ...]` (or one name) of the paper, and the
    /// `license: TEXT` of the pipeline's code.
    fn paper(&mut self, doc: &Node) -> (Option<String>, Vec<String>, Option<String>) {
        let Value::Map(entries) = &doc.value else {
            return (None, Vec::new(), None);
        };
        let field = |name: &str| entries.iter().find(|(k, _)| k.name == name).map(|(_, n)| n);
        let title = field("title").and_then(|n| self.string("the pipeline", "title", n));
        let authors = match field("authors").map(|n| (n, &n.value)) {
            None => Vec::new(),
            Some((_, Value::Seq(items))) => items
                .iter()
                .filter_map(|n| self.string("the pipeline", "authors", n))
                .collect(),
            Some((n, _)) => self
                .string("the pipeline", "authors", n)
                .into_iter()
                .collect(),
        };
        let license = field("license").and_then(|n| self.string("the pipeline", "license", n));
        (title, authors, license)
    }

    pub(super) fn stages(&mut self, doc: &Node) -> Vec<Stage> {
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
        // A generated name (`name@item`) may hold anything its item holds, as in DVC.
        let written = self.groups.get(&name).map_or(name.as_str(), String::as_str);
        if written.is_empty()
            || written
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
        let before = self.diags.len();
        let f = self.stage_fields(&name, fields);
        let StageFields {
            cmd,
            kind,
            mut deps,
            mut outs,
            params,
            param_refs,
            params_node,
            desc,
            seed,
            executor,
            resources,
            run,
        } = f;
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
        let Some(action) = action else {
            self.dropped_stages += 1;
            return None;
        };
        if !self.action_is_valid(&name, key.pos, &action, seed, (&params, &param_refs)) {
            return None;
        }
        let mut spec_fields = BTreeMap::new();
        if let Action::Builtin(b) = &action {
            let io = b.implied_io();
            deps = merge_paths(io.deps, deps);
            outs = merge_paths(io.outs, outs);
            for file in b.spec_files() {
                if let Some(flat) = crate::fields::read_spec(&self.root, &file) {
                    spec_fields.insert(file, flat);
                }
            }
        }
        if !self.outputs_are_safe(&name, key.pos, &outs) {
            return None;
        }
        Some(Stage {
            name,
            action,
            deps,
            outs,
            params,
            param_refs,
            params_from_outputs: false,
            desc,
            seed,
            run,
            upstream: Vec::new(),
            pos: key.pos,
            executor,
            resources,
            spec_fields,
        })
    }

    /// Reads a stage's fields, each checked for its type; unknown keys are errors.
    fn stage_fields<'n>(&mut self, name: &str, fields: &'n [(Key, Node)]) -> StageFields<'n> {
        let owner = format!("stage `{name}`");
        let mut f = StageFields {
            run: super::dvc::RunOpts {
                group: self.groups.get(name).cloned(),
                ..Default::default()
            },
            ..Default::default()
        };
        let folder = self.base.clone();
        if let Some((_, v)) = fields.iter().find(|(k, _)| k.name == "wdir") {
            self.base = self.wdir(&owner, v).unwrap_or(folder.clone());
        }
        f.run.wdir = self.base.clone();
        let mut extra_outs = Vec::new();
        for (k, v) in fields {
            match k.name.as_str() {
                "cmd" => {
                    f.cmd = self.command(name, v);
                    f.run.lines = super::dvc::command_lines(v);
                }
                "kind" => f.kind = self.string(&owner, "kind", v),
                "deps" => f.deps = self.paths(&owner, "deps", v),
                "outs" => f.outs = self.outputs(&owner, "outs", v, &mut f.run.outs),
                "metrics" | "plots" => {
                    extra_outs.extend(self.outputs(&owner, &k.name, v, &mut f.run.outs))
                }
                "frozen" => f.run.frozen = self.flag(&owner, "frozen", v),
                "always_changed" => f.run.always_changed = self.flag(&owner, "always_changed", v),
                "wdir" => {}
                "params" => {
                    (f.params, f.param_refs) = self.params(name, v);
                    f.params_node = Some(v);
                }
                "desc" => f.desc = self.string(&owner, "desc", v),
                "seed" => f.seed = self.seed(name, v),
                "executor" => f.executor = self.executor_kind(&owner, v),
                "resources" => f.resources = self.resources(&owner, v),
                // Free-form metadata for people and later tooling; not part of the key.
                "meta" => {}
                _ => self.unknown_key(k, &format!("in stage `{name}`"), STAGE_KEYS),
            }
        }
        self.base = folder;
        f.outs = merge_paths(std::mem::take(&mut f.outs), extra_outs);
        // DVC: a command with neither deps nor outputs is a "callback" stage that always runs.
        f.run.always_changed |= f.cmd.is_some() && f.deps.is_empty() && f.outs.is_empty();
        f
    }

    /// A built-in kind takes no `seed:`; a command that uses `${seed}` must declare one, and its
    /// `${params...}` must resolve now (unless a params file it names is still to be written by
    /// another stage). False, with the error recorded, otherwise.
    fn action_is_valid(
        &mut self,
        name: &str,
        pos: Pos,
        action: &Action,
        seed: Option<u64>,
        (params, param_refs): (&BTreeMap<String, Param>, &[ParamRef]),
    ) -> bool {
        if let (Action::Builtin(_), Some(_)) = (action, seed) {
            self.error(
                pos,
                format!("stage `{name}` is a built-in kind and cannot take `seed:`"),
            )
            .hint = Some("built-in kinds declare their seed in their params (e.g. `se: bootstrap:REPS:SEED`)".into());
            return false;
        }
        let Action::Cmd(c) = action else {
            return true;
        };
        if c.contains(crate::executor::SEED_VAR) && seed.is_none() {
            self.error(
                pos,
                format!("stage `{name}` uses `${{seed}}` but declares no `seed:`"),
            )
            .hint = Some("add `seed: <integer>` to the stage".into());
            return false;
        }
        // Catch a `${params.typo}` now rather than when the stage runs.
        let pending = param_refs
            .iter()
            .any(|r: &ParamRef| self.missing_params.iter().any(|(m, _)| *m == r.path));
        let checked = if pending {
            Ok(String::new())
        } else {
            crate::executor::substitute(c, params)
        };
        if let Err(why) = checked {
            self.error(pos, format!("invalid command in stage `{name}`"))
                .causes
                .push(why);
            return false;
        }
        true
    }

    /// Outputs are replaced, moved aside and deleted by runs: none may be repro's own state (the
    /// pipeline file, its lock, `cache/`) or lie below a symbolic link, which could lead outside
    /// the project. A params file may be an output: the stages reading it then follow the stage
    /// that writes it, and read it when they run (`param_refs`).
    fn outputs_are_safe(&mut self, stage: &str, pos: Pos, outs: &[String]) -> bool {
        let file_name = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default()
        };
        let pipeline = file_name(&self.file);
        let lock = super::model::lock_name(&self.file);
        let mut ok = true;
        for out in outs {
            let owned = if path_within("cache", out) || path_within(out, "cache") {
                Some("the cache folder `cache/`".to_string())
            } else if [pipeline.as_str(), lock.as_str()].contains(&out.as_str()) {
                Some(format!("repro's own file `{out}`"))
            } else if super::dvc::dvc_owned(out) {
                Some(format!("DVC's own file `{out}`"))
            } else {
                None
            };
            if let Some(what) = owned {
                self.error(pos, format!("output `{out}` of stage `{stage}` is {what}"))
                    .hint = Some("a run replaces its outputs: choose another path".into());
                ok = false;
                continue;
            }
            if let Some(link) = self.links.on_the_way(&self.root, out) {
                self.error(
                    pos,
                    format!(
                        "output `{out}` of stage `{stage}` lies below the symbolic link `{link}`"
                    ),
                )
                .hint = Some(
                    "outputs must stay inside the project: name the real folder instead".into(),
                );
                ok = false;
            }
        }
        ok
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
            if self.dropped_stages == 0
                && !stages
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

    pub(super) fn string(&mut self, owner: &str, field: &str, v: &Node) -> Option<String> {
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

    /// Paths of a stage (relative to its folder) or of a source: the same forms as outputs,
    /// whose options do not apply here.
    fn paths(&mut self, owner: &str, field: &str, v: &Node) -> Vec<String> {
        self.outputs(owner, field, v, &mut BTreeMap::new())
    }

    /// The stage's params, and the file references they came from (none for inline values).
    fn params(&mut self, stage: &str, v: &Node) -> (BTreeMap<String, Param>, Vec<ParamRef>) {
        let mut out = BTreeMap::new();
        let mut refs = Vec::new();
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
                let mut found = Vec::new();
                for item in items {
                    match &item.value {
                        Value::Str(key) => {
                            let r = self.param_ref(
                                stage,
                                DEFAULT_PARAMS_FILE,
                                key,
                                item.pos,
                                &mut found,
                            );
                            refs.extend(r);
                        }
                        Value::Map(m) => {
                            for (file_key, keys) in m {
                                self.param_file_refs(stage, file_key, keys, &mut found, &mut refs);
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
                out = name_params(found);
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
        (out, refs)
    }

    fn param_file_refs(
        &mut self,
        stage: &str,
        file_key: &Key,
        keys: &Node,
        out: &mut Vec<(String, String, Param)>,
        refs: &mut Vec<ParamRef>,
    ) {
        let file = &file_key.name;
        match &keys.value {
            // The whole file: every top-level key.
            Value::Null => refs.extend(self.whole_params_file(file, file_key.pos, out)),
            Value::Seq(items) if items.is_empty() => {
                refs.extend(self.whole_params_file(file, file_key.pos, out))
            }
            Value::Seq(items) => {
                for item in items {
                    if let Value::Str(key) = &item.value {
                        refs.extend(self.param_ref(stage, file, key, item.pos, out));
                    } else {
                        self.error(item.pos, format!("params keys of `{file}` must be strings"));
                    }
                }
            }
            other => {
                self.error(
                    keys.pos,
                    format!(
                        "`{file}` in `params` of stage `{stage}` must list keys, found {}",
                        other.type_name()
                    ),
                );
            }
        }
    }

    fn whole_params_file(
        &mut self,
        file: &str,
        pos: Pos,
        out: &mut Vec<(String, String, Param)>,
    ) -> Option<ParamRef> {
        let (path, doc) = self.params_file(file, pos)?;
        if let Some(Param::Map(all)) = doc {
            out.extend(all.into_iter().map(|(k, v)| (file.to_string(), k, v)));
        }
        Some(ParamRef {
            file: file.to_string(),
            path,
            key: None,
        })
    }

    fn param_ref(
        &mut self,
        stage: &str,
        file: &str,
        key: &str,
        pos: Pos,
        out: &mut Vec<(String, String, Param)>,
    ) -> Option<ParamRef> {
        let (path, doc) = self.params_file(file, pos)?;
        // A file not there yet is checked once the stage that writes it has run.
        if let Some(doc) = doc {
            match doc.lookup(key) {
                Some(v) => out.push((file.to_string(), key.to_string(), v.clone())),
                None => {
                    self.error(
                        pos,
                        format!(
                            "stage `{stage}` names param `{key}`, which `{file}` does not define"
                        ),
                    );
                }
            }
        }
        Some(ParamRef {
            file: file.to_string(),
            path,
            key: Some(key.to_string()),
        })
    }

    /// Reads and caches a params file (relative to the stage's folder, in any format DVC
    /// reads); reports a problem once per file. Gives the file's path from the root, and its
    /// values unless it does not exist yet: whether a stage writes it is known only once every
    /// stage is read (`missing_params_files`).
    fn params_file(&mut self, name: &str, pos: Pos) -> Option<(String, Option<Param>)> {
        let rel = match super::relpath::resolve_path(&self.base, name) {
            Ok(rel) => rel,
            Err(why) => {
                self.error(pos, format!("invalid params file path `{name}`"))
                    .causes
                    .push(why);
                return None;
            }
        };
        if let Some(cached) = self.params_files.get(&rel) {
            let missing = self.missing_params.iter().any(|(m, _)| *m == rel);
            return (cached.is_some() || missing).then(|| (rel, cached.clone()));
        }
        if !self.root.join(&rel).exists() {
            let at = self.loc(pos);
            self.missing_params.push((rel.clone(), at));
            self.params_files.insert(rel.clone(), None);
            return Some((rel, None));
        }
        let parsed = match crate::params_file::read(&self.root, &rel) {
            Ok(node) => Some(Param::from_node(&node)),
            Err(why) => {
                self.error(pos, format!("cannot read params file `{rel}`"))
                    .causes
                    .push(why);
                None
            }
        };
        self.params_files.insert(rel.clone(), parsed.clone());
        parsed.map(|p| (rel, Some(p)))
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
        let param_at = |key: &str, word: &str| -> Option<repro_kind::Location> {
            let Some(Node {
                value: Value::Map(entries),
                ..
            }) = params
            else {
                return None;
            };
            let (_, node) = entries.iter().find(|(k, _)| k.name == key)?;
            let (line, column) =
                repro_kind::spot::word_in_scalar(&self.text, node.pos.line, node.pos.column, word)
                    .unwrap_or((node.pos.line, node.pos.column));
            Some(repro_kind::Location {
                file: self.file.clone(),
                line,
                column,
            })
        };
        let ctx = ParseCtx {
            root: &self.root,
            param_at: &param_at,
        };
        match self.kinds.parse(kind, json, &ctx) {
            Ok(b) => Some(Action::Builtin(b)),
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
