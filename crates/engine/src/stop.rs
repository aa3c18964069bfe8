//! Stopping what a run started when repro is interrupted: the local commands' process groups
//! (`executor`) and the run's Slurm jobs (`slurm`), from one place that knows both.
//!
//! Owns: forwarding SIGINT, SIGTERM and SIGHUP to [`interrupt`]. Deliberately does not own: how
//! a command or a job is started or tracked (`executor`, `slurm`).

/// Stops every running command and cancels the run's Slurm jobs still in flight.
pub fn interrupt() {
    crate::executor::interrupt();
    crate::slurm::cancel_all();
}

/// Forwards SIGINT, SIGTERM and SIGHUP to the running commands ([`interrupt`]) instead of
/// dying with them running: the run then ends as failed, outputs put back, the lock released.
pub fn forward_signals() -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::spawn(move || {
        for _ in signals.forever() {
            interrupt();
        }
    });
    Ok(())
}
