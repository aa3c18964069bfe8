//! Tests of the difference of one coefficient between two subsample regressions (the
//! "heterogeneity" tables of applied work: is the effect in group A different from group B?).
//!
//! Owns: (a) the stacked, seemingly-unrelated comparison — both subsample fixed-effects OLS
//! regressions with one joint cluster-robust (or heteroskedasticity-robust) covariance, as Stata's
//! `suest` followed by `test [A]x = [B]x`; (b) a Fisher permutation test of the difference, as
//! Stata's `bdiff`, permuting group membership over rows or over whole clusters with a seeded
//! generator; and the generic permutation driver behind it, which takes any statistic as a closure.
//! Deliberately does not own: the fixed-effect absorption and least squares (those are
//! [`crate::demean`] and [`crate::ols`]), formulas or names: the caller passes plain columns.
//!
//! Conventions.
//! * Each subsample regression absorbs its own fixed effects (as two separate regressions would);
//!   without fixed effects an intercept is added.
//! * Stacked covariance: with `psi_i` the influence of row `i` on its own subsample's coefficient,
//!   `(X~'X~)^{-1} x~_i e_i`, `Var(b_A - b_B) = c * sum_g (sum_{i in g, A} psi_i - sum_{i in g, B}
//!   psi_i)^2`; a cluster present in both groups therefore contributes the covariance of the two
//!   estimates. `c = G / (G - 1)` with clusters (G over both groups), `N / (N - 1)` without (every
//!   row its own cluster), as `suest` does. The p-value is two-sided from the normal distribution
//!   (`suest` + `test` report the chi-squared(1) of the same statistic).
//! * Permutation: the observed difference `d` is compared with the differences `d*` after
//!   reassigning group membership at random, keeping the number of rows (or clusters) in A. The
//!   reported p-value is the share of permutations with `|d*| >= |d|` (two-sided); the one-sided
//!   share (`d* >= d` when `d >= 0`, `d* <= d` otherwise) is reported too, as `bdiff`'s p-value
//!   is one-sided. The observed assignment is not counted among the permutations. Permutations
//!   whose regressions fail (a singular subsample) are skipped and counted.

use faer::Mat;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

use crate::demean::{demean_columns, DemeanOptions, FixedEffects};
use crate::error::EstimError;
use crate::ols::{independent_columns, least_squares, CollinearityOptions, ColumnStatus};

/// The pooled data of both groups.
#[derive(Debug, Clone, Copy)]
pub struct DiffData<'a> {
    pub y: &'a [f64],
    /// Regressor columns (no intercept: it is added when there are no fixed effects).
    pub x: &'a [&'a [f64]],
    /// Fixed-effect codes, one vector per dimension (any `u32` labels); absorbed within each
    /// subsample.
    pub fixed_effects: &'a [&'a [u32]],
    /// Cluster codes, or `None` for heteroskedasticity-robust inference.
    pub clusters: Option<&'a [u32]>,
}

/// Result of the stacked comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackedDifference {
    pub coef_a: f64,
    pub std_error_a: f64,
    pub coef_b: f64,
    pub std_error_b: f64,
    /// Covariance of the two estimates (non-zero only when clusters span both groups).
    pub covariance_ab: f64,
    /// `coef_a - coef_b`.
    pub difference: f64,
    pub std_error: f64,
    /// `difference / std_error`.
    pub statistic: f64,
    /// Two-sided normal p-value.
    pub p_value: f64,
    pub n_a: usize,
    pub n_b: usize,
    /// Clusters over both groups, when clustered.
    pub n_clusters: Option<usize>,
    pub messages: Vec<String>,
}

/// Permutation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermutationOptions {
    pub reps: usize,
    pub seed: u64,
}

/// Result of a permutation test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PermutationTest {
    /// The statistic on the observed assignment.
    pub observed: f64,
    pub reps: usize,
    /// Permutations whose statistic could be computed.
    pub valid_reps: usize,
    /// Share of valid permutations with `|d*| >= |d|`.
    pub p_value: f64,
    /// Share with `d*` at least as far from zero as `d` on its side.
    pub p_value_one_sided: f64,
    /// Whether whole clusters were permuted.
    pub by_cluster: bool,
    pub messages: Vec<String>,
}

/// The coefficient `coef` (an index into `data.x`) of one subsample regression, with the
/// influence of each of its rows on it.
struct SubsampleFit {
    coef: f64,
    /// `(row index into the pooled data, influence)`.
    influence: Vec<(usize, f64)>,
    messages: Vec<String>,
}

/// Stacked (seemingly unrelated) comparison of coefficient `coef` between the rows with
/// `in_a[i] == true` and the others.
pub fn stacked_difference(
    data: &DiffData<'_>,
    in_a: &[bool],
    coef: usize,
) -> Result<StackedDifference, EstimError> {
    check_data(data, in_a, coef)?;
    let rows_a: Vec<usize> = (0..in_a.len()).filter(|&i| in_a[i]).collect();
    let rows_b: Vec<usize> = (0..in_a.len()).filter(|&i| !in_a[i]).collect();
    let fit_a = fit_subsample(data, &rows_a, coef, "A")?;
    let fit_b = fit_subsample(data, &rows_b, coef, "B")?;
    let n = rows_a.len() + rows_b.len();
    // Sum the influences by cluster (each row its own cluster without clustering).
    let (codes, n_groups) = match data.clusters {
        Some(c) => dense(c),
        None => ((0..n).collect(), n),
    };
    if n_groups < 2 {
        return Err(EstimError::InvalidOption {
            message: "the difference test needs at least 2 clusters".to_string(),
        });
    }
    let mut sum_a = vec![0.0; n_groups];
    let mut sum_b = vec![0.0; n_groups];
    for &(i, v) in &fit_a.influence {
        sum_a[codes[i]] += v;
    }
    for &(i, v) in &fit_b.influence {
        sum_b[codes[i]] += v;
    }
    let g = n_groups as f64;
    let c = g / (g - 1.0);
    let var_a = c * sum_a.iter().map(|s| s * s).sum::<f64>();
    let var_b = c * sum_b.iter().map(|s| s * s).sum::<f64>();
    let cov_ab = c * sum_a.iter().zip(&sum_b).map(|(a, b)| a * b).sum::<f64>();
    let var = c * sum_a
        .iter()
        .zip(&sum_b)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>();
    let difference = fit_a.coef - fit_b.coef;
    let std_error = var.sqrt();
    let statistic = difference / std_error;
    let p_value = 2.0 * Normal::standard().sf(statistic.abs());
    let mut messages = fit_a.messages;
    messages.extend(fit_b.messages);
    Ok(StackedDifference {
        coef_a: fit_a.coef,
        std_error_a: var_a.sqrt(),
        coef_b: fit_b.coef,
        std_error_b: var_b.sqrt(),
        covariance_ab: cov_ab,
        difference,
        std_error,
        statistic,
        p_value,
        n_a: rows_a.len(),
        n_b: rows_b.len(),
        n_clusters: data.clusters.map(|_| n_groups),
        messages,
    })
}

/// Fisher permutation test of the difference of coefficient `coef` between the two groups, with
/// the fixed-effects OLS of [`stacked_difference`] in each subsample. With `data.clusters`,
/// whole clusters are reassigned (each cluster must then lie in one group).
pub fn coefficient_permutation_test(
    data: &DiffData<'_>,
    in_a: &[bool],
    coef: usize,
    opts: &PermutationOptions,
) -> Result<PermutationTest, EstimError> {
    check_data(data, in_a, coef)?;
    let difference = |assign: &[bool]| -> Result<f64, EstimError> {
        let rows_a: Vec<usize> = (0..assign.len()).filter(|&i| assign[i]).collect();
        let rows_b: Vec<usize> = (0..assign.len()).filter(|&i| !assign[i]).collect();
        let a = fit_subsample(data, &rows_a, coef, "A")?;
        let b = fit_subsample(data, &rows_b, coef, "B")?;
        Ok(a.coef - b.coef)
    };
    permutation_test(in_a, data.clusters, opts, difference)
}

/// Generic Fisher permutation test: `statistic` maps a group assignment (`true` = group A) to a
/// number; it is evaluated on the observed assignment and on `opts.reps` random reassignments
/// that keep the number of rows in A (or, with `clusters`, the number of whole clusters in A).
/// Assignments are drawn from per-permutation ChaCha8 streams seeded from `opts.seed`, so the
/// result does not depend on the number of threads.
pub fn permutation_test<F>(
    in_a: &[bool],
    clusters: Option<&[u32]>,
    opts: &PermutationOptions,
    statistic: F,
) -> Result<PermutationTest, EstimError>
where
    F: Fn(&[bool]) -> Result<f64, EstimError> + Sync,
{
    if opts.reps == 0 {
        return Err(EstimError::InvalidOption {
            message: "a permutation test needs at least 1 permutation".to_string(),
        });
    }
    let n = in_a.len();
    // Units that move together: rows, or clusters (which must not straddle the groups).
    let (unit_of_row, unit_in_a) = match clusters {
        None => ((0..n).collect::<Vec<usize>>(), in_a.to_vec()),
        Some(c) => {
            if c.len() != n {
                return Err(EstimError::InvalidOption {
                    message: format!("{} cluster codes for `{n}` rows", c.len()),
                });
            }
            let (codes, count) = dense(c);
            let mut unit_in_a: Vec<Option<bool>> = vec![None; count];
            for (i, &u) in codes.iter().enumerate() {
                match unit_in_a[u] {
                    None => unit_in_a[u] = Some(in_a[i]),
                    Some(side) if side != in_a[i] => {
                        return Err(EstimError::InvalidOption {
                            message: format!(
                                "cluster `{}` has rows in both groups; permute rows instead",
                                c[i]
                            ),
                        });
                    }
                    Some(_) => {}
                }
            }
            (
                codes,
                unit_in_a.into_iter().map(|s| s.unwrap_or(false)).collect(),
            )
        }
    };
    let observed = statistic(in_a)?;
    if !observed.is_finite() {
        return Err(EstimError::Numerical {
            message: "the observed statistic is not finite".to_string(),
        });
    }
    let mut master = ChaCha8Rng::seed_from_u64(opts.seed);
    let seeds: Vec<u64> = (0..opts.reps).map(|_| master.random()).collect();
    let draws: Vec<Option<f64>> = seeds
        .par_iter()
        .map(|&s| {
            let mut rng = ChaCha8Rng::seed_from_u64(s);
            let mut units = unit_in_a.clone();
            for i in (1..units.len()).rev() {
                units.swap(i, rng.random_range(0..=i));
            }
            let assign: Vec<bool> = unit_of_row.iter().map(|&u| units[u]).collect();
            statistic(&assign).ok().filter(|d| d.is_finite())
        })
        .collect();
    let valid: Vec<f64> = draws.iter().flatten().copied().collect();
    let mut messages = Vec::new();
    if valid.len() < opts.reps {
        messages.push(format!(
            "{} of {} permutations could not be estimated and were skipped",
            opts.reps - valid.len(),
            opts.reps
        ));
    }
    if valid.is_empty() {
        return Err(EstimError::Numerical {
            message: "no permutation could be estimated".to_string(),
        });
    }
    // A relative slack of 1e-12 keeps a permutation that reproduces the observed statistic up to
    // rounding on the "as extreme" side.
    let slack = 1e-12 * observed.abs();
    let two_sided = valid
        .iter()
        .filter(|d| d.abs() >= observed.abs() - slack)
        .count();
    let one_sided = valid
        .iter()
        .filter(|&&d| {
            if observed >= 0.0 {
                d >= observed - slack
            } else {
                d <= observed + slack
            }
        })
        .count();
    let m = valid.len() as f64;
    Ok(PermutationTest {
        observed,
        reps: opts.reps,
        valid_reps: valid.len(),
        p_value: two_sided as f64 / m,
        p_value_one_sided: one_sided as f64 / m,
        by_cluster: clusters.is_some(),
        messages,
    })
}

fn check_data(data: &DiffData<'_>, in_a: &[bool], coef: usize) -> Result<(), EstimError> {
    let n = data.y.len();
    let lengths_ok = in_a.len() == n
        && data.x.iter().all(|c| c.len() == n)
        && data.fixed_effects.iter().all(|c| c.len() == n)
        && data.clusters.is_none_or(|c| c.len() == n);
    if !lengths_ok {
        return Err(EstimError::InvalidOption {
            message: format!("every column and the group indicator must have `{n}` rows"),
        });
    }
    if coef >= data.x.len() {
        return Err(EstimError::InvalidOption {
            message: format!(
                "coefficient index `{coef}` but only {} regressors",
                data.x.len()
            ),
        });
    }
    let finite = data.y.iter().all(|v| v.is_finite())
        && data.x.iter().all(|c| c.iter().all(|v| v.is_finite()));
    if !finite {
        return Err(EstimError::InvalidOption {
            message: "difference tests need finite data; drop missing rows first".to_string(),
        });
    }
    Ok(())
}

/// Fixed-effects OLS on `rows` and the influence of each row on coefficient `coef`.
fn fit_subsample(
    data: &DiffData<'_>,
    rows: &[usize],
    coef: usize,
    label: &str,
) -> Result<SubsampleFit, EstimError> {
    let m = rows.len();
    let p = data.x.len();
    let has_fe = !data.fixed_effects.is_empty();
    // Column-major buffer: the regressors, then y.
    let mut buf = Vec::with_capacity((p + 1) * m);
    for col in data.x {
        buf.extend(rows.iter().map(|&i| col[i]));
    }
    buf.extend(rows.iter().map(|&i| data.y[i]));
    let centred_ss: Vec<f64> = (0..p)
        .map(|j| {
            let col = &buf[j * m..(j + 1) * m];
            let mean = col.iter().sum::<f64>() / m as f64;
            col.iter().map(|v| (v - mean).powi(2)).sum()
        })
        .collect();
    if has_fe {
        let dims = data
            .fixed_effects
            .iter()
            .map(|codes| {
                let sub: Vec<u32> = rows.iter().map(|&i| codes[i]).collect();
                let (dense_codes, count) = dense(&sub);
                (dense_codes.into_iter().map(|c| c as u32).collect(), count)
            })
            .collect();
        let fe = FixedEffects::new(dims, None)?;
        let opts = DemeanOptions {
            tol: 1e-12,
            ..DemeanOptions::default()
        };
        let report = demean_columns(&fe, &mut buf, &opts)?;
        if !report.converged {
            return Err(EstimError::Numerical {
                message: format!("fixed effects of subsample {label} did not converge"),
            });
        }
    } else {
        // An intercept column, placed last among the regressors.
        let ys = buf.split_off(p * m);
        buf.extend(std::iter::repeat_n(1.0, m));
        buf.extend(ys);
    }
    let k = if has_fe { p } else { p + 1 };
    let cols: Vec<&[f64]> = (0..k).map(|j| &buf[j * m..(j + 1) * m]).collect();
    let y = &buf[k * m..(k + 1) * m];
    let gram = Mat::from_fn(k, k, |a, b| {
        cols[a].iter().zip(cols[b]).map(|(u, v)| u * v).sum::<f64>()
    });
    let reference: Vec<f64> = if has_fe {
        centred_ss
    } else {
        // Only the fixed effects can absorb a column; without them compare with the raw size.
        (0..k).map(|j| gram[(j, j)]).collect()
    };
    let status = independent_columns(
        gram.as_ref(),
        Some(&reference),
        &CollinearityOptions::default(),
    );
    if status[coef] != ColumnStatus::Kept {
        return Err(EstimError::Numerical {
            message: format!("the tested regressor is collinear or absorbed in subsample {label}"),
        });
    }
    let kept: Vec<usize> = (0..k)
        .filter(|&j| status[j] == ColumnStatus::Kept)
        .collect();
    let mut messages = Vec::new();
    for j in (0..p).filter(|&j| status[j] != ColumnStatus::Kept) {
        messages.push(format!(
            "regressor {} dropped in subsample {label}: collinear or absorbed",
            j + 1
        ));
    }
    let kept_cols: Vec<&[f64]> = kept.iter().map(|&j| cols[j]).collect();
    let ls = least_squares(&kept_cols, y)?;
    let pos = kept.iter().position(|&j| j == coef).unwrap_or_default();
    // Influence of row i on the coefficient: row `pos` of (X'X)^{-1} times x_i, times e_i.
    let influence = (0..m)
        .map(|r| {
            let lever: f64 = kept_cols
                .iter()
                .enumerate()
                .map(|(c, col)| ls.bread[(pos, c)] * col[r])
                .sum();
            (rows[r], lever * ls.resid[r])
        })
        .collect();
    Ok(SubsampleFit {
        coef: ls.coef[pos],
        influence,
        messages,
    })
}

/// Dense `0..count` codes in increasing order of the raw code.
fn dense(raw: &[u32]) -> (Vec<usize>, usize) {
    let mut levels = raw.to_vec();
    levels.sort_unstable();
    levels.dedup();
    let codes = raw
        .iter()
        .map(|c| levels.binary_search(c).unwrap_or_default())
        .collect();
    (codes, levels.len())
}
