//! Econometric estimators for repro.
//!
//! Owns: the model formula language, fixed-effect absorption, OLS/IV with fixest's variance
//! conventions, quantile regression (pooled, MMQR, Canay) and coefficient-difference tests.
//! Deliberately does not own: any file IO, polars, or the pipeline; callers hand in a [`data::Frame`]
//! of plain columns and get back serialisable results.

pub mod data;
pub mod demean;
pub mod difftest;
pub mod error;
pub mod fit;
pub mod formula;
pub mod iv;
pub mod mmqr;
pub mod ols;
pub mod quantile;
pub mod result;
pub mod vcov;
