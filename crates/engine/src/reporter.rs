//! What a run tells whoever watches it: the seam between the engine and a display.
//!
//! Owns: [`Outcome`] (how one stage ended) and the [`Reporter`] trait the runner calls as stages
//! start and finish. Deliberately does not own: any display; the binary implements the trait (a
//! live terminal view or plain lines), so the engine knows nothing of terminals.

use repro_kind::Diagnostic;

/// Receives a run's events, in order, on the dispatcher thread.
pub trait Reporter {
    /// The run is about to bring `stages` stages up to date.
    fn begin(&mut self, stages: usize);
    /// A worker started building stage `name`.
    fn started(&mut self, name: &str);
    /// Stage `name` ended.
    fn finished(&mut self, name: &str, outcome: &Outcome);
    /// The run ended.
    fn end(&mut self);
    /// Something the user should know that does not fail the run (e.g. the remote cannot be
    /// used and stages run locally).
    fn warn(&mut self, d: &Diagnostic);
}

/// How one stage ended.
#[derive(Debug)]
pub enum Outcome {
    UpToDate,
    Restored,
    Ran {
        seconds: f64,
        /// Peak resident memory measured for the stage, when known.
        memory: Option<PeakMemory>,
    },
    Failed(Box<Diagnostic>),
    /// Not started because a stage it needs failed.
    Skipped,
    /// Not started because the run stopped after a failure.
    NotStarted,
}

/// Peak resident memory of a stage's run, in bytes, and what it measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeakMemory {
    /// A command stage: the command's own peak (wait4's rusage of its process tree).
    Command(u64),
    /// A built-in stage runs inside repro: repro's peak when the stage ended, which covers the
    /// stage and whatever ran before or beside it (so an upper bound).
    Process(u64),
}

impl PeakMemory {
    pub fn bytes(self) -> u64 {
        match self {
            PeakMemory::Command(b) | PeakMemory::Process(b) => b,
        }
    }

    /// The run log's word for what was measured.
    pub fn scope(self) -> &'static str {
        match self {
            PeakMemory::Command(_) => "command",
            PeakMemory::Process(_) => "process",
        }
    }
}

impl Outcome {
    /// The outcome as one word, for the run log.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::UpToDate => "up-to-date",
            Outcome::Restored => "restored",
            Outcome::Ran { .. } => "ran",
            Outcome::Failed(_) => "failed",
            Outcome::Skipped => "skipped",
            Outcome::NotStarted => "not-started",
        }
    }
}
