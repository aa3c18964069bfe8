//! The subcommands: each a thin file over the library crates, in the manner of cargo's ops.
//!
//! Owns: dispatching a parsed command line to its subcommand. Deliberately does not own: the work
//! (the engine, the kinds, `replication`, `report`) or printing errors (`main`).

mod dag;
mod diff;
mod fit;
mod gc;
mod lint;
mod package;
mod report;
mod run;
mod share;
mod stage;
mod status;
mod verify;

use repro_kind::Failure;

use crate::cli::{Cli, Command};

/// Runs the subcommand `cli` names.
pub fn dispatch(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Run(args) => run::run(cli, args),
        Command::Status(args) => status::status(cli, args),
        Command::Dag(args) => dag::dag(cli, args),
        Command::Fit(args) => fit::fit(args),
        Command::Package(args) => package::package(cli, args),
        Command::Verify(args) => verify::verify(cli, args),
        Command::Lint => lint::lint(cli),
        Command::Report(args) => report::report(cli, args),
        Command::Gc(args) => gc::gc(cli, args),
        Command::Stage(args) => stage::stage(cli, args),
        Command::Push(args) => share::push(cli, args),
        Command::Pull(args) => share::pull(cli, args),
        Command::Diff(args) => diff::diff(cli, args),
    }
}

/// Stages run in parallel by default: one per core.
fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
