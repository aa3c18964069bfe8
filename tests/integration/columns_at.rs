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

/// `repro status` of a `models` stage with `spec` on `d.csv`; it must fail at load (exit 2).
fn models_status(spec: &str) -> crate::Out {
    let p = Project::new();
    p.write("d.csv", DATA).write("stages/m.yaml", spec).write(
        "pipeline.yaml",
        "stages:\n  m:\n    kind: models\n    params: {spec: stages/m.yaml}\n",
    );
    let out = p.repro(&["status"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    out
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
    let out = models_status(
        "title: T\ndata: d.csv\nname: m\nmodels:\n  - id: a\n    formula: y ~ x + colab\n  \
         - id: b\n    formula: \"y ~ x + colab\"\n  - id: c\n    formula: >-\n      y ~ x\n      \
         + colab\n    sample: x > 1 & yy < 3\n",
    );
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

/// A misspelt variable of a `{set}` is reported in `sets`, where it is written (a flow and a
/// block list), not at the formula that uses the set.
#[test]
fn set_members_point_into_sets() {
    let out = models_status(
        "title: T\ndata: d.csv\nname: m\nsets:\n  a: [x, frm]\n  b:\n    - firm\n    - yy\n\
         models:\n  - id: m\n    formula: y ~ {a} + {b}\n",
    );
    assert_eq!(
        places(&out.stderr),
        ["stages/m.yaml:5:10", "stages/m.yaml:8:7"],
        "{}",
        out.stderr
    );
}
