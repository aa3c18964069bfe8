//! Reference cases: every case of `tests/fixtures/estimators/expected.json` is estimated with
//! [`fit::fit`] and compared with the reference implementation's numbers within the case's
//! tolerances (relative for estimates, standard errors and objective; absolute for R2).

mod common;

use repro_estimators::fit::{self, FitOptions, ModelSpec, QuantileMethod, QuantileSpec, VcovSpec};
use serde_json::Value;

fn rel_diff(got: f64, want: f64) -> f64 {
    if want == 0.0 {
        got.abs()
    } else {
        ((got - want) / want).abs()
    }
}

fn spec_of(case: &Value) -> ModelSpec {
    let args = &case["args"];
    let formula = args["formula"].as_str().expect("formula").to_string();
    let vcov: VcovSpec = args["vcov"]
        .as_str()
        .unwrap_or("iid")
        .parse()
        .expect("valid vcov");
    let quantile = args["quantile"].as_f64().map(|tau| QuantileSpec {
        tau,
        se: args["se"]
            .as_str()
            .unwrap_or("nid")
            .parse()
            .expect("valid se"),
        method: QuantileMethod::Pooled,
    });
    ModelSpec {
        formula,
        vcov,
        quantile,
        options: FitOptions::default(),
    }
}

/// Compares one case; returns a list of mismatches and the largest relative differences of the
/// estimates and standard errors (printed, to show the margin to the tolerances).
fn check_case(case: &Value) -> (Vec<String>, f64, f64) {
    let name = case["case"].as_str().unwrap_or("?");
    let frame = common::read_csv(case["data"].as_str().expect("data"));
    let spec = spec_of(case);
    let res = match fit::fit(&frame, &spec) {
        Ok(r) => r,
        Err(e) => return (vec![format!("{name}: estimation failed: {e}")], 0.0, 0.0),
    };
    let expected = &case["expected"];
    let tol = &case["tolerance"];
    let est_tol = tol["estimate_rel"].as_f64().expect("estimate tolerance");
    let se_tol = tol["std_error_rel"].as_f64().expect("std error tolerance");
    let mut bad = Vec::new();
    let (mut worst_est, mut worst_se) = (0.0f64, 0.0f64);

    let nobs = expected["nobs"].as_u64().expect("nobs") as usize;
    if res.nobs != nobs {
        bad.push(format!("{name}: nobs {} != {nobs}", res.nobs));
    }
    let coefs = expected["coefficients"].as_object().expect("coefficients");
    if res.coefficients.len() != coefs.len() {
        bad.push(format!(
            "{name}: {} coefficients estimated, {} expected",
            res.coefficients.len(),
            coefs.len()
        ));
    }
    for (term, want) in coefs {
        let Some(got) = res.coefficient(term) else {
            bad.push(format!("{name}: coefficient `{term}` missing"));
            continue;
        };
        let we = want["estimate"].as_f64().expect("estimate");
        let ws = want["std_error"].as_f64().expect("std_error");
        let de = rel_diff(got.estimate, we);
        let ds = rel_diff(got.std_error, ws);
        worst_est = worst_est.max(de);
        worst_se = worst_se.max(ds);
        // Written so that a NaN fails.
        let (est_ok, se_ok) = (de <= est_tol, ds <= se_tol);
        if !est_ok {
            bad.push(format!(
                "{name}: `{term}` estimate {:.15e} vs {we:.15e} (rel {de:.2e})",
                got.estimate
            ));
        }
        if !se_ok {
            bad.push(format!(
                "{name}: `{term}` std error {:.15e} vs {ws:.15e} (rel {ds:.2e})",
                got.std_error
            ));
        }
    }
    for (field, got) in [("r2", res.r2), ("r2_within", res.r2_within)] {
        let Some(want) = expected[field].as_f64() else {
            continue;
        };
        let abs_tol = tol["r2_abs"].as_f64().expect("r2 tolerance");
        match got {
            Some(g) if (g - want).abs() <= abs_tol => {}
            other => bad.push(format!("{name}: {field} {other:?} vs {want}")),
        }
    }
    if let Some(want) = expected["objective"].as_f64() {
        let obj_tol = tol["objective_rel"].as_f64().expect("objective tolerance");
        match res.objective {
            Some(g) if rel_diff(g, want) <= obj_tol => {}
            other => bad.push(format!("{name}: objective {other:?} vs {want}")),
        }
    }
    (bad, worst_est, worst_se)
}

#[test]
fn every_reference_case_matches() {
    let path = common::fixture_dir().join("expected.json");
    let text = std::fs::read_to_string(&path).expect("expected.json");
    let cases: Vec<Value> = serde_json::from_str(&text).expect("valid json");
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for case in &cases {
        let (bad, worst_est, worst_se) = check_case(case);
        let name = case["case"].as_str().unwrap_or("?");
        let verdict = if bad.is_empty() { "ok" } else { "MISMATCH" };
        println!(
            "{name}: {verdict} (max rel diff: estimate {worst_est:.1e}, std error {worst_se:.1e})"
        );
        failures.extend(bad);
    }
    assert!(
        failures.is_empty(),
        "{} mismatch(es):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
