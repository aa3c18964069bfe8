//! The engel reference cases of `tests/fixtures/estimators/expected.json` (R quantreg 5.94,
//! `rq(method = "br")`, `summary.rq(se = ..., hs = TRUE)`), run through `quantile::rq` directly.

use std::path::PathBuf;

use faer::Mat;
use repro_estimators::quantile::{rq, RqMethod, RqOptions, RqSe};
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/estimators")
}

/// `(income, foodexp)` from engel.csv.
fn engel() -> (Vec<f64>, Vec<f64>) {
    let text = std::fs::read_to_string(fixtures().join("engel.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap().trim(), "income,foodexp");
    let (mut income, mut food) = (Vec::new(), Vec::new());
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let mut parts = line.split(',');
        income.push(parts.next().unwrap().trim().parse::<f64>().unwrap());
        food.push(parts.next().unwrap().trim().parse::<f64>().unwrap());
    }
    (income, food)
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
}

#[test]
fn engel_cases_match_quantreg() {
    let (income, food) = engel();
    let x = Mat::from_fn(income.len(), 2, |i, j| if j == 0 { 1.0 } else { income[i] });
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap())
            .unwrap();
    let engel_cases: Vec<&Value> = cases
        .iter()
        .filter(|c| c["case"].as_str().unwrap().starts_with("engel_"))
        .collect();
    assert_eq!(engel_cases.len(), 15);
    let mut failures = Vec::new();
    let mut worst = [0.0f64; 3];
    for case in engel_cases {
        let name = case["case"].as_str().unwrap();
        let args = &case["args"];
        assert_eq!(args["formula"], "foodexp ~ income");
        let tau = args["quantile"].as_f64().unwrap();
        let se = match args["se"].as_str().unwrap() {
            "nid" => RqSe::Nid,
            "iid" => RqSe::Iid,
            "ker" => RqSe::Ker,
            other => panic!("unexpected se `{other}`"),
        };
        let opts = RqOptions {
            tau,
            method: RqMethod::Br,
            se,
            ..RqOptions::default()
        };
        let fit = rq(x.as_ref(), &food, &opts).unwrap();
        let expected = &case["expected"];
        let tol = &case["tolerance"];
        let (est_tol, se_tol) = (
            tol["estimate_rel"].as_f64().unwrap(),
            tol["std_error_rel"].as_f64().unwrap(),
        );
        let obj_tol = tol["objective_rel"].as_f64().unwrap();
        assert_eq!(fit.nobs as u64, expected["nobs"].as_u64().unwrap());
        for (j, coef_name) in ["Intercept", "income"].iter().enumerate() {
            let e = &expected["coefficients"][coef_name];
            let (b, s) = (
                e["estimate"].as_f64().unwrap(),
                e["std_error"].as_f64().unwrap(),
            );
            worst[0] = worst[0].max(rel(fit.coef[j], b));
            worst[1] = worst[1].max(rel(fit.std_error[j], s));
            if rel(fit.coef[j], b) > est_tol {
                failures.push(format!(
                    "{name} {coef_name} estimate {} vs {b}",
                    fit.coef[j]
                ));
            }
            if rel(fit.std_error[j], s) > se_tol {
                failures.push(format!(
                    "{name} {coef_name} std_error {} vs {s}",
                    fit.std_error[j]
                ));
            }
        }
        let obj = expected["objective"].as_f64().unwrap();
        worst[2] = worst[2].max(rel(fit.objective, obj));
        if rel(fit.objective, obj) > obj_tol {
            failures.push(format!("{name} objective {} vs {obj}", fit.objective));
        }
    }
    eprintln!(
        "engel: worst relative error estimate {:.2e}, std error {:.2e}, objective {:.2e}",
        worst[0], worst[1], worst[2]
    );
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
}

#[test]
fn engel_fn_and_pfn_agree_with_br() {
    let (income, food) = engel();
    let x = Mat::from_fn(income.len(), 2, |i, j| if j == 0 { 1.0 } else { income[i] });
    for tau in [0.1, 0.25, 0.5, 0.75, 0.9] {
        let fit = |method| {
            let opts = RqOptions {
                tau,
                method,
                se: RqSe::None,
                ..RqOptions::default()
            };
            rq(x.as_ref(), &food, &opts).unwrap()
        };
        let br = fit(RqMethod::Br);
        assert!(!br.nonunique, "tau {tau}: engel solutions are unique");
        for method in [RqMethod::Fn, RqMethod::Pfn] {
            let other = fit(method);
            for j in 0..2 {
                assert!(
                    rel(other.coef[j], br.coef[j]) < 1e-9,
                    "tau {tau} {method:?} coef {j}: {} vs {}",
                    other.coef[j],
                    br.coef[j]
                );
            }
            assert!(rel(other.objective, br.objective) < 1e-12);
        }
    }
}
