//! Linear quantile regression (Koenker and Bassett) with the inference of R quantreg 5.94.
//!
//! Owns: the exact solution of the quantile-regression linear programme on a numeric design
//! matrix — the Barrodale-Roberts simplex in the Koenker-d'Orey form (quantreg `method = "br"`),
//! the Frisch-Newton interior point of Portnoy and Koenker (`method = "fn"`, with an exact simplex
//! finish so it ends on a vertex) and its preprocessing variant for large samples (`"pfn"`); the
//! standard errors of quantreg's `summary.rq(se = "iid" | "nid" | "ker", hs = TRUE)`; and seeded
//! pairs and cluster bootstraps.
//! Deliberately does not own: formulas, variable names, missing-value handling, fixed effects or
//! weights. The caller hands in a complete design matrix (intercept column included when wanted)
//! and a response; [`crate::fit`] does the formula work. Rank-inversion intervals (`se = "rank"`) are not
//! implemented.
//!
//! Conventions.
//! * The simplex follows AS 229 step by step (entering and leaving rules, the order in which tied
//!   ratios are taken, the tolerance `eps^(2/3)`), so on degenerate or non-unique problems it ends
//!   on quantreg's vertex.
//! * The interior point works on `y / mean|y|` and stops at a relative duality gap of `1e-11`; its
//!   answer only seeds the basis of the `k` observations nearest the fit, from which simplex
//!   steps (edge moves with an exact line search) reach a verified optimal vertex. The
//!   preprocessing subsample is drawn from a fixed seed, so results depend on the data only.
//! * `Auto` takes the simplex up to 5,000 observations and 40 columns, the plain interior point up
//!   to 10,000 observations (or above 40 columns) and
//!   the preprocessed one above (see [`AUTO_FN_MAX_N`] for the measurements behind the cut).
//! * `nid` refits at `tau ± h` with the same solver as the fit (quantreg uses the fit's method),
//!   the two refits side by side on the rayon pool; each is sequential, so the result does not
//!   depend on the thread count. `iid` always fits its sparsity regression with the simplex
//!   (quantreg calls `rq()` there).
//! * Bootstrap replicate `b` draws rows (or whole clusters) from its own ChaCha8 generator, seeded
//!   with the `b`-th number of a ChaCha8 generator seeded with `seed`: the draws depend on the seed
//!   only, never on the thread count, and no `reps x n` index table is held in memory. The
//!   covariance is the sample covariance (divisor `B - 1`) of the replicates, as R's `cov(B)`.

//!
//! Module map: this file holds the public types, [`rq`] and the dispatch to a solver;
//! `design` the row-major design matrix and the small dense algebra; `kernels` its SIMD row and
//! column products (same sums bit for bit on every CPU); `simplex` the
//! Barrodale-Roberts simplex; `interior` the Frisch-Newton interior point; `vertex` the simplex
//! finish that turns an approximate fit into an exact optimal vertex; `preprocess` the
//! Portnoy-Koenker preprocessing; `inference` the standard errors and the bootstrap.

mod design;
mod inference;
mod interior;
mod kernels;
mod preprocess;
mod simplex;
mod vertex;

use faer::MatRef;
use serde::{Deserialize, Serialize};
use statrs::distribution::{Continuous, ContinuousCDF, Normal};

use crate::error::EstimError;
use design::{cross_product, residuals_of, Design};
pub(crate) use design::{SHARED_MAX_CELLS, SHARED_MIN_K};
use inference::Inference;
use interior::frisch_newton;
use preprocess::{
    finish_preprocessed, preprocessed_frisch_newton, start_preprocessed, Pilot, Progress, PFN_SEED,
};
use simplex::barrodale_roberts;

/// How the linear programme is solved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RqMethod {
    /// Barrodale-Roberts simplex (quantreg `"br"`): exact, and on non-unique problems it picks
    /// the same vertex as quantreg.
    Br,
    /// Frisch-Newton interior point (quantreg `"fn"`) finished by simplex steps to an exact vertex.
    Fn,
    /// Frisch-Newton after Portnoy-Koenker preprocessing (quantreg `"pfn"`): observations far from
    /// the fit are globbed into two pseudo-observations.
    Pfn,
    /// [`RqMethod::Br`] up to [`AUTO_BR_MAX_N`] observations, [`RqMethod::Fn`] up to
    /// [`AUTO_FN_MAX_N`], [`RqMethod::Pfn`] above.
    #[default]
    Auto,
}

/// Largest sample [`RqMethod::Auto`] gives to the simplex.
pub const AUTO_BR_MAX_N: usize = 5_000;
/// Most columns [`RqMethod::Auto`] gives to the simplex: its pivots grow with the number of
/// columns, so a pooled regression with a few hundred fixed-effect dummies (3,000 rows, 320
/// columns) takes seconds with the simplex and a fraction of that with the interior point, which
/// ends on the same verified vertex.
pub const AUTO_BR_MAX_P: usize = 40;
/// Largest sample [`RqMethod::Auto`] gives to the plain interior point. Measured on the
/// `k = 10` benchmark design with `nid` errors, the preprocessing already wins clearly at
/// 10,000 observations (about 0.04 s against 0.07 s) and by 3x at 100,000; around 5,000 the two
/// are even.
pub const AUTO_FN_MAX_N: usize = 10_000;

/// Which standard errors to compute.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub enum RqSe {
    /// None: `std_error` and `covariance` are left empty.
    None,
    /// Koenker-Bassett, assuming iid errors; the sparsity comes from a median regression on the
    /// order statistics of the residuals nearest zero, as quantreg does.
    Iid,
    /// Hendricks-Koenker sandwich with a local sparsity from refits at `tau ± h`.
    #[default]
    Nid,
    /// Powell kernel sandwich.
    Ker,
    /// Pairs bootstrap, or whole-cluster pairs bootstrap when `clusters` (one code per row) is set.
    Bootstrap {
        reps: usize,
        seed: u64,
        clusters: Option<Vec<u32>>,
    },
}

/// Bandwidth rule for the sparsity estimates (quantreg `bandwidth.rq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Bandwidth {
    /// Hall and Sheather (1988), rate `n^(-1/3)`, `alpha = 0.05` (quantreg `hs = TRUE`).
    #[default]
    HallSheather,
    /// Bofinger (1975), rate `n^(-1/5)` (quantreg `hs = FALSE`).
    Bofinger,
}

/// What to estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RqOptions {
    /// The quantile, strictly between 0 and 1.
    pub tau: f64,
    pub method: RqMethod,
    pub se: RqSe,
    pub bandwidth: Bandwidth,
}

impl Default for RqOptions {
    fn default() -> Self {
        Self {
            tau: 0.5,
            method: RqMethod::Auto,
            se: RqSe::Nid,
            bandwidth: Bandwidth::HallSheather,
        }
    }
}

/// A fitted quantile regression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RqFit {
    pub tau: f64,
    /// One coefficient per column of the design matrix.
    pub coef: Vec<f64>,
    /// Square roots of the covariance diagonal; empty with [`RqSe::None`].
    pub std_error: Vec<f64>,
    /// `k x k` covariance of `coef`, row by row; empty with [`RqSe::None`].
    pub covariance: Vec<Vec<f64>>,
    /// The minimised check-function sum, `sum rho_tau(y - x'b)`.
    pub objective: f64,
    /// `y - x'b`, one per row.
    pub residuals: Vec<f64>,
    pub nobs: usize,
    /// The solver that ran (never [`RqMethod::Auto`]).
    pub method: RqMethod,
    /// Simplex pivots (and pass-throughs) or interior-point iterations plus finishing steps.
    pub iterations: usize,
    /// True when the solver reached a verified optimal vertex.
    pub converged: bool,
    /// True when the simplex saw a zero reduced cost at the optimum (quantreg's "solution may be
    /// nonunique"); the interior-point methods do not check and report false.
    pub nonunique: bool,
    /// Warnings that did not stop the estimation (non-positive densities, failed draws, ...).
    pub messages: Vec<String>,
}

/// `rho_tau(u) = u * (tau - 1{u < 0})`, the check function.
pub fn check_loss(u: f64, tau: f64) -> f64 {
    if u < 0.0 {
        u * (tau - 1.0)
    } else {
        u * tau
    }
}

/// `bandwidth.rq(tau, n, hs, alpha = 0.05)`: the bandwidth in tau units for sparsity estimation.
pub fn bandwidth(tau: f64, n: usize, rule: Bandwidth) -> f64 {
    let normal = standard_normal();
    let x0 = normal.inverse_cdf(tau);
    let f0 = normal.pdf(x0);
    let n = n as f64;
    match rule {
        Bandwidth::HallSheather => {
            let z = normal.inverse_cdf(1.0 - 0.05 / 2.0);
            n.powf(-1.0 / 3.0)
                * z.powf(2.0 / 3.0)
                * ((1.5 * f0 * f0) / (2.0 * x0 * x0 + 1.0)).powf(1.0 / 3.0)
        }
        Bandwidth::Bofinger => {
            n.powf(-0.2) * ((4.5 * f0.powi(4)) / (2.0 * x0 * x0 + 1.0).powi(2)).powf(0.2)
        }
    }
}

/// Fits the `tau`-th regression quantile of `y` on the columns of `x` (`n x k`, intercept included
/// by the caller) and computes the requested standard errors.
pub fn rq(x: MatRef<'_, f64>, y: &[f64], opts: &RqOptions) -> Result<RqFit, EstimError> {
    let design = Design::from_mat(x);
    validate(&design, y, opts.tau)?;
    let method = resolve_method(opts.method, design.n, design.k);
    // `X'X` and the preprocessing's pilot are independent: side by side.
    let (gram, problem) = rayon::join(
        || cross_product(&design),
        || Problem::new(&design, y, method),
    );
    if design.rank(&gram) < design.k {
        return Err(EstimError::Numerical {
            message: "singular design matrix in quantile regression".to_string(),
        });
    }
    let problem = problem?;
    let inference = Inference {
        problem: &problem,
        gram: &gram,
        tau: opts.tau,
        bandwidth: opts.bandwidth,
    };
    // The refits of `nid` at tau +/- h do not depend on the fit at tau: the three run side by
    // side (`nid_side_by_side`).
    let fit = || {
        problem
            .solve(opts.tau)
            .map(|s| (residuals_of(&design, y, &s.coef), s))
    };
    let ((residuals, solution), refits) = match opts.se {
        RqSe::Nid => {
            let (fit, refits) = nid_side_by_side(&problem, &inference, opts.tau, fit);
            (fit?, Some(refits))
        }
        _ => (fit()?, None),
    };
    let objective = residuals.iter().map(|&u| check_loss(u, opts.tau)).sum();
    let mut messages = solution.messages;
    if solution.nonunique {
        messages.push("solution may be nonunique".to_string());
    }
    let covariance = match (&opts.se, refits) {
        (RqSe::None, _) => None,
        (RqSe::Iid, _) => Some(inference.iid(&residuals)?),
        (RqSe::Nid, refits) => {
            let refits = match refits {
                Some(refits) => refits?,
                None => inference.nid_refits()?,
            };
            Some(inference.nid(refits, &mut messages)?)
        }
        (RqSe::Ker, _) => Some(inference.ker(&solution.coef)?),
        (
            RqSe::Bootstrap {
                reps,
                seed,
                clusters,
            },
            _,
        ) => Some(inference.bootstrap(*reps, *seed, clusters.as_deref(), &mut messages)?),
    };
    let (std_error, covariance) = match covariance {
        None => (Vec::new(), Vec::new()),
        Some(cov) => {
            let se = (0..design.k).map(|j| cov[(j, j)].sqrt()).collect();
            let rows = (0..design.k)
                .map(|r| (0..design.k).map(|c| cov[(r, c)]).collect())
                .collect();
            (se, rows)
        }
    };
    Ok(RqFit {
        tau: opts.tau,
        coef: solution.coef,
        std_error,
        covariance,
        objective,
        residuals,
        nobs: design.n,
        method,
        iterations: solution.iterations,
        converged: solution.converged,
        nonunique: solution.nonunique,
        messages,
    })
}

/// The fit at `tau` and the two refits of `nid`: three sequential fits on the rayon pool. On two
/// threads three whole fits take two fits' time, so the refit at `tau - h` is split: its first
/// half (for the preprocessed solver, the subsample fit and globbing) runs before the fit at
/// `tau`, its second half as a task of its own, which the thread done with the refit at
/// `tau + h` takes: about one and a half fits on each thread. Every fit is the same sequence of
/// operations wherever it runs, so the result does not depend on the number of threads.
fn nid_side_by_side<T: Send>(
    problem: &Problem<'_>,
    inference: &Inference<'_>,
    tau: f64,
    fit: impl FnOnce() -> Result<T, EstimError> + Send,
) -> (
    Result<T, EstimError>,
    Result<inference::NidRefits, EstimError>,
) {
    let h = inference.local_bandwidth();
    let (mut fitted, mut hi, mut lo) = (None, None, None);
    rayon::scope(|s| {
        let hi = &mut hi;
        s.spawn(move |_| *hi = Some(problem.solve(tau + h)));
        let lo = &mut lo;
        match problem.start(tau - h) {
            Ok(started) => s.spawn(move |_| *lo = Some(problem.finish(tau - h, started))),
            Err(e) => *lo = Some(Err(e)),
        }
        fitted = Some(fit());
    });
    let missing = || EstimError::Numerical {
        message: "a quantile-regression fit did not run".to_string(),
    };
    (
        fitted.unwrap_or_else(|| Err(missing())),
        inference::NidRefits::of(
            hi.unwrap_or_else(|| Err(missing())),
            lo.unwrap_or_else(|| Err(missing())),
            h,
        ),
    )
}

/// Point estimates only: the coefficients of the `tau`-th regression quantile.
pub fn rq_coef(
    x: MatRef<'_, f64>,
    y: &[f64],
    tau: f64,
    method: RqMethod,
) -> Result<Vec<f64>, EstimError> {
    let design = Design::from_mat(x);
    validate(&design, y, tau)?;
    let method = resolve_method(method, design.n, design.k);
    Ok(solve(&design, y, tau, method)?.coef)
}

fn resolve_method(method: RqMethod, n: usize, p: usize) -> RqMethod {
    match method {
        RqMethod::Auto if n <= AUTO_BR_MAX_N && p <= AUTO_BR_MAX_P => RqMethod::Br,
        RqMethod::Auto if n <= AUTO_BR_MAX_N => RqMethod::Fn,
        RqMethod::Auto if n <= AUTO_FN_MAX_N => RqMethod::Fn,
        RqMethod::Auto => RqMethod::Pfn,
        other => other,
    }
}

fn validate(design: &Design, y: &[f64], tau: f64) -> Result<(), EstimError> {
    if !(tau > 0.0 && tau < 1.0) {
        return Err(EstimError::TauOutOfRange { tau });
    }
    if y.len() != design.n {
        return Err(EstimError::InvalidOption {
            message: format!(
                "response has {} rows but the design matrix has `{}`",
                y.len(),
                design.n
            ),
        });
    }
    if design.k == 0 {
        return Err(EstimError::NoRegressors {
            reason: "the design matrix has no columns".to_string(),
        });
    }
    if design.n < design.k {
        return Err(EstimError::TooFewObservations {
            n: design.n,
            k: design.k,
        });
    }
    if y.iter().any(|v| !v.is_finite()) || design.data.iter().any(|v| !v.is_finite()) {
        return Err(EstimError::InvalidOption {
            message: "quantile regression needs finite data; drop missing rows first".to_string(),
        });
    }
    Ok(())
}

fn standard_normal() -> Normal {
    // Mean 0 and sd 1 are always valid parameters.
    Normal::standard()
}

/// What a solver hands back.
#[derive(Debug, Clone)]
struct Solution {
    coef: Vec<f64>,
    iterations: usize,
    converged: bool,
    nonunique: bool,
    messages: Vec<String>,
}

/// A design and response with a resolved method, and what every fit of them at any `tau` can
/// share: the preprocessing's first subsample and band.
struct Problem<'a> {
    design: &'a Design,
    y: &'a [f64],
    method: RqMethod,
    pilot: Option<Pilot>,
}

impl<'a> Problem<'a> {
    fn new(design: &'a Design, y: &'a [f64], method: RqMethod) -> Result<Self, EstimError> {
        let method = resolve_method(method, design.n, design.k);
        let pilot = match method {
            RqMethod::Pfn => Pilot::new(design, y, PFN_SEED)?,
            _ => None,
        };
        Ok(Self {
            design,
            y,
            method,
            pilot,
        })
    }

    /// The first half of a fit at `tau` (see [`nid_side_by_side`]); [`Problem::finish`] does
    /// the rest.
    fn start(&self, tau: f64) -> Result<Started, EstimError> {
        Ok(match self.method {
            RqMethod::Pfn => Started::Preprocessed(Box::new(start_preprocessed(
                self.design,
                self.y,
                tau,
                self.pilot.as_ref(),
            )?)),
            _ => Started::Nothing,
        })
    }

    fn finish(&self, tau: f64, started: Started) -> Result<Solution, EstimError> {
        match started {
            Started::Preprocessed(progress) => {
                finish_preprocessed(self.design, self.y, tau, self.pilot.as_ref(), *progress)
            }
            Started::Nothing => self.solve(tau),
        }
    }

    fn solve(&self, tau: f64) -> Result<Solution, EstimError> {
        let (design, y) = (self.design, self.y);
        match self.method {
            RqMethod::Br => barrodale_roberts(design, y, tau),
            RqMethod::Pfn => preprocessed_frisch_newton(design, y, tau, self.pilot.as_ref()),
            RqMethod::Fn | RqMethod::Auto => frisch_newton(design, y, tau),
        }
    }
}

/// What [`Problem::start`] did.
enum Started {
    /// The preprocessed solver's first round.
    Preprocessed(Box<Progress>),
    /// Nothing: the solver runs whole in [`Problem::finish`].
    Nothing,
}

fn solve(design: &Design, y: &[f64], tau: f64, method: RqMethod) -> Result<Solution, EstimError> {
    Problem::new(design, y, method)?.solve(tau)
}

#[cfg(test)]
mod tests {
    use super::preprocess::quantile_type7;
    use super::*;
    use faer::Mat;

    fn mat(rows: &[&[f64]]) -> Mat<f64> {
        Mat::from_fn(rows.len(), rows[0].len(), |i, j| rows[i][j])
    }

    #[test]
    fn median_of_a_constant_model_is_the_sample_median() {
        let x = mat(&[&[1.0], &[1.0], &[1.0], &[1.0], &[1.0]]);
        let y = [3.0, -1.0, 10.0, 2.0, 7.0];
        let opts = RqOptions {
            se: RqSe::None,
            method: RqMethod::Br,
            ..RqOptions::default()
        };
        let fit = rq(x.as_ref(), &y, &opts).unwrap();
        assert_eq!(fit.coef, vec![3.0]);
        // Residuals 0, -4, 7, -1, 4 around the median 3.
        assert_eq!(fit.objective, 0.5 * (4.0 + 7.0 + 1.0 + 4.0));
    }

    #[test]
    fn hand_computed_line_through_two_points() {
        // Three points; the median line passes through two of them: minimising |residuals| the
        // line through (0,0) and (2,2) leaves (1,3) with residual 2, any other basis does worse.
        let x = mat(&[&[1.0, 0.0], &[1.0, 1.0], &[1.0, 2.0]]);
        let y = [0.0, 3.0, 2.0];
        for method in [RqMethod::Br, RqMethod::Fn] {
            let opts = RqOptions {
                se: RqSe::None,
                method,
                ..RqOptions::default()
            };
            let fit = rq(x.as_ref(), &y, &opts).unwrap();
            assert!(
                (fit.coef[0] - 0.0).abs() < 1e-12,
                "{method:?} {:?}",
                fit.coef
            );
            assert!(
                (fit.coef[1] - 1.0).abs() < 1e-12,
                "{method:?} {:?}",
                fit.coef
            );
            assert!((fit.objective - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn bandwidth_matches_quantreg() {
        // bandwidth.rq(0.5, 235) and bandwidth.rq(0.5, 235, hs = FALSE) in R.
        let hs = bandwidth(0.5, 235, Bandwidth::HallSheather);
        let bof = bandwidth(0.5, 235, Bandwidth::Bofinger);
        let n = 235f64;
        let expect_hs = n.powf(-1.0 / 3.0)
            * 1.959963984540054f64.powf(2.0 / 3.0)
            * (1.5 * (1.0 / (2.0 * std::f64::consts::PI)) / 1.0).powf(1.0 / 3.0);
        assert!((hs - expect_hs).abs() < 1e-14);
        assert!(bof > hs);
    }

    #[test]
    fn type7_quantile() {
        let v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile_type7(&v, 0.5), 2.5);
        assert_eq!(quantile_type7(&v, 0.25), 1.75);
        assert_eq!(quantile_type7(&v, 1.0), 4.0);
    }
}
