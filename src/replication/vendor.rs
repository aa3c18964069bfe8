//! Vendoring: the source of every registry crate repro's `Cargo.lock` names, so that a package
//! builds repro with `cargo build --offline --locked` on a machine with no network and an empty
//! cargo home.
//!
//! Owns: writing the embedded repro source into a temporary workspace and running `cargo vendor
//! --locked` there: first with `--offline` (from the local registry cache), and when the cache
//! lacks a crate (cargo vendors the crates of every platform, not only this one) again without it,
//! which downloads the missing `.crate` files from crates.io and nothing else. Also the
//! `.cargo/config.toml` cargo prints for the vendored sources. Deliberately does not own: what
//! else goes into the package (`package`), or building (`run.sh`).

use std::path::Path;
use std::process::{Command, Stdio};

use crate::replication::interrupt::TempDir;
use repro_kind::diag::{Diagnostic, Failure};

/// The vendored crates in a temporary folder (removed when dropped).
pub struct Vendored {
    pub dir: TempDir,
    /// `vendor/...` files under `dir`, sorted.
    pub files: Vec<String>,
    /// What `cargo vendor` printed: the `.cargo/config.toml` that points cargo at `vendor/`.
    pub config: String,
    /// Whether crates.io had to be asked (the local cache lacked some crate).
    pub downloaded: bool,
}

/// Vendors the dependencies of the embedded source.
pub fn vendor() -> Result<Vendored, Failure> {
    let dir = TempDir::new(None, "vendor")
        .map_err(|e| Failure::io("cannot make a temporary folder", &e))?;
    let src = crate::replication::srcpack::files().map_err(|e| {
        Failure::stage(Diagnostic::new("cannot read the embedded repro source").cause(e))
    })?;
    for f in &src {
        let to = dir.0.join(&f.path);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Failure::io("cannot write the repro source to vendor it", &e))?;
        }
        std::fs::write(&to, f.bytes)
            .map_err(|e| Failure::io("cannot write the repro source to vendor it", &e))?;
    }
    let (config, downloaded) = match cargo_vendor(&dir.0, true) {
        Ok(config) => (config, false),
        Err(offline_err) => {
            tracing::info!(
                "vendoring from the local cache failed ({offline_err:?}); asking crates.io"
            );
            (cargo_vendor(&dir.0, false)?, true)
        }
    };
    if !config.contains("[source.vendored-sources]") {
        return Err(Failure::stage(
            Diagnostic::new("`cargo vendor` printed no source configuration")
                .cause(format!("it printed: {}", config.trim()))
                .hint("pass `--no-vendor` to package without vendored crates"),
        ));
    }
    let files = crate::replication::files::list_files(&dir.0, "vendor")
        .map_err(|e| Failure::io("cannot read the vendored crates", &e))?;
    Ok(Vendored {
        dir,
        files,
        config,
        downloaded,
    })
}

/// Runs `cargo vendor --locked [--offline] vendor` in `workspace`; Ok with what it printed.
fn cargo_vendor(workspace: &Path, offline: bool) -> Result<String, Failure> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.arg("vendor").arg("--locked");
    if offline {
        cmd.arg("--offline");
    }
    let out = cmd
        .arg("vendor")
        .current_dir(workspace)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            Failure::stage(
                Diagnostic::new("cannot run `cargo vendor` to vendor repro's dependencies")
                    .cause(e.to_string())
                    .hint("install Rust (cargo), or pass `--no-vendor` to package without vendored crates"),
            )
        })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(Failure::stage(
        Diagnostic::new(format!(
            "`cargo vendor{}` failed",
            if offline { " --offline" } else { "" }
        ))
        .cause(tail.join("\n"))
        .hint("vendoring needs the crates in cargo's cache or access to crates.io; pass `--no-vendor` to package without them"),
    ))
}
