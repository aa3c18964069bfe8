//! Timing of the headline benchmark shape, run on demand:
//! `cargo test -p repro-estimators --release --test perf -- --ignored --nocapture`.
//!
//! The data mimic `bench/gen_data.py`'s panel (balanced, sorted by unit then period, unit and
//! period effects correlated with the regressors): `y ~ x1 + x2 | unit + period`, clustered by
//! unit. The sizes come from `REPRO_PERF_UNITS` (default 500,000) x 20 periods = 10M rows; set
//! `REPRO_PERF_SHUFFLE` to put the rows in random order. The test also checks that the true
//! coefficients are recovered, so it cannot pass on garbage.

use std::time::Instant;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use repro_estimators::data::{Column, Frame};
use repro_estimators::fit::{fit, FitOptions, ModelSpec, VcovSpec};

/// Standard normal draw by Box-Muller (keeps the test free of extra distribution crates).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[test]
#[ignore = "benchmark: run explicitly with --ignored"]
fn two_way_fixed_effects_ten_million_rows() {
    let n_units: usize = std::env::var("REPRO_PERF_UNITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    let n_periods = 20;
    let n = n_units * n_periods;
    let mut rng = ChaCha8Rng::seed_from_u64(20240110);
    let alpha: Vec<f64> = (0..n_units).map(|_| normal(&mut rng)).collect();
    let gamma: Vec<f64> = (0..n_periods).map(|_| 0.5 * normal(&mut rng)).collect();
    let t0 = Instant::now();
    let mut unit = Vec::with_capacity(n);
    let mut period = Vec::with_capacity(n);
    let mut y = Vec::with_capacity(n);
    let mut x1 = Vec::with_capacity(n);
    let mut x2 = Vec::with_capacity(n);
    for (i, &a) in alpha.iter().enumerate() {
        for (t, &g) in gamma.iter().enumerate() {
            let v1 = 0.5 * a + normal(&mut rng);
            let v2 = 0.3 * g + normal(&mut rng);
            unit.push(Some((i + 1) as f64));
            period.push(Some((t + 1) as f64));
            x1.push(Some(v1));
            x2.push(Some(v2));
            y.push(Some(v1 - 0.5 * v2 + a + g + normal(&mut rng)));
        }
    }
    if std::env::var("REPRO_PERF_SHUFFLE").is_ok() {
        // Random row order: no locality for the fixed-effect passes.
        let mut perm: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = (rng.random::<f64>() * (i + 1) as f64) as usize % (i + 1);
            perm.swap(i, j);
        }
        let apply = |v: &mut Vec<Option<f64>>| *v = perm.iter().map(|&i| v[i]).collect();
        for v in [&mut unit, &mut period, &mut y, &mut x1, &mut x2] {
            apply(v);
        }
        println!("rows shuffled");
    }
    let mut frame = Frame::new();
    frame.push("unit", Column::Numeric(unit)).unwrap();
    frame.push("period", Column::Numeric(period)).unwrap();
    frame.push("y", Column::Numeric(y)).unwrap();
    frame.push("x1", Column::Numeric(x1)).unwrap();
    frame.push("x2", Column::Numeric(x2)).unwrap();
    println!("generated {n} rows in {:.2?}", t0.elapsed());

    let spec = ModelSpec {
        formula: "y ~ x1 + x2 | unit + period".to_string(),
        vcov: VcovSpec::Cluster(vec!["unit".to_string()]),
        quantile: None,
        options: FitOptions::default(),
    };
    for run in 0..2 {
        let t = Instant::now();
        let res = fit(&frame, &spec).unwrap();
        println!("run {run}: fit in {:.2?}", t.elapsed());
        assert_eq!(res.nobs, n);
        let b1 = res.coefficient("x1").unwrap();
        let b2 = res.coefficient("x2").unwrap();
        println!(
            "x1 {:.6} ({:.6}), x2 {:.6} ({:.6}), messages {:?}",
            b1.estimate, b1.std_error, b2.estimate, b2.std_error, res.messages
        );
        assert!((b1.estimate - 1.0).abs() < 6.0 * b1.std_error);
        assert!((b2.estimate + 0.5).abs() < 6.0 * b2.std_error);
    }
}
