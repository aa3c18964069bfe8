//! `repro report`: write the HTML report.

use std::path::Path;

use repro_kind::{Diagnostic, Failure};

use crate::cli::{Cli, ReportArgs};
use crate::kinds::load_pipeline;
use crate::report;

pub fn report(cli: &Cli, args: &ReportArgs) -> Result<(), Failure> {
    let p = load_pipeline(&cli.file)?;
    match &args.out {
        // A path the user names is taken as typed, relative to the current folder, inside the
        // project or not (as `repro package --out`).
        Some(o) => {
            if o.trim().is_empty() || o.ends_with('/') {
                return Err(Failure::usage(Diagnostic::new(format!(
                    "invalid report path `{o}`: it names no file"
                ))));
            }
            report::write_at(&p, Path::new("."), o)?;
            eprintln!("wrote the report `{o}`");
        }
        None => {
            let rel = p
                .report
                .clone()
                .unwrap_or_else(|| report::DEFAULT_REPORT.to_string());
            report::write(&p, &rel)?;
            eprintln!("wrote the report `{rel}`");
        }
    }
    Ok(())
}
