//! `repro diff [REV | LOCKFILE]`: what changed in the results since another state.

use repro_kind::diag::{Exit, Failure};

use crate::cli::{Cli, DiffArgs, DiffFormat};
use crate::diff::{self, render, source};
use crate::kinds::load_pipeline;

pub fn diff(cli: &Cli, args: &DiffArgs) -> Result<(), Failure> {
    let p = load_pipeline(&cli.file)?;
    let name = diff::lock_file_name(&p);
    let other = source::resolve(args.against.as_deref(), &p.root, &name)?;
    let changes = diff::with_current(&p, &other.lock, &other.label)?;
    let text = match args.format {
        DiffFormat::Text => render::text(&changes),
        DiffFormat::Md => render::markdown(&changes),
        DiffFormat::Html => render::html_page(&changes),
        DiffFormat::Json => render::json(&changes),
    };
    print!("{text}");
    if args.fail_on_change && !changes.is_empty() {
        // The listing above says what changed; no error message follows it.
        return Err(Failure {
            exit: Exit::StageFailed,
            diagnostics: Vec::new(),
        });
    }
    Ok(())
}
