//! The other state `repro diff` compares with: a git revision's lock or a saved lock file.
//!
//! Owns: telling a lock file from a revision, reading a lock with `git show REV:./LOCK` in the
//! pipeline's folder, and the errors when either cannot be read (exit 2, with a hint).
//! Deliberately does not own: the lock format (`repro_engine::lock`) or the comparison.

use std::path::Path;
use std::process::Command;

use repro_engine::lock::{self, LockFile};
use repro_kind::diag::{Diagnostic, Failure};

/// The other lock and how to name it in the output.
pub struct Other {
    pub label: String,
    pub lock: LockFile,
}

/// `arg` is an existing file: a saved lock; anything else is a git revision (default `HEAD`)
/// whose copy of `lock_name` is read in the git repository holding `root`.
pub fn resolve(arg: Option<&str>, root: &Path, lock_name: &str) -> Result<Other, Failure> {
    let arg = arg.unwrap_or("HEAD");
    let as_file = Path::new(arg);
    if as_file.is_file() {
        let lock = lock::read(as_file).map_err(|mut f| {
            for d in &mut f.diagnostics {
                d.hint = Some("pass a lock file written by `repro run`, or a git revision".into());
            }
            f
        })?;
        return Ok(Other {
            label: arg.to_string(),
            lock,
        });
    }
    let text = git_show(arg, root, lock_name)?;
    let lock = serde_json::from_str::<LockFile>(&text).map_err(|e| {
        Failure::usage(
            Diagnostic::new(format!(
                "the lock `{lock_name}` in revision `{arg}` is damaged"
            ))
            .cause(e.to_string())
            .hint("compare with another revision, or with a saved lock file"),
        )
    })?;
    Ok(Other {
        label: format!("{arg}:{lock_name}"),
        lock,
    })
}

/// The text of `lock_name` (in `root`) at revision `rev`.
fn git_show(rev: &str, root: &Path, lock_name: &str) -> Result<String, Failure> {
    let git = |args: &[&str]| Command::new("git").arg("-C").arg(root).args(args).output();
    let cannot_run = |e: std::io::Error| {
        Failure::usage(
            Diagnostic::new(format!("cannot read revision `{rev}`: git cannot be run"))
                .cause(e.to_string())
                .hint("install git, or pass a saved lock file: `repro diff FILE.lock`"),
        )
    };
    let inside = git(&["rev-parse", "--git-dir"]).map_err(cannot_run)?;
    if !inside.status.success() {
        return Err(Failure::usage(
            Diagnostic::new(format!(
                "`{rev}` is neither a file nor a revision: the project is not in a git repository"
            ))
            .hint("pass a saved lock file (`repro diff FILE.lock`), or keep the project in git and commit `repro.lock`"),
        ));
    }
    let commit = format!("{rev}^{{commit}}");
    let known = git(&["rev-parse", "--verify", "--quiet", &commit]).map_err(cannot_run)?;
    if rev.starts_with('-') || !known.status.success() {
        return Err(Failure::usage(
            Diagnostic::new(format!("unknown revision `{rev}`"))
                .cause(format!("no file `{rev}` exists either"))
                .hint("name a commit, branch or tag (`git log --oneline`), or a saved lock file"),
        ));
    }
    let spec = format!("{rev}:./{lock_name}");
    let shown = git(&["show", &spec]).map_err(cannot_run)?;
    if !shown.status.success() {
        return Err(Failure::usage(
            Diagnostic::new(format!("revision `{rev}` has no `{lock_name}`"))
                .cause(String::from_utf8_lossy(&shown.stderr).trim().to_string())
                .hint(format!(
                    "commit the lock with the results it describes (`git add {lock_name}`), or compare with a saved lock file"
                )),
        ));
    }
    String::from_utf8(shown.stdout).map_err(|_| {
        Failure::usage(Diagnostic::new(format!(
            "the lock `{lock_name}` in revision `{rev}` is not UTF-8 text"
        )))
    })
}
