//! A remote in a folder on a shared filesystem (NFS, a mounted drive, a synced folder).
//!
//! Owns: the folder's files: `objects/ab/cdef…`, `stages/<key>` and `tmp/` for writes in
//! progress. A write goes to a temporary file in `tmp/` (same filesystem), is flushed, then gets
//! its final name with link(2), which fails instead of replacing an existing file (or, where the
//! filesystem has no hard links, `renameat2(RENAME_NOREPLACE)`). So two clones pushing at once
//! both succeed and one intact copy stays. Deliberately does not own: verification (the engine
//! hashes everything it downloads) or creating the folder (a missing folder is more often an
//! unmounted share than a new remote).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use repro_engine::remote::{object_key, Put, Remote, RemoteError};
use repro_kind::diag::Diagnostic;

pub struct Folder {
    root: PathBuf,
    name: String,
    counter: AtomicU64,
}

impl Folder {
    pub fn open(root: &Path, name: String) -> Result<Folder, Diagnostic> {
        match fs::metadata(root) {
            Ok(m) if m.is_dir() => Ok(Folder {
                root: root.to_path_buf(),
                name,
                counter: AtomicU64::new(0),
            }),
            Ok(_) => Err(Diagnostic::new(format!("remote `{name}` is not a folder"))),
            Err(e) => Err(
                Diagnostic::new(format!("cannot open remote folder `{name}`"))
                    .cause(e.to_string())
                    .hint("create the folder (or mount the share) first; repro does not create it"),
            ),
        }
    }

    fn err(&self, what: &str, path: &Path, e: io::Error) -> RemoteError {
        RemoteError(format!("{what} `{}`: {e}", path.display()))
    }

    /// Writes `fill` into a temporary file, then names it `dest` unless `dest` exists.
    fn create_only(
        &self,
        dest: &Path,
        fill: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> Result<bool, RemoteError> {
        let tmp_dir = self.root.join("tmp");
        let parent = dest.parent().unwrap_or(&self.root);
        for d in [&tmp_dir, &parent.to_path_buf()] {
            fs::create_dir_all(d).map_err(|e| self.err("cannot create", d, e))?;
        }
        let tmp = tmp_dir.join(format!(
            "{}-{}-{}",
            std::process::id(),
            self.counter.fetch_add(1, Ordering::Relaxed),
            dest.file_name().and_then(|n| n.to_str()).unwrap_or("x")
        ));
        let written = (|| {
            let mut f = File::create(&tmp)?;
            fill(&mut f)?;
            f.sync_all()?;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o444))
        })();
        let named = written.and_then(|()| link_no_replace(&tmp, dest));
        let _ = fs::remove_file(&tmp);
        match named {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(self.err("cannot write", dest, e)),
        }
    }
}

/// Gives `tmp` the name `dest` without ever replacing an existing `dest`.
fn link_no_replace(tmp: &Path, dest: &Path) -> io::Result<()> {
    match fs::hard_link(tmp, dest) {
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EPERM | libc::ENOTSUP | libc::EMLINK)
            ) =>
        {
            rename_no_replace(tmp, dest)
        }
        other => other,
    }
}

#[cfg(target_os = "linux")]
fn rename_no_replace(tmp: &Path, dest: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let cstr = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
    };
    let (from, to) = (cstr(tmp)?, cstr(dest)?);
    // SAFETY: both pointers are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn rename_no_replace(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "the filesystem has no hard links and this system has no no-replace rename",
    ))
}

impl Remote for Folder {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn get_record(&self, key: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        let path = self.root.join("stages").join(key);
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err("cannot read", &path, e)),
        }
    }

    fn put_record(&self, key: &str, bytes: &[u8]) -> Result<Put, RemoteError> {
        let dest = self.root.join("stages").join(key);
        let created = self.create_only(&dest, |f| f.write_all(bytes))?;
        Ok(if created { Put::Created } else { Put::Existed })
    }

    fn has_object(&self, hash: &str) -> Result<bool, RemoteError> {
        let path = self.root.join(object_key(hash));
        match fs::metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.err("cannot read", &path, e)),
        }
    }

    fn get_object(
        &self,
        hash: &str,
        dest: &Path,
        progress: &dyn Fn(u64),
    ) -> Result<bool, RemoteError> {
        let path = self.root.join(object_key(hash));
        let mut src = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(self.err("cannot read", &path, e)),
        };
        let copied = (|| {
            let mut out = File::create(dest)?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = src.read(&mut buf)?;
                if n == 0 {
                    return out.flush();
                }
                out.write_all(&buf[..n])?;
                progress(n as u64);
            }
        })();
        copied.map_err(|e| self.err("cannot copy", &path, e))?;
        Ok(true)
    }

    fn put_object(&self, hash: &str, src: &Path) -> Result<Put, RemoteError> {
        let dest = self.root.join(object_key(hash));
        let created = self.create_only(&dest, |f| {
            io::copy(&mut File::open(src)?, f)?;
            Ok(())
        })?;
        if created {
            return Ok(Put::Created);
        }
        // Someone else created it: the same content has the same size.
        let theirs = fs::metadata(&dest).map_err(|e| self.err("cannot read", &dest, e))?;
        let ours = fs::metadata(src).map_err(|e| self.err("cannot read", src, e))?;
        if theirs.len() != ours.len() {
            return Err(RemoteError(format!(
                "`{}` already exists with {} bytes instead of {}: it is damaged",
                dest.display(),
                theirs.len(),
                ours.len()
            )));
        }
        Ok(Put::Existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_create_only_even_when_racing() {
        let dir = tempfile::tempdir().unwrap();
        let remote = Folder::open(dir.path(), "shared".into()).unwrap();
        let src = dir.path().join("src");
        fs::write(&src, b"payload").unwrap();
        let hash = "cd".repeat(32);
        let results: Vec<Put> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| remote.put_object(&hash, &src).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|&&p| p == Put::Created).count(), 1);
        let stored = dir.path().join(object_key(&hash));
        assert_eq!(fs::read(&stored).unwrap(), b"payload");
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        // A different size under the same name is damage, and nothing is replaced.
        fs::write(&src, b"other payload").unwrap();
        let err = remote.put_object(&hash, &src).unwrap_err();
        assert!(err.0.contains("it is damaged"), "{err}");
        assert_eq!(fs::read(&stored).unwrap(), b"payload");
        assert_eq!(remote.put_record("k", b"one").unwrap(), Put::Created);
        assert_eq!(remote.put_record("k", b"two").unwrap(), Put::Existed);
        assert_eq!(
            remote.get_record("k").unwrap().as_deref(),
            Some(&b"one"[..])
        );
        assert_eq!(remote.get_record("none").unwrap(), None);
    }

    #[test]
    fn a_missing_folder_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("not-mounted");
        let d = Folder::open(&gone, "x".into()).err().unwrap();
        assert!(
            d.message.contains("cannot open remote folder"),
            "{}",
            d.message
        );
        assert!(!gone.exists());
    }
}
