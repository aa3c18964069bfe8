//! What users see when the pipeline is wrong: every problem at once, with file and line,
//! exit code 2.

use crate::{snapshot_settings, Project};

fn check(name: &str, pipeline: &str, args: &[&str]) {
    let p = Project::new();
    p.write("pipeline.yaml", pipeline);
    let out = p.repro(args);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    snapshot_settings().bind(|| insta::assert_snapshot!(name, out.snapshot()));
}

#[test]
fn yaml_syntax_error() {
    check(
        "yaml_syntax",
        "stages:\n  a:\n    cmd: [echo, \n    outs: x\n",
        &["run"],
    );
}

#[test]
fn unknown_keys_everywhere_in_one_report() {
    check(
        "unknown_keys",
        "stage:\n  a: {}\nstages:\n  a:\n    cmdd: echo\n    outs: [x]\n  b:\n    cmd: echo\n    deps: [x]\n    out: [y]\n",
        &["status"],
    );
}

#[test]
fn missing_dep() {
    check(
        "missing_dep",
        "stages:\n  a:\n    cmd: cp nowhere.csv x\n    deps: [nowhere.csv]\n    outs: [x]\n",
        &["run"],
    );
}

#[test]
fn cycle() {
    check(
        "cycle",
        "stages:\n  a:\n    cmd: cp c a\n    deps: [c]\n    outs: [a]\n  b:\n    cmd: cp a b\n    deps: [a]\n    outs: [b]\n  c:\n    cmd: cp b c\n    deps: [b]\n    outs: [c]\n",
        &["dag"],
    );
}

#[test]
fn duplicate_and_overlapping_outputs_and_bad_paths() {
    check(
        "outputs",
        "stages:\n  a:\n    cmd: x\n    outs: [out/x.csv, /etc/passwd]\n  b:\n    cmd: y\n    outs: [out]\n  c:\n    cmd: z\n    outs: [out/x.csv]\n    deps: [../up.csv]\n",
        &["run"],
    );
}

#[test]
fn stage_shape_errors() {
    check(
        "stage_shape",
        "stages:\n  a:\n    deps: [x]\n  b:\n    cmd: echo ${params.nope}\n    params: {yes: 1}\n  c:\n    kind: teleport\n  d: just a string\n",
        &["run"],
    );
}

#[test]
fn missing_pipeline_file() {
    let p = Project::new();
    let out = p.repro(&["run"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .starts_with("error: cannot read pipeline file `pipeline.yaml`"),
        "{}",
        out.stderr
    );
    assert!(out
        .stderr
        .contains("hint: run repro in the folder that holds `pipeline.yaml`, or pass `-f FILE`"));
}

#[test]
fn usage_errors_exit_2() {
    let p = Project::new();
    assert_eq!(p.repro(&["frobnicate"]).code, 2);
    assert_eq!(p.repro(&["dag", "--format", "png"]).code, 2);
}

#[test]
fn another_pipeline_file_and_its_lock() {
    let p = Project::new();
    p.write(
        "sub/flow.yaml",
        "stages:\n  a:\n    cmd: echo 1 > a.txt\n    outs: [a.txt]\n",
    );
    p.repro(&["-f", "sub/flow.yaml", "run"]).ok();
    assert!(
        p.exists("sub/a.txt"),
        "stage paths are relative to the pipeline file"
    );
    assert!(p.exists("sub/flow.lock"));
}

/// `digits: 70000` once made the table stage panic (the formatter's limit) and the run hang;
/// it is a spec error now, found before anything runs.
#[test]
fn out_of_range_digits_are_a_spec_error() {
    let p = Project::new();
    p.write("d.csv", "y,x\n1,1\n2,3\n3,2\n")
        .write(
            "t.yaml",
            "title: t\ndata: d.csv\nname: t\ndigits: 70000\nmodels:\n  - id: a\n    formula: y ~ x\n",
        )
        .write(
            "pipeline.yaml",
            "stages:\n  t:\n    kind: models\n    params: {spec: t.yaml}\n",
        );
    let out = p.repro(&["run"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    assert!(
        out.stderr
            .contains("`digits` is 70000, outside its range: it takes 0 to 12"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--> t.yaml:4:9"), "{}", out.stderr);
}

#[test]
fn a_params_file_nobody_writes_is_missing() {
    // `tuned.yaml` is no stage's output, so its absence is an error before anything runs; the
    // params file another stage writes (`best.yaml`) is read only when its reader runs.
    check(
        "params_file_missing",
        "stages:\n  tune:\n    cmd: \"echo 'lr: 1' > best.yaml\"\n    outs: [best.yaml]\n  train:\n    cmd: echo ok > model.txt\n    params:\n      - best.yaml: [lr]\n      - tuned.yaml: [depth]\n    outs: [model.txt]\n",
        &["run"],
    );
}

#[test]
fn a_written_params_file_without_the_named_key_fails_its_reader() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        "stages:\n  tune:\n    cmd: \"echo 'rate: 1' > best.yaml\"\n    outs: [best.yaml]\n  train:\n    cmd: echo ok > model.txt\n    params:\n      - best.yaml: [lr]\n    outs: [model.txt]\n",
    );
    let out = p.repro(&["run"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(
        out.stderr.contains("stage `train` cannot start")
            && out
                .stderr
                .contains("`best.yaml` does not define param `lr`"),
        "{}",
        out.stderr
    );
    assert!(!p.path().join("model.txt").exists());
}
