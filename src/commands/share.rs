//! `repro push` and `repro pull`, and opening the pipeline's remote for `repro run`.
//!
//! Owns: turning the pipeline's `remote:` into the engine's remote (through `repro-remote`) and
//! the summary lines. Deliberately does not own: what is shared or how (`repro_engine::share`,
//! `repro_remote`).

use std::sync::Arc;

use indicatif::HumanBytes;
use repro_engine::pipeline::Pipeline;
use repro_engine::remote::{Remote, RemoteHandle};
use repro_engine::share::{self, ShareReport};
use repro_kind::diag::{render_labelled, Diagnostic};
use repro_kind::Failure;

use crate::cli::{Cli, PullArgs, ShareArgs};
use crate::kinds::load_pipeline;
use crate::meter::TransferMeter;

pub fn push(cli: &Cli, args: &ShareArgs) -> Result<(), Failure> {
    let (p, selected, remote) = open(cli, args)?;
    let meter = TransferMeter::new("pushing");
    let report = share::push(&p, &selected, remote.as_ref(), &meter);
    meter.finish();
    let report = report?;
    print_warnings(&report);
    eprintln!(
        "pushed {} stages to `{}`: {} objects uploaded ({}), {} already there",
        report.stages,
        remote.describe(),
        report.transferred,
        HumanBytes(report.bytes),
        report.present
    );
    failed_stages(report)
}

pub fn pull(cli: &Cli, args: &PullArgs) -> Result<(), Failure> {
    let (p, selected, remote) = open(cli, &args.share)?;
    let meter = TransferMeter::new("pulling");
    let cfg = share::PullConfig { force: args.force };
    let report = share::pull(&p, &selected, remote.as_ref(), &meter, cfg);
    meter.finish();
    let report = report?;
    print_warnings(&report);
    eprintln!(
        "pulled {} stages from `{}`: {} objects downloaded ({}), {} already in the cache; {} outputs restored",
        report.stages,
        remote.describe(),
        report.transferred,
        HumanBytes(report.bytes),
        report.present,
        report.restored
    );
    failed_stages(report)
}

/// The remote `repro run` consults, if the pipeline names one. A remote that cannot be opened
/// (no credentials, folder not mounted) is a warning: the run goes on without it.
pub fn for_run(p: &Pipeline) -> Option<RemoteHandle> {
    let spec = p.remote.as_ref()?;
    match repro_remote::open(spec) {
        Ok(r) => Some(RemoteHandle(r)),
        Err(mut d) => {
            let then = "stages whose results are not in the local cache run locally";
            d.hint = Some(match d.hint.take() {
                Some(h) => format!("{h}; meanwhile {then}"),
                None => then.to_string(),
            });
            eprint!("{}", render_labelled("warning", &d));
            None
        }
    }
}

type Opened = (Pipeline, Vec<usize>, Arc<dyn Remote>);

fn open(cli: &Cli, args: &ShareArgs) -> Result<Opened, Failure> {
    let p = load_pipeline(&cli.file)?;
    let selected = p.select(&args.stages)?;
    let Some(spec) = p.remote.as_ref() else {
        return Err(Failure::usage(
            Diagnostic::new(format!("`{}` names no `remote:`", cli.file.display())).hint(
                "add `remote:` with `url: s3://BUCKET/PREFIX` or `url: /path/to/shared/folder`",
            ),
        ));
    };
    let remote = repro_remote::open(spec).map_err(Failure::stage)?;
    Ok((p, selected, remote))
}

/// The stages that could not be pushed or pulled, after the summary of those that were.
fn failed_stages(report: ShareReport) -> Result<(), Failure> {
    if report.errors.is_empty() {
        return Ok(());
    }
    Err(Failure {
        exit: repro_kind::diag::Exit::StageFailed,
        diagnostics: report.errors,
    })
}

fn print_warnings(report: &ShareReport) {
    for w in &report.warnings {
        eprint!("{}", render_labelled("warning", w));
    }
}
