//! Quantile regression with one-way fixed effects: Machado and Santos Silva (2019) "Quantiles via
//! moments" (MMQR, Stata `xtqreg`) and Canay's (2011) two-step estimator.
//!
//! Owns: the within (group-mean) transformation of one set of group codes, the location, scale
//! and quantile steps of MMQR with their influence-function covariance, and Canay's two steps with
//! either second-step `rq` standard errors or a bootstrap over whole groups.
//! Deliberately does not own: formulas, missing values, several fixed-effect dimensions, or the
//! linear-programming solvers (those are [`crate::quantile`]'s).
//!
//! MMQR model: `y_it = a_i + x_it'b + (d_i + x_it'g) u_it`, `u` independent of `(x, a, d)`.
//! Steps: `b` by the within regression of `y` on `x`; `R` its residuals; `g` by the within
//! regression of `|R|` on `x`, so `s_it = d_i + x_it'g` is the fitted `|R|`; `q(tau)` is the
//! `tau`-th sample quantile of `U = R / s`; and `b(tau) = b + q(tau) g`.
//!
//! Covariance (a convention choice, see below). Each estimate is linearised into a sum of
//! per-observation influence terms, with `Q = X~'X~ / N` (within-demeaned regressors):
//! * location: `Q^{-1} x~ R`;
//! * scale: `Q^{-1} x~ (V - s)` with `V = 2 R (1{R >= 0} - P(R >= 0))`, which is `|R|` corrected
//!   for the estimation of `b` (the paper's `V`);
//! * quantile: `(tau - 1{U <= q}) / f(q) - w (R + q (V - s))`, where `w` is the fixed-effects
//!   least-squares fit of `1 / s` on `x` (the projection that carries the estimation error of the
//!   location and scale, fixed effects included, into the standardised residuals). Under the model
//!   `w = 1 / s` up to that projection, which gives the paper's `(tau - 1{U <= q}) / f - U - q
//!   (|U| - 1)` form;
//! * `b(tau)`: location `+ q` scale `+ g` quantile.
//!
//! The covariance is `sum psi psi' / N^2` (independent observations) or, with clusters,
//! `G / (G - 1) sum_c (sum_{i in c} psi_i)(...)' / N^2`. The density `f(q)` is estimated like Stata
//! `qreg`'s default "fitted" method on the standardised residuals: `2h / (q(tau + h) - q(tau - h))`
//! with the Hall-Sheather bandwidth `h` (halved until `tau ± h` lies in (0, 1)). Sample quantiles
//! are the smallest minimiser of the check function, `U_(ceil(N tau))`. This is derived for the
//! estimator as computed (the unweighted quantile of the standardised residuals, as `xtqreg`
//! estimates it); it is not checked against Stata output, which is not available here.
//! Groups with a single observation carry no information (their residual and scale are zero) and
//! are dropped, as in `xtqreg`.

use faer::linalg::solvers::SolveLstsq;
use faer::{Mat, MatRef};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::EstimError;
use crate::quantile::{bandwidth, rq, Bandwidth, RqFit, RqMethod, RqOptions, RqSe};

/// Variance of the MMQR estimates.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub enum MmqrVcov {
    /// Independent observations.
    #[default]
    Robust,
    /// Clustered by the given codes (one per input row), with the `G / (G - 1)` adjustment.
    Cluster(Vec<u32>),
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
    check_inputs(y, x, groups)?;
    if taus.is_empty() {
        return Err(EstimError::InvalidOption {
            message: "mmqr needs at least one quantile".to_string(),
        });
    }
    if let Some(&tau) = taus.iter().find(|t| !(**t > 0.0 && **t < 1.0)) {
        return Err(EstimError::TauOutOfRange { tau });
    }
    if let MmqrVcov::Cluster(c) = &opts.vcov {
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
    let within = Within::new(&g, xs.as_ref())?;

    // Location.
    let location = within.coef(&y);
    let resid = within.residuals(&y, &location);
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

    let clusters: Option<Vec<u32>> = match &opts.vcov {
        MmqrVcov::Robust => None,
        MmqrVcov::Cluster(c) => Some(used_rows.iter().map(|&i| c[i]).collect()),
    };
    let cluster_index = clusters.as_deref().map(dense_codes);
    if cluster_index.as_ref().is_some_and(|(_, count)| *count < 2) {
        return Err(EstimError::InvalidOption {
            message: "mmqr clustering needs at least 2 clusters".to_string(),
        });
    }

    // Influence terms of location and scale: N Q^{-1}... written as bread * x~ e.
    let bread = &within.bread;
    let nf = n as f64;
    let xt = &within.xt;
    let scaled_row = |i: usize, e: f64| -> Vec<f64> {
        (0..p)
            .map(|a| nf * (0..p).map(|b| bread[(a, b)] * xt[(i, b)]).sum::<f64>() * e)
            .collect()
    };
    let psi_loc: Vec<Vec<f64>> = (0..n).map(|i| scaled_row(i, resid[i])).collect();
    let psi_scale: Vec<Vec<f64>> = (0..n).map(|i| scaled_row(i, v[i] - sigma[i])).collect();

    let mut sorted = std_resid.clone();
    sorted.sort_by(f64::total_cmp);
    let mut fits = Vec::with_capacity(taus.len());
    for &tau in taus {
        let q = lower_quantile(&sorted, tau);
        let mut h = bandwidth(tau, n, opts.bandwidth);
        while tau - h < 0.0 || tau + h > 1.0 {
            h /= 2.0;
        }
        let spread = lower_quantile(&sorted, tau + h) - lower_quantile(&sorted, tau - h);
        let density = 2.0 * h / spread;
        if !(density.is_finite() && density > 0.0) {
            return Err(EstimError::Numerical {
                message: format!(
                    "density of the standardised residuals at quantile `{tau}` cannot be estimated (too few distinct values)"
                ),
            });
        }
        let psi_q: Vec<f64> = (0..n)
            .map(|i| {
                let below = f64::from(u8::from(std_resid[i] <= q));
                (tau - below) / density - w[i] * (resid[i] + q * (v[i] - sigma[i]))
            })
            .collect();
        // Stack (b(tau), b, g, q) per observation, then one covariance for all of them.
        let dim = 3 * p + 1;
        let psi_all: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                let mut row = Vec::with_capacity(dim);
                row.extend(
                    (0..p).map(|j| psi_loc[i][j] + q * psi_scale[i][j] + scale[j] * psi_q[i]),
                );
                row.extend_from_slice(&psi_loc[i]);
                row.extend_from_slice(&psi_scale[i]);
                row.push(psi_q[i]);
                row
            })
            .collect();
        let cov = influence_covariance(&psi_all, cluster_index.as_ref(), n);
        let se = |j: usize| cov[j][j].sqrt();
        fits.push(MmqrFit {
            tau,
            coef: (0..p).map(|j| location[j] + q * scale[j]).collect(),
            std_error: (0..p).map(se).collect(),
            covariance: (0..p).map(|a| cov[a][..p].to_vec()).collect(),
            location: location.clone(),
            location_se: (p..2 * p).map(se).collect(),
            scale: scale.clone(),
            scale_se: (2 * p..3 * p).map(se).collect(),
            quantile: q,
            quantile_se: se(3 * p),
            density,
            nobs: n,
            n_groups: g.n_groups,
            n_singletons_dropped,
            used_rows: used_rows.clone(),
            messages: messages.clone(),
        });
    }
    Ok(fits)
}

/// `sum psi psi' / N^2`, or with clusters `G / (G - 1) sum_c s_c s_c' / N^2`.
fn influence_covariance(
    psi: &[Vec<f64>],
    clusters: Option<&(Vec<usize>, usize)>,
    n: usize,
) -> Vec<Vec<f64>> {
    let dim = psi.first().map_or(0, Vec::len);
    let (sums, factor) = match clusters {
        None => (psi.to_vec(), 1.0),
        Some((codes, count)) => {
            let mut sums = vec![vec![0.0; dim]; *count];
            for (row, &c) in psi.iter().zip(codes) {
                sums[c].iter_mut().zip(row).for_each(|(s, v)| *s += v);
            }
            let g = *count as f64;
            (sums, g / (g - 1.0))
        }
    };
    let scale = factor / (n as f64 * n as f64);
    let mut cov = Mat::<f64>::zeros(dim, dim);
    for s in &sums {
        for a in 0..dim {
            for b in 0..=a {
                cov[(a, b)] += s[a] * s[b];
            }
        }
    }
    (0..dim)
        .map(|a| {
            (0..dim)
                .map(|b| scale * if b <= a { cov[(a, b)] } else { cov[(b, a)] })
                .collect()
        })
        .collect()
}

/// The smallest minimiser of the check function over a sorted sample: `x_(ceil(n tau))`.
fn lower_quantile(sorted: &[f64], tau: f64) -> f64 {
    let n = sorted.len();
    let rank = ((n as f64) * tau).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// Canay's standard errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CanaySe {
    /// The second-step `rq` standard errors, which treat the estimated fixed effects as known
    /// (the common practice; they understate the uncertainty when groups are short).
    SecondStep(RqSe),
    /// Resample whole groups with replacement and redo both steps (each drawn group is a new
    /// group); covariance of the draws. Deterministic for a seed.
    GroupBootstrap { reps: usize, seed: u64 },
}

impl Default for CanaySe {
    fn default() -> Self {
        CanaySe::SecondStep(RqSe::Nid)
    }
}

/// Canay options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanayOptions {
    pub tau: f64,
    pub method: RqMethod,
    pub se: CanaySe,
    pub bandwidth: Bandwidth,
}

impl Default for CanayOptions {
    fn default() -> Self {
        Self {
            tau: 0.5,
            method: RqMethod::Auto,
            se: CanaySe::default(),
            bandwidth: Bandwidth::HallSheather,
        }
    }
}

/// Canay's estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanayFit {
    /// The second-step quantile regression of `y - a_i` on `[1, x]`: coefficient 0 is the
    /// intercept, then one per column of `x`. With [`CanaySe::GroupBootstrap`] its standard
    /// errors and covariance are the bootstrap ones.
    pub rq: RqFit,
    /// First-step within coefficients.
    pub within_coef: Vec<f64>,
    /// First-step fixed effect of each row's group, `a_i = mean_i(y) - mean_i(x)'b`.
    pub row_effects: Vec<f64>,
    pub n_groups: usize,
    pub messages: Vec<String>,
}

/// Canay (2011): the within regression gives `a_i`; the quantile regression of `y - a_i` on an
/// intercept and `x` at `tau` gives the coefficients.
pub fn canay(
    y: &[f64],
    x: MatRef<'_, f64>,
    groups: &[u32],
    opts: &CanayOptions,
) -> Result<CanayFit, EstimError> {
    check_inputs(y, x, groups)?;
    if !(opts.tau > 0.0 && opts.tau < 1.0) {
        return Err(EstimError::TauOutOfRange { tau: opts.tau });
    }
    let g = Grouping::new(groups);
    let p = x.ncols();
    if y.len() <= p + g.n_groups {
        return Err(EstimError::TooFewObservations {
            n: y.len(),
            k: p + g.n_groups + 1,
        });
    }
    let second_se = match &opts.se {
        CanaySe::SecondStep(se) => se.clone(),
        CanaySe::GroupBootstrap { .. } => RqSe::None,
    };
    let (mut fit, within_coef, row_effects) =
        canay_steps(y, x, &g, opts.tau, opts.method, second_se, opts.bandwidth)?;
    let mut messages = Vec::new();
    if let CanaySe::GroupBootstrap { reps, seed } = opts.se {
        let cov = canay_group_bootstrap(y, x, &g, opts, reps, seed, &mut messages)?;
        fit.std_error = (0..cov.len()).map(|j| cov[j][j].sqrt()).collect();
        fit.covariance = cov;
    } else {
        messages
            .push("canay standard errors treat the first-step fixed effects as known".to_string());
    }
    Ok(CanayFit {
        rq: fit,
        within_coef,
        row_effects,
        n_groups: g.n_groups,
        messages,
    })
}

fn canay_steps(
    y: &[f64],
    x: MatRef<'_, f64>,
    g: &Grouping,
    tau: f64,
    method: RqMethod,
    se: RqSe,
    bw: Bandwidth,
) -> Result<(RqFit, Vec<f64>, Vec<f64>), EstimError> {
    let (n, p) = (y.len(), x.ncols());
    let within = Within::new(g, x)?;
    let b = within.coef(y);
    // a_i = mean_i(y) - mean_i(x)'b.
    let y_mean = g.means(y);
    let x_means: Vec<Vec<f64>> = (0..p)
        .map(|j| g.means(&(0..n).map(|i| x[(i, j)]).collect::<Vec<_>>()))
        .collect();
    let effects: Vec<f64> = (0..g.n_groups)
        .map(|c| y_mean[c] - (0..p).map(|j| x_means[j][c] * b[j]).sum::<f64>())
        .collect();
    let row_effects: Vec<f64> = g.codes.iter().map(|&c| effects[c]).collect();
    let y_net: Vec<f64> = y.iter().zip(&row_effects).map(|(v, a)| v - a).collect();
    let design = Mat::from_fn(n, p + 1, |i, j| if j == 0 { 1.0 } else { x[(i, j - 1)] });
    let opts = RqOptions {
        tau,
        method,
        se,
        bandwidth: bw,
    };
    let fit = rq(design.as_ref(), &y_net, &opts)?;
    Ok((fit, b, row_effects))
}

fn canay_group_bootstrap(
    y: &[f64],
    x: MatRef<'_, f64>,
    g: &Grouping,
    opts: &CanayOptions,
    reps: usize,
    seed: u64,
    messages: &mut Vec<String>,
) -> Result<Vec<Vec<f64>>, EstimError> {
    if reps < 2 {
        return Err(EstimError::InvalidOption {
            message: format!("bootstrap needs at least 2 replications, got `{reps}`"),
        });
    }
    let members = g.members();
    let p = x.ncols();
    let mut master = ChaCha8Rng::seed_from_u64(seed);
    let seeds: Vec<u64> = (0..reps).map(|_| master.random()).collect();
    let draws: Vec<Option<Vec<f64>>> = seeds
        .par_iter()
        .map(|&s| {
            let mut rng = ChaCha8Rng::seed_from_u64(s);
            let mut rows = Vec::new();
            let mut codes = Vec::new();
            for draw in 0..members.len() {
                let chosen = &members[rng.random_range(0..members.len())];
                rows.extend_from_slice(chosen);
                codes.extend(std::iter::repeat_n(draw as u32, chosen.len()));
            }
            let yb: Vec<f64> = rows.iter().map(|&i| y[i]).collect();
            let xb = Mat::from_fn(rows.len(), p, |i, j| x[(rows[i], j)]);
            let gb = Grouping::new(&codes);
            canay_steps(
                &yb,
                xb.as_ref(),
                &gb,
                opts.tau,
                opts.method,
                RqSe::None,
                opts.bandwidth,
            )
            .ok()
            .map(|(fit, _, _)| fit.coef)
        })
        .collect();
    let good: Vec<&Vec<f64>> = draws.iter().flatten().collect();
    if good.len() < reps {
        messages.push(format!(
            "{} of {reps} group-bootstrap draws failed (singular design) and were skipped",
            reps - good.len()
        ));
    }
    if good.len() < 2 {
        return Err(EstimError::Numerical {
            message: "fewer than 2 usable bootstrap draws".to_string(),
        });
    }
    let k = p + 1;
    let b = good.len() as f64;
    let mean: Vec<f64> = (0..k)
        .map(|j| good.iter().map(|d| d[j]).sum::<f64>() / b)
        .collect();
    let mut cov = vec![vec![0.0; k]; k];
    for d in &good {
        for r in 0..k {
            for c in 0..k {
                cov[r][c] += (d[r] - mean[r]) * (d[c] - mean[c]) / (b - 1.0);
            }
        }
    }
    Ok(cov)
}

fn check_inputs(y: &[f64], x: MatRef<'_, f64>, groups: &[u32]) -> Result<(), EstimError> {
    if x.nrows() != y.len() || groups.len() != y.len() {
        return Err(EstimError::InvalidOption {
            message: format!(
                "`y` has {} rows, `x` {} and `groups` {}; they must agree",
                y.len(),
                x.nrows(),
                groups.len()
            ),
        });
    }
    if x.ncols() == 0 {
        return Err(EstimError::NoRegressors {
            reason: "the regressor matrix has no columns".to_string(),
        });
    }
    let finite = y.iter().all(|v| v.is_finite())
        && (0..x.ncols()).all(|j| (0..x.nrows()).all(|i| x[(i, j)].is_finite()));
    if !finite {
        return Err(EstimError::InvalidOption {
            message: "quantile regression needs finite data; drop missing rows first".to_string(),
        });
    }
    Ok(())
}

/// Rows whose group has at least two observations, ascending.
fn rows_in_multi_member_groups(groups: &[u32]) -> Vec<usize> {
    let mut count: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    for &c in groups {
        *count.entry(c).or_default() += 1;
    }
    (0..groups.len())
        .filter(|&i| count[&groups[i]] >= 2)
        .collect()
}

/// Dense `0..count` codes in increasing order of the raw code, so the numbering (and therefore
/// every sum over groups) does not depend on the row order.
fn dense_codes(raw: &[u32]) -> (Vec<usize>, usize) {
    let mut levels: Vec<u32> = raw.to_vec();
    levels.sort_unstable();
    levels.dedup();
    let codes = raw
        .iter()
        .map(|c| levels.binary_search(c).unwrap_or_default())
        .collect();
    (codes, levels.len())
}

/// One-way grouping of the rows.
struct Grouping {
    codes: Vec<usize>,
    n_groups: usize,
    size: Vec<usize>,
}

impl Grouping {
    fn new(raw: &[u32]) -> Self {
        let (codes, n_groups) = dense_codes(raw);
        let mut size = vec![0; n_groups];
        for &c in &codes {
            size[c] += 1;
        }
        Self {
            codes,
            n_groups,
            size,
        }
    }

    fn means(&self, v: &[f64]) -> Vec<f64> {
        let mut sum = vec![0.0; self.n_groups];
        for (&c, x) in self.codes.iter().zip(v) {
            sum[c] += x;
        }
        sum.iter()
            .zip(&self.size)
            .map(|(s, &m)| s / m as f64)
            .collect()
    }

    fn demean(&self, v: &[f64]) -> Vec<f64> {
        let m = self.means(v);
        v.iter().zip(&self.codes).map(|(x, &c)| x - m[c]).collect()
    }

    fn members(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.n_groups];
        for (i, &c) in self.codes.iter().enumerate() {
            out[c].push(i);
        }
        out
    }
}

/// The within-demeaned regressors with their QR factorisation: least squares on them is the
/// one-way fixed-effects regression.
struct Within<'g> {
    groups: &'g Grouping,
    xt: Mat<f64>,
    qr: faer::linalg::solvers::Qr<f64>,
    /// `(X~'X~)^{-1}`.
    bread: Mat<f64>,
}

impl<'g> Within<'g> {
    fn new(groups: &'g Grouping, x: MatRef<'_, f64>) -> Result<Self, EstimError> {
        let (n, p) = (x.nrows(), x.ncols());
        let mut xt = Mat::<f64>::zeros(n, p);
        for j in 0..p {
            let col: Vec<f64> = (0..n).map(|i| x[(i, j)]).collect();
            let norm0 = col.iter().map(|v| v * v).sum::<f64>().sqrt();
            let dm = groups.demean(&col);
            for (i, v) in dm.iter().enumerate() {
                xt[(i, j)] = *v;
            }
            let norm = dm.iter().map(|v| v * v).sum::<f64>().sqrt();
            // NaN-safe: a non-finite norm also counts as no variation.
            if norm.is_nan() || norm <= 1e-10 * norm0.max(f64::MIN_POSITIVE) {
                return Err(EstimError::NoRegressors {
                    reason: format!("regressor {} does not vary within groups", j + 1),
                });
            }
        }
        let qr = xt.qr();
        let r = qr.thin_R();
        let col_norm = |j: usize| (0..n).map(|i| xt[(i, j)].powi(2)).sum::<f64>().sqrt();
        for j in 0..p {
            let d = r[(j, j)].abs();
            if d.is_nan() || d <= 1e-7 * col_norm(j) {
                return Err(EstimError::Numerical {
                    message: format!(
                        "regressor {} is collinear with the others within groups",
                        j + 1
                    ),
                });
            }
        }
        let mut rinv = Mat::<f64>::zeros(p, p);
        for c in 0..p {
            for row in (0..=c).rev() {
                let mut acc = if row == c { 1.0 } else { 0.0 };
                for m in row + 1..=c {
                    acc -= r[(row, m)] * rinv[(m, c)];
                }
                rinv[(row, c)] = acc / r[(row, row)];
            }
        }
        let bread = &rinv * rinv.transpose();
        Ok(Self {
            groups,
            xt,
            qr,
            bread,
        })
    }

    /// Within-regression coefficients of `v` (demeaning `v` is unnecessary: `X~` sums to zero
    /// in every group).
    fn coef(&self, v: &[f64]) -> Vec<f64> {
        let p = self.xt.ncols();
        let mut rhs = Mat::from_fn(v.len(), 1, |i, _| v[i]);
        self.qr.solve_lstsq_in_place(rhs.as_mut());
        (0..p).map(|j| rhs[(j, 0)]).collect()
    }

    /// `v~ - X~ b`: residuals of the fixed-effects regression.
    fn residuals(&self, v: &[f64], b: &[f64]) -> Vec<f64> {
        let vt = self.groups.demean(v);
        (0..v.len())
            .map(|i| vt[i] - (0..b.len()).map(|j| self.xt[(i, j)] * b[j]).sum::<f64>())
            .collect()
    }

    /// `mean_group(v) + X~ b`: fitted values of the fixed-effects regression.
    fn fitted(&self, v: &[f64], b: &[f64]) -> Vec<f64> {
        let m = self.groups.means(v);
        (0..v.len())
            .map(|i| {
                m[self.groups.codes[i]] + (0..b.len()).map(|j| self.xt[(i, j)] * b[j]).sum::<f64>()
            })
            .collect()
    }
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
