//! The entry point: from a frame and a model specification to a [`FitResult`].
//!
//! Owns: the model specification types ([`ModelSpec`], [`VcovSpec`], [`QuantileSpec`],
//! [`FitOptions`]) and [`fit`], which selects the rows (dropping missing values and, on
//! request, singletons), factorises fixed effects and clusters, absorbs the fixed effects, drops
//! collinear regressors, runs OLS, 2SLS or quantile regression, computes the variance with
//! fixest's conventions, and assembles coefficients, fit statistics and messages.
//! Deliberately does not own: the numerical kernels (in `demean`, `ols`, `iv`, `vcov`,
//! `quantile`, `mmqr`), reading data, or printing.

use std::fmt;
use std::str::FromStr;

use faer::{Mat, MatRef};
use rayon::prelude::*;
use statrs::distribution::{ContinuousCDF, FisherSnedecor, Normal, StudentsT};

use crate::data::{factorize, numeric_view, Column, Frame, NumericView};
use crate::demean::{demean_columns, singleton_keep_mask, DemeanOptions, FixedEffects};
use crate::error::EstimError;
use crate::formula::{self, Formula};
use crate::iv;
use crate::ols::{
    independent_columns, residuals, small_gram, solve_from_r, sub_r, tall_r, CollinearityOptions,
    ColumnStatus,
};
use crate::quantile;
use crate::result::{ClusterCounts, Coefficient, FirstStageF, FirstStageStats, FitResult};
use crate::vcov::{
    dof_k, fix_negative_variance, iid_vcov, intersect, is_nested, meat, sandwich, small_sample,
    ClusterIds, SampleKind, SmallSample, VcovKind,
};

/// Variance of OLS/IV coefficients: `iid`, `hc1`, `cluster:V` or `cluster:V1+V2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VcovSpec {
    Iid,
    Hc1,
    /// One variable, or two for two-way clustering.
    Cluster(Vec<String>),
}

impl FromStr for VcovSpec {
    type Err = EstimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |message: &str| EstimError::InvalidVcov {
            spec: s.to_string(),
            message: message.to_string(),
        };
        let text = s.trim();
        match text {
            "iid" => return Ok(VcovSpec::Iid),
            "hc1" => return Ok(VcovSpec::Hc1),
            _ => {}
        }
        let Some(vars) = text.strip_prefix("cluster:") else {
            return Err(invalid(
                "expected `iid`, `hc1`, `cluster:VAR` or `cluster:VAR1+VAR2`",
            ));
        };
        let vars: Vec<String> = vars.split('+').map(|v| v.trim().to_string()).collect();
        if vars.iter().any(String::is_empty) {
            return Err(invalid("a cluster variable name is empty"));
        }
        if vars.len() > 2 {
            return Err(invalid("at most two cluster variables are supported"));
        }
        if vars.len() == 2 && vars[0] == vars[1] {
            return Err(invalid("the two cluster variables are the same"));
        }
        Ok(VcovSpec::Cluster(vars))
    }
}

impl fmt::Display for VcovSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VcovSpec::Iid => write!(f, "iid"),
            VcovSpec::Hc1 => write!(f, "hc1"),
            VcovSpec::Cluster(vars) => write!(f, "cluster:{}", vars.join("+")),
        }
    }
}

/// Standard errors of a quantile regression (R quantreg's `summary.rq` types; the bootstrap
/// resamples whole clusters when the model's vcov names a cluster variable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantileSe {
    Iid,
    Nid,
    Ker,
    Bootstrap { reps: usize, seed: u64 },
}

impl FromStr for QuantileSe {
    type Err = EstimError;

    /// `iid`, `nid`, `ker`, or `bootstrap:REPS:SEED`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            EstimError::InvalidOption {
            message: format!(
                "quantile standard errors `{s}`: expected `iid`, `nid`, `ker` or `bootstrap:REPS:SEED`"
            ),
        }
        };
        match s.trim() {
            "iid" => Ok(QuantileSe::Iid),
            "nid" => Ok(QuantileSe::Nid),
            "ker" => Ok(QuantileSe::Ker),
            other => {
                let mut parts = other.split(':');
                if parts.next() != Some("bootstrap") {
                    return Err(invalid());
                }
                let reps = parts
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(invalid)?;
                let seed = parts
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(invalid)?;
                if parts.next().is_some() {
                    return Err(invalid());
                }
                Ok(QuantileSe::Bootstrap { reps, seed })
            }
        }
    }
}

impl fmt::Display for QuantileSe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuantileSe::Iid => write!(f, "iid"),
            QuantileSe::Nid => write!(f, "nid"),
            QuantileSe::Ker => write!(f, "ker"),
            QuantileSe::Bootstrap { reps, seed } => write!(f, "bootstrap:{reps}:{seed}"),
        }
    }
}

/// How fixed effects enter a quantile regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantileMethod {
    /// Fixed effects as dummy columns of one pooled quantile regression.
    Pooled,
    /// Machado-Santos Silva method of moments quantile regression.
    Mmqr,
    /// Canay's two-step estimator.
    Canay,
}

impl FromStr for QuantileMethod {
    type Err = EstimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "pooled" => Ok(QuantileMethod::Pooled),
            "mmqr" => Ok(QuantileMethod::Mmqr),
            "canay" => Ok(QuantileMethod::Canay),
            other => Err(EstimError::InvalidOption {
                message: format!("quantile method `{other}`: expected `pooled`, `mmqr` or `canay`"),
            }),
        }
    }
}

impl fmt::Display for QuantileMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuantileMethod::Pooled => "pooled",
            QuantileMethod::Mmqr => "mmqr",
            QuantileMethod::Canay => "canay",
        })
    }
}

/// A quantile regression request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantileSpec {
    /// The quantile, strictly between 0 and 1.
    pub tau: f64,
    pub se: QuantileSe,
    pub method: QuantileMethod,
}

/// Treatment of observations whose fixed-effect level occurs once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SingletonPolicy {
    /// Keep them (fixest's default).
    #[default]
    Keep,
    /// Remove them, repeating until none is left (reghdfe).
    DropIteratively,
}

impl FromStr for SingletonPolicy {
    type Err = EstimError;

    /// `keep` or `drop`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "keep" => Ok(SingletonPolicy::Keep),
            "drop" => Ok(SingletonPolicy::DropIteratively),
            other => Err(EstimError::InvalidOption {
                message: format!("singleton policy `{other}`: expected `keep` or `drop`"),
            }),
        }
    }
}

impl fmt::Display for SingletonPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SingletonPolicy::Keep => "keep",
            SingletonPolicy::DropIteratively => "drop",
        })
    }
}

/// Numerical options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// Tolerance of the fixed-effect absorption (fixest's `fixef.tol`).
    pub fixef_tol: f64,
    /// Iteration limit of the fixed-effect absorption (fixest's `fixef.iter`).
    pub fixef_maxiter: usize,
    pub singletons: SingletonPolicy,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            fixef_tol: 1e-8,
            fixef_maxiter: 10_000,
            singletons: SingletonPolicy::Keep,
        }
    }
}

/// Everything [`fit`] needs besides the data.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    pub formula: String,
    pub vcov: VcovSpec,
    pub quantile: Option<QuantileSpec>,
    pub options: FitOptions,
}

/// Estimates the model described by `spec` on `frame`.
pub fn fit(frame: &Frame, spec: &ModelSpec) -> Result<FitResult, EstimError> {
    crate::deterministic_linear_algebra();
    let formula = formula::parse(&spec.formula)?;
    if let Some(q) = &spec.quantile {
        return fit_quantile(frame, &formula, spec, q);
    }
    fit_linear(frame, &formula, spec)
}

// ---------------------------------------------------------------------------------------------
// Sample selection
// ---------------------------------------------------------------------------------------------

/// Rows per parallel task when selecting and copying data.
const GATHER_BLOCK: usize = 65_536;

/// A fixed-effect term factorised on the estimation sample.
struct FeTerm {
    name: String,
    variables: Vec<String>,
    codes: Vec<u32>,
    n_levels: usize,
}

/// The rows used by a model and the categorical structure on them.
struct Sample<'a> {
    rows: Vec<usize>,
    n_missing: usize,
    n_singletons: usize,
    fe: Vec<FeTerm>,
    clusters: Vec<ClusterIds>,
    y: NumericView<'a>,
    x: Vec<NumericView<'a>>,
    endo: Vec<NumericView<'a>>,
    inst: Vec<NumericView<'a>>,
    messages: Vec<String>,
}

impl Sample<'_> {
    fn n(&self) -> usize {
        self.rows.len()
    }

    /// Appends the used rows of a numeric column to `out` (in parallel: this copy is a visible
    /// share of the time on large panels).
    fn gather(&self, view: &NumericView<'_>, out: &mut Vec<f64>) {
        let start = out.len();
        out.resize(start + self.rows.len(), 0.0);
        out[start..]
            .par_chunks_mut(GATHER_BLOCK)
            .zip(self.rows.par_chunks(GATHER_BLOCK))
            .for_each(|(dst, rows)| {
                for (d, &i) in dst.iter_mut().zip(rows) {
                    // Rows were filtered on non-missing values of every used column.
                    *d = view.get(i).unwrap_or(f64::NAN);
                }
            });
    }

    fn fe_levels(&self) -> Vec<usize> {
        self.fe.iter().map(|t| t.n_levels).collect()
    }
}

fn prepare<'a>(
    frame: &'a Frame,
    f: &Formula,
    cluster_vars: &[String],
    opts: &FitOptions,
) -> Result<Sample<'a>, EstimError> {
    let views = |names: &[String]| -> Result<Vec<NumericView<'a>>, EstimError> {
        names.iter().map(|n| numeric_view(frame, n)).collect()
    };
    let y = numeric_view(frame, &f.outcome)?;
    let x = views(&f.regressors)?;
    let (endo, inst) = match &f.iv {
        Some(part) => (views(&part.endogenous)?, views(&part.instruments)?),
        None => (Vec::new(), Vec::new()),
    };
    let fe_cols: Vec<Vec<&Column>> = f
        .fixed_effects
        .iter()
        .map(|t| t.variables.iter().map(|v| frame.require(v)).collect())
        .collect::<Result<_, _>>()?;
    let cluster_cols: Vec<&Column> = cluster_vars
        .iter()
        .map(|v| frame.require(v))
        .collect::<Result<_, _>>()?;

    let nrows = frame.nrows();
    let numeric: Vec<&NumericView<'_>> = std::iter::once(&y)
        .chain(&x)
        .chain(&endo)
        .chain(&inst)
        .collect();
    let categorical: Vec<&Column> = fe_cols
        .iter()
        .flatten()
        .chain(&cluster_cols)
        .copied()
        .collect();
    let mut keep = vec![true; nrows];
    keep.par_chunks_mut(GATHER_BLOCK)
        .enumerate()
        .for_each(|(block, chunk)| {
            for (o, k) in chunk.iter_mut().enumerate() {
                let i = block * GATHER_BLOCK + o;
                *k = numeric.iter().all(|v| v.get(i).is_some())
                    && categorical.iter().all(|c| !c.is_missing(i));
            }
        });
    let mut rows: Vec<usize> = (0..nrows).filter(|&i| keep[i]).collect();
    let n_missing = nrows - rows.len();
    let mut messages = Vec::new();
    if rows.is_empty() {
        let reason = if nrows == 0 {
            "the data has no rows".to_string()
        } else {
            format!("each of the {nrows} rows has a missing value in a used column")
        };
        return Err(EstimError::NoObservations { reason });
    }
    if n_missing > 0 {
        messages.push(format!(
            "{n_missing} row(s) dropped because of missing values"
        ));
    }

    let mut fe: Vec<FeTerm> = f
        .fixed_effects
        .iter()
        .zip(&fe_cols)
        .map(|(term, cols)| {
            let (codes, n_levels) = interacted_codes(cols, &rows);
            FeTerm {
                name: term.name(),
                variables: term.variables.clone(),
                codes,
                n_levels,
            }
        })
        .collect();

    let mut n_singletons = 0;
    if opts.singletons == SingletonPolicy::DropIteratively && !fe.is_empty() {
        let dims: Vec<(&[u32], usize)> = fe
            .iter()
            .map(|t| (t.codes.as_slice(), t.n_levels))
            .collect();
        let mask = singleton_keep_mask(&dims);
        n_singletons = mask.iter().filter(|&&k| !k).count();
        if n_singletons > 0 {
            rows = rows
                .iter()
                .zip(&mask)
                .filter(|(_, &k)| k)
                .map(|(&r, _)| r)
                .collect();
            for term in &mut fe {
                let kept: Vec<u32> = term
                    .codes
                    .iter()
                    .zip(&mask)
                    .filter(|(_, &k)| k)
                    .map(|(&c, _)| c)
                    .collect();
                let (codes, n_levels) = compact_codes(&kept, term.n_levels);
                term.codes = codes;
                term.n_levels = n_levels;
            }
            messages.push(format!("{n_singletons} singleton observation(s) dropped"));
        }
        if rows.is_empty() {
            return Err(EstimError::NoObservations {
                reason: "every observation is a fixed-effect singleton".to_string(),
            });
        }
    }

    let clusters = cluster_vars
        .iter()
        .zip(&cluster_cols)
        .map(|(name, col)| {
            // A cluster variable that is also a fixed effect is already factorised.
            let same_fe = fe
                .iter()
                .find(|t| t.variables.len() == 1 && t.variables[0] == *name);
            let (codes, n_groups) = match same_fe {
                Some(t) => (t.codes.clone(), t.n_levels),
                None => factorize(col, &rows),
            };
            if n_groups < 2 {
                return Err(EstimError::SingleCluster { name: name.clone() });
            }
            Ok(ClusterIds {
                name: name.clone(),
                codes,
                n_groups,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    Ok(Sample {
        rows,
        n_missing,
        n_singletons,
        fe,
        clusters,
        y,
        x,
        endo,
        inst,
        messages,
    })
}

/// Group codes of an interaction of categorical columns on the selected rows.
fn interacted_codes(cols: &[&Column], rows: &[usize]) -> (Vec<u32>, usize) {
    let (mut codes, mut n_levels) = factorize(cols[0], rows);
    for col in &cols[1..] {
        let (other, n_other) = factorize(col, rows);
        let combined: Vec<u64> = codes
            .iter()
            .zip(&other)
            .map(|(&a, &b)| u64::from(a) * n_other as u64 + u64::from(b))
            .collect();
        let mut map = std::collections::HashMap::new();
        codes = combined
            .iter()
            .map(|&key| {
                let next = map.len() as u32;
                *map.entry(key).or_insert(next)
            })
            .collect();
        n_levels = map.len();
    }
    (codes, n_levels)
}

/// Renumbers codes so that only levels that occur remain, in order of first appearance.
fn compact_codes(codes: &[u32], n_levels: usize) -> (Vec<u32>, usize) {
    let mut table = vec![u32::MAX; n_levels];
    let mut next = 0u32;
    let out = codes
        .iter()
        .map(|&c| {
            let slot = &mut table[c as usize];
            if *slot == u32::MAX {
                *slot = next;
                next += 1;
            }
            *slot
        })
        .collect();
    (out, next as usize)
}

// ---------------------------------------------------------------------------------------------
// Variance setup shared by the model and its first stage
// ---------------------------------------------------------------------------------------------

struct VarianceSetup {
    spec: VcovSpec,
    /// Cluster ids; for two-way clustering the intersection is appended as a third entry.
    ids: Vec<ClusterIds>,
    fe_levels: Vec<usize>,
    fe_nested: Vec<bool>,
}

impl VarianceSetup {
    fn new(spec: &VcovSpec, sample: &Sample<'_>) -> Self {
        let mut ids = sample.clusters.clone();
        if ids.len() == 2 {
            let both = intersect(&ids[0], &ids[1]);
            ids.push(both);
        }
        // fixest's nesting rule: a fixed effect named like a cluster variable, an interaction
        // containing one, or one whose every level sits in a single cluster.
        let fe_nested = sample
            .fe
            .iter()
            .map(|term| {
                sample.clusters.iter().any(|c| {
                    term.variables.contains(&c.name) || is_nested(&term.codes, term.n_levels, c)
                })
            })
            .collect();
        Self {
            spec: spec.clone(),
            ids,
            fe_levels: sample.fe_levels(),
            fe_nested,
        }
    }

    fn kind(&self) -> VcovKind<'_> {
        match self.spec {
            VcovSpec::Iid => VcovKind::Iid,
            VcovSpec::Hc1 => VcovKind::Hetero,
            VcovSpec::Cluster(_) => VcovKind::Cluster(&self.ids),
        }
    }

    fn small_sample(&self, n: usize, n_coef: usize) -> SmallSample {
        let counts: Vec<usize> = self.ids.iter().take(2).map(|c| c.n_groups).collect();
        let (kind, nested) = match self.spec {
            VcovSpec::Iid => (SampleKind::Iid, vec![false; self.fe_levels.len()]),
            VcovSpec::Hc1 => (SampleKind::Hetero, vec![false; self.fe_levels.len()]),
            VcovSpec::Cluster(_) => (SampleKind::Cluster(&counts), self.fe_nested.clone()),
        };
        let k = dof_k(n_coef, &self.fe_levels, &nested);
        small_sample(n, k, kind)
    }

    /// Covariance from the bread, the score regressors and the residuals; also reports whether a
    /// negative variance had to be repaired.
    fn covariance(
        &self,
        bread: MatRef<'_, f64>,
        score_x: &[&[f64]],
        resid: &[f64],
        ss: &SmallSample,
    ) -> (Mat<f64>, bool) {
        let mut v = match meat(score_x, resid, self.kind()) {
            None => {
                let rss = resid.iter().map(|e| e * e).sum();
                iid_vcov(bread, rss, resid.len(), ss)
            }
            Some(m) => sandwich(bread, m.as_ref(), ss.factor),
        };
        let fixed = fix_negative_variance(&mut v);
        (v, fixed)
    }

    fn cluster_counts(&self) -> Option<ClusterCounts> {
        matches!(self.spec, VcovSpec::Cluster(_)).then(|| {
            ClusterCounts(
                self.ids
                    .iter()
                    .take(2)
                    .map(|c| (c.name.clone(), c.n_groups))
                    .collect(),
            )
        })
    }
}

// ---------------------------------------------------------------------------------------------
// OLS and IV
// ---------------------------------------------------------------------------------------------

fn centred_ss(v: &[f64]) -> f64 {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    v.iter().map(|x| (x - mean) * (x - mean)).sum()
}

/// Whether the model absorbs fixed effects, which decides how a column without variation is
/// described.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Absorption {
    FixedEffects,
    Nothing,
}

impl Absorption {
    fn of(has_fe: bool) -> Self {
        if has_fe {
            Absorption::FixedEffects
        } else {
            Absorption::Nothing
        }
    }
}

/// Indices of kept columns, with a message for each dropped one.
fn kept_columns(
    status: &[ColumnStatus],
    names: &[String],
    absorption: Absorption,
    messages: &mut Vec<String>,
) -> Vec<usize> {
    let mut kept = Vec::new();
    for (j, s) in status.iter().enumerate() {
        match s {
            ColumnStatus::Kept => kept.push(j),
            ColumnStatus::Absorbed if absorption == Absorption::FixedEffects => {
                messages.push(format!(
                    "variable `{}` dropped: absorbed by the fixed effects",
                    names[j]
                ))
            }
            ColumnStatus::Absorbed => messages.push(format!(
                "variable `{}` dropped: it has no variation",
                names[j]
            )),
            ColumnStatus::Collinear => messages.push(format!(
                "variable `{}` dropped: collinear with the other regressors",
                names[j]
            )),
        }
    }
    kept
}

/// Student t (or normal when `df` is `None`) two-sided p-value.
fn p_value(stat: f64, df: Option<usize>) -> f64 {
    if !stat.is_finite() {
        return f64::NAN;
    }
    match df {
        None => 2.0 * Normal::standard().sf(stat.abs()),
        Some(0) => f64::NAN,
        Some(d) => StudentsT::new(0.0, 1.0, d as f64)
            .map(|t| 2.0 * t.sf(stat.abs()))
            .unwrap_or(f64::NAN),
    }
}

fn coefficient_table(
    names: &[String],
    coef: &[f64],
    cov: MatRef<'_, f64>,
    df: Option<usize>,
) -> Vec<Coefficient> {
    names
        .iter()
        .zip(coef)
        .enumerate()
        .map(|(j, (name, &estimate))| {
            let std_error = cov[(j, j)].max(0.0).sqrt();
            let statistic = estimate / std_error;
            Coefficient {
                term: name.clone(),
                estimate,
                std_error,
                statistic,
                p_value: p_value(statistic, df),
            }
        })
        .collect()
}

fn to_rows(m: MatRef<'_, f64>) -> Vec<Vec<f64>> {
    (0..m.nrows())
        .map(|i| (0..m.ncols()).map(|j| m[(i, j)]).collect())
        .collect()
}

fn fit_linear(frame: &Frame, f: &Formula, spec: &ModelSpec) -> Result<FitResult, EstimError> {
    let cluster_vars = match &spec.vcov {
        VcovSpec::Cluster(vars) => vars.clone(),
        _ => Vec::new(),
    };
    let sample = prepare(frame, f, &cluster_vars, &spec.options)?;
    let mut messages = sample.messages.clone();
    let n = sample.n();
    let has_fe = !sample.fe.is_empty();
    let intercept = f.has_intercept_coefficient();

    // Column-major buffer: y | exogenous (intercept first) | endogenous | excluded instruments.
    let mut exog_names: Vec<String> = Vec::new();
    if intercept {
        exog_names.push("Intercept".to_string());
    }
    exog_names.extend(f.regressors.iter().cloned());
    let endo_names: Vec<String> = f.iv.as_ref().map_or(Vec::new(), |p| p.endogenous.clone());
    let inst_names: Vec<String> = f.iv.as_ref().map_or(Vec::new(), |p| p.instruments.clone());
    let (k1, k2, l1) = (exog_names.len(), endo_names.len(), inst_names.len());
    // Fewer rows than candidate parameters makes every later collinearity verdict an artefact
    // of the sample size; say so directly.
    let fe_dof = {
        let levels = sample.fe_levels();
        levels.iter().sum::<usize>() - levels.len().saturating_sub(1)
    };
    let k_candidates = k1 + k2 + fe_dof;
    if n <= k_candidates {
        return Err(EstimError::TooFewObservations { n, k: k_candidates });
    }
    let m = 1 + k1 + k2 + l1;
    let mut buf: Vec<f64> = Vec::with_capacity(n * m);
    sample.gather(&sample.y, &mut buf);
    if intercept {
        buf.extend(std::iter::repeat_n(1.0, n));
    }
    for view in sample.x.iter().chain(&sample.endo).chain(&sample.inst) {
        sample.gather(view, &mut buf);
    }
    let tss = centred_ss(&buf[..n]);
    let reference_ss: Vec<f64> = (1..m)
        .map(|j| centred_ss(&buf[j * n..(j + 1) * n]))
        .collect();

    let variance = VarianceSetup::new(&spec.vcov, &sample);
    if has_fe {
        let dims = sample
            .fe
            .iter()
            .map(|t| (t.codes.clone(), t.n_levels))
            .collect();
        let fe = FixedEffects::new(dims, None)?;
        let report = demean_columns(
            &fe,
            &mut buf,
            &DemeanOptions {
                tol: spec.options.fixef_tol,
                maxiter: spec.options.fixef_maxiter,
                ..DemeanOptions::default()
            },
        )?;
        if !report.converged {
            let all_names: Vec<&String> = std::iter::once(&f.outcome)
                .chain(&exog_names)
                .chain(&endo_names)
                .chain(&inst_names)
                .collect();
            let cols: Vec<String> = report
                .not_converged
                .iter()
                .map(|&j| format!("`{}`", all_names[j]))
                .collect();
            messages.push(format!(
                "fixed effects of model `{}` did not converge within {} iterations (tolerance {}) for {}",
                f.source,
                spec.options.fixef_maxiter,
                spec.options.fixef_tol,
                cols.join(", ")
            ));
        }
    }
    let column = |j: usize| &buf[j * n..(j + 1) * n];
    let y = column(0);
    let within_tss = y.iter().map(|v| v * v).sum::<f64>();
    let collin = CollinearityOptions::default();
    let absorption = Absorption::of(has_fe);

    // One triangular factor of [exog | instruments | endogenous | y] serves every collinearity
    // check and every solve below (sub-factors are re-triangularised from it).
    let exog_idx: Vec<usize> = (0..k1).collect();
    let inst_idx: Vec<usize> = (k1..k1 + l1).collect();
    let endo_idx: Vec<usize> = (k1 + l1..k1 + l1 + k2).collect();
    let y_idx = k1 + l1 + k2;
    let ordered: Vec<&[f64]> = (1..=k1)
        .chain(1 + k1 + k2..m)
        .chain(1 + k1..1 + k1 + k2)
        .chain(std::iter::once(0))
        .map(column)
        .collect();
    let ordered_ref: Vec<f64> = (0..k1)
        .chain(k1 + k2..k1 + k2 + l1)
        .chain(k1..k1 + k2)
        .map(|j| reference_ss[j])
        .collect();
    let r_all = tall_r(&ordered);
    let g_all = small_gram(r_all.as_ref());
    let status_of = |idx: &[usize]| {
        let g = Mat::from_fn(idx.len(), idx.len(), |a, b| g_all[(idx[a], idx[b])]);
        let refs: Vec<f64> = idx.iter().map(|&j| ordered_ref[j]).collect();
        independent_columns(g.as_ref(), has_fe.then_some(refs.as_slice()), &collin)
    };

    let exog_kept = kept_columns(
        &status_of(&exog_idx),
        &exog_names,
        absorption,
        &mut messages,
    );
    let exog: Vec<&[f64]> = exog_kept.iter().map(|&j| ordered[j]).collect();
    let mut coef_names: Vec<String> = exog_kept.iter().map(|&j| exog_names[j].clone()).collect();

    let mut first_stage = None;
    let mut fitted_endo: Vec<Vec<f64>> = Vec::new();
    let (coef, resid, bread) = if f.iv.is_none() {
        if coef_names.is_empty() {
            return Err(EstimError::NoRegressors {
                reason: if k1 == 0 {
                    "the formula has no regressor".to_string()
                } else {
                    "every regressor was dropped".to_string()
                },
            });
        }
        let mut idx = exog_kept.clone();
        idx.push(y_idx);
        let (coef, bread) = solve_from_r(sub_r(r_all.as_ref(), &idx).as_ref())?;
        let resid = residuals(&exog, y, &coef);
        (coef, resid, bread)
    } else {
        let endo_status = status_of(&endo_idx);
        let endo_kept = kept_columns(&endo_status, &endo_names, absorption, &mut messages);
        if endo_kept.is_empty() {
            return Err(EstimError::NoRegressors {
                reason: "every endogenous regressor was dropped".to_string(),
            });
        }
        // Excluded instruments must add to the (kept) exogenous regressors.
        let z_idx: Vec<usize> = exog_kept.iter().chain(&inst_idx).copied().collect();
        let z_status = status_of(&z_idx);
        let inst_kept: Vec<usize> = kept_columns(
            &z_status[exog_kept.len()..],
            &inst_names,
            absorption,
            &mut messages,
        )
        .into_iter()
        .map(|j| inst_idx[j])
        .collect();
        if inst_kept.len() < endo_kept.len() {
            return Err(EstimError::UnderIdentified {
                endogenous: endo_kept.len(),
                instruments: inst_kept.len(),
            });
        }
        let excluded: Vec<&[f64]> = inst_kept.iter().map(|&j| ordered[j]).collect();
        let endo_pos: Vec<usize> = endo_kept.iter().map(|&j| endo_idx[j]).collect();
        let endo: Vec<&[f64]> = endo_pos.iter().map(|&j| ordered[j]).collect();
        let fs_idx: Vec<usize> = exog_kept
            .iter()
            .chain(&inst_kept)
            .chain(&endo_pos)
            .copied()
            .collect();
        let fs = iv::first_stage(&exog, &excluded, &endo, sub_r(r_all.as_ref(), &fs_idx))?;
        let second = iv::second_stage(y, &exog, &endo, &fs)?;
        coef_names.extend(endo_kept.iter().map(|&j| endo_names[j].clone()));
        let endo_used: Vec<String> = endo_kept.iter().map(|&j| endo_names[j].clone()).collect();
        fitted_endo = fs.fitted.clone();
        first_stage = Some((fs, excluded, endo_used));
        (second.coef, second.resid, second.bread)
    };

    // Scores: the regressors (for IV the exogenous ones and the fitted endogenous ones) times
    // the residuals.
    let score_x: Vec<&[f64]> = exog
        .iter()
        .copied()
        .chain(fitted_endo.iter().map(Vec::as_slice))
        .collect();
    let n_coef = coef.len();
    let ss = variance.small_sample(n, n_coef);
    if n <= ss.k {
        return Err(EstimError::TooFewObservations { n, k: ss.k });
    }
    let (cov, repaired) = variance.covariance(bread.as_ref(), &score_x, &resid, &ss);
    if repaired {
        messages.push(
            "variance matrix had negative variances and was repaired (eigenvalues floored, Cameron-Gelbach-Miller)"
                .to_string(),
        );
    }
    let df_t = Some(ss.df_t);
    let coefficients = coefficient_table(&coef_names, &coef, cov.as_ref(), df_t);
    let rss: f64 = resid.iter().map(|e| e * e).sum();
    let r2 = (tss > 0.0).then(|| 1.0 - rss / tss);
    let r2_within = (has_fe && within_tss > 0.0).then(|| 1.0 - rss / within_tss);

    let first_stage = first_stage.map(|(fs, excluded, endo_used)| {
        iv_diagnostics(&fs, &exog, &excluded, &endo_used, &variance, n)
    });

    Ok(FitResult {
        formula: f.source.clone(),
        nobs: n,
        k: Some(ss.k),
        n_missing_dropped: sample.n_missing,
        n_singletons_dropped: sample.n_singletons,
        coefficients,
        r2,
        r2_within,
        objective: None,
        vcov: spec.vcov.to_string(),
        n_clusters: variance.cluster_counts(),
        df_t,
        covariance: to_rows(cov.as_ref()),
        first_stage,
        messages,
        residuals: resid,
        used_rows: sample.rows,
    })
}

fn iv_diagnostics(
    fs: &iv::FirstStage,
    exog: &[&[f64]],
    excluded: &[&[f64]],
    endo_names: &[String],
    variance: &VarianceSetup,
    n: usize,
) -> FirstStageStats {
    let q = fs.n_excluded;
    let k_instruments = fs.n_exog + fs.n_excluded;
    let ss = variance.small_sample(n, k_instruments);
    let df2 = n.saturating_sub(ss.k).max(1);
    let wald = iv::first_stage_wald(fs, exog, excluded, variance.kind(), &ss);
    let f_dist = FisherSnedecor::new(q as f64, df2 as f64).ok();
    let first_stage = endo_names
        .iter()
        .zip(&wald)
        .map(|(name, &stat)| FirstStageF {
            endogenous: name.clone(),
            f_stat: stat,
            p_value: f_dist
                .as_ref()
                .filter(|_| stat.is_finite())
                .map_or(f64::NAN, |d| d.sf(stat)),
            df1: q,
            df2,
        })
        .collect();
    let kleibergen_paap_f = iv::kleibergen_paap_rk_wald(fs, exog, excluded, variance.kind())
        .map(|chi2| chi2 / ss.factor / q as f64);
    // Cragg-Donald is an iid statistic: its degrees of freedom count every fixed-effect level.
    let k_iid = dof_k(
        k_instruments,
        &variance.fe_levels,
        &vec![false; variance.fe_levels.len()],
    );
    let cragg_donald_f = iv::cragg_donald_eigenvalue(fs)
        .map_or(f64::NAN, |ev| ev * (n as f64 - k_iid as f64) / q as f64);
    FirstStageStats {
        first_stage,
        kleibergen_paap_f,
        cragg_donald_f,
    }
}

// ---------------------------------------------------------------------------------------------
// Quantile regression
// ---------------------------------------------------------------------------------------------

fn fit_quantile(
    frame: &Frame,
    f: &Formula,
    spec: &ModelSpec,
    q: &QuantileSpec,
) -> Result<FitResult, EstimError> {
    if !(q.tau > 0.0 && q.tau < 1.0) {
        return Err(EstimError::TauOutOfRange { tau: q.tau });
    }
    if f.iv.is_some() {
        return Err(EstimError::InvalidOption {
            message: format!(
                "quantile regression does not take an IV part (formula `{}`)",
                f.source
            ),
        });
    }
    match q.method {
        QuantileMethod::Pooled => {
            let cluster_vars = pooled_clusters(&spec.vcov, q.se)?;
            let sample = prepare(frame, f, &cluster_vars, &spec.options)?;
            fit_quantile_pooled(f, q, sample)
        }
        QuantileMethod::Mmqr => {
            if matches!(q.se, QuantileSe::Bootstrap { .. }) {
                return Err(EstimError::InvalidOption {
                    message: "mmqr standard errors come from its influence functions; `se` = bootstrap is not available for it".to_string(),
                });
            }
            let cluster_vars = match &spec.vcov {
                VcovSpec::Iid | VcovSpec::Hc1 => Vec::new(),
                VcovSpec::Cluster(vars) if vars.len() == 1 => vars.clone(),
                VcovSpec::Cluster(_) => {
                    return Err(EstimError::InvalidVcov {
                        spec: spec.vcov.to_string(),
                        message: "mmqr clusters by one variable".to_string(),
                    })
                }
            };
            one_way_only(f, "mmqr")?;
            let sample = prepare(frame, f, &cluster_vars, &spec.options)?;
            fit_mmqr(f, q, sample)
        }
        QuantileMethod::Canay => {
            one_way_only(f, "canay")?;
            let Some(fe) = f.fixed_effects.first() else {
                return Err(EstimError::InvalidOption {
                    message: format!(
                        "canay needs one fixed effect (`y ~ x | id`); formula `{}` has none",
                        f.source
                    ),
                });
            };
            match (&spec.vcov, q.se) {
                (VcovSpec::Iid, _) => {}
                // Canay's bootstrap resamples whole fixed-effect groups: a cluster bootstrap by
                // the fixed effect (reported in `n_clusters`).
                (VcovSpec::Cluster(vars), QuantileSe::Bootstrap { .. })
                    if vars.len() == 1 && vars[0] == fe.name() => {}
                _ => {
                    return Err(EstimError::InvalidVcov {
                        spec: spec.vcov.to_string(),
                        message: format!(
                            "canay takes `iid` (second-step standard errors) or `cluster:{}` with `se` = bootstrap (whole groups resampled)",
                            fe.name()
                        ),
                    })
                }
            }
            let sample = prepare(frame, f, &[], &spec.options)?;
            fit_canay(f, q, sample)
        }
    }
}

/// Cluster variables allowed for a pooled quantile regression: none, or one with the bootstrap.
fn pooled_clusters(vcov: &VcovSpec, se: QuantileSe) -> Result<Vec<String>, EstimError> {
    let invalid = |message: &str| EstimError::InvalidVcov {
        spec: vcov.to_string(),
        message: message.to_string(),
    };
    match (vcov, se) {
        (VcovSpec::Iid, _) => Ok(Vec::new()),
        (VcovSpec::Cluster(vars), QuantileSe::Bootstrap { .. }) if vars.len() == 1 => {
            Ok(vars.clone())
        }
        (VcovSpec::Cluster(_), QuantileSe::Bootstrap { .. }) => {
            Err(invalid("the quantile bootstrap resamples one cluster variable"))
        }
        (VcovSpec::Cluster(_), _) => Err(invalid(
            "clustered quantile standard errors need `se` = bootstrap",
        )),
        (VcovSpec::Hc1, _) => Err(invalid(
            "quantile regression takes `iid` or a cluster variable with the bootstrap; robustness comes from `se`",
        )),
    }
}

/// MMQR and Canay handle one fixed-effect dimension.
fn one_way_only(f: &Formula, method: &str) -> Result<(), EstimError> {
    if f.fixed_effects.len() > 1 {
        return Err(EstimError::InvalidOption {
            message: format!(
                "{method} takes one fixed effect; formula `{}` has {}",
                f.source,
                f.fixed_effects.len()
            ),
        });
    }
    Ok(())
}

/// The regressors of a quantile model as an n x k matrix (no intercept).
fn regressor_matrix(sample: &Sample<'_>) -> Mat<f64> {
    let n = sample.n();
    let cols: Vec<Vec<f64>> = sample
        .x
        .iter()
        .map(|view| {
            let mut col = Vec::with_capacity(n);
            sample.gather(view, &mut col);
            col
        })
        .collect();
    Mat::from_fn(n, cols.len(), |i, j| cols[j][i])
}

/// Machado-Santos Silva MMQR with the (at most one) fixed effect as groups.
fn fit_mmqr(f: &Formula, q: &QuantileSpec, sample: Sample<'_>) -> Result<FitResult, EstimError> {
    let mut messages = sample.messages.clone();
    let n = sample.n();
    let mut y = Vec::with_capacity(n);
    sample.gather(&sample.y, &mut y);
    let x = regressor_matrix(&sample);
    // Without fixed effects every row is in one group, which gives the model an intercept.
    let groups = sample
        .fe
        .first()
        .map_or_else(|| vec![0u32; n], |t| t.codes.clone());
    let cluster = sample.clusters.first();
    let opts = crate::mmqr::MmqrOptions {
        vcov: cluster.map_or(crate::mmqr::MmqrVcov::Robust, |c| {
            crate::mmqr::MmqrVcov::Cluster(c.codes.clone())
        }),
        ..Default::default()
    };
    let fits = crate::mmqr::mmqr(&y, x.as_ref(), &groups, &[q.tau], &opts)?;
    let fit = fits
        .into_iter()
        .next()
        .ok_or_else(|| EstimError::Numerical {
            message: "mmqr returned no estimate".to_string(),
        })?;
    messages.extend(fit.messages.iter().cloned());
    let k = fit.coef.len();
    let cov = Mat::from_fn(k, k, |a, b| fit.covariance[a][b]);
    // MMQR's inference is asymptotic: normal p-values, as xtqreg reports z statistics.
    let coefficients = coefficient_table(&f.regressors, &fit.coef, cov.as_ref(), None);
    Ok(FitResult {
        formula: f.source.clone(),
        nobs: fit.nobs,
        k: None,
        n_missing_dropped: sample.n_missing,
        n_singletons_dropped: sample.n_singletons + fit.n_singletons_dropped,
        coefficients,
        r2: None,
        r2_within: None,
        objective: None,
        vcov: cluster.map_or_else(|| "robust".to_string(), |c| format!("cluster:{}", c.name)),
        n_clusters: cluster.map(|c| ClusterCounts(vec![(c.name.clone(), c.n_groups)])),
        df_t: None,
        covariance: to_rows(cov.as_ref()),
        first_stage: None,
        messages,
        residuals: Vec::new(),
        used_rows: fit.used_rows.iter().map(|&i| sample.rows[i]).collect(),
    })
}

/// Canay's two-step estimator with the fixed effect as groups.
fn fit_canay(f: &Formula, q: &QuantileSpec, sample: Sample<'_>) -> Result<FitResult, EstimError> {
    let mut messages = sample.messages.clone();
    let n = sample.n();
    let mut y = Vec::with_capacity(n);
    sample.gather(&sample.y, &mut y);
    let x = regressor_matrix(&sample);
    let term = &sample.fe[0];
    let se = match q.se {
        QuantileSe::Iid => crate::mmqr::CanaySe::SecondStep(quantile::RqSe::Iid),
        QuantileSe::Nid => crate::mmqr::CanaySe::SecondStep(quantile::RqSe::Nid),
        QuantileSe::Ker => crate::mmqr::CanaySe::SecondStep(quantile::RqSe::Ker),
        QuantileSe::Bootstrap { reps, seed } => crate::mmqr::CanaySe::GroupBootstrap { reps, seed },
    };
    let opts = crate::mmqr::CanayOptions {
        tau: q.tau,
        se,
        ..Default::default()
    };
    let fit = crate::mmqr::canay(&y, x.as_ref(), &term.codes, &opts)?;
    messages.extend(fit.messages.iter().cloned());
    messages.extend(fit.rq.messages.iter().cloned());
    // Report the regressors (coefficients 1..); the intercept is not separately identified
    // from the fixed effects.
    let k = f.regressors.len();
    let cov = Mat::from_fn(k, k, |a, b| {
        fit.rq
            .covariance
            .get(a + 1)
            .and_then(|row| row.get(b + 1))
            .copied()
            .unwrap_or(f64::NAN)
    });
    let coef: Vec<f64> = fit.rq.coef[1..].to_vec();
    let df = n.checked_sub(k + 1).filter(|&d| d > 0);
    let coefficients = coefficient_table(&f.regressors, &coef, cov.as_ref(), df);
    let bootstrap = matches!(q.se, QuantileSe::Bootstrap { .. });
    Ok(FitResult {
        formula: f.source.clone(),
        nobs: n,
        k: None,
        n_missing_dropped: sample.n_missing,
        n_singletons_dropped: sample.n_singletons,
        coefficients,
        r2: None,
        r2_within: None,
        objective: Some(fit.rq.objective),
        vcov: q.se.to_string(),
        n_clusters: bootstrap.then(|| ClusterCounts(vec![(term.name.clone(), fit.n_groups)])),
        df_t: df,
        covariance: to_rows(cov.as_ref()),
        first_stage: None,
        messages,
        residuals: fit.rq.residuals,
        used_rows: sample.rows,
    })
}

/// One quantile regression with the fixed effects as dummy columns (one level dropped per
/// fixed effect, the intercept kept).
fn fit_quantile_pooled(
    f: &Formula,
    q: &QuantileSpec,
    sample: Sample<'_>,
) -> Result<FitResult, EstimError> {
    let mut messages = sample.messages.clone();
    let n = sample.n();
    let has_fe = !sample.fe.is_empty();
    let intercept = f.intercept || has_fe;
    let mut names: Vec<String> = Vec::new();
    let mut cols: Vec<Vec<f64>> = Vec::new();
    if intercept {
        names.push("Intercept".to_string());
        cols.push(vec![1.0; n]);
    }
    for (name, view) in f.regressors.iter().zip(&sample.x) {
        let mut col = Vec::with_capacity(n);
        sample.gather(view, &mut col);
        names.push(name.clone());
        cols.push(col);
    }
    let n_reported = names.len();
    for term in &sample.fe {
        for level in 1..term.n_levels {
            let col = term
                .codes
                .iter()
                .map(|&c| if c as usize == level { 1.0 } else { 0.0 })
                .collect();
            names.push(format!("{}::{level}", term.name));
            cols.push(col);
        }
    }
    let slices: Vec<&[f64]> = cols.iter().map(Vec::as_slice).collect();
    let gram = small_gram(tall_r(&slices).as_ref());
    let status = independent_columns(gram.as_ref(), None, &CollinearityOptions::default());
    let kept = kept_columns(&status, &names, Absorption::Nothing, &mut Vec::new());
    for (j, s) in status.iter().enumerate().take(n_reported) {
        if *s != ColumnStatus::Kept {
            let why = if has_fe {
                "collinear with the other regressors or the fixed effects"
            } else {
                "collinear with the other regressors"
            };
            messages.push(format!("variable `{}` dropped: {why}", names[j]));
        }
    }
    let design = Mat::from_fn(n, kept.len(), |i, j| cols[kept[j]][i]);
    drop(cols);
    let mut y = Vec::with_capacity(n);
    sample.gather(&sample.y, &mut y);

    let se = match q.se {
        QuantileSe::Iid => quantile::RqSe::Iid,
        QuantileSe::Nid => quantile::RqSe::Nid,
        QuantileSe::Ker => quantile::RqSe::Ker,
        QuantileSe::Bootstrap { reps, seed } => quantile::RqSe::Bootstrap {
            reps,
            seed,
            clusters: sample.clusters.first().map(|c| c.codes.clone()),
        },
    };
    let opts = quantile::RqOptions {
        tau: q.tau,
        se,
        ..quantile::RqOptions::default()
    };
    let rq = quantile::rq(design.as_ref(), &y, &opts)?;
    messages.extend(rq.messages.iter().cloned());
    if !rq.converged {
        messages.push(format!(
            "quantile regression of model `{}` did not reach a verified optimum",
            f.source
        ));
    }

    // Report the intercept (without fixed effects) and the regressors, not the dummies.
    let report: Vec<usize> = kept
        .iter()
        .enumerate()
        .filter(|(_, &j)| j < n_reported && !(has_fe && j == 0 && intercept))
        .map(|(pos, _)| pos)
        .collect();
    let df = n.checked_sub(kept.len()).filter(|&d| d > 0);
    let cov = Mat::from_fn(report.len(), report.len(), |a, b| {
        rq.covariance
            .get(report[a])
            .and_then(|row| row.get(report[b]))
            .copied()
            .unwrap_or(f64::NAN)
    });
    let coef_names: Vec<String> = report.iter().map(|&p| names[kept[p]].clone()).collect();
    let coef: Vec<f64> = report.iter().map(|&p| rq.coef[p]).collect();
    let coefficients = coefficient_table(&coef_names, &coef, cov.as_ref(), df);
    Ok(FitResult {
        formula: f.source.clone(),
        nobs: n,
        k: None,
        n_missing_dropped: sample.n_missing,
        n_singletons_dropped: sample.n_singletons,
        coefficients,
        r2: None,
        r2_within: None,
        objective: Some(rq.objective),
        vcov: q.se.to_string(),
        n_clusters: sample
            .clusters
            .first()
            .map(|c| ClusterCounts(vec![(c.name.clone(), c.n_groups)])),
        df_t: df,
        covariance: to_rows(cov.as_ref()),
        first_stage: None,
        messages,
        residuals: rq.residuals,
        used_rows: sample.rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vcov_spec_round_trips() {
        for text in ["iid", "hc1", "cluster:state", "cluster:state+year"] {
            let spec: VcovSpec = text.parse().unwrap();
            assert_eq!(spec.to_string(), text);
        }
        assert_eq!(
            "cluster:a + b".parse::<VcovSpec>().unwrap(),
            VcovSpec::Cluster(vec!["a".into(), "b".into()])
        );
        assert!("cluster:".parse::<VcovSpec>().is_err());
        assert!("cluster:a+b+c".parse::<VcovSpec>().is_err());
        assert!("robust".parse::<VcovSpec>().is_err());
    }

    #[test]
    fn quantile_se_and_method_parse() {
        assert_eq!(
            "bootstrap:200:7".parse::<QuantileSe>().unwrap(),
            QuantileSe::Bootstrap { reps: 200, seed: 7 }
        );
        assert_eq!(QuantileSe::Ker.to_string(), "ker");
        assert!("bootstrap:x".parse::<QuantileSe>().is_err());
        assert_eq!(
            "mmqr".parse::<QuantileMethod>().unwrap(),
            QuantileMethod::Mmqr
        );
        assert_eq!(
            "drop".parse::<SingletonPolicy>().unwrap(),
            SingletonPolicy::DropIteratively
        );
        assert_eq!(SingletonPolicy::Keep.to_string(), "keep");
    }

    #[test]
    fn compact_codes_renumbers() {
        assert_eq!(compact_codes(&[4, 2, 4, 0], 5), (vec![0, 1, 0, 2], 3));
    }
}
