//! The Slurm executor: each stage's work as one `sbatch` job, the dispatcher waiting here.
//!
//! Owns: the job script (the stage's environment, then `exec /bin/sh -c CMD`, as the local
//! executor runs it), submitting with `sbatch` (job name `repro-RUN-STAGE`, the project folder as
//! working folder, the stage's resources as options), waiting for every job in flight with one
//! `squeue` call per poll (`sacct` for jobs that left the queue, where accounting is on),
//! reading the job's output files back, explaining a failed job in Slurm's words (`queue`), and
//! cancelling this run's jobs (`scancel` by id) when the run is interrupted. Deliberately does
//! not own: hashing, the store, the lock or deciding what runs (the dispatcher, `runner`, does
//! all of that on the submitting machine), or how a built-in stage runs on the node (the binary's
//! hidden `__stage` command; the runner passes the command line).

pub mod queue;

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::executor::{self, CommandJob, CommandOutcome, Executor, JobReport};
use crate::pipeline::Stage;
use queue::JobState;

/// The first poll comes this soon after a submission; the delay then doubles up to [`POLL_MAX`].
const POLL_MIN: Duration = Duration::from_millis(500);
const POLL_MAX: Duration = Duration::from_secs(5);
/// How long the queue may stay unreadable (controller down) before the waiting stages fail.
const QUEUE_GIVE_UP: Duration = Duration::from_secs(300);
/// How long cancelled jobs may take to end after an interrupt before their stages fail anyway.
const CANCEL_GIVE_UP: Duration = Duration::from_secs(60);
/// How long a job's output file may take to appear on a shared filesystem after the job ended.
const OUTPUT_GRACE: Duration = Duration::from_secs(5);

/// Where the jobs of one run run from.
#[derive(Debug, Clone)]
pub struct SlurmConfig {
    /// The project folder (absolute): the jobs' working folder, on the shared filesystem.
    pub root: PathBuf,
    /// A folder under the project's scratch space for the jobs' output files.
    pub log_dir: PathBuf,
    /// A short id of this run, in every job name: `repro-RUN-STAGE`.
    pub run: String,
}

/// Submits each job with `sbatch` and waits for it; usable from many worker threads at once.
pub struct SlurmExecutor {
    cfg: SlurmConfig,
    queue: Mutex<Queue>,
    changed: Condvar,
}

/// The jobs in flight, shared by the waiting workers; one of them at a time polls for all.
struct Queue {
    waiting: BTreeSet<u64>,
    ended: HashMap<u64, JobState>,
    polling: bool,
    next_poll: Instant,
    delay: Duration,
    /// Since when `squeue` has been failing, and its last error.
    unreadable: Option<(Instant, String)>,
    /// When the waiting workers first saw the run interrupted.
    cancelled_at: Option<Instant>,
    /// Whether `sacct` works here (unknown until first needed).
    accounting: Option<bool>,
}

/// Every job this process submitted that has not ended: what [`cancel_all`] cancels.
static IN_FLIGHT: Mutex<Vec<u64>> = Mutex::new(Vec::new());

fn in_flight() -> MutexGuard<'static, Vec<u64>> {
    IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner())
}

/// Cancels every job this process submitted and that is still in flight (`scancel ID...`):
/// only the run's own jobs, never by name or user.
pub fn cancel_all() {
    let ids: Vec<String> = in_flight().iter().map(u64::to_string).collect();
    if ids.is_empty() {
        return;
    }
    match Command::new("scancel").args(&ids).output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => tracing::warn!(
            "scancel {} failed: {}",
            ids.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => tracing::warn!("cannot run `scancel`: {e}"),
    }
}

/// A short id for the run's job names, different for runs that start at different times.
pub fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let h = blake3::hash(format!("{nanos}-{}", std::process::id()).as_bytes());
    h.to_hex()[..6].to_string()
}

/// What a built-in stage's node process checks before it runs: the stage's definition, params,
/// outputs and code fingerprint (its key without the deps). A node whose pipeline file or
/// `repro` binary differs from the dispatcher's refuses instead of writing other outputs.
pub fn definition_check(stage: &Stage) -> String {
    crate::key::stage_key(stage, &Default::default())[..16].to_string()
}

impl SlurmExecutor {
    pub fn new(cfg: SlurmConfig) -> SlurmExecutor {
        SlurmExecutor {
            cfg,
            queue: Mutex::new(Queue {
                waiting: BTreeSet::new(),
                ended: HashMap::new(),
                polling: false,
                next_poll: Instant::now(),
                delay: POLL_MIN,
                unreadable: None,
                cancelled_at: None,
                accounting: None,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn job_name(&self, stage: &str) -> String {
        format!("repro-{}-{stage}", self.cfg.run)
    }

    /// Submits the job; its id, or why `sbatch` refused.
    fn submit(&self, job: &CommandJob) -> Result<u64, String> {
        std::fs::create_dir_all(&self.cfg.log_dir)
            .map_err(|e| format!("cannot create `{}`: {e}", self.cfg.log_dir.display()))?;
        let (out, err) = self.output_files(&job.stage);
        let mut args = vec![
            "--parsable".to_string(),
            format!("--job-name={}", self.job_name(&job.stage)),
            format!("--chdir={}", self.cfg.root.display()),
            format!("--output={}", out.display()),
            format!("--error={}", err.display()),
        ];
        args.extend(queue::sbatch_options(&job.resources));
        tracing::info!(stage = %job.stage, "sbatch {}", args.join(" "));
        let mut child = Command::new("sbatch")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run `sbatch`: {e}"))?;
        let script = job_script(job);
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(script.as_bytes())
                .map_err(|e| format!("cannot pass the job script to `sbatch`: {e}"))?;
        }
        let o = child
            .wait_with_output()
            .map_err(|e| format!("cannot run `sbatch`: {e}"))?;
        let stdout = String::from_utf8_lossy(&o.stdout);
        match queue::parse_job_id(&stdout) {
            Some(id) if o.status.success() => Ok(id),
            _ => Err(format!(
                "`sbatch` refused the job: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
        }
    }

    fn output_files(&self, stage: &str) -> (PathBuf, PathBuf) {
        (
            self.cfg.log_dir.join(format!("{stage}.out")),
            self.cfg.log_dir.join(format!("{stage}.err")),
        )
    }

    /// Waits until job `id` has ended. One waiting worker at a time polls the queue for all
    /// jobs in flight; the others sleep until it has.
    fn wait(&self, id: u64) -> JobState {
        let mut q = self.lock();
        q.waiting.insert(id);
        // A new job: look soon.
        q.delay = POLL_MIN;
        q.next_poll = q.next_poll.min(Instant::now() + POLL_MIN);
        loop {
            if let Some(end) = q.ended.remove(&id) {
                return end;
            }
            let now = Instant::now();
            if !q.polling && now >= q.next_poll {
                q.polling = true;
                let ids: Vec<u64> = q.waiting.iter().copied().collect();
                let accounting = q.accounting;
                drop(q);
                let polled = poll(&ids, accounting);
                q = self.lock();
                self.settle(&mut q, polled);
                q.polling = false;
                q.next_poll = Instant::now() + q.delay;
                q.delay = (q.delay * 2).min(POLL_MAX);
                self.changed.notify_all();
                continue;
            }
            let sleep = if q.polling {
                POLL_MAX
            } else {
                q.next_poll - now
            };
            q = self
                .changed
                .wait_timeout(q, sleep)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Takes in one poll's result: ended jobs leave the waiting set; a queue that stays
    /// unreadable, or jobs that do not end after an interrupt, end their stages as failed.
    fn settle(&self, q: &mut Queue, polled: Polled) {
        if let Some(a) = polled.accounting {
            q.accounting = Some(a);
        }
        match polled.states {
            Ok(states) => {
                q.unreadable = None;
                for (id, st) in states {
                    if q.waiting.remove(&id) {
                        q.ended.insert(id, st);
                    }
                }
            }
            Err(e) => {
                let since = q.unreadable.as_ref().map_or(Instant::now(), |(t, _)| *t);
                q.unreadable = Some((since, e));
            }
        }
        if executor::interrupted() {
            q.delay = POLL_MIN;
            q.cancelled_at.get_or_insert_with(Instant::now);
        }
        let give_up = match (&q.unreadable, q.cancelled_at) {
            (Some((since, e)), _) if since.elapsed() > QUEUE_GIVE_UP => Some(format!(
                "cannot read the job's state from Slurm for {} s: {e}",
                QUEUE_GIVE_UP.as_secs()
            )),
            (_, Some(t)) if t.elapsed() > CANCEL_GIVE_UP => Some(format!(
                "the job did not end within {} s after `scancel`",
                CANCEL_GIVE_UP.as_secs()
            )),
            _ => None,
        };
        if let Some(why) = give_up {
            for id in std::mem::take(&mut q.waiting) {
                q.ended.insert(
                    id,
                    JobState {
                        state: "UNKNOWN".into(),
                        reason: why.clone(),
                        status: -1,
                        signal: 0,
                    },
                );
            }
        }
    }

    /// The job's stdout and stderr files, read once they exist (a shared filesystem may show
    /// them a moment after the job ended), then removed.
    fn collect_output(&self, stage: &str) -> (Vec<u8>, Vec<u8>) {
        let (out, err) = self.output_files(stage);
        let started = Instant::now();
        while !(out.exists() && err.exists()) && started.elapsed() < OUTPUT_GRACE {
            std::thread::sleep(Duration::from_millis(100));
        }
        let read = |p: &Path| {
            let bytes = std::fs::read(p).unwrap_or_default();
            let _ = std::fs::remove_file(p);
            bytes
        };
        (read(&out), read(&err))
    }
}

impl Executor for SlurmExecutor {
    fn run(&self, job: &CommandJob) -> CommandOutcome {
        if executor::interrupted() {
            return CommandOutcome::not_started("the run was interrupted");
        }
        let id = match self.submit(job) {
            Ok(id) => id,
            Err(why) => return CommandOutcome::not_started(why),
        };
        in_flight().push(id);
        tracing::info!(stage = %job.stage, "submitted Slurm job {id}");
        if executor::interrupted() {
            cancel_all();
        }
        let end = self.wait(id);
        in_flight().retain(|j| *j != id);
        let (stdout, stderr) = self.collect_output(&job.stage);
        let output = format!(
            "{}\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        );
        let failure = if end.state == "UNKNOWN" {
            Some(format!("Slurm job {id}: {}", end.reason))
        } else {
            queue::explain(&queue::Ended {
                id,
                state: &end,
                resources: &job.resources,
                output: &output,
            })
        };
        let code = (end.signal == 0 && end.status >= 0).then_some(end.status);
        CommandOutcome {
            code,
            stdout,
            stderr,
            spawn_error: None,
            // The node's memory use is Slurm's to report (sacct, with accounting on); not read yet.
            max_rss_bytes: None,
            job: Some(JobReport {
                executor: "slurm",
                id: id.to_string(),
                name: self.job_name(&job.stage),
                state: end.state.clone(),
                reason: end.reason.clone(),
                exit_code: end.exit_code(),
                failure,
            }),
        }
    }
}

/// One poll's result: the jobs that have ended (or why the queue could not be read), and
/// whether `sacct` turned out to work.
struct Polled {
    states: Result<HashMap<u64, JobState>, String>,
    accounting: Option<bool>,
}

/// One `squeue` call for every job in flight; `sacct` for those the queue no longer lists.
fn poll(ids: &[u64], accounting: Option<bool>) -> Polled {
    let mut polled = Polled {
        states: Ok(HashMap::new()),
        accounting: None,
    };
    if ids.is_empty() {
        return polled;
    }
    let list: Vec<String> = ids.iter().map(u64::to_string).collect();
    let list = list.join(",");
    let listed = match Command::new("squeue")
        .args(["-h", "-t", "all", "-j", &list, "-O", queue::SQUEUE_FORMAT])
        .output()
    {
        Ok(o) if o.status.success() => queue::parse_squeue(&String::from_utf8_lossy(&o.stdout)),
        // Every id has left the controller's memory: none is listed.
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("Invalid job id") => HashMap::new(),
        Ok(o) => {
            polled.states = Err(format!(
                "`squeue` failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
            return polled;
        }
        Err(e) => {
            polled.states = Err(format!("cannot run `squeue`: {e}"));
            return polled;
        }
    };
    let mut ended: HashMap<u64, JobState> = HashMap::new();
    let mut gone = Vec::new();
    for id in ids {
        match listed.get(id) {
            Some(st) if st.is_final() => {
                ended.insert(*id, st.clone());
            }
            Some(_) => {}
            None => gone.push(*id),
        }
    }
    // Jobs the controller has forgotten (after `MinJobAge`): ask the accounting database.
    if !gone.is_empty() && accounting != Some(false) {
        match sacct(&gone) {
            Some(states) => {
                polled.accounting = Some(true);
                ended.extend(states.into_iter().filter(|(_, s)| s.is_final()));
            }
            None => polled.accounting = Some(false),
        }
    }
    for id in gone {
        ended.entry(id).or_insert_with(|| JobState {
            state: "UNKNOWN".into(),
            reason: "the job left Slurm's queue and no accounting record shows how it ended".into(),
            status: -1,
            signal: 0,
        });
    }
    polled.states = Ok(ended);
    polled
}

/// The jobs' records in the accounting database; None where accounting is off.
fn sacct(ids: &[u64]) -> Option<HashMap<u64, JobState>> {
    let list: Vec<String> = ids.iter().map(u64::to_string).collect();
    let o = Command::new("sacct")
        .args([
            "-n",
            "-X",
            "-P",
            "-j",
            &list.join(","),
            "-o",
            queue::SACCT_FIELDS,
        ])
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| queue::parse_sacct(&String::from_utf8_lossy(&o.stdout)))
}

/// The batch script: the stage's environment, then the command as the local executor runs it.
fn job_script(job: &CommandJob) -> String {
    let mut s = String::from("#!/bin/sh\n");
    s.push_str(&format!("# repro stage `{}`\n", job.stage));
    for (k, v) in &job.env {
        s.push_str(&format!("export {k}={}\n", sh_quote(v)));
    }
    // A node may have more cores than the job was given: the thread pools of repro (rayon,
    // polars) and of common numeric libraries (OpenMP) take the allocation's size unless the
    // stage's environment sets them.
    s.push_str(THREADS_FROM_ALLOCATION);
    s.push_str(&format!("exec /bin/sh -c {}\n", sh_quote(&job.cmd)));
    s
}

const THREADS_FROM_ALLOCATION: &str = "if [ -n \"${SLURM_CPUS_PER_TASK:-}\" ]; then
  : \"${RAYON_NUM_THREADS:=$SLURM_CPUS_PER_TASK}\" \"${POLARS_MAX_THREADS:=$SLURM_CPUS_PER_TASK}\" \"${OMP_NUM_THREADS:=$SLURM_CPUS_PER_TASK}\"
  export RAYON_NUM_THREADS POLARS_MAX_THREADS OMP_NUM_THREADS
fi
";

/// `text` as one single-quoted shell word.
pub fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
