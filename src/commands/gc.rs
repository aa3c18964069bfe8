//! `repro gc`: remove cache objects no lock entry refers to.

use repro_engine::status;
use repro_kind::Failure;

use crate::cli::{Cli, GcArgs};
use crate::kinds::load_pipeline;

pub fn gc(cli: &Cli, args: &GcArgs) -> Result<(), Failure> {
    let p = load_pipeline(&cli.file)?;
    print!("{}", status::gc(&p, args.dry_run)?);
    Ok(())
}
