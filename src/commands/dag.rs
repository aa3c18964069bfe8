//! `repro dag`: the stage graph as text or dot.

use repro_engine::status;
use repro_kind::Failure;

use crate::cli::{Cli, DagArgs};
use crate::kinds::load_pipeline;

pub fn dag(cli: &Cli, args: &DagArgs) -> Result<(), Failure> {
    let p = load_pipeline(&cli.file)?;
    print!("{}", status::render_dag(&p, args.format.into()));
    Ok(())
}
