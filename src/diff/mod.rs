//! `repro diff`: what changed in the results between two locks of one pipeline.
//!
//! Owns: walking two locks output by output (folders through their manifests), fetching the
//! objects a comparison needs (the local cache first, then the pipeline's remote, every object
//! verified against its hash), and sorting what differs into model results (compared cell by
//! cell in `results`), data files (row counts) and other files, plus what could not be compared
//! and why. Deliberately does not own: where the other lock comes from (`source`), the cell rules
//! (`results`), or printing (`render`). Only what the locks name is read: the workspace is not.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use repro_engine::fsstate;
use repro_engine::lock::LockFile;
use repro_engine::pipeline::{Pipeline, RemoteSpec};
use repro_engine::remote::{self, Miss, Remote, Silent};
use repro_engine::store::{ObjectStore, Store};
use repro_kind::diag::{Diagnostic, Failure};
use repro_tabular::dataio::Format;

pub mod render;
mod results;
pub mod source;

pub use results::Cell;

/// Everything that differs between two locks.
#[derive(Debug, Default, Serialize)]
pub struct Changes {
    /// The two states, as the user named them (`HEAD:repro.lock`, `repro.lock`).
    pub old: String,
    pub new: String,
    /// Model results, by results folder (`output/results/NAME`).
    pub tables: Vec<Table>,
    /// CSV and Parquet outputs outside `output/tables/`, with their row counts.
    pub data: Vec<DataFile>,
    /// Every other output file that differs.
    pub files: Vec<FileChange>,
    /// Outputs that differ but could not be compared, and why.
    pub not_compared: Vec<NotCompared>,
}

impl Changes {
    /// True when the two locks name the same outputs with the same content.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
            && self.data.is_empty()
            && self.files.is_empty()
            && self.not_compared.is_empty()
    }
}

#[derive(Debug, Serialize)]
pub struct Table {
    /// The results folder, e.g. `output/results/baseline`.
    pub results: String,
    pub stage: String,
    pub models: Vec<Model>,
}

#[derive(Debug, Serialize)]
pub struct Model {
    /// The result file's name without `.json`: the model's id in its table.
    pub model: String,
    pub file: String,
    /// `model`, or `difference` for a difference test between two models.
    pub kind: &'static str,
    pub status: Status,
    /// The changed cells (empty for a new or removed model).
    pub cells: Vec<Cell>,
    /// N of a new or removed model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nobs: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Changed,
    New,
    Removed,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Changed => "changed",
            Status::New => "new",
            Status::Removed => "removed",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct DataFile {
    pub path: String,
    pub stage: String,
    pub status: Status,
    pub old_rows: Option<usize>,
    pub new_rows: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct FileChange {
    pub path: String,
    pub stage: String,
    pub status: Status,
}

#[derive(Debug, Serialize)]
pub struct NotCompared {
    pub path: String,
    pub stage: String,
    pub reason: String,
}

/// Where objects come from: the local cache, then the remote if there is one.
pub struct Objects<'a> {
    pub store: &'a Store,
    /// The pipeline's `remote:`, opened the first time an object is missing locally.
    pub spec: Option<&'a RemoteSpec>,
    /// The opened remote, or why it cannot be used; after the first failure to read it, that
    /// failure stands for the rest of the comparison (an offline laptop does not wait on every
    /// object).
    remote: RefCell<Option<Result<Arc<dyn Remote>, String>>>,
}

impl<'a> Objects<'a> {
    pub fn new(store: &'a Store, spec: Option<&'a RemoteSpec>) -> Objects<'a> {
        Objects {
            store,
            spec,
            remote: RefCell::new(None),
        }
    }

    /// Fetches `hash` from the remote into the local store.
    fn fetch_remote(&self, spec: &RemoteSpec, hash: &str, what: &str) -> Result<(), String> {
        let mut slot = self.remote.borrow_mut();
        let remote = slot.get_or_insert_with(|| repro_remote::open(spec).map_err(|d| one_line(&d)));
        let r = match remote {
            Ok(r) => Arc::clone(r),
            Err(why) => {
                return Err(format!(
                    "{what} is not in the local cache and the remote cannot be used: {why}"
                ))
            }
        };
        let name = r.describe();
        remote::fetch_object(r.as_ref(), self.store, hash, &Silent).map_err(|m| match m {
            Miss::Absent => {
                format!("{what} is neither in the local cache nor on remote `{name}`")
            }
            Miss::Damaged(why) => format!("{what} from remote `{name}` was not used: {why}"),
            Miss::Failed(e) => {
                *slot = Some(Err(format!("remote `{name}` cannot be read: {e}")));
                format!("{what} is not in the local cache and remote `{name}` cannot be read: {e}")
            }
            Miss::Local(e) => format!("{what} cannot be stored in the local cache: {e}"),
        })
    }
}

/// Which state an object belongs to, for messages.
#[derive(Clone, Copy)]
enum Side {
    Old,
    New,
}

impl Side {
    fn word(self) -> &'static str {
        match self {
            Side::Old => "old",
            Side::New => "new",
        }
    }
}

impl Objects<'_> {
    /// The path of object `hash` in the local cache, fetched from the remote when missing there,
    /// and checked against its hash; `Err` says why it is not available.
    fn get(&self, hash: &str, side: Side) -> Result<PathBuf, String> {
        let short = &hash[..hash.len().min(12)];
        let what = format!("the {} object `{short}`", side.word());
        if !self.store.has(hash) {
            let Some(spec) = self.spec else {
                return Err(format!(
                    "{what} is not in the local cache and the pipeline names no `remote:`"
                ));
            };
            self.fetch_remote(spec, hash, &what)?;
        }
        let path = self.store.object_file(hash);
        match fsstate::hash_file(&path) {
            Ok(h) if h == hash => Ok(path),
            Ok(_) => Err(format!("{what} in the local cache does not match its hash")),
            Err(e) => Err(format!("{what} cannot be read: {e}")),
        }
    }
}

/// A diagnostic as one reason: its message and causes.
fn one_line(d: &Diagnostic) -> String {
    std::iter::once(d.message.as_str())
        .chain(d.causes.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(": ")
}

/// One output file of a lock: its stage and content hash.
#[derive(Clone)]
struct Entry {
    stage: String,
    hash: String,
}

/// The output files of a lock (folders expanded through their manifests); folders whose
/// manifest is not available go to `missing` with the reason.
fn files_of(
    lock: &LockFile,
    objects: &Objects<'_>,
    side: Side,
    skip: &BTreeSet<(String, String)>,
    missing: &mut Vec<NotCompared>,
) -> BTreeMap<String, Entry> {
    let mut files = BTreeMap::new();
    for (stage, entry) in &lock.stages {
        for (path, out) in &entry.outs {
            if skip.contains(&(path.clone(), out.hash.clone())) {
                continue;
            }
            let at = |hash: &str| Entry {
                stage: stage.clone(),
                hash: hash.to_string(),
            };
            if !out.dir {
                files.insert(path.clone(), at(&out.hash));
                continue;
            }
            let manifest = objects.get(&out.hash, side).and_then(|_| {
                objects
                    .store
                    .manifest(&out.hash)
                    .ok_or_else(|| format!("the {} folder manifest is damaged", side.word()))
            });
            match manifest {
                Ok(list) => {
                    for f in list {
                        files.insert(format!("{path}/{}", f.rel), at(&f.hash));
                    }
                }
                Err(reason) => missing.push(NotCompared {
                    path: path.clone(),
                    stage: stage.clone(),
                    reason,
                }),
            }
        }
    }
    files
}

/// Compares `old` (named `label`) with the pipeline's current lock, taking objects from the
/// local cache and, when missing there, from the pipeline's remote.
pub fn with_current(p: &Pipeline, old: &LockFile, label: &str) -> Result<Changes, Failure> {
    let lock_path = p.lock_path();
    let current = repro_engine::lock::read(&lock_path)?;
    let store = Store::new(&p.root);
    let objects = Objects::new(&store, p.remote.as_ref());
    let mut changes = compare(old, &current, &objects);
    changes.old = label.to_string();
    changes.new = lock_file_name(p);
    Ok(changes)
}

/// The lock's file name (`repro.lock`, `other.lock` for `-f other.yaml`).
pub fn lock_file_name(p: &Pipeline) -> String {
    p.lock_path()
        .file_name()
        .map_or_else(|| "repro.lock".into(), |n| n.to_string_lossy().to_string())
}

/// Compares the outputs of `old` with those of `new`.
pub fn compare(old: &LockFile, new: &LockFile, objects: &Objects<'_>) -> Changes {
    // Outputs with the same hash in both locks are the same: not even their manifests are read.
    let same = |a: &LockFile, b: &LockFile| -> BTreeSet<(String, String)> {
        let outs = |l: &LockFile| -> BTreeSet<(String, String)> {
            l.stages
                .values()
                .flat_map(|e| e.outs.iter().map(|(p, o)| (p.clone(), o.hash.clone())))
                .collect()
        };
        outs(a).intersection(&outs(b)).cloned().collect()
    };
    let skip = same(old, new);
    let mut changes = Changes::default();
    let mut missing = Vec::new();
    let old_files = files_of(old, objects, Side::Old, &skip, &mut missing);
    let new_files = files_of(new, objects, Side::New, &skip, &mut missing);
    let paths: BTreeSet<&String> = old_files.keys().chain(new_files.keys()).collect();
    let mut tables: BTreeMap<String, Table> = BTreeMap::new();
    for path in paths {
        let (o, n) = (old_files.get(path), new_files.get(path));
        if o.map(|e| &e.hash) == n.map(|e| &e.hash) {
            continue;
        }
        let stage = n.or(o).map(|e| e.stage.clone()).unwrap_or_default();
        let status = match (o, n) {
            (None, _) => Status::New,
            (_, None) => Status::Removed,
            _ => Status::Changed,
        };
        let file = FilePair {
            path,
            stage: &stage,
            status,
            old: o,
            new: n,
        };
        if let Err(reason) = classify(&file, objects, &mut changes, &mut tables) {
            missing.push(NotCompared {
                path: path.clone(),
                stage,
                reason,
            });
        }
    }
    changes.tables = tables.into_values().collect();
    missing.sort_by(|a, b| a.path.cmp(&b.path));
    changes.not_compared = missing;
    changes
}

/// One output file that differs between the locks.
struct FilePair<'a> {
    path: &'a str,
    stage: &'a str,
    status: Status,
    old: Option<&'a Entry>,
    new: Option<&'a Entry>,
}

/// Files under this folder are the table kinds' renderings; their cells are compared through
/// the result JSON files.
const RENDERINGS: &str = "output/tables/";

/// Puts one differing file where it belongs: a model result, a data file or another file.
fn classify(
    f: &FilePair<'_>,
    objects: &Objects<'_>,
    changes: &mut Changes,
    tables: &mut BTreeMap<String, Table>,
) -> Result<(), String> {
    let ext = Path::new(f.path)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let format = match ext.as_str() {
        "csv" => Some(Format::Csv),
        "parquet" | "pq" => Some(Format::Parquet),
        _ => None,
    };
    if ext == "json" {
        let read = |e: Option<&Entry>, side| -> Result<Option<serde_json::Value>, String> {
            let Some(e) = e else { return Ok(None) };
            let path = objects.get(&e.hash, side)?;
            let bytes = std::fs::read(&path).map_err(|err| err.to_string())?;
            Ok(serde_json::from_slice(&bytes).ok())
        };
        let (old, new) = (read(f.old, Side::Old)?, read(f.new, Side::New)?);
        let is_model = |v: &Option<serde_json::Value>| {
            v.as_ref()
                .is_some_and(|v| results::is_model(v) || results::is_test(v))
        };
        if (is_model(&old) || is_model(&new)) && add_model(f, old, new, tables) {
            return Ok(());
        }
    } else if let Some(format) = format.filter(|_| !f.path.starts_with(RENDERINGS)) {
        let rows = |e: Option<&Entry>, side| -> Result<Option<usize>, String> {
            let Some(e) = e else { return Ok(None) };
            let path = objects.get(&e.hash, side)?;
            repro_tabular::dataio::row_count(&path, format)
                .map(Some)
                .map_err(|d| one_line(&d))
        };
        changes.data.push(DataFile {
            path: f.path.to_string(),
            stage: f.stage.to_string(),
            status: f.status,
            old_rows: rows(f.old, Side::Old)?,
            new_rows: rows(f.new, Side::New)?,
        });
        return Ok(());
    }
    changes.files.push(FileChange {
        path: f.path.to_string(),
        stage: f.stage.to_string(),
        status: f.status,
    });
    Ok(())
}

fn add_model(
    f: &FilePair<'_>,
    old: Option<serde_json::Value>,
    new: Option<serde_json::Value>,
    tables: &mut BTreeMap<String, Table>,
) -> bool {
    let path = Path::new(f.path);
    let folder = path
        .parent()
        .map_or(String::new(), |p| p.display().to_string());
    let model = path
        .file_stem()
        .map_or(String::new(), |s| s.to_string_lossy().to_string());
    let (status, cells, nobs) = match (&old, &new) {
        (Some(o), Some(n)) => (Status::Changed, results::compare_any(o, n), None),
        (None, Some(n)) => (Status::New, Vec::new(), n["nobs"].as_u64()),
        (Some(o), None) => (Status::Removed, Vec::new(), o["nobs"].as_u64()),
        (None, None) => return false,
    };
    // A result rewritten with equal cells (a field the comparison does not read changed, such
    // as the covariance matrix) is listed as a changed file, not as a model.
    if status == Status::Changed && cells.is_empty() {
        return false;
    }
    tables
        .entry(folder.clone())
        .or_insert_with(|| Table {
            results: folder,
            stage: f.stage.to_string(),
            models: Vec::new(),
        })
        .models
        .push(Model {
            model,
            file: f.path.to_string(),
            kind: match new.as_ref().or(old.as_ref()) {
                Some(v) if results::is_model(v) => "model",
                _ => "difference",
            },
            status,
            cells,
            nobs,
        });
    true
}
