//! Progress of `repro push` and `repro pull`: objects and bytes, on stderr.
//!
//! Owns: the engine's transfer `Meter` for the terminal: a live line (indicatif) when stderr is
//! a terminal, otherwise one plain line every 10 seconds, so short transfers (and tests) print
//! nothing and long ones in CI logs still show that they move. Deliberately does not own: the
//! summary line (`commands/share`).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use repro_engine::remote::Meter;

/// How often a plain progress line is printed while a transfer goes on, unless
/// `REPRO_PROGRESS_SECONDS` says otherwise (a CI log that wants more, or a test that wants one).
const PLAIN_EVERY: Duration = Duration::from_secs(10);

fn plain_every() -> Duration {
    std::env::var("REPRO_PROGRESS_SECONDS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(PLAIN_EVERY, Duration::from_secs_f64)
}

pub struct TransferMeter {
    verb: &'static str,
    bar: Option<ProgressBar>,
    every: Duration,
    objects: AtomicU64,
    bytes: AtomicU64,
    last_line: Mutex<Instant>,
}

impl TransferMeter {
    pub fn new(verb: &'static str) -> TransferMeter {
        let live = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        let bar = live.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        TransferMeter {
            verb,
            bar,
            every: plain_every(),
            objects: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            last_line: Mutex::new(Instant::now()),
        }
    }

    fn text(&self) -> String {
        format!(
            "{}: {} objects, {}",
            self.verb,
            self.objects.load(Ordering::Relaxed),
            HumanBytes(self.bytes.load(Ordering::Relaxed))
        )
    }

    fn show(&self) {
        if let Some(bar) = &self.bar {
            bar.set_message(self.text());
            return;
        }
        let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() >= self.every {
            *last = Instant::now();
            eprintln!("{}", self.text());
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Meter for TransferMeter {
    fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        self.show();
    }

    fn object_done(&self) {
        self.objects.fetch_add(1, Ordering::Relaxed);
        self.show();
    }
}
