//! Absorption of fixed effects: projecting columns on the orthogonal complement of the
//! fixed-effect dummies.
//!
//! Owns: [`FixedEffects`] (group codes, per-level weight sums, the two-way cross-tabulation),
//! [`demean_columns`] which replaces every column of a column-major buffer by its residual from
//! the fixed effects, and the iterative removal of singleton observations
//! ([`singleton_keep_mask`]).
//!
//! Algorithm. With one fixed effect the residual is the exact within-group deviation. With
//! several, the fixed-effect coefficients solve the normal equations `D'WD a = D'Wx`; they are
//! found in coefficient space (never an n-vector per iteration) by alternating projections
//! (block Gauss-Seidel: each fixed effect's coefficients set to the weighted group mean of what
//! the others leave), accelerated with the Irons-Tuck extrapolation as fixest does. With exactly
//! two fixed effects the sweep runs on their sparse cross-tabulation, so one iteration costs the
//! number of distinct (level, level) pairs rather than the number of observations. Iterations
//! stop when one more sweep would move every coefficient `a` by at most `tol * (0.1 + |a|)`
//! (fixest's criterion).
//!
//! Fallback. Alternating projections converge at a rate set by the second eigenvalue of the
//! fixed-effect graph, which is close to one on sparse, poorly connected graphs (e.g. worker and
//! firm effects linked by few movers). When the accelerated sweeps have not converged after
//! [`DemeanOptions::cg_after`] iterations, the system is handed, warm-started, to preconditioned
//! conjugate gradient: on the Schur complement in the second fixed effect's coefficients for two
//! fixed effects (whose Jacobi iteration is exactly the alternating projection above, so CG is its
//! Krylov acceleration), and on the full normal equations with the block-diagonal (per fixed
//! effect) preconditioner otherwise. CG needs O(sqrt(condition)) iterations instead of
//! O(condition). The same stopping rule applies, evaluated on the preconditioned true residual.
//!
//! Deliberately does not own: which rows enter (missing values, singletons are decided by the
//! caller with [`singleton_keep_mask`]), degrees of freedom, or recovering the fixed-effect
//! coefficients for reporting.

use rayon::prelude::*;

use crate::error::EstimError;

/// Iteration controls for [`demean_columns`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DemeanOptions {
    /// Convergence tolerance on the coefficient change of one more sweep (fixest's `fixef.tol`).
    pub tol: f64,
    /// Maximum number of iterations per column (accelerated sweeps plus CG steps).
    pub maxiter: usize,
    /// Accelerated sweeps to try before switching to conjugate gradient.
    pub cg_after: usize,
}

impl Default for DemeanOptions {
    fn default() -> Self {
        Self {
            tol: 1e-8,
            maxiter: 10_000,
            cg_after: 50,
        }
    }
}

/// What happened while demeaning a set of columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DemeanReport {
    /// Whether every column met the tolerance.
    pub converged: bool,
    /// Iterations used by the slowest column.
    pub max_iterations: usize,
    /// Indices (into the buffer) of the columns that did not converge.
    pub not_converged: Vec<usize>,
    /// Number of columns that needed the conjugate-gradient fallback.
    pub cg_columns: usize,
}

/// One fixed-effect dimension.
#[derive(Debug, Clone)]
struct FeDim {
    codes: Vec<u32>,
    n_levels: usize,
    /// Weight sum of each level; 1 / weight sum (0 for an empty level).
    inv_weight: Vec<f64>,
}

/// Cross-tabulation of two fixed effects in compressed rows: row = level of the first, entries
/// = levels of the second with the weight of the pair.
#[derive(Debug, Clone)]
struct CrossTab {
    row_ptr: Vec<usize>,
    col: Vec<u32>,
    /// `None` when every pair has weight one (unweighted, each pair observed once, as in a
    /// panel of units and periods): then the table is 4 bytes per pair instead of 12.
    weight: Option<Vec<f64>>,
}

impl CrossTab {
    #[inline]
    fn w(&self, k: usize) -> f64 {
        self.weight.as_ref().map_or(1.0, |w| w[k])
    }
}

/// The fixed effects of a model, prepared for repeated demeaning.
#[derive(Debug, Clone)]
pub struct FixedEffects {
    n_obs: usize,
    /// Dimensions in the order given by the caller.
    dims: Vec<FeDim>,
    weights: Option<Vec<f64>>,
    /// Dimension indices by decreasing number of levels: the largest one is never part of the
    /// iterated state, which keeps the acceleration vectors short.
    order: Vec<usize>,
    /// For two dimensions: rows = `order[0]`, columns = `order[1]`.
    pair: Option<CrossTab>,
}

impl FixedEffects {
    /// Builds the fixed effects from group codes (`codes[q][i]` in `0..n_levels[q]`) and optional
    /// non-negative observation weights.
    pub fn new(
        dims: Vec<(Vec<u32>, usize)>,
        weights: Option<Vec<f64>>,
    ) -> Result<Self, EstimError> {
        let n_obs = dims.first().map_or(0, |d| d.0.len());
        if let Some(w) = &weights {
            if w.len() != n_obs {
                return Err(EstimError::InvalidOption {
                    message: format!("{} weights for {n_obs} observations", w.len()),
                });
            }
            if let Some(bad) = w.iter().find(|x| !(x.is_finite() && **x >= 0.0)) {
                return Err(EstimError::InvalidOption {
                    message: format!("weight `{bad}` is not a finite non-negative number"),
                });
            }
        }
        // One task per dimension (each a serial pass over its codes); the first error in the
        // caller's order is the one reported.
        let built: Vec<Result<FeDim, EstimError>> = dims
            .into_par_iter()
            .enumerate()
            .map(|(q, (codes, n_levels))| fe_dim(q, codes, n_levels, weights.as_deref(), n_obs))
            .collect();
        let out = built
            .into_iter()
            .collect::<Result<Vec<FeDim>, EstimError>>()?;
        let mut order: Vec<usize> = (0..out.len()).collect();
        order.sort_by_key(|&q| std::cmp::Reverse(out[q].n_levels));
        let pair = (out.len() == 2)
            .then(|| crosstab(&out[order[0]], &out[order[1]], weights.as_deref(), n_obs));
        Ok(Self {
            n_obs,
            dims: out,
            weights,
            order,
            pair,
        })
    }

    /// Number of observations.
    pub fn n_obs(&self) -> usize {
        self.n_obs
    }

    /// Number of fixed-effect dimensions.
    pub fn n_dims(&self) -> usize {
        self.dims.len()
    }

    /// Number of levels of each dimension, in the caller's order.
    pub fn n_levels(&self) -> Vec<usize> {
        self.dims.iter().map(|d| d.n_levels).collect()
    }

    /// Group codes of dimension `q` (caller's order).
    pub fn codes(&self, q: usize) -> &[u32] {
        &self.dims[q].codes
    }

    /// The group codes of every dimension (caller's order), handed back to the caller that
    /// moved them in, so large samples need not keep a second copy.
    pub fn into_codes(self) -> Vec<Vec<u32>> {
        self.dims.into_iter().map(|d| d.codes).collect()
    }

    fn weight(&self, i: usize) -> f64 {
        self.weights.as_ref().map_or(1.0, |w| w[i])
    }
}

/// One fixed-effect dimension: its codes checked against `n_levels` and its weight sums.
fn fe_dim(
    q: usize,
    codes: Vec<u32>,
    n_levels: usize,
    weights: Option<&[f64]>,
    n_obs: usize,
) -> Result<FeDim, EstimError> {
    if codes.len() != n_obs {
        return Err(EstimError::InvalidOption {
            message: format!(
                "fixed effect {q} has {} codes for {n_obs} observations",
                codes.len()
            ),
        });
    }
    // One pass: weight sums, and the first code out of range if any.
    let mut wsum = vec![0.0; n_levels];
    let bad = match weights {
        None => codes.iter().find(|&&g| match wsum.get_mut(g as usize) {
            Some(s) => {
                *s += 1.0;
                false
            }
            None => true,
        }),
        Some(w) => codes
            .iter()
            .zip(w)
            .find(|(&g, &wi)| match wsum.get_mut(g as usize) {
                Some(s) => {
                    *s += wi;
                    false
                }
                None => true,
            })
            .map(|(g, _)| g),
    };
    if let Some(bad) = bad {
        return Err(EstimError::InvalidOption {
            message: format!("fixed effect {q} has code `{bad}` but {n_levels} levels"),
        });
    }
    let inv_weight = wsum
        .iter()
        .map(|&s| if s > 0.0 { 1.0 / s } else { 0.0 })
        .collect();
    Ok(FeDim {
        codes,
        n_levels,
        inv_weight,
    })
}

/// Parts the cross-tabulation is built in, in parallel: a fixed number (not the thread count),
/// and each part's rows come out the same whoever builds them, so the table is the same bits.
const CROSSTAB_PARTS: usize = 8;

fn crosstab(rows: &FeDim, cols: &FeDim, weights: Option<&[f64]>, n_obs: usize) -> CrossTab {
    // Counting sort of the observations by row level, then one pass per row that merges equal
    // column levels with a "last row seen" marker: O(n) time, no hashing. The rows are split
    // into parts of about equal numbers of observations, built in parallel and joined.
    let mut start = vec![0usize; rows.n_levels + 1];
    for &g in &rows.codes {
        start[g as usize + 1] += 1;
    }
    for g in 0..rows.n_levels {
        start[g + 1] += start[g];
    }
    // Data sorted by the row fixed effect (a panel sorted by unit) need no permutation.
    let sorted = rows
        .codes
        .par_windows(2)
        .with_min_len(1 << 16)
        .all(|w| w[0] <= w[1]);
    let perm: Vec<u32> = if sorted {
        Vec::new()
    } else {
        let mut fill = start.clone();
        let mut perm = vec![0u32; n_obs];
        for (i, &g) in rows.codes.iter().enumerate() {
            perm[fill[g as usize]] = i as u32;
            fill[g as usize] += 1;
        }
        perm
    };
    let ctx = PartCtx {
        start: &start,
        perm: (!sorted).then_some(perm.as_slice()),
        cols,
        weights,
    };
    // Part boundaries: the first row level at or past each multiple of n_obs / parts.
    let mut bounds: Vec<usize> = (0..=CROSSTAB_PARTS)
        .map(|p| {
            start
                .partition_point(|&s| s < n_obs * p / CROSSTAB_PARTS)
                .min(rows.n_levels)
        })
        .collect();
    bounds[CROSSTAB_PARTS] = rows.n_levels;
    let parts: Vec<TabPart> = bounds
        .par_windows(2)
        .map(|b| crosstab_part(&ctx, b[0]..b[1]))
        .collect();
    join_parts(parts, rows.n_levels)
}

/// What every part of a cross-tabulation reads.
struct PartCtx<'a> {
    start: &'a [usize],
    /// The observations sorted by row level (`None`: already in that order).
    perm: Option<&'a [u32]>,
    cols: &'a FeDim,
    weights: Option<&'a [f64]>,
}

/// The rows `levels` of a cross-tabulation.
struct TabPart {
    row_len: Vec<usize>,
    col: Vec<u32>,
    /// `None` while every pair of the part has weight one.
    weight: Option<Vec<f64>>,
}

fn crosstab_part(ctx: &PartCtx<'_>, levels: std::ops::Range<usize>) -> TabPart {
    let n_pairs_max = ctx.start[levels.end] - ctx.start[levels.start];
    let mut marker = vec![usize::MAX; ctx.cols.n_levels];
    let mut slot = vec![0usize; ctx.cols.n_levels];
    let mut row_len = Vec::with_capacity(levels.len());
    // At most one entry per observation; reserving untouched capacity costs no memory, while
    // growing by doubling would copy the table several times.
    let mut col = Vec::with_capacity(n_pairs_max);
    let mut weight: Option<Vec<f64>> = None;
    // Pair weights stay implicit (one) until a repeated pair or an observation weight needs them.
    if ctx.weights.is_some() {
        weight = Some(Vec::with_capacity(n_pairs_max));
    }
    for g in levels {
        let before = col.len();
        for p in ctx.start[g]..ctx.start[g + 1] {
            let i = ctx.perm.map_or(p, |perm| perm[p] as usize);
            let h = ctx.cols.codes[i] as usize;
            let w = ctx.weights.map_or(1.0, |w| w[i]);
            if marker[h] == g {
                let ws = weight.get_or_insert_with(|| vec![1.0; col.len()]);
                ws[slot[h]] += w;
            } else {
                marker[h] = g;
                slot[h] = col.len();
                col.push(h as u32);
                if let Some(ws) = weight.as_mut() {
                    ws.push(w);
                }
            }
        }
        row_len.push(col.len() - before);
    }
    TabPart {
        row_len,
        col,
        weight,
    }
}

/// The parts' rows one after the other; explicit weights everywhere if any part needs them.
fn join_parts(parts: Vec<TabPart>, n_levels: usize) -> CrossTab {
    let n_pairs: usize = parts.iter().map(|p| p.col.len()).sum();
    let weighted = parts.iter().any(|p| p.weight.is_some());
    let mut row_ptr = Vec::with_capacity(n_levels + 1);
    row_ptr.push(0);
    let mut col = Vec::with_capacity(n_pairs);
    let mut weight = weighted.then(|| Vec::with_capacity(n_pairs));
    for part in parts {
        for len in part.row_len {
            row_ptr.push(row_ptr[row_ptr.len() - 1] + len);
        }
        if let Some(w) = weight.as_mut() {
            match &part.weight {
                Some(pw) => w.extend_from_slice(pw),
                None => w.extend(std::iter::repeat_n(1.0, part.col.len())),
            }
        }
        col.extend_from_slice(&part.col);
    }
    CrossTab {
        row_ptr,
        col,
        weight,
    }
}

/// Replaces each column of `data` (column-major, `n_obs` rows per column) by its residual from
/// the fixed effects. Columns are processed in parallel.
pub fn demean_columns(
    fe: &FixedEffects,
    data: &mut [f64],
    opts: &DemeanOptions,
) -> Result<DemeanReport, EstimError> {
    let n = fe.n_obs;
    if n > 0 && !data.len().is_multiple_of(n) {
        return Err(EstimError::InvalidOption {
            message: format!(
                "buffer of {} values is not a whole number of columns of {n} rows",
                data.len()
            ),
        });
    }
    let mut cols: Vec<&mut [f64]> = data.chunks_mut(n.max(1)).collect();
    demean_slices(fe, &mut cols, opts)
}

/// [`demean_columns`] for columns held apart, each of `n_obs` rows.
pub fn demean_slices(
    fe: &FixedEffects,
    cols: &mut [&mut [f64]],
    opts: &DemeanOptions,
) -> Result<DemeanReport, EstimError> {
    let n = fe.n_obs;
    if !(opts.tol > 0.0 && opts.tol.is_finite()) {
        return Err(EstimError::InvalidOption {
            message: format!("fixed-effect tolerance `{}` must be positive", opts.tol),
        });
    }
    if n == 0 || fe.dims.is_empty() {
        return Ok(DemeanReport {
            converged: true,
            ..DemeanReport::default()
        });
    }
    if let Some(bad) = cols.iter().find(|c| c.len() != n) {
        return Err(EstimError::InvalidOption {
            message: format!("a column of {} values for {n} observations", bad.len()),
        });
    }
    let n_dims = fe.dims.len();
    // Group sums per (column, dimension), one task each: every sum is a serial pass in row
    // order, so the bits do not depend on how many threads share the tasks, while three
    // columns of two fixed effects keep two cores busy where three column tasks would not.
    let shared: &[&mut [f64]] = cols;
    let sums: Vec<Vec<f64>> = (0..shared.len() * n_dims)
        .into_par_iter()
        .map(|t| group_sums(fe, &fe.dims[t % n_dims], shared[t / n_dims]))
        .collect();
    let outcomes: Vec<ColumnOutcome> = cols
        .par_iter_mut()
        .zip(sums.par_chunks(n_dims))
        .map(|(col, sums)| demean_one(fe, sums, col, opts))
        .collect();
    let mut report = DemeanReport {
        converged: true,
        ..DemeanReport::default()
    };
    for (j, o) in outcomes.iter().enumerate() {
        report.max_iterations = report.max_iterations.max(o.iterations);
        report.cg_columns += usize::from(o.used_cg);
        if !o.converged {
            report.converged = false;
            report.not_converged.push(j);
        }
    }
    Ok(report)
}

#[derive(Debug, Clone, Copy)]
struct ColumnOutcome {
    converged: bool,
    iterations: usize,
    used_cg: bool,
}

/// Weighted sums of column `x` per level of dimension `d`, in row order.
fn group_sums(fe: &FixedEffects, d: &FeDim, x: &[f64]) -> Vec<f64> {
    let mut s = vec![0.0; d.n_levels];
    match &fe.weights {
        None => d.codes.iter().zip(x.iter()).for_each(|(&g, &xi)| {
            s[g as usize] += xi;
        }),
        Some(w) => d
            .codes
            .iter()
            .zip(x.iter())
            .zip(w)
            .for_each(|((&g, &xi), &wi)| {
                s[g as usize] += wi * xi;
            }),
    }
    s
}

/// Rows per parallel task when the fitted fixed effects are subtracted from a column.
const SUBTRACT_BLOCK: usize = 1 << 16;

/// Replaces column `x` by its residual, given its group sums per dimension (caller's order).
fn demean_one(
    fe: &FixedEffects,
    sums: &[Vec<f64>],
    x: &mut [f64],
    opts: &DemeanOptions,
) -> ColumnOutcome {
    if fe.dims.len() == 1 {
        let d = &fe.dims[0];
        let mean: Vec<f64> = sums[0]
            .iter()
            .zip(&d.inv_weight)
            .map(|(s, w)| s * w)
            .collect();
        x.par_chunks_mut(SUBTRACT_BLOCK)
            .zip(d.codes.par_chunks(SUBTRACT_BLOCK))
            .for_each(|(xs, codes)| {
                for (xi, &g) in xs.iter_mut().zip(codes) {
                    *xi -= mean[g as usize];
                }
            });
        return ColumnOutcome {
            converged: true,
            iterations: 0,
            used_cg: false,
        };
    }
    if let Some(ct) = &fe.pair {
        return demean_pair(fe, ct, sums, x, opts);
    }
    demean_general(fe, sums, x, opts)
}

/// True when one more sweep moves no coefficient by more than `tol * (0.1 + |a|)`.
fn small_change(x: &[f64], gx: &[f64], tol: f64) -> bool {
    x.iter()
        .zip(gx)
        .all(|(a, b)| (a - b).abs() <= tol * (0.1 + a.abs()))
}

/// Irons-Tuck extrapolation from `x`, `G(x)` and `G(G(x))`, written into `x`. Returns true when
/// the second difference vanishes, i.e. the sequence has numerically stopped moving.
fn irons_tuck(x: &mut [f64], gx: &[f64], ggx: &[f64]) -> bool {
    let mut vprod = 0.0;
    let mut ssq = 0.0;
    for i in 0..x.len() {
        let d1 = ggx[i] - gx[i];
        let d2 = d1 - (gx[i] - x[i]);
        vprod += d1 * d2;
        ssq += d2 * d2;
    }
    if ssq == 0.0 {
        x.copy_from_slice(ggx);
        return true;
    }
    let c = vprod / ssq;
    for i in 0..x.len() {
        x[i] = ggx[i] - c * (ggx[i] - gx[i]);
    }
    false
}

/// Accelerated fixed-point iteration of `map` from zero; returns the last `G(x)`, the number of
/// iterations and whether the criterion was met. Stops early (unconverged) after `limit`
/// iterations so the caller can switch method.
fn accelerated_fixed_point(
    size: usize,
    tol: f64,
    limit: usize,
    mut map: impl FnMut(&[f64], &mut [f64]),
) -> (Vec<f64>, usize, bool) {
    let mut x = vec![0.0; size];
    let mut gx = vec![0.0; size];
    let mut ggx = vec![0.0; size];
    map(&x, &mut gx);
    if small_change(&x, &gx, tol) {
        return (gx, 0, true);
    }
    let mut iter = 0;
    while iter < limit {
        iter += 1;
        map(&gx, &mut ggx);
        if irons_tuck(&mut x, &gx, &ggx) {
            return (ggx, iter, true);
        }
        map(&x, &mut gx);
        if small_change(&x, &gx, tol) {
            return (gx, iter, true);
        }
    }
    (gx, iter, false)
}

/// Two fixed effects: iterate on the coefficients `b` of the smaller one through the
/// cross-tabulation; `a = (S_a - C b) / n_a` follows from `b`.
fn demean_pair(
    fe: &FixedEffects,
    ct: &CrossTab,
    sums: &[Vec<f64>],
    x: &mut [f64],
    opts: &DemeanOptions,
) -> ColumnOutcome {
    let (qa, qb) = (fe.order[0], fe.order[1]);
    let (da, db) = (&fe.dims[qa], &fe.dims[qb]);
    let (sa, sb) = (&sums[qa], &sums[qb]);
    let mut alpha = vec![0.0; da.n_levels];

    // One sweep: alpha from b_in, then b_out from alpha, fused row by row.
    let sweep = |b_in: &[f64], alpha: &mut [f64], b_out: &mut [f64]| {
        b_out.copy_from_slice(sb);
        for g in 0..da.n_levels {
            let range = ct.row_ptr[g]..ct.row_ptr[g + 1];
            let mut s = sa[g];
            for k in range.clone() {
                s -= ct.w(k) * b_in[ct.col[k] as usize];
            }
            let a = s * da.inv_weight[g];
            alpha[g] = a;
            for k in range {
                b_out[ct.col[k] as usize] -= ct.w(k) * a;
            }
        }
        for (b, w) in b_out.iter_mut().zip(&db.inv_weight) {
            *b *= w;
        }
    };

    let limit = opts.cg_after.min(opts.maxiter);
    let (mut beta, mut iterations, mut converged) =
        accelerated_fixed_point(db.n_levels, opts.tol, limit, |b_in, b_out| {
            sweep(b_in, &mut alpha, b_out)
        });
    let mut used_cg = false;
    if !converged && iterations < opts.maxiter {
        used_cg = true;
        // Schur complement in b: A b = rhs with A = diag(n_b) - C' diag(1/n_a) C and
        // rhs = S_b - C' (S_a / n_a); preconditioner diag(n_b).
        let apply = |v: &[f64], out: &mut [f64]| {
            for (o, (&vi, &w)) in out.iter_mut().zip(v.iter().zip(&db.inv_weight)) {
                *o = if w > 0.0 { vi / w } else { 0.0 };
            }
            for (g, &inv_a) in da.inv_weight.iter().enumerate() {
                let range = ct.row_ptr[g]..ct.row_ptr[g + 1];
                let mut s = 0.0;
                for k in range.clone() {
                    s += ct.w(k) * v[ct.col[k] as usize];
                }
                let t = s * inv_a;
                for k in range {
                    out[ct.col[k] as usize] -= ct.w(k) * t;
                }
            }
        };
        let mut rhs = sb.clone();
        for (g, (&s, &inv_a)) in sa.iter().zip(&da.inv_weight).enumerate() {
            let a = s * inv_a;
            for k in ct.row_ptr[g]..ct.row_ptr[g + 1] {
                rhs[ct.col[k] as usize] -= ct.w(k) * a;
            }
        }
        let (cg_iter, cg_ok) = conjugate_gradient(
            apply,
            &db.inv_weight,
            &rhs,
            &mut beta,
            opts.tol,
            opts.maxiter - iterations,
        );
        iterations += cg_iter;
        converged = cg_ok;
    }
    // Coefficients of the larger fixed effect implied by the final b.
    for g in 0..da.n_levels {
        let mut s = sa[g];
        for k in ct.row_ptr[g]..ct.row_ptr[g + 1] {
            s -= ct.w(k) * beta[ct.col[k] as usize];
        }
        alpha[g] = s * da.inv_weight[g];
    }
    // Elementwise, so split across threads without changing a bit.
    x.par_chunks_mut(SUBTRACT_BLOCK)
        .zip(da.codes.par_chunks(SUBTRACT_BLOCK))
        .zip(db.codes.par_chunks(SUBTRACT_BLOCK))
        .for_each(|((xs, ca), cb)| {
            for ((xi, &ga), &gb) in xs.iter_mut().zip(ca).zip(cb) {
                *xi -= alpha[ga as usize] + beta[gb as usize];
            }
        });
    ColumnOutcome {
        converged,
        iterations,
        used_cg,
    }
}

/// Three or more fixed effects: the state is the coefficients of every dimension but the
/// largest; each sweep passes over the observations once per dimension.
fn demean_general(
    fe: &FixedEffects,
    sums: &[Vec<f64>],
    x: &mut [f64],
    opts: &DemeanOptions,
) -> ColumnOutcome {
    let order = &fe.order;
    let q_all = order.len();
    // Offsets of each dimension (in sweep order) in the full coefficient vector.
    let mut offset = vec![0usize; q_all + 1];
    for (r, &q) in order.iter().enumerate() {
        offset[r + 1] = offset[r] + fe.dims[q].n_levels;
    }
    let total = offset[q_all];
    let state_len = total - offset[1];
    let mut coef = vec![0.0; total];

    // One Gauss-Seidel sweep: given the state (all dimensions but the first in `order`), update
    // every dimension in turn from the latest values of the others.
    // Accumulators for each dimension, allocated once and reused by every sweep.
    let mut accumulators: Vec<Vec<f64>> = order
        .iter()
        .map(|&q| vec![0.0; fe.dims[q].n_levels])
        .collect();
    let mut sweep = |state: &[f64], coef: &mut [f64]| {
        coef[offset[1]..].copy_from_slice(state);
        for r in 0..q_all {
            let d = &fe.dims[order[r]];
            let acc = &mut accumulators[r];
            acc.copy_from_slice(&sums[order[r]]);
            for i in 0..fe.n_obs {
                let mut other = 0.0;
                for (s, &q) in order.iter().enumerate() {
                    if s != r {
                        other += coef[offset[s] + fe.dims[q].codes[i] as usize];
                    }
                }
                acc[d.codes[i] as usize] -= fe.weight(i) * other;
            }
            for (g, a) in acc.iter().enumerate() {
                coef[offset[r] + g] = a * d.inv_weight[g];
            }
        }
    };

    let limit = opts.cg_after.min(opts.maxiter);
    let (_, mut iterations, mut converged) =
        accelerated_fixed_point(state_len, opts.tol, limit, |s_in, s_out| {
            sweep(s_in, &mut coef);
            s_out.copy_from_slice(&coef[offset[1]..]);
        });
    let mut used_cg = false;
    if !converged && iterations < opts.maxiter {
        used_cg = true;
        // Full normal equations D'WD a = D'Wx with the per-dimension diagonal preconditioner.
        let mut inv_diag = vec![0.0; total];
        let mut rhs = vec![0.0; total];
        for (r, &q) in order.iter().enumerate() {
            inv_diag[offset[r]..offset[r + 1]].copy_from_slice(&fe.dims[q].inv_weight);
            rhs[offset[r]..offset[r + 1]].copy_from_slice(&sums[q]);
        }
        let apply = |v: &[f64], out: &mut [f64]| {
            out.iter_mut().for_each(|o| *o = 0.0);
            for i in 0..fe.n_obs {
                let mut s = 0.0;
                for (r, &q) in order.iter().enumerate() {
                    s += v[offset[r] + fe.dims[q].codes[i] as usize];
                }
                s *= fe.weight(i);
                for (r, &q) in order.iter().enumerate() {
                    out[offset[r] + fe.dims[q].codes[i] as usize] += s;
                }
            }
        };
        let (cg_iter, cg_ok) = conjugate_gradient(
            apply,
            &inv_diag,
            &rhs,
            &mut coef,
            opts.tol,
            opts.maxiter - iterations,
        );
        iterations += cg_iter;
        converged = cg_ok;
    }
    for i in 0..fe.n_obs {
        let mut s = 0.0;
        for (r, &q) in order.iter().enumerate() {
            s += coef[offset[r] + fe.dims[q].codes[i] as usize];
        }
        x[i] -= s;
    }
    ColumnOutcome {
        converged,
        iterations,
        used_cg,
    }
}

/// Preconditioned conjugate gradient for the symmetric positive semi-definite, consistent system
/// `A x = b`, warm-started at `x`, with diagonal preconditioner `inv_diag` (zero for empty
/// levels). Stops when the preconditioned true residual, i.e. the change one Jacobi step would
/// make, is at most `tol * (0.1 + |x|)` everywhere. Returns iterations and convergence.
fn conjugate_gradient(
    mut apply: impl FnMut(&[f64], &mut [f64]),
    inv_diag: &[f64],
    b: &[f64],
    x: &mut [f64],
    tol: f64,
    maxiter: usize,
) -> (usize, bool) {
    let m = b.len();
    let mut r = vec![0.0; m];
    let mut z = vec![0.0; m];
    let mut p = vec![0.0; m];
    let mut ap = vec![0.0; m];
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut iter = 0;
    // The outer loop restarts from the true residual whenever the recursive residual claims
    // convergence, so rounding drift cannot fake it.
    loop {
        apply(x, &mut ap);
        for i in 0..m {
            r[i] = b[i] - ap[i];
            z[i] = r[i] * inv_diag[i];
        }
        if z.iter()
            .zip(x.iter())
            .all(|(zi, xi)| zi.abs() <= tol * (0.1 + xi.abs()))
        {
            return (iter, true);
        }
        if iter >= maxiter {
            return (iter, false);
        }
        p.copy_from_slice(&z);
        let mut rz = dot(&r, &z);
        while iter < maxiter {
            iter += 1;
            apply(&p, &mut ap);
            let pap = dot(&p, &ap);
            // A non-positive (or NaN) curvature means the residual is already zero.
            let descending = pap > 0.0 && rz > 0.0;
            if !descending {
                break;
            }
            let step = rz / pap;
            for i in 0..m {
                x[i] += step * p[i];
                r[i] -= step * ap[i];
                z[i] = r[i] * inv_diag[i];
            }
            if z.iter()
                .zip(x.iter())
                .all(|(zi, xi)| zi.abs() <= tol * (0.1 + xi.abs()))
            {
                break;
            }
            let rz_new = dot(&r, &z);
            let beta = rz_new / rz;
            rz = rz_new;
            for i in 0..m {
                p[i] = z[i] + beta * p[i];
            }
        }
    }
}

/// Keep-mask after iteratively dropping observations whose level of some fixed effect occurs
/// only once (reghdfe's singleton rule): dropping one singleton can create another, so the pass
/// repeats until nothing changes.
pub fn singleton_keep_mask(dims: &[(&[u32], usize)]) -> Vec<bool> {
    let n = dims.first().map_or(0, |d| d.0.len());
    let mut keep = vec![true; n];
    let mut counts: Vec<Vec<u32>> = dims.iter().map(|d| vec![0; d.1]).collect();
    loop {
        for (c, (codes, _)) in counts.iter_mut().zip(dims) {
            c.iter_mut().for_each(|v| *v = 0);
            for (i, &g) in codes.iter().enumerate() {
                if keep[i] {
                    c[g as usize] += 1;
                }
            }
        }
        let mut changed = false;
        for i in 0..n {
            if keep[i]
                && dims
                    .iter()
                    .zip(&counts)
                    .any(|((codes, _), c)| c[codes[i] as usize] == 1)
            {
                keep[i] = false;
                changed = true;
            }
        }
        if !changed {
            return keep;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dense least-squares residual of `x` on the dummies, as a reference.
    fn dummy_residual(dims: &[(Vec<u32>, usize)], x: &[f64]) -> Vec<f64> {
        let n = x.len();
        let k: usize = dims.iter().map(|d| d.1).sum();
        let mut d = faer::Mat::<f64>::zeros(n, k);
        let mut off = 0;
        for (codes, levels) in dims {
            for (i, &g) in codes.iter().enumerate() {
                d[(i, off + g as usize)] = 1.0;
            }
            off += levels;
        }
        // Minimum-norm least squares through the SVD handles the rank deficiency of the dummies.
        let svd = d.thin_svd().unwrap();
        let u = svd.U();
        let s = svd.S().column_vector();
        let mut fitted = vec![0.0; n];
        for j in 0..s.nrows() {
            if s[j] > 1e-9 * s[0] {
                let proj: f64 = (0..n).map(|i| u[(i, j)] * x[i]).sum();
                for i in 0..n {
                    fitted[i] += u[(i, j)] * proj;
                }
            }
        }
        x.iter().zip(&fitted).map(|(a, b)| a - b).collect()
    }

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 11) as f64) / ((1u64 << 53) as f64)
    }

    fn random_dims(seed: &mut u64, n: usize, levels: &[usize]) -> Vec<(Vec<u32>, usize)> {
        levels
            .iter()
            .map(|&l| {
                let codes: Vec<u32> = (0..n)
                    .map(|i| {
                        if i < l {
                            i as u32
                        } else {
                            (lcg(seed) * l as f64) as u32
                        }
                    })
                    .collect();
                (codes, l)
            })
            .collect()
    }

    fn check(levels: &[usize], opts: DemeanOptions) {
        let mut seed = 7;
        let n = 300;
        let dims = random_dims(&mut seed, n, levels);
        let x: Vec<f64> = (0..n).map(|_| lcg(&mut seed) * 10.0 - 3.0).collect();
        let expect = dummy_residual(&dims, &x);
        let fe = FixedEffects::new(dims, None).unwrap();
        let mut buf = x.clone();
        buf.extend(x.iter().map(|v| v * 2.0));
        let report = demean_columns(&fe, &mut buf, &opts).unwrap();
        assert!(report.converged, "{report:?}");
        for i in 0..n {
            assert!((buf[i] - expect[i]).abs() < 1e-7, "{levels:?} row {i}");
            assert!((buf[n + i] - 2.0 * expect[i]).abs() < 2e-7);
        }
    }

    #[test]
    fn one_two_three_fixed_effects_match_dummies() {
        let tight = DemeanOptions {
            tol: 1e-12,
            ..DemeanOptions::default()
        };
        check(&[7], tight);
        check(&[20, 6], tight);
        check(&[15, 9, 4], tight);
    }

    #[test]
    fn balanced_panel_without_repeated_pairs_matches_dummies() {
        // Every (unit, period) pair once, sorted by unit: the cross-tabulation keeps its pair
        // weights implicit; one unit observed twice in a period makes them explicit.
        let (units, periods) = (30u32, 5u32);
        let mut a: Vec<u32> = (0..units * periods).map(|i| i / periods).collect();
        let mut b: Vec<u32> = (0..units * periods)
            .map(|i| (i * 7 + i / periods) % periods)
            .collect();
        for repeat in [false, true] {
            if repeat {
                a.push(3);
                b.push(b[3 * periods as usize]);
            }
            let n = a.len();
            let mut seed = 11;
            let x: Vec<f64> = (0..n).map(|_| lcg(&mut seed) * 4.0 - 1.0).collect();
            let dims = vec![(a.clone(), units as usize), (b.clone(), periods as usize)];
            let expect = dummy_residual(&dims, &x);
            let fe = FixedEffects::new(dims, None).unwrap();
            assert_eq!(fe.pair.as_ref().unwrap().weight.is_some(), repeat);
            let mut buf = x.clone();
            let tight = DemeanOptions {
                tol: 1e-12,
                ..DemeanOptions::default()
            };
            assert!(demean_columns(&fe, &mut buf, &tight).unwrap().converged);
            for i in 0..n {
                assert!(
                    (buf[i] - expect[i]).abs() < 1e-8,
                    "repeat {repeat}, row {i}"
                );
            }
        }
    }

    #[test]
    fn conjugate_gradient_fallback_matches_dummies() {
        let cg_now = DemeanOptions {
            tol: 1e-12,
            cg_after: 0,
            ..DemeanOptions::default()
        };
        check(&[20, 6], cg_now);
        check(&[15, 9, 4], cg_now);
    }

    #[test]
    fn poorly_connected_chain_converges_with_fallback() {
        // Workers and firms on a long chain: worker i is observed at firms i and i+1. The graph
        // has a tiny spectral gap, which makes plain alternating projections crawl.
        let m = 400;
        let mut a = Vec::new();
        let mut b = Vec::new();
        for i in 0..m {
            a.push(i as u32);
            b.push(i as u32);
            a.push(i as u32);
            b.push((i + 1) as u32);
        }
        let n = a.len();
        let mut seed = 3;
        let x: Vec<f64> = (0..n).map(|_| lcg(&mut seed)).collect();
        let dims = vec![(a, m), (b, m + 1)];
        let expect = dummy_residual(&dims, &x);
        let fe = FixedEffects::new(dims, None).unwrap();
        let mut buf = x.clone();
        let report = demean_columns(
            &fe,
            &mut buf,
            &DemeanOptions {
                tol: 1e-10,
                ..DemeanOptions::default()
            },
        )
        .unwrap();
        assert!(report.converged);
        assert_eq!(report.cg_columns, 1);
        assert!(report.max_iterations < 1_500, "{report:?}");
        // Plain accelerated alternating projections need far more sweeps on this graph.
        let mut slow = x.clone();
        let plain = demean_columns(
            &fe,
            &mut slow,
            &DemeanOptions {
                tol: 1e-10,
                cg_after: usize::MAX,
                maxiter: 100_000,
            },
        )
        .unwrap();
        assert!(
            plain.max_iterations > 10 * report.max_iterations,
            "{plain:?}"
        );
        for i in 0..n {
            assert!((buf[i] - expect[i]).abs() < 1e-6);
        }
    }

    #[test]
    fn weighted_single_fixed_effect() {
        let codes = vec![0, 0, 1, 1, 1];
        let w = vec![1.0, 3.0, 1.0, 1.0, 2.0];
        let fe = FixedEffects::new(vec![(codes, 2)], Some(w)).unwrap();
        let mut x = vec![1.0, 2.0, 3.0, 4.0, 5.0];
        demean_columns(&fe, &mut x, &DemeanOptions::default()).unwrap();
        let m0 = (1.0 + 6.0) / 4.0;
        let m1 = (3.0 + 4.0 + 10.0) / 4.0;
        let want = [1.0 - m0, 2.0 - m0, 3.0 - m1, 4.0 - m1, 5.0 - m1];
        for (a, b) in x.iter().zip(want) {
            assert!((a - b).abs() < 1e-14);
        }
    }

    #[test]
    fn singletons_are_removed_iteratively() {
        // Row 3 is a singleton in fe1; removing it makes row 2 a singleton in fe2.
        let f1 = [0u32, 0, 1, 2];
        let f2 = [0u32, 0, 1, 1];
        let keep = singleton_keep_mask(&[(&f1, 3), (&f2, 2)]);
        assert_eq!(keep, vec![true, true, false, false]);
    }

    #[test]
    fn bad_codes_are_errors() {
        assert!(FixedEffects::new(vec![(vec![0, 3], 2)], None).is_err());
        assert!(FixedEffects::new(vec![(vec![0, 1], 2)], Some(vec![1.0])).is_err());
    }

    /// The cross-tabulation, built in parts, equals one built by a plain scan: rows in level
    /// order, each row's columns in order of first appearance, weights summed per pair.
    #[test]
    fn crosstab_in_parts_equals_a_plain_scan() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |m: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % m
        };
        for case in 0..40 {
            let n = 1 + next(3000) as usize;
            let (la, lb) = (1 + next(200) as usize, 1 + next(30) as usize);
            let sorted = case % 3 == 0;
            let mut a: Vec<u32> = (0..n).map(|_| next(la as u64) as u32).collect();
            if sorted {
                a.sort_unstable();
            }
            let b: Vec<u32> = (0..n).map(|_| next(lb as u64) as u32).collect();
            let w: Option<Vec<f64>> =
                (case % 2 == 1).then(|| (0..n).map(|_| next(5) as f64 * 0.5).collect());
            let dim = |codes: &[u32], n_levels| FeDim {
                codes: codes.to_vec(),
                n_levels,
                inv_weight: Vec::new(),
            };
            let got = crosstab(&dim(&a, la), &dim(&b, lb), w.as_deref(), n);
            let mut row_ptr = vec![0];
            let (mut col, mut weight) = (Vec::new(), Vec::new());
            for g in 0..la as u32 {
                let mut seen: Vec<(u32, f64)> = Vec::new();
                for i in (0..n).filter(|&i| a[i] == g) {
                    let wi = w.as_ref().map_or(1.0, |w| w[i]);
                    match seen.iter_mut().find(|(h, _)| *h == b[i]) {
                        Some((_, s)) => *s += wi,
                        None => seen.push((b[i], wi)),
                    }
                }
                col.extend(seen.iter().map(|p| p.0));
                weight.extend(seen.iter().map(|p| p.1));
                row_ptr.push(col.len());
            }
            assert_eq!(got.row_ptr, row_ptr, "case {case}");
            assert_eq!(got.col, col, "case {case}");
            let got_w: Vec<f64> = (0..got.col.len()).map(|k| got.w(k)).collect();
            assert_eq!(got_w, weight, "case {case}");
        }
    }
}
