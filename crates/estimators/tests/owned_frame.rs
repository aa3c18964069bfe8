//! `fit_owned` (the frame given up, its dense columns taken over without a copy) gives exactly
//! what `fit` on a lent frame gives, on every path: all rows used and every column dense (the
//! columns move), rows dropped for missing values or singletons, and columns that are not dense
//! (copied).

use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use repro_estimators::data::{Column, Frame};
use repro_estimators::fit::{fit, fit_owned, FitOptions, ModelSpec, SingletonPolicy};

struct Case {
    n: usize,
    missing: bool,
    numeric_x1: bool,
    seed: u64,
}

fn frame(case: &Case) -> Frame {
    let mut rng = ChaCha8Rng::seed_from_u64(case.seed);
    let n = case.n;
    let f1: Vec<f64> = (0..n).map(|i| (i % 7) as f64).collect();
    let f2: Vec<Option<String>> = (0..n).map(|i| Some(format!("g{}", (i / 3) % 5))).collect();
    let z: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
    let x1: Vec<f64> = z.iter().map(|z| z + rng.random::<f64>()).collect();
    let mut x2: Vec<f64> = (0..n).map(|_| rng.random::<f64>() * 3.0).collect();
    let y: Vec<f64> = (0..n)
        .map(|i| 1.5 * x1[i] - 0.5 * x2[i] + f1[i] + rng.random::<f64>())
        .collect();
    if case.missing {
        x2[n / 2] = f64::NAN;
    }
    let mut frame = Frame::new();
    frame.push("y", Column::Float(y)).unwrap();
    let x1 = if case.numeric_x1 {
        Column::Numeric(x1.into_iter().map(Some).collect())
    } else {
        Column::Float(x1)
    };
    frame.push("x1", x1).unwrap();
    frame.push("x2", Column::Float(x2)).unwrap();
    frame.push("z", Column::Float(z)).unwrap();
    frame.push("f1", Column::Float(f1)).unwrap();
    frame.push("f2", Column::Text(f2)).unwrap();
    frame
}

fn spec(formula: &str, vcov: &str, singletons: SingletonPolicy) -> ModelSpec {
    ModelSpec {
        formula: formula.to_string(),
        vcov: vcov.parse().unwrap(),
        quantile: None,
        options: FitOptions {
            singletons,
            ..FitOptions::default()
        },
    }
}

const MODELS: &[(&str, &str)] = &[
    ("y ~ x1 + x2 | f1 + f2", "cluster:f1"),
    ("y ~ x1 + x2 | f1", "hc1"),
    ("y ~ x1 + x2", "iid"),
    ("y ~ x2 | f1 | x1 ~ z", "cluster:f2"),
    ("y ~ x2 + x1 | f2", "cluster:f1"),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn a_given_frame_fits_as_a_lent_one(
        n in 40usize..200,
        missing in any::<bool>(),
        numeric_x1 in any::<bool>(),
        seed in any::<u64>(),
        drop_singletons in any::<bool>(),
    ) {
        let case = Case { n, missing, numeric_x1, seed };
        let singletons = if drop_singletons {
            SingletonPolicy::DropIteratively
        } else {
            SingletonPolicy::Keep
        };
        for (formula, vcov) in MODELS {
            let spec = spec(formula, vcov, singletons);
            let lent = fit(&frame(&case), &spec).unwrap();
            let given = fit_owned(frame(&case), &spec).unwrap();
            prop_assert_eq!(
                serde_json::to_string(&lent).unwrap(),
                serde_json::to_string(&given).unwrap(),
                "{}", formula
            );
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&lent.residuals), bits(&given.residuals));
            prop_assert_eq!(&lent.used_rows, &given.used_rows);
        }
    }
}
