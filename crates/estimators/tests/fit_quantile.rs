//! The quantile paths of `fit::fit`: the formula, missing values and fixed effects are turned
//! into the inputs of `quantile::rq`, `mmqr::mmqr` and `mmqr::canay` exactly as documented, so
//! `fit` must reproduce direct calls of those functions.

use faer::Mat;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use repro_estimators::data::{Column, Frame};
use repro_estimators::error::EstimError;
use repro_estimators::fit::{fit, FitOptions, ModelSpec, QuantileMethod, QuantileSe, QuantileSpec};
use repro_estimators::mmqr::{canay, mmqr, CanayOptions, CanaySe, MmqrOptions};
use repro_estimators::quantile::{rq, RqOptions, RqSe};

struct Data {
    y: Vec<f64>,
    x: Vec<f64>,
    g: Vec<u32>,
}

fn data() -> Data {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let n = 240;
    let mut d = Data {
        y: Vec::new(),
        x: Vec::new(),
        g: Vec::new(),
    };
    let effects = [0.0, 1.5, -1.0, 3.0, 0.5, 2.0];
    for i in 0..n {
        let g = (i % 6) as u32;
        let x: f64 = rng.random::<f64>() * 4.0;
        let e: f64 = rng.random::<f64>() - 0.5;
        d.y.push(1.0 + 2.0 * x + effects[g as usize] + (1.0 + 0.5 * x) * e);
        d.x.push(x);
        d.g.push(g);
    }
    d
}

fn frame(d: &Data) -> Frame {
    let mut f = Frame::new();
    // A leading row with a missing outcome checks that `fit` drops it before the estimators.
    let mut y: Vec<Option<f64>> = vec![None];
    y.extend(d.y.iter().map(|&v| Some(v)));
    let mut x: Vec<Option<f64>> = vec![Some(1.0)];
    x.extend(d.x.iter().map(|&v| Some(v)));
    let mut g: Vec<Option<String>> = vec![Some("g0".into())];
    g.extend(d.g.iter().map(|&v| Some(format!("g{v}"))));
    f.push("y", Column::Numeric(y)).unwrap();
    f.push("x", Column::Numeric(x)).unwrap();
    f.push("g", Column::Text(g)).unwrap();
    f
}

fn spec(formula: &str, vcov: &str, tau: f64, se: QuantileSe, method: QuantileMethod) -> ModelSpec {
    ModelSpec {
        formula: formula.to_string(),
        vcov: vcov.parse().unwrap(),
        quantile: Some(QuantileSpec { tau, se, method }),
        options: FitOptions::default(),
    }
}

#[test]
fn pooled_fixed_effects_are_dummy_columns() {
    let d = data();
    let res = fit(
        &frame(&d),
        &spec(
            "y ~ x | g",
            "iid",
            0.3,
            QuantileSe::Nid,
            QuantileMethod::Pooled,
        ),
    )
    .unwrap();
    assert_eq!(res.nobs, d.y.len());
    assert_eq!(res.n_missing_dropped, 1);
    assert_eq!(res.coefficients.len(), 1);
    // Intercept, x, and dummies for levels 1..5 of g (level 0 is the first seen).
    let n = d.y.len();
    let design = Mat::from_fn(n, 7, |i, j| match j {
        0 => 1.0,
        1 => d.x[i],
        _ => f64::from(u8::from(d.g[i] as usize == j - 1)),
    });
    let direct = rq(
        design.as_ref(),
        &d.y,
        &RqOptions {
            tau: 0.3,
            se: RqSe::Nid,
            ..RqOptions::default()
        },
    )
    .unwrap();
    let c = res.coefficient("x").unwrap();
    assert!((c.estimate - direct.coef[1]).abs() < 1e-12);
    assert!((c.std_error - direct.std_error[1]).abs() < 1e-12);
    assert!((res.objective.unwrap() - direct.objective).abs() < 1e-9);
    assert_eq!(res.df_t, Some(n - 7));
    assert_eq!(res.used_rows.len(), n);
    assert_eq!(res.used_rows[0], 1);
}

#[test]
fn pooled_cluster_bootstrap_reports_clusters() {
    let d = data();
    let se = QuantileSe::Bootstrap { reps: 50, seed: 3 };
    let res = fit(
        &frame(&d),
        &spec("y ~ x", "cluster:g", 0.5, se, QuantileMethod::Pooled),
    )
    .unwrap();
    let counts = res.n_clusters.unwrap();
    assert_eq!(counts.0, vec![("g".to_string(), 6)]);
    assert!(res
        .coefficients
        .iter()
        .all(|c| c.std_error.is_finite() && c.std_error > 0.0));
    assert_eq!(res.vcov, "bootstrap:50:3");
}

#[test]
fn mmqr_through_fit_matches_direct_call() {
    let d = data();
    let res = fit(
        &frame(&d),
        &spec(
            "y ~ x | g",
            "robust",
            0.75,
            QuantileSe::Nid,
            QuantileMethod::Mmqr,
        ),
    )
    .unwrap();
    let n = d.y.len();
    let x = Mat::from_fn(n, 1, |i, _| d.x[i]);
    let direct = mmqr(&d.y, x.as_ref(), &d.g, &[0.75], &MmqrOptions::default()).unwrap();
    let c = res.coefficient("x").unwrap();
    assert!((c.estimate - direct[0].coef[0]).abs() < 1e-12);
    assert!((c.std_error - direct[0].std_error[0]).abs() < 1e-12);
    assert_eq!(res.df_t, None);
    assert_eq!(res.vcov, "robust");
}

#[test]
fn canay_through_fit_matches_direct_call() {
    let d = data();
    let res = fit(
        &frame(&d),
        &spec(
            "y ~ x | g",
            "iid",
            0.25,
            QuantileSe::Iid,
            QuantileMethod::Canay,
        ),
    )
    .unwrap();
    let n = d.y.len();
    let x = Mat::from_fn(n, 1, |i, _| d.x[i]);
    let direct = canay(
        &d.y,
        x.as_ref(),
        &d.g,
        &CanayOptions {
            tau: 0.25,
            se: CanaySe::SecondStep(RqSe::Iid),
            ..CanayOptions::default()
        },
    )
    .unwrap();
    let c = res.coefficient("x").unwrap();
    assert!((c.estimate - direct.rq.coef[1]).abs() < 1e-12);
    assert!((c.std_error - direct.rq.std_error[1]).abs() < 1e-12);
    assert!((res.objective.unwrap() - direct.rq.objective).abs() < 1e-9);
}

#[test]
fn quantile_option_errors() {
    let d = data();
    let f = frame(&d);
    let boot = QuantileSe::Bootstrap { reps: 10, seed: 1 };
    let err = fit(
        &f,
        &spec("y ~ x | g", "robust", 0.5, boot, QuantileMethod::Mmqr),
    )
    .unwrap_err();
    assert!(matches!(err, EstimError::InvalidOption { .. }), "{err:?}");
    let err = fit(
        &f,
        &spec("y ~ x", "iid", 0.5, QuantileSe::Nid, QuantileMethod::Canay),
    )
    .unwrap_err();
    assert!(matches!(err, EstimError::InvalidOption { .. }), "{err:?}");
    let err = fit(
        &f,
        &spec("y ~ x", "hc1", 0.5, QuantileSe::Nid, QuantileMethod::Pooled),
    )
    .unwrap_err();
    assert!(matches!(err, EstimError::InvalidVcov { .. }), "{err:?}");
    let err = fit(
        &f,
        &spec(
            "y ~ x",
            "cluster:g",
            0.5,
            QuantileSe::Nid,
            QuantileMethod::Pooled,
        ),
    )
    .unwrap_err();
    assert!(matches!(err, EstimError::InvalidVcov { .. }), "{err:?}");
    let err = fit(
        &f,
        &spec(
            "y ~ 1 | x ~ g",
            "iid",
            0.5,
            QuantileSe::Nid,
            QuantileMethod::Pooled,
        ),
    )
    .unwrap_err();
    assert!(matches!(err, EstimError::InvalidOption { .. }), "{err:?}");
}
