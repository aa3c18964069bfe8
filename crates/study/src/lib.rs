//! The study's data stages: from a raw patent export to the city-year analysis panel.
//!
//! Owns: the built-in kinds `synth` (seeded synthetic raw data and truth files), `ingest` (raw
//! exports to clean applications and a quarantine; `textnorm` normalises text), `locate` (the
//! city of every applicant; `places` holds the city table, `gazetteer` the county, old-name and
//! institution tables and the place matcher), `index`
//! (the city-year collaboration index and network) and `panel` (the analysis panel and its
//! codebook), and the yearbook's schema that `synth` writes and `panel` reads (`yearbook`).
//! Deliberately does not own: scheduling or keys (crate `repro-engine`), estimation or tables
//! (crate `repro-tables`); it depends on neither, so editing them reruns none of these stages.

// Diagnostics travel on the cold path only; keeping them unboxed keeps the code plain.
#![allow(clippy::result_large_err)]

pub mod gazetteer;
pub mod index;
pub mod ingest;
pub mod locate;
pub mod panel;
pub mod places;
pub mod ranges;
pub mod synth;
pub mod textnorm;
pub mod yearbook;

/// The fingerprint of this crate's code and everything it depends on (build.rs).
pub const CODE_FINGERPRINT: &str = env!("REPRO_CODE_FINGERPRINT");
