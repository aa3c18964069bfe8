//! The exact simplex finish of the interior-point methods.
//!
//! Owns: choosing a starting basis of `k` observations near an approximate fit
//! ([`basis_near_fit`]) and the descent over vertices from it to a verified optimal vertex
//! ([`vertex_descent`]).
//! Deliberately does not own: the Barrodale-Roberts simplex (`simplex`), which starts from
//! scratch, or the interior point that supplies the approximate fit.

use faer::linalg::solvers::Solve;
use faer::Mat;

use super::design::{dot, residuals_of, Design};
use super::kernels::{dots4, LANES};
use crate::error::EstimError;

/// The `k` linearly independent observations with the smallest absolute residuals at `coef`.
pub(super) fn basis_near_fit(
    design: &Design,
    y: &[f64],
    coef: &[f64],
) -> Result<Vec<usize>, EstimError> {
    basis_near_residuals(design, &residuals_of(design, y, coef))
}

/// [`basis_near_fit`] from the residuals `resid` of the fit.
///
/// Rows are taken in order of `|resid|` (ties by row); a row joins when two passes of modified
/// Gram-Schmidt against the rows taken leave more than `1e-8` of its norm. Every row's
/// arithmetic is that of projecting it alone, so the choice is that of one row at a time; the
/// work is arranged around the latency of the dot products' chains of additions:
/// * a row's first pass is kept and only extended by the rows taken since, and the first
///   passes of new rows run [`GROUP`] at a time;
/// * a row whose first pass leaves at most `1e-10` of its norm is rejected without the second
///   (a projection does not lengthen a vector, so the second pass would reject it too);
/// * the second passes of the next [`GROUP`] rows run together, valid until one of them joins.
pub(super) fn basis_near_residuals(
    design: &Design,
    resid: &[f64],
) -> Result<Vec<usize>, EstimError> {
    let k = design.k;
    let mut order: Vec<usize> = (0..design.n).collect();
    let by_size = |a: &usize, b: &usize| resid[*a].abs().total_cmp(&resid[*b].abs()).then(a.cmp(b));
    // The order is total (ties broken by row), so sorting a selected head first and the tail
    // only when the head runs out visits the rows exactly as one full sort would; the head
    // almost always holds `k` independent rows, which spares sorting all `n`.
    let head = design.n.min(8 * k + 64);
    if head < design.n {
        order.select_nth_unstable_by(head, by_size);
    }
    order[..head].sort_by(by_size);
    let mut tail_sorted = head == design.n;
    let mut basis = Vec::with_capacity(k);
    let mut ortho: Vec<Vec<f64>> = Vec::with_capacity(k);
    let mut pending: std::collections::VecDeque<Candidate> = std::collections::VecDeque::new();
    let mut next = 0;
    loop {
        if pending.len() < GROUP {
            let mut fresh = Vec::with_capacity(FRESH);
            while pending.len() + fresh.len() < FRESH && next < design.n {
                if next == head && !tail_sorted {
                    order[head..].sort_by(by_size);
                    tail_sorted = true;
                }
                let row = order[next];
                next += 1;
                let v = design.row(row).to_vec();
                let norm0 = dot(&v, &v).sqrt();
                // A zero row is never taken.
                if norm0 > 0.0 {
                    fresh.push(Candidate { row, v, norm0 });
                }
            }
            first_passes(&ortho, &mut fresh, k);
            pending.extend(fresh);
        }
        if pending.is_empty() {
            break;
        }
        let take = pending.len().min(GROUP);
        let dependent = |c: &Candidate| dot(&c.v, &c.v).sqrt() <= 1e-10 * c.norm0;
        let live: Vec<bool> = pending.iter().take(take).map(|c| !dependent(c)).collect();
        let mut vs = padded(
            pending
                .iter()
                .zip(&live)
                .map(|(c, &l)| if l { c.v.clone() } else { vec![0.0; k] }),
            k,
        );
        if live.contains(&true) {
            project_out(&ortho, &mut vs);
        }
        let joins = (0..take).find(|&g| {
            let v = &vs[g];
            live[g] && dot(v, v).sqrt() > 1e-8 * pending[g].norm0
        });
        let Some(g) = joins else {
            pending.drain(..take);
            continue;
        };
        pending.drain(..g);
        let taken = pending.pop_front().map(|c| c.row);
        let mut v = std::mem::take(&mut vs[g]);
        let norm = dot(&v, &v).sqrt();
        v.iter_mut().for_each(|vi| *vi /= norm);
        // The first passes of the rows waiting go on with the new row, as if it had been there.
        for c in pending.iter_mut() {
            project_one(&v, &mut c.v);
        }
        ortho.push(v);
        basis.extend(taken);
        if basis.len() == k {
            return Ok(basis);
        }
    }
    Err(EstimError::Numerical {
        message: "singular design matrix in quantile regression".to_string(),
    })
}

/// A row waiting to be tried for the basis: its first Gram-Schmidt pass against the rows taken
/// so far, and its norm.
struct Candidate {
    row: usize,
    v: Vec<f64>,
    norm0: f64,
}

/// Up to [`GROUP`] vectors, padded with zero vectors (which stay zero).
fn padded(vs: impl Iterator<Item = Vec<f64>>, k: usize) -> [Vec<f64>; GROUP] {
    let mut vs = vs.take(GROUP);
    std::array::from_fn(|_| vs.next().unwrap_or_else(|| vec![0.0; k]))
}

/// Candidates projected together by `basis_near_fit`: enough independent sums to keep the
/// floating-point adder busy.
const GROUP: usize = 4;

/// Most rows waiting at once; the first passes of new rows run this many side by side.
const FRESH: usize = 16;

/// The first Gram-Schmidt passes of up to [`FRESH`] rows against `ortho`, side by side: the
/// rows are held interleaved (entry `t` of row `g` at `t * FRESH + g`), so each step of every
/// row's dot product and update is one lane of a vector operation, the same arithmetic as
/// [`project_one`] row by row, with [`FRESH`] chains of additions in flight instead of one.
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn first_passes(ortho: &[Vec<f64>], rows: &mut [Candidate], k: usize) {
    if rows.is_empty() || ortho.is_empty() {
        return;
    }
    let mut lanes = vec![[0.0; FRESH]; k];
    for (g, c) in rows.iter().enumerate().take(FRESH) {
        for (t, &x) in c.v.iter().enumerate() {
            lanes[t][g] = x;
        }
    }
    for q in ortho {
        let mut dots = [-0.0; FRESH];
        for (lane, &qt) in lanes.iter().zip(q) {
            dots = std::array::from_fn(|g| dots[g] + qt * lane[g]);
        }
        for (lane, &qt) in lanes.iter_mut().zip(q) {
            *lane = std::array::from_fn(|g| lane[g] - dots[g] * qt);
        }
    }
    for (g, c) in rows.iter_mut().enumerate().take(FRESH) {
        for (t, x) in c.v.iter_mut().enumerate() {
            *x = lanes[t][g];
        }
    }
}

/// One step of [`project_out`] for one vector: removes from `v` its component along `q`, with
/// the same arithmetic.
fn project_one(q: &[f64], v: &mut [f64]) {
    let mut c = -0.0;
    for (qt, a) in q.iter().zip(&*v) {
        c += qt * a;
    }
    v.iter_mut().zip(q).for_each(|(vi, qi)| *vi -= c * qi);
}

/// One pass of modified Gram-Schmidt: removes from each of `vs` its components along the
/// orthonormal `ortho`, in order. Each vector's arithmetic is exactly that of projecting it
/// alone (each dot product sums its terms in order, from `-0.0` as `Iterator::sum` does); the
/// vectors are only interleaved, in four named sums the compiler keeps in registers.
fn project_out(ortho: &[Vec<f64>], vs: &mut [Vec<f64>; GROUP]) {
    for q in ortho {
        let [v0, v1, v2, v3] = &mut *vs;
        let (mut c0, mut c1, mut c2, mut c3) = (-0.0, -0.0, -0.0, -0.0);
        for ((((qt, a), b), c), d) in q.iter().zip(&*v0).zip(&*v1).zip(&*v2).zip(&*v3) {
            c0 += qt * a;
            c1 += qt * b;
            c2 += qt * c;
            c3 += qt * d;
        }
        for (v, cj) in [(v0, c0), (v1, c1), (v2, c2), (v3, c3)] {
            v.iter_mut().zip(q).for_each(|(vi, qi)| *vi -= cj * qi);
        }
    }
}

/// An optimal vertex: the coefficients that fit its basic observations exactly.
pub(super) struct Vertex {
    pub(super) coef: Vec<f64>,
    pub(super) steps: usize,
}

/// Simplex descent over vertices: at a basis of `k` observations fitted exactly, try releasing
/// each basic observation above or below the fit; move along the steepest improving edge to the
/// best breakpoint (a weighted-median line search); stop when no edge improves the objective.
/// Every step strictly lowers the objective, so it cannot cycle.
///
/// Each step makes one pass over the observations with `B^{-1}` (`k x k`) at hand instead of an
/// `n x k` table of `B^{-T} x_i`: the finish of a 100,000-row fit is usually a single pricing
/// pass that finds the vertex optimal, and a table of that size was mostly the cost of its
/// fresh memory pages.
pub(super) fn vertex_descent(
    design: &Design,
    y: &[f64],
    tau: f64,
    mut basis: Vec<usize>,
) -> Result<Vertex, EstimError> {
    let (n, k) = (design.n, design.k);
    let max_steps = 50 * n + 1000;
    let mut in_basis = vec![false; n];
    for &i in &basis {
        in_basis[i] = true;
    }
    let singular = || EstimError::Numerical {
        message: "singular basis in the quantile-regression simplex finish".to_string(),
    };
    let mut resid = vec![0.0; n];
    let mut zero_tol = vec![0.0; n];
    let mut breaks: Vec<(f64, usize)> = Vec::new();
    let stride = k.next_multiple_of(LANES);
    for steps in 0..max_steps {
        let bmat = Mat::from_fn(k, k, |r, c| design.row(basis[r])[c]);
        let lu = bmat.partial_piv_lu();
        let mut coef_m = Mat::from_fn(k, 1, |r, _| y[basis[r]]);
        lu.solve_in_place(coef_m.as_mut());
        let coef: Vec<f64> = (0..k).map(|j| coef_m[(j, 0)]).collect();
        if !coef.iter().all(|v| v.is_finite()) {
            return Err(singular());
        }
        // `inv[r * stride + j]` is entry (r, j) of B^{-1}, so `g_i = B^{-T} x_i` (entry j: how much
        // observation i's fitted value moves when basic observation j is released by one unit)
        // is the sum over `r` of `x_ir` times row `r`: one contiguous update per `r`.
        let inv = basis_inverse(&lu, k, stride);
        if !inv.iter().all(|v| v.is_finite()) {
            return Err(singular());
        }
        let prices = price_edges(
            design,
            y,
            tau,
            &coef,
            &inv,
            &in_basis,
            &mut resid,
            &mut zero_tol,
        );
        let mut best: Option<(f64, usize, f64)> = None;
        for j in 0..k {
            let tol = 1e-10 * prices.size[j];
            for (slope, sign) in [(prices.up[j], 1.0), (prices.down[j], -1.0)] {
                if slope < -tol && best.is_none_or(|(s, _, _)| slope < s) {
                    best = Some((slope, j, sign));
                }
            }
        }
        let Some((slope0, j, sign)) = best else {
            return Ok(Vertex { coef, steps });
        };
        // Line search along the edge: residual i moves as r_i - t * sign * g_ij.
        let g_j = |i: usize| {
            let mut acc = 0.0;
            for (r, x) in design.row(i).iter().enumerate() {
                acc += inv[r * stride + j] * x;
            }
            acc
        };
        breaks.clear();
        breaks.extend(
            (0..n)
                .filter(|&i| !in_basis[i] && resid[i].abs() > zero_tol[i])
                .filter_map(|i| {
                    let g = g_j(i);
                    let rate = sign * g;
                    let t = resid[i] / rate;
                    (rate != 0.0 && t > 0.0).then_some((t, i))
                }),
        );
        breaks.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut slope = slope0;
        let mut entering = None;
        for &(_, i) in &breaks {
            slope += g_j(i).abs();
            if slope >= 0.0 {
                entering = Some(i);
                break;
            }
        }
        let entering = entering.ok_or_else(|| EstimError::Numerical {
            message: "unbounded direction in the quantile-regression simplex finish".to_string(),
        })?;
        in_basis[basis[j]] = false;
        in_basis[entering] = true;
        basis[j] = entering;
    }
    Err(EstimError::Numerical {
        message: format!(
            "quantile-regression simplex finish did not end within `{max_steps}` steps"
        ),
    })
}

/// `B^{-1}` row by row from the basis' LU factors, each row padded with zeros to `stride`.
fn basis_inverse(
    lu: &faer::linalg::solvers::PartialPivLu<f64>,
    k: usize,
    stride: usize,
) -> Vec<f64> {
    let mut eye = Mat::<f64>::identity(k, k);
    lu.solve_in_place(eye.as_mut());
    let mut inv = vec![0.0; k * stride];
    for r in 0..k {
        for j in 0..k {
            inv[r * stride + j] = eye[(r, j)];
        }
    }
    inv
}

/// Directional derivatives of the objective along every edge out of a vertex.
struct EdgePrices {
    /// Releasing basic observation `j` upwards (its residual turns negative).
    up: Vec<f64>,
    /// Releasing it downwards (its residual turns positive).
    down: Vec<f64>,
    /// `1 + sum_i |g_ij|`: the scale of `up[j]` and `down[j]` for the optimality tolerance.
    size: Vec<f64>,
}

/// One pass over the observations prices every edge at once and leaves each row's residual and
/// zero tolerance in `resid` and `zero_tol` (the residual of a basic row is left at 0). Each of
/// the `k` slopes sums its terms in observation order; they are updated [`LANES`] at a time
/// (`inv` is `B^{-1}` with rows padded to a multiple of [`LANES`]).
#[allow(clippy::too_many_arguments)] // the vertex, its inverse basis and the two per-row outputs
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn price_edges(
    design: &Design,
    y: &[f64],
    tau: f64,
    coef: &[f64],
    inv: &[f64],
    in_basis: &[bool],
    resid: &mut [f64],
    zero_tol: &mut [f64],
) -> EdgePrices {
    let k = design.k;
    let stride = k.next_multiple_of(LANES);
    let chunks = stride / LANES;
    let (inv_chunks, _) = inv.as_chunks::<LANES>();
    let mut up = vec![[1.0 - tau; LANES]; chunks];
    let mut down = vec![[tau; LANES]; chunks];
    let mut size = vec![[1.0; LANES]; chunks];
    let mut gi = vec![[0.0; LANES]; chunks];
    let mut nz: Vec<(usize, &f64)> = Vec::with_capacity(k);
    let n = design.n;
    // Fitted values and the `|x_ij| max_j |b_j|` sums of the zero tolerance, four rows side by
    // side (each row's sums in column order, as one row at a time).
    let bound = coef_bound(coef);
    let (mut fitted, mut abs_sums) = ([0.0; 4], [0.0; 4]);
    for (i, row) in design.data.chunks_exact(k).enumerate() {
        if i % 4 == 0 {
            if i + 4 <= n {
                let rows = &design.data[i * k..(i + 4) * k];
                fitted = dots4(rows, k, coef);
                abs_sums = abs_dots4(rows, k, &bound);
            } else {
                for l in 0..n - i {
                    let row = design.row(i + l);
                    fitted[l] = dot(row, coef);
                    abs_sums[l] = row.iter().zip(&bound).map(|(x, b)| (x * b).abs()).sum();
                }
            }
        }
        let scale: f64 = y[i].abs() + abs_sums[i % 4];
        zero_tol[i] = 1e-10 * scale;
        if in_basis[i] {
            resid[i] = 0.0;
            continue;
        }
        let r = y[i] - fitted[i % 4];
        resid[i] = r;
        // Chunk by chunk, so each chunk's sum over `r` stays in a register. A row of mostly
        // zeros (fixed-effect dummies: a dozen non-zeros among hundreds of columns) only adds
        // the terms of its non-zeros: each sum starts at `+0.0`, which adding `±0.0` leaves
        // as it is, so the exact zeros skipped never change a bit.
        nz.clear();
        nz.extend(row.iter().enumerate().filter(|(_, &x)| x != 0.0));
        if nz.len() * 4 > k {
            for (c, g) in gi.iter_mut().enumerate() {
                let mut acc = [0.0; LANES];
                for (&x, inv_row) in row.iter().zip(inv_chunks.chunks_exact(chunks)) {
                    acc = std::array::from_fn(|l| acc[l] + inv_row[c][l] * x);
                }
                *g = acc;
            }
        } else {
            for (c, g) in gi.iter_mut().enumerate() {
                let mut acc = [0.0; LANES];
                for &(r, &x) in &nz {
                    let inv_chunk = &inv_chunks[r * chunks + c];
                    acc = std::array::from_fn(|l| acc[l] + inv_chunk[l] * x);
                }
                *g = acc;
            }
        }
        if r.abs() <= zero_tol[i] {
            for c in 0..chunks {
                let g = gi[c];
                size[c] = std::array::from_fn(|l| size[c][l] + g[l].abs());
                up[c] = std::array::from_fn(|l| up[c][l] + directional_check(-g[l], tau));
                down[c] = std::array::from_fn(|l| down[c][l] + directional_check(g[l], tau));
            }
        } else {
            let psi = if r < 0.0 { tau - 1.0 } else { tau };
            for c in 0..chunks {
                let g = gi[c];
                size[c] = std::array::from_fn(|l| size[c][l] + g[l].abs());
                up[c] = std::array::from_fn(|l| up[c][l] - g[l] * psi);
                down[c] = std::array::from_fn(|l| down[c][l] + g[l] * psi);
            }
        }
    }
    let flat = |v: Vec<[f64; LANES]>| v.into_iter().flatten().take(k).collect();
    EdgePrices {
        up: flat(up),
        down: flat(down),
        size: flat(size),
    }
}

/// The scale of a fitted value's rounding error, for the zero tolerance of residuals: every
/// coefficient replaced by the largest magnitude among them. With `|x_ij b_j|` instead, a row
/// whose response and fitted value are both zero (`y = 0` at `x = (1, 0)`, intercept 0) got a
/// tolerance of almost nothing, so the intercept's rounding (`-2.2e-16`) read as a residual, and
/// the descent swapped that row in and out of the basis without end on integer data.
fn coef_bound(coef: &[f64]) -> Vec<f64> {
    let max = coef.iter().fold(0.0f64, |m, b| m.max(b.abs()));
    vec![max; coef.len()]
}

/// `sum_j |x_ij b_j|` of four consecutive rows, each summed in column order from `-0.0`.
#[inline(always)]
fn abs_dots4(rows: &[f64], k: usize, coef: &[f64]) -> [f64; 4] {
    let mut acc = [-0.0; 4];
    for (j, &b) in coef.iter().enumerate().take(k) {
        for (l, a) in acc.iter_mut().enumerate() {
            *a += (rows[l * k + j] * b).abs();
        }
    }
    acc
}

/// Slope of the check function at a zero residual when the residual moves at rate `d`.
fn directional_check(d: f64, tau: f64) -> f64 {
    if d < 0.0 {
        d * (tau - 1.0)
    } else {
        d * tau
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `basis_near_fit` as it was before rows were projected in groups: one row at a time, two
    /// full passes each. The grouped version must choose the very same rows.
    fn one_at_a_time(design: &Design, y: &[f64], coef: &[f64]) -> Option<Vec<usize>> {
        let resid = residuals_of(design, y, coef);
        let mut order: Vec<usize> = (0..design.n).collect();
        order.sort_by(|a, b| resid[*a].abs().total_cmp(&resid[*b].abs()).then(a.cmp(b)));
        let (mut basis, mut ortho) = (Vec::new(), Vec::<Vec<f64>>::new());
        for i in order {
            let mut v = design.row(i).to_vec();
            let norm0 = dot(&v, &v).sqrt();
            if norm0 == 0.0 {
                continue;
            }
            for _ in 0..2 {
                for q in &ortho {
                    let c = dot(q, &v);
                    v.iter_mut().zip(q).for_each(|(vi, qi)| *vi -= c * qi);
                }
            }
            let norm = dot(&v, &v).sqrt();
            if norm > 1e-8 * norm0 {
                v.iter_mut().for_each(|vi| *vi /= norm);
                ortho.push(v);
                basis.push(i);
                if basis.len() == design.k {
                    return Some(basis);
                }
            }
        }
        None
    }

    /// `vertex_descent` as it was before it kept `B^{-1}` instead of the `k x n` table of
    /// `B^{-T} x_i` solved by the LU factors: the descent must visit the same vertices.
    fn vertex_descent_by_table(
        design: &Design,
        y: &[f64],
        tau: f64,
        mut basis: Vec<usize>,
    ) -> Result<Vertex, EstimError> {
        let (n, k) = (design.n, design.k);
        let max_steps = 50 * n + 1000;
        let mut in_basis = vec![false; n];
        for &i in &basis {
            in_basis[i] = true;
        }
        let singular = || EstimError::Numerical {
            message: "singular basis in the quantile-regression simplex finish".to_string(),
        };
        for steps in 0..max_steps {
            let bmat = Mat::from_fn(k, k, |r, c| design.row(basis[r])[c]);
            let lu = bmat.partial_piv_lu();
            let mut coef_m = Mat::from_fn(k, 1, |r, _| y[basis[r]]);
            lu.solve_in_place(coef_m.as_mut());
            let coef: Vec<f64> = (0..k).map(|j| coef_m[(j, 0)]).collect();
            if !coef.iter().all(|v| v.is_finite()) {
                return Err(singular());
            }
            // Column i of `g` is B^{-T} x_i: entry j is how much observation i's fitted value moves
            // when basic observation j is released by one unit.
            let mut g = Mat::from_fn(k, n, |r, c| design.row(c)[r]);
            lu.solve_transpose_in_place(g.as_mut());
            // One pass over the observations prices every edge at once: releasing basic j upwards
            // (its residual turns negative) or downwards (positive). Column i of `g` is contiguous,
            // and each of the `k` slopes still sums its terms in observation order.
            let mut resid = vec![0.0; n];
            let mut zero_tol = vec![0.0; n];
            let mut up = vec![1.0 - tau; k];
            let mut down = vec![tau; k];
            let mut size = vec![1.0; k];
            let bound = coef_bound(&coef);
            for i in 0..n {
                let row = design.row(i);
                let scale: f64 = y[i].abs()
                    + row
                        .iter()
                        .zip(&bound)
                        .map(|(x, b)| (x * b).abs())
                        .sum::<f64>();
                zero_tol[i] = 1e-10 * scale;
                if in_basis[i] {
                    continue;
                }
                let r = y[i] - dot(row, &coef);
                resid[i] = r;
                let gi = &g.col_as_slice(i)[..k];
                if r.abs() <= zero_tol[i] {
                    for j in 0..k {
                        size[j] += gi[j].abs();
                        up[j] += directional_check(-gi[j], tau);
                        down[j] += directional_check(gi[j], tau);
                    }
                } else {
                    let psi = if r < 0.0 { tau - 1.0 } else { tau };
                    for j in 0..k {
                        size[j] += gi[j].abs();
                        up[j] -= gi[j] * psi;
                        down[j] += gi[j] * psi;
                    }
                }
            }
            let mut best: Option<(f64, usize, f64)> = None;
            for j in 0..k {
                let tol = 1e-10 * size[j];
                for (slope, sign) in [(up[j], 1.0), (down[j], -1.0)] {
                    if slope < -tol && best.is_none_or(|(s, _, _)| slope < s) {
                        best = Some((slope, j, sign));
                    }
                }
            }
            let Some((slope0, j, sign)) = best else {
                return Ok(Vertex { coef, steps });
            };
            // Line search along the edge: residual i moves as r_i - t * sign * g_ij.
            let mut breaks: Vec<(f64, usize)> = (0..n)
                .filter(|&i| !in_basis[i] && resid[i].abs() > zero_tol[i])
                .filter_map(|i| {
                    let rate = sign * g[(j, i)];
                    let t = resid[i] / rate;
                    (rate != 0.0 && t > 0.0).then_some((t, i))
                })
                .collect();
            breaks.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let mut slope = slope0;
            let mut entering = None;
            for &(_, i) in &breaks {
                slope += g[(j, i)].abs();
                if slope >= 0.0 {
                    entering = Some(i);
                    break;
                }
            }
            let entering = entering.ok_or_else(|| EstimError::Numerical {
                message: "unbounded direction in the quantile-regression simplex finish"
                    .to_string(),
            })?;
            in_basis[basis[j]] = false;
            in_basis[entering] = true;
            basis[j] = entering;
        }
        Err(EstimError::Numerical {
            message: format!(
                "quantile-regression simplex finish did not end within `{max_steps}` steps"
            ),
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Designs like the pooled regression with group dummies: an intercept, a few numbers,
        /// and one dummy per group, so that many rows near the fit are dependent.
        #[test]
        fn grouped_projection_chooses_the_same_rows(
            groups in 2usize..12,
            per_group in 1usize..12,
            xs in proptest::collection::vec(-3.0f64..3.0, 400),
            coef_seed in proptest::collection::vec(-1.0f64..1.0, 16),
        ) {
            let numbers = 2;
            let k = 1 + numbers + (groups - 1);
            let n = groups * per_group;
            let mut data = Vec::with_capacity(n * k);
            for i in 0..n {
                let g = i % groups;
                data.push(1.0);
                // Rounded, so that some rows repeat exactly.
                (0..numbers).for_each(|j| data.push((xs[(i * numbers + j) % xs.len()] * 2.0).round() / 2.0));
                (1..groups).for_each(|h| data.push(if g == h { 1.0 } else { 0.0 }));
            }
            let design = Design { n, k, data };
            let y: Vec<f64> = (0..n).map(|i| xs[(7 * i + 3) % xs.len()]).collect();
            let coef: Vec<f64> = (0..k).map(|j| coef_seed[j % coef_seed.len()]).collect();
            let expected = one_at_a_time(&design, &y, &coef);
            let got = basis_near_fit(&design, &y, &coef).ok();
            prop_assert_eq!(got, expected);
        }
    }

    /// The edge prices as plain loops over every column (each `g_i` summed over all `k` rows
    /// of `B^{-1}` from `+0.0`), one slope at a time.
    fn prices_by_plain_loops(
        design: &Design,
        y: &[f64],
        tau: f64,
        coef: &[f64],
        inv: &[f64],
        in_basis: &[bool],
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
        let k = design.k;
        let stride = k.next_multiple_of(LANES);
        let (mut up, mut down, mut size) = (vec![1.0 - tau; k], vec![tau; k], vec![1.0; k]);
        let mut resid = vec![0.0; design.n];
        for i in 0..design.n {
            let row = design.row(i);
            let zero_tol = 1e-10
                * (y[i].abs()
                    + row
                        .iter()
                        .zip(&coef_bound(coef))
                        .map(|(x, b)| (x * b).abs())
                        .sum::<f64>());
            if in_basis[i] {
                continue;
            }
            let r = y[i] - dot(row, coef);
            resid[i] = r;
            for j in 0..k {
                let mut g = 0.0;
                for (m, x) in row.iter().enumerate() {
                    g += inv[m * stride + j] * x;
                }
                size[j] += g.abs();
                if r.abs() <= zero_tol {
                    up[j] += directional_check(-g, tau);
                    down[j] += directional_check(g, tau);
                } else {
                    let psi = if r < 0.0 { tau - 1.0 } else { tau };
                    up[j] -= g * psi;
                    down[j] += g * psi;
                }
            }
        }
        (up, down, size, resid)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        /// Rows of group dummies (mostly zeros, which the pricing pass skips) or dense rows:
        /// the same prices and residuals bit for bit as the plain loops.
        #[test]
        fn pricing_skips_zeros_without_changing_a_bit(
            numbers in 1usize..5,
            dummies in 0usize..24,
            extra in 1usize..60,
            tau in 0.1f64..0.9,
            xs in proptest::collection::vec(-3.0f64..3.0, 600),
            inv_values in proptest::collection::vec(-2.0f64..2.0, 900),
            coef_values in proptest::collection::vec(-2.0f64..2.0, 30),
        ) {
            let k = numbers + dummies;
            let n = k + extra;
            let mut data = Vec::with_capacity(n * k);
            for i in 0..n {
                data.push(1.0);
                (1..numbers).for_each(|j| data.push(xs[(i * k + j) % xs.len()]));
                let group = i % (dummies + 1);
                (1..=dummies).for_each(|g| data.push(if g == group { 1.0 } else { 0.0 }));
            }
            let design = Design { n, k, data };
            let coef: Vec<f64> = coef_values[..k].to_vec();
            // Some rows fitted exactly, so both kinds of terms occur.
            let y: Vec<f64> = (0..n)
                .map(|i| dot(design.row(i), &coef) + if i % 3 == 0 { 0.0 } else { xs[(5 * i) % 600] })
                .collect();
            let stride = k.next_multiple_of(LANES);
            let mut inv = vec![0.0; k * stride];
            for r in 0..k {
                for j in 0..k {
                    inv[r * stride + j] = inv_values[(r * 31 + j) % 900];
                }
            }
            let in_basis: Vec<bool> = (0..n).map(|i| i % 7 == 1).collect();
            let (mut resid, mut zero_tol) = (vec![0.0; n], vec![0.0; n]);
            let got = price_edges(&design, &y, tau, &coef, &inv, &in_basis, &mut resid, &mut zero_tol);
            let (up, down, size, plain_resid) =
                prices_by_plain_loops(&design, &y, tau, &coef, &inv, &in_basis);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&got.up), bits(&up));
            prop_assert_eq!(bits(&got.down), bits(&down));
            prop_assert_eq!(bits(&got.size), bits(&size));
            prop_assert_eq!(bits(&resid), bits(&plain_resid));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        /// From a basis near an arbitrary (poor) fit, the descent takes several steps; it must
        /// end on the vertex of the table version, with the same coefficients bit for bit.
        #[test]
        fn descent_with_the_inverse_basis_reaches_the_same_vertex(
            k in 1usize..6,
            extra in 5usize..80,
            tau in 0.1f64..0.9,
            xs in proptest::collection::vec(-3.0f64..3.0, 600),
            es in proptest::collection::vec(-2.0f64..2.0, 100),
            start in proptest::collection::vec(-2.0f64..2.0, 6),
        ) {
            let n = k + extra;
            let mut data = Vec::with_capacity(n * k);
            for i in 0..n {
                data.push(1.0);
                (1..k).for_each(|j| data.push(xs[(i * k + j) % xs.len()]));
            }
            let design = Design { n, k, data };
            let y: Vec<f64> = (0..n)
                .map(|i| design.row(i).iter().sum::<f64>() + es[i % es.len()])
                .collect();
            let basis = basis_near_fit(&design, &y, &start[..k]).unwrap();
            let old = vertex_descent_by_table(&design, &y, tau, basis.clone());
            let new = vertex_descent(&design, &y, tau, basis);
            match (old, new) {
                (Ok(old), Ok(new)) => {
                    prop_assert_eq!(old.coef, new.coef);
                    prop_assert_eq!(old.steps, new.steps);
                }
                (old, new) => prop_assert_eq!(old.is_ok(), new.is_ok()),
            }
        }
    }
}
