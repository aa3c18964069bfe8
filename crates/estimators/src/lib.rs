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
mod recent;
pub mod result;
pub mod vcov;

/// Makes faer's own kernels (Cholesky, LU, QR, eigen and singular value decompositions, large
/// products) run sequentially. faer follows a process-wide parallelism setting, and on a rayon
/// pool its blocked algorithms split the work by the number of threads, which changes rounding:
/// results would then depend on the machine. The estimators parallelise above faer instead
/// (bootstrap replicates, refits, blocks summed in a fixed order). Called by [`fit::fit`];
/// callers of lower-level functions call it once at start-up.
pub fn deterministic_linear_algebra() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| faer::set_global_parallelism(faer::Par::Seq));
}
