//! The Barrodale-Roberts simplex for one quantile (quantreg's `rq.fit.br`, AS 229).
//!
//! Owns: the condensed simplex tableau of Koenker and d'Orey (1987) and the two stages of the
//! algorithm, following AS 229 step by step (entering and leaving rules, tie order, tolerance) so
//! that degenerate or non-unique problems end on quantreg's vertex.
//! Deliberately does not own: the interior point, the simplex finish from a given basis
//! (`vertex`), or standard errors.

use super::design::Design;
use super::Solution;
use crate::error::EstimError;

/// The simplex tableau of the Barrodale-Roberts algorithm in the condensed form of Koenker and
/// d'Orey (1987, AS 229): one row per observation plus three cost rows, one column per
/// coefficient plus the right-hand side. Labels carry the sign of a reflected row or column.
struct Tableau {
    n: usize,
    k: usize,
    /// `(n + 3) x (k + 1)`, row-major. Rows `n`, `n + 1`, `n + 2` hold the total marginal cost and
    /// its two parts (constant and `tau` slope); column `k` holds the current basic values.
    cells: Vec<f64>,
    /// For each row: `±j` (1-based) when coefficient `j` is basic in it, `±(k + i)` when
    /// observation `i` (1-based) is.
    row_label: Vec<i64>,
    /// For each column: `±j` while coefficient `j` is non-basic, `±(k + i)` once observation `i`
    /// has been moved out of the basis into it.
    col_label: Vec<i64>,
}

impl Tableau {
    fn width(&self) -> usize {
        self.k + 1
    }

    fn at(&self, i: usize, j: usize) -> f64 {
        self.cells[i * self.width() + j]
    }

    fn set(&mut self, i: usize, j: usize, v: f64) {
        let w = self.width();
        self.cells[i * w + j] = v;
    }

    fn cost(&self, j: usize) -> f64 {
        self.at(self.n, j)
    }

    /// Reflects column `j` (all observation and cost rows).
    fn negate_column(&mut self, j: usize) {
        for i in 0..self.n + 3 {
            let v = self.at(i, j);
            self.set(i, j, -v);
        }
        self.col_label[j] = -self.col_label[j];
    }

    fn swap_columns(&mut self, a: usize, b: usize) {
        let w = self.width();
        for i in 0..self.n + 3 {
            self.cells.swap(i * w + a, i * w + b);
        }
        self.col_label.swap(a, b);
    }

    /// Swaps rows `a` and `b` in columns `from..` (earlier columns were set aside as dependent).
    fn swap_rows(&mut self, a: usize, b: usize, from: usize) {
        if a == b {
            return;
        }
        let w = self.width();
        for j in from..w {
            self.cells.swap(a * w + j, b * w + j);
        }
        self.row_label.swap(a, b);
    }

    /// Moves the observation of row `out` to the other side of the fit: its residual changes sign,
    /// so its contribution to the marginal costs flips.
    fn pass_through(&mut self, out: usize, from: usize) {
        let (c1, c2) = (self.n, self.n + 1);
        for j in from..self.width() {
            let d = self.at(out, j);
            self.set(c1, j, self.at(c1, j) - d - d);
            self.set(c2, j, self.at(c2, j) - d - d);
            self.set(out, j, -d);
        }
        self.row_label[out] = -self.row_label[out];
    }

    /// Gauss-Jordan exchange of the basic variable of row `out` with the non-basic one of
    /// column `inc`, over columns `from..`.
    fn pivot(&mut self, out: usize, inc: usize, from: usize) {
        let w = self.width();
        let pivot = self.at(out, inc);
        for j in from..w {
            if j != inc {
                self.cells[out * w + j] /= pivot;
            }
        }
        for i in 0..self.n + 3 {
            if i == out {
                continue;
            }
            let d = self.cells[i * w + inc];
            for j in from..w {
                if j != inc {
                    self.cells[i * w + j] -= d * self.cells[out * w + j];
                }
            }
        }
        for i in 0..self.n + 3 {
            if i != out {
                self.cells[i * w + inc] = -self.cells[i * w + inc] / pivot;
            }
        }
        self.cells[out * w + inc] = 1.0 / pivot;
        std::mem::swap(&mut self.row_label[out], &mut self.col_label[inc]);
    }

    /// Rows `first..n` whose entry in column `inc` exceeds `tol`, with their ratio of basic value
    /// to entry: the breakpoints of the line search along the entering direction.
    fn ratio_candidates(&self, first: usize, inc: usize, tol: f64) -> Vec<(f64, usize)> {
        (first..self.n)
            .filter_map(|i| {
                let d = self.at(i, inc);
                (d > tol).then(|| (self.at(i, self.k) / d, i))
            })
            .collect()
    }
}

/// Removes and returns the row with the smallest ratio; among equal ratios the earliest in the
/// list wins, and the last entry fills the hole. Both details decide which vertex is reached on
/// degenerate problems, so they follow AS 229.
fn take_smallest_ratio(candidates: &mut Vec<(f64, usize)>) -> Option<usize> {
    let mut best = f64::MAX;
    let mut at = None;
    for (pos, &(ratio, _)) in candidates.iter().enumerate() {
        if ratio < best {
            best = ratio;
            at = Some(pos);
        }
    }
    at.map(|pos| candidates.swap_remove(pos).1)
}

/// Where the simplex stands between its stages.
#[derive(Debug, Default)]
struct Progress {
    /// Columns before `kr` were set aside as linearly dependent.
    kr: usize,
    /// Rows before `kl` hold the basic coefficients.
    kl: usize,
    pivots: usize,
    passes: usize,
}

/// The Barrodale-Roberts simplex for one quantile, as the Koenker-d'Orey algorithm behind
/// quantreg's `rq.fit.br` (without the rank-inversion intervals). Stage 1 brings the coefficients
/// into the basis; stage 2 exchanges observations until no reduced cost is negative.
pub(super) fn barrodale_roberts(
    design: &Design,
    y: &[f64],
    tau: f64,
) -> Result<Solution, EstimError> {
    let k = design.k;
    // quantreg's tolerance: .Machine$double.eps^(2/3).
    let tol = f64::EPSILON.powf(2.0 / 3.0);
    let mut tab = Tableau::start(design, y, tau);
    let mut progress = Progress::default();
    stage_one(&mut tab, &mut progress, tol)?;
    stage_two(&mut tab, &mut progress, tol)?;
    if progress.kr > 0 {
        return Err(EstimError::Numerical {
            message: "singular design matrix in quantile regression".to_string(),
        });
    }
    let nonunique = (0..k).any(|j| {
        let d = tab.cost(j).abs();
        d <= tol || 2.0 - d <= tol
    });
    let mut coef = vec![0.0; k];
    for i in 0..progress.kl {
        let label = tab.row_label[i];
        let idx = label.unsigned_abs() as usize - 1;
        coef[idx] = tab.at(i, k) * label.signum() as f64;
    }
    Ok(Solution {
        coef,
        iterations: progress.pivots + progress.passes,
        converged: true,
        nonunique,
        messages: Vec::new(),
    })
}

impl Tableau {
    /// The tableau at `b = 0`, with the three cost rows filled in.
    fn start(design: &Design, y: &[f64], tau: f64) -> Self {
        let (n, k) = (design.n, design.k);
        let mut tab = Tableau {
            n,
            k,
            cells: vec![0.0; (n + 3) * (k + 1)],
            row_label: vec![0; n],
            col_label: (1..=k as i64).collect(),
        };
        for (i, &yi) in y.iter().enumerate() {
            let row = design.row(i);
            for (j, &v) in row.iter().enumerate() {
                tab.set(i, j, v);
            }
            tab.set(i, k, yi);
            tab.row_label[i] = (k + i + 1) as i64;
            // Start from b = 0: an observation with a negative response starts below the fit,
            // which the tableau records by reflecting its row.
            if yi < 0.0 {
                for j in 0..=k {
                    tab.set(i, j, -tab.at(i, j));
                }
                tab.row_label[i] = -tab.row_label[i];
            }
        }
        let (c1, c2, c3) = (n, n + 1, n + 2);
        for j in 0..k {
            let mut constant = 0.0;
            let mut slope = 0.0;
            for i in 0..n {
                let aux = tab.at(i, j);
                let s = if tab.row_label[i] > 0 { 1.0 } else { -1.0 };
                constant += aux * (1.0 - s);
                slope += aux * s;
            }
            tab.set(c2, j, constant);
            tab.set(c3, j, 2.0 * slope);
            tab.set(c1, j, constant + 2.0 * slope * tau);
        }
        tab
    }
}

/// Stage 1: make every coefficient basic, choosing at each step the non-basic coefficient with
/// the largest absolute marginal cost.
fn stage_one(tab: &mut Tableau, p: &mut Progress, tol: f64) -> Result<(), EstimError> {
    let k = tab.k;
    'stage1: while p.pivots + p.kr < k {
        let mut best = -1.0;
        let mut entering = None;
        for j in p.kr..k {
            if tab.col_label[j].unsigned_abs() as usize <= k {
                let d = tab.cost(j).abs();
                if d > best {
                    best = d;
                    entering = Some(j);
                }
            }
        }
        let inc = entering.ok_or_else(|| simplex_failure("no entering coefficient"))?;
        if tab.cost(inc) < 0.0 {
            tab.negate_column(inc);
        }
        let mut candidates = tab.ratio_candidates(p.kl, inc, tol);
        loop {
            let Some(out) = take_smallest_ratio(&mut candidates) else {
                // No row can leave: the column depends on the coefficients already basic.
                tab.swap_columns(p.kr, inc);
                p.kr += 1;
                continue 'stage1;
            };
            let pivot = tab.at(out, inc);
            if tab.cost(inc) - pivot - pivot <= tol {
                tab.pivot(out, inc, p.kr);
                p.pivots += 1;
                p.kl += 1;
                tab.swap_rows(out, p.pivots - 1, p.kr);
                continue 'stage1;
            }
            tab.pass_through(out, p.kr);
            p.passes += 1;
        }
    }
    Ok(())
}

/// Stage 2: exchange a non-basic observation for a basic one while some reduced cost is
/// negative (a cost outside [0, 2] in the tableau's scaling).
fn stage_two(tab: &mut Tableau, p: &mut Progress, tol: f64) -> Result<(), EstimError> {
    let (n, k) = (tab.n, tab.k);
    let (c1, c2) = (n, n + 1);
    loop {
        let mut best = -f64::MAX;
        let mut entering = None;
        for j in p.kr..k {
            let mut d = tab.cost(j);
            if d < 0.0 {
                if d > -2.0 {
                    continue;
                }
                d = -d - 2.0;
            }
            if d > best {
                best = d;
                entering = Some(j);
            }
        }
        if best <= tol {
            return Ok(());
        }
        let inc = entering.ok_or_else(|| simplex_failure("no entering observation"))?;
        if tab.cost(inc) <= 0.0 {
            tab.negate_column(inc);
            tab.set(c1, inc, tab.at(c1, inc) - 2.0);
            tab.set(c2, inc, tab.at(c2, inc) - 2.0);
        }
        let mut candidates = tab.ratio_candidates(p.kl, inc, tol);
        loop {
            let Some(out) = take_smallest_ratio(&mut candidates) else {
                return Err(simplex_failure(
                    "premature end, possible conditioning problem in x",
                ));
            };
            let pivot = tab.at(out, inc);
            if tab.cost(inc) - pivot - pivot <= tol {
                tab.pivot(out, inc, p.kr);
                p.pivots += 1;
                break;
            }
            tab.pass_through(out, p.kr);
            p.passes += 1;
        }
    }
}

fn simplex_failure(what: &str) -> EstimError {
    EstimError::Numerical {
        message: format!("quantile-regression simplex failed: {what}"),
    }
}
