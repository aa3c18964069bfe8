//! `repro lint`: what would keep the pipeline from replicating.

use repro_kind::{Diagnostic, Failure};

use crate::cli::Cli;
use crate::kinds::load_pipeline;
use crate::replication::lint;

pub fn lint(cli: &Cli) -> Result<(), Failure> {
    let p = load_pipeline(&cli.file)?;
    let findings = lint::lint(&p);
    print!("{}", lint::render(&findings));
    let errors = findings
        .iter()
        .filter(|f| f.severity == lint::Severity::Error)
        .count();
    if errors == 0 {
        return Ok(());
    }
    Err(Failure::stage(
        Diagnostic::new(format!("`repro lint` found {errors} error(s)"))
            .hint("fix them before packaging; each is listed above"),
    ))
}
