//! `repro package`: write a replication package.

use repro_kind::Failure;

use crate::cli::{Cli, PackageArgs};
use crate::kinds::load_pipeline;
use crate::replication::package;

pub fn package(cli: &Cli, args: &PackageArgs) -> Result<(), Failure> {
    let p = load_pipeline(&cli.file)?;
    let cfg = package::PackageConfig {
        out: args.out.clone(),
        vendor: !args.no_vendor,
    };
    print!("{}", package::package(&p, &cfg)?);
    Ok(())
}
