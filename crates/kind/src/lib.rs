//! The contract between repro's engine and its built-in stage kinds.
//!
//! Owns: what both sides must agree on and nothing more: user-facing diagnostics (`diag`), project
//! paths (`paths`), the [`BuiltinStage`] trait a kind implements and the registry the engine asks
//! (`stage`), reading stage spec files with their places (`spec`), writing outputs atomically
//! (`output`), the memo a kind may keep between runs (`memo`), and the columns known before anything runs (`columns`). Deliberately does not
//! own: scheduling, hashing or the lock (crate `repro-engine`), any kind (crates `repro-study`,
//! `repro-tables`), or any heavy dependency: this crate is small on purpose, because every
//! built-in stage's code fingerprint includes it.

// Diagnostics travel on the cold path only; keeping them unboxed keeps the code plain.
#![allow(clippy::result_large_err)]

pub mod columns;
pub mod diag;
pub mod memo;
pub mod output;
pub mod paths;
pub mod range;
pub mod spec;
pub mod spot;
pub mod stage;
pub mod suggest;

pub use diag::{Diagnostic, Failure, Location};
pub use memo::{Memo, NoMemo};
pub use output::{create_temp_beside, stage_failed, temp_beside, write_output};
pub use paths::normalize_path;
pub use spec::{
    check_csv_out, check_spec_paths, kind_err, load_spec, spec_err, spec_path, take_path,
};
pub use stage::{BuiltinCtx, BuiltinStage, ImpliedIo, KindError, KindRegistry, ParseCtx};
