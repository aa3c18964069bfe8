//! `repro run`: bring stages up to date, then rewrite the report if a stage ran.

use repro_engine::{lock, runner, status};
use repro_kind::Failure;

use crate::cli::{Cli, RunArgs};
use crate::kinds::load_pipeline;
use crate::{diff, report, ui};
use repro_kind::diag::count;

pub fn run(cli: &Cli, args: &RunArgs) -> Result<(), Failure> {
    let p = load_pipeline(&cli.file)?;
    let selected = p.select(&args.stages)?;
    if args.dry_run {
        let statuses = status::compute(&p, &selected)?;
        print!("{}", status::render_dry_run(&statuses, args.force));
        return Ok(());
    }
    crate::pages::no_huge_pages_but_in_children();
    let cfg = runner::RunConfig {
        jobs: args.jobs.unwrap_or_else(super::default_jobs),
        force: args.force,
        keep_going: args.keep_going,
        wait: args.wait,
        executor: args.executor.map(Into::into),
        node_command: super::stage::node_command(&p)?,
        remote: super::share::for_run(&p),
    };
    let mut ui = ui::Ui::new(ui::UiConfig {
        verbose: cli.verbose > 0,
        plain: false,
    });
    // The lock before the run, for the report's "What changed" section (kept in memory only).
    let before = lock::read(&p.lock_path()).ok();
    let summary = runner::run(&p, &selected, &cfg, &mut ui)?;
    // A run that changed no output leaves the report alone; one that restored outputs (a fresh
    // clone filled from the cache or a remote) writes it, as does any run where it is missing.
    let wrote = p
        .report
        .as_deref()
        .filter(|rel| summary.ran > 0 || summary.restored > 0 || !p.root.join(rel).exists());
    if let Some(rel) = wrote {
        // The section is an extra: when it cannot be computed the report goes without it.
        let changes = before
            .filter(|b| summary.ran > 0 && !b.stages.is_empty())
            .and_then(|b| diff::with_current(&p, &b, "the lock before this run").ok());
        report::write_with(&p, &p.root, rel, changes.as_ref())?;
    }
    let fetched = match summary.fetched {
        0 => String::new(),
        n => format!(" ({n} fetched from the remote)"),
    };
    eprintln!(
        "{}: {} ran, {} restored from the cache{fetched}, {} up to date{}",
        count(
            summary.ran + summary.restored + summary.up_to_date,
            "stage",
            "stages"
        ),
        summary.ran,
        summary.restored,
        summary.up_to_date,
        wrote.map_or(String::new(), |r| format!("; report `{r}`"))
    );
    Ok(())
}
