//! DVC's stage keys beyond `cmd/deps/outs/params`, with DVC's semantics (DVC 3's
//! `dvc/stage`, `dvc/output.py`, `dvc/schema.py`).
//!
//! Owns: [`RunOpts`] and [`OutOpts`] (`frozen`, `always_changed`, `wdir`, outputs' `cache`,
//! `persist` and `push`, `metrics` and `plots` as outputs, a command's lines), reading them from a
//! stage, paths relative to a stage's folder (`wdir`, a nested `dvc.yaml`'s folder; resolved by
//! `relpath`), URL deps (unsupported, with a hint), and finding the `dvc.yaml` files
//! of subfolders. Deliberately does not own: the rest of a stage (`parse`), templating
//! (`template`), or acting on the options (`runner`, `planner`).

use std::collections::BTreeMap;
use std::path::Path;

use super::cx::Cx;
use super::relpath::{resolve_folder, resolve_path};
use crate::yaml::{Node, Pos, Value};

/// How one output is kept. Defaults are DVC's: cached, removed before the command runs, pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOpts {
    /// `cache: false`: not stored, so never restored; deleted means the stage runs again.
    pub cache: bool,
    /// `persist: true`: left in place while the command runs (incremental stages).
    pub persist: bool,
    /// `push: false`: not sent to a remote.
    pub push: bool,
}

impl Default for OutOpts {
    fn default() -> Self {
        OutOpts {
            cache: true,
            persist: false,
            push: true,
        }
    }
}

/// A stage's run options; all default to off.
#[derive(Debug, Clone, Default)]
pub struct RunOpts {
    /// `frozen: true`: never runs; its outputs must exist.
    pub frozen: bool,
    /// `always_changed: true`, or a command with neither deps nor outputs: runs every time.
    pub always_changed: bool,
    /// The folder the command runs in, relative to the project root (`""`: the root).
    pub wdir: String,
    /// The command's lines, run one after another, each by its own `sh -c`, stopping at the
    /// first that fails (DVC: a list, or a string's lines). Empty for built-in kinds.
    pub lines: Vec<String>,
    /// Outputs with options other than the defaults.
    pub outs: BTreeMap<String, OutOpts>,
    /// The `foreach`/`matrix` stage this stage was generated from.
    pub group: Option<String>,
}

impl RunOpts {
    pub fn out(&self, path: &str) -> OutOpts {
        self.outs.get(path).copied().unwrap_or_default()
    }

    /// Whether the stage's outputs may be taken from the cache instead of running it. DVC's run
    /// cache does not for always-changed stages or persisted outputs (`_can_hash`); it does for
    /// uncached outputs, which it commits to the run cache (`_uncached_outs`).
    pub fn restorable(&self) -> bool {
        !self.always_changed && self.outs.values().all(|o| !o.persist)
    }
}

/// A dep DVC fetches from elsewhere (`s3://`, `https://`, `remote://`...): repro reads only
/// files of the project.
pub fn is_url(raw: &str) -> bool {
    raw.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    })
}

/// Files DVC owns in a project: no output may replace them.
pub fn dvc_owned(out: &str) -> bool {
    out == "dvc.lock" || out == "dvc.yaml" || repro_kind::paths::path_within(out, ".dvc")
}

/// Whether `file` is a missing `dvc.yaml` at the root of a DVC project (a `.dvc` folder beside
/// it) whose pipelines all live in subfolders.
pub fn only_nested_pipelines(file: &Path, root: &Path) -> bool {
    file.file_name().is_some_and(|n| n == "dvc.yaml")
        && !file.exists()
        && root.join(".dvc").is_dir()
        && !nested_pipelines(root).is_empty()
}

/// The `dvc.yaml` files in subfolders of `root` (relative paths, sorted), skipping hidden
/// folders, `cache/` and symbolic links, as DVC collects a repository's pipelines.
pub fn nested_pipelines(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![String::new()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(root.join(&dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Ok(ft) = e.file_type() else { continue };
            let rel = if dir.is_empty() {
                name.clone()
            } else {
                format!("{dir}/{name}")
            };
            if ft.is_dir() && !name.starts_with('.') && !(dir.is_empty() && name == "cache") {
                stack.push(rel);
            } else if ft.is_file() && name == "dvc.yaml" && !dir.is_empty() {
                found.push(rel);
            }
        }
    }
    found.sort();
    found
}

impl Cx<'_> {
    /// The stages of the `dvc.yaml` files in subfolders, named as DVC addresses them
    /// (`sub/dvc.yaml:train`), their paths relative to their own folder.
    pub(super) fn nested_stages(&mut self) -> Vec<super::model::Stage> {
        let mut out = Vec::new();
        for rel in nested_pipelines(&self.root) {
            let folder = rel
                .trim_end_matches("dvc.yaml")
                .trim_end_matches('/')
                .to_string();
            let path = self.root.join(&rel);
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    let d = repro_kind::diag::Diagnostic::new(format!(
                        "cannot read pipeline file `{rel}`"
                    ))
                    .cause(e.to_string());
                    self.diags.push(d);
                    continue;
                }
            };
            let outer = std::mem::replace(&mut self.file, path);
            let outer_text = std::mem::replace(&mut self.text, text.clone());
            self.base = folder.clone();
            match crate::yaml::parse(&text) {
                Err(e) => {
                    let d = repro_kind::diag::Diagnostic::new(format!("invalid yaml in `{rel}`"))
                        .at(e.pos.map(|p| self.loc(p)))
                        .cause(e.message);
                    self.diags.push(d);
                }
                Ok(doc) => {
                    let doc = if super::template::uses_templates(&text) {
                        self.expand(&doc, &folder)
                    } else {
                        doc
                    };
                    for mut stage in self.stages(&doc) {
                        stage.name = format!("{rel}:{}", stage.name);
                        stage.run.group = stage.run.group.map(|g| format!("{rel}:{g}"));
                        out.push(stage);
                    }
                }
            }
            self.base.clear();
            self.file = outer;
            self.text = outer_text;
        }
        out
    }

    /// A path of the current stage: relative to its folder, kept inside the project; URLs are
    /// reported as unsupported.
    pub(super) fn stage_path(&mut self, raw: &str, pos: Pos, what: &str) -> Option<String> {
        if is_url(raw) {
            self.error(pos, format!("{what} `{raw}` is a URL, which repro does not fetch"))
                .hint = Some("download it in a stage of its own (e.g. `cmd: curl -o data/x URL`, `outs: [data/x]`) or with `dvc import-url`, and name the local file".into());
            return None;
        }
        let resolved = resolve_path(&self.base, raw);
        self.checked_path(resolved, raw, pos, what)
    }

    /// The resolved path, or `None` after reporting why it is invalid.
    fn checked_path(
        &mut self,
        resolved: Result<String, String>,
        raw: &str,
        pos: Pos,
        what: &str,
    ) -> Option<String> {
        match resolved {
            Ok(p) => Some(p),
            Err(why) => {
                let d = self.error(pos, format!("invalid path `{raw}` in {what}"));
                d.causes.push(why);
                d.hint = Some("paths are relative to the pipeline file's folder (or the stage's `wdir`) and stay inside the project".into());
                None
            }
        }
    }

    /// `outs`, `metrics` or `plots`: paths, each optionally `- path: {cache: false, persist:
    /// true, push: false, desc: ..., ...}` (plots also take their display properties).
    pub(super) fn outputs(
        &mut self,
        owner: &str,
        field: &str,
        v: &Node,
        opts: &mut BTreeMap<String, OutOpts>,
    ) -> Vec<String> {
        let items: Vec<&Node> = match &v.value {
            Value::Seq(items) => items.iter().collect(),
            Value::Null => Vec::new(),
            _ => vec![v],
        };
        let mut out = Vec::new();
        for item in items {
            let (raw, pos, flags) = match &item.value {
                Value::Str(s) => (s.clone(), item.pos, None),
                Value::Map(m) if m.len() == 1 => (m[0].0.name.clone(), m[0].0.pos, Some(&m[0].1)),
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
            let Some(path) = self.stage_path(&raw, pos, &format!("`{field}` of {owner}")) else {
                continue;
            };
            let o = self.out_flags(owner, field, &path, flags);
            if o != OutOpts::default() {
                opts.insert(path.clone(), o);
            }
            if out.contains(&path) {
                self.error(
                    pos,
                    format!("`{path}` is listed twice in `{field}` of {owner}"),
                );
            } else {
                out.push(path);
            }
        }
        out
    }

    fn out_flags(&mut self, owner: &str, field: &str, path: &str, flags: Option<&Node>) -> OutOpts {
        const OUT_KEYS: &[&str] = &[
            "cache",
            "persist",
            "push",
            "remote",
            "desc",
            "type",
            "labels",
            "meta",
            "checkpoint",
        ];
        const PLOT_KEYS: &[&str] = &[
            "template", "x", "y", "x_label", "y_label", "title", "header",
        ];
        let mut o = OutOpts::default();
        let Some(flags) = flags else { return o };
        let entries = match &flags.value {
            Value::Map(m) => m.as_slice(),
            Value::Null => &[],
            other => {
                self.error(flags.pos, format!("the options of `{path}` in `{field}` of {owner} must be a mapping, found {}", other.type_name()));
                return o;
            }
        };
        for (k, v) in entries {
            let slot = match k.name.as_str() {
                "cache" => &mut o.cache,
                "persist" => &mut o.persist,
                "push" => &mut o.push,
                name if OUT_KEYS.contains(&name)
                    || (field == "plots" && PLOT_KEYS.contains(&name)) =>
                {
                    continue
                }
                _ => {
                    let allowed: Vec<&str> = if field == "plots" {
                        OUT_KEYS.iter().chain(PLOT_KEYS).copied().collect()
                    } else {
                        OUT_KEYS.to_vec()
                    };
                    self.unknown_key(
                        k,
                        &format!("for `{path}` in `{field}` of {owner}"),
                        &allowed,
                    );
                    continue;
                }
            };
            match v.value {
                Value::Bool(b) => *slot = b,
                _ => {
                    self.error(
                        v.pos,
                        format!(
                            "`{}` of `{path}` in {owner} must be `true` or `false`",
                            k.name
                        ),
                    );
                }
            }
        }
        o
    }

    /// `frozen`/`always_changed`: a boolean.
    pub(super) fn flag(&mut self, owner: &str, field: &str, v: &Node) -> bool {
        match v.value {
            Value::Bool(b) => b,
            _ => {
                self.error(
                    v.pos,
                    format!("`{field}` of {owner} must be `true` or `false`"),
                );
                false
            }
        }
    }

    /// `wdir`: the folder the command runs in and its paths are relative to.
    pub(super) fn wdir(&mut self, owner: &str, v: &Node) -> Option<String> {
        let Value::Str(raw) = &v.value else {
            self.error(v.pos, format!("`wdir` of {owner} must be a folder path"));
            return None;
        };
        if raw.trim() == "." || raw.trim().is_empty() {
            return Some(self.base.clone());
        }
        let resolved = resolve_folder(&self.base, raw);
        self.checked_path(resolved, raw, v.pos, &format!("`wdir` of {owner}"))
    }
}

/// The lines a command runs as, as DVC splits it: a list's items, or a string's lines.
pub fn command_lines(cmd: &Node) -> Vec<String> {
    match &cmd.value {
        Value::Str(s) => s
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect(),
        Value::Seq(items) => items
            .iter()
            .filter_map(|i| match &i.value {
                Value::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_inside_the_project() {
        assert_eq!(resolve_path("sub", "../data/x.csv").unwrap(), "data/x.csv");
        assert_eq!(resolve_path("", "./a//b").unwrap(), "a/b");
        assert!(resolve_path("sub", "../../x").is_err());
        assert!(resolve_path("", "/etc/passwd").is_err());
        assert!(resolve_path("sub", "..").is_err());
    }

    #[test]
    fn a_folder_may_be_the_project_itself() {
        assert_eq!(resolve_folder("sub", "..").unwrap(), "");
        assert_eq!(resolve_folder("a/b", "../").unwrap(), "a");
        assert!(resolve_folder("sub", "../..").is_err());
        assert!(resolve_folder("", "/tmp").is_err());
    }

    #[test]
    fn urls_are_recognised() {
        assert!(is_url("s3://bucket/x"));
        assert!(is_url("https://example.org/x.csv"));
        assert!(!is_url("data/x.csv"));
    }
}
