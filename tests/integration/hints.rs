//! Messages that point at the fix (issue 16, item 4): a misspelt spec field gets "did you mean"
//! and no second, false error about exhibits; a bad `vcov` is reported at its own line and by its
//! field.

use crate::{snapshot_settings, Project};

const SPEC: &str = r#"title: T
data: d.csv
name: t
vcov: cluster:g
keep: [x]
models:
  - id: m
    formula: y ~ x
"#;

const PIPELINE: &str = r#"exhibits:
  output/tables/t.tex: Table 1
stages:
  t:
    kind: models
    params: {spec: stages/t.yaml}
"#;

fn project(spec: &str) -> Project {
    let p = Project::new();
    p.write("d.csv", "g,x,y\n1,1,2\n1,2,3\n2,3,3\n2,4,6\n3,5,4\n3,6,8\n")
        .write("stages/t.yaml", spec)
        .write("pipeline.yaml", PIPELINE);
    p
}

#[test]
fn a_misspelt_spec_field_gets_did_you_mean_and_no_false_exhibit_error() {
    let p = project(&SPEC.replace("keep:", "kep:"));
    let out = p.repro(&["status"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    assert!(
        out.stderr.contains("did you mean `keep`?"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("exhibit"), "{}", out.stderr);
    snapshot_settings().bind(|| insta::assert_snapshot!("spec_field_typo", out.snapshot()));
}

#[test]
fn a_bad_vcov_is_reported_at_its_own_line_by_its_field() {
    let p = project(&SPEC.replace("cluster:g", "clustr:g"));
    let out = p.repro(&["status"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    assert!(out.stderr.contains("stages/t.yaml:4:"), "{}", out.stderr);
    assert!(
        out.stderr.contains("invalid `vcov` `clustr:g`"),
        "{}",
        out.stderr
    );
    snapshot_settings().bind(|| insta::assert_snapshot!("spec_bad_vcov", out.snapshot()));

    // A model's own vcov, at the model's line.
    let p = project(&format!("{SPEC}    vcov: hc2\n"));
    let out = p.repro(&["status"]);
    assert!(out.stderr.contains("stages/t.yaml:9:"), "{}", out.stderr);
}

#[test]
fn one_stage_is_singular_and_the_summary_says_where_the_report_went() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        "report: out/report.html\nstages:\n  a:\n    cmd: echo hi > o.txt\n    outs: [o.txt]\n",
    );
    let out = p.repro(&["run"]);
    out.ok();
    assert!(
        out.stderr.contains(
            "1 stage: 1 ran, 0 restored from the cache, 0 up to date; report `out/report.html`"
        ),
        "{}",
        out.stderr
    );
    // git ignores the cache without the user doing anything.
    assert!(p.read("cache/.gitignore").lines().any(|l| l == "*"));
    let git = std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(p.path())
        .status();
    if git.is_ok_and(|s| s.success()) {
        let st = std::process::Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=all"])
            .current_dir(p.path())
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&st.stdout).to_string();
        assert!(!listed.contains("cache/"), "{listed}");
        assert!(listed.contains("pipeline.yaml"), "{listed}");
    }
}

#[test]
fn report_out_accepts_a_path_outside_the_project() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        "stages:\n  a:\n    cmd: echo hi > o.txt\n    outs: [o.txt]\n",
    );
    p.repro(&["run"]).ok();
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("sub/report.html");
    let target = target.to_str().unwrap();
    let out = p.repro(&["report", "-o", target]);
    out.ok();
    assert!(std::path::Path::new(target).is_file());
    assert!(
        out.stderr.contains(&format!("wrote the report `{target}`")),
        "{}",
        out.stderr
    );
    // Relative paths with `..` are the user's too.
    let name = format!(
        "{}-report.html",
        p.path().file_name().unwrap().to_string_lossy()
    );
    let out = p.repro(&["report", "-o", &format!("../{name}")]);
    out.ok();
    let beside = p.path().parent().unwrap().join(&name);
    assert!(beside.is_file());
    std::fs::remove_file(beside).unwrap();
}

/// When the data are written by a command stage their columns are known only once it ran, so
/// the misspelt cluster variable is the models stage's error (with a source file, or a `panel`
/// stage's declared columns, it is reported when the pipeline loads: `columns.rs`).
#[test]
fn a_misspelt_cluster_variable_is_reported_as_the_vcovs() {
    let p = project(&SPEC.replace("cluster:g", "cluster:gg"));
    std::fs::rename(p.path().join("d.csv"), p.path().join("raw.csv")).unwrap();
    p.write(
        "pipeline.yaml",
        &PIPELINE.replace(
            "stages:\n",
            "stages:\n  data:\n    cmd: cp raw.csv d.csv\n    deps: [raw.csv]\n    outs: [d.csv]\n",
        ),
    );
    let out = p.repro(&["run"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(
        out.stderr
            .contains("unknown column `gg`, the cluster variable of `vcov: cluster:gg`"),
        "{}",
        out.stderr
    );
    snapshot_settings().bind(|| insta::assert_snapshot!("spec_cluster_typo", out.snapshot()));
}
