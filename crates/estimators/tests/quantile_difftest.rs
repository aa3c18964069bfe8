//! Coefficient-difference tests (`difftest`): the stacked comparison against an independent R
//! computation with explicit dummies, and the permutation test against an exact enumeration.
//!
//! Reference numbers (R 4.2.2, base only):
//! ```r
//! i <- 0:119; firm <- i %% 15; cl <- i %% 8; A <- (i %% 3 == 0) | (i %% 7 == 1)
//! x1 <- sin(1.3 * i) + 0.1 * firm; x2 <- cos(0.7 * i)^2
//! y <- 1 + 0.5 * x1 - 0.3 * x2 + 0.2 * firm + A * 0.4 * x1 + sin(2.1 * i + 0.5)
//! infl <- function(rows, fe) {
//!   X <- if (fe) model.matrix(~ x1 + x2 + factor(firm[rows]), data.frame(x1 = x1[rows], x2 = x2[rows]))
//!        else model.matrix(~ x1 + x2, data.frame(x1 = x1[rows], x2 = x2[rows]))
//!   fit <- lm.fit(X, y[rows]); bread <- solve(crossprod(X))
//!   list(b = fit$coefficients[2], psi = (X %*% bread[, 2]) * fit$residuals)
//! }
//! # per cluster code (cl, or i for none): sa, sb = sums of psi of A and of B rows;
//! # c = G / (G - 1); var(diff) = c * sum((sa - sb)^2); cov(A, B) = c * sum(sa * sb)
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};

use repro_estimators::difftest::{
    coefficient_permutation_test, permutation_test, stacked_difference, DiffData,
    PermutationOptions,
};
use repro_estimators::error::EstimError;

struct Columns {
    y: Vec<f64>,
    x1: Vec<f64>,
    x2: Vec<f64>,
    firm: Vec<u32>,
    cluster: Vec<u32>,
    in_a: Vec<bool>,
}

fn columns() -> Columns {
    let mut c = Columns {
        y: Vec::new(),
        x1: Vec::new(),
        x2: Vec::new(),
        firm: Vec::new(),
        cluster: Vec::new(),
        in_a: Vec::new(),
    };
    for i in 0..120u32 {
        let fi = f64::from(i);
        let firm = i % 15;
        let a = i % 3 == 0 || i % 7 == 1;
        let x1 = (1.3 * fi).sin() + 0.1 * f64::from(firm);
        let x2 = (0.7 * fi).cos().powi(2);
        let y = 1.0 + 0.5 * x1 - 0.3 * x2
            + 0.2 * f64::from(firm)
            + if a { 0.4 * x1 } else { 0.0 }
            + (2.1 * fi + 0.5).sin();
        c.y.push(y);
        c.x1.push(x1);
        c.x2.push(x2);
        // Labels need not be dense.
        c.firm.push(100 + 2 * firm);
        c.cluster.push(i % 8);
        c.in_a.push(a);
    }
    c
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1e-300)
}

#[test]
fn stacked_difference_matches_explicit_dummies_in_r() {
    let c = columns();
    let x: [&[f64]; 2] = [&c.x1, &c.x2];
    let fe: [&[u32]; 1] = [&c.firm];
    // (fixed effects, clustered): bA, bB, seA, seB, covAB, diff, se from R.
    let expected = [
        (
            true,
            true,
            [
                0.9335800680130553,
                0.4863486900002298,
                0.016211905504599503,
                0.02085009937399158,
                0.00010934521148098271,
                0.4472313780128255,
                0.02188291801916331,
            ],
        ),
        (
            true,
            false,
            [
                0.9335800680130553,
                0.4863486900002298,
                0.03220864272313153,
                0.027574428968987274,
                0.0,
                0.4472313780128255,
                0.04239983253542469,
            ],
        ),
        (
            false,
            true,
            [
                1.3304927238268471,
                1.0550609692117456,
                0.1492732814170325,
                0.18882966698340284,
                -0.011692286721821663,
                0.2754317546151015,
                0.28517315638347646,
            ],
        ),
        (
            false,
            false,
            [
                1.3304927238268471,
                1.0550609692117456,
                0.13078263010457356,
                0.0953153348354511,
                0.0,
                0.2754317546151015,
                0.16183049586485196,
            ],
        ),
    ];
    for (with_fe, clustered, e) in expected {
        let data = DiffData {
            y: &c.y,
            x: &x,
            fixed_effects: if with_fe { &fe } else { &[] },
            clusters: clustered.then_some(c.cluster.as_slice()),
        };
        let r = stacked_difference(&data, &c.in_a, 0).unwrap();
        let label = format!("fe={with_fe} clustered={clustered}");
        assert!(close(r.coef_a, e[0], 1e-10), "{label} coef_a {}", r.coef_a);
        assert!(close(r.coef_b, e[1], 1e-10), "{label} coef_b {}", r.coef_b);
        assert!(
            close(r.std_error_a, e[2], 1e-8),
            "{label} se_a {}",
            r.std_error_a
        );
        assert!(
            close(r.std_error_b, e[3], 1e-8),
            "{label} se_b {}",
            r.std_error_b
        );
        assert!(
            (r.covariance_ab - e[4]).abs() <= 1e-8 * e[2] * e[3],
            "{label} cov {}",
            r.covariance_ab
        );
        assert!(
            close(r.difference, e[5], 1e-10),
            "{label} diff {}",
            r.difference
        );
        assert!(close(r.std_error, e[6], 1e-8), "{label} se {}", r.std_error);
        assert!(close(r.statistic, e[5] / e[6], 1e-8));
        assert!(r.p_value > 0.0 && r.p_value < 1.0);
        assert_eq!(r.n_a + r.n_b, 120);
        assert_eq!(r.n_clusters, clustered.then_some(8));
    }
}

/// Exact two-sided permutation p-value of a difference in means by enumerating all assignments.
fn exact_p(values: &[f64], in_a: &[bool]) -> f64 {
    let n = values.len();
    let n_a = in_a.iter().filter(|&&a| a).count();
    let diff = |mask: u32| {
        let (mut sa, mut sb) = (0.0, 0.0);
        for (i, v) in values.iter().enumerate() {
            if mask >> i & 1 == 1 {
                sa += v;
            } else {
                sb += v;
            }
        }
        sa / n_a as f64 - sb / (n - n_a) as f64
    };
    let observed_mask = (0..n).filter(|&i| in_a[i]).map(|i| 1u32 << i).sum();
    let observed: f64 = diff(observed_mask);
    let (mut hits, mut total) = (0usize, 0usize);
    for mask in 0u32..(1 << n) {
        if mask.count_ones() as usize == n_a {
            total += 1;
            if diff(mask).abs() >= observed.abs() - 1e-12 * observed.abs() {
                hits += 1;
            }
        }
    }
    hits as f64 / total as f64
}

#[test]
fn permutation_p_value_converges_to_the_exact_one() {
    let values = [2.1, 3.4, 1.9, 5.2, 4.4, 0.7, 3.9, 2.8, 6.1, 1.2, 4.0, 3.3];
    let in_a = [
        true, false, false, true, true, false, true, false, true, false, false, false,
    ];
    let exact = exact_p(&values, &in_a);
    let mean_diff = |assign: &[bool]| -> Result<f64, EstimError> {
        let (mut sa, mut na, mut sb, mut nb) = (0.0, 0.0, 0.0, 0.0);
        for (v, &a) in values.iter().zip(assign) {
            if a {
                sa += v;
                na += 1.0;
            } else {
                sb += v;
                nb += 1.0;
            }
        }
        Ok(sa / na - sb / nb)
    };
    let opts = PermutationOptions {
        reps: 40_000,
        seed: 17,
    };
    let result = permutation_test(&in_a, None, &opts, mean_diff).unwrap();
    // Monte Carlo sd of the estimate is at most 0.0025 here.
    assert!(
        (result.p_value - exact).abs() < 0.01,
        "{} vs exact {exact}",
        result.p_value
    );
    assert!(result.p_value_one_sided <= result.p_value);
    assert_eq!(result.valid_reps, 40_000);
}

#[test]
fn cluster_permutation_moves_whole_clusters_and_is_deterministic() {
    let c = columns();
    // Group by cluster: clusters 0..3 in A.
    let in_a: Vec<bool> = c.cluster.iter().map(|&g| g < 3).collect();
    let straddling = AtomicUsize::new(0);
    let cluster = c.cluster.clone();
    let statistic = |assign: &[bool]| -> Result<f64, EstimError> {
        for g in 0..8u32 {
            let sides: Vec<bool> = (0..assign.len())
                .filter(|&i| cluster[i] == g)
                .map(|i| assign[i])
                .collect();
            if sides.iter().any(|&s| s != sides[0]) {
                straddling.fetch_add(1, Ordering::Relaxed);
            }
        }
        let count = assign.iter().filter(|&&a| a).count();
        Ok(count as f64)
    };
    let opts = PermutationOptions { reps: 200, seed: 5 };
    let r = permutation_test(&in_a, Some(&c.cluster), &opts, statistic).unwrap();
    assert_eq!(straddling.load(Ordering::Relaxed), 0);
    assert!(r.by_cluster);

    let x: [&[f64]; 2] = [&c.x1, &c.x2];
    let fe: [&[u32]; 1] = [&c.firm];
    let data = DiffData {
        y: &c.y,
        x: &x,
        fixed_effects: &fe,
        clusters: Some(&c.cluster),
    };
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| coefficient_permutation_test(&data, &in_a, 0, &opts).unwrap())
    };
    let (one, two) = (run(1), run(2));
    assert_eq!(one, two);
    let stacked = stacked_difference(&data, &in_a, 0).unwrap();
    assert!(close(one.observed, stacked.difference, 1e-12));
    assert!((0.0..=1.0).contains(&one.p_value));
}

#[test]
fn row_permutation_detects_a_real_difference() {
    // Group A has slope 0.9 on x1, group B 0.5: the permutation p-value must be small.
    let c = columns();
    let x: [&[f64]; 2] = [&c.x1, &c.x2];
    let fe: [&[u32]; 1] = [&c.firm];
    let data = DiffData {
        y: &c.y,
        x: &x,
        fixed_effects: &fe,
        clusters: None,
    };
    let opts = PermutationOptions { reps: 300, seed: 9 };
    let r = coefficient_permutation_test(&data, &c.in_a, 0, &opts).unwrap();
    assert!(r.p_value < 0.01, "p = {}", r.p_value);
}

#[test]
fn difftest_rejects_bad_input() {
    let c = columns();
    let x: [&[f64]; 2] = [&c.x1, &c.x2];
    let data = DiffData {
        y: &c.y,
        x: &x,
        fixed_effects: &[],
        clusters: Some(&c.cluster),
    };
    assert!(stacked_difference(&data, &c.in_a, 2).is_err());
    assert!(stacked_difference(&data, &c.in_a[1..], 0).is_err());
    // The clusters straddle the groups: whole-cluster permutation is impossible.
    let opts = PermutationOptions { reps: 10, seed: 1 };
    assert!(matches!(
        coefficient_permutation_test(&data, &c.in_a, 0, &opts),
        Err(EstimError::InvalidOption { .. })
    ));
    // A regressor absorbed by the fixed effects in a subsample cannot be tested.
    let firm_level: Vec<f64> = c.firm.iter().map(|&f| f64::from(f)).collect();
    let x_bad: [&[f64]; 2] = [&firm_level, &c.x2];
    let fe: [&[u32]; 1] = [&c.firm];
    let bad = DiffData {
        y: &c.y,
        x: &x_bad,
        fixed_effects: &fe,
        clusters: None,
    };
    assert!(stacked_difference(&bad, &c.in_a, 0).is_err());
}
