//! Weak-instrument statistics on the cigarettes data, checked against identities that hold with
//! one endogenous regressor and against first-stage regressions run through the OLS path:
//! * with iid errors the first-stage F is the classical F test of the excluded instruments,
//!   `((R2_u - R2_r) / q) / ((1 - R2_u) / (N - K))`, and the Cragg-Donald F equals it;
//! * with hc1 or clustered errors the first-stage F is the robust Wald statistic of the excluded
//!   instruments in the OLS first stage divided by q, and the Kleibergen-Paap rk Wald F (ivreg2's
//!   small-sample convention) equals it.

mod common;

use repro_estimators::data::{Column, Frame};
use repro_estimators::fit::{fit, FitOptions, ModelSpec};
use repro_estimators::result::FitResult;

fn run(frame: &Frame, formula: &str, vcov: &str) -> FitResult {
    fit(
        frame,
        &ModelSpec {
            formula: formula.to_string(),
            vcov: vcov.parse().unwrap(),
            quantile: None,
            options: FitOptions::default(),
        },
    )
    .unwrap()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    ((a - b) / b).abs() <= rel
}

/// Wald / q for the named coefficients of an OLS fit, from its covariance matrix.
fn wald_over_q(res: &FitResult, names: &[&str]) -> f64 {
    let idx: Vec<usize> = names
        .iter()
        .map(|n| res.coefficients.iter().position(|c| c.term == *n).unwrap())
        .collect();
    let q = idx.len();
    assert_eq!(q, 2, "the helper inverts a 2 x 2 block");
    let v = |a: usize, b: usize| res.covariance[idx[a]][idx[b]];
    let det = v(0, 0) * v(1, 1) - v(0, 1) * v(1, 0);
    let inv = [
        [v(1, 1) / det, -v(0, 1) / det],
        [-v(1, 0) / det, v(0, 0) / det],
    ];
    let b: Vec<f64> = idx.iter().map(|&i| res.coefficients[i].estimate).collect();
    let mut w = 0.0;
    for a in 0..2 {
        for c in 0..2 {
            w += b[a] * inv[a][c] * b[c];
        }
    }
    w / q as f64
}

const IV: &str = "lpacks ~ lrincome | lrprice ~ tdiff + rtax";
const FIRST: &str = "lrprice ~ lrincome + tdiff + rtax";
const RESTRICTED: &str = "lrprice ~ lrincome";

#[test]
fn iid_first_stage_f_and_cragg_donald() {
    let frame = common::read_csv("cigarettes.csv");
    let iv = run(&frame, IV, "iid");
    let stats = iv.first_stage.as_ref().unwrap();
    let fs = &stats.first_stage[0];
    let u = run(&frame, FIRST, "iid");
    let r = run(&frame, RESTRICTED, "iid");
    let (r2u, r2r) = (u.r2.unwrap(), r.r2.unwrap());
    let classical = ((r2u - r2r) / 2.0) / ((1.0 - r2u) / (48.0 - 4.0));
    assert!(
        close(fs.f_stat, classical, 1e-9),
        "{} vs {classical}",
        fs.f_stat
    );
    assert_eq!((fs.df1, fs.df2), (2, 44));
    assert!(close(stats.cragg_donald_f, classical, 1e-9));
    assert!(stats.kleibergen_paap_f.is_none());
    // The iid Wald form is the same number.
    assert!(close(wald_over_q(&u, &["tdiff", "rtax"]), classical, 1e-9));
    assert!(fs.p_value > 0.0 && fs.p_value < 1e-10);
}

#[test]
fn robust_first_stage_f_equals_kleibergen_paap() {
    let frame = common::read_csv("cigarettes.csv");
    let iv = run(&frame, IV, "hc1");
    let stats = iv.first_stage.as_ref().unwrap();
    let robust = wald_over_q(&run(&frame, FIRST, "hc1"), &["tdiff", "rtax"]);
    assert!(close(stats.first_stage[0].f_stat, robust, 1e-9));
    let kp = stats.kleibergen_paap_f.unwrap();
    assert!(close(kp, robust, 1e-9), "{kp} vs {robust}");
    // Cragg-Donald does not depend on the variance type.
    let iid = run(&frame, IV, "iid");
    assert!(close(
        stats.cragg_donald_f,
        iid.first_stage.unwrap().cragg_donald_f,
        1e-12
    ));
}

#[test]
fn clustered_first_stage_f_equals_kleibergen_paap() {
    let mut frame = common::read_csv("cigarettes.csv");
    // Cluster the 48 states into 12 groups of 4 (alphabetical order).
    let groups: Vec<Option<f64>> = (0..frame.nrows()).map(|i| Some((i / 4) as f64)).collect();
    frame.push("grp", Column::Numeric(groups)).unwrap();
    let iv = run(&frame, IV, "cluster:grp");
    let stats = iv.first_stage.as_ref().unwrap();
    let first = run(&frame, FIRST, "cluster:grp");
    let robust = wald_over_q(&first, &["tdiff", "rtax"]);
    assert!(close(stats.first_stage[0].f_stat, robust, 1e-9));
    let kp = stats.kleibergen_paap_f.unwrap();
    assert!(close(kp, robust, 1e-9), "{kp} vs {robust}");
    assert_eq!(iv.df_t, Some(11));
}

#[test]
fn two_endogenous_regressors_give_finite_statistics() {
    let mut frame = common::read_csv("cigarettes.csv");
    // A second endogenous regressor (nonlinear in the price) and a third instrument.
    let col = |name: &str| match frame.column(name).unwrap() {
        Column::Numeric(v) => v.clone(),
        Column::Float(_) | Column::Text(_) => unreachable!("numeric fixture column"),
    };
    let price = col("lrprice");
    let tdiff = col("tdiff");
    let sq: Vec<Option<f64>> = price.iter().map(|p| p.map(|v| v * v)).collect();
    let tdiff2: Vec<Option<f64>> = tdiff.iter().map(|p| p.map(|v| v * v)).collect();
    frame.push("lrprice2", Column::Numeric(sq)).unwrap();
    frame.push("tdiff2", Column::Numeric(tdiff2)).unwrap();
    let f = "lpacks ~ lrincome | lrprice + lrprice2 ~ tdiff + rtax + tdiff2";
    let iv = run(&frame, f, "hc1");
    let stats = iv.first_stage.unwrap();
    assert_eq!(stats.first_stage.len(), 2);
    let kp = stats.kleibergen_paap_f.unwrap();
    assert!(kp.is_finite() && kp > 0.0);
    assert!(stats.cragg_donald_f.is_finite() && stats.cragg_donald_f > 0.0);
    // Cragg-Donald is the minimum of a generalized Rayleigh quotient whose value at each unit
    // vector is that regressor's iid first-stage F, so it cannot exceed the weakest of them.
    let iid = run(&frame, f, "iid").first_stage.unwrap();
    let weakest = iid
        .first_stage
        .iter()
        .map(|s| s.f_stat)
        .fold(f64::INFINITY, f64::min);
    assert!(iid.cragg_donald_f <= weakest * (1.0 + 1e-12));
}
