//! The Frisch-Newton interior point (quantreg `"fn"`).
//!
//! Owns: the Mehrotra predictor-corrector on the bounded dual of the quantile-regression LP
//! (Portnoy and Koenker 1997), working on `y / mean|y|` and stopping at a relative duality gap of
//! `1e-11`, and [`frisch_newton`], which hands its approximate answer to the simplex finish.
//! Deliberately does not own: the simplex finish itself (`vertex`), preprocessing, or standard
//! errors.

use super::design::{chol_solve, Design};
use super::kernels::{Layout, LANES};
use super::vertex::{basis_near_fit, vertex_descent};
use super::Solution;
use crate::error::EstimError;

/// Outcome of the interior-point phase: an approximate solution only.
struct InteriorPoint {
    coef: Vec<f64>,
    iterations: usize,
    converged: bool,
}

/// Mehrotra predictor-corrector on the bounded dual of the quantile regression LP
/// (Portnoy and Koenker 1997): maximise `y'a` subject to `X'a = (1 - tau) X'1`, `0 <= a <= 1`.
/// The coefficients are the negated equality multipliers.
///
/// Each iteration is a few passes over the observations: `X v` over the design's columns,
/// `X' v` and `X' D X` over its rows ([`Layout`]) and elementwise updates, every one with the
/// arithmetic (and every sum with the order) of the plain loops it replaces.
fn interior_point(design: &Design, y: &[f64], tau: f64) -> Result<InteriorPoint, EstimError> {
    const STEP_FRACTION: f64 = 0.99995;
    const MAX_ITER: usize = 500;
    let (n, k) = (design.n, design.k);
    // Work on y / scale so the tolerances below are free of the response's units.
    let scale = y.iter().map(|v| v.abs()).sum::<f64>() / n as f64;
    if scale == 0.0 {
        return Ok(InteriorPoint {
            coef: vec![0.0; k],
            iterations: 0,
            converged: true,
        });
    }
    let layout = Layout::new(design);
    let c: Vec<f64> = y.iter().map(|v| -v / scale).collect();
    let mut b = vec![0.0; k];
    for i in 0..n {
        for (bj, xj) in b.iter_mut().zip(design.row(i)) {
            *bj += (1.0 - tau) * xj;
        }
    }
    let mut v = Vectors::start(n, tau);
    let ones = vec![1.0; n];
    let mut dual = chol_solve(
        &cholesky(layout.weighted_cross_product(design, &ones))?,
        &layout.xt_times(&c),
    );
    layout.x_times(&dual, &mut v.fitted);
    let start_eps = 1e-6;
    for (((ci, fi), zi), wi) in c.iter().zip(&v.fitted).zip(&mut v.z).zip(&mut v.w) {
        let r = ci - fi;
        let nudge = if r.abs() < start_eps { start_eps } else { 0.0 };
        *zi = r.max(0.0) + nudge;
        *wi = (-r).max(0.0) + nudge;
    }
    let mut iterations = 0;
    let mut converged = false;
    while iterations < MAX_ITER {
        let [az, sw, ca] = gap_sums(&v.a, &v.z, &v.s, &v.w, &c);
        let current_gap = az + sw;
        if current_gap <= 1e-11 * (1.0 + ca.abs()) {
            converged = true;
            break;
        }
        iterations += 1;
        layout.x_times(&dual, &mut v.fitted);
        // Primal residual b - X'a and dual residual c - X dual - z + w (both ~0 after a full step).
        newton_weights(&c, &mut v);
        let xa = layout.xt_times(&v.a);
        let rp: Vec<f64> = b.iter().zip(&xa).map(|(bj, x)| bj - x).collect();
        let xzw = layout.xt_times(&v.zw);
        let rhs: Vec<f64> = rp.iter().zip(&xzw).map(|(p, q)| p + q).collect();
        let chol = cholesky(layout.weighted_cross_product(design, &v.dd))?;
        let mut dy = chol_solve(&chol, &rhs);
        layout.x_times(&dy, &mut v.xdy);
        affine_direction(&mut v);
        let (mut step_p, mut step_d) = step_lengths(&v, STEP_FRACTION);
        if step_p.min(step_d) < 1.0 {
            // Corrector: aim at a centring parameter from the affine step's predicted gap.
            let mu = current_gap;
            let predicted = predicted_gap(&v, step_p, step_d);
            let target = mu * (predicted / mu).powi(3) / (2.0 * n as f64);
            centring(&mut v, target);
            let xdr = layout.xt_times(&v.dr);
            let rhs2: Vec<f64> = rhs.iter().zip(&xdr).map(|(p, q)| p + q).collect();
            dy = chol_solve(&chol, &rhs2);
            layout.x_times(&dy, &mut v.xdy);
            corrected_direction(&mut v, target);
            (step_p, step_d) = step_lengths(&v, STEP_FRACTION);
        }
        take_step(&mut v, step_p, step_d);
        for (dj, step) in dual.iter_mut().zip(&dy) {
            *dj += step_d * step;
        }
        if !dual.iter().all(|v| v.is_finite()) {
            return Err(EstimError::Numerical {
                message: "interior point diverged in quantile regression".to_string(),
            });
        }
    }
    Ok(InteriorPoint {
        coef: dual.iter().map(|v| -v * scale).collect(),
        iterations,
        converged,
    })
}

fn cholesky(gram: faer::Mat<f64>) -> Result<faer::linalg::solvers::Llt<f64>, EstimError> {
    gram.llt(faer::Side::Lower)
        .map_err(|_| EstimError::Numerical {
            message: "singular design in the interior-point step of quantile regression"
                .to_string(),
        })
}

/// The per-observation vectors of the interior point, allocated once.
struct Vectors {
    a: Vec<f64>,
    s: Vec<f64>,
    z: Vec<f64>,
    w: Vec<f64>,
    fitted: Vec<f64>,
    rd: Vec<f64>,
    dd: Vec<f64>,
    zw: Vec<f64>,
    xdy: Vec<f64>,
    dx: Vec<f64>,
    ds: Vec<f64>,
    dz: Vec<f64>,
    dw: Vec<f64>,
    dr: Vec<f64>,
}

impl Vectors {
    fn start(n: usize, tau: f64) -> Self {
        let zeros = vec![0.0; n];
        Self {
            a: vec![1.0 - tau; n],
            s: vec![tau; n],
            z: zeros.clone(),
            w: zeros.clone(),
            fitted: zeros.clone(),
            rd: zeros.clone(),
            dd: zeros.clone(),
            zw: zeros.clone(),
            xdy: zeros.clone(),
            dx: zeros.clone(),
            ds: zeros.clone(),
            dz: zeros.clone(),
            dw: zeros.clone(),
            dr: zeros,
        }
    }
}

/// `a'z`, `s'w` and `c'a`, each summed in observation order from `-0.0` (as `Iterator::sum`).
fn gap_sums(a: &[f64], z: &[f64], s: &[f64], w: &[f64], c: &[f64]) -> [f64; 3] {
    let (mut az, mut sw, mut ca) = (-0.0, -0.0, -0.0);
    for i in 0..a.len() {
        az += a[i] * z[i];
        sw += s[i] * w[i];
        ca += c[i] * a[i];
    }
    [az, sw, ca]
}

/// The dual residual `rd`, the Newton weights `dd` and `zw = dd (z - w + rd)`.
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn newton_weights(c: &[f64], v: &mut Vectors) {
    let n = c.len();
    let (a, s, z, w, fitted) = (&v.a[..n], &v.s[..n], &v.z[..n], &v.w[..n], &v.fitted[..n]);
    let (rd, dd, zw) = (&mut v.rd[..n], &mut v.dd[..n], &mut v.zw[..n]);
    for i in 0..n {
        rd[i] = c[i] - fitted[i] - z[i] + w[i];
        dd[i] = 1.0 / (z[i] / a[i] + w[i] / s[i]);
        zw[i] = dd[i] * (z[i] - w[i] + rd[i]);
    }
}

/// The affine (predictor) direction from `xdy = X dy`.
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn affine_direction(v: &mut Vectors) {
    let n = v.a.len();
    let (a, s, z, w) = (&v.a[..n], &v.s[..n], &v.z[..n], &v.w[..n]);
    let (dd, rd, xdy) = (&v.dd[..n], &v.rd[..n], &v.xdy[..n]);
    let (dx, ds) = (&mut v.dx[..n], &mut v.ds[..n]);
    let (dz, dw) = (&mut v.dz[..n], &mut v.dw[..n]);
    for i in 0..n {
        dx[i] = dd[i] * (xdy[i] - (z[i] - w[i]) - rd[i]);
        ds[i] = -dx[i];
        dz[i] = -z[i] - z[i] / a[i] * dx[i];
        dw[i] = -w[i] - w[i] / s[i] * ds[i];
    }
}

/// The duality gap after the affine step, summed in observation order from `0.0`.
fn predicted_gap(v: &Vectors, step_p: f64, step_d: f64) -> f64 {
    let mut predicted = 0.0;
    for i in 0..v.a.len() {
        predicted += (v.a[i] + step_p * v.dx[i]) * (v.z[i] + step_d * v.dz[i])
            + (v.s[i] + step_p * v.ds[i]) * (v.w[i] + step_d * v.dw[i]);
    }
    predicted
}

/// The corrector's right-hand side `dr` for the centring `target`.
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn centring(v: &mut Vectors, target: f64) {
    let n = v.a.len();
    let (a, s, dd) = (&v.a[..n], &v.s[..n], &v.dd[..n]);
    let (dx, ds, dz, dw) = (&v.dx[..n], &v.ds[..n], &v.dz[..n], &v.dw[..n]);
    let dr = &mut v.dr[..n];
    for i in 0..n {
        dr[i] = dd[i]
            * (target * (1.0 / s[i] - 1.0 / a[i]) + dx[i] * dz[i] / a[i] - ds[i] * dw[i] / s[i]);
    }
}

/// The corrected direction from the new `xdy = X dy` and the affine direction it replaces.
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn corrected_direction(v: &mut Vectors, target: f64) {
    let n = v.a.len();
    let (a, s, z, w) = (&v.a[..n], &v.s[..n], &v.z[..n], &v.w[..n]);
    let (dd, rd, xdy, dr) = (&v.dd[..n], &v.rd[..n], &v.xdy[..n], &v.dr[..n]);
    let (dx, ds) = (&mut v.dx[..n], &mut v.ds[..n]);
    let (dz, dw) = (&mut v.dz[..n], &mut v.dw[..n]);
    for i in 0..n {
        let dxdz = dx[i] * dz[i];
        let dsdw = ds[i] * dw[i];
        dx[i] = dd[i] * (xdy[i] - z[i] + w[i] - rd[i]) - dr[i];
        ds[i] = -dx[i];
        dz[i] = -z[i] + (target - z[i] * dx[i] - dxdz) / a[i];
        dw[i] = -w[i] + (target - w[i] * ds[i] - dsdw) / s[i];
    }
}

#[multiversion::multiversion(targets("x86_64+avx2"))]
fn take_step(v: &mut Vectors, step_p: f64, step_d: f64) {
    let n = v.a.len();
    let (dx, ds, dz, dw) = (&v.dx[..n], &v.ds[..n], &v.dz[..n], &v.dw[..n]);
    let (a, s) = (&mut v.a[..n], &mut v.s[..n]);
    let (z, w) = (&mut v.z[..n], &mut v.w[..n]);
    for i in 0..n {
        a[i] += step_p * dx[i];
        s[i] += step_p * ds[i];
        z[i] += step_d * dz[i];
        w[i] += step_d * dw[i];
    }
}

/// The longest primal and dual steps (times `fraction`, at most 1) that keep `a, s, z, w`
/// positive. Minima do not depend on the order they are taken in, so [`LANES`] of them run
/// side by side.
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn step_lengths(v: &Vectors, fraction: f64) -> (f64, f64) {
    let n = v.a.len();
    let (a, s, z, w) = (&v.a[..n], &v.s[..n], &v.z[..n], &v.w[..n]);
    let (dx, ds, dz, dw) = (&v.dx[..n], &v.ds[..n], &v.dz[..n], &v.dw[..n]);
    let ratio = |x: f64, dx: f64| if dx < 0.0 { -x / dx } else { f64::MAX };
    let mut primal = [f64::MAX; LANES];
    let mut dual = [f64::MAX; LANES];
    let whole = n - n % LANES;
    for start in (0..whole).step_by(LANES) {
        for l in 0..LANES {
            let i = start + l;
            primal[l] = primal[l].min(ratio(a[i], dx[i])).min(ratio(s[i], ds[i]));
            dual[l] = dual[l].min(ratio(z[i], dz[i])).min(ratio(w[i], dw[i]));
        }
    }
    for i in whole..n {
        primal[0] = primal[0].min(ratio(a[i], dx[i])).min(ratio(s[i], ds[i]));
        dual[0] = dual[0].min(ratio(z[i], dz[i])).min(ratio(w[i], dw[i]));
    }
    let primal = primal.into_iter().fold(f64::MAX, f64::min);
    let dual = dual.into_iter().fold(f64::MAX, f64::min);
    ((fraction * primal).min(1.0), (fraction * dual).min(1.0))
}

/// Interior point, then simplex steps from the basis of the `k` observations closest to the
/// interior-point fit until the vertex is optimal.
pub(super) fn frisch_newton(design: &Design, y: &[f64], tau: f64) -> Result<Solution, EstimError> {
    // A failed Newton step (a numerically singular X'DX) only costs the warm start: the simplex
    // finish then starts from the observations nearest zero and still ends at the optimum.
    let ip = interior_point(design, y, tau).unwrap_or_else(|_| InteriorPoint {
        coef: vec![0.0; design.k],
        iterations: 0,
        converged: false,
    });
    let basis = basis_near_fit(design, y, &ip.coef)?;
    let vertex = vertex_descent(design, y, tau, basis)?;
    let mut messages = Vec::new();
    if !ip.converged {
        messages.push(format!(
            "interior point stopped after {} iterations; finished by simplex steps",
            ip.iterations
        ));
    }
    Ok(Solution {
        coef: vertex.coef,
        iterations: ip.iterations + vertex.steps,
        converged: true,
        nonunique: false,
        messages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantile::design::{dot, weighted_cross_product};
    use proptest::prelude::*;

    fn weighted_cholesky(
        design: &Design,
        weights: &[f64],
    ) -> Result<faer::linalg::solvers::Llt<f64>, EstimError> {
        cholesky(weighted_cross_product(design, weights))
    }

    fn weighted_solve(
        design: &Design,
        weights: &[f64],
        rhs: &[f64],
    ) -> Result<Vec<f64>, EstimError> {
        Ok(chol_solve(&weighted_cholesky(design, weights)?, rhs))
    }

    fn x_times(design: &Design, v: &[f64]) -> Vec<f64> {
        (0..design.n).map(|i| dot(design.row(i), v)).collect()
    }

    fn xt_times(design: &Design, v: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; design.k];
        for (i, vi) in v.iter().enumerate() {
            for (o, x) in out.iter_mut().zip(design.row(i)) {
                *o += x * vi;
            }
        }
        out
    }

    /// The interior point as it was before its passes were regrouped into kernels: one loop or
    /// iterator per quantity. The new one must take the same iterates, bit for bit.
    fn interior_point_by_loops(
        design: &Design,
        y: &[f64],
        tau: f64,
    ) -> Result<InteriorPoint, EstimError> {
        const STEP_FRACTION: f64 = 0.99995;
        const MAX_ITER: usize = 500;
        let (n, k) = (design.n, design.k);
        // Work on y / scale so the tolerances below are free of the response's units.
        let scale = y.iter().map(|v| v.abs()).sum::<f64>() / n as f64;
        if scale == 0.0 {
            return Ok(InteriorPoint {
                coef: vec![0.0; k],
                iterations: 0,
                converged: true,
            });
        }
        let c: Vec<f64> = y.iter().map(|v| -v / scale).collect();
        let mut b = vec![0.0; k];
        for i in 0..n {
            for (bj, xj) in b.iter_mut().zip(design.row(i)) {
                *bj += (1.0 - tau) * xj;
            }
        }
        let mut a = vec![1.0 - tau; n];
        let mut s = vec![tau; n];
        let ones = vec![1.0; n];
        let mut dual = weighted_solve(design, &ones, &xt_times(design, &c))?;
        let fitted = x_times(design, &dual);
        let start_eps = 1e-6;
        let mut z = vec![0.0; n];
        let mut w = vec![0.0; n];
        for i in 0..n {
            let r = c[i] - fitted[i];
            let nudge = if r.abs() < start_eps { start_eps } else { 0.0 };
            z[i] = r.max(0.0) + nudge;
            w[i] = (-r).max(0.0) + nudge;
        }
        let gap = |a: &[f64], z: &[f64], s: &[f64], w: &[f64]| dot(a, z) + dot(s, w);
        let mut iterations = 0;
        let mut converged = false;
        let (mut dx, mut ds, mut dz, mut dw) =
            (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        let mut dd = vec![0.0; n];
        while iterations < MAX_ITER {
            let current_gap = gap(&a, &z, &s, &w);
            if current_gap <= 1e-11 * (1.0 + dot(&c, &a).abs()) {
                converged = true;
                break;
            }
            iterations += 1;
            let fitted = x_times(design, &dual);
            // Primal residual b - X'a and dual residual c - X dual - z + w (both ~0 after a full step).
            let xa = xt_times(design, &a);
            let rp: Vec<f64> = b.iter().zip(&xa).map(|(bj, v)| bj - v).collect();
            let rd: Vec<f64> = (0..n).map(|i| c[i] - fitted[i] - z[i] + w[i]).collect();
            for i in 0..n {
                dd[i] = 1.0 / (z[i] / a[i] + w[i] / s[i]);
            }
            let zw: Vec<f64> = (0..n).map(|i| dd[i] * (z[i] - w[i] + rd[i])).collect();
            let xzw = xt_times(design, &zw);
            let rhs: Vec<f64> = rp.iter().zip(&xzw).map(|(p, q)| p + q).collect();
            let chol = weighted_cholesky(design, &dd)?;
            let dy = chol_solve(&chol, &rhs);
            let xdy = x_times(design, &dy);
            for i in 0..n {
                dx[i] = dd[i] * (xdy[i] - (z[i] - w[i]) - rd[i]);
                ds[i] = -dx[i];
                dz[i] = -z[i] - z[i] / a[i] * dx[i];
                dw[i] = -w[i] - w[i] / s[i] * ds[i];
            }
            let (mut step_p, mut step_d) =
                old_step_lengths(&a, &s, &z, &w, &dx, &ds, &dz, &dw, STEP_FRACTION);
            let mut dy = dy;
            if step_p.min(step_d) < 1.0 {
                // Corrector: aim at a centring parameter from the affine step's predicted gap.
                let mu = dot(&a, &z) + dot(&s, &w);
                let mut predicted = 0.0;
                for i in 0..n {
                    predicted += (a[i] + step_p * dx[i]) * (z[i] + step_d * dz[i])
                        + (s[i] + step_p * ds[i]) * (w[i] + step_d * dw[i]);
                }
                let target = mu * (predicted / mu).powi(3) / (2.0 * n as f64);
                let dr: Vec<f64> = (0..n)
                    .map(|i| {
                        dd[i]
                            * (target * (1.0 / s[i] - 1.0 / a[i]) + dx[i] * dz[i] / a[i]
                                - ds[i] * dw[i] / s[i])
                    })
                    .collect();
                let xdr = xt_times(design, &dr);
                let rhs2: Vec<f64> = rhs.iter().zip(&xdr).map(|(p, q)| p + q).collect();
                dy = chol_solve(&chol, &rhs2);
                let xdy = x_times(design, &dy);
                for i in 0..n {
                    let dxdz = dx[i] * dz[i];
                    let dsdw = ds[i] * dw[i];
                    dx[i] = dd[i] * (xdy[i] - z[i] + w[i] - rd[i]) - dr[i];
                    ds[i] = -dx[i];
                    dz[i] = -z[i] + (target - z[i] * dx[i] - dxdz) / a[i];
                    dw[i] = -w[i] + (target - w[i] * ds[i] - dsdw) / s[i];
                }
                (step_p, step_d) =
                    old_step_lengths(&a, &s, &z, &w, &dx, &ds, &dz, &dw, STEP_FRACTION);
            }
            for i in 0..n {
                a[i] += step_p * dx[i];
                s[i] += step_p * ds[i];
                z[i] += step_d * dz[i];
                w[i] += step_d * dw[i];
            }
            for (dj, step) in dual.iter_mut().zip(&dy) {
                *dj += step_d * step;
            }
            if !dual.iter().all(|v| v.is_finite()) {
                return Err(EstimError::Numerical {
                    message: "interior point diverged in quantile regression".to_string(),
                });
            }
        }
        Ok(InteriorPoint {
            coef: dual.iter().map(|v| -v * scale).collect(),
            iterations,
            converged,
        })
    }

    #[allow(clippy::too_many_arguments)] // the four primal-dual blocks and their steps belong together
    fn old_step_lengths(
        a: &[f64],
        s: &[f64],
        z: &[f64],
        w: &[f64],
        dx: &[f64],
        ds: &[f64],
        dz: &[f64],
        dw: &[f64],
        fraction: f64,
    ) -> (f64, f64) {
        let mut primal = f64::MAX;
        let mut dual = f64::MAX;
        for i in 0..a.len() {
            if dx[i] < 0.0 {
                primal = primal.min(-a[i] / dx[i]);
            }
            if ds[i] < 0.0 {
                primal = primal.min(-s[i] / ds[i]);
            }
            if dz[i] < 0.0 {
                dual = dual.min(-z[i] / dz[i]);
            }
            if dw[i] < 0.0 {
                dual = dual.min(-w[i] / dw[i]);
            }
        }
        ((fraction * primal).min(1.0), (fraction * dual).min(1.0))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Dense designs and designs with group dummies (the pooled regression's shape, which
        /// takes the sparse `X' W X`), any `n` (so the four-lane chunks end early).
        #[test]
        fn regrouped_interior_point_takes_the_same_iterates(
            k in 1usize..7,
            extra in 1usize..300,
            groups in 0usize..5,
            tau in 0.05f64..0.95,
            xs in proptest::collection::vec(-3.0f64..3.0, 700),
            es in proptest::collection::vec(-2.0f64..2.0, 150),
        ) {
            let kk = k + groups;
            let n = kk + extra;
            let mut data = Vec::with_capacity(n * kk);
            for i in 0..n {
                data.push(1.0);
                (1..k).for_each(|j| data.push(xs[(i * k + j) % xs.len()]));
                (0..groups).for_each(|g| data.push(f64::from(u8::from(i % (groups + 1) == g + 1))));
            }
            let design = Design { n, k: kk, data };
            let y: Vec<f64> = (0..n)
                .map(|i| design.row(i).iter().sum::<f64>() + es[i % es.len()])
                .collect();
            let old = interior_point_by_loops(&design, &y, tau);
            let new = interior_point(&design, &y, tau);
            match (old, new) {
                (Ok(old), Ok(new)) => {
                    prop_assert_eq!(old.iterations, new.iterations);
                    prop_assert_eq!(old.converged, new.converged);
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    prop_assert_eq!(bits(&old.coef), bits(&new.coef));
                }
                (old, new) => prop_assert_eq!(old.is_ok(), new.is_ok()),
            }
        }
    }
}
