//! What files and folders in the project hold, by content hash, without re-reading unchanged files.
//!
//! Owns: hashing a file (blake3 of its bytes) or a folder (blake3 of a manifest of its files), and
//! the stat cache that skips re-reading a file whose size, mtime and inode are unchanged. A touched
//! file whose bytes did not change hashes the same, so it makes nothing stale. Deliberately does not
//! own: persisting the stat cache (the store writes it under `cache/`) or deciding staleness.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;

/// The content of a path in the workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathState {
    Missing,
    File { hash: String },
    Dir { hash: String, files: Vec<DirEntry> },
}

/// One file inside a folder output, relative to that folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub rel: String,
    pub hash: String,
    pub executable: bool,
}

impl PathState {
    pub fn hash(&self) -> Option<&str> {
        match self {
            PathState::Missing => None,
            PathState::File { hash } | PathState::Dir { hash, .. } => Some(hash),
        }
    }
}

/// Size, modification time, inode and the hash they vouch for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatEntry {
    pub size: u64,
    pub mtime_ns: i128,
    pub inode: u64,
    pub hash: String,
}

/// Known file hashes by project-relative path; shared between worker threads.
#[derive(Debug, Default)]
pub struct StatCache {
    entries: Mutex<HashMap<String, StatEntry>>,
    /// Set when an entry was added or removed, so an unchanged cache is not rewritten.
    dirty: std::sync::atomic::AtomicBool,
}

impl StatCache {
    pub fn from_entries(entries: HashMap<String, StatEntry>) -> Self {
        StatCache {
            entries: Mutex::new(entries),
            dirty: Default::default(),
        }
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The entries, sorted by path, for persisting.
    pub fn snapshot(&self) -> Vec<(String, StatEntry)> {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<(String, StatEntry)> =
            map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn get(&self, rel: &str) -> Option<StatEntry> {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.get(rel).cloned()
    }

    fn put(&self, rel: &str, e: StatEntry) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(rel.to_string(), e);
        self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Forgets a path (and everything under it), e.g. after a stage rewrote it.
    pub fn forget(&self, rel: &str) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|k, _| !repro_kind::paths::path_within(k, rel));
        self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How much a look at a path may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// Read and hash any file whose stat entry does not vouch for its hash.
    Content,
    /// Only stat: a file the stat cache cannot vouch for ends the look with
    /// [`NEEDS_CONTENT`], so the caller can hand the hashing to a worker thread.
    StatOnly,
}

/// The error kind of a [`Reading::StatOnly`] look that would have had to read a file.
pub const NEEDS_CONTENT: io::ErrorKind = io::ErrorKind::WouldBlock;

/// Hashes a project-relative path under `root`.
pub fn hash_path(root: &Path, rel: &str, cache: &StatCache) -> io::Result<PathState> {
    look(root, rel, cache, Reading::Content)
}

/// Hashes a project-relative path under `root`, reading no more than `reading` allows.
pub fn look(root: &Path, rel: &str, cache: &StatCache, reading: Reading) -> io::Result<PathState> {
    let full = root.join(rel);
    let meta = match fs::metadata(&full) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(PathState::Missing),
        Err(e) => return Err(e),
    };
    if meta.is_dir() {
        let mut files = Vec::new();
        collect_dir(root, rel, "", cache, reading, &mut files)?;
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
        let hash = manifest_hash(&files);
        return Ok(PathState::Dir { hash, files });
    }
    Ok(PathState::File {
        hash: hash_file_cached(&full, rel, &meta, cache, reading)?,
    })
}

fn collect_dir(
    root: &Path,
    dir_rel: &str,
    prefix: &str,
    cache: &StatCache,
    reading: Reading,
    out: &mut Vec<DirEntry>,
) -> io::Result<()> {
    let dir_full = root.join(dir_rel).join(prefix);
    let mut names: Vec<_> = fs::read_dir(&dir_full)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let Some(name) = name.to_str() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("file name in `{}` is not valid UTF-8", dir_full.display()),
            ));
        };
        let inner = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        let full = dir_full.join(name);
        let meta = fs::metadata(&full)?;
        if meta.is_dir() {
            collect_dir(root, dir_rel, &inner, cache, reading, out)?;
            continue;
        }
        let rel = format!("{dir_rel}/{inner}");
        let hash = hash_file_cached(&full, &rel, &meta, cache, reading)?;
        out.push(DirEntry {
            rel: inner,
            hash,
            executable: meta.mode() & 0o111 != 0,
        });
    }
    Ok(())
}

/// The manifest text of a folder: one line per file, sorted, `hash mode path`.
pub fn manifest_text(files: &[DirEntry]) -> String {
    let mut text = String::new();
    for f in files {
        text.push_str(&f.hash);
        text.push(' ');
        text.push(if f.executable { 'x' } else { '-' });
        text.push(' ');
        text.push_str(&f.rel);
        text.push('\n');
    }
    text
}

pub fn manifest_hash(files: &[DirEntry]) -> String {
    blake3::hash(manifest_text(files).as_bytes())
        .to_hex()
        .to_string()
}

/// Parses a manifest written by [`manifest_text`].
pub fn parse_manifest(text: &str) -> Option<Vec<DirEntry>> {
    text.lines()
        .map(|line| {
            let (hash, rest) = line.split_once(' ')?;
            let (mode, rel) = rest.split_once(' ')?;
            Some(DirEntry {
                rel: rel.to_string(),
                hash: hash.to_string(),
                executable: mode == "x",
            })
        })
        .collect()
}

fn mtime_ns(meta: &fs::Metadata) -> i128 {
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

fn hash_file_cached(
    full: &Path,
    rel: &str,
    meta: &fs::Metadata,
    cache: &StatCache,
    reading: Reading,
) -> io::Result<String> {
    let stat = (meta.len(), mtime_ns(meta), meta.ino());
    if let Some(e) = cache.get(rel) {
        if (e.size, e.mtime_ns, e.inode) == stat {
            return Ok(e.hash);
        }
    }
    if reading == Reading::StatOnly {
        return Err(io::Error::new(
            NEEDS_CONTENT,
            "the file changed since it was hashed",
        ));
    }
    let hash = hash_file(full)?;
    cache.put(
        rel,
        StatEntry {
            size: stat.0,
            mtime_ns: stat.1,
            inode: stat.2,
            hash: hash.clone(),
        },
    );
    Ok(hash)
}

/// Large files are read and hashed this many bytes at a time.
const HASH_BLOCK: usize = 8 << 20;

/// blake3 of a file's bytes; each block of a large file is hashed on several threads while the
/// next block is read on another (reading from the page cache took as long as hashing). Files are
/// read, not memory-mapped: every page of a mapped file counts toward the process's resident set,
/// so hashing a 1.5 GB raw export raised `repro run`'s peak to 1.5 GB.
pub fn hash_file(path: &Path) -> io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    let mut file = fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len <= HASH_BLOCK as u64 {
        // One byte more than the length, so that one read also finds the end of the file.
        let mut buf = vec![0u8; len as usize + 1];
        let n = read_block(&mut file, &mut buf)?;
        if n >= 1 << 20 {
            hasher.update_rayon(&buf[..n]);
        } else {
            hasher.update(&buf[..n]);
        }
        // A file that grew since its length was taken is hashed whole all the same.
        if n == buf.len() {
            hash_blocks(&mut file, &mut hasher)?;
        }
        return Ok(hasher.finalize().to_hex().to_string());
    }
    hash_blocks(&mut file, &mut hasher)?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// Feeds the rest of `file` to `hasher` block by block: a reader thread fills one of two buffers
/// while the other is hashed.
fn hash_blocks(file: &mut fs::File, hasher: &mut blake3::Hasher) -> io::Result<()> {
    use std::sync::mpsc;
    let (full_tx, full_rx) = mpsc::sync_channel::<(Vec<u8>, usize)>(1);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 0..2 {
        let _ = empty_tx.send(vec![0u8; HASH_BLOCK]);
    }
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || -> io::Result<()> {
            while let Ok(mut buf) = empty_rx.recv() {
                let n = read_block(file, &mut buf)?;
                let last = n < buf.len();
                if full_tx.send((buf, n)).is_err() || last {
                    break;
                }
            }
            Ok(())
        });
        // Ends when the reader has sent the last block or failed (it drops its sender).
        for (buf, n) in full_rx {
            hasher.update_rayon(&buf[..n]);
            let _ = empty_tx.send(buf);
        }
        reader
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the file reader panicked")))
    })
}

/// Fills `buf` from `file` unless the file ends first; the number of bytes read.
fn read_block(file: &mut fs::File, buf: &mut [u8]) -> io::Result<usize> {
    use io::Read;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blockwise_hash_equals_the_one_shot_hash_at_every_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        for len in [
            0,
            1,
            (1 << 20) - 1,
            1 << 20,
            HASH_BLOCK,
            HASH_BLOCK + 1,
            2 * HASH_BLOCK,
            2 * HASH_BLOCK + 12345,
        ] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + i / 4099) as u8).collect();
            fs::write(&path, &bytes).unwrap();
            let expected = blake3::hash(&bytes).to_hex().to_string();
            assert_eq!(hash_file(&path).unwrap(), expected, "length {len}");
        }
    }

    #[test]
    fn a_touched_file_keeps_its_hash_and_a_changed_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.txt"), "one").unwrap();
        let cache = StatCache::default();
        let h1 = hash_path(dir.path(), "a.txt", &cache).unwrap();
        fs::write(dir.path().join("a.txt"), "one").unwrap();
        let h2 = hash_path(dir.path(), "a.txt", &cache).unwrap();
        assert_eq!(h1, h2);
        fs::write(dir.path().join("a.txt"), "two").unwrap();
        let h3 = hash_path(dir.path(), "a.txt", &cache).unwrap();
        assert_ne!(h1, h3);
    }

    #[test]
    fn folders_hash_by_manifest() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("d/sub")).unwrap();
        fs::write(dir.path().join("d/x"), "1").unwrap();
        fs::write(dir.path().join("d/sub/y"), "2").unwrap();
        let cache = StatCache::default();
        let PathState::Dir { hash, files } = hash_path(dir.path(), "d", &cache).unwrap() else {
            panic!("not a dir")
        };
        let rels: Vec<&str> = files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(rels, ["sub/y", "x"]);
        assert_eq!(parse_manifest(&manifest_text(&files)).unwrap(), files);
        fs::write(dir.path().join("d/sub/y"), "3").unwrap();
        let changed = hash_path(dir.path(), "d", &cache).unwrap();
        assert_ne!(changed.hash(), Some(hash.as_str()));
    }

    #[test]
    fn a_stat_only_look_never_reads_a_changed_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.txt"), "one").unwrap();
        let cache = StatCache::default();
        let err = look(dir.path(), "a.txt", &cache, Reading::StatOnly).unwrap_err();
        assert_eq!(err.kind(), NEEDS_CONTENT);
        let h = hash_path(dir.path(), "a.txt", &cache).unwrap();
        assert_eq!(
            look(dir.path(), "a.txt", &cache, Reading::StatOnly).unwrap(),
            h
        );
        fs::write(dir.path().join("a.txt"), "changed").unwrap();
        let err = look(dir.path(), "a.txt", &cache, Reading::StatOnly).unwrap_err();
        assert_eq!(err.kind(), NEEDS_CONTENT);
    }

    #[test]
    fn missing_paths_are_missing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = StatCache::default();
        assert_eq!(
            hash_path(dir.path(), "nope", &cache).unwrap(),
            PathState::Missing
        );
    }
}
