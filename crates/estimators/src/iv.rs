//! Two-stage least squares and weak-instrument diagnostics.
//!
//! Owns: the first stage (every endogenous regressor on all instruments), the second stage
//! (outcome on the exogenous regressors and the fitted endogenous regressors, with residuals
//! from the structural regressors), and the diagnostics:
//! * per endogenous regressor, the first-stage test of the excluded instruments, Wald / q with
//!   the model's variance type and small-sample factor (fixest's `ivwald`; with iid errors this is
//!   exactly the classical F test, fixest's `ivf`), p-value from F(q, N - K) with the first
//!   stage's K;
//! * the Kleibergen-Paap (2006) rk Wald statistic for the full-rank null, with the normalisation of
//!   ranktest (Cholesky factors of the partialled instruments' and endogenous regressors'
//!   cross-products) and an unscaled robust or clustered covariance; the F form divides it by the
//!   number of excluded instruments and by the model's small-sample factor for the first stage.
//!   That reproduces ivreg2's `rkf` (`chi2 / N * (N - L) / q`, or with clusters
//!   `chi2 / (N - 1) * (N - L) * (G - 1) / G / q`) and, with one endogenous regressor, equals the
//!   first-stage robust Wald F above;
//! * the Cragg-Donald F: the smallest eigenvalue of `(V'V)^-1 X'P X` (X the endogenous
//!   regressors and P the projection on the excluded instruments, both after partialling out
//!   the exogenous regressors and fixed effects; V the first-stage residuals) times
//!   `(N - K) / q`; with one endogenous regressor this is the iid first-stage F.
//!
//! All cross-products come from one triangular factor `R` of `[exog | excluded | endo]`: with
//! blocks A, B, C, `R_BB'R_BB` is the cross-product of the partialled instruments, `R_CC'R_CC`
//! that of the first-stage residuals and `R_BC'R_BC` the part of the endogenous regressors the
//! excluded instruments explain, so no difference of large numbers is ever formed.
//!
//! Deliberately does not own: collinearity decisions and names (the caller drops columns and
//! reports), fixed effects (inputs are already demeaned), the variance of the second stage
//! (built by the caller from the scores with [`crate::vcov`]).

use faer::Mat;

use crate::error::EstimError;
use crate::ols::{
    cholesky_upper, independent_columns, product, residuals, small_gram, solve_from_r, spd_inverse,
    sym_eigen, sym_sqrt, tall_r, upper_inverse, x_times, CollinearityOptions, ColumnStatus,
};
use crate::vcov::{iid_vcov, meat, sandwich_from_r, SmallSample, VcovKind};

/// Result of the first stage.
#[derive(Debug, Clone)]
pub struct FirstStage {
    /// Number of exogenous regressors (the first instruments).
    pub n_exog: usize,
    /// Number of excluded instruments.
    pub n_excluded: usize,
    /// Coefficients, (k1 + q) x k2: rows follow `[exog, excluded]`.
    pub coef: Mat<f64>,
    /// `(Z'Z)^-1` with `Z = [exog, excluded]`.
    pub bread: Mat<f64>,
    /// Fitted values of each endogenous regressor.
    pub fitted: Vec<Vec<f64>>,
    /// Residuals of each endogenous regressor.
    pub resid: Vec<Vec<f64>>,
    /// Triangular factor of `[exog | excluded | endo]`.
    r: Mat<f64>,
}

impl FirstStage {
    fn n_endo(&self) -> usize {
        self.coef.ncols()
    }

    fn block(&self, rows: std::ops::Range<usize>, cols: std::ops::Range<usize>) -> Mat<f64> {
        Mat::from_fn(rows.len(), cols.len(), |i, j| {
            self.r[(rows.start + i, cols.start + j)]
        })
    }
}

/// Regresses every endogenous regressor on `[exog, excluded]`; `r` is the triangular factor of
/// `[exog | excluded | endo]` (e.g. from [`crate::ols::tall_r`]).
pub fn first_stage(
    exog: &[&[f64]],
    excluded: &[&[f64]],
    endo: &[&[f64]],
    r: Mat<f64>,
) -> Result<FirstStage, EstimError> {
    let (k1, q, k2) = (exog.len(), excluded.len(), endo.len());
    let l = k1 + q;
    let n = endo.first().map_or(0, |c| c.len());
    if n <= l {
        return Err(EstimError::TooFewObservations { n, k: l });
    }
    let r_zz = Mat::from_fn(l, l, |i, j| r[(i, j)]);
    let rinv = upper_inverse(r_zz.as_ref())?;
    let coef = Mat::from_fn(l, k2, |i, j| {
        (i..l).map(|m| rinv[(i, m)] * r[(m, l + j)]).sum()
    });
    let bread = product(rinv.as_ref(), rinv.transpose());
    let z: Vec<&[f64]> = exog.iter().chain(excluded).copied().collect();
    let mut fitted = Vec::with_capacity(k2);
    let mut resid = Vec::with_capacity(k2);
    for (j, col) in endo.iter().enumerate() {
        let pi: Vec<f64> = (0..l).map(|i| coef[(i, j)]).collect();
        let f = x_times(&z, &pi);
        resid.push(col.iter().zip(&f).map(|(a, b)| a - b).collect());
        fitted.push(f);
    }
    Ok(FirstStage {
        n_exog: k1,
        n_excluded: q,
        coef,
        bread,
        fitted,
        resid,
        r,
    })
}

/// Result of the second stage.
#[derive(Debug, Clone)]
pub struct SecondStage {
    /// Coefficients of `[exog, endo]`.
    pub coef: Vec<f64>,
    /// Structural residuals `y - [exog, endo] b`.
    pub resid: Vec<f64>,
    /// `(Xhat'Xhat)^-1` with `Xhat = [exog, fitted endo]`.
    pub bread: Mat<f64>,
    /// Triangular factor of `Xhat` (`R'R = Xhat'Xhat`), for sandwich variances.
    pub r: Mat<f64>,
}

/// 2SLS: `b = (Xhat'Xhat)^-1 Xhat'y` with `Xhat = [exog, fitted endo]`, from a QR of
/// `[Xhat y]`. Fails as under-identified when a fitted endogenous regressor is collinear with
/// the exogenous regressors (the excluded instruments carry no information on it).
pub fn second_stage(
    y: &[f64],
    exog: &[&[f64]],
    endo: &[&[f64]],
    fs: &FirstStage,
) -> Result<SecondStage, EstimError> {
    let mut cols: Vec<&[f64]> = exog.to_vec();
    cols.extend(fs.fitted.iter().map(Vec::as_slice));
    let k = cols.len();
    cols.push(y);
    let r = tall_r(&cols);
    let g = small_gram(r.as_ref());
    let gx = Mat::from_fn(k, k, |i, j| g[(i, j)]);
    let status = independent_columns(gx.as_ref(), None, &CollinearityOptions::default());
    let lost = status[exog.len()..]
        .iter()
        .filter(|s| **s != ColumnStatus::Kept)
        .count();
    if lost > 0 {
        return Err(EstimError::UnderIdentified {
            endogenous: endo.len(),
            instruments: endo.len() - lost,
        });
    }
    let (coef, bread) = solve_from_r(r.as_ref())?;
    let structural: Vec<&[f64]> = exog.iter().chain(endo).copied().collect();
    let resid = residuals(&structural, y, &coef);
    let r = r.submatrix(0, 0, k, k).to_owned();
    Ok(SecondStage {
        coef,
        resid,
        bread,
        r,
    })
}

/// Variance of the first-stage coefficients of endogenous regressor `j`.
fn first_stage_vcov(
    fs: &FirstStage,
    z: &[&[f64]],
    j: usize,
    kind: VcovKind<'_>,
    ss: &SmallSample,
) -> Mat<f64> {
    let e = &fs.resid[j];
    let l = z.len();
    // The leading block of the factor of `[exog | excluded | endo]` is the factor of `Z`; it is
    // nonsingular (`first_stage` inverted it).
    let r_zz = fs.block(0..l, 0..l);
    if matches!(kind, VcovKind::Iid) {
        let rss = e.iter().map(|v| v * v).sum();
        return iid_vcov(fs.bread.as_ref(), rss, e.len(), ss);
    }
    match sandwich_from_r(r_zz.as_ref(), z, e, kind, ss.factor) {
        Ok(Some(v)) => v,
        // Unreachable (not iid, nonsingular factor); NaN makes the statistic NaN.
        _ => Mat::from_fn(l, l, |_, _| f64::NAN),
    }
}

/// First-stage Wald / q of the excluded instruments for each endogenous regressor (NaN when the
/// covariance of the excluded coefficients is not positive definite, e.g. with fewer clusters
/// than instruments). `exog` and `excluded` are the instrument columns given to
/// [`first_stage`].
pub fn first_stage_wald(
    fs: &FirstStage,
    exog: &[&[f64]],
    excluded: &[&[f64]],
    kind: VcovKind<'_>,
    ss: &SmallSample,
) -> Vec<f64> {
    let (k1, q) = (fs.n_exog, fs.n_excluded);
    let z: Vec<&[f64]> = exog.iter().chain(excluded).copied().collect();
    (0..fs.n_endo())
        .map(|j| {
            let v = first_stage_vcov(fs, &z, j, kind, ss);
            let ve = Mat::from_fn(q, q, |a, b| v[(k1 + a, k1 + b)]);
            let Some(vinv) = spd_inverse(ve.as_ref()) else {
                return f64::NAN;
            };
            let pi: Vec<f64> = (0..q).map(|a| fs.coef[(k1 + a, j)]).collect();
            let mut w = 0.0;
            for a in 0..q {
                for b in 0..q {
                    w += pi[a] * vinv[(a, b)] * pi[b];
                }
            }
            w / q as f64
        })
        .collect()
}

/// Cragg-Donald eigenvalue: smallest eigenvalue of `(V'V)^-1 X'P X` (see the module docs).
/// Multiply by `(N - K) / q` for the F form.
pub fn cragg_donald_eigenvalue(fs: &FirstStage) -> Option<f64> {
    let (l, k) = (fs.n_exog + fs.n_excluded, fs.n_endo());
    let r_bc = fs.block(fs.n_exog..l, l..l + k);
    let r_cc = fs.block(l..l + k, l..l + k);
    let explained = small_gram(r_bc.as_ref());
    // With U'U = V'V (U = R_CC up to row signs), the eigenvalues of U^-T E U^-1 are those of
    // the generalized problem; use a positive-diagonal Cholesky factor for a clean solve.
    let u = cholesky_upper(small_gram(r_cc.as_ref()).as_ref())?;
    let uinv = upper_inverse(u.as_ref()).ok()?;
    let m = product(
        product(uinv.transpose(), explained.as_ref()).as_ref(),
        uinv.as_ref(),
    );
    let sym = Mat::from_fn(k, k, |i, j| 0.5 * (m[(i, j)] + m[(j, i)]));
    let (values, _) = sym_eigen(sym.as_ref())?;
    values.first().copied()
}

/// Kleibergen-Paap rk Wald statistic (chi-squared form, unscaled covariance) for the null that
/// the first-stage coefficient matrix of the excluded instruments has rank one less than the
/// number of endogenous regressors. `kind` must be `Hetero` or `Cluster`; `None` for `Iid` or
/// when a needed factorisation fails (collinear inputs).
pub fn kleibergen_paap_rk_wald(
    fs: &FirstStage,
    exog: &[&[f64]],
    excluded: &[&[f64]],
    kind: VcovKind<'_>,
) -> Option<f64> {
    let (k1, l) = (fs.n_exog, fs.n_excluded);
    let k = fs.n_endo();
    if l < k || matches!(kind, VcovKind::Iid) {
        return None;
    }
    let q = k - 1;
    let lz = k1 + l;
    let pi = Mat::from_fn(l, k, |a, j| fs.coef[(k1 + a, j)]);
    // Cross-products of the partialled excluded instruments and endogenous regressors.
    let r_bb = fs.block(k1..lz, k1..lz);
    let r_bc = fs.block(k1..lz, lz..lz + k);
    let r_cc = fs.block(lz..lz + k, lz..lz + k);
    let zz = small_gram(r_bb.as_ref());
    let xx_b = small_gram(r_bc.as_ref());
    let xx_c = small_gram(r_cc.as_ref());
    let xx = Mat::from_fn(k, k, |i, j| xx_b[(i, j)] + xx_c[(i, j)]);
    let f = cholesky_upper(zz.as_ref())?;
    let g = cholesky_upper(xx.as_ref())?;
    let ginv = upper_inverse(g.as_ref()).ok()?;
    let finv = upper_inverse(f.as_ref()).ok()?;
    // theta = F pi G^-1.
    let theta = product(product(f.as_ref(), pi.as_ref()).as_ref(), ginv.as_ref());
    let svd = theta.svd().ok()?;
    let (u, v) = (svd.U(), svd.V());

    // A = U[:, q..] U22^-1 (U22 U22')^(1/2), with U22 = U[q.., q..].
    let lq = l - q;
    let u22 = Mat::from_fn(lq, lq, |a, b| u[(q + a, q + b)]);
    let u22_inv = {
        use faer::linalg::solvers::DenseSolveCore;
        u22.as_ref().partial_piv_lu().inverse()
    };
    let root = sym_sqrt(small_gram(u22.transpose()).as_ref())?;
    let right = product(u22_inv.as_ref(), root.as_ref());
    let a = product(u.subcols(q, lq), right.as_ref());
    if !a.as_ref().is_all_finite() {
        return None;
    }
    // B = sign(v22) V[:, q]' (the general formula for one remaining column).
    let sign = if v[(q, q)] < 0.0 { -1.0 } else { 1.0 };
    let b: Vec<f64> = (0..k).map(|j| sign * v[(j, q)]).collect();

    // lambda = vec(A' theta B').
    let theta_b: Vec<f64> = (0..l)
        .map(|r| (0..k).map(|j| theta[(r, j)] * b[j]).sum())
        .collect();
    let lambda: Vec<f64> = (0..lq)
        .map(|c| (0..l).map(|r| a[(r, c)] * theta_b[r]).sum())
        .collect();

    // Covariance of lambda. With b2 = B G'^-1 and a2 = A' F'^-1 the transformed scores are
    // (Z~ a2')_i * (V b2')_i, whose meat is the (unscaled) covariance of lambda.
    let b2: Vec<f64> = (0..k)
        .map(|i| (0..k).map(|j| ginv[(i, j)] * b[j]).sum())
        .collect();
    let a2t = product(finv.as_ref(), a.as_ref()); // l x lq
    let vb = x_times(&fs.resid.iter().map(Vec::as_slice).collect::<Vec<_>>(), &b2);
    // Z~ = excluded - exog (R_AA^-1 R_AB): the instruments with the exogenous regressors
    // partialled out.
    let ztilde: Vec<Vec<f64>> = if k1 == 0 {
        excluded.iter().map(|c| c.to_vec()).collect()
    } else {
        let r_aa = fs.block(0..k1, 0..k1);
        let r_ab = fs.block(0..k1, k1..lz);
        let coef = product(upper_inverse(r_aa.as_ref()).ok()?.as_ref(), r_ab.as_ref());
        (0..l)
            .map(|j| {
                let c: Vec<f64> = (0..k1).map(|i| coef[(i, j)]).collect();
                residuals(exog, excluded[j], &c)
            })
            .collect()
    };
    let zt: Vec<&[f64]> = ztilde.iter().map(Vec::as_slice).collect();
    let za: Vec<Vec<f64>> = (0..lq)
        .map(|c| {
            let w: Vec<f64> = (0..l).map(|r| a2t[(r, c)]).collect();
            x_times(&zt, &w)
        })
        .collect();
    let za_cols: Vec<&[f64]> = za.iter().map(Vec::as_slice).collect();
    let vlab = meat(&za_cols, &vb, kind)?;
    let vinv = spd_inverse(vlab.as_ref())?;
    let mut stat = 0.0;
    for r in 0..lq {
        for c in 0..lq {
            stat += lambda[r] * vinv[(r, c)] * lambda[c];
        }
    }
    stat.is_finite().then_some(stat)
}

/// `(Z'Z)^-1` recomputed from scratch, for tests of the factor bookkeeping.
#[cfg(test)]
fn bread_direct(z: &[&[f64]]) -> Mat<f64> {
    let rinv = upper_inverse(tall_r(z).as_ref()).unwrap();
    product(rinv.as_ref(), rinv.transpose())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_stage_bread_and_fit() {
        let n = 200;
        let z1: Vec<f64> = (0..n).map(|i| ((i * 7) % 13) as f64).collect();
        let one = vec![1.0; n];
        let x: Vec<f64> = (0..n)
            .map(|i| 2.0 + 0.5 * z1[i] + ((i * 5) % 3) as f64)
            .collect();
        let cols: Vec<&[f64]> = vec![&one, &z1, &x];
        let fs = first_stage(&[&one], &[&z1], &[&x], tall_r(&cols)).unwrap();
        let direct = bread_direct(&[&one, &z1]);
        for i in 0..2 {
            for j in 0..2 {
                assert!((direct[(i, j)] - fs.bread[(i, j)]).abs() < 1e-12);
            }
        }
        let fitted_plus_resid: f64 = (0..n)
            .map(|i| (fs.fitted[0][i] + fs.resid[0][i] - x[i]).abs())
            .sum();
        assert!(fitted_plus_resid < 1e-9);
    }

    /// Literal Kleibergen-Paap computation (explicit Kronecker products and the full
    /// (l k) x (l k) score covariance), to check the transformed-score shortcut.
    fn kp_brute_force(exog: &[&[f64]], excluded: &[&[f64]], endo: &[&[f64]]) -> f64 {
        use faer::linalg::solvers::DenseSolveCore;
        let n = endo[0].len();
        let (l, k) = (excluded.len(), endo.len());
        let partial = |c: &[f64]| -> Vec<f64> {
            let mut cols = exog.to_vec();
            cols.push(c);
            let r = tall_r(&cols);
            let (b, _) = solve_from_r(r.as_ref()).unwrap();
            residuals(exog, c, &b)
        };
        let zt: Vec<Vec<f64>> = excluded.iter().map(|c| partial(c)).collect();
        let xt: Vec<Vec<f64>> = endo.iter().map(|c| partial(c)).collect();
        let zm = Mat::from_fn(n, l, |i, j| zt[j][i]);
        let xm = Mat::from_fn(n, k, |i, j| xt[j][i]);
        let zz = small_gram(zm.as_ref());
        let zzinv = spd_inverse(zz.as_ref()).unwrap();
        let pi = product(
            zzinv.as_ref(),
            product(zm.transpose(), xm.as_ref()).as_ref(),
        );
        let fitted = product(zm.as_ref(), pi.as_ref());
        let v = Mat::from_fn(n, k, |i, j| xm[(i, j)] - fitted[(i, j)]);
        let f = cholesky_upper(zz.as_ref()).unwrap();
        let g = cholesky_upper(small_gram(xm.as_ref()).as_ref()).unwrap();
        let ginv = upper_inverse(g.as_ref()).unwrap();
        let theta = product(product(f.as_ref(), pi.as_ref()).as_ref(), ginv.as_ref());
        let svd = theta.svd().unwrap();
        let (u, vv) = (svd.U(), svd.V());
        let q = k - 1;
        let lq = l - q;
        let u22 = Mat::from_fn(lq, lq, |a, b| u[(q + a, q + b)]);
        let a = product(
            product(
                u.subcols(q, lq),
                u22.as_ref().partial_piv_lu().inverse().as_ref(),
            )
            .as_ref(),
            sym_sqrt(small_gram(u22.transpose()).as_ref())
                .unwrap()
                .as_ref(),
        );
        let sign = if vv[(q, q)] < 0.0 { -1.0 } else { 1.0 };
        let b: Vec<f64> = (0..k).map(|j| sign * vv[(j, q)]).collect();
        // kron(B, A'): (l - q) x (l k), column index j * l + r.
        let kron = Mat::from_fn(lq, l * k, |c, idx| b[idx / l] * a[(idx % l, c)]);
        let vec_theta = Mat::from_fn(l * k, 1, |idx, _| theta[(idx % l, idx / l)]);
        let lambda = product(kron.as_ref(), vec_theta.as_ref());
        let mut meat = Mat::<f64>::zeros(l * k, l * k);
        for i in 0..n {
            let s: Vec<f64> = (0..l * k)
                .map(|idx| zm[(i, idx % l)] * v[(i, idx / l)])
                .collect();
            for p1 in 0..l * k {
                for p2 in 0..l * k {
                    meat[(p1, p2)] += s[p1] * s[p2];
                }
            }
        }
        // (G kron F): entry (j l + r, m l + c) = G[j, m] F[r, c].
        let gf = Mat::from_fn(l * k, l * k, |r1, r2| {
            g[(r1 / l, r2 / l)] * f[(r1 % l, r2 % l)]
        });
        let gf_inv = gf.as_ref().partial_piv_lu().inverse();
        let vhat = product(
            product(gf_inv.transpose(), meat.as_ref()).as_ref(),
            gf_inv.as_ref(),
        );
        let vlab = product(
            product(kron.as_ref(), vhat.as_ref()).as_ref(),
            kron.transpose(),
        );
        let vinv = spd_inverse(vlab.as_ref()).unwrap();
        let stat = product(
            product(lambda.transpose(), vinv.as_ref()).as_ref(),
            lambda.as_ref(),
        );
        stat[(0, 0)]
    }

    #[test]
    fn kleibergen_paap_matches_literal_formula_with_two_endogenous() {
        let n = 300;
        let mut seed = 5u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 11) as f64) / ((1u64 << 53) as f64) - 0.5
        };
        let one = vec![1.0; n];
        let w: Vec<f64> = (0..n).map(|_| next()).collect();
        let z: Vec<Vec<f64>> = (0..3).map(|_| (0..n).map(|_| next()).collect()).collect();
        let x1: Vec<f64> = (0..n)
            .map(|i| z[0][i] + 0.3 * z[1][i] + 0.2 * w[i] + next() * (1.0 + z[2][i].abs()))
            .collect();
        let x2: Vec<f64> = (0..n)
            .map(|i| 0.5 * z[1][i] - z[2][i] + next() * (0.5 + w[i].abs()))
            .collect();
        let exog: Vec<&[f64]> = vec![&one, &w];
        let excluded: Vec<&[f64]> = z.iter().map(Vec::as_slice).collect();
        let endo: Vec<&[f64]> = vec![&x1, &x2];
        let mut cols = exog.clone();
        cols.extend(&excluded);
        cols.extend(&endo);
        let fs = first_stage(&exog, &excluded, &endo, tall_r(&cols)).unwrap();
        let fast = kleibergen_paap_rk_wald(&fs, &exog, &excluded, VcovKind::Hetero).unwrap();
        let slow = kp_brute_force(&exog, &excluded, &endo);
        assert!(((fast - slow) / slow).abs() < 1e-9, "{fast} vs {slow}");
        assert!(fast > 0.0);
    }

    /// Under the null (coefficient matrix of rank k - 1) the rk statistic is a chi-squared with
    /// l - k + 1 degrees of freedom; under full rank it grows with n. Three endogenous
    /// regressors, one of them a combination of the others' first stages under the null.
    #[test]
    fn kleibergen_paap_separates_reduced_from_full_rank() {
        let n = 20_000;
        let mut seed = 17u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 11) as f64) / ((1u64 << 53) as f64) - 0.5
        };
        let one = vec![1.0; n];
        let z: Vec<Vec<f64>> = (0..4).map(|_| (0..n).map(|_| next()).collect()).collect();
        let e: Vec<Vec<f64>> = (0..3).map(|_| (0..n).map(|_| next()).collect()).collect();
        let stat = |x3: &[f64]| {
            let x1: Vec<f64> = (0..n).map(|i| z[0][i] + e[0][i]).collect();
            let x2: Vec<f64> = (0..n).map(|i| z[1][i] - 0.5 * z[3][i] + e[1][i]).collect();
            let exog: Vec<&[f64]> = vec![&one];
            let excluded: Vec<&[f64]> = z.iter().map(Vec::as_slice).collect();
            let endo: Vec<&[f64]> = vec![&x1, &x2, x3];
            let mut cols = exog.clone();
            cols.extend(&excluded);
            cols.extend(&endo);
            let fs = first_stage(&exog, &excluded, &endo, tall_r(&cols)).unwrap();
            kleibergen_paap_rk_wald(&fs, &exog, &excluded, VcovKind::Hetero).unwrap()
        };
        // Reduced rank: the third first stage is a combination of the other two.
        let x3: Vec<f64> = (0..n)
            .map(|i| 0.7 * z[0][i] + 1.3 * (z[1][i] - 0.5 * z[3][i]) + e[2][i])
            .collect();
        let reduced = stat(&x3);
        // Full rank: the third first stage loads on z2.
        let x3_full: Vec<f64> = (0..n).map(|i| z[2][i] + e[2][i]).collect();
        let full = stat(&x3_full);
        // chi-squared(2): P(> 18.4) = 1e-4.
        assert!(reduced < 18.4, "reduced-rank statistic {reduced}");
        assert!(full > 1000.0, "full-rank statistic {full}");
    }
}
