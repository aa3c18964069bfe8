//! The content-addressed store under `cache/`: the only code that writes there.
//!
//! Owns: objects (file contents and folder manifests by blake3 hash), stage records (which outputs
//! a stage key produced), the stat cache file, the run log, captured command logs, scratch space,
//! the project lock that keeps two runs apart, restoring outputs into the workspace, and garbage
//! collection. Every write goes to a temporary file first and is renamed into place, so a crash
//! never leaves a half-written object or record. Deliberately does not own: deciding what to run
//! or what a key is.
//!
//! Layout:
//! - `cache/objects/ab/cdef…`: file contents and folder manifests, named by their blake3 hash;
//! - `cache/stages/<key>`: the outputs a stage key produced, one `kind hash path` line each;
//! - `cache/stat`: the stat cache; `cache/runs.jsonl`: the run log (times, durations);
//! - `cache/logs/<stage>.{out,err}`: the last captured output of each command stage (and
//!   `<stage>.job.json`, the end of its last batch job);
//! - `cache/tmp/`: scratch space; `cache/lock`: held by the running `repro` process;
//! - `cache/memo/ab/cdef…`: entries a kind keeps between runs (`repro_kind::Memo`), each
//!   `blake3(key, payload)` in hex, a newline, then the payload, checked on every read.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::fsstate::{self, DirEntry, PathState, StatCache, StatEntry};

/// Where objects live. A seam: a remote (e.g. S3-compatible) cache would implement the same
/// three operations and be consulted after the local one.
pub trait ObjectStore: Sync {
    fn has(&self, hash: &str) -> bool;
    /// Stores the file at `src` whose content hash is `hash`.
    fn put_file(&self, src: &Path, hash: &str) -> io::Result<()>;
    /// Copies the object into `dest` atomically.
    fn get_to(&self, hash: &str, dest: &Path, executable: bool) -> io::Result<()>;
}

/// What a stage key produced: each output path with its kind and hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    pub path: String,
    pub is_dir: bool,
    pub hash: String,
}

pub struct Store {
    root: PathBuf,
    dir: PathBuf,
    counter: AtomicU64,
}

/// Held while a run owns the project; released on drop (and by the OS when the process dies
/// and no command it started still holds the descriptor).
pub struct ProjectLock {
    file: File,
}

impl ProjectLock {
    /// The lock's descriptor, for commands to inherit ([`crate::executor::CommandJob::hold`]).
    pub fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.file.as_raw_fd()
    }
}

pub enum LockOutcome {
    Acquired(ProjectLock),
    Busy,
}

impl Store {
    /// The store of the project at `root` (nothing is created until something is written).
    pub fn new(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
            dir: root.join("cache"),
            counter: AtomicU64::new(0),
        }
    }

    fn ensure(&self, sub: &str) -> io::Result<PathBuf> {
        let p = self.dir.join(sub);
        fs::create_dir_all(&p)?;
        Ok(p)
    }

    /// Takes the project lock; with `wait`, blocks until the other process is done.
    pub fn lock_project(&self, wait: bool) -> io::Result<LockOutcome> {
        self.ensure("")?;
        self.ignore_in_git()?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("lock"))?;
        if wait {
            file.lock()?;
            return Ok(LockOutcome::Acquired(ProjectLock { file }));
        }
        match file.try_lock() {
            Ok(()) => Ok(LockOutcome::Acquired(ProjectLock { file })),
            Err(fs::TryLockError::WouldBlock) => Ok(LockOutcome::Busy),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// `cache/.gitignore` with `*`, so git ignores the cache without the user doing anything
    /// (written once; an existing file is left as the user made it).
    fn ignore_in_git(&self) -> io::Result<()> {
        match File::options()
            .write(true)
            .create_new(true)
            .open(self.dir.join(".gitignore"))
        {
            Ok(mut f) => {
                f.write_all(b"# Written by repro: the cache is not for version control.\n*\n")
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn object_path(&self, hash: &str) -> PathBuf {
        let (a, b) = hash.split_at(2.min(hash.len()));
        self.dir.join("objects").join(a).join(b)
    }

    /// A fresh path in the scratch area (not created).
    pub fn scratch_path(&self, label: &str) -> io::Result<PathBuf> {
        let tmp = self.ensure("tmp")?;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        Ok(tmp.join(format!("{}-{}-{label}", std::process::id(), n)))
    }

    /// Removes scratch files left by processes that died (called while holding the project lock),
    /// after rescuing the outputs such a process had moved aside (see `move_aside`): each goes
    /// back to its path when that is free, else to `cache/recovered/PATH`. Returns what it did,
    /// one sentence per output, for the user.
    pub fn clean_scratch(&self) -> io::Result<Vec<String>> {
        let tmp = self.dir.join("tmp");
        if !tmp.exists() {
            return Ok(Vec::new());
        }
        let mut notes = Vec::new();
        for entry in fs::read_dir(&tmp)? {
            let journal = entry?.path();
            if journal.extension().is_none_or(|e| e != "rel") {
                continue;
            }
            let aside = journal.with_extension("");
            let Ok(rel) = fs::read_to_string(&journal) else {
                continue;
            };
            // A journal cut short or damaged names no output: it moves nothing.
            let valid = repro_kind::paths::normalize_path(&rel).is_ok_and(|n| n == rel);
            if fs::symlink_metadata(&aside).is_err() || !valid {
                continue;
            }
            let full = self.root.join(&rel);
            let dest = if fs::symlink_metadata(&full).is_err() {
                notes.push(format!("put `{rel}` back: a killed run had moved it aside"));
                full
            } else {
                let dest = unique(&self.dir.join("recovered").join(&rel));
                notes.push(format!(
                    "kept the earlier content of `{rel}`, which a killed run had moved aside, as `{}`",
                    dest.strip_prefix(&self.root).unwrap_or(&dest).display()
                ));
                dest
            };
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::rename(&aside, &dest)?;
        }
        fs::remove_dir_all(&tmp)?;
        Ok(notes)
    }

    fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> io::Result<()> {
        let tmp = self.scratch_path("write")?;
        {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::rename(&tmp, dest)
    }

    pub fn put_bytes(&self, bytes: &[u8]) -> io::Result<String> {
        let hash = blake3::hash(bytes).to_hex().to_string();
        if !self.has(&hash) {
            self.write_atomic(&self.object_path(&hash), bytes)?;
        }
        Ok(hash)
    }

    /// Where object `hash` is (or would be) kept, for reading it (uploads to a remote).
    pub fn object_file(&self, hash: &str) -> PathBuf {
        self.object_path(hash)
    }

    /// Takes a downloaded file (in the scratch area) as object `hash` after checking that its
    /// content has that hash; a mismatch removes the file and is a [`damaged`] error.
    pub fn import_object(&self, downloaded: &Path, hash: &str) -> io::Result<()> {
        if fsstate::hash_file(downloaded)? != hash {
            let _ = fs::remove_file(downloaded);
            return Err(damaged(hash));
        }
        if self.has(hash) {
            return fs::remove_file(downloaded);
        }
        File::open(downloaded)?.sync_all()?;
        fs::set_permissions(downloaded, fs::Permissions::from_mode(0o444))?;
        let dest = self.object_path(hash);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::rename(downloaded, &dest)
    }

    pub fn read_object(&self, hash: &str) -> io::Result<Vec<u8>> {
        fs::read(self.object_path(hash))
    }

    /// Copies a workspace path (already hashed) into the store.
    pub fn save_output(&self, rel: &str, state: &PathState) -> io::Result<Option<Output>> {
        let full = self.root.join(rel);
        match state {
            PathState::Missing => Ok(None),
            PathState::File { hash } => {
                self.put_file(&full, hash)?;
                Ok(Some(Output {
                    path: rel.to_string(),
                    is_dir: false,
                    hash: hash.clone(),
                }))
            }
            PathState::Dir { hash, files } => {
                for f in files {
                    self.put_file(&full.join(&f.rel), &f.hash)?;
                }
                let manifest = fsstate::manifest_text(files);
                let stored = self.put_bytes(manifest.as_bytes())?;
                debug_assert_eq!(&stored, hash);
                Ok(Some(Output {
                    path: rel.to_string(),
                    is_dir: true,
                    hash: hash.clone(),
                }))
            }
        }
    }

    /// True when every object the outputs need is in the store.
    pub fn outputs_available(&self, outs: &[Output]) -> bool {
        outs.iter().all(|o| {
            if !o.is_dir {
                return self.has(&o.hash);
            }
            match self.manifest(&o.hash) {
                Some(files) => files.iter().all(|f| self.has(&f.hash)),
                None => false,
            }
        })
    }

    /// A folder's manifest from the store; `None` when absent or damaged (a damaged one is
    /// removed).
    pub fn manifest(&self, hash: &str) -> Option<Vec<DirEntry>> {
        let bytes = self.read_object(hash).ok()?;
        if blake3::hash(&bytes).to_hex().as_str() != hash {
            self.remove_object(hash);
            return None;
        }
        fsstate::parse_manifest(std::str::from_utf8(&bytes).ok()?)
    }

    /// Removes a damaged object so that nothing restores it again (a warning if it cannot).
    pub(crate) fn remove_object(&self, hash: &str) {
        let path = self.object_path(hash);
        if let Err(e) = fs::remove_file(&path) {
            tracing::warn!(
                "cannot remove damaged cache object `{}`: {e}",
                path.display()
            );
        }
    }

    /// Puts an output back into the workspace from the store, replacing what is there.
    pub fn restore(&self, out: &Output) -> io::Result<()> {
        let dest = self.root.join(&out.path);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        if !out.is_dir {
            return self.get_to(&out.hash, &dest, false);
        }
        let files = self.manifest(&out.hash).ok_or_else(|| damaged(&out.hash))?;
        // Build the folder aside, then swap it in.
        let staging = self.scratch_path("restore")?;
        fs::create_dir_all(&staging)?;
        for f in &files {
            let target = staging.join(&f.rel);
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent)?;
            }
            self.get_to(&f.hash, &target, f.executable)?;
        }
        remove_path(&dest)?;
        fs::rename(&staging, &dest)
    }

    /// Moves the current content of `rel` aside (to put back if a stage fails); None if absent.
    pub fn move_aside(&self, rel: &str) -> io::Result<Option<PathBuf>> {
        let full = self.root.join(rel);
        if fs::symlink_metadata(&full).is_err() {
            return Ok(None);
        }
        let aside = self.scratch_path("aside")?;
        // A journal beside it names the output, so that the next run can put it back if this
        // process is killed before it does (`clean_scratch`): an output no run recorded has no
        // other copy.
        let journal = aside.with_extension("rel");
        self.write_atomic(&journal, rel.as_bytes())?;
        fs::rename(&full, &aside)?;
        Ok(Some(aside))
    }

    /// Puts back what [`Store::move_aside`] moved, replacing whatever a failed stage left.
    pub fn put_back(&self, rel: &str, aside: Option<PathBuf>) -> io::Result<()> {
        let full = self.root.join(rel);
        remove_path(&full)?;
        if let Some(aside) = aside {
            if let Some(parent) = full.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::rename(&aside, &full)?;
            remove_path(&aside.with_extension("rel"))?;
        }
        Ok(())
    }

    pub fn discard(&self, aside: Option<PathBuf>) -> io::Result<()> {
        match aside {
            Some(p) => {
                remove_path(&p)?;
                remove_path(&p.with_extension("rel"))
            }
            None => Ok(()),
        }
    }

    /// Records which outputs a stage key produced.
    pub fn record_stage(&self, key: &str, outs: &[Output]) -> io::Result<()> {
        self.write_atomic(
            &self.dir.join("stages").join(key),
            record_text(outs).as_bytes(),
        )
    }

    /// The outputs stage key `key` produced, when its record is intact (see `parse_record`). A
    /// damaged record (cut short, a flipped byte, edited) is `None`, so the stage runs instead of
    /// restoring a wrong set of files or writing one where the stage declares none.
    pub fn stage_record(&self, key: &str, outs: &[String]) -> Option<Vec<Output>> {
        parse_record(
            &fs::read_to_string(self.dir.join("stages").join(key)).ok()?,
            outs,
        )
    }

    pub fn load_stat_cache(&self) -> StatCache {
        let Ok(text) = fs::read_to_string(self.dir.join("stat")) else {
            return StatCache::default();
        };
        let mut map = HashMap::new();
        for line in text.lines() {
            let mut it = line.splitn(5, ' ');
            let parsed = (|| {
                let size = it.next()?.parse().ok()?;
                let mtime_ns = it.next()?.parse().ok()?;
                let inode = it.next()?.parse().ok()?;
                let hash = it.next()?.to_string();
                let path = it.next()?.to_string();
                Some((
                    path,
                    StatEntry {
                        size,
                        mtime_ns,
                        inode,
                        hash,
                    },
                ))
            })();
            // A damaged line only costs a re-hash.
            if let Some((path, e)) = parsed {
                map.insert(path, e);
            }
        }
        StatCache::from_entries(map)
    }

    pub fn save_stat_cache(&self, cache: &StatCache) -> io::Result<()> {
        if !cache.is_dirty() {
            return Ok(());
        }
        let mut text = String::new();
        for (path, e) in cache.snapshot() {
            text.push_str(&format!(
                "{} {} {} {} {}\n",
                e.size, e.mtime_ns, e.inode, e.hash, path
            ));
        }
        self.write_atomic(&self.dir.join("stat"), text.as_bytes())
    }

    /// The run log's lines (unreadable lines skipped; no log: none).
    pub fn run_log(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.join("runs.jsonl"))
            .map(|text| {
                text.lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Appends one JSON line to the run log.
    pub fn log_run(&self, line: &serde_json::Value) -> io::Result<()> {
        self.ensure("")?;
        let mut f = File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("runs.jsonl"))?;
        writeln!(f, "{line}")
    }

    pub fn save_command_logs(&self, stage: &str, stdout: &[u8], stderr: &[u8]) -> io::Result<()> {
        let logs = self.dir.join("logs");
        let name = log_name(stage);
        self.write_atomic(&logs.join(format!("{name}.out")), stdout)?;
        self.write_atomic(&logs.join(format!("{name}.err")), stderr)
    }

    /// Keeps what the batch system said about a stage's last job (`cache/logs/<stage>.job.json`),
    /// or removes an older one when the stage last ran outside a batch system (`None`).
    pub fn save_job_record(&self, stage: &str, json: Option<&[u8]>) -> io::Result<()> {
        let path = self.dir.join("logs").join(format!("{stage}.job.json"));
        match json {
            Some(bytes) => self.write_atomic(&path, bytes),
            None => match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        }
    }

    /// Removes objects and stage records that nothing in `keep` refers to.
    pub fn gc(
        &self,
        keep: &[Output],
        keep_keys: &BTreeSet<String>,
        dry_run: bool,
    ) -> io::Result<GcReport> {
        let mut live = BTreeSet::new();
        for o in keep {
            live.insert(o.hash.clone());
            if o.is_dir {
                if let Some(files) = self.manifest(&o.hash) {
                    live.extend(files.into_iter().map(|f| f.hash));
                }
            }
        }
        let mut report = GcReport::default();
        let objects = self.dir.join("objects");
        if objects.exists() {
            for shard in sorted_entries(&objects)? {
                for obj in sorted_entries(&shard)? {
                    let name = format!(
                        "{}{}",
                        shard
                            .file_name()
                            .and_then(|s| s.to_str())
                            .unwrap_or_default(),
                        obj.file_name().and_then(|s| s.to_str()).unwrap_or_default()
                    );
                    if live.contains(&name) {
                        continue;
                    }
                    report.objects += 1;
                    report.bytes += fs::metadata(&obj).map(|m| m.len()).unwrap_or(0);
                    if !dry_run {
                        fs::remove_file(&obj)?;
                    }
                }
            }
        }
        let stages = self.dir.join("stages");
        if stages.exists() {
            for rec in sorted_entries(&stages)? {
                let name = rec.file_name().and_then(|s| s.to_str()).unwrap_or_default();
                if keep_keys.contains(name) {
                    continue;
                }
                report.records += 1;
                if !dry_run {
                    fs::remove_file(&rec)?;
                }
            }
        }
        Ok(report)
    }
}

/// The memo a built-in kind keeps between runs. An entry binds its payload to its key by a
/// hash over both, so a damaged, truncated or misplaced entry reads as a miss (and the kind
/// recomputes) instead of being trusted.
impl repro_kind::Memo for Store {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        if !is_hash(key) {
            return None;
        }
        let bytes = fs::read(self.memo_path(key)).ok()?;
        let newline = bytes.iter().position(|&b| b == b'\n')?;
        let (check, payload) = (&bytes[..newline], &bytes[newline + 1..]);
        (check == memo_check(key, payload).as_bytes()).then(|| payload.to_vec())
    }

    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        if !is_hash(key) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("memo key `{key}` is not a blake3 hash"),
            ));
        }
        let mut entry = memo_check(key, bytes).into_bytes();
        entry.push(b'\n');
        entry.extend_from_slice(bytes);
        // Temp file and rename like every write here, but no fsync: an entry lost or torn by a
        // crash fails its check and is recomputed, and a thousand syncs would cost seconds.
        let tmp = self.scratch_path("memo")?;
        fs::write(&tmp, &entry)?;
        let dest = self.memo_path(key);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::rename(&tmp, dest)
    }
}

impl Store {
    fn memo_path(&self, key: &str) -> PathBuf {
        let (a, b) = key.split_at(2);
        self.dir.join("memo").join(a).join(b)
    }
}

/// The check line of a memo entry: blake3 over the key and the payload.
fn memo_check(key: &str, payload: &[u8]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(key.as_bytes());
    h.update(b"\0");
    h.update(payload);
    h.finalize().to_hex().to_string()
}

#[derive(Debug, Default)]
pub struct GcReport {
    pub objects: u64,
    pub bytes: u64,
    pub records: u64,
}

impl ObjectStore for Store {
    fn has(&self, hash: &str) -> bool {
        self.object_path(hash).is_file()
    }

    fn put_file(&self, src: &Path, hash: &str) -> io::Result<()> {
        if self.has(hash) {
            return Ok(());
        }
        let tmp = self.scratch_path("object")?;
        fs::copy(src, &tmp)?;
        // On disk before it has its name, so a power loss cannot leave a short object that
        // claims a hash; and the copy must be what was hashed (an output rewritten meanwhile
        // would teach the cache a wrong answer).
        File::open(&tmp)?.sync_all()?;
        if fsstate::hash_file(&tmp)? != hash {
            let _ = fs::remove_file(&tmp);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("`{}` changed while it was being stored", src.display()),
            ));
        }
        // Objects are read-only: an edit through a stray hard link must not corrupt the cache.
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o444))?;
        let dest = self.object_path(hash);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::rename(&tmp, &dest)
    }

    fn get_to(&self, hash: &str, dest: &Path, executable: bool) -> io::Result<()> {
        let tmp = self.scratch_path("get")?;
        fs::copy(self.object_path(hash), &tmp)?;
        // Every restore is checked against its hash before it replaces anything: a truncated or
        // flipped object is removed (the stage then reruns and stores a good one).
        if fsstate::hash_file(&tmp)? != hash {
            let _ = fs::remove_file(&tmp);
            self.remove_object(hash);
            return Err(damaged(hash));
        }
        let mode = if executable { 0o755 } else { 0o644 };
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
        if fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir()) {
            remove_path(dest)?;
        }
        fs::rename(&tmp, dest)
    }
}

/// The file name of a stage's logs: its name with `/` (generated and nested DVC stage names
/// hold paths) written as `%2F`, so that every stage has one file in `cache/logs/`.
pub fn log_name(stage: &str) -> String {
    stage.replace('%', "%25").replace('/', "%2F")
}

/// `path`, or `path.1`, `path.2`, ... : the first that does not exist.
fn unique(path: &Path) -> PathBuf {
    let mut candidate = path.to_path_buf();
    let mut n = 0;
    while fs::symlink_metadata(&candidate).is_ok() {
        n += 1;
        candidate = PathBuf::from(format!("{}.{n}", path.display()));
    }
    candidate
}

/// A stage record's text: one `kind hash path` line per output, paths relative to the project.
pub fn record_text(outs: &[Output]) -> String {
    let mut text = String::new();
    for o in outs {
        let kind = if o.is_dir { "dir" } else { "file" };
        text.push_str(&format!("{kind} {} {}\n", o.hash, o.path));
    }
    text
}

/// Reads a stage record's text for a stage whose outputs are `outs`: exactly one well-formed line
/// (`file|dir HASH PATH`) for each of them, and nothing else; `None` otherwise. A record is
/// trusted to write only where the stage declares outputs.
pub fn parse_record(text: &str, outs: &[String]) -> Option<Vec<Output>> {
    let mut seen = BTreeSet::new();
    let record: Vec<Output> = text
        .split_terminator('\n')
        .map(|line| {
            let mut it = line.splitn(3, ' ');
            let is_dir = match it.next()? {
                "file" => false,
                "dir" => true,
                _ => return None,
            };
            let hash = it.next().filter(|h| is_hash(h))?;
            let path = it.next().filter(|p| outs.iter().any(|o| o == p))?;
            seen.insert(path).then_some(())?;
            Some(Output {
                path: path.to_string(),
                is_dir,
                hash: hash.to_string(),
            })
        })
        .collect::<Option<_>>()?;
    let whole = text.ends_with('\n') || text.is_empty();
    (whole && record.len() == outs.len()).then_some(record)
}

fn sorted_entries(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    v.sort();
    Ok(v)
}

/// The error of a cache object whose content does not match its hash (or that is gone).
pub fn damaged(hash: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("cache object {hash} is damaged: its content does not match its hash"),
    )
}

/// A blake3 hash as the store names objects: 64 lowercase hex digits.
fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// True for the errors of [`damaged`] objects: the stage should run instead of restoring.
pub fn is_damaged(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidData
}

/// Removes a file or folder if it exists.
pub fn remove_path(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
    }
}

#[cfg(test)]
mod memo_tests {
    use super::*;
    use repro_kind::Memo;

    #[test]
    fn the_memo_returns_only_entries_that_check_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        assert_eq!(store.get(&a), None);
        store.put(&a, b"payload").unwrap();
        assert_eq!(store.get(&a).as_deref(), Some(&b"payload"[..]));
        // Moved under another key, an entry no longer matches its check.
        let path = store.memo_path(&a);
        fs::create_dir_all(store.memo_path(&b).parent().unwrap()).unwrap();
        fs::copy(&path, store.memo_path(&b)).unwrap();
        assert_eq!(store.get(&b), None);
        // Damaged or truncated: a miss.
        let mut bytes = fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert_eq!(store.get(&a), None);
        fs::write(&path, &bytes[..10]).unwrap();
        assert_eq!(store.get(&a), None);
        // Keys are hashes: nothing else names a file.
        assert!(store.put("../x", b"p").is_err());
        assert_eq!(store.get("../x"), None);
    }
}
