//! repro: rebuilds an empirical study from raw data to tables, reproducibly and incrementally.
//!
//! Owns: dispatching subcommands, setting up logging, and turning every error into one rendered
//! report and an exit code (0 ok, 1 a stage failed, 2 usage or pipeline error). Deliberately does
//! not own: any of the work; each subcommand lives in its module.

// Diagnostics travel on the cold path only; keeping them unboxed keeps the code plain.
#![allow(clippy::result_large_err)]

// mimalloc, as polars recommends: repro's stages allocate many short-lived text buffers, and with
// it `locate` used about 10% less CPU time on 10M records than with the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e` (include/mimalloc.h); the binding names
/// no constant for it. A unit test checks that the option at this index has the purge delay's
/// default in src/options.c (1000 ms).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps memory that stages free inside the process instead of handing it back to the system
/// after a second: a stage's next batch, and the next stage, reuse it without the kernel zeroing
/// fresh pages (on the benchmark machine, page faults took up to a third of `locate`'s time on
/// 10M records). Peak memory is unchanged; the process keeps its peak until it exits.
fn keep_freed_memory() {
    // SAFETY: sets one global option before any thread is started (mi_option_set is not
    // thread-safe); mimalloc reads it whenever it considers purging.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

mod cli;
mod collab;
mod dataio;
mod describe;
mod diag;
mod executor;
mod figures;
mod fitting;
mod fsstate;
mod ingest;
mod key;
mod kinds;
mod lint;
mod locate;
mod lock;
mod models;
mod observe;
mod package;
mod panel;
mod params;
mod pipeline;
mod places;
mod planner;
mod quantiles;
mod readme;
mod report;
mod runner;
mod sample;
mod srcpack;
mod status;
mod store;
mod synth;
mod tables;
mod tabular;
mod textnorm;
mod ui;
mod verify;
mod yaml;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::diag::Failure;

fn main() -> ExitCode {
    keep_freed_memory();
    repro_estimators::deterministic_linear_algebra();
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    match dispatch(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let _ = std::io::stdout().flush();
            eprint!("{}", diag::render(&failure));
            ExitCode::from(failure.exit as u8)
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .try_init();
}

fn dispatch(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Run(args) => {
            let p = pipeline::load(&cli.file)?;
            let selected = p.select(&args.stages)?;
            if args.dry_run {
                let statuses = status::compute(&p, &selected)?;
                print!("{}", status::render_dry_run(&statuses, args.force));
                return Ok(());
            }
            let cfg = runner::RunConfig {
                jobs: args.jobs.unwrap_or_else(default_jobs),
                force: args.force,
                keep_going: args.keep_going,
                wait: args.wait,
            };
            let mut ui = ui::Ui::new(ui::UiConfig {
                verbose: cli.verbose > 0,
                plain: false,
            });
            let summary = runner::run(&p, &selected, &cfg, &mut ui)?;
            // A run that rebuilt nothing leaves the report alone.
            if let Some(rel) = p.report.as_deref().filter(|_| summary.ran > 0) {
                report::write(&p, rel)?;
            }
            eprintln!(
                "{} stages: {} ran, {} restored from the cache, {} up to date",
                summary.ran + summary.restored + summary.up_to_date,
                summary.ran,
                summary.restored,
                summary.up_to_date
            );
            Ok(())
        }
        Command::Status(args) => {
            let p = pipeline::load(&cli.file)?;
            let selected = p.select(&args.stages)?;
            let statuses = status::compute(&p, &selected)?;
            if args.json {
                print!("{}", status::render_json(&statuses));
            } else {
                print!("{}", status::render_status(&statuses, cli.verbose > 0));
            }
            Ok(())
        }
        Command::Dag(args) => {
            let p = pipeline::load(&cli.file)?;
            print!("{}", status::render_dag(&p, args.format));
            Ok(())
        }
        Command::Fit(args) => {
            let req = fitting::FitRequest {
                formula: args.formula.clone(),
                vcov: args.vcov.clone(),
                quantile: args.quantile,
                se: args.se.clone(),
                method: args.method.clone(),
                drop_singletons: args.drop_singletons,
            };
            let res = fitting::run(&args.data, &req).map_err(Failure::usage)?;
            let data = args.data.display().to_string();
            if args.json {
                let json = fitting::to_json(&data, &res);
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json).unwrap_or_default()
                );
            } else {
                print!("{}", fitting::render_summary(&data, &res));
            }
            Ok(())
        }
        Command::Package(args) => {
            let p = pipeline::load(&cli.file)?;
            let cfg = package::PackageConfig {
                out: args.out.clone(),
            };
            print!("{}", package::package(&p, &cfg)?);
            Ok(())
        }
        Command::Verify(args) => {
            let cfg = verify::VerifyConfig {
                target: args.target.clone(),
                pipeline_file: cli.file.clone(),
                jobs: args.jobs.unwrap_or_else(default_jobs),
            };
            let verified = verify::verify(&cfg)?;
            print!("{}", verified.report);
            match verified.failure {
                Some(f) => Err(f),
                None => Ok(()),
            }
        }
        Command::Lint => {
            let p = pipeline::load(&cli.file)?;
            let findings = lint::lint(&p);
            print!("{}", lint::render(&findings));
            let errors = findings
                .iter()
                .filter(|f| f.severity == lint::Severity::Error)
                .count();
            if errors == 0 {
                return Ok(());
            }
            Err(diag::Failure::stage(
                diag::Diagnostic::new(format!("`repro lint` found {errors} error(s)"))
                    .hint("fix them before packaging; each is listed above"),
            ))
        }
        Command::Report(args) => {
            let p = pipeline::load(&cli.file)?;
            let rel = match &args.out {
                Some(o) => pipeline::normalize_path(o).map_err(|why| {
                    diag::Failure::usage(diag::Diagnostic::new(format!(
                        "invalid report path `{o}`: {why}"
                    )))
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
        Command::Gc(args) => {
            let p = pipeline::load(&cli.file)?;
            print!("{}", status::gc(&p, args.dry_run)?);
            Ok(())
        }
    }
}

fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    /// The index names the purge delay: it holds that option's default (1000 ms in mimalloc v3's
    /// src/options.c) and reads back what is set.
    #[test]
    fn purge_delay_option_index() {
        use libmimalloc_sys::{mi_option_get, mi_option_set};
        // SAFETY: the unit test binary sets no other mimalloc option; the value is restored.
        unsafe {
            assert_eq!(mi_option_get(super::MI_OPTION_PURGE_DELAY), 1000);
            mi_option_set(super::MI_OPTION_PURGE_DELAY, -1);
            assert_eq!(mi_option_get(super::MI_OPTION_PURGE_DELAY), -1);
            mi_option_set(super::MI_OPTION_PURGE_DELAY, 1000);
        }
    }
}
