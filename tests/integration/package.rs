//! Replication packages as authors and data editors use them: `repro package`, `repro verify`,
//! `repro lint`, and byte-identical outputs across runs, job counts, thread counts and folders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{repro_bin, snapshot_settings, Out, Project};

pub(crate) fn fixtures() -> PathBuf {
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
pub(crate) const SMALL: &str = r#"title: Engel curves, drawn and bootstrapped
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

pub(crate) const DRAWS_SH: &str = r#"#!/bin/sh
set -eu
mkdir -p "$(dirname "$2")"
awk -v s="$1" 'BEGIN { srand(s); print "i,x"; for (i = 1; i <= 5; i++) printf "%d,%.6f\n", i, rand() }' > "$2"
"#;

pub(crate) fn small_project() -> Project {
    let p = Project::new();
    p.write("pipeline.yaml", SMALL)
        .write("stages/draws.sh", DRAWS_SH)
        .write(
            "data/engel.csv",
            &std::fs::read_to_string(fixtures().join("engel.csv")).unwrap(),
        );
    p
}

pub(crate) fn repro_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
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
