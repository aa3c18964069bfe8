//! repro: rebuilds an empirical study from raw data to tables, reproducibly and incrementally.
//!
//! Owns: the process: the allocator, logging, and turning every error into one rendered report
//! and an exit code (0 ok, 1 a stage failed, 2 usage or pipeline error). Deliberately does not own:
//! any of the work; each subcommand is a thin file in `commands/` over the library crates.

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
mod commands;
mod diff;
mod kinds;
mod meter;
mod pages;
mod replication;
mod report;
mod ui;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

/// Restores the default SIGPIPE action, which Rust's runtime ignores: `repro fit --json | head`
/// then ends quietly when `head` closes the pipe, as Unix tools do, instead of panicking on the
/// failed write.
fn quiet_on_closed_pipe() {
    // SAFETY: sets a signal disposition before any thread is started.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    keep_freed_memory();
    repro_estimators::deterministic_linear_algebra();
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    match commands::dispatch(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let _ = std::io::stdout().flush();
            eprint!("{}", repro_kind::diag::render(&failure));
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
