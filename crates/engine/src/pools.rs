//! The thread pool a built-in stage runs its parallel work on when the runner runs it in this
//! process.
//!
//! Owns: giving each such stage a rayon pool of its own for the time it runs.
//! Deliberately does not own: how many stages run at once (the runner's `--jobs`), or what the
//! stages compute; the kinds only use `rayon` as usual, and their results never depend on the
//! number of threads (docs/caching.md).
//!
//! Why: stages running side by side in one process would otherwise share rayon's global pool,
//! whose workers run their own queued tasks before anything submitted from outside. A stage
//! whose parallel loop was submitted while another stage's long loop had the workers busy then
//! waited for that loop to finish, holding one of the `--jobs` places with no CPU in use (in
//! the default pipeline the 0.04 s `heterogeneity` stage took 1.3 s next to `quantile`, and
//! `curve` could not start until it ended). With a pool each, the stages share the cores
//! through the operating system's scheduler instead.

use std::sync::{Mutex, PoisonError};

/// Runs `work` with rayon's parallel iterators on a pool of its own of the default size (the
/// `RAYON_NUM_THREADS` environment variable, else one thread per core); on the caller's pool
/// when no thread can be started. A pool is handed back when its stage ends and taken by the
/// next, so a run starts at most one pool per stage running at once (its `--jobs`), and the
/// threads (with their allocator caches) live on as the global pool's would.
pub(crate) fn in_own_pool<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    static IDLE: Mutex<Vec<rayon::ThreadPool>> = Mutex::new(Vec::new());
    let idle = || IDLE.lock().unwrap_or_else(PoisonError::into_inner);
    let taken = idle().pop();
    let pool = match taken {
        Some(pool) => pool,
        None => match rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("repro-stage-{i}"))
            .build()
        {
            Ok(pool) => pool,
            Err(e) => {
                tracing::debug!(
                    "cannot start a thread pool for the stage ({e}); using the shared one"
                );
                return work();
            }
        },
    };
    // A panic in `work` goes on up (the runner makes it the stage's failure); the pool is
    // then dropped instead of handed back.
    let out = pool.install(work);
    idle().push(pool);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// A stage's parallel loop finishes while another stage keeps every worker of the global
    /// pool busy: it does not wait for the other's loop.
    #[test]
    fn a_stage_does_not_wait_for_another_stages_parallel_loop() {
        use rayon::prelude::*;
        let release = Arc::new(AtomicBool::new(false));
        let busy = {
            let release = Arc::clone(&release);
            std::thread::spawn(move || {
                // Far more tasks than workers, each holding its worker until released.
                (0..rayon::current_num_threads() * 64)
                    .into_par_iter()
                    .for_each(|_| {
                        while !release.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    });
            })
        };
        // The other stage's loop ends after 3 s whatever happens, so a failure cannot hang.
        let releaser = {
            let release = Arc::clone(&release);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(3));
                release.store(true, Ordering::Relaxed);
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        let sum: u64 = in_own_pool(|| (0..1000u64).into_par_iter().sum());
        let waited = started.elapsed();
        release.store(true, Ordering::Relaxed);
        busy.join().unwrap();
        releaser.join().unwrap();
        assert_eq!(sum, 499_500);
        assert!(waited < Duration::from_secs(2), "waited {waited:?}");
    }
}
