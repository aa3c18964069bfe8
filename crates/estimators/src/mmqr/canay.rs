//! Canay's (2011) two-step quantile regression with one-way fixed effects.
//!
//! Owns: the first step (within regression and the group effects `a_i`), the second step (the
//! quantile regression of `y - a_i` on `[1, x]`) and its standard errors: the second-step `rq`
//! ones or a bootstrap over whole groups.
//! Deliberately does not own: the quantile-regression solver ([`crate::quantile`]) or MMQR.

use faer::{Mat, MatRef};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::within::{check_inputs, Grouping, Within};
use crate::error::EstimError;
use crate::quantile::{rq, Bandwidth, RqFit, RqMethod, RqOptions, RqSe};

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
