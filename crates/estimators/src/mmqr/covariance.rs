//! The variance conventions of MMQR: one covariance `Omega` of `(b, g, q)` per convention, and
//! `b(tau) = b + q g` mapped through it.
//!
//! Owns: this implementation's influence functions (`robust`, `cluster`), Theorem 3 of Machado
//! and Santos Silva (2019) as their `xtqreg` computes it (with `xtreg, fe robust` location and
//! scale errors), and Rios-Avila's `mmqreg` forms (centred Theorem 3, `robust`, `cluster` with
//! and without `dfadj`). `VCOV.md` beside `Cargo.toml` writes each formula out and says which
//! published numbers it reproduces.
//! Deliberately does not own: the estimates (`super::Estimates`), the density estimate, or which
//! convention a caller may ask for.
//!
//! Notation (used rows only): `N` observations, `p` slopes, `X~` the within-demeaned regressors,
//! `A = (X~'X~)^{-1}`, `R` the location residuals, `s` the fitted scale, `U = R / s`,
//! `V = 2 R (1{R >= 0} - P(R >= 0))`, `f` the density of `U` at `q`, `G` clusters.
//! With `xi = [I, q I, g]`, the covariance of `b(tau)` is `xi Omega xi'`.

use faer::Mat;

use super::{Estimates, MmqrVcov, QuantileStep};
use crate::error::EstimError;

/// Cluster index of every used row (dense codes) and the number of clusters.
pub(super) type Clusters = (Vec<usize>, usize);

/// What a convention gives for one quantile.
pub(super) struct Blocks {
    /// Covariance of `b(tau)`, row by row.
    pub(super) coef: Vec<Vec<f64>>,
    pub(super) location_se: Vec<f64>,
    pub(super) scale_se: Vec<f64>,
    pub(super) quantile_se: f64,
    pub(super) df_t: Option<usize>,
}

/// The covariance blocks of `vcov` at one quantile. `clusters` must be set for the clustered
/// conventions.
pub(super) fn blocks(
    est: &Estimates<'_>,
    step: &QuantileStep,
    vcov: &MmqrVcov,
    clusters: Option<&Clusters>,
) -> Result<Blocks, EstimError> {
    let nf = est.n as f64;
    let per_n2 = 1.0 / (nf * nf);
    let cluster_count = clusters.map_or(0, |c| c.1) as f64;
    match vcov {
        MmqrVcov::Robust => {
            let omega = outer_sums(&influence(est, step, QuantileTerm::Own), None, per_n2);
            Ok(map_to_quantile(est, step, &omega, None, None))
        }
        MmqrVcov::Cluster(_) => {
            let factor = cluster_count / (cluster_count - 1.0) * per_n2;
            let omega = outer_sums(&influence(est, step, QuantileTerm::Own), clusters, factor);
            Ok(map_to_quantile(est, step, &omega, None, None))
        }
        MmqrVcov::Xtqreg => {
            let omega = xtqreg_omega(est, step);
            let location_scale = xtreg_fe_robust(est);
            Ok(map_to_quantile(
                est,
                step,
                &omega,
                Some(location_scale),
                None,
            ))
        }
        MmqrVcov::Mmqreg => {
            let omega = mmqreg_omega(est, step);
            Ok(map_to_quantile(est, step, &omega, None, None))
        }
        MmqrVcov::MmqregRobust => {
            let omega = outer_sums(&influence(est, step, QuantileTerm::Mmqreg), None, per_n2);
            Ok(map_to_quantile(est, step, &omega, None, None))
        }
        MmqrVcov::MmqregCluster { dfadj, .. } => {
            let (factor, df_t) = if *dfadj {
                let nn = mmqreg_residual_df(est)?;
                let adj = (nf - 1.0) / nn as f64 * cluster_count / (cluster_count - 1.0);
                (adj * per_n2, Some(nn))
            } else {
                (per_n2, None)
            };
            let psi = influence(est, step, QuantileTerm::Mmqreg);
            let omega = outer_sums(&psi, clusters, factor);
            Ok(map_to_quantile(est, step, &omega, None, df_t))
        }
    }
}

/// `N - K` of `mmqreg, dfadj`: `K` counts the slopes, the constant (mmqreg's `k`) and the levels
/// of the absorbed fixed effect (`hdfe`'s `df_a`; none without fixed effects).
fn mmqreg_residual_df(est: &Estimates<'_>) -> Result<usize, EstimError> {
    let groups = est.within.groups.n_groups;
    let fe_levels = if groups > 1 { groups } else { 0 };
    let k = est.p + 1 + fe_levels;
    est.n
        .checked_sub(k)
        .filter(|&d| d > 0)
        .ok_or(EstimError::TooFewObservations { n: est.n, k: k + 1 })
}

/// How the quantile's influence term carries the estimation error of `b`, `g` and the effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuantileTerm {
    /// `(tau - 1{U <= q}) / f - w (R + q (V - s))`, `w` the fixed-effects least-squares fit of
    /// `1 / s` on `x`: the exact linearisation of the estimator as computed.
    Own,
    /// `mmqreg`'s `(tau - 1{q s - R >= 0}) / f - R / mean(s) - q (V - s) / mean(s)`.
    Mmqreg,
}

/// Per-observation influence terms of `(b, g, q)`: `N A x~ R`, `N A x~ (V - s)` and the quantile
/// term.
fn influence(est: &Estimates<'_>, step: &QuantileStep, term: QuantileTerm) -> Vec<Vec<f64>> {
    let (n, p) = (est.n, est.p);
    let nf = n as f64;
    let bread = &est.within.bread;
    let xt = &est.within.xt;
    let mean_sigma = est.sigma.iter().sum::<f64>() / nf;
    let (tau, q, f) = (step.tau, step.q, step.density);
    (0..n)
        .map(|i| {
            let ax: Vec<f64> = (0..p)
                .map(|a| nf * (0..p).map(|b| bread[(a, b)] * xt[(i, b)]).sum::<f64>())
                .collect();
            let (r, s, v) = (est.resid[i], est.sigma[i], est.v[i]);
            let psi_q = match term {
                QuantileTerm::Own => {
                    let below = f64::from(u8::from(est.std_resid[i] <= q));
                    (tau - below) / f - est.w[i] * (r + q * (v - s))
                }
                QuantileTerm::Mmqreg => {
                    let below = f64::from(u8::from(q * s - r >= 0.0));
                    (tau - below) / f - r / mean_sigma - q * (v - s) / mean_sigma
                }
            };
            let mut row = Vec::with_capacity(2 * p + 1);
            row.extend(ax.iter().map(|a| a * r));
            row.extend(ax.iter().map(|a| a * (v - s)));
            row.push(psi_q);
            row
        })
        .collect()
}

/// `factor * sum psi psi'`, or with clusters `factor * sum_c s_c s_c'` over the cluster sums.
fn outer_sums(psi: &[Vec<f64>], clusters: Option<&Clusters>, factor: f64) -> Mat<f64> {
    let dim = psi.first().map_or(0, Vec::len);
    let sums = match clusters {
        None => psi.to_vec(),
        Some((codes, count)) => {
            let mut sums = vec![vec![0.0; dim]; *count];
            for (row, &c) in psi.iter().zip(codes) {
                sums[c].iter_mut().zip(row).for_each(|(s, v)| *s += v);
            }
            sums
        }
    };
    let mut cov = Mat::<f64>::zeros(dim, dim);
    for s in &sums {
        for a in 0..dim {
            for b in 0..=a {
                cov[(a, b)] += s[a] * s[b];
            }
        }
    }
    Mat::from_fn(dim, dim, |a, b| {
        factor * if b <= a { cov[(a, b)] } else { cov[(b, a)] }
    })
}

/// `A P A` and `A P1` with `P = sum s^2 x~ x~'` and `P1 = sum s^2 x~`: the `sigma`-weighted
/// moments of the regressors in Theorem 3.
fn weighted_regressor_moments(est: &Estimates<'_>) -> (Mat<f64>, Vec<f64>) {
    let p = est.p;
    let xt = &est.within.xt;
    let bread = &est.within.bread;
    let mut pxx = Mat::<f64>::zeros(p, p);
    let mut px = vec![0.0; p];
    for i in 0..est.n {
        let s2 = est.sigma[i] * est.sigma[i];
        for a in 0..p {
            px[a] += s2 * xt[(i, a)];
            for b in 0..p {
                pxx[(a, b)] += s2 * xt[(i, a)] * xt[(i, b)];
            }
        }
    }
    let apa = bread * &pxx * bread;
    let apx = (0..p)
        .map(|a| (0..p).map(|b| bread[(a, b)] * px[b]).sum())
        .collect();
    (apa, apx)
}

/// `Omega` from scalar moments: `[m_bb APA, m_bg APA, c_bq AP1; ., m_gg APA, c_gq AP1; ., ., c_qq]`.
fn theorem3_omega(est: &Estimates<'_>, m: [f64; 3], c: [f64; 3]) -> Mat<f64> {
    let p = est.p;
    let (apa, apx) = weighted_regressor_moments(est);
    let mut omega = Mat::<f64>::zeros(2 * p + 1, 2 * p + 1);
    for a in 0..p {
        for b in 0..p {
            omega[(a, b)] = m[0] * apa[(a, b)];
            omega[(a, p + b)] = m[1] * apa[(a, b)];
            omega[(p + a, b)] = m[1] * apa[(a, b)];
            omega[(p + a, p + b)] = m[2] * apa[(a, b)];
        }
        omega[(a, 2 * p)] = c[0] * apx[a];
        omega[(2 * p, a)] = c[0] * apx[a];
        omega[(p + a, 2 * p)] = c[1] * apx[a];
        omega[(2 * p, p + a)] = c[1] * apx[a];
    }
    omega[(2 * p, 2 * p)] = c[2];
    omega
}

fn mean(v: impl Iterator<Item = f64>, n: usize) -> f64 {
    v.sum::<f64>() / n as f64
}

/// Theorem 3 as `xtqreg` (version 1.5) computes it. With `V* = 2 U (1{U >= 0} - P(U >= 0))`
/// (uncentred), `W = (tau - 1{U <= q}) / f - U - q V*`, and the group-level scale
/// `m_i = s_it - (x_it - mean(x))'g` (`xtqreg`'s `delta_i + mean(x)'g`):
/// `Omega_bb = E[U^2] APA`, `Omega_bg = E[U V*] APA`, `Omega_gg = E[V*^2] APA`,
/// `Omega_bq = E[U W] AP1 / sum m`, `Omega_gq = E[V* W] AP1 / sum m`,
/// `Omega_qq = N E[W^2] mean(m^2) / (sum m)^2`.
fn xtqreg_omega(est: &Estimates<'_>, step: &QuantileStep) -> Mat<f64> {
    let (n, p) = (est.n, est.p);
    let u = &est.std_resid;
    let (tau, q, f) = (step.tau, step.q, step.density);
    let share_nonneg = mean(u.iter().map(|&v| f64::from(u8::from(v >= 0.0))), n);
    let vs: Vec<f64> = u
        .iter()
        .map(|&v| 2.0 * v * (f64::from(u8::from(v >= 0.0)) - share_nonneg))
        .collect();
    let w: Vec<f64> = (0..n)
        .map(|i| {
            let below = f64::from(u8::from(u[i] <= q));
            (tau - below) / f - u[i] - q * vs[i]
        })
        .collect();
    let x_mean: Vec<f64> = (0..p)
        .map(|j| mean((0..n).map(|i| est.x[(i, j)]), n))
        .collect();
    let level: Vec<f64> = (0..n)
        .map(|i| {
            est.sigma[i]
                - (0..p)
                    .map(|j| (est.x[(i, j)] - x_mean[j]) * est.scale[j])
                    .sum::<f64>()
        })
        .collect();
    let sum_level: f64 = level.iter().sum();
    let mean_level2 = mean(level.iter().map(|m| m * m), n);
    let m_uu = mean(u.iter().map(|v| v * v), n);
    let m_uv = mean((0..n).map(|i| u[i] * vs[i]), n);
    let m_vv = mean(vs.iter().map(|v| v * v), n);
    let m_uw = mean((0..n).map(|i| u[i] * w[i]), n);
    let m_vw = mean((0..n).map(|i| vs[i] * w[i]), n);
    let m_ww = mean(w.iter().map(|v| v * v), n);
    theorem3_omega(
        est,
        [m_uu, m_uv, m_vv],
        [
            m_uw / sum_level,
            m_vw / sum_level,
            n as f64 * m_ww * mean_level2 / (sum_level * sum_level),
        ],
    )
}

/// Theorem 3 as `mmqreg` (version 3) computes it by default: with `psi_q` its quantile term and
/// `o` the second moments of `(U, V / s - 1, psi_q / s)` (the centred `V`),
/// `Omega_bb = o_11 APA`, `Omega_bg = o_12 APA`, `Omega_gg = o_22 APA`,
/// `Omega_bq = o_13 AP1 / N`, `Omega_gq = o_23 AP1 / N`, `Omega_qq = o_33 sum s^2 / N^2`.
fn mmqreg_omega(est: &Estimates<'_>, step: &QuantileStep) -> Mat<f64> {
    let n = est.n;
    let nf = n as f64;
    let p = est.p;
    let psi = influence(est, step, QuantileTerm::Mmqreg);
    let mut o = [[0.0; 3]; 3];
    for (i, row) in psi.iter().enumerate() {
        let s = est.sigma[i];
        let z = [est.std_resid[i], est.v[i] / s - 1.0, row[2 * p] / s];
        for a in 0..3 {
            for b in 0..3 {
                o[a][b] += z[a] * z[b] / nf;
            }
        }
    }
    let sum_s2: f64 = est.sigma.iter().map(|s| s * s).sum();
    theorem3_omega(
        est,
        [o[0][0], o[0][1], o[1][1]],
        [o[0][2] / nf, o[1][2] / nf, o[2][2] * sum_s2 / (nf * nf)],
    )
}

/// Standard errors of the location and scale coefficients as `xtqreg, ls` reports them: Stata's
/// `xtreg, fe robust` (clustered by the fixed effect, times `(N - 1) / (N - p - 1) * G / (G - 1)`)
/// of the regressions of `y` and of `V` on `x`.
fn xtreg_fe_robust(est: &Estimates<'_>) -> (Vec<f64>, Vec<f64>) {
    let (n, p) = (est.n, est.p);
    let within = est.within;
    let groups = within.groups;
    let g = groups.n_groups as f64;
    let factor = (n as f64 - 1.0) / (n as f64 - p as f64 - 1.0) * g / (g - 1.0);
    let v_coef = within.coef(&est.v);
    let v_resid = within.residuals(&est.v, &v_coef);
    let se = |e: &[f64]| -> Vec<f64> {
        let mut sums = vec![vec![0.0; p]; groups.n_groups];
        for (i, &ei) in e.iter().enumerate() {
            let sum = &mut sums[groups.codes[i]];
            for (a, cell) in sum.iter_mut().enumerate() {
                *cell += within.xt[(i, a)] * ei;
            }
        }
        let meat = Mat::from_fn(p, p, |a, b| sums.iter().map(|s| s[a] * s[b]).sum::<f64>());
        let cov = &within.bread * &meat * &within.bread;
        (0..p).map(|j| (factor * cov[(j, j)]).sqrt()).collect()
    };
    (se(&est.resid), se(&v_resid))
}

/// `b(tau)`'s covariance `xi Omega xi'` with `xi = [I, q I, g]`, and the standard errors of `b`,
/// `g` and `q` from `Omega`'s diagonal (or from `location_scale` when the convention reports
/// those differently).
fn map_to_quantile(
    est: &Estimates<'_>,
    step: &QuantileStep,
    omega: &Mat<f64>,
    location_scale: Option<(Vec<f64>, Vec<f64>)>,
    df_t: Option<usize>,
) -> Blocks {
    let p = est.p;
    let dim = 2 * p + 1;
    let xi = Mat::from_fn(p, dim, |a, c| {
        if c == a {
            1.0
        } else if c == p + a {
            step.q
        } else if c == 2 * p {
            est.scale[a]
        } else {
            0.0
        }
    });
    let v = &xi * omega * xi.transpose();
    let coef = (0..p)
        .map(|a| (0..p).map(|b| 0.5 * (v[(a, b)] + v[(b, a)])).collect())
        .collect();
    let diag_se = |j: usize| omega[(j, j)].max(0.0).sqrt();
    let (location_se, scale_se) = location_scale.unwrap_or_else(|| {
        (
            (0..p).map(diag_se).collect(),
            (p..2 * p).map(diag_se).collect(),
        )
    });
    Blocks {
        coef,
        location_se,
        scale_se,
        quantile_se: diag_se(2 * p),
        df_t,
    }
}
