//! Tabular files for repro's built-in kinds: one place to read a data file and to write one
//! deterministically.
//!
//! Owns: reading CSV and Parquet into polars frames (`dataio`), plain numeric CSV
//! straight into numbers (`numcsv`), and typed output tables written as
//! byte-for-byte deterministic CSV and Parquet (`table`), and large tables streamed to Parquet in
//! batches (`stream`). Deliberately does not own: what any
//! column means (the kinds), or the estimators' frame (`repro-tables` converts).

// Diagnostics travel on the cold path only; keeping them unboxed keeps the code plain.
#![allow(clippy::result_large_err)]

pub mod dataio;
pub mod numcsv;
pub mod stream;
pub mod table;
