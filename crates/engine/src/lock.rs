//! `repro.lock`: what each stage was last built from and what it produced.
//!
//! Owns: the lock file's format (pretty-printed JSON text, stages sorted by name, nothing volatile:
//! no times, no absolute paths, no host or user), reading it, writing it atomically, and how often a run rewrites it (`Saves`). Meant to
//! be committed. JSON rather than YAML because `repro status` reads it on every call and a JSON
//! parser reads a 1,000-stage lock about ten times faster. Deliberately does not own: deciding staleness (`planner`) or run times (the run log
//! under `cache/`).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use repro_kind::diag::{Diagnostic, Failure};

/// Bumped when the lock file's layout changes.
pub const LOCK_FORMAT: u32 = 1;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    pub format: u32,
    /// The repro version that wrote the file.
    pub engine: String,
    pub stages: BTreeMap<String, LockEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockEntry {
    pub key: String,
    /// The command template (for command stages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// The built-in kind and its canonical definition (for built-in stages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deps: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outs: BTreeMap<String, LockOut>,
    /// The seed a command stage declares (`seed:`); built-in kinds keep theirs in `kind`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The code fingerprint of the kind a built-in stage was built with (`key::code_fingerprint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// A built-in stage's spec files, field by field (`fields::flatten`), so `repro status` can
    /// say which field changed. Not in the key: the file's hash under `deps` is.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub spec: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockOut {
    pub hash: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dir: bool,
}

impl LockFile {
    pub fn empty() -> LockFile {
        LockFile {
            format: LOCK_FORMAT,
            engine: engine_version(),
            stages: BTreeMap::new(),
        }
    }
}

pub fn engine_version() -> String {
    format!("repro {}", env!("CARGO_PKG_VERSION"))
}

/// Reads the lock file; a missing file is an empty lock.
pub fn read(path: &Path) -> Result<LockFile, Failure> {
    let bytes = match fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LockFile::empty()),
        Err(e) => return Err(Failure::io(format!("cannot read `{}`", path.display()), &e)),
    };
    // Every way a lock can be damaged (not UTF-8, not JSON, a field missing or of the wrong
    // type) is the same error with the same exit code (2).
    let damaged = |why: String| {
        Failure::usage(
            Diagnostic::new(format!("the lock file `{}` is damaged", path.display()))
                .cause(why)
                .hint("restore it from version control, or delete it to rebuild every stage"),
        )
    };
    let text =
        String::from_utf8(bytes).map_err(|e| damaged(format!("it is not UTF-8 text: {e}")))?;
    serde_json::from_str::<LockFile>(&text).map_err(|e| damaged(e.to_string()))
}

/// Renders the lock file text; equal locks give byte-identical text.
pub fn render(lock: &LockFile) -> String {
    let mut out = serde_json::to_string_pretty(lock).unwrap_or_default();
    out.push('\n');
    out
}

/// Writes the lock file through a temporary file and a rename, so readers never see half of it.
pub fn write(path: &Path, lock: &LockFile) -> io::Result<()> {
    let text = render(lock);
    if fs::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
        return Ok(());
    }
    let tmp = path.with_extension("lock.tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// When a run rewrites the lock. The lock is rewritten whole, so rewriting it after
/// every finished stage costs time in the square of the stage count on a large pipeline; instead
/// it is rewritten at once when nothing else runs, and otherwise once the time since the last
/// save is ten times what that save took (at most a tenth of the run goes to the lock). A stage
/// finished but not yet in the lock when repro is killed is not lost: its outputs are in the
/// cache under its key, and the next run restores them.
#[derive(Default)]
pub struct Saves {
    pub unsaved: bool,
    last: Option<(std::time::Instant, std::time::Duration)>,
}

impl Saves {
    /// True when the lock should be saved now (`idle`: no stage is running).
    pub fn due(&self, idle: bool) -> bool {
        self.unsaved && (idle || self.last.is_none_or(|(at, took)| at.elapsed() >= took * 10))
    }

    pub fn save(&mut self, path: &Path, lockfile: &LockFile) -> std::io::Result<()> {
        let started = std::time::Instant::now();
        write(path, lockfile)?;
        self.unsaved = false;
        self.last = Some((std::time::Instant::now(), started.elapsed()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_stable() {
        let mut lock = LockFile::empty();
        let mut params = BTreeMap::new();
        params.insert("alpha".to_string(), "0.5".to_string());
        let mut deps = BTreeMap::new();
        deps.insert("data/in.csv".to_string(), "ab".repeat(32));
        let mut outs = BTreeMap::new();
        outs.insert(
            "out: a.csv".to_string(),
            LockOut {
                hash: "cd".repeat(32),
                dir: false,
            },
        );
        lock.stages.insert(
            "b".into(),
            LockEntry {
                key: "ef".repeat(32),
                cmd: Some("echo '${params.alpha}' > \"x\"".into()),
                kind: None,
                params,
                deps,
                outs,
                seed: Some(7),
                engine: None,
                spec: BTreeMap::new(),
            },
        );
        let text = render(&lock);
        let back: LockFile = serde_json::from_str(&text).unwrap();
        assert_eq!(back, lock);
        assert_eq!(render(&back), text);
    }
}
