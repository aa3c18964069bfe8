//! The one integration test binary: runs the real `repro` in temporary folders.

mod columns;
mod columns_at;
mod curve;
mod data;
mod diff;
mod dvc;
mod engine;
mod errors;
mod exhibits;
mod faults;
mod fingerprint;
mod fit;
mod fit_stats;
mod fuzz_corpus;
mod hints;
mod huge_pages;
mod ingest;
mod latex;
mod limits;
mod messages;
mod offline;
mod package;
mod package_safety;
mod places;
mod present;
mod remote;
mod slurm;
mod status_fields;
mod study;
mod study_truth;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A project in a temporary folder.
pub struct Project {
    dir: tempfile::TempDir,
}

/// What one `repro` invocation did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Exit code, stdout and stderr together, as a snapshot shows them.
    pub fn snapshot(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success:\n{}", self.snapshot());
        self
    }
}

impl Default for Project {
    fn default() -> Self {
        Project::new()
    }
}

impl Project {
    pub fn new() -> Project {
        Project {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, content: &str) -> &Self {
        let p = self.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, content).unwrap();
        self
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel))
            .unwrap_or_else(|e| panic!("cannot read `{rel}`: {e}"))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path().join(rel).exists()
    }

    pub fn remove(&self, rel: &str) {
        let p = self.path().join(rel);
        if p.is_dir() {
            std::fs::remove_dir_all(p).unwrap();
        } else {
            std::fs::remove_file(p).unwrap();
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(repro_bin());
        c.args(args)
            .current_dir(self.path())
            .env("CI", "true")
            .env_remove("RUST_LOG");
        c
    }

    pub fn repro(&self, args: &[&str]) -> Out {
        let o = self.command(args).output().expect("run repro");
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Number of lines in a file the stages append to each time they really run.
    pub fn count(&self, rel: &str) -> usize {
        std::fs::read_to_string(self.path().join(rel))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}

/// The binary under test; `REPRO_TEST_BIN` runs the tests against another build (e.g. the
/// previous release, to see a new test fail before its fix).
pub fn repro_bin() -> PathBuf {
    std::env::var_os("REPRO_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_repro")))
}

/// Insta settings that hide what varies between runs: temp paths and durations.
pub fn snapshot_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(r"/tmp/\.tmp[A-Za-z0-9]+", "[TMP]");
    s.add_filter(r"\(\d+\.\d+s\)", "([TIME])");
    s.set_prepend_module_to_snapshot(false);
    s
}
