//! One-way fixed effects for MMQR and Canay: group codes, group means and the within regression.
//!
//! Owns: input checks shared by both estimators, dense group codes independent of row order,
//! [`Grouping`] (group means, demeaning, members) and [`Within`] (least squares on the
//! within-demeaned regressors: coefficients, residuals, fitted values with the group effects).
//! Deliberately does not own: the estimators' steps or their variances.

use faer::linalg::solvers::SolveLstsq;
use faer::{Mat, MatRef};

use crate::error::EstimError;

pub(super) fn check_inputs(
    y: &[f64],
    x: MatRef<'_, f64>,
    groups: &[u32],
) -> Result<(), EstimError> {
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
pub(super) fn rows_in_multi_member_groups(groups: &[u32]) -> Vec<usize> {
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
pub(super) fn dense_codes(raw: &[u32]) -> (Vec<usize>, usize) {
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
pub(super) struct Grouping {
    pub(super) codes: Vec<usize>,
    pub(super) n_groups: usize,
    size: Vec<usize>,
}

impl Grouping {
    pub(super) fn new(raw: &[u32]) -> Self {
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

    pub(super) fn means(&self, v: &[f64]) -> Vec<f64> {
        let mut sum = vec![0.0; self.n_groups];
        for (&c, x) in self.codes.iter().zip(v) {
            sum[c] += x;
        }
        sum.iter()
            .zip(&self.size)
            .map(|(s, &m)| s / m as f64)
            .collect()
    }

    pub(super) fn demean(&self, v: &[f64]) -> Vec<f64> {
        let m = self.means(v);
        v.iter().zip(&self.codes).map(|(x, &c)| x - m[c]).collect()
    }

    pub(super) fn members(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.n_groups];
        for (i, &c) in self.codes.iter().enumerate() {
            out[c].push(i);
        }
        out
    }
}

/// The within-demeaned regressors with their QR factorisation: least squares on them is the
/// one-way fixed-effects regression.
pub(super) struct Within<'g> {
    pub(super) groups: &'g Grouping,
    pub(super) xt: Mat<f64>,
    qr: faer::linalg::solvers::Qr<f64>,
    /// `(X~'X~)^{-1}`.
    pub(super) bread: Mat<f64>,
}

impl<'g> Within<'g> {
    pub(super) fn new(groups: &'g Grouping, x: MatRef<'_, f64>) -> Result<Self, EstimError> {
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
    pub(super) fn coef(&self, v: &[f64]) -> Vec<f64> {
        let p = self.xt.ncols();
        let mut rhs = Mat::from_fn(v.len(), 1, |i, _| v[i]);
        self.qr.solve_lstsq_in_place(rhs.as_mut());
        (0..p).map(|j| rhs[(j, 0)]).collect()
    }

    /// `v~ - X~ b`: residuals of the fixed-effects regression.
    pub(super) fn residuals(&self, v: &[f64], b: &[f64]) -> Vec<f64> {
        let vt = self.groups.demean(v);
        (0..v.len())
            .map(|i| vt[i] - (0..b.len()).map(|j| self.xt[(i, j)] * b[j]).sum::<f64>())
            .collect()
    }

    /// `mean_group(v) + X~ b`: fitted values of the fixed-effects regression.
    pub(super) fn fitted(&self, v: &[f64], b: &[f64]) -> Vec<f64> {
        let m = self.groups.means(v);
        (0..v.len())
            .map(|i| {
                m[self.groups.codes[i]] + (0..b.len()).map(|j| self.xt[(i, j)] * b[j]).sum::<f64>()
            })
            .collect()
    }
}
