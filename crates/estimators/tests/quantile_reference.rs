//! Reference fits from R quantreg 5.94 beyond engel: continuous, integer (degenerate, non-unique),
//! mixed, intercept-only and outlier-ridden data, made by `quantile_reference.R` beside this file.
//! The simplex must land on quantreg's vertex even where the solution is not unique, and the
//! standard errors follow from it.

use std::collections::HashMap;
use std::path::PathBuf;

use faer::Mat;
use repro_estimators::quantile::{rq, RqMethod, RqOptions, RqSe};
use serde_json::Value;

struct Data {
    x: Mat<f64>,
    y: Vec<f64>,
}

fn load() -> (HashMap<String, Data>, Vec<Value>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/quantile_reference.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut datasets = HashMap::new();
    for (name, d) in doc["datasets"].as_object().unwrap() {
        let rows: Vec<Vec<f64>> = d["x"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect()
            })
            .collect();
        let x = Mat::from_fn(rows.len(), rows[0].len(), |i, j| rows[i][j]);
        let y = d["y"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        datasets.insert(name.clone(), Data { x, y });
    }
    (datasets, doc["cases"].as_array().unwrap().clone())
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Relative difference, measured against `floor` when the reference is (nearly) zero.
fn rel(a: f64, b: f64, floor: f64) -> f64 {
    (a - b).abs() / b.abs().max(floor)
}

#[test]
fn br_and_standard_errors_match_quantreg() {
    let (datasets, cases) = load();
    assert_eq!(cases.len(), 41);
    let mut failures = Vec::new();
    for case in &cases {
        let data = &datasets[case["data"].as_str().unwrap()];
        let tau = case["tau"].as_f64().unwrap();
        let se_name = case["se"].as_str().unwrap();
        let se = match se_name {
            "iid" => RqSe::Iid,
            "nid" => RqSe::Nid,
            "ker" => RqSe::Ker,
            other => panic!("unexpected se `{other}`"),
        };
        let label = format!("{} tau={tau} se={se_name}", case["data"].as_str().unwrap());
        let opts = RqOptions {
            tau,
            method: RqMethod::Br,
            se,
            ..RqOptions::default()
        };
        let fit = match rq(data.x.as_ref(), &data.y, &opts) {
            Ok(fit) => fit,
            Err(e) => {
                failures.push(format!("{label}: error {e}"));
                continue;
            }
        };
        let coef = floats(&case["coef"]);
        let se = floats(&case["std_error"]);
        let scale = coef.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1.0);
        for j in 0..coef.len() {
            if rel(fit.coef[j], coef[j], 1e-8 * scale) > 1e-6 {
                failures.push(format!("{label}: coef {j} {} vs {}", fit.coef[j], coef[j]));
            }
            if rel(fit.std_error[j], se[j], f64::MIN_POSITIVE) > 1e-5 {
                failures.push(format!("{label}: se {j} {} vs {}", fit.std_error[j], se[j]));
            }
        }
        let objective = case["objective"].as_f64().unwrap();
        if rel(fit.objective, objective, f64::MIN_POSITIVE) > 1e-9 {
            failures.push(format!(
                "{label}: objective {} vs {objective}",
                fit.objective
            ));
        }
    }
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
}

#[test]
fn interior_point_reaches_the_same_optimum() {
    // Where the solution is not unique the vertex may differ, but the objective may not.
    let (datasets, cases) = load();
    for case in cases.iter().filter(|c| c["se"] == "nid") {
        let data = &datasets[case["data"].as_str().unwrap()];
        let tau = case["tau"].as_f64().unwrap();
        for method in [RqMethod::Fn, RqMethod::Pfn] {
            let opts = RqOptions {
                tau,
                method,
                se: RqSe::None,
                ..RqOptions::default()
            };
            let fit = rq(data.x.as_ref(), &data.y, &opts).unwrap();
            let objective = case["objective"].as_f64().unwrap();
            assert!(
                rel(fit.objective, objective, f64::MIN_POSITIVE) < 1e-10,
                "{} tau={tau} {method:?}: objective {} vs {objective}",
                case["data"],
                fit.objective
            );
        }
    }
}
