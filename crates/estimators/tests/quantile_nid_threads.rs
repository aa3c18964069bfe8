//! The `nid` standard errors run their two refits side by side on the rayon pool, and `Auto`
//! hands samples above `AUTO_FN_MAX_N` to the preprocessed interior point: neither may make the
//! answer depend on the number of threads, and the preprocessed fit must stay the exact optimum.

use faer::Mat;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use repro_estimators::quantile::{rq, RqFit, RqMethod, RqOptions, RqSe, AUTO_FN_MAX_N};

fn simulated(n: usize, seed: u64) -> (Mat<f64>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = Mat::<f64>::zeros(n, 4);
    let mut y = vec![0.0; n];
    for i in 0..n {
        let x1: f64 = rng.random::<f64>() * 4.0;
        let x2: f64 = rng.random::<f64>() - 0.5;
        let x3: f64 = if rng.random::<f64>() < 0.3 { 1.0 } else { 0.0 };
        let u: f64 = (0..4).map(|_| rng.random::<f64>()).sum::<f64>() - 2.0;
        x[(i, 0)] = 1.0;
        x[(i, 1)] = x1;
        x[(i, 2)] = x2;
        x[(i, 3)] = x3;
        y[i] = 1.0 + 0.5 * x1 - 2.0 * x2 + x3 + (1.0 + 0.3 * x1) * u;
    }
    (x, y)
}

fn fit_with_threads(x: &Mat<f64>, y: &[f64], opts: &RqOptions, threads: usize) -> RqFit {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(|| rq(x.as_ref(), y, opts).unwrap())
}

#[test]
fn nid_on_a_preprocessed_fit_is_the_same_whatever_the_thread_count() {
    let n = 3 * AUTO_FN_MAX_N;
    let (x, y) = simulated(n, 5);
    let opts = RqOptions {
        tau: 0.35,
        method: RqMethod::Auto,
        se: RqSe::Nid,
        ..RqOptions::default()
    };
    let one = fit_with_threads(&x, &y, &opts, 1);
    let two = fit_with_threads(&x, &y, &opts, 2);
    assert_eq!(one.method, RqMethod::Pfn);
    assert_eq!(one.coef, two.coef);
    assert_eq!(one.objective, two.objective);
    assert_eq!(one.covariance, two.covariance);
    assert_eq!(one.std_error, two.std_error);
    assert_eq!(one.residuals, two.residuals);
    assert_eq!(one, two);
    assert!(one.std_error.iter().all(|s| s.is_finite() && *s > 0.0));
    // The plain interior point reaches the same optimum: the preprocessing lost nothing.
    let plain = rq(
        x.as_ref(),
        &y,
        &RqOptions {
            method: RqMethod::Fn,
            se: RqSe::None,
            ..opts.clone()
        },
    )
    .unwrap();
    assert!((plain.objective - one.objective).abs() <= 1e-12 * plain.objective);
    for (a, b) in plain.coef.iter().zip(&one.coef) {
        assert!((a - b).abs() <= 1e-9 * a.abs().max(1.0), "{a} vs {b}");
    }
}
