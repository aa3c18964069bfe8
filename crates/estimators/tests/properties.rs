//! Properties that must hold on any data: invariance to row order, equivalence of absorbed
//! fixed effects and explicit dummies, and recovery of known coefficients from simulated data.

use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use repro_estimators::data::{Column, Frame};
use repro_estimators::fit::{fit, FitOptions, ModelSpec};
use repro_estimators::result::FitResult;

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn run(frame: &Frame, formula: &str, vcov: &str, fixef_tol: f64) -> FitResult {
    fit(
        frame,
        &ModelSpec {
            formula: formula.to_string(),
            vcov: vcov.parse().unwrap(),
            quantile: None,
            options: FitOptions {
                fixef_tol,
                ..FitOptions::default()
            },
        },
    )
    .unwrap_or_else(|e| panic!("{formula}: {e}"))
}

fn num(v: Vec<f64>) -> Column {
    Column::Numeric(v.into_iter().map(Some).collect())
}

/// A panel-like data set: `f1` (text) with `l1` levels and `f2` (numeric) with `l2` levels, the
/// first `l1 * l2` rows covering every pair so the fixed-effect graph is connected; `y` depends
/// on `x1`, `x2`, both fixed effects, and noise of scale `noise`.
struct Sim {
    y: Vec<f64>,
    x1: Vec<f64>,
    x2: Vec<f64>,
    f1: Vec<usize>,
    f2: Vec<usize>,
    f3: Vec<usize>,
    cl: Vec<usize>,
}

fn simulate(seed: u64, n: usize, l1: usize, l2: usize, noise: f64) -> Sim {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let a: Vec<f64> = (0..l1).map(|_| 3.0 * normal(&mut rng)).collect();
    let b: Vec<f64> = (0..l2).map(|_| normal(&mut rng)).collect();
    let c: Vec<f64> = (0..3).map(|_| normal(&mut rng)).collect();
    let mut s = Sim {
        y: Vec::new(),
        x1: Vec::new(),
        x2: Vec::new(),
        f1: Vec::new(),
        f2: Vec::new(),
        f3: Vec::new(),
        cl: Vec::new(),
    };
    for i in 0..n {
        let (g1, g2) = if i < l1 * l2 {
            (i % l1, i / l1)
        } else {
            (
                (rng.random::<f64>() * l1 as f64) as usize % l1,
                (rng.random::<f64>() * l2 as f64) as usize % l2,
            )
        };
        let g3 = i % 3;
        let x1 = 0.5 * a[g1] + normal(&mut rng);
        let x2 = 0.3 * b[g2] + normal(&mut rng);
        let y = 2.0 * x1 - 0.5 * x2 + a[g1] + b[g2] + c[g3] + noise * normal(&mut rng);
        s.y.push(y);
        s.x1.push(x1);
        s.x2.push(x2);
        s.f1.push(g1);
        s.f2.push(g2);
        s.f3.push(g3);
        s.cl.push(i % 7);
    }
    s
}

/// The simulated data in row order `perm`, with dummy columns `d1_k` and `d2_k` for every level
/// but the first of `f1` and `f2`.
fn frame_of(s: &Sim, perm: &[usize], l1: usize, l2: usize) -> Frame {
    let pick = |v: &[f64]| perm.iter().map(|&i| v[i]).collect::<Vec<f64>>();
    let mut f = Frame::new();
    f.push("y", num(pick(&s.y))).unwrap();
    f.push("x1", num(pick(&s.x1))).unwrap();
    f.push("x2", num(pick(&s.x2))).unwrap();
    f.push(
        "f1",
        Column::Text(
            perm.iter()
                .map(|&i| Some(format!("g{}", s.f1[i])))
                .collect(),
        ),
    )
    .unwrap();
    f.push(
        "f2",
        num(perm.iter().map(|&i| s.f2[i] as f64 * 10.0).collect()),
    )
    .unwrap();
    f.push("f3", num(perm.iter().map(|&i| s.f3[i] as f64).collect()))
        .unwrap();
    f.push("cl", num(perm.iter().map(|&i| s.cl[i] as f64).collect()))
        .unwrap();
    for k in 1..l1 {
        let d = perm
            .iter()
            .map(|&i| f64::from(u8::from(s.f1[i] == k)))
            .collect();
        f.push(format!("d1_{k}"), num(d)).unwrap();
    }
    for k in 1..l2 {
        let d = perm
            .iter()
            .map(|&i| f64::from(u8::from(s.f2[i] == k)))
            .collect();
        f.push(format!("d2_{k}"), num(d)).unwrap();
    }
    f
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-12)
}

fn assert_same(a: &FitResult, b: &FitResult, rel: f64) {
    for ca in &a.coefficients {
        let cb = b.coefficient(&ca.term).expect("same terms");
        assert!(
            close(ca.estimate, cb.estimate, rel),
            "{}: {} vs {}",
            ca.term,
            ca.estimate,
            cb.estimate
        );
        assert!(
            close(ca.std_error, cb.std_error, rel),
            "{}: se {} vs {}",
            ca.term,
            ca.std_error,
            cb.std_error
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn estimates_do_not_depend_on_row_order(
        seed in any::<u64>(),
        extra in 5usize..40,
        l1 in 2usize..6,
        l2 in 2usize..5,
        perm_seed in any::<u64>(),
    ) {
        let n = l1 * l2 + extra;
        let sim = simulate(seed, n, l1, l2, 1.0);
        let ordered: Vec<usize> = (0..n).collect();
        let mut shuffled = ordered.clone();
        let mut rng = ChaCha8Rng::seed_from_u64(perm_seed);
        for i in (1..n).rev() {
            let j = (rng.random::<f64>() * (i + 1) as f64) as usize % (i + 1);
            shuffled.swap(i, j);
        }
        let fa = frame_of(&sim, &ordered, l1, l2);
        let fb = frame_of(&sim, &shuffled, l1, l2);
        for (formula, vcov) in [
            ("y ~ x1 + x2 | f1 + f2", "cluster:cl"),
            ("y ~ x1 + x2 | f1 + f2 + f3", "hc1"),
            ("y ~ x1 + x2", "cluster:f1+cl"),
            ("y ~ x1 | x2 ~ d1_1 + cl", "hc1"),
        ] {
            let a = run(&fa, formula, vcov, 1e-13);
            let b = run(&fb, formula, vcov, 1e-13);
            assert_same(&a, &b, 1e-8);
            prop_assert_eq!(a.nobs, b.nobs);
            // Relative: an IV R-squared with a weak instrument can be -5e4 (seed
            // 4375818164708474849, extra 36, l1 5, l2 4, perm 695517051905), where 1e-10
            // absolute would demand more digits than a double holds.
            let (ra, rb) = (a.r2.unwrap(), b.r2.unwrap());
            prop_assert!((ra - rb).abs() < 1e-10 * ra.abs().max(1.0));
        }
    }

    #[test]
    fn absorbed_fixed_effects_equal_explicit_dummies(
        seed in any::<u64>(),
        extra in 5usize..40,
        l1 in 2usize..6,
        l2 in 2usize..5,
    ) {
        let n = l1 * l2 + extra;
        let sim = simulate(seed, n, l1, l2, 1.0);
        let frame = frame_of(&sim, &(0..n).collect::<Vec<_>>(), l1, l2);
        let dummies: Vec<String> = (1..l1)
            .map(|k| format!("d1_{k}"))
            .chain((1..l2).map(|k| format!("d2_{k}")))
            .collect();
        let explicit = format!("y ~ x1 + x2 + {}", dummies.join(" + "));
        // iid and hc1 count the same K either way: slopes + levels - (dimensions - 1).
        for vcov in ["iid", "hc1"] {
            let absorbed = run(&frame, "y ~ x1 + x2 | f1 + f2", vcov, 1e-13);
            let dense = run(&frame, &explicit, vcov, 1e-13);
            let ca = absorbed.coefficient("x1").unwrap();
            let cd = dense.coefficient("x1").unwrap();
            prop_assert!(close(ca.estimate, cd.estimate, 1e-8), "{} {}", ca.estimate, cd.estimate);
            prop_assert!(close(ca.std_error, cd.std_error, 1e-8));
            prop_assert!((absorbed.r2.unwrap() - dense.r2.unwrap()).abs() < 1e-10);
            prop_assert_eq!(absorbed.df_t, dense.df_t);
        }
        // The same holds for 2SLS: the fixed effects are exogenous regressors of both stages.
        // A nearly irrelevant instrument makes the second stage ill-conditioned (seed
        // 14941346475700562072, extra 21, l1 5, l2 3: first-stage F 3e-8, condition number
        // 1e5); the sandwich is built from the QR factor so that both fits keep their digits
        // there (tests/weak_iv_sandwich.rs checks that case against pyfixest).
        let explicit_iv = format!("y ~ x1 + {} | x2 ~ cl", dummies.join(" + "));
        for vcov in ["iid", "hc1"] {
            let absorbed = run(&frame, "y ~ x1 | f1 + f2 | x2 ~ cl", vcov, 1e-13);
            let dense = run(&frame, &explicit_iv, vcov, 1e-13);
            for term in ["x1", "x2"] {
                let ca = absorbed.coefficient(term).unwrap();
                let cd = dense.coefficient(term).unwrap();
                prop_assert!(close(ca.estimate, cd.estimate, 1e-7), "{} {}", ca.estimate, cd.estimate);
                prop_assert!(close(ca.std_error, cd.std_error, 1e-7));
            }
            let fa = &absorbed.first_stage.as_ref().unwrap().first_stage[0];
            let fd = &dense.first_stage.as_ref().unwrap().first_stage[0];
            prop_assert!(close(fa.f_stat, fd.f_stat, 1e-7), "{} {}", fa.f_stat, fd.f_stat);
            prop_assert_eq!(fa.df2, fd.df2);
        }
    }

    #[test]
    fn noiseless_data_are_fitted_exactly(
        seed in any::<u64>(),
        extra in 5usize..60,
        l1 in 2usize..8,
        l2 in 2usize..6,
    ) {
        let n = l1 * l2 + extra;
        let sim = simulate(seed, n, l1, l2, 0.0);
        let frame = frame_of(&sim, &(0..n).collect::<Vec<_>>(), l1, l2);
        let res = run(&frame, "y ~ x1 + x2 | f1 + f2 + f3", "iid", 1e-12);
        prop_assert!((res.coefficient("x1").unwrap().estimate - 2.0).abs() < 1e-8);
        prop_assert!((res.coefficient("x2").unwrap().estimate + 0.5).abs() < 1e-8);
    }
}

#[test]
fn simulated_coefficients_are_recovered() {
    let sim = simulate(42, 4000, 30, 12, 1.0);
    let frame = frame_of(&sim, &(0..4000).collect::<Vec<_>>(), 30, 12);
    for vcov in ["iid", "hc1", "cluster:f1", "cluster:f1+cl"] {
        let res = run(&frame, "y ~ x1 + x2 | f1 + f2 + f3", vcov, 1e-8);
        let b1 = res.coefficient("x1").unwrap();
        let b2 = res.coefficient("x2").unwrap();
        assert!(
            (b1.estimate - 2.0).abs() < 5.0 * b1.std_error,
            "{vcov}: {b1:?}"
        );
        assert!(
            (b2.estimate + 0.5).abs() < 5.0 * b2.std_error,
            "{vcov}: {b2:?}"
        );
    }
}

#[test]
fn iv_recovers_the_causal_effect_that_ols_misses() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let n = 5000;
    let (mut y, mut x, mut z, mut w) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let zi = normal(&mut rng);
        let wi = normal(&mut rng);
        let u = normal(&mut rng);
        let xi = zi + 0.5 * wi + u; // endogenous: shares `u` with y
        y.push(1.0 + 2.0 * xi + 0.7 * wi + 2.0 * u + normal(&mut rng));
        x.push(xi);
        z.push(zi);
        w.push(wi);
    }
    let mut frame = Frame::new();
    frame.push("y", num(y)).unwrap();
    frame.push("x", num(x)).unwrap();
    frame.push("z", num(z)).unwrap();
    frame.push("w", num(w)).unwrap();
    let iv = run(&frame, "y ~ w | x ~ z", "hc1", 1e-8);
    let b = iv.coefficient("x").unwrap();
    assert!((b.estimate - 2.0).abs() < 5.0 * b.std_error, "{b:?}");
    let ols = run(&frame, "y ~ w + x", "hc1", 1e-8);
    let bo = ols.coefficient("x").unwrap();
    assert!((bo.estimate - 2.0).abs() > 10.0 * bo.std_error, "{bo:?}");
    let stats = iv.first_stage.unwrap();
    assert!(stats.first_stage[0].f_stat > 100.0);
}
