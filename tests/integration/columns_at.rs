//! Load-time column checks point at the variable itself (issue 16): the `fit` kind's formula and
//! `vcov` in `pipeline.yaml`, formulas written plain, quoted or as a block scalar in a `models`
//! spec, and `describe`'s `variables`, each with file:line:col of the misspelt name.

use crate::{snapshot_settings, Project};

const DATA: &str = "y,x,firm\n1,2,1\n2,3,1\n3,5,2\n4,4,2\n5,7,3\n6,8,3\n";

/// The `--> file:line:col` lines of a run's errors, in order.
fn places(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("--> "))
        .map(str::to_string)
        .collect()
}

/// A `fit` stage on a source file: a misspelt regressor (in a quoted formula) and cluster
/// variable are errors at load, each at its own place in `pipeline.yaml`; nothing runs. Before,
/// the pipeline loaded and the stage failed when it ran.
#[test]
fn fit_params_are_checked_at_load() {
    let p = Project::new();
    p.write("d.csv", DATA).write(
        "pipeline.yaml",
        "stages:\n  f:\n    kind: fit\n    params:\n      data: d.csv\n      out: out/f.json\n      \
         formula: \"y ~ x + xx\"\n      vcov: cluster:frim\n",
    );
    let out = p.repro(&["run"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    assert_eq!(
        places(&out.stderr),
        ["pipeline.yaml:7:25", "pipeline.yaml:8:21"],
        "{}",
        out.stderr
    );
    assert!(!p.exists("out/f.json"));
    snapshot_settings().bind(|| insta::assert_snapshot!("columns_at_fit", out.snapshot()));
}

/// The same misspelt variable in a plain, a double-quoted and a folded block formula, and a
/// misspelt sample variable: each error points at the variable's own line and column.
#[test]
fn formula_errors_point_at_the_variable() {
    let p = Project::new();
    p.write("d.csv", DATA)
        .write(
            "stages/m.yaml",
            "title: T\ndata: d.csv\nname: m\nmodels:\n  - id: a\n    formula: y ~ x + colab\n  \
             - id: b\n    formula: \"y ~ x + colab\"\n  - id: c\n    formula: >-\n      y ~ x\n      \
             + colab\n    sample: x > 1 & yy < 3\n",
        )
        .write(
            "pipeline.yaml",
            "stages:\n  m:\n    kind: models\n    params: {spec: stages/m.yaml}\n",
        );
    let out = p.repro(&["status"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    assert_eq!(
        places(&out.stderr),
        [
            "stages/m.yaml:6:22",
            "stages/m.yaml:8:23",
            "stages/m.yaml:12:9",
            "stages/m.yaml:13:21",
        ],
        "{}",
        out.stderr
    );
    snapshot_settings().bind(|| insta::assert_snapshot!("columns_at_formula", out.snapshot()));
}

/// `describe`'s `variables`: a misspelt one is reported at its own line (before: no place).
#[test]
fn describe_variables_have_a_place() {
    let p = Project::new();
    p.write("d.csv", DATA)
        .write(
            "stages/s.yaml",
            "title: S\ndata: d.csv\nname: s\nvariables:\n  y: Outcome\n  xx: Regressor\n",
        )
        .write(
            "pipeline.yaml",
            "stages:\n  s:\n    kind: describe\n    params: {spec: stages/s.yaml}\n",
        );
    let out = p.repro(&["status"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    assert_eq!(places(&out.stderr), ["stages/s.yaml:6:3"], "{}", out.stderr);
    snapshot_settings().bind(|| insta::assert_snapshot!("columns_at_describe", out.snapshot()));
}
