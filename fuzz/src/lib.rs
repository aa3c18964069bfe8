//! repro's fuzz targets share their checks with the corpus replay of the ordinary tests.
//!
//! Owns: nothing but wiring: `checks` (what each target checks) and `archive`, the very source
//! file of `repro verify`'s zip reader (the binary crate has no library to depend on).

#[path = "../../src/replication/archive.rs"]
pub mod archive;
pub mod checks;
