//! Honest stage keys: a built-in stage's key covers the code of its kind and nothing else.
//!
//! The repro binary records in `repro.lock` the code fingerprint of every built-in stage it ran;
//! `repro-fingerprint` computes the same fingerprint from a source tree. The tests below check
//! that the two agree on this tree, and then ask the library what edits to a copy of the tree
//! would change: an edit to the CLI, the UI, lint or the report changes no kind's fingerprint,
//! an edit to the estimators changes the table kinds' and not the data stages'.

use std::path::{Path, PathBuf};

use crate::Project;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rustc_version() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .expect("run rustc --version");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn fingerprint(root: &Path, package: &str) -> repro_fingerprint::Fingerprint {
    repro_fingerprint::fingerprint(root, package, "rustc (test)").unwrap()
}

/// A copy of what the fingerprints read: the manifests, the lock, and every package's parts.
fn copy_of_workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = workspace();
    let mut packages = vec![PathBuf::new()];
    for e in std::fs::read_dir(root.join("crates")).unwrap() {
        packages.push(Path::new("crates").join(e.unwrap().file_name()));
    }
    copy(&root.join("Cargo.lock"), &dir.path().join("Cargo.lock"));
    for pkg in packages {
        for part in repro_fingerprint::PACKAGE_PARTS {
            let from = root.join(&pkg).join(part);
            if from.exists() {
                copy(&from, &dir.path().join(&pkg).join(part));
            }
        }
    }
    dir
}

fn copy(from: &Path, to: &Path) {
    if from.is_dir() {
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            copy(&e.path(), &to.join(e.file_name()));
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
}

fn append(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    let mut bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("`{rel}`: {e}"));
    bytes.extend_from_slice(text.as_bytes());
    std::fs::write(p, bytes).unwrap();
}

/// Every built-in stage in the lock of a run of the default pipeline records the code fingerprint
/// of its kind's crate as `repro-fingerprint` computes it from this tree (called by the study
/// test, which runs the pipeline once for all its checks).
pub fn check_lock_fingerprints(p: &Project) {
    let lock: serde_json::Value = serde_json::from_str(&p.read("repro.lock")).unwrap();
    let rustc = rustc_version();
    let expected = |package: &str| {
        repro_fingerprint::fingerprint(&workspace(), package, &rustc)
            .unwrap()
            .hex
    };
    let (study, tables) = (expected("repro-study"), expected("repro-tables"));
    let stages = lock["stages"].as_object().unwrap();
    assert_eq!(stages.len(), 13);
    for (name, entry) in stages {
        let kind: serde_json::Value =
            serde_json::from_str(entry["kind"].as_str().unwrap()).unwrap();
        let kind = kind["kind"].as_str().unwrap();
        let package = match kind {
            "synth" | "ingest" | "locate" | "index" | "panel" => "repro-study",
            _ => "repro-tables",
        };
        let code = if package == "repro-study" {
            &study
        } else {
            &tables
        };
        assert_eq!(
            entry["engine"].as_str().unwrap(),
            format!("{package}:{code}:{kind}@1"),
            "stage `{name}`"
        );
    }
}

#[test]
fn editing_the_cli_ui_lint_or_report_changes_no_kind() {
    let ws = copy_of_workspace();
    let before = (
        fingerprint(ws.path(), "repro-study").hex,
        fingerprint(ws.path(), "repro-tables").hex,
    );
    for rel in [
        "src/ui.rs",
        "src/cli.rs",
        "src/report/mod.rs",
        "src/replication/lint.rs",
        "src/replication/readme.rs",
        "crates/engine/src/runner.rs",
    ] {
        append(ws.path(), rel, "\n// an edit\n");
    }
    let after = (
        fingerprint(ws.path(), "repro-study").hex,
        fingerprint(ws.path(), "repro-tables").hex,
    );
    assert_eq!(before, after);
}

#[test]
fn editing_the_estimators_changes_the_table_kinds_only() {
    let ws = copy_of_workspace();
    let study = fingerprint(ws.path(), "repro-study");
    let tables = fingerprint(ws.path(), "repro-tables");
    // Its build-dependency `repro-fingerprint` counts too: a new way of fingerprinting reruns
    // every kind once.
    assert_eq!(
        study.workspace_packages,
        [
            "repro-fingerprint",
            "repro-kind",
            "repro-study",
            "repro-tabular"
        ]
    );
    assert!(tables
        .workspace_packages
        .contains(&"repro-estimators".to_string()));
    append(ws.path(), "crates/estimators/src/lib.rs", "\n// an edit\n");
    assert_eq!(fingerprint(ws.path(), "repro-study").hex, study.hex);
    assert_ne!(fingerprint(ws.path(), "repro-tables").hex, tables.hex);
}

#[test]
fn the_embedded_font_counts_for_the_table_kinds() {
    let ws = copy_of_workspace();
    let tables = fingerprint(ws.path(), "repro-tables").hex;
    append(ws.path(), "crates/tables/assets/fonts/repro-sans.ttf", "x");
    assert_ne!(fingerprint(ws.path(), "repro-tables").hex, tables);
}

#[test]
fn editing_a_data_stage_leaves_the_table_kinds_alone() {
    let ws = copy_of_workspace();
    let tables = fingerprint(ws.path(), "repro-tables").hex;
    let study = fingerprint(ws.path(), "repro-study").hex;
    append(ws.path(), "crates/study/src/synth.rs", "\n// an edit\n");
    assert_eq!(fingerprint(ws.path(), "repro-tables").hex, tables);
    assert_ne!(fingerprint(ws.path(), "repro-study").hex, study);
}
