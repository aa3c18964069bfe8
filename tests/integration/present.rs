//! The presentation layer as users run it: `models`, `describe` and `quantiles` stages (tables in
//! four formats, result JSON, the quantile figure and its data) and `repro report`.

use crate::{snapshot_settings, Project};

fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/estimators")
        .join(name);
    std::fs::read_to_string(p).unwrap()
}

const BASELINE: &str = r#"title: Public capital and state output
data: produc.csv
name: baseline
vcov: cluster:state
sets:
  controls: [lpc, lemp, unemp]
labels: {lpcap: Public capital, lgsp: Log GSP, controls: Private inputs}
keep: [lpcap]
fe_labels: {state: State FE, year: Year FE}
models:
  - id: plain
    group: All states
    formula: lgsp ~ lpcap | state + year
  - id: controls
    group: All states
    formula: lgsp ~ lpcap + {controls} | state + year
  - id: state_only
    group: All states
    formula: lgsp ~ lpcap + {controls} | state
    vcov: hc1
  - id: east
    label: East
    group: By region
    formula: lgsp ~ lpcap + {controls} | state + year
    sample: region <= 4
  - id: west
    label: West
    group: By region
    formula: lgsp ~ lpcap + {controls} | state + year
    sample: region > 4
differences:
  - {a: east, b: west, coef: lpcap, method: stacked}
  - {a: east, b: west, coef: lpcap, method: permutation, reps: 49, seed: 7}
notes: Produc data, 48 states, 1970-1986.
"#;

const IV: &str = r#"title: Cigarette demand (IV)
data: cigarettes.csv
name: demand
vcov: hc1
labels: {lrprice: Log real price, lpacks: Log packs, lrincome: Log real income}
models:
  - id: ols
    formula: lpacks ~ lrprice + lrincome
  - id: iv
    formula: lpacks ~ lrincome | lrprice ~ tdiff + rtax
    first_stage: true
"#;

const DESCRIBE: &str = r#"title: Summary statistics
data: produc.csv
name: summary
variables: {lgsp: Log GSP, lpcap: Log public capital, unemp: Unemployment rate}
sample: year >= 1980
"#;

const QUANTILES: &str = r#"title: Public capital across the output distribution
data: produc.csv
name: qprocess
formula: lgsp ~ lpcap + {controls} | state
sets: {controls: [lpc, unemp]}
taus: [0.25, 0.5, 0.75]
methods: [pooled, mmqr]
coef: lpcap
se: nid
vcov: cluster:state
labels: {lpcap: Public capital}
"#;

const PIPELINE: &str = r#"report: output/report.html
stages:
  baseline:
    kind: models
    params: {spec: stages/baseline.yaml}
  demand:
    kind: models
    params: {spec: stages/demand.yaml}
  summary:
    kind: describe
    params: {spec: stages/summary.yaml}
"#;

fn project() -> Project {
    let p = Project::new();
    p.write("produc.csv", &fixture("produc.csv"));
    p.write("cigarettes.csv", &fixture("cigarettes.csv"));
    p.write("stages/baseline.yaml", BASELINE);
    p.write("stages/demand.yaml", IV);
    p.write("stages/summary.yaml", DESCRIBE);
    p.write("stages/qprocess.yaml", QUANTILES);
    p.write("pipeline.yaml", PIPELINE);
    p
}

#[test]
fn models_table_in_four_formats() {
    let p = project();
    p.repro(&["run", "baseline"]).ok();
    for ext in ["tex", "md", "html", "csv"] {
        let text = p.read(&format!("output/tables/baseline.{ext}"));
        snapshot_settings()
            .bind(|| insta::assert_snapshot!(format!("models_baseline_{ext}"), text));
    }
    // Each model's full result, with the expanded formula, the data and the sample.
    let east: serde_json::Value =
        serde_json::from_str(&p.read("output/results/baseline/east.json")).unwrap();
    assert_eq!(
        east["formula"],
        "lgsp ~ lpcap + lpc + lemp + unemp | state + year"
    );
    assert_eq!(east["data"], "produc.csv");
    assert_eq!(east["sample"], "region <= 4");
    assert_eq!(east["vcov"], "cluster:state");
    let all: serde_json::Value =
        serde_json::from_str(&p.read("output/results/baseline/controls.json")).unwrap();
    assert_eq!(all["nobs"], 816);
    assert!(all["sample"].is_null());
    // The pyfixest reference of this model (expected.json, produc_cluster).
    let b = all["coefficients"][0]["estimate"].as_f64().unwrap();
    assert!((b - -0.030176056579837972).abs() < 1e-8);
    let n_east = east["nobs"].as_u64().unwrap();
    let west: serde_json::Value =
        serde_json::from_str(&p.read("output/results/baseline/west.json")).unwrap();
    assert_eq!(n_east + west["nobs"].as_u64().unwrap(), 816);
    let diff: serde_json::Value =
        serde_json::from_str(&p.read("output/results/baseline/diff_east_west_lpcap_stacked.json"))
            .unwrap();
    let d = diff["result"]["difference"].as_f64().unwrap();
    let ea = east["coefficients"][0]["estimate"].as_f64().unwrap();
    let we = west["coefficients"][0]["estimate"].as_f64().unwrap();
    assert!((d - (ea - we)).abs() < 1e-8, "{d} vs {ea} - {we}");
    let perm: serde_json::Value = serde_json::from_str(
        &p.read("output/results/baseline/diff_east_west_lpcap_permutation.json"),
    )
    .unwrap();
    assert!((perm["result"]["observed"].as_f64().unwrap() - (ea - we)).abs() < 1e-8);
    assert_eq!(perm["result"]["reps"], 49);
}

#[test]
fn iv_table_with_first_stage_column() {
    let p = project();
    p.repro(&["run", "demand"]).ok();
    let md = p.read("output/tables/demand.md");
    snapshot_settings().bind(|| insta::assert_snapshot!("models_demand_md", md));
    let first: serde_json::Value =
        serde_json::from_str(&p.read("output/results/demand/iv_first_stage_lrprice.json")).unwrap();
    assert_eq!(first["formula"], "lrprice ~ tdiff + rtax + lrincome");
    // The IV estimate matches the reference (expected.json, the cigarettes case, pyfixest).
    let iv: serde_json::Value =
        serde_json::from_str(&p.read("output/results/demand/iv.json")).unwrap();
    let price = iv["coefficients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["term"] == "lrprice")
        .unwrap();
    assert!((price["estimate"].as_f64().unwrap() - -1.2774241336830758).abs() < 1e-8);
    assert!((price["std_error"].as_f64().unwrap() - 0.2496100004143545).abs() < 1e-6);
    assert!(iv["first_stage"]["kleibergen_paap_f"].is_number());
    assert!(md.contains("Kleibergen-Paap F"));
    assert!(md.contains("First-stage F"));
}

#[test]
fn describe_table() {
    let p = project();
    p.repro(&["run", "summary"]).ok();
    let csv = p.read("output/tables/summary.csv");
    snapshot_settings().bind(|| insta::assert_snapshot!("describe_summary_csv", csv));
    // 48 states x 7 years from 1980 on.
    assert!(csv.lines().nth(1).unwrap().starts_with("Log GSP,336,"));
}

#[test]
fn quantile_figure_data_holds_the_series() {
    let p = project();
    p.write(
        "pipeline.yaml",
        "stages:\n  qprocess:\n    kind: quantiles\n    params: {spec: stages/qprocess.yaml}\n",
    );
    p.repro(&["run"]).ok();
    let fig: serde_json::Value =
        serde_json::from_str(&p.read("output/figures/qprocess.json")).unwrap();
    let panels = fig["panels"].as_array().unwrap();
    assert_eq!(panels.len(), 2);
    let [x0, x1] = [
        fig["x_range"][0].as_f64().unwrap(),
        fig["x_range"][1].as_f64().unwrap(),
    ];
    let [y0, y1] = [
        fig["y_range"][0].as_f64().unwrap(),
        fig["y_range"][1].as_f64().unwrap(),
    ];
    assert!(x0 < 0.25 && x1 > 0.75 && y0 < y1);
    for panel in panels {
        let series = panel["series"].as_array().unwrap();
        let taus: Vec<f64> = series.iter().map(|s| s["tau"].as_f64().unwrap()).collect();
        assert_eq!(taus, vec![0.25, 0.5, 0.75]);
        for s in series {
            let (lo, c, hi) = (
                s["lo"].as_f64().unwrap(),
                s["coef"].as_f64().unwrap(),
                s["hi"].as_f64().unwrap(),
            );
            assert!(lo < c && c < hi, "{s}");
            assert!(y0 <= lo && hi <= y1, "{s} outside {y0}..{y1}");
        }
        // Each plotted point is the estimate of the result file of that fit.
        let m = panel["method"].as_str().unwrap();
        let res: serde_json::Value =
            serde_json::from_str(&p.read(&format!("output/results/qprocess/{m}_tau0.50.json")))
                .unwrap();
        let est = res["coefficients"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["term"] == "lpcap")
            .unwrap()["estimate"]
            .as_f64()
            .unwrap();
        assert_eq!(est, series[1]["coef"].as_f64().unwrap());
    }
    let ols = &fig["ols"];
    let ols_json: serde_json::Value =
        serde_json::from_str(&p.read("output/results/qprocess/ols.json")).unwrap();
    assert_eq!(ols_json["vcov"], "cluster:state");
    assert_eq!(ols["coef"], ols_json["coefficients"][0]["estimate"]);
    assert!(ols["lo"].as_f64().unwrap() >= y0 && ols["hi"].as_f64().unwrap() <= y1);
    let svg = p.read("output/figures/qprocess.svg");
    assert!(svg.contains("<svg") && svg.contains("MMQR"));
    let png = std::fs::read(p.path().join("output/figures/qprocess.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let md = p.read("output/tables/qprocess.md");
    snapshot_settings().bind(|| insta::assert_snapshot!("quantiles_qprocess_md", md));
    // A forced rerun draws byte-identical images.
    p.repro(&["run", "--force"]).ok();
    assert_eq!(p.read("output/figures/qprocess.svg"), svg);
    assert_eq!(
        std::fs::read(p.path().join("output/figures/qprocess.png")).unwrap(),
        png
    );
}

#[test]
fn report_is_self_contained_and_only_rewritten_when_something_ran() {
    let p = project();
    p.repro(&["run"]).ok();
    let page = p.read("output/report.html");
    for caption in [
        "Public capital and state output",
        "Cigarette demand (IV)",
        "Summary statistics",
    ] {
        assert!(page.contains(caption), "missing table `{caption}`");
    }
    for forbidden in [
        "src=\"http",
        "href=\"http",
        "src='http",
        "href='http",
        "<link",
        "<script",
    ] {
        assert!(!page.contains(forbidden), "report contains `{forbidden}`");
    }
    assert!(page.contains("<svg"), "no stage graph");
    assert!(page.contains("ran in the latest logged run"));
    assert!(page.contains("stages/baseline.yaml"));
    // A no-op run leaves an existing report alone (not even rewritten with a new date)...
    p.write("output/report.html", "kept");
    p.repro(&["run"]).ok();
    assert_eq!(p.read("output/report.html"), "kept");
    // ...and writes a missing one (a fresh clone restored from the cache has none).
    p.remove("output/report.html");
    p.repro(&["run"]).ok();
    assert!(p.read("output/report.html").contains("Summary statistics"));
    // `repro report` writes it on demand.
    p.remove("output/report.html");
    p.repro(&["report"]).ok();
    assert!(p.read("output/report.html").contains("Summary statistics"));
    // A run that rebuilds one stage rewrites it, and tells which stages were up to date.
    p.write(
        "stages/summary.yaml",
        &DESCRIBE.replace("year >= 1980", "year >= 1981"),
    );
    p.repro(&["run"]).ok();
    let page = p.read("output/report.html");
    let section = |stage: &str| -> String {
        let start = page.find(&format!("id=\"stage-{stage}\"")).unwrap();
        page[start..].split("<h3").next().unwrap().to_string()
    };
    assert!(section("summary").contains("ran in the latest logged run"));
    assert!(section("baseline").contains("up to date in the latest logged run"));
    assert!(section("baseline").contains("stages/baseline.yaml"));
}

#[test]
fn editing_one_spec_reruns_only_its_stage() {
    let p = project();
    p.repro(&["run"]).ok();
    p.write(
        "stages/baseline.yaml",
        &BASELINE.replace(
            "lgsp ~ lpcap | state + year",
            "lgsp ~ lpcap + unemp | state + year",
        ),
    );
    let status = p.repro(&["status", "--json"]);
    status.ok();
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let stale: Vec<&str> = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["stale"] == true)
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(stale, vec!["baseline"]);
    let out = p.repro(&["run"]);
    out.ok();
    assert!(out.stderr.contains("1 ran"), "{}", out.stderr);
}

fn spec_error(spec: &str) -> crate::Out {
    let p = project();
    p.write("stages/baseline.yaml", spec);
    let out = p.repro(&["run", "baseline"]);
    assert_ne!(out.code, 0, "{}", out.snapshot());
    out
}

#[test]
fn spec_errors_point_into_the_spec_file() {
    let bad_formula =
        spec_error(&BASELINE.replace("lgsp ~ lpcap | state", "lgsp ~ lpcap + | state"));
    assert_eq!(bad_formula.code, 2);
    snapshot_settings()
        .bind(|| insta::assert_snapshot!("models_bad_formula", bad_formula.snapshot()));

    let unknown = spec_error(&BASELINE.replace("keep: [lpcap]", "kep: [lpcap]"));
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("stages/baseline.yaml:"),
        "{}",
        unknown.stderr
    );
    assert!(unknown.stderr.contains("kep"), "{}", unknown.stderr);

    // The data file is a source: its header is known, so the sample's variable is checked when
    // the pipeline loads (exit 2), not when the stage runs.
    let bad_sample = spec_error(&BASELINE.replace("region <= 4", "regio <= 4"));
    assert_eq!(bad_sample.code, 2, "{}", bad_sample.snapshot());
    assert!(
        bad_sample.stderr.contains("stages/baseline.yaml:25:"),
        "{}",
        bad_sample.stderr
    );
    assert!(
        bad_sample.stderr.contains("`regio`"),
        "{}",
        bad_sample.stderr
    );

    let bad_set = spec_error(&BASELINE.replace("{controls} | state\n", "{contrls} | state\n"));
    assert!(
        bad_set.stderr.contains("unknown set `contrls`"),
        "{}",
        bad_set.stderr
    );
}
