//! The adjusted R² rows a `models` table offers (`adj_r2: true`, as etable's `ar2`/`war2` and
//! esttab's `r2_a`), printed against pyfixest's values for the same models on the same data
//! (`crates/estimators/tests/data/r2_reference.json`, written by `r2_reference.py`).

use crate::Project;

fn reference() -> serde_json::Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/estimators/tests/data/r2_reference.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The cells of the CSV row labelled `label`, if any.
fn row(csv: &str, label: &str) -> Option<Vec<String>> {
    csv.lines()
        .find(|l| l.split(',').next() == Some(label))
        .map(|l| l.split(',').skip(1).map(str::to_string).collect())
}

#[test]
fn adjusted_r2_rows_print_pyfixest_values() {
    let cases = reference()["cases"].as_array().unwrap().clone();
    let p = Project::new();
    let produc = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/estimators/produc.csv");
    p.write("produc.csv", &std::fs::read_to_string(produc).unwrap());
    let mut models = String::new();
    for c in &cases {
        models.push_str(&format!(
            "  - id: {}\n    formula: {}\n    vcov: {}\n",
            c["case"].as_str().unwrap(),
            c["formula"].as_str().unwrap(),
            c["vcov"].as_str().unwrap()
        ));
    }
    let spec = format!("title: Fit\ndata: produc.csv\nname: fit\ndigits: 6\nmodels:\n{models}");
    p.write("stages/fit.yaml", &format!("{spec}adj_r2: true\n"))
        .write(
            "stages/plain.yaml",
            &spec.replace("name: fit", "name: plain"),
        )
        .write(
            "pipeline.yaml",
            "stages:\n  fit:\n    kind: models\n    params: {spec: stages/fit.yaml}\n  \
             plain:\n    kind: models\n    params: {spec: stages/plain.yaml}\n",
        );
    p.repro(&["run"]).ok();
    let csv = p.read("output/tables/fit.csv");
    let cell = |v: &serde_json::Value| v.as_f64().map_or(String::new(), |x| format!("{x:.6}"));
    for (label, field) in [
        ("R-squared", "r2"),
        ("Adjusted R-squared", "adj_r2"),
        ("Within R-squared", "r2_within"),
        ("Adjusted within R-squared", "adj_r2_within"),
    ] {
        let want: Vec<String> = cases.iter().map(|c| cell(&c[field])).collect();
        assert_eq!(row(&csv, label), Some(want), "{label}\n{csv}");
    }
    // Without `adj_r2` the table has no such rows.
    let plain = p.read("output/tables/plain.csv");
    assert!(row(&plain, "R-squared").is_some(), "{plain}");
    assert!(row(&plain, "Adjusted R-squared").is_none(), "{plain}");
    assert!(
        row(&plain, "Adjusted within R-squared").is_none(),
        "{plain}"
    );
}
