//! Least squares on a (possibly demeaned) design, and the dense linear algebra shared by the
//! estimators.
//!
//! Owns: the tall-skinny QR ([`tall_r`]: Householder QR of row blocks in parallel, then of the
//! stacked triangular factors; as stable as one Householder QR and free of faer's spinning
//! thread barriers, which starve on a busy two-core machine), collinearity detection from the
//! Gram matrix `R'R` ([`independent_columns`]: columns absorbed by the fixed effects, then a
//! rank-revealing Cholesky in column order, so the later of two collinear variables is the one
//! dropped, as in fixest), least squares from the triangular factor of `[X y]`
//! ([`least_squares`]), and parallel kernels on column slices (`X b`, weighted Gram matrices,
//! per-cluster sums). Small k x k work (eigenvalues, inverses) goes through faer.
//! Deliberately does not own: fixed effects, variance estimation, naming of coefficients.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::qr::no_pivoting::factor::{
    qr_in_place, qr_in_place_scratch, recommended_block_size,
};
use faer::{Accum, Mat, MatRef, Par, Side};
use rayon::prelude::*;

use crate::error::EstimError;

/// Rows per block in the parallel kernels: large enough to amortise the per-block work, small
/// enough to stay in cache and to balance two threads.
const BLOCK_ROWS: usize = 16_384;

/// Relative tolerance of the collinearity checks (fixest's `collin.tol`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CollinearityOptions {
    pub tol: f64,
}

impl Default for CollinearityOptions {
    fn default() -> Self {
        Self { tol: 1e-10 }
    }
}

fn row_blocks(n: usize) -> Vec<(usize, usize)> {
    (0..n)
        .step_by(BLOCK_ROWS)
        .map(|s| (s, (s + BLOCK_ROWS).min(n)))
        .collect()
}

/// `a b` for small matrices, sequentially.
pub(crate) fn product(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    let mut g = Mat::<f64>::zeros(a.nrows(), b.ncols());
    faer::linalg::matmul::matmul(g.as_mut(), Accum::Replace, a, b, 1.0, Par::Seq);
    g
}

/// `a' a` for small matrices, sequentially.
pub(crate) fn small_gram(a: MatRef<'_, f64>) -> Mat<f64> {
    product(a.transpose(), a)
}

/// Householder QR of `a` (sequential); returns the p x p upper-triangular factor (rows beyond
/// `min(m, p)` are zero).
fn qr_r_factor(mut a: Mat<f64>) -> Mat<f64> {
    let (m, p) = a.shape();
    let mut r = Mat::<f64>::zeros(p, p);
    if m == 0 || p == 0 {
        return r;
    }
    let size = m.min(p);
    let block = recommended_block_size::<f64>(m, p);
    let mut coeff = Mat::<f64>::zeros(block, size);
    let mut mem = MemBuffer::new(qr_in_place_scratch::<f64>(
        m,
        p,
        block,
        Par::Seq,
        Default::default(),
    ));
    qr_in_place(
        a.as_mut(),
        coeff.as_mut(),
        Par::Seq,
        MemStack::new(&mut mem),
        Default::default(),
    );
    for i in 0..size {
        for j in i..p {
            r[(i, j)] = a[(i, j)];
        }
    }
    r
}

/// Upper-triangular `R` (p x p) of a QR decomposition of the tall matrix whose columns are
/// `cols` (all of one length), so `R'R = A'A`. Row blocks are factorised in parallel and their
/// factors stacked and factorised again (TSQR).
pub(crate) fn tall_r(cols: &[&[f64]]) -> Mat<f64> {
    let p = cols.len();
    let n = cols.first().map_or(0, |c| c.len());
    let factors: Vec<Mat<f64>> = row_blocks(n)
        .into_par_iter()
        .map(|(s, e)| qr_r_factor(Mat::from_fn(e - s, p, |i, j| cols[j][s + i])))
        .collect();
    if factors.len() == 1 {
        return factors
            .into_iter()
            .next()
            .unwrap_or_else(|| Mat::zeros(p, p));
    }
    let stacked = Mat::from_fn(factors.len() * p, p, |i, j| factors[i / p][(i % p, j)]);
    qr_r_factor(stacked)
}

/// Triangular factor of the columns `keep` of the matrix whose factor is `r` (re-triangularising
/// the selected columns of `r`, which is exact in exact arithmetic and stable in floating point).
pub(crate) fn sub_r(r: MatRef<'_, f64>, keep: &[usize]) -> Mat<f64> {
    qr_r_factor(Mat::from_fn(r.nrows(), keep.len(), |i, j| r[(i, keep[j])]))
}

/// `X b` for the matrix with columns `cols`, in parallel. Each row's sum runs over the columns
/// in order from zero; the result is written straight into fresh memory (no zero fill first).
pub(crate) fn x_times(cols: &[&[f64]], b: &[f64]) -> Vec<f64> {
    let n = cols.first().map_or(0, |c| c.len());
    let mut out = Vec::with_capacity(n);
    out.par_extend((0..n).into_par_iter().with_min_len(BLOCK_ROWS).map(|i| {
        cols.iter()
            .zip(b)
            .fold(0.0, |acc, (col, &bj)| acc + bj * col[i])
    }));
    out
}

/// `Q = X R^-1` (n x k) for the matrix `X` with columns `cols` and the nonsingular
/// upper-triangular `r` (k x k) of its QR decomposition, by forward substitution row by row in
/// parallel: column `j` of `Q` is `(x_j - sum_{m<j} R_mj q_m) / R_jj`. A sandwich built from
/// `Q` and `R^-1` loses digits in proportion to the condition number of `X`; one built from the
/// explicit `(X'X)^-1` loses them in proportion to its square (see [`crate::vcov::sandwich_from_r`]).
pub(crate) fn times_upper_inverse(
    cols: &[&[f64]],
    r: MatRef<'_, f64>,
) -> Result<Mat<f64>, EstimError> {
    let k = cols.len();
    let n = cols.first().map_or(0, |c| c.len());
    if r.nrows() != k
        || r.ncols() != k
        || (0..k).any(|j| r[(j, j)] == 0.0 || !r[(j, j)].is_finite())
    {
        return Err(EstimError::Numerical {
            message: "singular design matrix".into(),
        });
    }
    let mut q = Mat::<f64>::zeros(n, k);
    for j in 0..k {
        let (done, rest) = q.as_mut().split_at_col_mut(j);
        let done = done.as_ref();
        let mut qj = rest.col_mut(0);
        let out = qj
            .as_mut()
            .try_as_col_major_mut()
            .expect("matrix columns are contiguous")
            .as_slice_mut();
        let prev: Vec<&[f64]> = (0..j)
            .map(|m| {
                done.col(m)
                    .try_as_col_major()
                    .expect("matrix columns are contiguous")
                    .as_slice()
            })
            .collect();
        let rjj = r[(j, j)];
        out.par_chunks_mut(BLOCK_ROWS)
            .enumerate()
            .for_each(|(block, o)| {
                let s = block * BLOCK_ROWS;
                let len = o.len();
                o.copy_from_slice(&cols[j][s..s + len]);
                for (m, qm) in prev.iter().enumerate() {
                    let rmj = r[(m, j)];
                    for (oi, v) in o.iter_mut().zip(&qm[s..s + len]) {
                        *oi -= rmj * v;
                    }
                }
                for oi in o.iter_mut() {
                    *oi /= rjj;
                }
            });
    }
    Ok(q)
}

/// `S R^-1` for a small matrix `S` (one row per cluster, k columns) and the nonsingular
/// upper-triangular `r` (k x k), by forward substitution row by row: the cluster sums of
/// `Q = X R^-1` are the cluster sums of `X` times `R^-1`, so the clustered sandwich needs no
/// n x k matrix `Q`.
pub(crate) fn rows_times_upper_inverse(
    s: MatRef<'_, f64>,
    r: MatRef<'_, f64>,
) -> Result<Mat<f64>, EstimError> {
    let k = r.nrows();
    if s.ncols() != k
        || r.ncols() != k
        || (0..k).any(|j| r[(j, j)] == 0.0 || !r[(j, j)].is_finite())
    {
        return Err(EstimError::Numerical {
            message: "singular design matrix".into(),
        });
    }
    let mut t = Mat::<f64>::zeros(s.nrows(), k);
    for g in 0..s.nrows() {
        for j in 0..k {
            let mut v = s[(g, j)];
            for m in 0..j {
                v -= t[(g, m)] * r[(m, j)];
            }
            t[(g, j)] = v / r[(j, j)];
        }
    }
    Ok(t)
}

/// `y - X b`, in parallel.
pub(crate) fn residuals(cols: &[&[f64]], y: &[f64], b: &[f64]) -> Vec<f64> {
    let mut fitted = x_times(cols, b);
    fitted
        .par_iter_mut()
        .zip(y.par_iter())
        .for_each(|(f, &yi)| *f = yi - *f);
    fitted
}

/// `sum_i e_i^2 x_i x_i'` (or `X'X` without `e`) for the matrix with columns `cols`, in
/// parallel. Block results are added in block order, never in rayon's reduction order, so the
/// bits do not depend on the number of threads.
pub(crate) fn weighted_gram(cols: &[&[f64]], e: Option<&[f64]>) -> Mat<f64> {
    let p = cols.len();
    let n = cols.first().map_or(0, |c| c.len());
    let blocks: Vec<Mat<f64>> = row_blocks(n)
        .into_par_iter()
        .map(|(s, end)| {
            let block = Mat::from_fn(end - s, p, |i, j| {
                cols[j][s + i] * e.map_or(1.0, |e| e[s + i])
            });
            small_gram(block.as_ref())
        })
        .collect();
    blocks.iter().fold(Mat::zeros(p, p), |acc, b| {
        Mat::from_fn(p, p, |i, j| acc[(i, j)] + b[(i, j)])
    })
}

/// How many row ranges [`cluster_sums`] splits the rows into: fixed, not the thread count, so
/// that results are bit-identical however many threads run them.
const CLUSTER_SUM_PARTS: usize = 4;

/// Per-cluster sums `sum_{i in g} x_i e_i` (n_groups x p), in parallel over row ranges.
pub(crate) fn cluster_sums(cols: &[&[f64]], e: &[f64], codes: &[u32], n_groups: usize) -> Mat<f64> {
    let p = cols.len();
    let n = e.len();
    let step = n.div_ceil(CLUSTER_SUM_PARTS).max(1);
    let partials: Vec<Vec<f64>> = (0..n)
        .step_by(step)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|s| {
            let end = (s + step).min(n);
            let mut acc = vec![0.0; n_groups * p];
            for (j, col) in cols.iter().enumerate() {
                let out = &mut acc[j * n_groups..(j + 1) * n_groups];
                for i in s..end {
                    out[codes[i] as usize] += col[i] * e[i];
                }
            }
            acc
        })
        .collect();
    Mat::from_fn(n_groups, p, |g, j| {
        partials.iter().map(|acc| acc[j * n_groups + g]).sum()
    })
}

/// Eigenvalues (ascending) and eigenvectors (columns) of a symmetric matrix.
pub(crate) fn sym_eigen(a: MatRef<'_, f64>) -> Option<(Vec<f64>, Mat<f64>)> {
    let evd = a.self_adjoint_eigen(Side::Lower).ok()?;
    let s = evd.S().column_vector();
    let values = (0..s.nrows()).map(|i| s[i]).collect();
    Some((values, evd.U().to_owned()))
}

/// Inverse of a symmetric positive definite matrix, `None` if it is not positive definite.
pub(crate) fn spd_inverse(a: MatRef<'_, f64>) -> Option<Mat<f64>> {
    use faer::linalg::solvers::DenseSolveCore;
    let llt = a.llt(Side::Lower).ok()?;
    Some(llt.inverse())
}

/// Upper Cholesky factor `R` (positive diagonal) with `R'R = a`.
pub(crate) fn cholesky_upper(a: MatRef<'_, f64>) -> Option<Mat<f64>> {
    let llt = a.llt(Side::Lower).ok()?;
    Some(llt.L().transpose().to_owned())
}

/// Symmetric square root of a positive semi-definite matrix (negative eigenvalues from rounding
/// are treated as zero).
pub(crate) fn sym_sqrt(a: MatRef<'_, f64>) -> Option<Mat<f64>> {
    let (values, vectors) = sym_eigen(a)?;
    let k = a.nrows();
    let roots: Vec<f64> = values.iter().map(|&l| l.max(0.0).sqrt()).collect();
    Some(Mat::from_fn(k, k, |i, j| {
        (0..k)
            .map(|m| vectors[(i, m)] * roots[m] * vectors[(j, m)])
            .sum()
    }))
}

/// `R^-1` of a nonsingular upper-triangular matrix.
pub(crate) fn upper_inverse(r: MatRef<'_, f64>) -> Result<Mat<f64>, EstimError> {
    let k = r.ncols();
    if (0..k).any(|j| r[(j, j)] == 0.0 || !r[(j, j)].is_finite()) {
        return Err(EstimError::Numerical {
            message: "singular design matrix".into(),
        });
    }
    let mut rinv = Mat::<f64>::identity(k, k);
    faer::linalg::triangular_solve::solve_upper_triangular_in_place(r, rinv.as_mut(), Par::Seq);
    Ok(rinv)
}

/// Verdict of [`independent_columns`] on one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnStatus {
    Kept,
    /// No variation left: all zero, or absorbed by the fixed effects.
    Absorbed,
    /// A linear combination of the kept columns before it.
    Collinear,
    /// Its sum of squares is not finite: values so large (about 1e154 and beyond) that their
    /// squares overflow a double, so nothing can be estimated from it.
    Overflow,
}

/// Which columns to keep, from their Gram matrix `g = X'X`.
///
/// A column is [`ColumnStatus::Absorbed`] when its sum of squares is zero, or at most `tol`
/// times `reference_ss` (its centred sum of squares before the fixed effects were absorbed, so a
/// variable constant within groups goes). It is [`ColumnStatus::Collinear`] when its squared
/// distance to the span of the kept columns before it is below `tol` times its own sum of
/// squares (a rank-revealing Cholesky of the scaled Gram matrix, in column order).
pub fn independent_columns(
    g: MatRef<'_, f64>,
    reference_ss: Option<&[f64]>,
    opts: &CollinearityOptions,
) -> Vec<ColumnStatus> {
    let k = g.ncols();
    let mut status: Vec<ColumnStatus> = (0..k)
        .map(|j| {
            let ss = g[(j, j)];
            let absorbed = reference_ss.is_some_and(|r| ss <= opts.tol * r[j]);
            if !ss.is_finite() {
                ColumnStatus::Overflow
            } else if ss > 0.0 && !absorbed {
                ColumnStatus::Kept
            } else {
                ColumnStatus::Absorbed
            }
        })
        .collect();
    let keep = |status: &[ColumnStatus], j: usize| status[j] == ColumnStatus::Kept;
    let scale: Vec<f64> = (0..k).map(|j| g[(j, j)].max(0.0).sqrt()).collect();
    let c = |i: usize, j: usize| g[(i, j)] / (scale[i] * scale[j]);
    let mut r = Mat::<f64>::zeros(k, k);
    for j in 0..k {
        if !keep(&status, j) {
            continue;
        }
        let mut d = 1.0;
        for m in 0..j {
            if keep(&status, m) {
                d -= r[(m, j)] * r[(m, j)];
            }
        }
        // NaN (from a degenerate Gram matrix) counts as collinear too.
        let independent = d >= opts.tol;
        if !independent {
            status[j] = ColumnStatus::Collinear;
            continue;
        }
        let rjj = d.sqrt();
        r[(j, j)] = rjj;
        for i in j + 1..k {
            if !keep(&status, i) {
                continue;
            }
            let mut v = c(j, i);
            for m in 0..j {
                if keep(&status, m) {
                    v -= r[(m, j)] * r[(m, i)];
                }
            }
            r[(j, i)] = v / rjj;
        }
    }
    status
}

/// Result of [`least_squares`].
#[derive(Debug, Clone)]
pub struct LeastSquares {
    pub coef: Vec<f64>,
    pub resid: Vec<f64>,
    /// `(X'X)^-1`.
    pub bread: Mat<f64>,
}

/// Coefficients and `(X'X)^-1` from the triangular factor of `[X y]` (y last).
pub(crate) fn solve_from_r(r_aug: MatRef<'_, f64>) -> Result<(Vec<f64>, Mat<f64>), EstimError> {
    let k = r_aug.ncols() - 1;
    let r = r_aug.submatrix(0, 0, k, k);
    let rinv = upper_inverse(r)?;
    let coef = (0..k)
        .map(|i| (i..k).map(|j| rinv[(i, j)] * r_aug[(j, k)]).sum())
        .collect();
    Ok((coef, product(rinv.as_ref(), rinv.transpose())))
}

/// Least squares of `y` on the full-column-rank matrix with columns `x` through a (tall-skinny)
/// Householder QR of `[X y]`: accurate to the condition number of `X`, not its square.
pub fn least_squares(x: &[&[f64]], y: &[f64]) -> Result<LeastSquares, EstimError> {
    let (n, k) = (y.len(), x.len());
    if n < k {
        return Err(EstimError::TooFewObservations { n, k });
    }
    if k == 0 {
        return Ok(LeastSquares {
            coef: Vec::new(),
            resid: y.to_vec(),
            bread: Mat::zeros(0, 0),
        });
    }
    let mut cols = x.to_vec();
    cols.push(y);
    let r = tall_r(&cols);
    let (coef, bread) = solve_from_r(r.as_ref())?;
    let resid = residuals(x, y, &coef);
    Ok(LeastSquares { coef, resid, bread })
}

/// Column slices of a matrix whose columns are contiguous (owned faer matrices are).
pub(crate) fn columns(m: MatRef<'_, f64>) -> Vec<&[f64]> {
    (0..m.ncols())
        .map(|j| {
            m.col(j)
                .try_as_col_major()
                .expect("matrix columns are contiguous")
                .as_slice()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols_of(m: &Mat<f64>) -> Vec<&[f64]> {
        columns(m.as_ref())
    }

    #[test]
    fn exact_fit_and_bread() {
        // y = 1 + 2 x exactly, on more rows than one block so the TSQR combine step runs.
        let n = 40_000;
        let x = Mat::from_fn(n, 2, |i, j| if j == 0 { 1.0 } else { (i % 97) as f64 });
        let y: Vec<f64> = (0..n).map(|i| 1.0 + 2.0 * (i % 97) as f64).collect();
        let ls = least_squares(&cols_of(&x), &y).unwrap();
        assert!((ls.coef[0] - 1.0).abs() < 1e-10 && (ls.coef[1] - 2.0).abs() < 1e-10);
        assert!(ls.resid.iter().all(|r| r.abs() < 1e-9));
        let xtx_inv = spd_inverse(small_gram(x.as_ref()).as_ref()).unwrap();
        for i in 0..2 {
            for j in 0..2 {
                let rel = (xtx_inv[(i, j)] - ls.bread[(i, j)]).abs() / xtx_inv[(i, j)].abs();
                assert!(rel < 1e-10);
            }
        }
    }

    #[test]
    fn times_upper_inverse_gives_orthonormal_columns() {
        // More rows than one block, so the parallel split is exercised.
        let n = 40_000;
        let x = Mat::from_fn(n, 3, |i, j| match j {
            0 => 1.0,
            1 => (i % 13) as f64,
            _ => ((i * 7) % 11) as f64 + 1e-3 * (i % 13) as f64,
        });
        let r = tall_r(&cols_of(&x));
        let q = times_upper_inverse(&cols_of(&x), r.as_ref()).unwrap();
        let qtq = small_gram(q.as_ref());
        for i in 0..3 {
            for j in 0..3 {
                let target = if i == j { 1.0 } else { 0.0 };
                assert!(
                    (qtq[(i, j)] - target).abs() < 1e-10,
                    "{i} {j}: {}",
                    qtq[(i, j)]
                );
            }
        }
        let singular = Mat::<f64>::zeros(3, 3);
        assert!(times_upper_inverse(&cols_of(&x), singular.as_ref()).is_err());
    }

    #[test]
    fn tall_r_reproduces_the_gram_matrix() {
        let n = 50_000;
        let x = Mat::from_fn(n, 3, |i, j| ((i * (j + 3)) % 11) as f64 - 5.0 + j as f64);
        let r = tall_r(&cols_of(&x));
        let g1 = small_gram(r.as_ref());
        let g2 = small_gram(x.as_ref());
        for i in 0..3 {
            for j in 0..3 {
                assert!((g1[(i, j)] - g2[(i, j)]).abs() <= 1e-9 * g2[(i, i)]);
            }
        }
        let w = weighted_gram(&cols_of(&x), Some(&vec![1.0; n]));
        assert!((w[(1, 2)] - g2[(1, 2)]).abs() <= 1e-9 * g2[(1, 1)]);
    }

    #[test]
    fn later_collinear_column_is_dropped() {
        let x = Mat::from_fn(6, 4, |i, j| {
            let t = i as f64;
            match j {
                0 => 1.0,
                1 => t,
                2 => 3.0 - 2.0 * t,
                _ => t * t,
            }
        });
        let g = small_gram(tall_r(&cols_of(&x)).as_ref());
        let keep = independent_columns(g.as_ref(), None, &CollinearityOptions::default());
        use ColumnStatus::*;
        assert_eq!(keep, vec![Kept, Kept, Collinear, Kept]);
    }

    #[test]
    fn absorbed_column_is_dropped() {
        let x = Mat::from_fn(3, 2, |i, j| if j == 0 { 1e-9 * i as f64 } else { i as f64 });
        let g = small_gram(x.as_ref());
        let keep = independent_columns(
            g.as_ref(),
            Some(&[10.0, 2.0]),
            &CollinearityOptions::default(),
        );
        assert_eq!(keep, vec![ColumnStatus::Absorbed, ColumnStatus::Kept]);
    }

    #[test]
    fn cluster_sums_of_q_are_cluster_sums_of_x_times_r_inverse() {
        let n = 200;
        let x0: Vec<f64> = (0..n).map(|i| ((i * 37) % 11) as f64 - 4.0).collect();
        let x1: Vec<f64> = (0..n)
            .map(|i| (i as f64).sin() * 3.0 + 1e-3 * i as f64)
            .collect();
        let e: Vec<f64> = (0..n).map(|i| ((i * 13) % 7) as f64 - 3.0).collect();
        let codes: Vec<u32> = (0..n).map(|i| (i % 9) as u32).collect();
        let cols = [x0.as_slice(), x1.as_slice()];
        let r = tall_r(&cols);
        let q = times_upper_inverse(&cols, r.as_ref()).unwrap();
        let via_q = cluster_sums(&columns(q.as_ref()), &e, &codes, 9);
        let sums = cluster_sums(&cols, &e, &codes, 9);
        let via_x = rows_times_upper_inverse(sums.as_ref(), r.as_ref()).unwrap();
        for g in 0..9 {
            for j in 0..2 {
                let (a, b) = (via_q[(g, j)], via_x[(g, j)]);
                assert!(
                    (a - b).abs() <= 1e-12 * (1.0 + a.abs()),
                    "{g} {j}: {a} vs {b}"
                );
            }
        }
        let singular = Mat::<f64>::zeros(2, 2);
        assert!(rows_times_upper_inverse(sums.as_ref(), singular.as_ref()).is_err());
    }

    #[test]
    fn cluster_sums_add_up() {
        let x = Mat::from_fn(5, 1, |i, _| (i + 1) as f64);
        let e = [1.0, 1.0, 2.0, 2.0, 1.0];
        let s = cluster_sums(&cols_of(&x), &e, &[0, 1, 0, 1, 1], 2);
        assert_eq!(s[(0, 0)], 1.0 + 6.0);
        assert_eq!(s[(1, 0)], 2.0 + 8.0 + 5.0);
    }
}
