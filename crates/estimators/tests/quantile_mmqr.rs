//! MMQR (Machado-Santos Silva) and Canay on simulated panels with known quantile coefficients.

use faer::Mat;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use repro_estimators::error::EstimError;
use repro_estimators::mmqr::{canay, mmqr, CanayOptions, CanaySe, MmqrOptions, MmqrVcov};
use repro_estimators::quantile::{rq, RqMethod, RqOptions, RqSe};
use statrs::distribution::{ContinuousCDF, Normal};

struct Panel {
    y: Vec<f64>,
    x: Mat<f64>,
    groups: Vec<u32>,
}

/// Standard normal draw by Box-Muller (two uniforms), so the test controls its own stream.
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `y = a_i + b x + (1 + g x) u` with `u ~ N(0, 1)`, `x > 0` correlated with `a_i`: the
/// `tau`-th conditional quantile has slope `b + g * Phi^{-1}(tau)`.
fn location_scale_panel(groups: usize, per_group: usize, b: f64, g: f64, seed: u64) -> Panel {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = groups * per_group;
    let (mut y, mut xs, mut codes) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::new());
    for i in 0..groups {
        let a = 2.0 * normal(&mut rng);
        for _ in 0..per_group {
            let x = 1.0 + 0.3 * a.abs() + rng.random::<f64>() * 2.0;
            let u = normal(&mut rng);
            y.push(a + b * x + (1.0 + g * x) * u);
            xs.push(x);
            codes.push(1000 + 3 * i as u32);
        }
    }
    Panel {
        y,
        x: Mat::from_fn(n, 1, |i, _| xs[i]),
        groups: codes,
    }
}

fn z(tau: f64) -> f64 {
    Normal::standard().inverse_cdf(tau)
}

#[test]
fn mmqr_recovers_location_scale_quantile_slopes() {
    let (b, g) = (1.0, 0.5);
    let taus = [0.1, 0.25, 0.5, 0.75, 0.9];
    let panel = location_scale_panel(500, 20, b, g, 1);
    let fits = mmqr(
        &panel.y,
        panel.x.as_ref(),
        &panel.groups,
        &taus,
        &MmqrOptions::default(),
    )
    .unwrap();
    for f in &fits {
        let truth = b + g * z(f.tau);
        let t = (f.coef[0] - truth) / f.std_error[0];
        assert!(
            t.abs() < 3.0,
            "tau {}: {} vs {truth}, se {}",
            f.tau,
            f.coef[0],
            f.std_error[0]
        );
        assert!((f.location[0] - b).abs() < 3.0 * f.location_se[0]);
        assert_eq!(f.nobs, 10_000);
        assert_eq!(f.n_groups, 500);
    }
    // Non-crossing by construction: slopes increase with tau when g > 0.
    assert!(fits.windows(2).all(|w| w[0].coef[0] < w[1].coef[0]));
}

#[test]
fn mmqr_confidence_intervals_cover_at_the_nominal_rate() {
    // Monte Carlo check of the influence-function variance: 95% intervals must cover the true
    // slope in about 95% of samples.
    let (b, g) = (1.0, 0.5);
    let taus = [0.25, 0.5, 0.8];
    let reps = 300;
    let mut covered = [0usize; 3];
    for rep in 0..reps {
        let panel = location_scale_panel(100, 20, b, g, 1000 + rep);
        let fits = mmqr(
            &panel.y,
            panel.x.as_ref(),
            &panel.groups,
            &taus,
            &MmqrOptions::default(),
        )
        .unwrap();
        for (c, f) in covered.iter_mut().zip(&fits) {
            let truth = b + g * z(f.tau);
            if (f.coef[0] - truth).abs() <= 1.959964 * f.std_error[0] {
                *c += 1;
            }
        }
    }
    for (tau, c) in taus.iter().zip(covered) {
        let rate = c as f64 / reps as f64;
        eprintln!("mmqr coverage at tau {tau}: {rate:.3}");
        // Binomial sd at 0.95 with 300 draws is 0.0126: allow about three of them.
        assert!((0.91..=0.99).contains(&rate), "tau {tau}: coverage {rate}");
    }
}

#[test]
fn mmqr_is_invariant_to_row_order_and_group_labels() {
    let panel = location_scale_panel(40, 6, 1.0, 0.4, 9);
    let n = panel.y.len();
    let mut perm: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for i in (1..n).rev() {
        perm.swap(i, rng.random_range(0..=i));
    }
    let y: Vec<f64> = perm.iter().map(|&i| panel.y[i]).collect();
    let x = Mat::from_fn(n, 1, |i, _| panel.x[(perm[i], 0)]);
    // Relabel the groups too: only the partition matters.
    let groups: Vec<u32> = perm.iter().map(|&i| 7 * panel.groups[i] + 11).collect();
    let taus = [0.3, 0.6];
    let a = mmqr(
        &panel.y,
        panel.x.as_ref(),
        &panel.groups,
        &taus,
        &MmqrOptions::default(),
    )
    .unwrap();
    let b = mmqr(&y, x.as_ref(), &groups, &taus, &MmqrOptions::default()).unwrap();
    for (fa, fb) in a.iter().zip(&b) {
        let close = |u: f64, v: f64| (u - v).abs() <= 1e-9 * u.abs().max(1.0);
        assert!(close(fa.coef[0], fb.coef[0]));
        assert!(close(fa.std_error[0], fb.std_error[0]));
        assert!(close(fa.quantile, fb.quantile));
        assert!(close(fa.scale[0], fb.scale[0]));
    }
}

#[test]
fn mmqr_clustered_errors_and_singletons() {
    let mut panel = location_scale_panel(60, 5, 1.0, 0.3, 21);
    // Two extra singleton groups: dropped, and reported.
    panel.y.extend([1.0, 2.0]);
    let n = panel.y.len();
    let old = panel.x.clone();
    panel.x = Mat::from_fn(n, 1, |i, _| if i < n - 2 { old[(i, 0)] } else { 1.5 });
    panel.groups.extend([1, 2]);
    let robust = mmqr(
        &panel.y,
        panel.x.as_ref(),
        &panel.groups,
        &[0.5],
        &MmqrOptions::default(),
    )
    .unwrap();
    assert_eq!(robust[0].n_singletons_dropped, 2);
    assert_eq!(robust[0].nobs, n - 2);
    assert_eq!(robust[0].used_rows.len(), n - 2);
    let clustered = mmqr(
        &panel.y,
        panel.x.as_ref(),
        &panel.groups,
        &[0.5],
        &MmqrOptions {
            vcov: MmqrVcov::Cluster(panel.groups.clone()),
            ..MmqrOptions::default()
        },
    )
    .unwrap();
    assert_eq!(robust[0].coef, clustered[0].coef);
    assert!(clustered[0].std_error[0] > 0.0);
    assert_ne!(robust[0].std_error, clustered[0].std_error);
}

#[test]
fn mmqr_and_canay_reject_bad_input() {
    let panel = location_scale_panel(10, 4, 1.0, 0.3, 2);
    let opts = MmqrOptions::default();
    assert!(matches!(
        mmqr(&panel.y, panel.x.as_ref(), &panel.groups, &[1.0], &opts),
        Err(EstimError::TauOutOfRange { .. })
    ));
    assert!(mmqr(
        &panel.y[1..],
        panel.x.as_ref(),
        &panel.groups,
        &[0.5],
        &opts
    )
    .is_err());
    // A regressor constant within every group is absorbed by the fixed effects.
    let fixed = Mat::from_fn(panel.y.len(), 1, |i, _| f64::from(panel.groups[i]));
    assert!(matches!(
        mmqr(&panel.y, fixed.as_ref(), &panel.groups, &[0.5], &opts),
        Err(EstimError::NoRegressors { .. })
    ));
    assert!(matches!(
        canay(
            &panel.y,
            fixed.as_ref(),
            &panel.groups,
            &CanayOptions::default()
        ),
        Err(EstimError::NoRegressors { .. })
    ));
    let bad_tau = CanayOptions {
        tau: 0.0,
        ..CanayOptions::default()
    };
    assert!(matches!(
        canay(&panel.y, panel.x.as_ref(), &panel.groups, &bad_tau),
        Err(EstimError::TauOutOfRange { .. })
    ));
}

#[test]
fn canay_recovers_a_location_shift_model_and_equals_its_second_step() {
    // Pure location shift (g = 0): every quantile slope equals b.
    let panel = location_scale_panel(300, 15, 2.0, 0.0, 4);
    let opts = CanayOptions {
        tau: 0.7,
        method: RqMethod::Br,
        ..CanayOptions::default()
    };
    let fit = canay(&panel.y, panel.x.as_ref(), &panel.groups, &opts).unwrap();
    assert!((fit.rq.coef[1] - 2.0).abs() < 3.0 * fit.rq.std_error[1]);
    assert!((fit.within_coef[0] - 2.0).abs() < 0.05);
    // The second step is rq of y - a_i on [1, x].
    let n = panel.y.len();
    let design = Mat::from_fn(n, 2, |i, j| if j == 0 { 1.0 } else { panel.x[(i, 0)] });
    let net: Vec<f64> = panel
        .y
        .iter()
        .zip(&fit.row_effects)
        .map(|(y, a)| y - a)
        .collect();
    let direct = rq(
        design.as_ref(),
        &net,
        &RqOptions {
            tau: 0.7,
            method: RqMethod::Br,
            se: RqSe::Nid,
            ..RqOptions::default()
        },
    )
    .unwrap();
    assert_eq!(direct.coef, fit.rq.coef);
    assert_eq!(direct.std_error, fit.rq.std_error);
}

#[test]
fn canay_group_bootstrap_is_deterministic() {
    let panel = location_scale_panel(40, 8, 1.0, 0.2, 8);
    let opts = CanayOptions {
        tau: 0.4,
        method: RqMethod::Br,
        se: CanaySe::GroupBootstrap { reps: 40, seed: 3 },
        ..CanayOptions::default()
    };
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| canay(&panel.y, panel.x.as_ref(), &panel.groups, &opts).unwrap())
    };
    let (one, three) = (run(1), run(3));
    assert_eq!(one.rq.covariance, three.rq.covariance);
    assert!(one.rq.std_error.iter().all(|s| s.is_finite() && *s > 0.0));
}
