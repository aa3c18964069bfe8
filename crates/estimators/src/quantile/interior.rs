//! The Frisch-Newton interior point (quantreg `"fn"`).
//!
//! Owns: the Mehrotra predictor-corrector on the bounded dual of the quantile-regression LP
//! (Portnoy and Koenker 1997), working on `y / mean|y|` and stopping at a relative duality gap of
//! `1e-11`, and [`frisch_newton`], which hands its approximate answer to the simplex finish.
//! Deliberately does not own: the simplex finish itself (`vertex`), preprocessing, or standard
//! errors.

use super::design::{
    chol_solve, dot, weighted_cholesky, weighted_solve, x_times, xt_times, Design,
};
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
    let (mut dx, mut ds, mut dz, mut dw) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
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
            step_lengths(&a, &s, &z, &w, &dx, &ds, &dz, &dw, STEP_FRACTION);
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
            (step_p, step_d) = step_lengths(&a, &s, &z, &w, &dx, &ds, &dz, &dw, STEP_FRACTION);
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
fn step_lengths(
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
