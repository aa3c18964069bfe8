//! Replication packages as authors and data editors use them: `repro package`, `repro verify`,
//! `repro lint`, and byte-identical outputs across runs, job counts, thread counts and folders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{repro_bin, snapshot_settings, Out, Project};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/estimators")
}

/// The template's sections (Social Science Data Editors), as the package README must have them.
const SECTIONS: &[&str] = &[
    "## Overview",
    "## Data Availability and Provenance Statements",
    "### Statement about Rights",
    "### License for Data",
    "### Summary of Availability",
    "### Details on each Data Source",
    "## Dataset list",
    "## Computational requirements",
    "### Software Requirements",
    "### Controlled Randomness",
    "### Memory, Runtime and Storage Requirements",
    "## Description of programs/code",
    "### License for Code",
    "## Instructions to Replicators",
    "## List of tables and programs",
    "## References",
];

/// A seeded command stage (awk's generator, seeded from `${seed}`) and a quantile regression
/// with bootstrap standard errors (seed 7), with sources and exhibits.
const SMALL: &str = r#"title: Engel curves, drawn and bootstrapped
authors: [A. Author, B. Author]
license: MIT
sources:
  engel:
    files: [data/engel.csv]
    citation: "Koenker, R. and G. Bassett (1982). Robust tests for heteroscedasticity based on regression quantiles. Econometrica 50(1), 43-61."
    license: public domain
    access: "R package quantreg, `data(engel)`"
exhibits:
  output/draws.csv: Table 1
  output/engel_boot.json: Table 2
stages:
  draws:
    desc: Five uniform draws
    cmd: sh stages/draws.sh ${seed} output/draws.csv
    deps: [stages/draws.sh]
    outs: [output/draws.csv]
    seed: 42
  engel_boot:
    kind: fit
    params:
      data: data/engel.csv
      formula: foodexp ~ income
      quantile: 0.5
      se: bootstrap:50:7
      out: output/engel_boot.json
"#;

const DRAWS_SH: &str = r#"#!/bin/sh
set -eu
mkdir -p "$(dirname "$2")"
awk -v s="$1" 'BEGIN { srand(s); print "i,x"; for (i = 1; i <= 5; i++) printf "%d,%.6f\n", i, rand() }' > "$2"
"#;

fn small_project() -> Project {
    let p = Project::new();
    p.write("pipeline.yaml", SMALL)
        .write("stages/draws.sh", DRAWS_SH)
        .write(
            "data/engel.csv",
            &std::fs::read_to_string(fixtures().join("engel.csv")).unwrap(),
        );
    p
}

fn repro_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let o = std::process::Command::new(repro_bin())
        .args(args)
        .current_dir(dir)
        .env("CI", "true")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .expect("run repro");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Every file under `dir` (relative path -> bytes), skipping `cache/`.
fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel == "cache" {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                walk(root, &e.path(), out);
            } else {
                out.insert(rel, std::fs::read(e.path()).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn flip_a_byte(file: &Path) {
    let mut bytes = std::fs::read(file).unwrap();
    let last_digit = bytes.iter().rposition(|b| b.is_ascii_digit()).unwrap();
    bytes[last_digit] = if bytes[last_digit] == b'9' {
        b'8'
    } else {
        bytes[last_digit] + 1
    };
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn package_unpack_elsewhere_verify_then_tamper() {
    let p = small_project();
    p.repro(&["run"]).ok();
    assert_eq!(p.read("output/draws.csv").lines().count(), 6);
    let pkg = tempfile::tempdir().unwrap();
    let pkg_dir = pkg.path().join("pkg");
    let out = p.repro(&["package", "--no-vendor", "--out", pkg_dir.to_str().unwrap()]);
    out.ok();
    assert!(
        out.stdout.contains("packaged 2 stages, 2 outputs"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("incomplete"), "{}", out.stdout);
    for f in [
        "README.md",
        "run.sh",
        "MANIFEST.sha256",
        "MANIFEST.blake3",
        "pipeline.yaml",
        "repro.lock",
        "stages/draws.sh",
        "data/engel.csv",
        "output/draws.csv",
        "output/engel_boot.json",
        "repro-src/Cargo.toml",
        "repro-src/Cargo.lock",
        "repro-src/build.rs",
        "repro-src/src/main.rs",
    ] {
        assert!(pkg_dir.join(f).is_file(), "{f} missing from the package");
    }
    assert!(!pkg_dir.join("cache").exists());
    // The manifest is `sha256sum -c` compatible.
    let check = std::process::Command::new("sha256sum")
        .args(["-c", "--quiet", "MANIFEST.sha256"])
        .current_dir(&pkg_dir)
        .output();
    if let Ok(check) = check {
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stdout)
        );
    }

    // Unpack elsewhere and verify there.
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("unpacked");
    copy_tree(&pkg_dir, &copy);
    let verified = repro_in(&copy, &["verify"], &[]);
    verified.ok();
    assert!(
        verified
            .stdout
            .contains("2 of 2 outputs reproduce byte for byte"),
        "{}",
        verified.stdout
    );
    assert!(
        verified.stdout.contains("manifest: "),
        "{}",
        verified.stdout
    );

    // One flipped byte in one output: verify fails and names the file and the cell.
    flip_a_byte(&copy.join("output/draws.csv"));
    let tampered = repro_in(&copy, &["verify", "."], &[]);
    assert_eq!(tampered.code, 1, "{}", tampered.snapshot());
    assert!(
        tampered
            .stdout
            .contains("DIFFERS `output/draws.csv`: its checksum does not match MANIFEST.sha256"),
        "{}",
        tampered.stdout
    );
    assert!(
        tampered.stdout.contains("row 5, column `x`"),
        "{}",
        tampered.stdout
    );
    assert!(
        tampered.stderr.contains("error: verification failed"),
        "{}",
        tampered.stderr
    );
    assert!(
        !tampered.stdout.contains("engel_boot.json`"),
        "{}",
        tampered.stdout
    );
}

#[test]
fn the_readme_follows_the_template_with_real_facts() {
    let p = small_project();
    p.repro(&["run"]).ok();
    let pkg = tempfile::tempdir().unwrap();
    let dir = pkg.path().join("pkg");
    p.repro(&["package", "--no-vendor", "--out", dir.to_str().unwrap()])
        .ok();
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let mut at = 0;
    for s in SECTIONS {
        let found = readme[at..]
            .find(&format!("\n{s}\n"))
            .unwrap_or_else(|| panic!("section `{s}` missing or out of order:\n{readme}"));
        at += found + 1;
    }
    assert!(!readme.contains("MISSING"), "{readme}");
    // Versions.
    assert!(readme.contains("- repro 0.1.0"), "{readme}");
    assert!(
        readme.contains("this repro was built with `rustc 1."),
        "{readme}"
    );
    assert!(readme.contains("- stage `draws` calls `sh`"), "{readme}");
    // Seeds: the command stage's and the bootstrap's.
    assert!(readme.contains("| `draws` | 42 |"), "{readme}");
    assert!(readme.contains("| `engel_boot` | 7 |"), "{readme}");
    // Runtimes and peak memory measured on the last run (the command's from wait4), and the
    // machine.
    for (stage, of) in [("draws", "command"), ("engel_boot", "repro")] {
        let row = readme
            .lines()
            .find(|l| {
                l.starts_with(&format!("| `{stage}` | ")) && l.ends_with(&format!(" ({of}) |"))
            })
            .unwrap_or_else(|| panic!("no runtime and memory row for {stage}:\n{readme}"));
        assert!(row.contains(" s | "), "{row}");
        assert!(row.contains("iB ("), "{row}");
    }
    // The paper, rights, licences, availability, network, buckets, exhibits statement.
    assert!(
        readme.starts_with("# Replication package: Engel curves, drawn and bootstrapped\n"),
        "{readme}"
    );
    assert!(
        readme.contains("Authors: A. Author, B. Author."),
        "{readme}"
    );
    assert!(
        readme.contains(
            "- [x] I certify that the author(s) of the manuscript have legitimate access"
        ),
        "{readme}"
    );
    assert!(readme.contains("- `engel`: public domain"), "{readme}");
    assert!(
        readme.contains("- [x] All data **are** publicly available."),
        "{readme}"
    );
    assert!(readme.contains("- Network: none"), "{readme}");
    assert!(readme.contains("- [x] <10 minutes"), "{readme}");
    assert!(
        readme.contains("- [x] 25 MB - 250 MB"),
        "the shipped binary: {readme}"
    );
    assert!(
        readme.contains(
            "- the pipeline's own files (the pipeline file, stage specs and scripts): MIT"
        ),
        "{readme}"
    );
    assert!(
        readme.contains("- [x] All tables and figures in the paper"),
        "{readme}"
    );
    assert!(
        readme.contains("| `output/draws.csv` | `draws` | "),
        "derived files: {readme}"
    );
    assert!(readme.contains(std::env::consts::ARCH), "{readme}");
    assert!(readme.contains(" CPUs"), "{readme}");
    // The exhibit map: label, output, stage, program.
    assert!(
        readme.contains("| Table 1 | `output/draws.csv` | `draws` | `stages/draws.sh` |"),
        "{readme}"
    );
    assert!(
        readme.contains(
            "| Table 2 | `output/engel_boot.json` | `engel_boot` | params in `pipeline.yaml` |"
        ),
        "{readme}"
    );
    // Data provenance.
    assert!(
        readme.contains("- Citation: Koenker, R. and G. Bassett (1982)"),
        "{readme}"
    );
    assert!(
        readme.contains("| `data/engel.csv` | engel | yes |"),
        "{readme}"
    );
    assert!(
        !readme.contains(p.path().to_str().unwrap()),
        "no absolute paths"
    );
}

#[test]
fn zip_packages_are_deterministic_and_verify() {
    let p = small_project();
    p.repro(&["run"]).ok();
    let pkg = tempfile::tempdir().unwrap();
    let a = pkg.path().join("a.zip");
    let b = pkg.path().join("b.zip");
    p.repro(&["package", "--no-vendor", "--out", a.to_str().unwrap()])
        .ok();
    p.repro(&["package", "--no-vendor", "--out", b.to_str().unwrap()])
        .ok();
    let (za, zb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    // The README states measured facts, the same for both (same run log, same machine).
    assert!(za == zb, "two packages of the same project differ");
    let elsewhere = tempfile::tempdir().unwrap();
    let verified = repro_in(elsewhere.path(), &["verify", a.to_str().unwrap()], &[]);
    verified.ok();
    assert!(
        verified.stdout.contains("2 of 2 outputs reproduce"),
        "{}",
        verified.stdout
    );
}

#[test]
fn data_that_are_not_provided_stay_out_and_verify_says_where_to_get_them() {
    let p = small_project();
    let pipeline = SMALL.replace(
        "    access: \"R package quantreg, `data(engel)`\"\n",
        "    access: \"R package quantreg, `data(engel)`\"\n    provided: false\n    statement: Licensed to the authors only.\n",
    );
    p.write("pipeline.yaml", &pipeline);
    p.repro(&["run"]).ok();
    let pkg = tempfile::tempdir().unwrap();
    let dir = pkg.path().join("pkg");
    let out = p.repro(&["package", "--no-vendor", "--out", dir.to_str().unwrap()]);
    out.ok();
    assert!(out
        .stdout
        .contains("withheld (sources not provided; see README.md): data/engel.csv"));
    assert!(!dir.join("data/engel.csv").exists());
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.contains("Some data cannot be made available in this package: `engel`"));
    assert!(readme.contains("- Data availability statement: Licensed to the authors only."));
    let verified = repro_in(&dir, &["verify"], &[]);
    assert_eq!(verified.code, 1, "{}", verified.snapshot());
    assert!(
        verified.stdout.contains(
            "missing input `data/engel.csv`: source `engel` is not provided; R package quantreg"
        ),
        "{}",
        verified.stdout
    );
    // The data editor obtains the data and puts them in place: now it verifies.
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::copy(fixtures().join("engel.csv"), dir.join("data/engel.csv")).unwrap();
    repro_in(&dir, &["verify"], &[]).ok();
}

#[test]
fn packaging_a_stale_pipeline_is_refused() {
    let p = small_project();
    let out = p.repro(&["package", "--no-vendor", "--out", "pkg"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(out
        .stderr
        .contains("cannot package a pipeline that is not up to date"));
    assert!(out.stderr.contains("hint: run `repro run` first"));
}

#[test]
fn packaging_into_the_project_folder_is_refused() {
    let p = small_project();
    p.repro(&["run"]).ok();
    p.write("MANIFEST.sha256", "");
    for out in [".", "..", "stages/.."] {
        let refused = p.repro(&["package", "--no-vendor", "--out", out]);
        assert_eq!(refused.code, 2, "{}", refused.snapshot());
        assert!(refused
            .stderr
            .contains("that folder holds the project itself"));
    }
    assert!(p.exists("pipeline.yaml") && p.exists("data/engel.csv"));
}

#[test]
fn the_seed_reaches_the_command_and_enters_the_key() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        "stages:\n  s:\n    cmd: echo ${seed} $REPRO_SEED > out.txt\n    outs: [out.txt]\n    seed: 5\n",
    );
    p.repro(&["run"]).ok();
    assert_eq!(p.read("out.txt"), "5 5\n");
    assert!(p.read("repro.lock").contains("\"seed\": 5"));
    p.write(
        "pipeline.yaml",
        "stages:\n  s:\n    cmd: echo ${seed} $REPRO_SEED > out.txt\n    outs: [out.txt]\n    seed: 6\n",
    );
    let status = p.repro(&["status"]);
    assert!(
        status.stdout.contains("seed changed: `5` -> `6`"),
        "{}",
        status.stdout
    );
    p.repro(&["run"]).ok();
    assert_eq!(p.read("out.txt"), "6 6\n");
}

#[test]
fn lint_findings_on_a_bad_pipeline() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        r#"sources:
  survey:
    files: [data/survey.csv]
    provided: false
exhibits:
  output/table.csv: Table 1
stages:
  simulate:
    cmd: Rscript stages/simulate.R data/survey.csv /home/ana/project/output/sim.csv
    deps: [stages/simulate.R, data/survey.csv]
    outs: [output/sim.csv]
  table:
    cmd: sh stages/table.sh
    deps: [stages/table.sh, output/sim.csv, data/extra.csv]
    outs: [output/table.csv, output/notes.txt]
"#,
    )
    .write(
        "stages/simulate.R",
        "# draws a bootstrap sample\nd <- read.csv(\"C:/Users/ana/survey.csv\")\nidx <- sample(nrow(d), replace = TRUE)\nwrite.csv(d[idx, ], commandArgs(TRUE)[2])\n",
    )
    .write("stages/table.sh", "cp output/sim.csv output/table.csv\n")
    .write("data/survey.csv", "a\n1\n")
    .write("data/extra.csv", "b\n2\n");
    let out = p.repro(&["lint"]);
    assert_eq!(out.code, 1);
    snapshot_settings().bind(|| insta::assert_snapshot!("lint_bad_pipeline", out.snapshot()));
}

#[test]
fn lint_is_clean_on_a_complete_pipeline() {
    let p = small_project();
    p.repro(&["run"]).ok();
    let out = p.repro(&["lint"]);
    out.ok();
    assert_eq!(out.stdout, "lint: no problems found\n");
}

#[test]
fn metadata_errors_are_located() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        "sources:\n  a:\n    citation: x\n    provded: true\nexhibits:\n  output/nope.csv: Table 9\nstages:\n  s:\n    cmd: echo ${seed} > o.txt\n    outs: [o.txt]\n",
    );
    let out = p.repro(&["lint"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    snapshot_settings().bind(|| insta::assert_snapshot!("metadata_errors", out.snapshot()));
}

/// The project's default pipeline, copied with everything it references into a temporary folder.
fn default_pipeline_project() -> Project {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    let p = Project::new();
    std::fs::copy(src.join("pipeline.yaml"), p.path().join("pipeline.yaml")).unwrap();
    for dir in ["stages", "data"] {
        if src.join(dir).is_dir() {
            copy_tree(&src.join(dir), &p.path().join(dir));
        }
    }
    // Any other file the pipeline or its stage specs name (e.g. fixtures used as data).
    let mut texts = vec![std::fs::read_to_string(src.join("pipeline.yaml")).unwrap()];
    for (rel, bytes) in files_under(&src.join("stages")) {
        if rel.ends_with(".yaml") || rel.ends_with(".yml") {
            texts.push(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    for text in texts {
        for word in text.split(|c: char| c.is_whitespace() || "[],:\"'{}".contains(c)) {
            let word = word.trim_start_matches("./");
            if word.is_empty() || word.starts_with('/') || word.contains("..") {
                continue;
            }
            let from = src.join(word);
            if from.is_file() && !p.path().join(word).exists() {
                p.write(word, "");
                std::fs::copy(&from, p.path().join(word)).unwrap();
            }
        }
    }
    p
}

/// The default pipeline as a data editor runs its package: `sh run.sh` (issue 17).
#[test]
fn default_pipeline_packages_and_verifies_elsewhere() {
    let p = default_pipeline_project();
    p.repro(&["run", "-j", "2"]).ok();
    let pkg = tempfile::tempdir().unwrap();
    let dir = pkg.path().join("package");
    p.repro(&["package", "--out", dir.to_str().unwrap()]).ok();
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    for s in SECTIONS {
        assert!(
            readme.contains(&format!("\n{s}\n")),
            "section `{s}` missing"
        );
    }
    assert!(!readme.contains("MISSING"), "{readme}");
    // The vendored crates and the configuration that points cargo at them.
    assert!(dir.join("repro-src/vendor/serde/Cargo.toml").is_file());
    let config = std::fs::read_to_string(dir.join("repro-src/.cargo/config.toml")).unwrap();
    assert!(config.contains("directory = \"vendor\""), "{config}");
    // As an archive runs it: elsewhere, no network, an empty cargo home, the shipped binary.
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("copy");
    copy_tree(&dir, &copy);
    let ran = crate::offline::run_sh_offline(&copy, &[]);
    ran.ok();
    assert!(
        ran.stderr
            .contains("run.sh: verifying with repro-bin/repro"),
        "{}",
        ran.snapshot()
    );
    let outputs: usize = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(copy.join("repro.lock")).unwrap(),
    )
    .unwrap()["stages"]
        .as_object()
        .unwrap()
        .values()
        .map(|s| s["outs"].as_object().unwrap().len())
        .sum();
    assert!(
        ran.stdout.contains(&format!(
            "{outputs} of {outputs} outputs reproduce byte for byte"
        )),
        "{}",
        ran.snapshot()
    );
    // Flip one byte of one output: verify fails and names that file.
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(copy.join("repro.lock")).unwrap()).unwrap();
    let victim = lock["stages"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|s| s["outs"].as_object().unwrap().iter())
        .find(|(_, o)| o.get("dir").is_none())
        .map(|(path, _)| path.clone())
        .expect("a file output");
    flip_a_byte(&copy.join(&victim));
    let tampered = repro_in(&copy, &["verify", "."], &[]);
    assert_eq!(tampered.code, 1, "{}", tampered.snapshot());
    assert!(
        tampered.stdout.contains(&format!("DIFFERS `{victim}`")),
        "{}",
        tampered.stdout
    );
}

#[test]
fn default_pipeline_is_byte_identical_across_jobs_threads_and_folders() {
    let a = default_pipeline_project();
    let b = default_pipeline_project();
    repro_in(a.path(), &["run", "-j", "1"], &[("RAYON_NUM_THREADS", "1")]).ok();
    repro_in(b.path(), &["run", "-j", "4"], &[("RAYON_NUM_THREADS", "3")]).ok();
    // The HTML report is not a stage output: it records this run's durations and what ran.
    let stage_files = |dir: &Path| {
        let mut f = files_under(dir);
        f.remove("output/report.html");
        f
    };
    let (fa, fb) = (stage_files(a.path()), stage_files(b.path()));
    assert_eq!(
        fa.keys().collect::<Vec<_>>(),
        fb.keys().collect::<Vec<_>>(),
        "the same files"
    );
    for (path, bytes) in &fa {
        assert!(fb[path] == *bytes, "`{path}` differs between the two runs");
    }
    // A forced rerun in the same folder gives the same bytes again.
    repro_in(
        a.path(),
        &["run", "--force", "-j", "2"],
        &[("RAYON_NUM_THREADS", "2")],
    )
    .ok();
    assert!(
        stage_files(a.path()) == fa,
        "a forced rerun changed an output"
    );
}

#[test]
fn verify_a_project_folder_and_name_the_readme_gaps() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        "stages:\n  s:\n    cmd: mkdir -p out && echo a,b > out/t.csv && echo 1,2 >> out/t.csv\n    outs: [out/t.csv]\n",
    );
    p.repro(&["run"]).ok();
    let verified = p.repro(&["verify"]);
    verified.ok();
    assert!(
        verified
            .stdout
            .starts_with("no `MANIFEST.sha256`: not a package"),
        "{}",
        verified.stdout
    );
    assert!(verified
        .stdout
        .contains("1 of 1 outputs reproduce byte for byte"));
    assert!(!p.exists("cache/tmp/out"), "the rebuild happens elsewhere");

    // A package of a pipeline without metadata says what its README lacks.
    let pkg = tempfile::tempdir().unwrap();
    let out = p.repro(&[
        "package",
        "--no-vendor",
        "--out",
        pkg.path().join("p").to_str().unwrap(),
    ]);
    out.ok();
    for gap in [
        "README.md is incomplete: section `Data Availability and Provenance Statements`: the pipeline declares no `sources:`",
        "README.md is incomplete: section `List of tables and programs`: the pipeline declares no `exhibits:`",
        "README.md is incomplete: section `References`: no data source declares a `citation`.",
        "run `repro lint` to see where the pipeline lacks these facts",
    ] {
        assert!(out.stdout.contains(gap), "{gap} not in:\n{}", out.stdout);
    }

    // A command whose output changes from run to run does not verify; the cell is named.
    p.write(
        "pipeline.yaml",
        "stages:\n  s:\n    cmd: mkdir -p out && echo a,b > out/t.csv && echo 1,$$ >> out/t.csv\n    outs: [out/t.csv]\n",
    );
    p.repro(&["run"]).ok();
    let drifted = p.repro(&["verify"]);
    assert_eq!(drifted.code, 1, "{}", drifted.snapshot());
    assert!(
        drifted.stdout.contains("DIFFERS `out/t.csv`: differs from repro.lock when rebuilt\n  row 1, column `b`: package `"),
        "{}",
        drifted.stdout
    );
}

// ---- Issue 12: nothing lost, nothing escapes. ----

/// A run small project in `ROOT/proj` (so `../` from the project stays in a folder the test owns).
fn nested_small_project() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let proj = root.path().join("proj");
    std::fs::create_dir_all(proj.join("stages")).unwrap();
    std::fs::create_dir_all(proj.join("data")).unwrap();
    std::fs::write(proj.join("pipeline.yaml"), SMALL).unwrap();
    std::fs::write(proj.join("stages/draws.sh"), DRAWS_SH).unwrap();
    std::fs::copy(fixtures().join("engel.csv"), proj.join("data/engel.csv")).unwrap();
    repro_in(&proj, &["run"], &[]).ok();
    (root, proj)
}

#[test]
fn package_never_deletes_or_overwrites_what_repro_did_not_write() {
    let p = small_project();
    p.repro(&["run"]).ok();
    let outside = tempfile::tempdir().unwrap();

    // A folder of raw data that happens to hold a `MANIFEST.sha256`.
    let raw = outside.path().join("raw");
    std::fs::create_dir_all(&raw).unwrap();
    std::fs::write(raw.join("MANIFEST.sha256"), "abc  survey.csv\n").unwrap();
    std::fs::write(raw.join("survey.csv"), "a,b\n1,2\n").unwrap();
    let refused = p.repro(&["package", "--no-vendor", "--out", raw.to_str().unwrap()]);
    assert_eq!(refused.code, 2, "{}", refused.snapshot());
    assert!(
        refused.stderr.contains(&format!(
            "error: cannot write the package to `{}`",
            raw.display()
        )),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("hint: "), "{}", refused.stderr);
    assert_eq!(
        std::fs::read_to_string(raw.join("survey.csv")).unwrap(),
        "a,b\n1,2\n"
    );
    assert!(raw.join("MANIFEST.sha256").is_file());

    // A package repro wrote is replaced; once someone adds or edits a file in it, it is not.
    let pkg = outside.path().join("pkg");
    p.repro(&["package", "--no-vendor", "--out", pkg.to_str().unwrap()])
        .ok();
    p.repro(&["package", "--no-vendor", "--out", pkg.to_str().unwrap()])
        .ok();
    std::fs::write(pkg.join("notes.txt"), "my notes").unwrap();
    let refused = p.repro(&["package", "--no-vendor", "--out", pkg.to_str().unwrap()]);
    assert_eq!(refused.code, 2, "{}", refused.snapshot());
    assert!(refused.stderr.contains("`notes.txt`"), "{}", refused.stderr);
    assert_eq!(
        std::fs::read_to_string(pkg.join("notes.txt")).unwrap(),
        "my notes"
    );
    std::fs::remove_file(pkg.join("notes.txt")).unwrap();
    std::fs::write(pkg.join("README.md"), "edited by hand").unwrap();
    let refused = p.repro(&["package", "--no-vendor", "--out", pkg.to_str().unwrap()]);
    assert_eq!(refused.code, 2, "{}", refused.snapshot());
    assert!(refused.stderr.contains("`README.md`"), "{}", refused.stderr);
    assert_eq!(
        std::fs::read_to_string(pkg.join("README.md")).unwrap(),
        "edited by hand"
    );

    // A zip repro did not write is left alone; one it wrote is replaced.
    let foreign = outside.path().join("data.zip");
    std::fs::write(&foreign, b"PK\x03\x04 not a package").unwrap();
    let refused = p.repro(&["package", "--no-vendor", "--out", foreign.to_str().unwrap()]);
    assert_eq!(refused.code, 2, "{}", refused.snapshot());
    assert!(
        refused.stderr.contains(&format!(
            "error: cannot write the package to `{}`",
            foreign.display()
        )),
        "{}",
        refused.stderr
    );
    assert_eq!(
        std::fs::read(&foreign).unwrap(),
        b"PK\x03\x04 not a package"
    );
    let ours = outside.path().join("ours.zip");
    p.repro(&["package", "--no-vendor", "--out", ours.to_str().unwrap()])
        .ok();
    p.repro(&["package", "--no-vendor", "--out", ours.to_str().unwrap()])
        .ok();
    // Nothing but the named outputs was left next to them.
    let mut left: Vec<String> = std::fs::read_dir(outside.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["data.zip", "ours.zip", "pkg", "raw"]);
}

#[test]
fn package_holds_only_the_pipelines_files_and_nothing_outside_the_project() {
    // A stage that is no longer in the pipeline: its output stays out, and the package verifies.
    let (root, proj) = nested_small_project();
    let with_old = SMALL.replace(
        "stages:\n",
        "stages:\n  old:\n    cmd: mkdir -p output && echo old > output/old.txt\n    outs: [output/old.txt]\n",
    );
    std::fs::write(proj.join("pipeline.yaml"), &with_old).unwrap();
    repro_in(&proj, &["run"], &[]).ok();
    std::fs::write(proj.join("pipeline.yaml"), SMALL).unwrap();
    let pkg = root.path().join("pkg");
    let out = repro_in(
        &proj,
        &["package", "--no-vendor", "--out", pkg.to_str().unwrap()],
        &[],
    );
    out.ok();
    assert!(
        out.stdout.contains("packaged 2 stages, 2 outputs"),
        "{}",
        out.stdout
    );
    assert!(!pkg.join("output/old.txt").exists());
    let lock = std::fs::read_to_string(pkg.join("repro.lock")).unwrap();
    assert!(!lock.contains("\"old\""), "{lock}");
    repro_in(&pkg, &["verify"], &[]).ok();

    // Lock entries naming paths outside the project are errors, and nothing is copied or touched.
    let secret = root.path().join("secret.txt");
    std::fs::write(&secret, "secret").unwrap();
    let abs = root.path().join("abs.txt");
    std::fs::write(&abs, "absolute").unwrap();
    let lock_path = proj.join("repro.lock");
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&lock_path).unwrap()).unwrap();
    for bad in [
        "../secret.txt".to_string(),
        abs.to_str().unwrap().to_string(),
    ] {
        for stage in ["draws", "gone"] {
            let mut lock = original.clone();
            let mut entry = lock["stages"]["draws"].clone();
            entry["outs"][&bad] = serde_json::json!({"hash": "00"});
            lock["stages"][stage] = entry;
            std::fs::write(&lock_path, serde_json::to_string_pretty(&lock).unwrap()).unwrap();
            let bad_pkg = root.path().join(format!("bad-{stage}"));
            let out = repro_in(
                &proj,
                &["package", "--no-vendor", "--out", bad_pkg.to_str().unwrap()],
                &[],
            );
            assert_ne!(out.code, 0, "{}", out.snapshot());
            assert!(
                out.stderr.contains("error: ") && out.stderr.contains(&format!("`{bad}`")),
                "{}",
                out.snapshot()
            );
            assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret");
            assert_eq!(std::fs::read_to_string(&abs).unwrap(), "absolute");
            assert!(!bad_pkg.exists(), "{}", out.snapshot());
        }
    }
    std::fs::write(&lock_path, serde_json::to_string_pretty(&original).unwrap()).unwrap();

    // A data file that is a symlink to a file outside the project is refused, not copied.
    let elsewhere = root.path().join("engel-elsewhere.csv");
    std::fs::rename(proj.join("data/engel.csv"), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, proj.join("data/engel.csv")).unwrap();
    let linked = root.path().join("linked");
    let out = repro_in(
        &proj,
        &["package", "--no-vendor", "--out", linked.to_str().unwrap()],
        &[],
    );
    assert_ne!(out.code, 0, "{}", out.snapshot());
    assert!(
        out.stderr.contains("`data/engel.csv`") && out.stderr.contains("outside the project"),
        "{}",
        out.snapshot()
    );
    assert!(!linked.exists());
}

/// The entries of a zip, name -> bytes.
fn zip_entries(path: &Path) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut f = archive.by_index(i).unwrap();
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).unwrap();
            (f.name().unwrap().to_string(), bytes)
        })
        .collect()
}

/// A copy of a zip with `extra` added: (name, Some(bytes)) for a file, (name, None) for a
/// symlink to `README.md`.
fn zip_with(from: &Path, to: &Path, extra: &[(&str, Option<&[u8]>)]) {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(to).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    for (name, bytes) in zip_entries(from) {
        zip.start_file(name, options).unwrap();
        zip.write_all(&bytes).unwrap();
    }
    for (name, bytes) in extra {
        match bytes {
            Some(b) => {
                zip.start_file(*name, options).unwrap();
                zip.write_all(b).unwrap();
            }
            None => zip.add_symlink(*name, "README.md", options).unwrap(),
        }
    }
    zip.finish().unwrap();
}

#[test]
fn verify_reports_unlisted_files_and_refuses_unsafe_zip_entries() {
    let p = small_project();
    p.repro(&["run"]).ok();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pkg");
    p.repro(&["package", "--no-vendor", "--out", dir.to_str().unwrap()])
        .ok();

    // A folder package with a file its manifest does not list.
    std::fs::write(dir.join("stages/extra.sh"), "echo hi\n").unwrap();
    let out = repro_in(&dir, &["verify"], &[]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(
        out.stdout
            .contains("UNLISTED `stages/extra.sh`: in the package but not in MANIFEST.sha256"),
        "{}",
        out.stdout
    );
    std::fs::remove_file(dir.join("stages/extra.sh")).unwrap();
    repro_in(&dir, &["verify"], &[]).ok();

    // The same in a zip.
    let good = tmp.path().join("good.zip");
    p.repro(&["package", "--no-vendor", "--out", good.to_str().unwrap()])
        .ok();
    let extra = tmp.path().join("extra.zip");
    zip_with(&good, &extra, &[("notes/extra.txt", Some(b"x"))]);
    let out = repro_in(tmp.path(), &["verify", extra.to_str().unwrap()], &[]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(
        out.stdout.contains("UNLISTED `notes/extra.txt`"),
        "{}",
        out.stdout
    );

    // Entries that would land outside the folder, or symlinks, are refused before anything runs.
    for (name, bytes) in [
        ("../escaped.txt", Some(&b"x"[..])),
        ("output/../../escaped.txt", Some(&b"x"[..])),
        ("/tmp/escaped-by-repro-test.txt", Some(&b"x"[..])),
        ("link.md", None),
    ] {
        let bad = tmp.path().join("bad.zip");
        zip_with(&good, &bad, &[(name, bytes)]);
        let out = repro_in(tmp.path(), &["verify", bad.to_str().unwrap()], &[]);
        assert_ne!(out.code, 0, "{name}: {}", out.snapshot());
        assert!(
            out.stderr
                .contains(&format!("cannot unpack `{}`", bad.display()))
                && out.stderr.contains(&format!("`{name}`")),
            "{name}: {}",
            out.snapshot()
        );
        assert!(!out.stdout.contains("rebuilding"), "{}", out.stdout);
        assert!(!tmp.path().join("escaped.txt").exists());
    }
}

/// A pipeline file name a shell would otherwise split and run: quotes, `;`, `$( )`, spaces.
const CRAFTED: &str = "my pipe;touch PWNED;$(touch PWNED2)'q'.yaml";

#[test]
fn run_sh_and_the_readme_quote_the_pipeline_file_name() {
    let p = Project::new();
    p.write(
        CRAFTED,
        "stages:\n  s:\n    cmd: echo hi > out.txt\n    outs: [out.txt]\n",
    );
    p.repro(&["-f", CRAFTED, "run"]).ok();
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("pkg");
    p.repro(&[
        "-f",
        CRAFTED,
        "package",
        "--no-vendor",
        "--out",
        pkg.to_str().unwrap(),
    ])
    .ok();

    // Stand-ins for cargo and the built repro that record their arguments, one per line.
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let args_file = tmp.path().join("args.txt");
    let recorder = format!(
        "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> '{}'; done\n",
        args_file.display()
    );
    let cargo = bin.join("cargo");
    std::fs::write(&cargo, &recorder).unwrap();
    let fake_repro = pkg.join("repro-src/target/release/repro");
    std::fs::create_dir_all(fake_repro.parent().unwrap()).unwrap();
    std::fs::write(&fake_repro, &recorder).unwrap();
    for f in [&cargo, &fake_repro] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    // `--build`: the path through the stand-ins (the shipped binary would run otherwise).
    let status = std::process::Command::new("sh")
        .args(["run.sh", "--build"])
        .current_dir(&pkg)
        .env("PATH", &path)
        .status()
        .unwrap();
    assert!(status.success());
    let args = std::fs::read_to_string(&args_file).unwrap();
    assert!(
        args.contains(&format!("\n{CRAFTED}\nverify\n.\n")),
        "{args}"
    );

    // The README's command to rerun in place, as a replicator would paste it.
    let readme = std::fs::read_to_string(pkg.join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.contains("run --force"))
        .unwrap_or_else(|| panic!("{readme}"));
    let cmd = line
        .split('`')
        .find(|part| part.contains("run --force"))
        .unwrap_or_else(|| panic!("{line}"));
    std::fs::remove_file(&args_file).unwrap();
    // The README's command runs the shipped binary: a stand-in records what it is given.
    let shipped = pkg.join("repro-bin/repro");
    std::fs::write(&shipped, &recorder).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&shipped, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let status = std::process::Command::new("sh")
        .args(["-c", cmd])
        .current_dir(&pkg)
        .status()
        .unwrap();
    assert!(status.success(), "{cmd}");
    let args = std::fs::read_to_string(&args_file).unwrap();
    assert_eq!(args, format!("-f\n{CRAFTED}\nrun\n--force\n"), "{cmd}");
    for dir in [p.path(), pkg.as_path()] {
        assert!(!dir.join("PWNED").exists() && !dir.join("PWNED2").exists());
    }
}

#[test]
fn lint_flags_params_a_shell_would_interpret() {
    let p = small_project();
    let pipeline = SMALL.replace(
        "    seed: 42\n",
        "    seed: 42\n  label:\n    cmd: echo ${params.title} ${params.plain} > output/label.txt\n    outs: [output/label.txt]\n    deps: [output/draws.csv]\n    params:\n      title: \"Table 1; $(date)\"\n      plain: table-1_final\n      unused: \"a|b\"\n",
    );
    let pipeline = pipeline.replace(
        "  output/draws.csv: Table 1\n",
        "  output/draws.csv: Table 1\n  output/label.txt: Label\n",
    );
    p.write("pipeline.yaml", &pipeline);
    let out = p.repro(&["lint"]);
    assert!(
        out.stdout.contains(
            "warning: param `title` of stage `label` holds characters a shell interprets"
        ),
        "{}",
        out.snapshot()
    );
    assert!(
        out.stdout.contains("`;`") && out.stdout.contains("`$`"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("hint: "), "{}", out.stdout);
    assert!(!out.stdout.contains("`plain`"), "{}", out.stdout);
    assert!(!out.stdout.contains("`unused`"), "{}", out.stdout);
    // The value is still pasted as is (as DVC does): this is a warning, not an error.
    assert_eq!(out.code, 0, "{}", out.snapshot());
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn an_interrupted_verify_removes_its_temporary_folder_and_stops_the_command() {
    for signal in ["INT", "TERM"] {
        let p = Project::new();
        // Slow only when verify rebuilds it (SLOW is set for verify, not for the first run); the
        // command records the pid of its `sleep`.
        p.write(
            "pipeline.yaml",
            "stages:\n  s:\n    cmd: if [ -n \"$SLOW\" ]; then sleep 60 & echo $! > \"$SLOW\"; wait; fi; echo hi > out.txt\n    outs: [out.txt]\n",
        );
        p.repro(&["run"]).ok();
        let scratch = tempfile::tempdir().unwrap();
        let tmpdir = scratch.path().join("tmp");
        std::fs::create_dir_all(&tmpdir).unwrap();
        let pid_file = scratch.path().join("pid");
        let mut child = p
            .command(&["verify"])
            .env("TMPDIR", &tmpdir)
            .env("SLOW", &pid_file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let cmd_pid: u32 = loop {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                break pid;
            }
            assert!(
                started.elapsed().as_secs() < 60,
                "the command never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        assert!(
            std::fs::read_dir(&tmpdir).unwrap().next().is_some(),
            "verify works in TMPDIR"
        );
        let killed = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if started.elapsed().as_secs() > 30 {
                let _ = child.kill();
                panic!("verify did not stop on SIG{signal}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        assert!(!status.success());
        let left: Vec<_> = std::fs::read_dir(&tmpdir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(left.is_empty(), "SIG{signal} left {left:?}");
        let started = std::time::Instant::now();
        while alive(cmd_pid) && started.elapsed().as_secs() < 10 {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(!alive(cmd_pid), "SIG{signal} left the command running");
        assert!(
            !p.exists("cache/tmp")
                || std::fs::read_dir(p.path().join("cache/tmp"))
                    .unwrap()
                    .next()
                    .is_none()
        );
    }
}

#[test]
fn verify_never_reads_a_manifest_path_outside_the_package() {
    use sha2::Digest;
    let p = small_project();
    p.repro(&["run"]).ok();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pkg");
    p.repro(&["package", "--out", dir.to_str().unwrap()]).ok();
    // A file beside the package, listed by a crafted manifest line with its true checksum: a
    // verify that opened it would count it as matching and pass.
    std::fs::write(tmp.path().join("outside.txt"), "secret\n").unwrap();
    let sha: String = sha2::Sha256::digest(b"secret\n")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    for listed in [
        "../outside.txt",
        &format!("{}/outside.txt", tmp.path().display()),
    ] {
        let manifest = dir.join("MANIFEST.sha256");
        let original = std::fs::read_to_string(&manifest).unwrap();
        std::fs::write(&manifest, format!("{original}{sha}  {listed}\n")).unwrap();
        let out = repro_in(&dir, &["verify"], &[]);
        assert_eq!(out.code, 1, "{listed}: {}", out.snapshot());
        assert!(
            out.stdout.contains(&format!(
                "UNSAFE `{listed}`: listed in MANIFEST.sha256 but not a path inside the package"
            )),
            "{}",
            out.stdout
        );
        std::fs::write(&manifest, original).unwrap();
    }
    repro_in(&dir, &["verify"], &[]).ok();
}
