//! `repro verify`: rebuild a replication package and compare every output.

use repro_kind::Failure;

use crate::cli::{Cli, VerifyArgs};
use crate::replication::verify;

pub fn verify(cli: &Cli, args: &VerifyArgs) -> Result<(), Failure> {
    let cfg = verify::VerifyConfig {
        target: args.target.clone(),
        pipeline_file: cli.file.clone(),
        jobs: args.jobs.unwrap_or_else(super::default_jobs),
    };
    let verified = verify::verify(&cfg)?;
    print!("{}", verified.report);
    match verified.failure {
        Some(f) => Err(f),
        None => Ok(()),
    }
}
