//! What an estimation returns.
//!
//! Owns: [`FitResult`] and its parts, with a stable, serialisable field order (the CLI writes it
//! as JSON), plus the non-serialised pieces later computations need (residuals and the rows
//! used, for coefficient-difference tests).
//! Deliberately does not own: computing any of the numbers, or presentation (tables, rounding).

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

/// One row of the coefficient table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coefficient {
    pub term: String,
    pub estimate: f64,
    pub std_error: f64,
    /// `estimate / std_error`.
    pub statistic: f64,
    /// Two-sided p-value from Student's t with `df_t` degrees of freedom (normal when `df_t` is
    /// absent).
    pub p_value: f64,
}

/// Number of clusters per clustering variable, serialised as a JSON object in the order the
/// variables were given.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterCounts(pub Vec<(String, usize)>);

impl Serialize for ClusterCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, count) in &self.0 {
            map.serialize_entry(name, count)?;
        }
        map.end()
    }
}

/// First-stage F test of the excluded instruments for one endogenous regressor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FirstStageF {
    pub endogenous: String,
    /// Wald statistic divided by the number of excluded instruments, computed with the model's
    /// variance type (equal to the classical F test when the model uses iid errors).
    pub f_stat: f64,
    pub p_value: f64,
    /// Numerator degrees of freedom: the number of excluded instruments.
    pub df1: usize,
    /// Denominator degrees of freedom: first-stage `N - K`.
    pub df2: usize,
}

/// Weak-instrument diagnostics of an IV model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FirstStageStats {
    pub first_stage: Vec<FirstStageF>,
    /// Kleibergen-Paap rk Wald F statistic with the model's robust or clustered variance (as
    /// ivreg2 reports it); absent for iid errors, where the Cragg-Donald statistic applies.
    pub kleibergen_paap_f: Option<f64>,
    /// Cragg-Donald Wald F statistic (iid).
    pub cragg_donald_f: f64,
}

/// Result of one estimation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitResult {
    pub formula: String,
    pub nobs: usize,
    /// K as the small-sample corrections count it (fixest's rules: slopes plus fixed-effect
    /// levels not nested in a cluster variable); `None` for quantile regressions.
    pub k: Option<usize>,
    /// Rows dropped because a used column was missing there.
    pub n_missing_dropped: usize,
    /// Observations dropped as fixed-effect singletons.
    pub n_singletons_dropped: usize,
    pub coefficients: Vec<Coefficient>,
    pub r2: Option<f64>,
    pub r2_within: Option<f64>,
    /// Adjusted R², every fixed-effect level counted as a parameter (fixest's `ar2`); `None`
    /// for quantile regressions.
    pub adj_r2: Option<f64>,
    /// Adjusted within R² (fixest's `war2`); with fixed effects only.
    pub adj_r2_within: Option<f64>,
    /// Check-function value at the optimum (quantile regression).
    pub objective: Option<f64>,
    /// The variance specification, e.g. `cluster:state`.
    pub vcov: String,
    pub n_clusters: Option<ClusterCounts>,
    /// Degrees of freedom of the t distribution behind the p-values; `None` means normal.
    pub df_t: Option<usize>,
    /// Variance-covariance matrix of the coefficients, in coefficient order.
    pub covariance: Vec<Vec<f64>>,
    pub first_stage: Option<FirstStageStats>,
    pub messages: Vec<String>,
    /// Residual of each used row (structural residuals for IV), in `used_rows` order; empty for
    /// MMQR, whose quantile residuals are not defined row by row.
    #[serde(skip)]
    pub residuals: Vec<f64>,
    /// Indices (into the input frame) of the rows used by the estimation, ascending.
    #[serde(skip)]
    pub used_rows: Vec<usize>,
}

impl FitResult {
    /// The coefficient called `term`, if estimated.
    pub fn coefficient(&self, term: &str) -> Option<&Coefficient> {
        self.coefficients.iter().find(|c| c.term == term)
    }
}
