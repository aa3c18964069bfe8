//! Build script: packs the workspace source into a deterministic archive that the binary embeds,
//! so `repro package` can write the exact source of the running repro (with `Cargo.lock`) into a
//! replication package; and records the `rustc` version for the package's README.
//!
//! The archive holds only what building repro needs plus its documentation: `Cargo.toml`,
//! `Cargo.lock`, `build.rs`, `README.md`, `ARCHITECTURE.md`, `LICENSE-MIT`, `LICENSE-APACHE`,
//! `docs/`, `src/`, and
//! for each crate under `crates/` its `Cargo.toml`, `build.rs`, `src/` and `assets/`. Not `target/`, `tests/`, `bench/`,
//! `cache/` or `output/`. Files are sorted by path and carry no times, so equal sources give
//! byte-identical archives. Format (read by `src/srcpack.rs`): per file one header line
//! `F <length> <mode> <path>\n` followed by the bytes.

use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));

    let mut files = Vec::new();
    // What the archive is made of, each watched (`cargo:rerun-if-changed`): exactly the files
    // and trees read here, so the list is also what a package's source must hold.
    let mut parts: Vec<String> = [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "README.md",
        "ARCHITECTURE.md",
        "LICENSE-MIT",
        "LICENSE-APACHE",
        "src",
        "docs",
    ]
    .map(String::from)
    .to_vec();
    if let Ok(entries) = fs::read_dir(root.join("crates")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // What a crate's build reads: its manifest, build script, sources and embedded
            // assets (the parts its code fingerprint covers too).
            for part in ["Cargo.toml", "build.rs", "src", "assets"] {
                parts.push(format!("crates/{name}/{part}"));
            }
        }
    }
    parts.sort();
    for part in &parts {
        if root.join(part).is_dir() {
            add_tree(&root, part, &mut files);
        } else {
            add_file(&root, part, &mut files);
        }
    }
    files.sort();
    files.dedup();

    let mut archive = Vec::new();
    for rel in &files {
        let full = root.join(rel);
        let bytes = fs::read(&full).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"));
        let mode = if is_executable(&full) { 755 } else { 644 };
        archive.extend_from_slice(format!("F {} {mode} {rel}\n", bytes.len()).as_bytes());
        archive.extend_from_slice(&bytes);
    }
    fs::write(out.join("repro-src.pack"), &archive).expect("write the source archive");

    for part in &parts {
        if root.join(part).exists() {
            println!("cargo:rerun-if-changed={part}");
        }
    }

    // The target triple, for the package README and run.sh (`replication/shipped.rs`).
    let target = std::env::var("TARGET").expect("set by cargo");
    println!("cargo:rustc-env=REPRO_TARGET={target}");

    let version = repro_fingerprint::rustc_version();
    println!("cargo:rustc-env=REPRO_RUSTC_VERSION={version}");
}

fn add_file(root: &Path, rel: &str, files: &mut Vec<String>) {
    if root.join(rel).is_file() {
        files.push(rel.to_string());
    }
}

/// Every regular file under `rel`, skipping hidden files and editor leftovers.
fn add_tree(root: &Path, rel: &str, files: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(root.join(rel)) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with('~') || name.ends_with(".tmp") {
            continue;
        }
        let child = format!("{rel}/{name}");
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            add_tree(root, &child, files);
        } else if kind.is_file() {
            files.push(child);
        }
    }
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p)
        .map(|m| m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn is_executable(_: &Path) -> bool {
    false
}
