//! The entry point: from a frame and a model specification to a [`FitResult`].
//!
//! Owns: the model specification types ([`ModelSpec`], [`VcovSpec`], [`QuantileSpec`],
//! [`FitOptions`]) and [`fit`], which selects the rows (dropping missing values and, on
//! request, singletons), factorises fixed effects and clusters, absorbs the fixed effects, drops
//! collinear regressors, runs OLS, 2SLS or quantile regression, computes the variance with
//! fixest's conventions, and assembles coefficients, fit statistics and messages.
//! Deliberately does not own: the numerical kernels (in `demean`, `ols`, `iv`, `vcov`,
//! `quantile`, `mmqr`), reading data, or printing.
//!
//! Module map: `spec` the specification types and their text forms; `sample` the row selection
//! and the factorised fixed effects and clusters; `variance` fixest's variance setup shared by a
//! model and its first stage; `table` the coefficient table and column bookkeeping; `linear` OLS
//! and IV; `quantile` the pooled, MMQR and Canay quantile regressions.

mod linear;
mod quantile;
mod sample;
mod spec;
mod table;
mod variance;

pub use spec::{
    FitOptions, MmqrVcovSpec, ModelSpec, QuantileMethod, QuantileSe, QuantileSpec, SingletonPolicy,
    VcovSpec, LINEAR_VCOV_OPTIONS, MMQR_VCOV_OPTIONS,
};

use crate::data::Frame;
use crate::error::EstimError;
use crate::formula;
use crate::result::FitResult;

/// Estimates the model described by `spec` on `frame`.
pub fn fit(frame: &Frame, spec: &ModelSpec) -> Result<FitResult, EstimError> {
    crate::deterministic_linear_algebra();
    let formula = formula::parse(&spec.formula)?;
    if let Some(q) = &spec.quantile {
        return quantile::fit_quantile(frame, &formula, spec, q);
    }
    linear::fit_linear(linear::Data::Lent(frame), &formula, spec)
}

/// [`fit`] for a caller that gives the frame up: a linear model whose rows are all used takes
/// the frame's number columns as its own instead of copying them, and frees the rest before
/// estimating. The result is the same.
pub fn fit_owned(frame: Frame, spec: &ModelSpec) -> Result<FitResult, EstimError> {
    crate::deterministic_linear_algebra();
    let formula = formula::parse(&spec.formula)?;
    if let Some(q) = &spec.quantile {
        return quantile::fit_quantile(&frame, &formula, spec, q);
    }
    linear::fit_linear(linear::Data::Given(frame), &formula, spec)
}
