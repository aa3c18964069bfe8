//! `repro push` and `repro pull`: moving the results of stages between the local cache and a
//! remote.
//!
//! Owns: which stages are pushed (those up to date with `repro.lock`) and pulled (those with a
//! lock entry), the order of writes on the remote (every object of a stage before its record, so
//! a record on the remote means its objects were uploaded), checking a record that already
//! exists, transfers in parallel, and putting pulled outputs into the workspace. Deliberately
//! does not own: the transport (a [`Remote`]), verification on download (`remote`) or the
//! store's layout (`store`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use repro_kind::diag::{Diagnostic, Failure};

use crate::fsstate;
use crate::lock::{self, LockEntry, LockFile};
use crate::pipeline::Pipeline;
use crate::remote::{self, Meter, Miss, Put, Remote, RemoteError};
use crate::store::{self, ObjectStore, Output, ProjectLock, Store};

/// Transfers in flight at once: enough to hide request latency, few enough for a laptop link.
const TRANSFERS: usize = 8;

/// What a push or pull did, for the summary line.
#[derive(Debug, Default)]
pub struct ShareReport {
    /// Stages whose results were pushed or pulled.
    pub stages: usize,
    /// Objects transferred, and objects the other side already had.
    pub transferred: usize,
    pub present: usize,
    pub bytes: u64,
    /// Outputs put into the workspace (pull).
    pub restored: usize,
    /// Things that did not stop the command (stale stages not pushed, a differing record).
    pub warnings: Vec<Diagnostic>,
    /// Stages that could not be pushed or pulled; the others were. The command fails (exit 1)
    /// after its summary when there are any.
    pub errors: Vec<Diagnostic>,
}

/// One stage to share: its lock key and outputs.
struct Item {
    name: String,
    key: String,
    outs: Vec<Output>,
}

/// Uploads the objects and records of the selected stages that are up to date.
pub fn push(
    p: &Pipeline,
    selected: &[usize],
    remote: &dyn Remote,
    meter: &dyn Meter,
) -> Result<ShareReport, Failure> {
    let (store, _guard, lockfile) = begin(p)?;
    let statuses = crate::status::compute(p, selected)?;
    let mut report = ShareReport::default();
    let mut items = Vec::new();
    for st in &statuses {
        match lockfile.stages.get(&st.name) {
            Some(e) if !st.stale => items.push(item(&st.name, e)),
            _ => report.warnings.push(
                Diagnostic::new(format!("stage `{}` is not up to date; not pushed", st.name))
                    .hint("run `repro run` first, then push"),
            ),
        }
    }
    let mut errors = Vec::new();
    // Every object each stage needs, all of them local.
    let mut needs: Vec<Vec<String>> = Vec::new();
    for it in &items {
        let found: Result<Vec<String>, String> =
            local_objects(&store, &it.outs).or_else(|missing| {
                let stored = store_from_workspace(&store, &p.root, it).map_err(|_| missing)?;
                report.warnings.push(Diagnostic::new(format!(
                    "the cache lacked objects of stage `{}`; stored them again from the workspace",
                    it.name
                )));
                Ok(stored)
            });
        match found {
            Ok(hashes) => needs.push(hashes),
            Err(missing) => {
                errors.push(
                    Diagnostic::new(format!("stage `{}` cannot be pushed", it.name))
                        .cause(format!(
                            "cache object `{missing}` is not in the local cache"
                        ))
                        .cause("and the workspace's outputs no longer have the lock's hashes")
                        .hint("run `repro run --force` on the stage to store its outputs again"),
                );
                needs.push(Vec::new());
            }
        }
    }
    let unique: Vec<String> = needs
        .iter()
        .flatten()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let counts = Counts::default();
    let local = Local {
        store: &store,
        root: &p.root,
        items: &items,
    };
    let results = parallel(&unique, |h| upload(remote, &local, h, meter, &counts));
    let failed: BTreeMap<&String, RemoteError> = unique
        .iter()
        .zip(results)
        .filter_map(|(h, r)| r.err().map(|e| (h, e)))
        .collect();
    for (it, hashes) in items.iter().zip(&needs) {
        if hashes.is_empty() && !it.outs.is_empty() {
            continue;
        }
        if let Some(e) = hashes.iter().find_map(|h| failed.get(h)) {
            errors.push(
                Diagnostic::new(format!(
                    "stage `{}`: cannot push to remote `{}`",
                    it.name,
                    remote.describe()
                ))
                .cause(e.0.clone()),
            );
            continue;
        }
        match push_record(remote, it) {
            Ok(None) => report.stages += 1,
            Ok(Some(w)) => {
                report.stages += 1;
                report.warnings.push(w);
            }
            Err(e) => errors.push(
                Diagnostic::new(format!(
                    "stage `{}`: cannot push its record to remote `{}`",
                    it.name,
                    remote.describe()
                ))
                .cause(e.0),
            ),
        }
    }
    counts.into_report(&mut report);
    report.errors = errors;
    Ok(report)
}

/// How `repro pull` treats the workspace.
#[derive(Debug, Clone, Copy, Default)]
pub struct PullConfig {
    /// Replace outputs that differ from the lock even when their content is in no cache (it is
    /// lost). Without it such a stage is not put in place, and the pull fails for it.
    pub force: bool,
}

/// Downloads the objects of the selected stages' lock entries into the local cache, verified,
/// and puts outputs that are missing or differ from the lock into the workspace.
pub fn pull(
    p: &Pipeline,
    selected: &[usize],
    remote: &dyn Remote,
    meter: &dyn Meter,
    cfg: PullConfig,
) -> Result<ShareReport, Failure> {
    let (store, _guard, lockfile) = begin(p)?;
    let mut report = ShareReport::default();
    let mut items = Vec::new();
    for &i in selected {
        let name = &p.stages[i].name;
        match lockfile.stages.get(name) {
            Some(e) => items.push(item(name, e)),
            None => report.warnings.push(
                Diagnostic::new(format!(
                    "stage `{name}` has no entry in the lock; not pulled"
                ))
                .hint("`repro run` fetches from the remote by key whatever it can"),
            ),
        }
    }
    let counts = Counts::default();
    let fetch = |h: &String| {
        let had = store.has(h);
        let r = remote::fetch_object(remote, &store, h, &counts.metered(meter));
        counts.note(had, &r);
        r
    };
    // Files and folder manifests first; then the files the manifests list.
    let top: BTreeSet<String> = items
        .iter()
        .flat_map(|it| it.outs.iter().map(|o| o.hash.clone()))
        .collect();
    let top: Vec<String> = top.into_iter().collect();
    let mut outcome: BTreeMap<String, Result<(), Miss>> =
        top.iter().cloned().zip(parallel(&top, fetch)).collect();
    let mut inner = BTreeSet::new();
    for it in &items {
        for o in it.outs.iter().filter(|o| o.is_dir) {
            if matches!(outcome.get(&o.hash), Some(Ok(()))) {
                match remote::manifest_objects(&store, o) {
                    Ok(files) => inner.extend(files),
                    Err(m) => {
                        outcome.insert(o.hash.clone(), Err(m));
                    }
                }
            }
        }
    }
    let inner: Vec<String> = inner.into_iter().collect();
    outcome.extend(inner.iter().cloned().zip(parallel(&inner, fetch)));
    let stat = store.load_stat_cache();
    let mut errors = Vec::new();
    for it in &items {
        let objects = local_objects(&store, &it.outs).unwrap_or_default();
        let miss = it
            .outs
            .iter()
            .map(|o| &o.hash)
            .chain(&objects)
            .find_map(|h| outcome.get(h).and_then(|r| r.as_ref().err()));
        if let Some(m) = miss {
            errors.push(pull_error(&it.name, remote, m));
            continue;
        }
        match place(p, &store, &stat, it, cfg) {
            Ok(n) => {
                report.stages += 1;
                report.restored += n;
            }
            Err(d) => errors.push(d),
        }
    }
    if let Err(e) = store.save_stat_cache(&stat) {
        tracing::warn!("cannot save the stat cache: {e}");
    }
    counts.into_report(&mut report);
    report.errors = errors;
    Ok(report)
}

/// The store, the project lock (push and pull keep runs and `gc` out while they work) and the
/// lock file.
fn begin(p: &Pipeline) -> Result<(Store, ProjectLock, LockFile), Failure> {
    let store = Store::new(&p.root);
    let (guard, rescued) = crate::runner::own_project(&store, false)?;
    for note in rescued {
        tracing::warn!("{note}");
    }
    let lockfile = lock::read(&p.lock_path())?;
    Ok((store, guard, lockfile))
}

fn item(name: &str, e: &LockEntry) -> Item {
    Item {
        name: name.to_string(),
        key: e.key.clone(),
        outs: e
            .outs
            .iter()
            .map(|(path, o)| Output {
                path: path.clone(),
                is_dir: o.dir,
                hash: o.hash.clone(),
            })
            .collect(),
    }
}

/// Every object the outputs need (folder manifests and the files they list), each in the local
/// store; `Err` names the first one missing.
fn local_objects(store: &Store, outs: &[Output]) -> Result<Vec<String>, String> {
    let mut hashes = Vec::new();
    for o in outs {
        hashes.push(o.hash.clone());
        if o.is_dir {
            let files = store.manifest(&o.hash).ok_or_else(|| o.hash.clone())?;
            hashes.extend(files.into_iter().map(|f| f.hash));
        }
    }
    match hashes.iter().find(|h| !store.has(h)) {
        Some(h) => Err(h.clone()),
        None => Ok(hashes),
    }
}

/// The local side of a push: the store, and where the workspace holds each object's bytes.
struct Local<'a> {
    store: &'a Store,
    root: &'a std::path::Path,
    /// The stages pushed, whose outputs say where the workspace holds an object's bytes (see
    /// [`workspace_source`]).
    items: &'a [Item],
}

/// Uploads one object unless the remote has it; the local object is checked against its hash
/// first (see [`check_local`]).
fn upload(
    remote: &dyn Remote,
    local: &Local<'_>,
    hash: &str,
    meter: &dyn Meter,
    counts: &Counts,
) -> Result<(), RemoteError> {
    if remote.has_object(hash)? {
        counts.present.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    }
    if let Some(rel) = check_local(local, hash)? {
        counts
            .repaired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(rel);
    }
    let path = local.store.object_file(hash);
    match remote.put_object(hash, &path)? {
        Put::Created => {
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            counts.transferred.fetch_add(1, Ordering::Relaxed);
            counts.bytes.fetch_add(size as usize, Ordering::Relaxed);
            meter.bytes(size);
        }
        // Another push got there first (and the size matched).
        Put::Existed => {
            counts.present.fetch_add(1, Ordering::Relaxed);
        }
    }
    meter.object_done();
    Ok(())
}

/// Stores a stage's outputs again from the workspace when the cache lacks objects they need
/// (`cache/` cleared by hand) and the workspace still holds the bytes the lock records. The
/// outputs are hashed afresh, not vouched for by the stat cache, and every copy is checked
/// against its hash as it is stored. The objects, as [`local_objects`] gives them.
fn store_from_workspace(
    store: &Store,
    root: &std::path::Path,
    it: &Item,
) -> Result<Vec<String>, String> {
    let fresh = fsstate::StatCache::default();
    for o in &it.outs {
        let state = fsstate::hash_path(root, &o.path, &fresh).map_err(|_| o.hash.clone())?;
        if state.hash() != Some(o.hash.as_str()) {
            return Err(o.hash.clone());
        }
        store
            .save_output(&o.path, &state)
            .map_err(|_| o.hash.clone())?;
    }
    local_objects(store, &it.outs)
}

/// True when the cache holds what a workspace path holds now, so replacing it loses nothing.
fn in_cache(store: &Store, now: &fsstate::PathState) -> bool {
    match now {
        fsstate::PathState::Missing => true,
        fsstate::PathState::File { hash } => store.has(hash),
        fsstate::PathState::Dir { files, .. } => files.iter().all(|f| store.has(&f.hash)),
    }
}

/// Where the workspace holds an object's bytes, if a pushed output (or a file of a folder
/// output, from its manifest, which the store verifies as it reads it) has that hash. Looked up
/// only for a damaged object, so a push reads no manifest twice.
fn workspace_source(store: &Store, items: &[Item], hash: &str) -> Option<String> {
    items.iter().flat_map(|it| &it.outs).find_map(|o| {
        if !o.is_dir {
            return (o.hash == hash).then(|| o.path.clone());
        }
        let files = store.manifest(&o.hash)?;
        let f = files.into_iter().find(|f| f.hash == hash)?;
        Some(format!("{}/{}", o.path, f.rel))
    })
}

/// A local object must match its hash before it is uploaded: a damaged one would reach every
/// clone that fetches it (they verify, and fail) and stay, since remote writes are create-only.
/// A damaged object is removed and stored again from the workspace when the output there still
/// has the lock's hash (`Some` names that output); otherwise the push of its stage fails.
fn check_local(local: &Local<'_>, hash: &str) -> Result<Option<String>, RemoteError> {
    let path = local.store.object_file(hash);
    let found = fsstate::hash_file(&path)
        .map_err(|e| RemoteError(format!("cannot read cache object `{hash}`: {e}")))?;
    if found == hash {
        return Ok(None);
    }
    local.store.remove_object(hash);
    let damaged = format!("cache object `{hash}` does not match its hash; it was removed");
    let Some(rel) = workspace_source(local.store, local.items, hash) else {
        return Err(RemoteError(damaged));
    };
    match local.store.put_file(&local.root.join(&rel), hash) {
        Ok(()) => Ok(Some(rel)),
        Err(_) => Err(RemoteError(format!(
            "{damaged}, and `{rel}` in the workspace no longer has that hash either"
        ))),
    }
}

/// Creates the stage's record on the remote. A record that already exists is read back: the
/// same text is fine; a different one (the stage is not deterministic) is kept, with a warning.
fn push_record(remote: &dyn Remote, it: &Item) -> Result<Option<Diagnostic>, RemoteError> {
    let text = store::record_text(&it.outs);
    if remote.put_record(&it.key, text.as_bytes())? == Put::Created {
        return Ok(None);
    }
    let theirs = remote.get_record(&it.key)?;
    if theirs.as_deref() == Some(text.as_bytes()) {
        return Ok(None);
    }
    Ok(Some(
        Diagnostic::new(format!(
            "remote `{}` already has other outputs for stage `{}` with this key",
            remote.describe(),
            it.name
        ))
        .cause("the stage produced different bytes from the same inputs elsewhere")
        .hint("the remote's record was kept (writes never replace); check that the stage is deterministic"),
    ))
}

/// Records the pulled stage in the local cache and puts its outputs that are missing or differ
/// from the lock into the workspace. Returns how many outputs it put there.
fn place(
    p: &Pipeline,
    store: &Store,
    stat: &fsstate::StatCache,
    it: &Item,
    cfg: PullConfig,
) -> Result<usize, Diagnostic> {
    let io = |what: String, e: std::io::Error| {
        Diagnostic::new(format!("stage `{}`: {what}", it.name)).cause(e.to_string())
    };
    let declared: Vec<String> = it.outs.iter().map(|o| o.path.clone()).collect();
    if store.stage_record(&it.key, &declared).is_none() {
        store
            .record_stage(&it.key, &it.outs)
            .map_err(|e| io("cannot record the stage in the cache".into(), e))?;
    }
    // Every output is looked at before any is replaced: a stage is put in place whole or not
    // at all.
    let mut stale = Vec::new();
    for o in &it.outs {
        let now = fsstate::hash_path(&p.root, &o.path, stat)
            .map_err(|e| io(format!("cannot read output `{}`", o.path), e))?;
        if now.hash() == Some(o.hash.as_str()) {
            continue;
        }
        if !cfg.force && !in_cache(store, &now) {
            return Err(Diagnostic::new(format!(
                "stage `{}` was not pulled: `{}` differs from the lock, and what it holds now is not in the cache",
                it.name, o.path
            ))
            .hint("pulling would lose it: move it away (or rerun the stage), or pass `--force` to replace it"));
        }
        stale.push(o);
    }
    let mut restored = 0;
    for o in stale {
        store
            .restore(o)
            .map_err(|e| io(format!("cannot restore `{}` from the cache", o.path), e))?;
        stat.forget(&o.path);
        restored += 1;
    }
    Ok(restored)
}

fn pull_error(stage: &str, remote: &dyn Remote, m: &Miss) -> Diagnostic {
    let d = Diagnostic::new(format!(
        "stage `{stage}`: cannot pull from remote `{}`",
        remote.describe()
    ));
    match m {
        Miss::Absent => d
            .cause("the remote does not have its outputs")
            .hint("push them from a clone that has them (`repro push`), or run the stage"),
        Miss::Damaged(why) => d
            .cause(why.clone())
            .hint("nothing damaged was restored; remove the object on the remote and push again"),
        Miss::Failed(e) => d.cause(e.0.clone()),
        Miss::Local(e) => d.cause(format!("cannot write the local cache: {e}")),
    }
}

/// Object and byte counts, updated from the transfer threads.
#[derive(Default)]
struct Counts {
    transferred: AtomicUsize,
    present: AtomicUsize,
    bytes: AtomicUsize,
    /// Outputs whose damaged cache object a push stored again from the workspace.
    repaired: Mutex<Vec<String>>,
}

impl Counts {
    fn note(&self, had: bool, r: &Result<(), Miss>) {
        match (had, r) {
            (true, _) => self.present.fetch_add(1, Ordering::Relaxed),
            (false, Ok(())) => self.transferred.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
    }

    fn metered<'a>(&'a self, meter: &'a dyn Meter) -> Counted<'a> {
        Counted {
            counts: self,
            meter,
        }
    }

    fn into_report(self, r: &mut ShareReport) {
        r.transferred = self.transferred.into_inner();
        r.present = self.present.into_inner();
        r.bytes = self.bytes.into_inner() as u64;
        let mut repaired = self
            .repaired
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        repaired.sort();
        for rel in repaired {
            r.warnings.push(
                Diagnostic::new(format!(
                    "the cache object of `{rel}` did not match its hash; stored again from the workspace"
                ))
                .hint("the disk under `cache/` may be failing, or something wrote into `cache/objects/`"),
            );
        }
    }
}

/// A meter that also counts the bytes received.
struct Counted<'a> {
    counts: &'a Counts,
    meter: &'a dyn Meter,
}

impl Meter for Counted<'_> {
    fn bytes(&self, n: u64) {
        self.counts.bytes.fetch_add(n as usize, Ordering::Relaxed);
        self.meter.bytes(n);
    }
    fn object_done(&self) {
        self.meter.object_done();
    }
}

/// `f` over `items` on a few threads; results in the order of `items`.
fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..TRANSFERS.min(items.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every item was handled"))
        .collect()
}
