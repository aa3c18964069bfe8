//! Properties of `quantile::rq` that hold for any data: optimality, the quantile property of the
//! residuals, invariance to row order, agreement of the solvers, determinism of the bootstrap, and
//! the errors on bad input.

use faer::Mat;
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use repro_estimators::error::EstimError;
use repro_estimators::quantile::{check_loss, rq, RqFit, RqMethod, RqOptions, RqSe};

fn fit(x: &Mat<f64>, y: &[f64], tau: f64, method: RqMethod) -> RqFit {
    let opts = RqOptions {
        tau,
        method,
        se: RqSe::None,
        ..RqOptions::default()
    };
    rq(x.as_ref(), y, &opts).unwrap()
}

fn objective(x: &Mat<f64>, y: &[f64], coef: &[f64], tau: f64) -> f64 {
    (0..y.len())
        .map(|i| {
            let fitted: f64 = (0..coef.len()).map(|j| x[(i, j)] * coef[j]).sum();
            check_loss(y[i] - fitted, tau)
        })
        .sum()
}

/// Intercept plus `k - 1` regressors; `rows[i]` holds the regressors and then the response.
fn design(rows: &[Vec<f64>], k: usize) -> (Mat<f64>, Vec<f64>) {
    let x = Mat::from_fn(
        rows.len(),
        k,
        |i, j| if j == 0 { 1.0 } else { rows[i][j - 1] },
    );
    let y = rows.iter().map(|r| r[k - 1]).collect();
    (x, y)
}

fn data_strategy() -> impl Strategy<Value = (Vec<Vec<f64>>, usize, f64)> {
    (2usize..=4, 0.03f64..0.97).prop_flat_map(|(k, tau)| {
        let row = prop::collection::vec(-50.0f64..50.0, k);
        (prop::collection::vec(row, 3 * k..40), Just(k), Just(tau))
    })
}

/// Integer-valued data: ties everywhere, so degenerate and non-unique problems are common.
fn integer_strategy() -> impl Strategy<Value = (Vec<Vec<f64>>, usize, f64)> {
    (2usize..=3, 0.05f64..0.95).prop_flat_map(|(k, tau)| {
        let row = prop::collection::vec((-4i32..=4).prop_map(f64::from), k);
        (prop::collection::vec(row, 3 * k..30), Just(k), Just(tau))
    })
}

fn full_rank(x: &Mat<f64>) -> bool {
    let k = x.ncols();
    let xtx = x.transpose() * x;
    let s = xtx.singular_values().unwrap();
    s[k - 1] > 1e-9 * s[0]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn residual_signs_bracket_tau((rows, k, tau) in data_strategy()) {
        let (x, y) = design(&rows, k);
        prop_assume!(full_rank(&x));
        let f = fit(&x, &y, tau, RqMethod::Br);
        let n = y.len() as f64;
        let scale = y.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let negative = f.residuals.iter().filter(|&&r| r < -1e-9 * scale).count() as f64;
        let non_positive = f.residuals.iter().filter(|&&r| r <= 1e-9 * scale).count() as f64;
        prop_assert!(negative / n <= tau + 1e-12, "{} negative of {n} at tau {tau}", negative);
        prop_assert!(tau <= non_positive / n + 1e-12, "{} non-positive of {n} at tau {tau}", non_positive);
    }

    #[test]
    fn simplex_solution_beats_perturbations((rows, k, tau) in integer_strategy(), seed in any::<u64>()) {
        let (x, y) = design(&rows, k);
        prop_assume!(full_rank(&x));
        let f = fit(&x, &y, tau, RqMethod::Br);
        let best = objective(&x, &y, &f.coef, tau);
        prop_assert!((best - f.objective).abs() <= 1e-9 * best.max(1.0));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..50 {
            let size = 10f64.powi(rng.random_range(-6..=1));
            let other: Vec<f64> = f.coef.iter().map(|b| b + size * (rng.random::<f64>() - 0.5)).collect();
            prop_assert!(objective(&x, &y, &other, tau) >= best - 1e-9 * best.max(1.0));
        }
    }

    #[test]
    fn row_order_does_not_matter((rows, k, tau) in data_strategy(), seed in any::<u64>()) {
        let (x, y) = design(&rows, k);
        prop_assume!(full_rank(&x));
        let mut perm: Vec<usize> = (0..y.len()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for i in (1..perm.len()).rev() {
            perm.swap(i, rng.random_range(0..=i));
        }
        let xp = Mat::from_fn(y.len(), k, |i, j| x[(perm[i], j)]);
        let yp: Vec<f64> = perm.iter().map(|&i| y[i]).collect();
        let a = fit(&x, &y, tau, RqMethod::Br);
        let b = fit(&xp, &yp, tau, RqMethod::Br);
        prop_assert!((a.objective - b.objective).abs() <= 1e-9 * a.objective.max(1.0));
        // With continuous data and tau drawn at random the solution is unique almost surely.
        if !a.nonunique && !b.nonunique {
            for j in 0..k {
                prop_assert!((a.coef[j] - b.coef[j]).abs() <= 1e-7 * a.coef[j].abs().max(1.0),
                    "coef {j}: {} vs {}", a.coef[j], b.coef[j]);
            }
        }
    }

    #[test]
    fn interior_point_agrees_with_simplex((rows, k, tau) in data_strategy()) {
        let (x, y) = design(&rows, k);
        prop_assume!(full_rank(&x));
        let br = fit(&x, &y, tau, RqMethod::Br);
        let ip = fit(&x, &y, tau, RqMethod::Fn);
        prop_assert!((br.objective - ip.objective).abs() <= 1e-9 * br.objective.max(1.0));
        if !br.nonunique {
            for j in 0..k {
                prop_assert!((br.coef[j] - ip.coef[j]).abs() <= 1e-7 * br.coef[j].abs().max(1.0),
                    "coef {j}: {} vs {}", br.coef[j], ip.coef[j]);
            }
        }
    }

    #[test]
    fn degenerate_data_same_optimum_all_solvers((rows, k, tau) in integer_strategy()) {
        let (x, y) = design(&rows, k);
        prop_assume!(full_rank(&x));
        let br = fit(&x, &y, tau, RqMethod::Br);
        for method in [RqMethod::Fn, RqMethod::Pfn] {
            let other = fit(&x, &y, tau, method);
            prop_assert!((br.objective - other.objective).abs() <= 1e-9 * br.objective.max(1.0),
                "{method:?}: {} vs {}", other.objective, br.objective);
        }
    }
}

fn simulated(n: usize, seed: u64) -> (Mat<f64>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = Mat::<f64>::zeros(n, 3);
    let mut y = vec![0.0; n];
    for i in 0..n {
        let x1: f64 = rng.random::<f64>() * 4.0;
        let x2: f64 = if rng.random::<f64>() < 0.4 { 1.0 } else { 0.0 };
        // Sum of uniforms: a smooth, continuous error with scale rising in x1.
        let u: f64 = (0..4).map(|_| rng.random::<f64>()).sum::<f64>() - 2.0;
        x[(i, 0)] = 1.0;
        x[(i, 1)] = x1;
        x[(i, 2)] = x2;
        y[i] = 1.0 + 0.5 * x1 - x2 + (1.0 + 0.3 * x1) * u;
    }
    (x, y)
}

#[test]
fn solvers_agree_on_a_larger_sample() {
    let (x, y) = simulated(4000, 7);
    for tau in [0.17, 0.5, 0.83] {
        let br = fit(&x, &y, tau, RqMethod::Br);
        for method in [RqMethod::Fn, RqMethod::Pfn] {
            let other = fit(&x, &y, tau, method);
            for j in 0..3 {
                assert!(
                    (br.coef[j] - other.coef[j]).abs() <= 1e-9 * br.coef[j].abs().max(1.0),
                    "tau {tau} {method:?} coef {j}: {} vs {}",
                    other.coef[j],
                    br.coef[j]
                );
            }
        }
    }
}

#[test]
fn preprocessing_matches_plain_interior_point_on_a_large_sample() {
    let (x, y) = simulated(150_000, 11);
    let plain = fit(&x, &y, 0.3, RqMethod::Fn);
    let pre = fit(&x, &y, 0.3, RqMethod::Pfn);
    let auto = fit(&x, &y, 0.3, RqMethod::Auto);
    assert_eq!(auto.method, RqMethod::Pfn);
    assert_eq!(pre.coef, auto.coef);
    for j in 0..3 {
        assert!((plain.coef[j] - pre.coef[j]).abs() <= 1e-9 * plain.coef[j].abs().max(1.0));
    }
}

#[test]
fn bootstrap_is_deterministic_whatever_the_thread_count() {
    let (x, y) = simulated(300, 3);
    let clusters: Vec<u32> = (0..300).map(|i| (i / 6) as u32).collect();
    for cl in [None, Some(clusters)] {
        let opts = RqOptions {
            tau: 0.4,
            method: RqMethod::Br,
            se: RqSe::Bootstrap {
                reps: 60,
                seed: 42,
                clusters: cl.clone(),
            },
            ..RqOptions::default()
        };
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| rq(x.as_ref(), &y, &opts).unwrap())
        };
        let one = run(1);
        let two = run(2);
        let four = run(4);
        assert_eq!(one.covariance, two.covariance);
        assert_eq!(one.covariance, four.covariance);
        // A different seed gives different draws.
        let other = rq(
            x.as_ref(),
            &y,
            &RqOptions {
                se: RqSe::Bootstrap {
                    reps: 60,
                    seed: 43,
                    clusters: cl,
                },
                ..opts.clone()
            },
        )
        .unwrap();
        assert_ne!(one.covariance, other.covariance);
        // Bootstrap and sandwich standard errors estimate the same thing: same order of magnitude.
        let nid = rq(
            x.as_ref(),
            &y,
            &RqOptions {
                se: RqSe::Nid,
                ..opts.clone()
            },
        )
        .unwrap();
        for j in 0..3 {
            let ratio = one.std_error[j] / nid.std_error[j];
            assert!((0.5..2.0).contains(&ratio), "coef {j}: boot/nid = {ratio}");
        }
    }
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let x = Mat::from_fn(5, 2, |i, j| if j == 0 { 1.0 } else { i as f64 });
    let y = [1.0, 3.0, 2.0, 5.0, 4.0];
    for tau in [0.0, 1.0, -0.2, 1.5, f64::NAN] {
        let opts = RqOptions {
            tau,
            ..RqOptions::default()
        };
        assert!(matches!(
            rq(x.as_ref(), &y, &opts),
            Err(EstimError::TauOutOfRange { .. })
        ));
    }
    let wide = Mat::from_fn(2, 3, |i, j| (i + j) as f64);
    assert!(matches!(
        rq(wide.as_ref(), &[1.0, 2.0], &RqOptions::default()),
        Err(EstimError::TooFewObservations { n: 2, k: 3 })
    ));
    let collinear = Mat::from_fn(5, 3, |i, j| if j == 0 { 1.0 } else { i as f64 });
    assert!(matches!(
        rq(collinear.as_ref(), &y, &RqOptions::default()),
        Err(EstimError::Numerical { .. })
    ));
    assert!(rq(x.as_ref(), &y[..4], &RqOptions::default()).is_err());
    let mut with_nan = y;
    with_nan[2] = f64::NAN;
    assert!(rq(x.as_ref(), &with_nan, &RqOptions::default()).is_err());
    // Too few observations for the iid sparsity estimate: an error, as quantreg fails too.
    let iid = RqOptions {
        se: RqSe::Iid,
        ..RqOptions::default()
    };
    assert!(rq(x.as_ref(), &y, &iid).is_err());
    let boot = RqOptions {
        se: RqSe::Bootstrap {
            reps: 10,
            seed: 1,
            clusters: Some(vec![0, 0, 1]),
        },
        ..RqOptions::default()
    };
    assert!(matches!(
        rq(x.as_ref(), &y, &boot),
        Err(EstimError::InvalidOption { .. })
    ));
}
