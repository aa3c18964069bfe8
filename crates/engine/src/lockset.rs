//! The lock files whose stages keep objects in a project's `cache/`, so `repro gc` keeps what
//! every pipeline of the project needs, not only the one it was given.
//!
//! Owns: the register `cache/locks` (one lock file name a line, relative to the project folder,
//! sorted) that every run adds its lock to, and finding every lock that uses the cache: the
//! registered ones, the current pipeline's, and any `*.lock` beside them that is a repro lock
//! (pipelines run by a repro older than the register). Deliberately does not own: reading one
//! lock (`lock`) or deleting objects (`store`).
//!
//! Several pipelines of one project (`repro run -f other.yaml`) share `cache/`, because the cache
//! folder is the project's, not the pipeline's; their locks live beside their pipeline files
//! (`x.yaml` -> `x.lock`) in the project folder.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::Path;

use repro_kind::diag::Failure;

use crate::lock::{self, LockFile};

/// The register, relative to the project folder.
pub const REGISTER: &str = "cache/locks";

/// Adds `lock` (a file in `root`) to the register; called by a run that holds the project lock,
/// so no two writers race. Written to a temporary file and renamed.
pub fn register(root: &Path, lock: &Path) -> io::Result<()> {
    let Some(name) = lock.file_name().and_then(|n| n.to_str()) else {
        return Ok(());
    };
    let mut names = registered(root)?;
    if !names.insert(name.to_string()) {
        return Ok(());
    }
    write_register(root, &names)
}

/// The names the register lists (none when it does not exist yet).
pub fn registered(root: &Path) -> io::Result<BTreeSet<String>> {
    match fs::read_to_string(root.join(REGISTER)) {
        Ok(text) => Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(e) => Err(e),
    }
}

fn write_register(root: &Path, names: &BTreeSet<String>) -> io::Result<()> {
    let path = root.join(REGISTER);
    let tmp = root.join(format!("{REGISTER}.tmp"));
    let mut text = String::new();
    for n in names {
        text.push_str(n);
        text.push('\n');
    }
    fs::create_dir_all(root.join("cache"))?;
    fs::write(&tmp, text)?;
    fs::rename(&tmp, &path)
}

/// Every lock that uses the project's cache.
pub struct LockSet {
    /// Lock file name and its content, sorted by name.
    pub locks: Vec<(String, LockFile)>,
    /// Registered locks whose file no longer exists (their pipeline's objects are not kept).
    pub gone: Vec<String>,
}

/// Finds and reads every lock that uses `root`'s cache: the registered ones, `current` (the
/// given pipeline's lock) and every other `*.lock` in `root` that reads as a repro lock. A
/// registered lock that is damaged is an error (exit 2): `gc` would otherwise delete what its
/// pipeline needs. A `*.lock` of another tool (`Cargo.lock`) is not repro's and is skipped.
pub fn find(root: &Path, current: &Path) -> Result<LockSet, Failure> {
    let io_err = |e: io::Error| Failure::io(format!("cannot read `{REGISTER}`"), &e);
    let mut names = registered(root).map_err(io_err)?;
    if let Some(n) = current.file_name().and_then(|n| n.to_str()) {
        names.insert(n.to_string());
    }
    let mut set = LockSet {
        locks: Vec::new(),
        gone: Vec::new(),
    };
    for name in &names {
        let path = root.join(name);
        if !path.exists() {
            if path != current {
                set.gone.push(name.clone());
            }
            continue;
        }
        set.locks.push((name.clone(), lock::read(&path)?));
    }
    for (name, lock) in unregistered_repro_locks(root, &names)? {
        set.locks.push((name, lock));
    }
    set.locks.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(set)
}

/// `*.lock` files in `root` not in the register that read as repro locks. One that names repro
/// as its writer but does not read is damaged: an error, as for a registered one.
fn unregistered_repro_locks(
    root: &Path,
    names: &BTreeSet<String>,
) -> Result<Vec<(String, LockFile)>, Failure> {
    let entries = fs::read_dir(root)
        .map_err(|e| Failure::io(format!("cannot list `{}`", root.display()), &e))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(String::from) else {
            continue;
        };
        if !name.ends_with(".lock") || names.contains(&name) || !entry.path().is_file() {
            continue;
        }
        let Ok(text) = fs::read(entry.path()) else {
            continue;
        };
        let text = String::from_utf8_lossy(&text);
        if let Ok(lock) = serde_json::from_str::<LockFile>(&text) {
            out.push((name, lock));
        } else if text.contains("\"engine\": \"repro") {
            lock::read(&entry.path())?;
        }
    }
    Ok(out)
}

/// Drops names of locks that no longer exist from the register (after `gc`).
pub fn forget(root: &Path, gone: &[String]) -> io::Result<()> {
    if gone.is_empty() {
        return Ok(());
    }
    let mut names = registered(root)?;
    for g in gone {
        names.remove(g);
    }
    write_register(root, &names)
}
