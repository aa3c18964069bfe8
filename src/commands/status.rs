//! `repro status`: which stages are stale and why.

use repro_engine::status;
use repro_kind::Failure;

use crate::cli::{Cli, StatusArgs};
use crate::kinds::load_pipeline;

pub fn status(cli: &Cli, args: &StatusArgs) -> Result<(), Failure> {
    let p = load_pipeline(&cli.file)?;
    let selected = p.select(&args.stages)?;
    let statuses = status::compute(&p, &selected)?;
    if args.json {
        print!("{}", status::render_json(&statuses));
    } else {
        print!("{}", status::render_status(&statuses, cli.verbose > 0));
    }
    Ok(())
}
