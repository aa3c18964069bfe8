//! `repro fit` and the `fit` built-in stage, as users run them.

use crate::{snapshot_settings, Project};

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/estimators")
}

fn project_with_produc() -> Project {
    let p = Project::new();
    let data = std::fs::read_to_string(fixtures().join("produc.csv")).unwrap();
    p.write("produc.csv", &data);
    p
}

/// The fixture model `produc_cluster` of `expected.json`.
const PRODUC_TWFE: &[&str] = &[
    "fit",
    "--data",
    "produc.csv",
    "--formula",
    "lgsp ~ lpcap + lpc + lemp + unemp | state + year",
    "--vcov",
    "cluster:state",
];

#[test]
fn summary_of_a_two_way_fixed_effects_model() {
    let p = project_with_produc();
    let out = p.repro(PRODUC_TWFE);
    out.ok();
    snapshot_settings().bind(|| insta::assert_snapshot!("fit_summary", out.snapshot()));
}

#[test]
fn json_matches_the_pyfixest_reference() {
    let p = project_with_produc();
    let out = p.repro(&[PRODUC_TWFE, &["--json"]].concat());
    out.ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["nobs"], 816);
    assert_eq!(v["vcov"], "cluster:state");
    assert_eq!(v["n_clusters"]["state"], 48);
    // fixest's K: 4 slopes + 17 year levels; the state effects are nested in the clusters.
    assert_eq!(v["k"], 21);
    // pyfixest 0.60.0, tests/fixtures/estimators/expected.json case produc_cluster.
    let lpcap = &v["coefficients"][0];
    assert_eq!(lpcap["term"], "lpcap");
    let rel = |a: f64, b: f64| ((a - b) / b).abs();
    assert!(rel(lpcap["estimate"].as_f64().unwrap(), -0.030176056579837972) < 1e-8);
    assert!(rel(lpcap["std_error"].as_f64().unwrap(), 0.058240421971447916) < 1e-6);
    assert!(rel(v["r2_within"].as_f64().unwrap(), 0.7549578745094567) < 1e-8);
    for key in ["statistic", "p_value"] {
        assert!(lpcap[key].is_number(), "{key} missing");
    }
}

#[test]
fn quantile_json_has_the_objective() {
    let p = Project::new();
    p.write(
        "engel.csv",
        &std::fs::read_to_string(fixtures().join("engel.csv")).unwrap(),
    );
    let out = p.repro(&[
        "fit",
        "--data",
        "engel.csv",
        "--formula",
        "foodexp ~ income",
        "--quantile",
        "0.5",
        "--se",
        "nid",
        "--json",
    ]);
    out.ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["nobs"], 235);
    assert!(v["objective"].as_f64().unwrap() > 0.0);
    assert_eq!(v["coefficients"][0]["term"], "Intercept");
}

#[test]
fn parquet_and_csv_give_the_same_estimates() {
    use polars::prelude::*;
    let p = project_with_produc();
    let mut df = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(p.path().join("produc.csv")))
        .unwrap()
        .finish()
        .unwrap();
    let file = std::fs::File::create(p.path().join("produc.parquet")).unwrap();
    ParquetWriter::new(file).finish(&mut df).unwrap();
    let args = |data: &'static str| {
        vec![
            "fit",
            "--data",
            data,
            "--formula",
            "lgsp ~ lpcap + lpc | state + year",
            "--vcov",
            "hc1",
            "--json",
        ]
    };
    let csv = p.repro(&args("produc.csv"));
    let pq = p.repro(&args("produc.parquet"));
    csv.ok();
    pq.ok();
    let strip = |s: &str| s.replace("produc.parquet", "produc.csv");
    assert_eq!(strip(&pq.stdout), csv.stdout);
    p.write("data.txt", "y,x\n1,2\n");
    let out = p.repro(&["fit", "--data", "data.txt", "--formula", "y ~ x"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("unknown file type `txt`"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_input_gets_clear_errors() {
    let p = project_with_produc();
    p.write("bad.csv", "y,x,g\n1,2,a\n2,oops,a\n3,4,a\n4,5,a\n");
    p.write("one.csv", "y,x,g\n1,2,a\n2,3,a\n3,5,a\n4,4,a\n");
    let cases: &[(&str, &[&str])] = &[
        (
            "fit_err_formula",
            &[
                "fit",
                "--data",
                "produc.csv",
                "--formula",
                "lgsp ~ lpcap + | state",
            ],
        ),
        (
            "fit_err_column",
            &["fit", "--data", "produc.csv", "--formula", "lgsp ~ nope"],
        ),
        (
            "fit_err_nonnumeric",
            &["fit", "--data", "bad.csv", "--formula", "y ~ x"],
        ),
        (
            "fit_err_one_cluster",
            &[
                "fit",
                "--data",
                "one.csv",
                "--formula",
                "y ~ x",
                "--vcov",
                "cluster:g",
            ],
        ),
        (
            "fit_err_tau",
            &[
                "fit",
                "--data",
                "produc.csv",
                "--formula",
                "lgsp ~ lpcap",
                "--quantile",
                "1.5",
            ],
        ),
        (
            "fit_err_iv",
            &[
                "fit",
                "--data",
                "produc.csv",
                "--formula",
                "lgsp ~ lpcap | lpc + lemp ~ unemp",
            ],
        ),
        (
            "fit_err_missing_file",
            &["fit", "--data", "nowhere.csv", "--formula", "y ~ x"],
        ),
    ];
    for (name, args) in cases {
        let out = p.repro(args);
        assert_eq!(out.code, 2, "{name}: {}", out.snapshot());
        snapshot_settings().bind(|| insta::assert_snapshot!(*name, out.snapshot()));
    }
}

#[test]
fn fit_stage_in_a_pipeline_reruns_only_when_the_model_changes() {
    let p = project_with_produc();
    let pipeline = r#"stages:
  twfe:
    kind: fit
    params:
      data: produc.csv
      formula: lgsp ~ lpcap + lpc + lemp + unemp | state + year
      vcov: cluster:state
      out: results/twfe.json
"#;
    p.write("pipeline.yaml", pipeline);
    p.repro(&["run"]).ok();
    let first = p.read("results/twfe.json");
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["data"], "produc.csv");
    assert_eq!(
        v["formula"],
        "lgsp ~ lpcap + lpc + lemp + unemp | state + year"
    );
    assert_eq!(p.repro(&["status"]).stdout, "all 1 stages are up to date\n");
    p.write("pipeline.yaml", &pipeline.replace("cluster:state", "hc1"));
    let st = p.repro(&["status"]);
    assert!(
        st.stdout
            .contains("param `vcov` changed: `\"cluster:state\"` -> `\"hc1\"`"),
        "{}",
        st.stdout
    );
    p.repro(&["run"]).ok();
    assert_ne!(p.read("results/twfe.json"), first);
    // Deterministic: a forced rerun writes the same bytes.
    let second = p.read("results/twfe.json");
    p.repro(&["run", "--force"]).ok();
    assert_eq!(p.read("results/twfe.json"), second);
}

#[test]
fn fit_stage_params_are_checked_when_the_pipeline_loads() {
    let p = project_with_produc();
    p.write(
        "pipeline.yaml",
        "stages:\n  m:\n    kind: fit\n    params:\n      data: produc.csv\n      formula: lgsp ~ ~ lpcap\n      out: m.json\n  n:\n    kind: fit\n    params:\n      data: produc.csv\n      formula: lgsp ~ lpcap\n      out: n.json\n      vcovv: hc1\n",
    );
    let out = p.repro(&["run"]);
    assert_eq!(out.code, 2);
    snapshot_settings().bind(|| insta::assert_snapshot!("fit_stage_params", out.snapshot()));
    assert!(!p.exists("n.json"), "nothing ran");
}

/// Machado and Santos Silva (2019), Table 6 through `repro fit` as a user runs it: the MM-QR
/// median regression of the Persson-Tabellini panel with `--vcov xtqreg` prints the paper's
/// standard errors (tau = .50 row, two decimals), and the JSON names the convention. The data
/// are not part of the repository (`../shared/data/external/`, see its README); the test is
/// skipped with a message where they are absent.
#[test]
fn mmqr_xtqreg_reproduces_the_published_table_6_median_row() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/external/mss2019_persson_tabellini.csv");
    if !data.is_file() {
        eprintln!("skipped: {} is absent", data.display());
        return;
    }
    let p = Project::new();
    let formula =
        "spl ~ polity_gt + lyp + trade + prop1564 + prop65 + lspl + oil_im + oil_ex + ygap | ctrycd";
    let data = data.to_string_lossy().to_string();
    let args = [
        "fit",
        "--data",
        &data,
        "--formula",
        formula,
        "--method",
        "mmqr",
        "--quantile",
        "0.5",
    ];
    let out = p.repro(&[&args[..], &["--vcov", "xtqreg", "--json"]].concat());
    out.ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["vcov"], "xtqreg");
    // Table 6, MM-QR tau = .50, standard errors in parentheses.
    let published = [0.05, 0.53, 0.01, 0.03, 0.07, 0.03, 0.01, 0.02, 0.03];
    let se: Vec<f64> = v["coefficients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["std_error"].as_f64().unwrap())
        .collect();
    for (got, want) in se.iter().zip(published) {
        assert_eq!(format!("{got:.2}"), format!("{want:.2}"), "{se:?}");
    }
    // A variance MM-QR does not have is an error that lists the ones it has, never replaced.
    let bad = p.repro(&[&args[..], &["--vcov", "iid"]].concat());
    assert_eq!(bad.code, 2, "{}", bad.snapshot());
    assert!(
        bad.stderr.contains("mmqr takes `robust` (default)"),
        "{}",
        bad.stderr
    );
    assert!(bad.stderr.contains("`xtqreg`"), "{}", bad.stderr);
}

/// `repro fit --json | true` ends quietly when the reader has closed the pipe (it used to
/// panic with "failed printing to stdout").
#[test]
fn a_closed_pipe_ends_output_quietly() {
    let p = project_with_produc();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' {} --json | true",
            crate::repro_bin().display(),
            PRODUC_TWFE.join(" ").replace(
                "lgsp ~ lpcap + lpc + lemp + unemp | state + year",
                "'lgsp ~ lpcap + lpc + lemp + unemp | state + year'"
            )
        ))
        .current_dir(p.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
