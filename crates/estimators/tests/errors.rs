//! Bad input must come back as a descriptive error, never a panic or a NaN result.

mod common;

use repro_estimators::data::{Column, Frame};
use repro_estimators::error::EstimError;
use repro_estimators::fit::{
    fit, FitOptions, ModelSpec, QuantileMethod, QuantileSe, QuantileSpec, VcovSpec,
};

fn spec(formula: &str, vcov: &str) -> ModelSpec {
    ModelSpec {
        formula: formula.to_string(),
        vcov: vcov.parse().expect("valid vcov"),
        quantile: None,
        options: FitOptions::default(),
    }
}

fn num(v: &[f64]) -> Column {
    Column::Numeric(v.iter().map(|&x| Some(x)).collect())
}

fn small_frame() -> Frame {
    let mut f = Frame::new();
    f.push("y", num(&[1.0, 2.5, 2.0, 4.5, 5.0, 5.5, 7.5, 8.0]))
        .unwrap();
    f.push("x", num(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]))
        .unwrap();
    f.push("z", num(&[2.0, 1.0, 4.0, 3.0, 6.0, 5.0, 8.0, 9.0]))
        .unwrap();
    f.push("g", num(&[1.0; 8])).unwrap();
    f.push(
        "name",
        Column::Text(
            ["a", "b", "c", "d", "e", "f", "g", "h"]
                .iter()
                .map(|s| Some(s.to_string()))
                .collect(),
        ),
    )
    .unwrap();
    f
}

#[test]
fn unknown_column() {
    let err = fit(&small_frame(), &spec("y ~ x + nope", "iid")).unwrap_err();
    assert_eq!(
        err,
        EstimError::UnknownColumn {
            name: "nope".into()
        }
    );
    assert_eq!(err.to_string(), "unknown column `nope`");
    let err = fit(&small_frame(), &spec("y ~ x", "cluster:state")).unwrap_err();
    assert_eq!(
        err,
        EstimError::UnknownColumn {
            name: "state".into()
        }
    );
}

#[test]
fn text_column_as_regressor() {
    let err = fit(&small_frame(), &spec("y ~ x + name", "iid")).unwrap_err();
    assert_eq!(
        err,
        EstimError::NonNumericColumn {
            name: "name".into(),
            row: 1,
            value: "a".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "column `name` is not numeric: row 1 holds `a`"
    );
}

#[test]
fn parse_error_points_at_the_problem() {
    let err = fit(&small_frame(), &spec("y ~ x + | g", "iid")).unwrap_err();
    let EstimError::FormulaParse { position, .. } = &err else {
        panic!("expected a parse error, got {err:?}");
    };
    assert_eq!(*position, 8);
    assert_eq!(err.caret().unwrap(), "y ~ x + | g\n        ^");
}

#[test]
fn too_few_observations() {
    let mut f = Frame::new();
    f.push("y", num(&[1.0, 2.0])).unwrap();
    f.push("a", num(&[1.0, 3.0])).unwrap();
    f.push("b", num(&[2.0, 1.0])).unwrap();
    let err = fit(&f, &spec("y ~ a + b", "iid")).unwrap_err();
    assert_eq!(err, EstimError::TooFewObservations { n: 2, k: 3 });
}

#[test]
fn single_level_cluster() {
    let err = fit(&small_frame(), &spec("y ~ x", "cluster:g")).unwrap_err();
    assert_eq!(err, EstimError::SingleCluster { name: "g".into() });
}

#[test]
fn under_identified_iv() {
    let mut f = small_frame();
    f.push("w", num(&[3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]))
        .unwrap();
    let err = fit(&f, &spec("y ~ 1 | x + w ~ z", "iid")).unwrap_err();
    assert_eq!(
        err,
        EstimError::UnderIdentified {
            endogenous: 2,
            instruments: 1
        }
    );
}

#[test]
fn instrument_collinear_with_exogenous_leaves_iv_under_identified() {
    let mut f = small_frame();
    f.push("x2", num(&[2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0]))
        .unwrap();
    // `x2` is twice the exogenous `x`: it adds nothing to identify `z`.
    let err = fit(&f, &spec("y ~ x | z ~ x2", "iid")).unwrap_err();
    assert_eq!(
        err,
        EstimError::UnderIdentified {
            endogenous: 1,
            instruments: 0
        }
    );
}

#[test]
fn all_rows_missing() {
    let mut f = Frame::new();
    f.push("y", Column::Numeric(vec![Some(1.0), None])).unwrap();
    f.push("x", Column::Numeric(vec![None, Some(2.0)])).unwrap();
    let err = fit(&f, &spec("y ~ x", "iid")).unwrap_err();
    assert!(matches!(err, EstimError::NoObservations { .. }), "{err:?}");
}

#[test]
fn quantile_outside_unit_interval() {
    let mut s = spec("y ~ x", "iid");
    s.quantile = Some(QuantileSpec {
        tau: 1.0,
        se: QuantileSe::Nid,
        method: QuantileMethod::Pooled,
    });
    let err = fit(&small_frame(), &s).unwrap_err();
    assert_eq!(err, EstimError::TauOutOfRange { tau: 1.0 });
}

#[test]
fn bad_vcov_text() {
    let err = "cluster:".parse::<VcovSpec>().unwrap_err();
    assert!(matches!(err, EstimError::InvalidVcov { .. }));
    assert!(err.to_string().starts_with("invalid vcov `cluster:`"));
}

#[test]
fn everything_absorbed_is_an_error_not_nan() {
    // `x` is constant within the groups of `name2`, so the fixed effect absorbs it.
    let mut f = small_frame();
    f.push(
        "name2",
        Column::Text(
            ["a", "a", "b", "b", "c", "c", "d", "d"]
                .iter()
                .map(|s| Some(s.to_string()))
                .collect(),
        ),
    )
    .unwrap();
    f.push("xc", num(&[1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0]))
        .unwrap();
    let err = fit(&f, &spec("y ~ xc | name2", "iid")).unwrap_err();
    assert!(matches!(err, EstimError::NoRegressors { .. }), "{err:?}");
    // With a second regressor the absorbed one is dropped with a message.
    let res = fit(&f, &spec("y ~ xc + x | name2", "iid")).unwrap();
    assert_eq!(res.coefficients.len(), 1);
    assert!(res
        .messages
        .iter()
        .any(|m| m.contains("`xc`") && m.contains("absorbed")));
}

#[test]
fn missing_rows_are_dropped_and_counted() {
    let mut f = Frame::new();
    let y = [
        Some(1.0),
        Some(2.0),
        None,
        Some(4.0),
        Some(4.5),
        Some(7.0),
        Some(8.0),
        Some(9.5),
    ];
    let x = [
        Some(1.0),
        Some(f64::NAN),
        Some(3.0),
        Some(4.0),
        Some(5.0),
        Some(6.0),
        Some(7.0),
        Some(8.5),
    ];
    let g = ["a", "a", "b", "", "b", "a", "b", "a"]
        .iter()
        .map(|s| (!s.is_empty()).then(|| s.to_string()))
        .collect();
    f.push("y", Column::Numeric(y.to_vec())).unwrap();
    f.push("x", Column::Numeric(x.to_vec())).unwrap();
    f.push("g", Column::Text(g)).unwrap();
    let res = fit(&f, &spec("y ~ x | g", "iid")).unwrap();
    assert_eq!(res.nobs, 5);
    assert_eq!(res.n_missing_dropped, 3);
    assert_eq!(res.used_rows, vec![0, 4, 5, 6, 7]);
    assert_eq!(res.residuals.len(), 5);
    assert!(res.messages.iter().any(|m| m.contains("3 row(s) dropped")));
}
