//! `repro report`: write the HTML report.

use repro_kind::{Diagnostic, Failure};

use crate::cli::{Cli, ReportArgs};
use crate::kinds::load_pipeline;
use crate::report;

pub fn report(cli: &Cli, args: &ReportArgs) -> Result<(), Failure> {
    let p = load_pipeline(&cli.file)?;
    let rel = match &args.out {
        Some(o) => repro_kind::normalize_path(o).map_err(|why| {
            Failure::usage(Diagnostic::new(format!("invalid report path `{o}`: {why}")))
        })?,
        None => p
            .report
            .clone()
            .unwrap_or_else(|| report::DEFAULT_REPORT.to_string()),
    };
    report::write(&p, &rel)?;
    eprintln!("wrote {rel}");
    Ok(())
}
