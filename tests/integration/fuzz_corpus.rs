//! Replays the committed corpus of every fuzz target (`fuzz/corpus/TARGET/`, and the inputs that
//! once crashed a target, `fuzz/regressions/TARGET/`) through the very checks the targets run, so
//! CI exercises them on the stable toolchain without libFuzzer (docs/reliability.md, "Fuzzing").
//!
//! Owns: finding the inputs and feeding them. Deliberately does not own: the checks
//! (`fuzz/src/checks.rs`, compiled here by path) or running the fuzzer.

#[path = "../../src/replication/archive.rs"]
#[allow(dead_code)]
mod archive;
#[path = "../../fuzz/src/checks.rs"]
mod checks;

use std::path::PathBuf;

/// Every committed input of `target`, by file name.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

/// Feeds every input of `target` to `check`; a failing one is named.
fn replay(target: &str, check: fn(&[u8]), at_least: usize) {
    let inputs = inputs(target);
    assert!(
        inputs.len() >= at_least,
        "fuzz/corpus/{target} holds {} inputs; was the corpus committed?",
        inputs.len()
    );
    for (path, bytes) in &inputs {
        let result = std::panic::catch_unwind(|| check(bytes));
        assert!(
            result.is_ok(),
            "fuzz input `{}` fails its check",
            path.display()
        );
    }
}

#[test]
fn pipeline_corpus() {
    replay("pipeline", checks::pipeline, 20);
}

#[test]
fn spec_corpus() {
    replay("spec", checks::spec, 20);
}

#[test]
fn formula_corpus() {
    replay("formula", checks::formula, 20);
}

#[test]
fn csv_corpus() {
    replay("csv", checks::csv, 5);
}

#[test]
fn textnorm_corpus() {
    replay("textnorm", checks::textnorm, 20);
}

#[test]
fn unzip_corpus() {
    replay("unzip", checks::unzip, 20);
}
