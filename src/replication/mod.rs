//! Replication packages: what a data editor receives and how it is checked.
//!
//! Owns: `repro package` (`package`), the package README (`readme`), `repro verify` (`verify`),
//! `repro lint` (`lint`), package paths and unpacking zips (`archive`), the source of this repro
//! embedded at build time (`srcpack`), the shipped binary (`shipped`), vendored crates (`vendor`),
//! `run.sh` (`runsh`), shared package files (`files`), the README's inputs and wording
//! (`readme_inputs`, `words`), and what
//! packaging and verifying undo when interrupted (`interrupt`).
//! Deliberately does not own: running stages (the engine's runner) or any kind; nothing here
//! enters a stage key.

pub mod archive;
pub mod files;
pub mod interrupt;
pub mod lint;
pub mod package;
pub mod readme;
pub mod readme_facts;
pub mod readme_inputs;
pub mod runsh;
pub mod shell;
pub mod shipped;
pub mod srcpack;
pub mod vendor;
pub mod verify;
pub mod words;
