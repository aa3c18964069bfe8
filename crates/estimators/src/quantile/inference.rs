//! Standard errors of a linear quantile regression, as R quantreg's `summary.rq`.
//!
//! Owns: `iid` (Koenker-Bassett with quantreg's sparsity regression), `nid` (Hendricks-Koenker
//! sandwich from refits at `tau ± h`), `ker` (Powell kernel sandwich), and the seeded pairs and
//! whole-cluster bootstraps.
//! Deliberately does not own: the point estimate (the caller's solver result) or rank-inversion
//! intervals.

use faer::Mat;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use statrs::distribution::{Continuous, ContinuousCDF};

use super::design::{
    cross_product, residuals_of, shared_gram_inverse, small_product, weighted_gram_inverse,
    x_times, Design,
};
use super::preprocess::quantile_type7;
use super::simplex::barrodale_roberts;
use super::{bandwidth, solve, standard_normal, Bandwidth, Problem, Solution};
use crate::error::EstimError;

/// What the standard errors need from a fit besides its coefficients.
pub(super) struct Inference<'a> {
    /// The design and response, with the solver of the fit (the refits use the same).
    pub(super) problem: &'a Problem<'a>,
    /// `X'X`.
    pub(super) gram: &'a Mat<f64>,
    pub(super) tau: f64,
    pub(super) bandwidth: Bandwidth,
}

/// The coefficients of the `nid` refits at `tau + h` and `tau - h`, and `h`.
pub(super) struct NidRefits {
    hi: Vec<f64>,
    lo: Vec<f64>,
    h: f64,
}

impl NidRefits {
    /// The refits at `tau + h` and `tau - h` (the first error, `hi`'s before `lo`'s).
    pub(super) fn of(
        hi: Result<Solution, EstimError>,
        lo: Result<Solution, EstimError>,
        h: f64,
    ) -> Result<Self, EstimError> {
        Ok(Self {
            hi: hi?.coef,
            lo: lo?.coef,
            h,
        })
    }
}

impl Inference<'_> {
    /// `summary.rq(se = "iid")`: `tau (1 - tau) s^2 (X'X)^{-1}`, with the sparsity `s` the slope of
    /// a median regression of the sorted residuals nearest zero on their ranks.
    pub(super) fn iid(&self, residuals: &[f64]) -> Result<Mat<f64>, EstimError> {
        let (n, k) = (self.problem.design.n, self.problem.design.k);
        let xxinv = shared_gram_inverse(self.problem.design)?;
        // Residuals this close to zero are the basic observations of the fit.
        let near_zero = f64::EPSILON.sqrt();
        let pz = residuals.iter().filter(|r| r.abs() < near_zero).count();
        let bw = bandwidth(self.tau, n, self.bandwidth);
        let h = (k + 1).max((n as f64 * bw).ceil() as usize);
        let last = h + pz + 1; // 1-based rank of the last residual used
        if last > n {
            return Err(EstimError::TooFewObservations { n, k: last });
        }
        let mut by_size: Vec<usize> = (0..n).collect();
        // Stable, as R's order(): ties keep their row order.
        by_size.sort_by(|&a, &b| residuals[a].abs().total_cmp(&residuals[b].abs()));
        let ranks: Vec<usize> = (pz + 1..=last).collect();
        let mut picked: Vec<f64> = ranks.iter().map(|&r| residuals[by_size[r - 1]]).collect();
        picked.sort_by(f64::total_cmp);
        let xt = Design {
            n: ranks.len(),
            k: 2,
            data: ranks
                .iter()
                .flat_map(|&r| [1.0, r as f64 / (n - k) as f64])
                .collect(),
        };
        let sparsity = barrodale_roberts(&xt, &picked, 0.5)?.coef[1];
        let factor = sparsity * sparsity * self.tau * (1.0 - self.tau);
        Ok(Mat::from_fn(k, k, |r, c| factor * xxinv[(r, c)]))
    }

    /// The `h` of `nid` and `ker`: the bandwidth, halved until `tau ± h` stays inside (0, 1).
    pub(super) fn local_bandwidth(&self) -> f64 {
        let mut h = bandwidth(self.tau, self.problem.design.n, self.bandwidth);
        while self.tau - h < 0.0 || self.tau + h > 1.0 {
            h /= 2.0;
        }
        h
    }

    /// The two refits of `nid`, side by side on the rayon pool: each is sequential, so running
    /// them together halves the wall time on two cores without making the result depend on the
    /// threads.
    pub(super) fn nid_refits(&self) -> Result<NidRefits, EstimError> {
        let h = self.local_bandwidth();
        let (hi, lo) = rayon::join(
            || self.problem.solve(self.tau + h),
            || self.problem.solve(self.tau - h),
        );
        NidRefits::of(hi, lo, h)
    }

    /// `summary.rq(se = "nid")`: Huber sandwich `tau (1 - tau) H^{-1} X'X H^{-1}`, `H = X'FX`, with
    /// densities `f_i = max(0, 2h / (x_i'(b(tau + h) - b(tau - h)) - eps))` from the two refits.
    pub(super) fn nid(
        &self,
        refits: NidRefits,
        messages: &mut Vec<String>,
    ) -> Result<Mat<f64>, EstimError> {
        let NidRefits { hi, lo, h } = refits;
        let diff: Vec<f64> = hi.iter().zip(&lo).map(|(a, b)| a - b).collect();
        let dyhat = x_times(self.problem.design, &diff);
        let non_positive = dyhat.iter().filter(|&&d| d <= 0.0).count();
        if non_positive > 0 {
            messages.push(format!("{non_positive} non-positive fis"));
        }
        let eps = f64::EPSILON.sqrt();
        let f: Vec<f64> = dyhat
            .iter()
            .map(|d| (2.0 * h / (d - eps)).max(0.0))
            .collect();
        if f.iter().any(|v| !v.is_finite()) {
            return Err(EstimError::Numerical {
                message: "infinite density estimate in `nid` standard errors".to_string(),
            });
        }
        self.sandwich(&f)
    }

    /// `summary.rq(se = "ker")`: the same sandwich with Powell's kernel densities
    /// `phi(u_i / h) / h`, `h` rescaled to residual units by `min(sd, IQR / 1.34)`.
    pub(super) fn ker(&self, coef: &[f64]) -> Result<Mat<f64>, EstimError> {
        let n = self.problem.design.n;
        if n < 2 {
            return Err(EstimError::TooFewObservations { n, k: 2 });
        }
        let h = self.local_bandwidth();
        let uhat = residuals_of(self.problem.design, self.problem.y, coef);
        let normal = standard_normal();
        let mean = uhat.iter().sum::<f64>() / n as f64;
        let sd = (uhat.iter().map(|u| (u - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
        let iqr = (quantile_type7(&uhat, 0.75) - quantile_type7(&uhat, 0.25)) / 1.34;
        let h = (normal.inverse_cdf(self.tau + h) - normal.inverse_cdf(self.tau - h)) * sd.min(iqr);
        let f: Vec<f64> = uhat.iter().map(|u| normal.pdf(u / h) / h).collect();
        self.sandwich(&f)
    }

    fn sandwich(&self, f: &[f64]) -> Result<Mat<f64>, EstimError> {
        let fxxinv = weighted_gram_inverse(self.problem.design, Some(f))?;
        let t = self.tau * (1.0 - self.tau);
        let cov = small_product(&small_product(&fxxinv, self.gram), &fxxinv);
        Ok(Mat::from_fn(
            self.problem.design.k,
            self.problem.design.k,
            |r, c| t * cov[(r, c)],
        ))
    }

    /// Covariance of `reps` bootstrap estimates. Replicate `b` draws its rows from its own
    /// ChaCha8 stream seeded by the `b`-th number of a ChaCha8 generator seeded with `seed`, so
    /// the result depends on the seed only, never on the number of threads.
    pub(super) fn bootstrap(
        &self,
        reps: usize,
        seed: u64,
        clusters: Option<&[u32]>,
        messages: &mut Vec<String>,
    ) -> Result<Mat<f64>, EstimError> {
        let (n, k) = (self.problem.design.n, self.problem.design.k);
        if reps < 2 {
            return Err(EstimError::InvalidOption {
                message: format!("bootstrap needs at least 2 replications, got `{reps}`"),
            });
        }
        let groups = match clusters {
            None => None,
            Some(codes) if codes.len() != n => {
                return Err(EstimError::InvalidOption {
                    message: format!(
                        "bootstrap clusters have {} entries but the data has `{n}` rows",
                        codes.len()
                    ),
                });
            }
            Some(codes) => Some(cluster_members(codes)),
        };
        if groups.as_ref().is_some_and(|g| g.len() < 2) {
            return Err(EstimError::InvalidOption {
                message: "cluster bootstrap needs at least 2 clusters".to_string(),
            });
        }
        let mut master = ChaCha8Rng::seed_from_u64(seed);
        let seeds: Vec<u64> = (0..reps).map(|_| master.random()).collect();
        let draws: Vec<Option<Vec<f64>>> = seeds
            .par_iter()
            .map(|&s| {
                let mut rng = ChaCha8Rng::seed_from_u64(s);
                let rows: Vec<usize> = match &groups {
                    None => (0..n).map(|_| rng.random_range(0..n)).collect(),
                    Some(members) => (0..members.len())
                        .flat_map(|_| members[rng.random_range(0..members.len())].iter().copied())
                        .collect(),
                };
                let sub = self.problem.design.select(&rows);
                let sub_y: Vec<f64> = rows.iter().map(|&i| self.problem.y[i]).collect();
                if sub.n < k || sub.rank(&cross_product(&sub)) < k {
                    return None;
                }
                solve(&sub, &sub_y, self.tau, self.problem.method)
                    .ok()
                    .map(|s| s.coef)
            })
            .collect();
        let good: Vec<&Vec<f64>> = draws.iter().flatten().collect();
        let failed = reps - good.len();
        if failed > 0 {
            messages.push(format!(
                "{failed} of {reps} bootstrap draws had a singular design and were skipped"
            ));
        }
        if good.len() < 2 {
            return Err(EstimError::Numerical {
                message: "fewer than 2 usable bootstrap draws".to_string(),
            });
        }
        let b = good.len() as f64;
        let mean: Vec<f64> = (0..k)
            .map(|j| good.iter().map(|d| d[j]).sum::<f64>() / b)
            .collect();
        let mut cov = Mat::<f64>::zeros(k, k);
        for d in &good {
            for r in 0..k {
                for c in 0..k {
                    cov[(r, c)] += (d[r] - mean[r]) * (d[c] - mean[c]);
                }
            }
        }
        Ok(Mat::from_fn(k, k, |r, c| cov[(r, c)] / (b - 1.0)))
    }
}

/// Rows of each cluster, clusters in increasing code order.
fn cluster_members(codes: &[u32]) -> Vec<Vec<usize>> {
    let mut map: std::collections::BTreeMap<u32, Vec<usize>> = std::collections::BTreeMap::new();
    for (i, &c) in codes.iter().enumerate() {
        map.entry(c).or_default().push(i);
    }
    map.into_values().collect()
}
