//! What repro undoes when it is interrupted (SIGINT, SIGTERM, SIGHUP) while packaging or
//! verifying: files and folders it created outside the project, and the process groups of the
//! commands it started.
//!
//! Owns: one thread that waits for those signals (signal-hook's safe iterator, installed once,
//! only by `repro package` and `repro verify`), the list of paths to remove and process groups to
//! stop, and the exit with 128 + the signal's number; and [`TempDir`], a temporary folder removed when
//! dropped or interrupted. Deliberately does not own: which paths those
//! are (`package`, `verify`). `repro run` keeps the default handlers: the engine's store already
//! sweeps `cache/tmp` and moves outputs back on the next run.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// What to undo.
#[derive(Default)]
struct Pending {
    /// Paths (files or folders) to remove, with whether to keep an emptied folder itself.
    paths: Vec<(u64, PathBuf, bool)>,
    /// Process groups to stop.
    groups: Vec<(u64, u32)>,
    next: u64,
}

static PENDING: Mutex<Pending> = Mutex::new(Pending {
    paths: Vec::new(),
    groups: Vec::new(),
    next: 0,
});
static INSTALL: Once = Once::new();

/// Undoes its registration when dropped (the work finished: nothing to clean up any more).
#[must_use]
pub struct Registration(u64);

impl Drop for Registration {
    fn drop(&mut self) {
        let mut p = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        p.paths.retain(|(id, _, _)| *id != self.0);
        p.groups.retain(|(id, _)| *id != self.0);
    }
}

/// Starts the signal thread (once). Without it (it could not be installed) the default
/// handlers stay, and an interrupted repro may leave what it registered.
pub fn install() {
    INSTALL.call_once(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        let _ = std::thread::Builder::new()
            .name("repro-interrupt".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    undo();
                    std::process::exit(128 + sig);
                }
            });
    });
}

fn register(f: impl FnOnce(&mut Pending, u64)) -> Registration {
    let mut p = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    p.next += 1;
    let id = p.next;
    f(&mut p, id);
    Registration(id)
}

/// Removes `path` (a file, or a folder with everything in it) if repro is interrupted.
pub fn remove_on_signal(path: &Path) -> Registration {
    install();
    register(|p, id| p.paths.push((id, path.to_path_buf(), false)))
}

/// Removes everything inside the folder `path`, but not the folder, if repro is interrupted.
pub fn empty_on_signal(path: &Path) -> Registration {
    install();
    register(|p, id| p.paths.push((id, path.to_path_buf(), true)))
}

/// Stops the process group `pgid` (SIGTERM, then SIGKILL after a grace period) if repro is
/// interrupted; paths are removed only after the group is gone.
pub fn stop_group_on_signal(pgid: u32) -> Registration {
    install();
    register(|p, id| p.groups.push((id, pgid)))
}

fn undo() {
    // Commands the engine is running in this process sit in process groups of their own: stop
    // them too before exiting (the engine's own handler would, but this process exits now).
    repro_engine::stop::interrupt();
    let p = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    for (_, g) in &p.groups {
        signal_group(*g, "TERM");
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while p.groups.iter().any(|(_, g)| signal_group(*g, "0")) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for (_, g) in &p.groups {
        signal_group(*g, "KILL");
    }
    for (_, path, keep_folder) in &p.paths {
        if *keep_folder {
            if let Ok(entries) = std::fs::read_dir(path) {
                for e in entries.flatten() {
                    let _ = remove(&e.path());
                }
            }
        } else {
            let _ = remove(path);
        }
    }
}

fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    }
}

/// Sends `signal` to the process group `pgid` with the shell's `kill` (no `unsafe` call in
/// repro for it); true when the group exists.
pub fn signal_group(pgid: u32, signal: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("kill -s {signal} -- -{pgid} 2>/dev/null")])
        .stdin(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A new folder, removed when dropped, and when repro is interrupted.
pub struct TempDir(pub PathBuf, Option<Registration>);

impl TempDir {
    pub fn new(parent: Option<&Path>, label: &str) -> io::Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let dir = parent.join(format!("repro-{label}-{}-{nanos}", std::process::id()));
        fs::create_dir(&dir)?;
        let undo = remove_on_signal(&dir);
        Ok(TempDir(dir, Some(undo)))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
        self.1.take();
    }
}
