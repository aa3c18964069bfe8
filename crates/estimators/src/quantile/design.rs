//! The design matrix of the quantile-regression solvers and the small dense algebra they share.
//!
//! Owns: [`Design`] (a row-major copy of the regressors: every solver walks observations row by
//! row), its rank test, and the products, cross-products, Cholesky solves and the sequential QR
//! behind the standard errors.
//! Deliberately does not own: any solver or estimator; it knows nothing of quantiles.

use faer::linalg::solvers::Solve;
use faer::{Mat, MatRef, Side};

use crate::error::EstimError;

/// Row-major copy of the design matrix: every solver walks observations row by row.
#[derive(Debug, Clone)]
pub(super) struct Design {
    pub(super) n: usize,
    pub(super) k: usize,
    pub(super) data: Vec<f64>,
}

impl Design {
    pub(super) fn from_mat(x: MatRef<'_, f64>) -> Self {
        let (n, k) = (x.nrows(), x.ncols());
        let mut data = Vec::with_capacity(n * k);
        for i in 0..n {
            data.extend((0..k).map(|j| x[(i, j)]));
        }
        Self { n, k, data }
    }

    pub(super) fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.k..(i + 1) * self.k]
    }

    /// Column-major copy of `diag(sqrt(w)) X` (or of `X`) for faer. The transpose runs over
    /// blocks of rows so each block of the row-major data is read from cache `k` times rather
    /// than the whole matrix from memory once per column.
    pub(super) fn to_mat(&self, weights: Option<&[f64]>) -> Mat<f64> {
        const BLOCK: usize = 512;
        let (n, k) = (self.n, self.k);
        let scale: Option<Vec<f64>> = weights.map(|w| w.iter().map(|v| v.sqrt()).collect());
        let mut m = Mat::<f64>::zeros(n, k);
        for start in (0..n).step_by(BLOCK) {
            let end = (start + BLOCK).min(n);
            for j in 0..k {
                let col = &mut m.col_as_slice_mut(j)[start..end];
                for (c, i) in col.iter_mut().zip(start..end) {
                    let x = self.data[i * k + j];
                    *c = scale.as_ref().map_or(1.0, |s| s[i]) * x;
                }
            }
        }
        m
    }

    pub(super) fn select(&self, rows: &[usize]) -> Self {
        let mut data = Vec::with_capacity(rows.len() * self.k);
        for &i in rows {
            data.extend_from_slice(self.row(i));
        }
        Self {
            n: rows.len(),
            k: self.k,
            data,
        }
    }

    /// Numerical rank with R's `qr()` criterion: a column is dependent when projecting out the
    /// kept columns leaves less than `1e-7` of its norm.
    pub(super) fn rank(&self) -> usize {
        if self.clearly_full_rank() {
            return self.k;
        }
        self.rank_gram_schmidt()
    }

    /// Fast check for the usual case: a blocked Householder QR gives, in `|R_jj|`, the norm of
    /// column `j` after projecting out all earlier columns. When every column keeps more than
    /// twice the `1e-7` threshold, the Gram-Schmidt rule below keeps every column too (their
    /// rounding differences are many orders of magnitude smaller than that margin); otherwise
    /// the exact rule decides.
    fn clearly_full_rank(&self) -> bool {
        let k = self.k;
        let m = self.to_mat(None);
        let norms: Vec<f64> = (0..k).map(|j| m.col(j).norm_l2()).collect();
        let r = qr_r_factor(m);
        (0..k).all(|j| norms[j] > 0.0 && r[(j, j)].abs() > 2e-7 * norms[j])
    }

    fn rank_gram_schmidt(&self) -> usize {
        let (n, k) = (self.n, self.k);
        let mut kept: Vec<Vec<f64>> = Vec::new();
        for j in 0..k {
            let mut v: Vec<f64> = (0..n).map(|i| self.data[i * k + j]).collect();
            let norm0 = dot(&v, &v).sqrt();
            if norm0 == 0.0 {
                continue;
            }
            // Two Gram-Schmidt passes keep the projection accurate for nearly dependent columns.
            for _ in 0..2 {
                for q in &kept {
                    let c = dot(q, &v);
                    v.iter_mut().zip(q).for_each(|(vi, qi)| *vi -= c * qi);
                }
            }
            let norm = dot(&v, &v).sqrt();
            if norm > 1e-7 * norm0 {
                v.iter_mut().for_each(|vi| *vi /= norm);
                kept.push(v);
            }
        }
        kept.len()
    }
}

pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub(super) fn residuals_of(design: &Design, y: &[f64], coef: &[f64]) -> Vec<f64> {
    (0..design.n)
        .map(|i| y[i] - dot(design.row(i), coef))
        .collect()
}

/// `(X' W X)^{-1}` through the QR decomposition of `sqrt(W) X`, as quantreg's `summary.rq` does.
pub(super) fn weighted_gram_inverse(
    design: &Design,
    weights: Option<&[f64]>,
) -> Result<Mat<f64>, EstimError> {
    let k = design.k;
    let r = qr_r_factor(design.to_mat(weights));
    let rmax = (0..k).map(|j| r[(j, j)].abs()).fold(0.0, f64::max);
    if (0..k).any(|j| {
        let d = r[(j, j)].abs();
        d.is_nan() || d <= 1e-12 * rmax
    }) {
        return Err(EstimError::Numerical {
            message:
                "singular weighted cross-product matrix in quantile-regression standard errors"
                    .to_string(),
        });
    }
    // R^{-1} by back substitution, then (R'R)^{-1} = R^{-1} R^{-T}.
    let mut rinv = Mat::<f64>::zeros(k, k);
    for c in 0..k {
        for row in (0..=c).rev() {
            let mut acc = if row == c { 1.0 } else { 0.0 };
            for m in row + 1..=c {
                acc -= r[(row, m)] * rinv[(m, c)];
            }
            rinv[(row, c)] = acc / r[(row, row)];
        }
    }
    Ok(small_product(&rinv, &rinv.transpose().to_owned()))
}

/// The `R` factor of a Householder QR of `a` (`n x k`, `n >= k`), computed sequentially. faer's
/// `Mat::qr` follows the global parallelism setting, and on a rayon pool its blocked updates
/// round differently for different thread counts; standard errors must not depend on those.
fn qr_r_factor(mut a: Mat<f64>) -> Mat<f64> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::qr::no_pivoting::factor;
    let (m, n) = a.shape();
    let block = factor::recommended_block_size::<f64>(m, n);
    let mut coeff = Mat::<f64>::zeros(block, m.min(n));
    let par = faer::Par::Seq;
    let mut buf = MemBuffer::new(factor::qr_in_place_scratch::<f64>(
        m,
        n,
        block,
        par,
        Default::default(),
    ));
    factor::qr_in_place(
        a.as_mut(),
        coeff.as_mut(),
        par,
        MemStack::new(&mut buf),
        Default::default(),
    );
    Mat::from_fn(n, n, |i, j| if i <= j { a[(i, j)] } else { 0.0 })
}

/// `a * b` for the small `k x k` matrices of the covariance, summed in a fixed order.
pub(super) fn small_product(a: &Mat<f64>, b: &Mat<f64>) -> Mat<f64> {
    Mat::from_fn(a.nrows(), b.ncols(), |r, c| {
        (0..a.ncols()).map(|m| a[(r, m)] * b[(m, c)]).sum()
    })
}

pub(super) fn cross_product(design: &Design) -> Mat<f64> {
    weighted_cross_product(design, &vec![1.0; design.n])
}

pub(super) fn x_times(design: &Design, v: &[f64]) -> Vec<f64> {
    (0..design.n).map(|i| dot(design.row(i), v)).collect()
}

pub(super) fn xt_times(design: &Design, v: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; design.k];
    for (i, vi) in v.iter().enumerate() {
        for (o, x) in out.iter_mut().zip(design.row(i)) {
            *o += x * vi;
        }
    }
    out
}

pub(super) fn weighted_cross_product(design: &Design, weights: &[f64]) -> Mat<f64> {
    let k = design.k;
    // Accumulate the lower triangle in a flat row-major buffer rather than through `Mat`
    // indexing: the inner loop then runs over contiguous memory in both the design row and the
    // accumulator and vectorises, while every cell still sums its terms in row order.
    // Rows with many zeros (fixed-effect dummies in a pooled regression: two non-zeros among
    // hundreds of columns) only touch the cells of their non-zero pairs; skipping exact zeros
    // leaves every sum unchanged.
    let mut acc = vec![0.0; k * k];
    let mut nz: Vec<usize> = Vec::with_capacity(k);
    for (row, wi) in design.data.chunks_exact(k).zip(weights) {
        nz.clear();
        nz.extend((0..k).filter(|&a| row[a] != 0.0));
        if nz.len() * 4 > k {
            for (a, &xa) in row.iter().enumerate() {
                let ra = wi * xa;
                for (cell, &xb) in acc[a * k..=a * k + a].iter_mut().zip(&row[..=a]) {
                    *cell += ra * xb;
                }
            }
            continue;
        }
        for (ia, &a) in nz.iter().enumerate() {
            let ra = wi * row[a];
            for &b in &nz[..=ia] {
                acc[a * k + b] += ra * row[b];
            }
        }
    }
    Mat::from_fn(k, k, |a, b| {
        if b <= a {
            acc[a * k + b]
        } else {
            acc[b * k + a]
        }
    })
}

pub(super) fn weighted_cholesky(
    design: &Design,
    weights: &[f64],
) -> Result<faer::linalg::solvers::Llt<f64>, EstimError> {
    weighted_cross_product(design, weights)
        .llt(Side::Lower)
        .map_err(|_| EstimError::Numerical {
            message: "singular design in the interior-point step of quantile regression"
                .to_string(),
        })
}

pub(super) fn chol_solve(chol: &faer::linalg::solvers::Llt<f64>, rhs: &[f64]) -> Vec<f64> {
    let mut m = Mat::from_fn(rhs.len(), 1, |i, _| rhs[i]);
    chol.solve_in_place(m.as_mut());
    (0..rhs.len()).map(|i| m[(i, 0)]).collect()
}

pub(super) fn weighted_solve(
    design: &Design,
    weights: &[f64],
    rhs: &[f64],
) -> Result<Vec<f64>, EstimError> {
    Ok(chol_solve(&weighted_cholesky(design, weights)?, rhs))
}
