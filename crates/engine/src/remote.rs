//! The shared cache as the engine sees it: the [`Remote`] trait and fetching a stage from it.
//!
//! Owns: the seam to a remote (S3-compatible storage or a shared folder, implemented outside the
//! engine by `repro-remote` and handed in by the binary), the remote's layout (objects and stage
//! records named as under `cache/`), fetching a stage's record and objects into the local store
//! with every object verified against its hash, and what `repro run` does when the remote fails
//! (a warning; the stage runs locally). Deliberately does not own: transport, credentials or
//! retries (the implementation), restoring into the workspace (`store`), or `repro push`/`pull`
//! (`share`).
//!
//! Layout on the remote, under its prefix or folder: `objects/ab/cdef…` (file contents and folder
//! manifests by blake3 hash) and `stages/<key>` (a stage record: `kind hash path` lines with
//! project-relative paths). Nothing else is written there, and nothing is ever replaced.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use repro_kind::diag::Diagnostic;

use crate::pipeline::Stage;
use crate::store::{self, ObjectStore, Output, Store};

/// What a failed remote operation says (never credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError(pub String);

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a create-only write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Created,
    /// Something already had that name; the remote kept it (writes never replace).
    Existed,
}

/// A shared cache. Writes are create-only: an existing object or record is never replaced
/// (S3 `If-None-Match: *`, or a link/no-replace rename in a folder), so concurrent pushes of the
/// same results are safe. Implementations must be usable from several threads at once.
pub trait Remote: Send + Sync {
    /// The remote as the user wrote it (`s3://bucket/prefix`, a folder), for messages.
    fn describe(&self) -> String;
    /// The stage record stored under `key`; `None` when the remote has none.
    fn get_record(&self, key: &str) -> Result<Option<Vec<u8>>, RemoteError>;
    /// Creates record `key` unless one exists.
    fn put_record(&self, key: &str, bytes: &[u8]) -> Result<Put, RemoteError>;
    /// Whether object `hash` exists.
    fn has_object(&self, hash: &str) -> Result<bool, RemoteError>;
    /// Downloads object `hash` into the new file `dest` (unverified: the caller checks the
    /// hash), calling `progress` with byte counts as they arrive. False when there is no such
    /// object.
    fn get_object(
        &self,
        hash: &str,
        dest: &Path,
        progress: &dyn Fn(u64),
    ) -> Result<bool, RemoteError>;
    /// Uploads the file `src` as object `hash` unless it exists. When it exists, the
    /// implementation checks what it can cheaply (its size) and reports a mismatch as an error.
    fn put_object(&self, hash: &str, src: &Path) -> Result<Put, RemoteError>;
}

/// A remote handed to the runner. Its `Debug` shows only [`Remote::describe`], so no
/// configuration (or credential) an implementation holds can reach a log.
#[derive(Clone)]
pub struct RemoteHandle(pub Arc<dyn Remote>);

impl fmt::Debug for RemoteHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Remote({})", self.0.describe())
    }
}

/// Why fetching from the remote did not give a stage's outputs.
#[derive(Debug)]
pub enum Miss {
    /// The remote has no record for the key (or lacks an object a record names).
    Absent,
    /// An object's content does not match its hash, or the record is malformed: not restored.
    Damaged(String),
    /// The remote could not be read.
    Failed(RemoteError),
    /// The local cache could not be written.
    Local(std::io::Error),
}

impl From<RemoteError> for Miss {
    fn from(e: RemoteError) -> Self {
        Miss::Failed(e)
    }
}

/// Reports bytes and objects as they are transferred (a display implements it; called from
/// several threads).
pub trait Meter: Sync {
    fn bytes(&self, n: u64);
    fn object_done(&self);
}

/// A meter that shows nothing.
pub struct Silent;

impl Meter for Silent {
    fn bytes(&self, _: u64) {}
    fn object_done(&self) {}
}

/// Downloads object `hash` into the local store unless it is there, verified against its hash.
pub fn fetch_object(
    remote: &dyn Remote,
    store: &Store,
    hash: &str,
    meter: &dyn Meter,
) -> Result<(), Miss> {
    if store.has(hash) {
        return Ok(());
    }
    let tmp = store.scratch_path("fetch").map_err(Miss::Local)?;
    let found = remote.get_object(hash, &tmp, &|n| meter.bytes(n));
    let found = found.inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    if !found {
        return Err(Miss::Absent);
    }
    meter.object_done();
    match store.import_object(&tmp, hash) {
        Ok(()) => Ok(()),
        Err(e) if store::is_damaged(&e) => Err(Miss::Damaged(format!(
            "remote object `{}` does not match its hash",
            object_key(hash)
        ))),
        Err(e) => Err(Miss::Local(e)),
    }
}

/// The objects a folder output needs besides its manifest (the manifest must be local).
pub fn manifest_objects(store: &Store, out: &Output) -> Result<Vec<String>, Miss> {
    store
        .manifest(&out.hash)
        .map(|files| files.into_iter().map(|f| f.hash).collect())
        .ok_or_else(|| Miss::Damaged(format!("the manifest of `{}` cannot be read", out.path)))
}

/// Brings every object the outputs need into the local store: file objects and folder
/// manifests first, then the files the manifests list.
pub fn fetch_outputs(
    remote: &dyn Remote,
    store: &Store,
    outs: &[Output],
    meter: &dyn Meter,
) -> Result<(), Miss> {
    for o in outs {
        fetch_object(remote, store, &o.hash, meter)?;
    }
    let mut files = BTreeSet::new();
    for o in outs.iter().filter(|o| o.is_dir) {
        files.extend(manifest_objects(store, o)?);
    }
    for h in &files {
        fetch_object(remote, store, h, meter)?;
    }
    Ok(())
}

/// The key of object `hash` on the remote, relative to its prefix or folder.
pub fn object_key(hash: &str) -> String {
    let (a, b) = hash.split_at(2.min(hash.len()));
    format!("objects/{a}/{b}")
}

/// A remote record for `stage` is used only when it names exactly the stage's outputs: a record
/// is data from elsewhere and must not write anywhere else in the project.
pub fn parse_remote_record(stage: &Stage, bytes: &[u8]) -> Result<Vec<Output>, Miss> {
    let bad = || {
        Miss::Damaged(format!(
            "the remote record of stage `{}` is malformed or names other outputs",
            stage.name
        ))
    };
    let text = std::str::from_utf8(bytes).map_err(|_| bad())?;
    let outs = store::parse_record(text, &stage.outs).ok_or_else(bad)?;
    let named: BTreeSet<&str> = outs.iter().map(|o| o.path.as_str()).collect();
    let declared: BTreeSet<&str> = stage.outs.iter().map(String::as_str).collect();
    let hashes_ok = outs
        .iter()
        .all(|o| o.hash.len() == 64 && o.hash.bytes().all(|b| b.is_ascii_hexdigit()));
    if named != declared || named.len() != outs.len() || !hashes_ok {
        return Err(bad());
    }
    Ok(outs)
}

/// The remote during one `repro run`: consulted for stages whose key the local cache does not
/// know. The first failure to reach it turns it off for the rest of the run (one warning), so
/// an offline laptop does not wait on every stage.
pub struct Session {
    remote: Arc<dyn Remote>,
    off: AtomicBool,
    fetched: AtomicUsize,
    warnings: Mutex<Vec<Diagnostic>>,
}

impl Session {
    pub fn new(handle: &RemoteHandle) -> Session {
        Session {
            remote: Arc::clone(&handle.0),
            off: AtomicBool::new(false),
            fetched: AtomicUsize::new(0),
            warnings: Mutex::new(Vec::new()),
        }
    }

    /// How many stages' outputs came from the remote.
    pub fn fetched(&self) -> usize {
        self.fetched.load(Ordering::Relaxed)
    }

    /// Warnings gathered since the last call, in the order they happened.
    pub fn take_warnings(&self) -> Vec<Diagnostic> {
        std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn warn(&self, d: Diagnostic) {
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(d);
    }

    /// The outputs `key` produced, fetched into the local store and recorded there; `None`
    /// when the remote does not have them (or cannot be used: then a warning says why and the
    /// stage runs locally).
    pub fn fetch_stage(&self, store: &Store, stage: &Stage, key: &str) -> Option<Vec<Output>> {
        if self.off.load(Ordering::Relaxed) {
            return None;
        }
        let result = self
            .remote
            .get_record(key)
            .map_err(Miss::Failed)
            .and_then(|rec| match rec {
                None => Err(Miss::Absent),
                Some(bytes) => parse_remote_record(stage, &bytes),
            })
            .and_then(|outs| {
                fetch_outputs(self.remote.as_ref(), store, &outs, &Silent).map_err(
                    |m| match m {
                        Miss::Absent => Miss::Damaged(
                            "the remote has the stage's record but not every object it names"
                                .into(),
                        ),
                        m => m,
                    },
                )?;
                store.record_stage(key, &outs).map_err(Miss::Local)?;
                Ok(outs)
            });
        let remote = self.remote.describe();
        match result {
            Ok(outs) => {
                self.fetched.fetch_add(1, Ordering::Relaxed);
                tracing::info!("stage `{}`: fetched from remote `{remote}`", stage.name);
                Some(outs)
            }
            Err(Miss::Absent) => None,
            Err(Miss::Damaged(why)) => {
                self.warn(
                    Diagnostic::new(format!(
                        "stage `{}`: not restored from remote `{remote}`",
                        stage.name
                    ))
                    .cause(why)
                    .hint("the stage runs instead; remove the damaged object on the remote"),
                );
                None
            }
            Err(Miss::Failed(e)) => {
                if !self.off.swap(true, Ordering::Relaxed) {
                    self.warn(
                        Diagnostic::new(format!("cannot use remote `{remote}`"))
                            .cause(e.0)
                            .hint(
                                "stages run locally for the rest of this run; check the network, \
                                 the endpoint and the AWS credentials in the environment",
                            ),
                    );
                }
                None
            }
            Err(Miss::Local(e)) => {
                self.warn(
                    Diagnostic::new(format!(
                        "stage `{}`: cannot store what remote `{remote}` sent",
                        stage.name
                    ))
                    .cause(e.to_string()),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::parse_pipeline;
    use std::path::Path;

    fn stage() -> Stage {
        let p = parse_pipeline(
            Path::new("pipeline.yaml"),
            Path::new("."),
            "stages:\n  a:\n    cmd: x\n    outs: [out/a.csv, out/dir]\n",
            &repro_kind::stage::NoKinds,
        )
        .unwrap();
        p.stages[0].clone()
    }

    #[test]
    fn a_remote_record_must_name_exactly_the_declared_outputs() {
        let h = "ab".repeat(32);
        let good = format!("file {h} out/a.csv\ndir {h} out/dir\n");
        assert_eq!(
            parse_remote_record(&stage(), good.as_bytes())
                .unwrap()
                .len(),
            2
        );
        for bad in [
            format!("file {h} out/a.csv\n"),
            format!("file {h} out/a.csv\ndir {h} /etc\n"),
            format!("file {h} out/a.csv\ndir {h} out/dir\nfile {h} ../x\n"),
            format!("file {h} out/a.csv\ndir {h} out/dir\ndir {h} out/dir\n"),
            format!("file xyz out/a.csv\ndir {h} out/dir\n"),
            format!("link {h} out/a.csv\ndir {h} out/dir\n"),
        ] {
            assert!(
                matches!(
                    parse_remote_record(&stage(), bad.as_bytes()),
                    Err(Miss::Damaged(_))
                ),
                "{bad}"
            );
        }
    }
}
