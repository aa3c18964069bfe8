//! Unknown variables in formulas are reported when the pipeline loads, before anything runs,
//! wherever the data's columns are known: declared by the `panel` stage's spec, or the header of
//! a source file (issue 16). All at once, each at its place in the spec, with a suggestion.

use crate::{snapshot_settings, Project};

const PANEL_SPEC: &str = "yearbook: raw/yearbook.csv\nrd_province: raw/rd_province.csv\n\
    index: raw/index.csv\nfirst_year: 2010\nlast_year: 2020\nlags: [collab, gap]\n\
    out: out/panel.csv\ncodebook: out/codebook.md\nreport: out/panel.json\n";

/// Synthetic raw data, the panel, and a `models` stage on the panel with `formula`.
fn study(formula: &str) -> Project {
    let p = Project::new();
    crate::data::copy_gazetteer(&p);
    p.write(
        "stages/synth.yaml",
        "seed: 7\nrecords: 60000\ncollab_first: 0.01\ncollab_last: 0.03\nout_dir: raw\n",
    )
    .write("stages/panel.yaml", PANEL_SPEC)
    .write(
        "stages/baseline.yaml",
        &format!(
            "title: Baseline\ndata: out/panel.parquet\nname: baseline\nvcov: cluster:city\n\
             sets:\n  controls: [gov, fin]\nmodels:\n  - id: fe\n    formula: {formula}\n"
        ),
    )
    .write(
        "pipeline.yaml",
        "stages:\n  synth:\n    kind: synth\n    params: {spec: stages/synth.yaml}\n  \
         truth_index:\n    cmd: >-\n      awk -F, 'BEGIN{OFS=\",\"} NR==1{print $0,\"collab_cp\",\"collab_inv\",\"collab_frac\"; next}\n      {print $0,$7/$3,$9/$3,$8/$3}' raw/truth_city_year.csv > raw/index.csv\n    \
         deps: [raw/truth_city_year.csv]\n    outs: [raw/index.csv]\n  \
         panel:\n    kind: panel\n    params: {spec: stages/panel.yaml}\n  \
         baseline:\n    kind: models\n    params: {spec: stages/baseline.yaml}\n",
    );
    p
}

/// Two misspelt variables (a regressor, a fixed effect) and a misspelt control in a set: every
/// one is an error at load, exit 2, with the closest panel column; nothing ran. Before, `synth`
/// and `panel` ran (a minute on real data) and the models stage then failed on the first one.
#[test]
fn misspelt_variables_are_reported_before_anything_runs() {
    let p = study("gap ~ colab + {controls} | city + yaer");
    p.write(
        "stages/baseline.yaml",
        &p.read("stages/baseline.yaml")
            .replace("[gov, fin]", "[gov, finn]"),
    );
    for cmd in ["run", "status", "dag"] {
        let out = p.repro(&[cmd]);
        assert_eq!(out.code, 2, "{cmd}: {}", out.snapshot());
        for hint in [
            "did you mean `collab`?",
            "did you mean `year`?",
            "did you mean `fin`?",
        ] {
            assert!(out.stderr.contains(hint), "{cmd}: {}", out.stderr);
        }
        if cmd == "run" {
            snapshot_settings()
                .bind(|| insta::assert_snapshot!("columns_misspelt_at_load", out.snapshot()));
        }
    }
    assert!(!p.exists("raw"), "a stage ran");
    assert!(!p.exists("repro.lock"), "a stage was recorded");
}

/// A correct formula on the declared panel loads and runs; the columns the panel writes are the
/// ones its spec declares (what the check relies on).
#[test]
fn the_panel_writes_the_columns_it_declares() {
    let p = study("gap ~ collab + {controls} + collab_l1 + gap_w | city + year");
    p.repro(&["status"]).ok();
    p.repro(&["run"]).ok();
    let header: Vec<String> = p
        .read("out/panel.csv")
        .lines()
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let spec = repro_study::panel::parse("stages/panel.yaml", p.path()).unwrap();
    let declared = repro_study::panel::columns(&spec);
    assert_eq!(declared.len(), 2);
    assert_eq!(declared[0].0, "out/panel.csv");
    assert_eq!(declared[0].1, header);
    assert_eq!(declared[1].0, "out/panel.parquet");
}

/// Data a command stage writes are not known before it runs: nothing is said at load, and the
/// run reports the unknown variable as before.
#[test]
fn columns_of_command_outputs_are_not_guessed() {
    let p = Project::new();
    p.write("in.csv", "y,x\n1,2\n2,3\n3,5\n4,4\n")
        .write(
            "stages/m.yaml",
            "title: T\ndata: d.csv\nname: m\nmodels:\n  - id: a\n    formula: y ~ xx\n",
        )
        .write(
            "pipeline.yaml",
            "stages:\n  copy:\n    cmd: cp in.csv d.csv\n    deps: [in.csv]\n    outs: [d.csv]\n  \
             m:\n    kind: models\n    params: {spec: stages/m.yaml}\n",
        );
    p.repro(&["status"]).ok();
    let out = p.repro(&["run"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(p.exists("d.csv"));
    assert!(out.stderr.contains("`xx`"), "{}", out.stderr);
}

/// A source data file's header is its columns: a misspelt cluster variable and sample variable
/// are reported at load, at their own lines.
#[test]
fn a_source_file_header_is_checked() {
    let p = Project::new();
    p.write("d.csv", "y,x,firm\n1,2,1\n2,3,1\n3,5,2\n4,4,2\n5,7,3\n")
        .write(
            "stages/m.yaml",
            "title: T\ndata: d.csv\nname: m\nvcov: cluster:frim\nmodels:\n  - id: a\n    \
             formula: y ~ x\n    sample: xx > 1\n",
        )
        .write(
            "pipeline.yaml",
            "stages:\n  m:\n    kind: models\n    params: {spec: stages/m.yaml}\n",
        );
    let out = p.repro(&["status"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    snapshot_settings().bind(|| insta::assert_snapshot!("columns_source_header", out.snapshot()));
}
