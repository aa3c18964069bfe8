//! R², adjusted R², within R² and adjusted within R² against pyfixest: the cases of
//! `tests/data/r2_reference.json`, written by `r2_reference.py` (pyfixest 0.60.0 on the Produc
//! data): OLS without fixed effects, one and two fixed effects, and clustered standard errors
//! (where the small-sample K leaves out the nested fixed effect but the adjusted R² does not).

mod common;

use repro_estimators::fit::{self, FitOptions, ModelSpec};
use serde_json::Value;

/// Relative tolerance: the fixed effects are absorbed to 1e-13 on both sides.
const TOL: f64 = 1e-10;

fn close(got: Option<f64>, want: &Value) -> Result<(), String> {
    match (got, want.as_f64()) {
        (None, None) => Ok(()),
        (Some(g), Some(w)) if ((g - w) / w).abs() <= TOL => Ok(()),
        (g, w) => Err(format!("repro {g:?}, pyfixest {w:?}")),
    }
}

#[test]
fn fit_statistics_match_pyfixest() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/r2_reference.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let frame = common::read_csv(doc["data"].as_str().unwrap());
    let mut bad = Vec::new();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let name = case["case"].as_str().unwrap();
        let spec = ModelSpec {
            formula: case["formula"].as_str().unwrap().to_string(),
            vcov: case["vcov"].as_str().unwrap().parse().unwrap(),
            quantile: None,
            options: FitOptions {
                fixef_tol: 1e-13,
                ..FitOptions::default()
            },
        };
        let res = fit::fit(&frame, &spec).unwrap();
        assert_eq!(res.nobs as u64, case["nobs"].as_u64().unwrap(), "{name}");
        for (field, got) in [
            ("r2", res.r2),
            ("adj_r2", res.adj_r2),
            ("r2_within", res.r2_within),
            ("adj_r2_within", res.adj_r2_within),
        ] {
            if let Err(e) = close(got, &case[field]) {
                bad.push(format!("{name} {field}: {e}"));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
