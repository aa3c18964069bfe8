//! `repro verify`: rebuild a replication package and compare every output.

use repro_kind::Failure;

use crate::cli::{Cli, VerifyArgs};
use crate::replication::verify;

pub fn verify(cli: &Cli, args: &VerifyArgs) -> Result<(), Failure> {
    // The first `repro verify` supervises a second one, which does the work (see
    // `verify::supervise`): an interrupt then stops every command and removes every temporary file.
    let scratch = std::env::var_os(verify::SCRATCH_ENV).map(std::path::PathBuf::from);
    if scratch.is_none() {
        if let Some(code) = verify::supervise() {
            std::process::exit(code);
        }
    }
    let cfg = verify::VerifyConfig {
        target: args.target.clone(),
        pipeline_file: cli.file.clone(),
        jobs: args.jobs.unwrap_or_else(super::default_jobs),
        scratch,
    };
    let verified = verify::verify(&cfg)?;
    print!("{}", verified.report);
    match verified.failure {
        Some(f) => Err(f),
        None => Ok(()),
    }
}
