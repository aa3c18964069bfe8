//! The presentation kinds: regression tables, descriptive statistics, quantile processes, and
//! what they share.
//!
//! Owns: fitting one model from a request (`fitting`, also behind `repro fit`), data files as the
//! estimators' frame (`frame`), `sample:` restrictions (`sample`), the one table model and its
//! renderings (`table`, `latex`, with width estimates in `texwidth`), figures with their
//! embedded font (`figures`, `assets/fonts/`), the `models`, `describe`, `quantiles` and `curve`
//! (specification curve) kinds, their shared helpers (`common`), and checking the variables they
//! read before anything runs (`columns`). Deliberately does not own: the estimators' numerics
//! (crate `repro-estimators`), scheduling (crate
//! `repro-engine`) or the study's data stages (crate `repro-study`).

// Diagnostics travel on the cold path only; keeping them unboxed keeps the code plain.
#![allow(clippy::result_large_err)]

pub mod columns;
pub mod common;
pub mod curve;
pub mod describe;
pub mod figures;
pub mod fit_stage;
pub mod fitting;
pub mod frame;
pub mod latex;
pub mod models;
pub mod pdf;
pub mod quantiles;
pub mod sample;
pub mod stars;
pub mod table;
pub mod texwidth;

/// The fingerprint of this crate's code and everything it depends on (build.rs).
pub const CODE_FINGERPRINT: &str = env!("REPRO_CODE_FINGERPRINT");
