//! repro's engine: from a pipeline file to up-to-date outputs, knowing nothing of what stages
//! compute.
//!
//! Owns: the pipeline model and its validation (`yaml`, `params`, `pipeline`), stage keys
//! (`key`), file state and the stat cache (`fsstate`, `observe`), staleness (`planner`, pure)
//! and the field-by-field views it reports changes in (`fields`),
//! the lock file (`lock`) and the locks sharing the cache (`lockset`), everything under `cache/`
//! (`store`), running commands (`executor`, `slurm`),
//! the dispatcher (`runner`, building each stage with `build`, reporting through `reporter`), and the read-only views (`status`:
//! status, dry run, DAG, gc). Deliberately does not own: any built-in kind (it sees them only
//! through `repro_kind::BuiltinStage`), data frames, estimators, plotting or terminals. Cargo
//! enforces this: the crate depends on none of them.

// Diagnostics travel on the cold path only; keeping them unboxed keeps the code plain.
#![allow(clippy::result_large_err)]

mod build;
mod commit;
pub mod executor;
pub mod fields;
pub mod fsstate;
pub mod key;
pub mod lock;
pub mod lockset;
pub mod observe;
pub mod params;
pub mod params_file;
pub mod pipeline;
pub mod planner;
mod pools;
pub mod remote;
pub mod reporter;
pub mod runner;
pub mod share;
pub mod slurm;
pub mod status;
pub mod stop;
pub mod store;
pub mod yaml;
