//! Portnoy-Koenker preprocessing for large samples (quantreg `"pfn"`).
//!
//! Owns: the seeded subsample fit, the leverage-scaled band that decides which observations are
//! globbed into two pseudo-observations, the fix-up rounds, and R's type-7 sample quantile used
//! for the band (and by the kernel standard errors).
//! Deliberately does not own: the solvers it calls (`interior`, `vertex`).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::design::{chol_solve, residuals_of, weighted_cholesky, Design};
use super::interior::frisch_newton;
use super::kernels::LANES;
use super::vertex::{basis_near_residuals, vertex_descent};
use super::Solution;
use crate::error::EstimError;

/// Seed of the preprocessing subsample: fixed, so a fit never depends on anything but its data.
pub(super) const PFN_SEED: u64 = 20_240_611;

/// The first preprocessing round's subsample and its leverage band. They depend on the design,
/// the response and the seed but not on `tau`, so a fit and its two `nid` refits share one
/// (the band alone is a pass of `k^2` products over every observation).
pub(super) struct Pilot {
    /// Subsample size of the first round.
    m: usize,
    round: Round,
    /// The generator after drawing the first subsample: later rounds continue from it.
    rng: ChaCha8Rng,
}

/// One round's subsample and the band `sqrt(x_i' (X_s'X_s)^{-1} x_i)` of every observation.
struct Round {
    sub: Design,
    sub_y: Vec<f64>,
    band: Vec<f64>,
}

impl Pilot {
    /// `None` when the first subsample would be the whole sample (then the plain interior point
    /// runs).
    pub(super) fn new(design: &Design, y: &[f64], seed: u64) -> Result<Option<Self>, EstimError> {
        let m = first_subsample_size(design.n, design.k);
        if m >= design.n {
            return Ok(None);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let round = Round::draw(design, y, &mut rng, m)?;
        Ok(Some(Self { m, round, rng }))
    }
}

fn first_subsample_size(n: usize, k: usize) -> usize {
    ((k as f64).sqrt() * (n as f64).powf(2.0 / 3.0)).round() as usize
}

impl Round {
    fn draw(
        design: &Design,
        y: &[f64],
        rng: &mut ChaCha8Rng,
        m: usize,
    ) -> Result<Self, EstimError> {
        let (n, k) = (design.n, design.k);
        let sample = sample_without_replacement(rng, n, m);
        let sub = design.select(&sample);
        let sub_y: Vec<f64> = sample.iter().map(|&i| y[i]).collect();
        // Leverage-scaled band around the subsample fit: sqrt(x_i' (X_s'X_s)^{-1} x_i).
        let ones = vec![1.0; sub.n];
        let chol = weighted_cholesky(&sub, &ones)?;
        // `gram_t[r * stride + j]` is entry `r` of column `j` of the inverse (rows padded to a
        // multiple of `LANES`): for each row the `k` products `G_j . x_i` then accumulate side
        // by side, each in the order of `r`.
        let stride = k.next_multiple_of(LANES);
        let mut gram_t = vec![0.0; k * stride];
        for j in 0..k {
            let unit: Vec<f64> = (0..k).map(|r| f64::from(u8::from(r == j))).collect();
            for (r, v) in chol_solve(&chol, &unit).into_iter().enumerate() {
                gram_t[r * stride + j] = v;
            }
        }
        let band = leverage_band(&design.data, k, &gram_t);
        Ok(Self { sub, sub_y, band })
    }
}

/// `sqrt(max(0, x_i' G x_i))` for every row, `G` symmetric with rows padded to a multiple of
/// [`LANES`] in `gram_t`. Each `(G x_i)_j` sums over `r` in order (in a register, [`LANES`]
/// entries at a time), then `x_i' (G x_i)` over `j` in order.
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn leverage_band(data: &[f64], k: usize, gram_t: &[f64]) -> Vec<f64> {
    let chunks = k.div_ceil(LANES);
    let (g_chunks, _) = gram_t.as_chunks::<LANES>();
    let mut gx = vec![0.0; chunks * LANES];
    data.chunks_exact(k)
        .map(|xi| {
            for c in 0..chunks {
                let mut acc = [0.0; LANES];
                for (&xr, g_row) in xi.iter().zip(g_chunks.chunks_exact(chunks)) {
                    acc = std::array::from_fn(|l| acc[l] + g_row[c][l] * xr);
                }
                gx[c * LANES..(c + 1) * LANES].copy_from_slice(&acc);
            }
            let quad: f64 = xi.iter().zip(&gx).map(|(xj, v)| xj * v).sum();
            quad.max(0.0).sqrt()
        })
        .collect()
}

/// Portnoy-Koenker preprocessing: fit a subsample, keep the observations whose residuals could be
/// on either side of the full-sample fit, glob the rest into two pseudo-observations, solve, and
/// repeat with fix-ups until every globbed observation is on its predicted side. The reduced
/// problem's optimum is then optimal for the full problem; a final simplex check on the full
/// sample makes it an exact vertex of the full problem. Without a `pilot` (the subsample would
/// be the whole sample) the plain interior point runs.
pub(super) fn preprocessed_frisch_newton(
    design: &Design,
    y: &[f64],
    tau: f64,
    pilot: Option<&Pilot>,
) -> Result<Solution, EstimError> {
    let progress = start_preprocessed(design, y, tau, pilot)?;
    finish_preprocessed(design, y, tau, pilot, progress)
}

/// A preprocessed fit after its first round's subsample fit and globbing: the first half of the
/// work, which [`finish_preprocessed`] completes, on any thread.
pub(super) struct Progress {
    /// Subsample size of the current round.
    m: usize,
    rng: ChaCha8Rng,
    messages: Vec<String>,
    iterations: usize,
    /// The current round's globs; `None` when the subsample would be the whole sample.
    globs: Option<Globs>,
}

/// Which observations are globbed below and above the fit, and the expected glob size.
struct Globs {
    below: Vec<bool>,
    above: Vec<bool>,
    glob_m: f64,
}

/// The first round: the subsample fit and the globs it implies.
pub(super) fn start_preprocessed(
    design: &Design,
    y: &[f64],
    tau: f64,
    pilot: Option<&Pilot>,
) -> Result<Progress, EstimError> {
    let mut progress = Progress {
        m: pilot.map_or(usize::MAX, |p| p.m),
        rng: pilot.map_or_else(|| ChaCha8Rng::seed_from_u64(PFN_SEED), |p| p.rng.clone()),
        messages: Vec::new(),
        iterations: 0,
        globs: None,
    };
    if let Some(pilot) = pilot {
        progress.globs = glob_round(design, y, tau, pilot, &mut progress)?;
    }
    Ok(progress)
}

/// One round's subsample fit and globs (`None` when the subsample would be the whole sample).
fn glob_round(
    design: &Design,
    y: &[f64],
    tau: f64,
    pilot: &Pilot,
    progress: &mut Progress,
) -> Result<Option<Globs>, EstimError> {
    let (n, m) = (design.n, progress.m);
    if m >= n {
        return Ok(None);
    }
    let later_round = if m == pilot.m {
        None
    } else {
        Some(Round::draw(design, y, &mut progress.rng, m)?)
    };
    let Round { sub, sub_y, band } = later_round.as_ref().unwrap_or(&pilot.round);
    let first = frisch_newton(sub, sub_y, tau)?;
    progress.iterations += first.iterations;
    let resid = residuals_of(design, y, &first.coef);
    let glob_m = 0.8 * m as f64;
    let lo_q = (1.0 / n as f64).max(tau - glob_m / (2.0 * n as f64));
    let hi_q = (tau + glob_m / (2.0 * n as f64)).min((n as f64 - 1.0) / n as f64);
    let mut work: Vec<f64> = (0..n).map(|i| resid[i] / band[i].max(1e-6)).collect();
    let kappa_lo = quantile_type7_in(&mut work, lo_q);
    let kappa_hi = quantile_type7_in(&mut work, hi_q);
    Ok(Some(Globs {
        below: (0..n).map(|i| resid[i] < band[i] * kappa_lo).collect(),
        above: (0..n).map(|i| resid[i] > band[i] * kappa_hi).collect(),
        glob_m,
    }))
}

/// The reduced fits with their fix-up rounds (a larger subsample when too many are needed),
/// then the simplex finish on the full sample.
pub(super) fn finish_preprocessed(
    design: &Design,
    y: &[f64],
    tau: f64,
    pilot: Option<&Pilot>,
    mut progress: Progress,
) -> Result<Solution, EstimError> {
    let Some(pilot) = pilot else {
        return frisch_newton(design, y, tau);
    };
    let n = design.n;
    // The residuals on the full sample of the reduced problem's fit: the finish starts there.
    let resid = 'outer: loop {
        let Some(Globs {
            mut below,
            mut above,
            glob_m,
        }) = progress.globs.take()
        else {
            let sol = frisch_newton(design, y, tau)?;
            progress.iterations += sol.iterations;
            break 'outer residuals_of(design, y, &sol.coef);
        };
        // Each round moves at least one observation out of the globs, so this ends.
        loop {
            let (reduced, reduced_y) = globbed_problem(design, y, &below, &above);
            let sol = frisch_newton(&reduced, &reduced_y, tau)?;
            progress.iterations += sol.iterations;
            let resid = residuals_of(design, y, &sol.coef);
            let wrong_above: Vec<usize> = (0..n).filter(|&i| above[i] && resid[i] < 0.0).collect();
            let wrong_below: Vec<usize> = (0..n).filter(|&i| below[i] && resid[i] > 0.0).collect();
            let wrong = wrong_above.len() + wrong_below.len();
            if wrong == 0 {
                break 'outer resid;
            }
            if wrong as f64 > 0.1 * glob_m {
                // The subsample fit was too far off: start again with a larger one.
                progress
                    .messages
                    .push("too many fix-ups in preprocessing: doubling the subsample".to_string());
                progress.m *= 2;
                progress.globs = glob_round(design, y, tau, pilot, &mut progress)?;
                continue 'outer;
            }
            for i in wrong_above {
                above[i] = false;
            }
            for i in wrong_below {
                below[i] = false;
            }
        }
    };
    // Verify (and if needed repair) optimality on the full sample from the reduced fit's basis.
    let basis = basis_near_residuals(design, &resid)?;
    let vertex = vertex_descent(design, y, tau, basis)?;
    Ok(Solution {
        coef: vertex.coef,
        iterations: progress.iterations + vertex.steps,
        converged: true,
        nonunique: false,
        messages: progress.messages,
    })
}

/// The kept observations plus one pseudo-observation summing each globbed side.
fn globbed_problem(
    design: &Design,
    y: &[f64],
    below: &[bool],
    above: &[bool],
) -> (Design, Vec<f64>) {
    let k = design.k;
    let mut reduced = Design {
        n: 0,
        k,
        data: Vec::new(),
    };
    let mut reduced_y = Vec::new();
    // One pass: kept rows are copied, globbed rows summed per side (each sum in row order).
    let (mut gx_below, mut gx_above) = (vec![0.0; k], vec![0.0; k]);
    let (mut gy_below, mut gy_above) = (0.0, 0.0);
    let (mut any_below, mut any_above) = (false, false);
    for (i, row) in design.data.chunks_exact(k).enumerate() {
        if below[i] {
            any_below = true;
            gx_below.iter_mut().zip(row).for_each(|(g, x)| *g += x);
            gy_below += y[i];
        } else if above[i] {
            any_above = true;
            gx_above.iter_mut().zip(row).for_each(|(g, x)| *g += x);
            gy_above += y[i];
        } else {
            reduced.data.extend_from_slice(row);
            reduced_y.push(y[i]);
        }
    }
    reduced.n = reduced_y.len();
    for (any, gx, gy) in [
        (any_below, gx_below, gy_below),
        (any_above, gx_above, gy_above),
    ] {
        if any {
            reduced.data.extend_from_slice(&gx);
            reduced.n += 1;
            reduced_y.push(gy);
        }
    }
    (reduced, reduced_y)
}

/// `m` distinct indices of `0..n` in random order (partial Fisher-Yates).
fn sample_without_replacement(rng: &mut ChaCha8Rng, n: usize, m: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..m.min(n) {
        let j = rng.random_range(i..n);
        idx.swap(i, j);
    }
    idx.truncate(m.min(n));
    idx
}

/// R's default `quantile(x, p)` (type 7).
pub(super) fn quantile_type7(values: &[f64], p: f64) -> f64 {
    quantile_type7_in(&mut values.to_vec(), p)
}

/// [`quantile_type7`] of the values in `work`, which it reorders (any order of the same values
/// gives the same quantile, so one copy serves several calls).
fn quantile_type7_in(work: &mut [f64], p: f64) -> f64 {
    // Only the order statistics at `lo` and `lo + 1` matter: a selection finds them in linear time
    // and gives exactly the values a full sort would.
    let n = work.len();
    let index = (n - 1) as f64 * p;
    let lo = index.floor() as usize;
    let h = index - lo as f64;
    let (_, &mut at_lo, above) = work.select_nth_unstable_by(lo, f64::total_cmp);
    if index > lo as f64 {
        let at_hi = above
            .iter()
            .copied()
            .min_by(f64::total_cmp)
            .unwrap_or(at_lo);
        if at_hi != at_lo {
            return (1.0 - h) * at_lo + h * at_hi;
        }
    }
    at_lo
}
