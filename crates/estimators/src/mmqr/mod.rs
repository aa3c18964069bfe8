//! Quantile regression with one-way fixed effects: Machado and Santos Silva (2019) "Quantiles via
//! moments" (MMQR, Stata `xtqreg` and `mmqreg`) and Canay's (2011) two-step estimator.
//!
//! Owns: the location, scale and quantile steps of MMQR and the choice among its variance
//! conventions ([`MmqrVcov`]); Canay's two steps (`canay`); the within transformation of one set
//! of group codes (`within`).
//! Deliberately does not own: formulas, missing values, several fixed-effect dimensions, the
//! linear-programming solvers (those are [`crate::quantile`]'s), or the variance formulas
//! themselves (`covariance`).
//!
//! MMQR model: `y_it = a_i + x_it'b + (d_i + x_it'g) u_it`, `u` independent of `(x, a, d)`.
//! Steps: `b` by the within regression of `y` on `x`; `R` its residuals; `g` by the within
//! regression of `|R|` on `x`, so `s_it = d_i + x_it'g` is the fitted `|R|`; `q(tau)` is the
//! `tau`-th sample quantile of `U = R / s`; and `b(tau) = b + q(tau) g`.
//!
//! The density `f(q)` behind every convention is estimated like Stata `qreg`'s default "fitted"
//! method on the standardised residuals: `2h / (q(tau + h) - q(tau - h))` with the Hall-Sheather
//! bandwidth `h` (halved until `tau ± h` lies in (0, 1)). Sample quantiles are the smallest
//! minimiser of the check function, `U_(ceil(N tau))`, which is what `qreg` returns for a
//! constant-only model when `N tau` is not an integer. Groups with a single observation carry no
//! information (their residual and scale are zero) and are dropped, as in `xtqreg`.
//!
//! The variance conventions (see `VCOV.md` beside `Cargo.toml` for the formulas and which
//! published numbers each reproduces):
//! * [`MmqrVcov::Robust`] (default) and [`MmqrVcov::Cluster`]: the sandwich of this
//!   implementation's own influence functions (the exact linearisation of the estimator as
//!   computed, fixed effects included), `sum psi psi' / N^2`, or with clusters
//!   `G / (G - 1) sum_c s_c s_c' / N^2`;
//! * [`MmqrVcov::Xtqreg`]: Theorem 3 of the paper as Machado and Santos Silva's `xtqreg` computes
//!   it (uncentred `V`, no small-sample factor): reproduces Table 6 of the paper;
//! * [`MmqrVcov::Mmqreg`], [`MmqrVcov::MmqregRobust`], [`MmqrVcov::MmqregCluster`]: Rios-Avila's
//!   `mmqreg` (version 3) default (Theorem 3 with a centred `V`), `robust` and `cluster()` with
//!   or without `dfadj`: reproduce his replication of Table 6.

mod canay;
mod covariance;
mod within;

pub use canay::{canay, CanayFit, CanayOptions, CanaySe};

use faer::{Mat, MatRef};
use serde::{Deserialize, Serialize};

use crate::error::EstimError;
use crate::quantile::{bandwidth, Bandwidth};
use within::{check_inputs, dense_codes, rows_in_multi_member_groups, Grouping, Within};

/// Variance convention of the MMQR estimates. Cluster codes have one entry per input row.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub enum MmqrVcov {
    /// Heteroskedasticity-robust sandwich of this implementation's influence functions
    /// (independent observations).
    #[default]
    Robust,
    /// The same influence functions summed by cluster, with the `G / (G - 1)` adjustment.
    Cluster(Vec<u32>),
    /// Theorem 3 of Machado and Santos Silva (2019) as their Stata `xtqreg` computes it:
    /// moments of the standardised residuals with the uncentred `V`, no small-sample factor.
    /// Location and scale standard errors are `xtreg, fe robust` ones, as `xtqreg, ls` reports.
    Xtqreg,
    /// Theorem 3 with the centred `V` (`E[(V - 1)^2]`), as Rios-Avila's `mmqreg` computes it by
    /// default (its "gls" variance).
    Mmqreg,
    /// `mmqreg, robust`: `sum psi psi' / N^2` of `mmqreg`'s influence functions.
    MmqregRobust,
    /// `mmqreg, cluster(var)`: `mmqreg`'s influence functions summed by cluster, divided by
    /// `N^2`; with `dfadj` also times `(N - 1) / (N - K) * G / (G - 1)`, `K` the slopes plus one
    /// plus the fixed-effect levels.
    MmqregCluster { codes: Vec<u32>, dfadj: bool },
}

impl MmqrVcov {
    /// The convention's name as results report it (the cluster variable is the caller's).
    pub fn name(&self) -> &'static str {
        match self {
            MmqrVcov::Robust => "robust",
            MmqrVcov::Cluster(_) => "cluster",
            MmqrVcov::Xtqreg => "xtqreg",
            MmqrVcov::Mmqreg => "mmqreg",
            MmqrVcov::MmqregRobust => "mmqreg-robust",
            MmqrVcov::MmqregCluster { dfadj: false, .. } => "mmqreg-cluster",
            MmqrVcov::MmqregCluster { dfadj: true, .. } => "mmqreg-cluster-dfadj",
        }
    }

    fn cluster_codes(&self) -> Option<&[u32]> {
        match self {
            MmqrVcov::Cluster(c) | MmqrVcov::MmqregCluster { codes: c, .. } => Some(c),
            _ => None,
        }
    }
}

/// MMQR options.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MmqrOptions {
    pub vcov: MmqrVcov,
    /// Bandwidth rule of the density estimate of the standardised residuals.
    pub bandwidth: Bandwidth,
}

/// MMQR estimates at one quantile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MmqrFit {
    pub tau: f64,
    /// `b(tau) = b + q(tau) g`, one per column of `x`.
    pub coef: Vec<f64>,
    pub std_error: Vec<f64>,
    /// Covariance of `coef`, row by row.
    pub covariance: Vec<Vec<f64>>,
    /// Location coefficients `b` and their standard errors.
    pub location: Vec<f64>,
    pub location_se: Vec<f64>,
    /// Scale coefficients `g` and their standard errors.
    pub scale: Vec<f64>,
    pub scale_se: Vec<f64>,
    /// `q(tau)`, the quantile of the standardised residuals, its standard error and the density
    /// estimate behind both.
    pub quantile: f64,
    pub quantile_se: f64,
    pub density: f64,
    /// The variance convention used ([`MmqrVcov::name`]).
    pub vcov: String,
    /// Degrees of freedom of t statistics when the convention has them (`mmqreg-cluster-dfadj`:
    /// `N - K`); `None` means normal.
    pub df_t: Option<usize>,
    pub nobs: usize,
    pub n_groups: usize,
    pub n_singletons_dropped: usize,
    /// Input rows used (singleton groups removed), ascending.
    pub used_rows: Vec<usize>,
    pub messages: Vec<String>,
}

/// Machado-Santos Silva quantile regression of `y` on the columns of `x` (no intercept: the group
/// effects absorb it) with one-way fixed effects `groups`, at every quantile in `taus`. Pass the
/// same code for every row for a model with an intercept and no fixed effects.
pub fn mmqr(
    y: &[f64],
    x: MatRef<'_, f64>,
    groups: &[u32],
    taus: &[f64],
    opts: &MmqrOptions,
) -> Result<Vec<MmqrFit>, EstimError> {
    check_mmqr_inputs(y, x, groups, taus, opts)?;
    let mut messages = Vec::new();
    let used_rows = rows_in_multi_member_groups(groups);
    let n_singletons_dropped = y.len() - used_rows.len();
    if n_singletons_dropped > 0 {
        messages.push(format!(
            "{n_singletons_dropped} observation(s) in single-observation groups dropped"
        ));
    }
    let n = used_rows.len();
    let p = x.ncols();
    let y: Vec<f64> = used_rows.iter().map(|&i| y[i]).collect();
    let xs = Mat::from_fn(n, p, |i, j| x[(used_rows[i], j)]);
    let g = Grouping::new(&used_rows.iter().map(|&i| groups[i]).collect::<Vec<_>>());
    if n <= p + g.n_groups {
        return Err(EstimError::TooFewObservations {
            n,
            k: p + g.n_groups + 1,
        });
    }
    if matches!(opts.vcov, MmqrVcov::Xtqreg) && g.n_groups < 2 {
        return Err(EstimError::InvalidOption {
            message: "mmqr vcov `xtqreg` follows Stata's xtqreg, which needs a fixed effect"
                .to_string(),
        });
    }
    let within = Within::new(&g, xs.as_ref())?;
    let est = Estimates::new(&within, &y, xs.as_ref(), &mut messages)?;
    let clusters = match opts.vcov.cluster_codes() {
        None => None,
        Some(c) => {
            let (codes, count) = dense_codes(&used_rows.iter().map(|&i| c[i]).collect::<Vec<_>>());
            if count < 2 {
                return Err(EstimError::InvalidOption {
                    message: "mmqr clustering needs at least 2 clusters".to_string(),
                });
            }
            Some((codes, count))
        }
    };

    let mut fits = Vec::with_capacity(taus.len());
    for &tau in taus {
        let step = QuantileStep::at(&est.sorted, tau, opts.bandwidth)?;
        let blocks = covariance::blocks(&est, &step, &opts.vcov, clusters.as_ref())?;
        fits.push(MmqrFit {
            tau,
            coef: (0..p)
                .map(|j| est.location[j] + step.q * est.scale[j])
                .collect(),
            std_error: (0..p).map(|j| blocks.coef[j][j].sqrt()).collect(),
            covariance: blocks.coef,
            location: est.location.clone(),
            location_se: blocks.location_se,
            scale: est.scale.clone(),
            scale_se: blocks.scale_se,
            quantile: step.q,
            quantile_se: blocks.quantile_se,
            density: step.density,
            vcov: opts.vcov.name().to_string(),
            df_t: blocks.df_t,
            nobs: n,
            n_groups: g.n_groups,
            n_singletons_dropped,
            used_rows: used_rows.clone(),
            messages: messages.clone(),
        });
    }
    Ok(fits)
}

fn check_mmqr_inputs(
    y: &[f64],
    x: MatRef<'_, f64>,
    groups: &[u32],
    taus: &[f64],
    opts: &MmqrOptions,
) -> Result<(), EstimError> {
    check_inputs(y, x, groups)?;
    if taus.is_empty() {
        return Err(EstimError::InvalidOption {
            message: "mmqr needs at least one quantile".to_string(),
        });
    }
    if let Some(&tau) = taus.iter().find(|t| !(**t > 0.0 && **t < 1.0)) {
        return Err(EstimError::TauOutOfRange { tau });
    }
    if let Some(c) = opts.vcov.cluster_codes() {
        if c.len() != y.len() {
            return Err(EstimError::InvalidOption {
                message: format!(
                    "mmqr clusters have {} entries but the data has `{}` rows",
                    c.len(),
                    y.len()
                ),
            });
        }
    }
    Ok(())
}

/// The location and scale steps and everything the variance conventions need from them, on the
/// used rows.
struct Estimates<'w> {
    within: &'w Within<'w>,
    n: usize,
    p: usize,
    /// Raw regressors of the used rows (xtqreg's scale level needs their overall means).
    x: MatRef<'w, f64>,
    location: Vec<f64>,
    /// `R`, residuals of the location regression.
    resid: Vec<f64>,
    scale: Vec<f64>,
    /// `s`, fitted values of the scale regression (fixed effects included).
    sigma: Vec<f64>,
    /// `U = R / s`, and sorted.
    std_resid: Vec<f64>,
    sorted: Vec<f64>,
    /// `V = 2 R (1{R >= 0} - P(R >= 0))`, `|R|` corrected for the estimation of `b`.
    v: Vec<f64>,
    /// Fixed-effects least-squares fit of `1 / s` on `x`.
    w: Vec<f64>,
}

impl<'w> Estimates<'w> {
    fn new(
        within: &'w Within<'w>,
        y: &[f64],
        x: MatRef<'w, f64>,
        messages: &mut Vec<String>,
    ) -> Result<Self, EstimError> {
        let (n, p) = (y.len(), x.ncols());
        let location = within.coef(y);
        let resid = within.residuals(y, &location);
        // Scale: the fitted value of the within regression of |R|, group effect included.
        let abs_resid: Vec<f64> = resid.iter().map(|r| r.abs()).collect();
        let scale = within.coef(&abs_resid);
        let sigma = within.fitted(&abs_resid, &scale);
        if sigma.iter().any(|s| *s == 0.0 || !s.is_finite()) {
            return Err(EstimError::Numerical {
                message: "a fitted scale value is zero; standardised residuals are undefined"
                    .to_string(),
            });
        }
        let negative = sigma.iter().filter(|s| **s < 0.0).count();
        if negative > 0 {
            messages.push(format!(
                "{negative} fitted scale value(s) are negative; consider another specification"
            ));
        }
        let std_resid: Vec<f64> = resid.iter().zip(&sigma).map(|(r, s)| r / s).collect();
        let share_nonneg = resid.iter().filter(|r| **r >= 0.0).count() as f64 / n as f64;
        let v: Vec<f64> = resid
            .iter()
            .map(|&r| 2.0 * r * (f64::from(u8::from(r >= 0.0)) - share_nonneg))
            .collect();
        let inv_sigma: Vec<f64> = sigma.iter().map(|s| 1.0 / s).collect();
        let w_coef = within.coef(&inv_sigma);
        let w = within.fitted(&inv_sigma, &w_coef);
        let mut sorted = std_resid.clone();
        sorted.sort_by(f64::total_cmp);
        Ok(Self {
            within,
            n,
            p,
            x,
            location,
            resid,
            scale,
            sigma,
            std_resid,
            sorted,
            v,
            w,
        })
    }
}

/// The quantile step at one `tau`: `q(tau)` and the density estimate at it.
struct QuantileStep {
    tau: f64,
    q: f64,
    density: f64,
}

impl QuantileStep {
    fn at(sorted: &[f64], tau: f64, rule: Bandwidth) -> Result<Self, EstimError> {
        let q = lower_quantile(sorted, tau);
        let mut h = bandwidth(tau, sorted.len(), rule);
        while tau - h < 0.0 || tau + h > 1.0 {
            h /= 2.0;
        }
        let spread = lower_quantile(sorted, tau + h) - lower_quantile(sorted, tau - h);
        let density = 2.0 * h / spread;
        if !(density.is_finite() && density > 0.0) {
            return Err(EstimError::Numerical {
                message: format!(
                    "density of the standardised residuals at quantile `{tau}` cannot be estimated (too few distinct values)"
                ),
            });
        }
        Ok(Self { tau, q, density })
    }
}

/// The smallest minimiser of the check function over a sorted sample: `x_(ceil(n tau))`.
fn lower_quantile(sorted: &[f64], tau: f64) -> f64 {
    let n = sorted.len();
    let rank = ((n as f64) * tau).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_without_fixed_effects() {
        // x = (0, 0, 1, 1), y = (0, 2, 1, 5), one group (an intercept):
        // location: b = 2, residuals (-1, 1, -2, 2); scale: |R| = (1, 1, 2, 2) gives g = 1 and
        // s = (1, 1, 2, 2); U = (-1, 1, -1, 1). At tau = 0.6, ceil(4 * 0.6) = 3: q = 1 and
        // b(0.6) = 2 + 1 * 1 = 3.
        let x = Mat::from_fn(4, 1, |i, _| if i < 2 { 0.0 } else { 1.0 });
        let y = [0.0, 2.0, 1.0, 5.0];
        let fits = mmqr(&y, x.as_ref(), &[7; 4], &[0.6], &MmqrOptions::default()).unwrap();
        let f = &fits[0];
        assert!((f.location[0] - 2.0).abs() < 1e-12);
        assert!((f.scale[0] - 1.0).abs() < 1e-12);
        assert!((f.quantile - 1.0).abs() < 1e-12);
        assert!((f.coef[0] - 3.0).abs() < 1e-12);
        assert!(f.std_error[0].is_finite() && f.std_error[0] > 0.0);
        let grouping = Grouping::new(&[7; 4]);
        let within = Within::new(&grouping, x.as_ref()).unwrap();
        let b = within.coef(&y);
        assert!((b[0] - 2.0).abs() < 1e-12);
        let r = within.residuals(&y, &b);
        for (a, e) in r.iter().zip([-1.0, 1.0, -2.0, 2.0]) {
            assert!((a - e).abs() < 1e-12);
        }
        let abs: Vec<f64> = r.iter().map(|v| v.abs()).collect();
        let g = within.coef(&abs);
        assert!((g[0] - 1.0).abs() < 1e-12);
        let s = within.fitted(&abs, &g);
        for (a, e) in s.iter().zip([1.0, 1.0, 2.0, 2.0]) {
            assert!((a - e).abs() < 1e-12);
        }
        let mut u: Vec<f64> = r.iter().zip(&s).map(|(a, b)| a / b).collect();
        u.sort_by(f64::total_cmp);
        assert!((lower_quantile(&u, 0.6) - 1.0).abs() < 1e-12);
        // n tau = 2 exactly: the smallest minimiser is the second order statistic.
        assert!((lower_quantile(&u, 0.5) + 1.0).abs() < 1e-12);
    }
}
