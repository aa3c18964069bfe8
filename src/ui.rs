//! What a run shows while it works: a live display on a terminal, plain lines elsewhere.
//!
//! Owns: progress output of `repro run` (indicatif on a terminal; one line per event when stderr
//! is not a terminal or `CI` is set), as the engine's `Reporter`. Deliberately does not own:
//! errors (`repro_kind::diag`) or logs (tracing).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use repro_engine::reporter::{Outcome, Reporter};
use repro_kind::diag::Diagnostic;

pub struct Ui {
    mode: Mode,
    verbose: bool,
}

enum Mode {
    Plain,
    Live {
        multi: MultiProgress,
        total: ProgressBar,
        running: HashMap<String, ProgressBar>,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct UiConfig {
    /// Also report stages that were already up to date.
    pub verbose: bool,
    /// Never draw the live display.
    pub plain: bool,
}

impl Ui {
    pub fn new(cfg: UiConfig) -> Ui {
        let live =
            !cfg.plain && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        let mode = if live {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let total = multi.add(ProgressBar::new(0));
            total.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} stages {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Mode::Live {
                multi,
                total,
                running: HashMap::new(),
            }
        } else {
            Mode::Plain
        };
        Ui {
            mode,
            verbose: cfg.verbose,
        }
    }
}

impl Reporter for Ui {
    fn begin(&mut self, stages: usize) {
        if let Mode::Live { total, .. } = &self.mode {
            total.set_length(stages as u64);
        }
    }

    fn started(&mut self, name: &str) {
        match &mut self.mode {
            Mode::Plain => {}
            Mode::Live { multi, running, .. } => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {msg} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(name.to_string());
                bar.enable_steady_tick(Duration::from_millis(100));
                running.insert(name.to_string(), bar);
            }
        }
    }

    fn finished(&mut self, name: &str, outcome: &Outcome) {
        let line = match outcome {
            Outcome::Ran { seconds, .. } => Some(format!("ran `{name}` ({seconds:.2}s)")),
            Outcome::Restored => Some(format!("restored `{name}` from the cache")),
            Outcome::UpToDate if self.verbose => Some(format!("`{name}` is up to date")),
            Outcome::UpToDate => None,
            Outcome::Failed(_) => Some(format!("failed `{name}`")),
            Outcome::Skipped => Some(format!("skipped `{name}` (a stage it needs failed)")),
            Outcome::NotStarted => Some(format!(
                "not started `{name}` (the run stopped after a failure; `--keep-going` goes on)"
            )),
        };
        match &mut self.mode {
            Mode::Plain => {
                if let Some(l) = line {
                    eprintln!("{l}");
                }
            }
            Mode::Live {
                multi,
                total,
                running,
            } => {
                if let Some(bar) = running.remove(name) {
                    bar.finish_and_clear();
                    multi.remove(&bar);
                }
                total.inc(1);
                if let Some(l) = line {
                    let _ = multi.println(l);
                }
            }
        }
    }

    fn end(&mut self) {
        if let Mode::Live { total, .. } = &self.mode {
            total.finish_and_clear();
        }
    }

    fn warn(&mut self, d: &Diagnostic) {
        let text = repro_kind::diag::render_labelled("warning", d);
        match &self.mode {
            Mode::Plain => eprint!("{text}"),
            Mode::Live { multi, .. } => {
                let _ = multi.println(text.trim_end());
            }
        }
    }
}
