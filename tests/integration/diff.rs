//! `repro diff`: a models pipeline on the Produc fixture kept in a git repository made here;
//! after a spec edit or a data change, the diff against `HEAD` (or a saved lock, or with old
//! objects only on a folder remote) must list exactly the cells that differ between the old and
//! new result files, read directly here, and nothing else.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::{snapshot_settings, Project};

const SPEC: &str = r#"title: Public capital and state output
data: output/data/produc.csv
name: baseline
vcov: cluster:state
models:
  - id: plain
    formula: lgsp ~ lpcap | state + year
  - id: controls
    formula: lgsp ~ lpcap + lpc | state + year
  - id: east
    formula: lgsp ~ lpcap + lpc | state + year
    sample: region <= 4
  - id: west
    formula: lgsp ~ lpcap + lpc | state + year
    sample: region > 4
differences:
  - {a: east, b: west, coef: lpcap, method: stacked}
"#;

/// The difference test's result file (a stem in the results folder).
const TEST: &str = "diff_east_west_lpcap_stacked";

/// A data stage (the first `rows` lines of the fixture, header included) and a models stage.
const PIPELINE: &str = r#"report: output/report.html
stages:
  data:
    cmd: mkdir -p output/data && head -n ${params.rows} produc.csv > output/data/produc.csv
    deps: [produc.csv]
    outs: [output/data/produc.csv]
    params: {rows: 817}
  baseline:
    kind: models
    params: {spec: stages/baseline.yaml}
"#;

const MODELS: [&str; 4] = ["plain", "controls", "east", "west"];

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=repro", "-c", "user.email=repro@localhost"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git is installed");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// The project, run once and committed (pipeline, spec, data and `repro.lock`; `output/` is
/// ignored, so old results can only come from the cache or the remote). `head` is the remote
/// line, if any.
fn committed(head: &str) -> Project {
    let p = Project::new();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/estimators/produc.csv");
    p.write("produc.csv", &std::fs::read_to_string(fixture).unwrap())
        .write("stages/baseline.yaml", SPEC)
        .write("pipeline.yaml", &format!("{head}{PIPELINE}"))
        .write(".gitignore", "/output\n");
    p.repro(&["run"]).ok();
    git(p.path(), &["init", "-q", "."]);
    git(p.path(), &["add", "-A"]);
    git(p.path(), &["commit", "-q", "-m", "results"]);
    p
}

fn results(p: &Project) -> Vec<Value> {
    MODELS
        .iter()
        .map(|m| {
            serde_json::from_str(&p.read(&format!("output/results/baseline/{m}.json"))).unwrap()
        })
        .collect()
}

/// Stars at the table kinds' default levels, computed here from a p-value.
fn stars(p: f64) -> usize {
    [0.1, 0.05, 0.01].iter().filter(|&&l| p < l).count()
}

/// Every `(model, term, field)` whose value differs between two result files, with the old and
/// new values, computed from the files themselves.
fn expected_cells(model: &str, old: &Value, new: &Value) -> BTreeSet<(String, String, String)> {
    let mut cells = BTreeSet::new();
    let coef = |v: &Value, term: &str| -> Option<Value> {
        v["coefficients"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["term"] == term)
            .cloned()
    };
    let terms: BTreeSet<String> = [old, new]
        .iter()
        .flat_map(|v| v["coefficients"].as_array().unwrap())
        .map(|c| c["term"].as_str().unwrap().to_string())
        .collect();
    for t in &terms {
        let (o, n) = (coef(old, t), coef(new, t));
        for f in ["estimate", "std_error"] {
            if o.as_ref().map(|c| c[f].clone()) != n.as_ref().map(|c| c[f].clone()) {
                cells.insert((model.into(), t.clone(), f.into()));
            }
        }
        let s = |c: &Option<Value>| c.as_ref().map(|c| stars(c["p_value"].as_f64().unwrap()));
        let (so, sn) = (s(&o), s(&n));
        if so != sn && (so.unwrap_or(0) + sn.unwrap_or(0)) > 0 {
            cells.insert((model.into(), t.clone(), "stars".into()));
        }
    }
    for f in ["nobs", "r2", "r2_within"] {
        if old[f] != new[f] {
            cells.insert((model.into(), String::new(), f.into()));
        }
    }
    for v in ["state"] {
        if old["n_clusters"][v] != new["n_clusters"][v] {
            cells.insert((model.into(), String::new(), format!("clusters:{v}")));
        }
    }
    cells
}

/// The numbers of a difference test's `result` that differ between two files.
fn expected_test_cells(old: &Value, new: &Value) -> BTreeSet<(String, String, String)> {
    let o = old["result"].as_object().unwrap();
    let n = new["result"].as_object().unwrap();
    n.iter()
        .filter(|(k, v)| v.is_number() && o.get(*k) != Some(*v))
        .map(|(k, _)| (TEST.to_string(), String::new(), k.clone()))
        .collect()
}

fn read_test(p: &Project) -> Value {
    serde_json::from_str(&p.read(&format!("output/results/baseline/{TEST}.json"))).unwrap()
}

fn listed_cells(diff: &Value) -> BTreeSet<(String, String, String)> {
    let mut cells = BTreeSet::new();
    for t in diff["tables"].as_array().unwrap() {
        for m in t["models"].as_array().unwrap() {
            for c in m["cells"].as_array().unwrap() {
                cells.insert((
                    m["model"].as_str().unwrap().to_string(),
                    c["term"].as_str().unwrap_or_default().to_string(),
                    c["field"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    cells
}

fn diff_json(p: &Project, against: &str) -> Value {
    let out = p.repro(&["diff", against, "--format", "json"]);
    out.ok();
    serde_json::from_str(&out.stdout).unwrap()
}

/// The cells of one model in the diff's JSON.
fn model_cells<'a>(diff: &'a Value, model: &str) -> &'a Vec<Value> {
    diff["tables"][0]["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == model)
        .map(|m| m["cells"].as_array().unwrap())
        .unwrap()
}

#[test]
fn a_spec_edit_lists_exactly_the_changed_cells() {
    let p = committed("");
    let old = results(&p);
    let old_test = read_test(&p);
    assert_eq!(p.repro(&["diff", "--fail-on-change"]).code, 0);
    // A first run has nothing to compare with.
    assert!(!p.read("output/report.html").contains("What changed"));
    // Add a control to `controls` and `east`; `plain` keeps its formula.
    p.write(
        "stages/baseline.yaml",
        &SPEC.replace("lgsp ~ lpcap + lpc |", "lgsp ~ lpcap + lpc + unemp |"),
    );
    p.repro(&["run"]).ok();
    let new = results(&p);
    let mut expected = BTreeSet::new();
    for (i, m) in MODELS.iter().enumerate() {
        expected.extend(expected_cells(m, &old[i], &new[i]));
    }
    expected.extend(expected_test_cells(&old_test, &read_test(&p)));
    let diff = diff_json(&p, "HEAD");
    assert_eq!(listed_cells(&diff), expected);
    assert!(expected.iter().any(|c| c.1 == "unemp"));
    assert!(expected.iter().any(|c| c.0 == TEST));
    // Each result records how its table prints it.
    assert_eq!(
        new[0]["produced_by"]["printed"],
        serde_json::json!({"digits": 3, "stars": [0.1, 0.05, 0.01]})
    );
    assert!(!expected.iter().any(|c| c.0 == "plain"));
    // Old and new values are those of the files; the change is in old standard errors.
    let lpcap = model_cells(&diff, "controls")
        .iter()
        .find(|c| c["term"] == "lpcap" && c["field"] == "estimate")
        .unwrap();
    let (o, n) = (&old[1]["coefficients"][0], &new[1]["coefficients"][0]);
    assert_eq!(lpcap["old"], o["estimate"]);
    assert_eq!(lpcap["new"], n["estimate"]);
    let d = (n["estimate"].as_f64().unwrap() - o["estimate"].as_f64().unwrap())
        / o["std_error"].as_f64().unwrap();
    assert!((lpcap["change_in_se"].as_f64().unwrap() - d).abs() < 1e-12);
    // Rounding only: the printed texts (three decimals) at most one unit apart.
    for c in model_cells(&diff, "controls") {
        if let (Some(a), Some(b)) = (c["old"].as_f64(), c["new"].as_f64()) {
            let units = ((format!("{b:.3}").parse::<f64>().unwrap()
                - format!("{a:.3}").parse::<f64>().unwrap())
                * 1000.0)
                .round()
                .abs();
            assert_eq!(c["rounding"], units <= 1.0, "{c}");
        }
    }
    // No data file changed; the four renderings of the table did.
    assert_eq!(diff["data"], serde_json::json!([]));
    assert_eq!(diff["files"].as_array().unwrap().len(), 4);
    assert_eq!(diff["changed"], true);
    assert_eq!(diff["old"], "HEAD:repro.lock");
    let out = p.repro(&["diff"]);
    snapshot_settings().bind(|| insta::assert_snapshot!("diff_spec_edit_text", out.snapshot()));
    let md = p.repro(&["diff", "--format", "md"]);
    snapshot_settings().bind(|| insta::assert_snapshot!("diff_spec_edit_md", md.snapshot()));
    let html = p.repro(&["diff", "--format", "html"]).stdout;
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<table class=\"changes\">"));
    assert_eq!(p.repro(&["diff", "--fail-on-change"]).code, 1);
    // The report written by the rerun says what changed.
    let report = p.read("output/report.html");
    assert!(report.contains("<h2 id=\"changes\">What changed</h2>"));
    assert!(report.contains("unemp: coefficient"));
}

#[test]
fn a_data_change_lists_row_counts_and_the_models_it_moved() {
    let p = committed("");
    let old = results(&p);
    let old_test = read_test(&p);
    p.write("saved.lock", &p.read("repro.lock"));
    // Drop the last 117 rows (the Produc panel is ordered by state: the last states go).
    p.write("pipeline.yaml", &PIPELINE.replace("rows: 817", "rows: 700"));
    p.repro(&["run"]).ok();
    let new = results(&p);
    let rows = |text: &str| text.lines().count() - 1;
    let diff = diff_json(&p, "saved.lock");
    assert_eq!(
        diff["data"],
        serde_json::json!([{
            "path": "output/data/produc.csv",
            "stage": "data",
            "status": "changed",
            "old_rows": 816,
            "new_rows": rows(&p.read("output/data/produc.csv")),
        }])
    );
    let mut expected = BTreeSet::new();
    for (i, m) in MODELS.iter().enumerate() {
        expected.extend(expected_cells(m, &old[i], &new[i]));
    }
    expected.extend(expected_test_cells(&old_test, &read_test(&p)));
    assert_eq!(listed_cells(&diff), expected);
    let n = model_cells(&diff, "plain")
        .iter()
        .find(|c| c["field"] == "nobs")
        .unwrap();
    assert_eq!((&n["old"], &n["new"]), (&old[0]["nobs"], &new[0]["nobs"]));
    // The saved lock and the commit hold the same lock: the same changes.
    let mut from_git = diff_json(&p, "HEAD");
    from_git["old"] = diff["old"].clone();
    assert_eq!(from_git, diff);
    assert_eq!(diff["old"], "saved.lock");
}

/// The one object under `dir/objects/` holding exactly `bytes` (found by content, not by
/// repro's hashing).
fn find_object(dir: &Path, bytes: &[u8]) -> std::path::PathBuf {
    let mut found = Vec::new();
    for shard in std::fs::read_dir(dir.join("objects")).unwrap() {
        for f in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let f = f.unwrap().path();
            if std::fs::read(&f).unwrap() == bytes {
                found.push(f);
            }
        }
    }
    assert_eq!(found.len(), 1);
    found.remove(0)
}

/// Removes the local cache object holding exactly `bytes`.
fn remove_object(p: &Project, bytes: &[u8]) {
    std::fs::remove_file(find_object(&p.path().join("cache"), bytes)).unwrap();
}

fn edit_controls(p: &Project) {
    p.write(
        "stages/baseline.yaml",
        &SPEC.replace("lgsp ~ lpcap + lpc |", "lgsp ~ lpcap + lpc + unemp |"),
    );
    p.repro(&["run"]).ok();
}

#[test]
fn a_missing_old_object_is_reported_and_the_rest_compared() {
    let p = committed("");
    let old_controls = p.read("output/results/baseline/controls.json");
    edit_controls(&p);
    remove_object(&p, old_controls.as_bytes());
    let out = p.repro(&["diff", "HEAD"]);
    out.ok();
    // The object's name is its content hash: a change of the result format is not this test's.
    let mut settings = snapshot_settings();
    settings.add_filter(r"object `[0-9a-f]{12}`", "object `[HASH]`");
    settings.bind(|| insta::assert_snapshot!("diff_missing_object", out.snapshot()));
    let diff = diff_json(&p, "HEAD");
    let missing = &diff["not_compared"][0];
    assert_eq!(missing["path"], "output/results/baseline/controls.json");
    assert!(missing["reason"]
        .as_str()
        .unwrap()
        .contains("is not in the local cache and the pipeline names no `remote:`"));
    // `east` is still compared.
    assert!(!model_cells(&diff, "east").is_empty());
    assert_eq!(p.repro(&["diff", "--fail-on-change"]).code, 1);
}

#[test]
fn an_old_object_comes_from_the_folder_remote() {
    let shared = tempfile::tempdir().unwrap();
    let p = committed(&format!("remote:\n  url: {}\n", shared.path().display()));
    p.repro(&["push"]).ok();
    let old_controls = p.read("output/results/baseline/controls.json");
    let old: Value = serde_json::from_str(&old_controls).unwrap();
    edit_controls(&p);
    remove_object(&p, old_controls.as_bytes());
    let diff = diff_json(&p, "HEAD");
    assert_eq!(diff["not_compared"], serde_json::json!([]));
    let lpcap = model_cells(&diff, "controls")
        .iter()
        .find(|c| c["term"] == "lpcap" && c["field"] == "estimate")
        .unwrap();
    assert_eq!(lpcap["old"], old["coefficients"][0]["estimate"]);
    // A damaged object on the remote is not used.
    remove_object(&p, old_controls.as_bytes());
    let on_remote = find_object(shared.path(), old_controls.as_bytes());
    let mut perm = std::fs::metadata(&on_remote).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(&on_remote, perm).unwrap();
    std::fs::write(&on_remote, "damaged\n").unwrap();
    let diff = diff_json(&p, "HEAD");
    let reason = diff["not_compared"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("does not match its hash"), "{reason}");
    // A remote without the object: said plainly, not an error for the rest.
    let empty = tempfile::tempdir().unwrap();
    p.write(
        "pipeline.yaml",
        &format!("remote:\n  url: {}\n{PIPELINE}", empty.path().display()),
    );
    let diff = diff_json(&p, "HEAD");
    let reason = diff["not_compared"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("is neither in the local cache nor on remote"),
        "{reason}"
    );
    // A remote that cannot be opened: the reason says why.
    p.write(
        "pipeline.yaml",
        &format!(
            "remote:\n  url: {}/gone\n{PIPELINE}",
            empty.path().display()
        ),
    );
    let diff = diff_json(&p, "HEAD");
    let reason = diff["not_compared"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("the remote cannot be used: cannot open remote folder")
            && reason.contains("No such file"),
        "{reason}"
    );
}

#[test]
fn bad_sources_are_usage_errors() {
    let p = committed("");
    let out = p.repro(&["diff", "no-such-rev"]);
    assert_eq!(out.code, 2);
    // A revision before the lock was committed.
    std::fs::rename(p.path().join("repro.lock"), p.path().join("kept.lock")).unwrap();
    git(p.path(), &["rm", "-q", "--cached", "repro.lock"]);
    git(p.path(), &["commit", "-q", "-m", "no lock"]);
    std::fs::rename(p.path().join("kept.lock"), p.path().join("repro.lock")).unwrap();
    let no_lock = p.repro(&["diff", "HEAD"]);
    assert_eq!(no_lock.code, 2);
    p.write("damaged.lock", "{\"format\": 1,");
    let damaged = p.repro(&["diff", "damaged.lock"]);
    assert_eq!(damaged.code, 2);
    let text = [out, no_lock, damaged]
        .iter()
        .map(|o| o.snapshot())
        .collect::<Vec<_>>()
        .join("\n");
    snapshot_settings().bind(|| insta::assert_snapshot!("diff_bad_sources", text));
}
