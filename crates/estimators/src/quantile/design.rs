//! The design matrix of the quantile-regression solvers and the small dense algebra they share.
//!
//! Owns: [`Design`] (a row-major copy of the regressors: every solver walks observations row by
//! row), its rank test, and the products, cross-products, Cholesky solves and the sequential QR
//! behind the standard errors.
//! Deliberately does not own: any solver or estimator; it knows nothing of quantiles.

use faer::linalg::solvers::Solve;
use faer::{Mat, MatRef, Side};

use super::kernels::{accumulate_lower, lower_to_mat, row_dots, LANES};
use crate::error::EstimError;
use crate::recent::Recent;

/// Row-major copy of the design matrix: every solver walks observations row by row.
#[derive(Debug, Clone)]
pub(super) struct Design {
    pub(super) n: usize,
    pub(super) k: usize,
    pub(super) data: Vec<f64>,
}

impl Design {
    pub(super) fn from_mat(x: MatRef<'_, f64>) -> Self {
        const BLOCK: usize = 512;
        let (n, k) = (x.nrows(), x.ncols());
        let mut data = vec![0.0; n * k];
        // Column by column within blocks of rows: each block of the row-major copy is written
        // from cache, and a column-major input is read as contiguous runs.
        let cols: Vec<Option<&[f64]>> = (0..k)
            .map(|j| x.col(j).try_as_col_major().map(|c| c.as_slice()))
            .collect();
        for start in (0..n).step_by(BLOCK) {
            let end = (start + BLOCK).min(n);
            for (j, col) in cols.iter().enumerate() {
                for i in start..end {
                    data[i * k + j] = col.map_or_else(|| x[(i, j)], |c| c[i]);
                }
            }
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
    /// kept columns leaves less than `1e-7` of its norm. `gram` is `X'X` ([`cross_product`]),
    /// which the callers need anyway.
    pub(super) fn rank(&self, gram: &Mat<f64>) -> usize {
        if gram_clearly_full_rank(gram) || self.clearly_full_rank() {
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

/// The cheapest test for the usual case, from `X'X` alone: a Cholesky factorisation gives in
/// `L_jj^2` the squared norm of column `j` after projecting out the earlier columns. When every
/// column keeps more than `1e-8` of its squared norm (`1e-4` of its norm, 500 times the margin
/// of [`Design::clearly_full_rank`]), the rounding of forming `X'X` (relative `1e-16` times the
/// condition number that margin bounds, about `1e-8`) cannot hide a dependent column, and the QR
/// of the `n x k` matrix is not needed.
fn gram_clearly_full_rank(gram: &Mat<f64>) -> bool {
    let k = gram.nrows();
    let mut l = vec![0.0; k * k];
    for j in 0..k {
        let norm2 = gram[(j, j)];
        let mut d = norm2;
        for m in 0..j {
            d -= l[j * k + m] * l[j * k + m];
        }
        if !(norm2 > 0.0 && d > 1e-8 * norm2 && d.is_finite()) {
            return false;
        }
        let ljj = d.sqrt();
        l[j * k + j] = ljj;
        for i in j + 1..k {
            let mut v = gram[(i, j)];
            for m in 0..j {
                v -= l[i * k + m] * l[j * k + m];
            }
            l[i * k + j] = v / ljj;
        }
    }
    true
}

pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub(super) fn residuals_of(design: &Design, y: &[f64], coef: &[f64]) -> Vec<f64> {
    let mut fitted = x_times(design, coef);
    for (f, yi) in fitted.iter_mut().zip(y) {
        *f = yi - *f;
    }
    fitted
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
    Ok(upper_outer(&rinv))
}

/// `U U'` of an upper-triangular `U`, every cell `(r, c)` summed over `m` in order from `-0.0`
/// exactly as `small_product(U, U')` sums it, but cache-friendly: `U` is held row by row, the
/// terms `m < max(r, c)` (exact zeros below the diagonal) are skipped, and the product is
/// symmetric bit for bit (`a * b == b * a`), so only the lower triangle is summed. Skipping
/// zeros can only turn a sum that ends at `+0.0` into `-0.0`; such a cell is summed whole.
fn upper_outer(u: &Mat<f64>) -> Mat<f64> {
    const LANE: usize = 8;
    let k = u.nrows();
    // `0 * inf` is not zero: then every term counts.
    if !(0..k).all(|c| u.col(c).iter().all(|v| v.is_finite())) {
        return small_product(u, &u.transpose().to_owned());
    }
    // `t[m * k + c]` = `U[c, m]`: the cells `(r, c..c + LANE)` take contiguous terms.
    let t: Vec<f64> = (0..k * k).map(|at| u[(at % k, at / k)]).collect();
    let whole = |r: usize, c: usize| -> f64 { (0..k).map(|m| u[(r, m)] * u[(c, m)]).sum() };
    let mut out = Mat::<f64>::zeros(k, k);
    for r in 0..k {
        let row: Vec<f64> = (0..k).map(|m| u[(r, m)]).collect();
        for c0 in (0..=r).step_by(LANE) {
            let width = LANE.min(r + 1 - c0);
            let mut acc = [-0.0; LANE];
            for m in r..k {
                let a = row[m];
                let terms = &t[m * k + c0..m * k + c0 + width];
                for (s, &b) in acc.iter_mut().zip(terms) {
                    *s += a * b;
                }
            }
            for (l, &v) in acc.iter().enumerate().take(width) {
                let c = c0 + l;
                let v = if v == 0.0 && v.is_sign_negative() {
                    whole(r, c)
                } else {
                    v
                };
                out[(r, c)] = v;
                out[(c, r)] = v;
            }
        }
    }
    out
}

/// `(X'X)^{-1}` ([`weighted_gram_inverse`] without weights), shared by the fits of one design:
/// the `iid` standard errors of every quantile of a pooled regression with a few hundred
/// dummies need the same inverse, whose QR costs far more than comparing the design. Designs
/// of at least [`SHARED_MIN_K`] columns and at most [`SHARED_MAX_CELLS`] cells are kept
/// ([`crate::recent::Recent`]); others are computed each time.
pub(super) fn shared_gram_inverse(design: &Design) -> Result<Mat<f64>, EstimError> {
    static INVERSES: Recent<Result<Mat<f64>, EstimError>> = Recent::new();
    if design.k < SHARED_MIN_K || design.data.len() > SHARED_MAX_CELLS {
        return weighted_gram_inverse(design, None);
    }
    INVERSES.get_or_compute(&[&design.data, &[design.k as f64]], || {
        weighted_gram_inverse(design, None)
    })
}

/// Fewest columns for which [`shared_gram_inverse`] keeps a design: below, the QR is cheap.
pub(crate) const SHARED_MIN_K: usize = 32;
/// Most cells (`n x k`) of a design [`shared_gram_inverse`] keeps a copy of (32 MB).
pub(crate) const SHARED_MAX_CELLS: usize = 1 << 22;

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
    let mut out = vec![0.0; design.n];
    row_dots(&design.data, design.k, v, &mut out);
    out
}

pub(super) fn weighted_cross_product(design: &Design, weights: &[f64]) -> Mat<f64> {
    let k = design.k;
    let stride = k.next_multiple_of(LANES);
    let mut acc = vec![0.0; k * stride];
    accumulate_lower(&design.data, k, weights, &mut acc);
    lower_to_mat(&acc, k)
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `weighted_cross_product` as it was before rows were added in chunks and groups: one row
    /// at a time, one cell at a time.
    fn cross_product_by_cells(design: &Design, weights: &[f64]) -> Mat<f64> {
        let k = design.k;
        let mut acc = vec![0.0; k * k];
        for (row, wi) in design.data.chunks_exact(k).zip(weights) {
            let nz: Vec<usize> = (0..k).filter(|&a| row[a] != 0.0).collect();
            let pairs: Vec<usize> = if nz.len() * 4 > k {
                (0..k).collect()
            } else {
                nz
            };
            for (ia, &a) in pairs.iter().enumerate() {
                let ra = wi * row[a];
                for &b in &pairs[..=ia] {
                    acc[a * k + b] += ra * row[b];
                }
            }
        }
        Mat::from_fn(k, k, |a, b| acc[a.max(b) * k + a.min(b)])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// `U U'` by rows, lower triangle only and without the zeros below the diagonal equals
        /// the plain `small_product(U, U')` bit for bit, zeros of either sign included.
        #[test]
        fn upper_outer_equals_the_plain_product(
            k in 1usize..40,
            values in proptest::collection::vec(-3.0f64..3.0, 1600),
            zeros in proptest::collection::vec(0.0f64..1.0, 1600),
        ) {
            let u = Mat::from_fn(k, k, |r, c| match (r <= c, zeros[r * 40 + c]) {
                (false, _) => 0.0,
                (true, z) if z < 0.2 => 0.0,
                (true, z) if z < 0.3 => -0.0,
                (true, _) => values[r * 40 + c],
            });
            let got = upper_outer(&u);
            let expected = small_product(&u, &u.transpose().to_owned());
            for r in 0..k {
                for c in 0..k {
                    prop_assert_eq!(got[(r, c)].to_bits(), expected[(r, c)].to_bits());
                }
            }
        }

        /// The shared inverse is the inverse computed afresh, for a design seen before or not,
        /// and designs that differ only in the sign of a zero are told apart.
        #[test]
        fn shared_inverse_is_the_fresh_one(
            n in 40usize..80,
            values in proptest::collection::vec(-3.0f64..3.0, 4000),
            flip in 0usize..40,
        ) {
            let k = SHARED_MIN_K;
            let data: Vec<f64> = (0..n * k).map(|c| values[(c * 7) % 4000]).collect();
            let mut design = Design { n, k, data };
            let bits = |m: &Mat<f64>| (0..k * k).map(|c| m[(c / k, c % k)].to_bits()).collect::<Vec<_>>();
            let fresh = weighted_gram_inverse(&design, None).unwrap();
            for _ in 0..2 {
                prop_assert_eq!(bits(&shared_gram_inverse(&design).unwrap()), bits(&fresh));
            }
            design.data[flip] = 0.0;
            let mut other = design.clone();
            other.data[flip] = -0.0;
            let a = shared_gram_inverse(&design).unwrap();
            let b = shared_gram_inverse(&other).unwrap();
            prop_assert_eq!(bits(&a), bits(&weighted_gram_inverse(&design, None).unwrap()));
            prop_assert_eq!(bits(&b), bits(&weighted_gram_inverse(&other, None).unwrap()));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        /// Dense rows, rows of mostly zeros (dummies) and any mix of the two, any `k` and row
        /// count (so groups of four end early): the same sums bit for bit.
        #[test]
        fn grouped_cross_product_sums_as_one_row_at_a_time(
            k in 1usize..23,
            n in 0usize..40,
            values in proptest::collection::vec(-4.0f64..4.0, 1000),
            zeros in proptest::collection::vec(0.0f64..1.0, 1000),
            sparsity in 0.0f64..1.0,
        ) {
            let data: Vec<f64> = (0..n * k)
                .map(|c| if zeros[c % 997] < sparsity { 0.0 } else { values[c % 1000] })
                .collect();
            let weights: Vec<f64> = (0..n).map(|i| values[(7 * i + 1) % 1000].abs()).collect();
            let design = Design { n, k, data };
            let got = weighted_cross_product(&design, &weights);
            let expected = cross_product_by_cells(&design, &weights);
            for a in 0..k {
                for b in 0..k {
                    prop_assert_eq!(got[(a, b)].to_bits(), expected[(a, b)].to_bits());
                }
            }
        }

        /// The `X'X` shortcut of the rank test never calls a design full rank that R's rule
        /// (Gram-Schmidt, `1e-7`) calls deficient: the last column is a combination of the others
        /// plus noise of any size from `1e-14` to `1`.
        #[test]
        fn gram_shortcut_agrees_with_the_rank_rule(
            k in 2usize..8,
            n in 20usize..60,
            values in proptest::collection::vec(-3.0f64..3.0, 600),
            mix in proptest::collection::vec(-2.0f64..2.0, 8),
            noise_exp in -14.0f64..0.0,
        ) {
            let noise = 10f64.powf(noise_exp);
            let mut data = Vec::with_capacity(n * k);
            for i in 0..n {
                let row: Vec<f64> = (0..k - 1).map(|j| values[(i * k + j) % 600]).collect();
                let last = row.iter().zip(&mix).map(|(x, m)| x * m).sum::<f64>()
                    + noise * values[(i * 13 + 5) % 600];
                data.extend(row);
                data.push(last);
            }
            let design = Design { n, k, data };
            let gram = cross_product(&design);
            if gram_clearly_full_rank(&gram) {
                prop_assert_eq!(design.rank_gram_schmidt(), k);
            }
            // Clearly independent columns take the shortcut.
            if noise_exp > -1.0 {
                prop_assert!(gram_clearly_full_rank(&gram) || design.rank_gram_schmidt() < k);
            }
        }
    }
}
