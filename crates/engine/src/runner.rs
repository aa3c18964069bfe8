//! `repro run`: bringing stale stages up to date, independent ones in parallel.
//!
//! Owns: the dispatcher loop (one thread owns all state; workers only build a stage and report back
//! over a channel), recording results in the lock file after every stage so a killed run loses
//! only the stages that were in flight, and choosing each stage's executor (local, or Slurm with
//! built-in stages run by the node's `repro __stage`). Deliberately does not own: building one
//! stage (`build`), what is stale (`planner`), how commands run (`executor`, `slurm`), hashing and
//! storing a stage's outputs (`commit`), where outputs are kept (`store`), or display (a
//! [`Reporter`] the caller passes).

use std::path::Path;
use std::sync::mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::build::{self, Built, Ctx, Placement};
use crate::commit;
use crate::executor;
use crate::fsstate::{PathState, StatCache};
use crate::lock::{self, LockEntry};
use crate::pipeline::{ExecutorKind, Pipeline, Stage};
use crate::remote::{RemoteHandle, Session};
use crate::reporter::{Outcome, Reporter};
use crate::slurm::{self, SlurmConfig, SlurmExecutor};
use crate::store::{LockOutcome, Store};
use repro_kind::diag::{Diagnostic, Failure};

pub use crate::build::run_builtin;

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub jobs: usize,
    pub force: bool,
    pub keep_going: bool,
    pub wait: bool,
    /// `--executor`: where every stage runs, over the pipeline's `executor:` settings.
    pub executor: Option<ExecutorKind>,
    /// The command line that runs one built-in stage on a cluster node, without the stage name
    /// (the binary's hidden `__stage`); empty when built-in stages cannot run elsewhere.
    pub node_command: Vec<String>,
    /// The shared cache to consult for stages whose key the local cache does not know.
    pub remote: Option<RemoteHandle>,
}

#[derive(Debug, Default)]
pub struct Summary {
    pub ran: usize,
    pub restored: usize,
    pub up_to_date: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Of the restored stages, how many were fetched from the remote first.
    pub fetched: usize,
}

struct Done {
    index: usize,
    outcome: Outcome,
    entry: Option<LockEntry>,
    /// The worker goes on to store the stage's outputs and reports [`Msg::Stored`].
    storing: bool,
}

/// What workers tell the dispatcher.
enum Msg {
    /// The stage is built: downstream stages may start.
    Done(Done),
    /// The stage's outputs are in the cache (then its lock entry) or could not be stored.
    Stored {
        index: usize,
        result: Result<LockEntry, Diagnostic>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Running,
    Ok,
    Bad,
}

/// Runs the selected stages (which include everything they need).
pub fn run(
    p: &Pipeline,
    selected: &[usize],
    cfg: &RunConfig,
    ui: &mut dyn Reporter,
) -> Result<Summary, Failure> {
    let store = Store::new(&p.root);
    let (guard, rescued) = own_project(&store, cfg.wait)?;
    for note in rescued {
        ui.warn(&Diagnostic::new(note));
    }
    let lock_path = p.lock_path();
    let mut lockfile = lock::read(&lock_path)?;
    lockfile.engine = lock::engine_version();
    // So `repro gc` of any pipeline of this project keeps what this one needs.
    crate::lockset::register(&p.root, &lock_path)
        .map_err(|e| Failure::io(format!("cannot write `{}`", crate::lockset::REGISTER), &e))?;
    let stat = store.load_stat_cache();
    check_sources(p, selected, &stat)?;

    let executor = executor::LocalExecutor;
    let place = Placement {
        flag: cfg.executor,
        pipeline: p.executor,
        node_command: &cfg.node_command,
    };
    let on_slurm = selected
        .iter()
        .any(|&i| place.of(&p.stages[i]) == ExecutorKind::Slurm);
    let slurm = if on_slurm {
        Some(slurm_executor(p, &store)?)
    } else {
        None
    };
    let session = cfg.remote.as_ref().map(Session::new);
    let ctx = Ctx {
        root: &p.root,
        hold: Some(guard.fd()),
        store: &store,
        stat: &stat,
        executor: &executor,
        slurm: slurm.as_ref(),
        place,
        force: cfg.force,
        remote: session.as_ref(),
    };
    forward_signals_once();
    let mut st = RunState {
        state: vec![State::Pending; p.stages.len()],
        summary: Summary::default(),
        failures: Vec::new(),
        stop_requested: false,
    };
    ui.begin(selected.len());
    let run = Dispatch {
        p,
        selected,
        cfg,
        ctx: &ctx,
        lock_path: &lock_path,
        run_started: unix_now(),
    };
    dispatch(&run, &mut st, &mut lockfile, ui);
    mark_unreached(p, selected, &mut st, ui);
    st.summary.fetched = session.as_ref().map_or(0, Session::fetched);
    for d in session.iter().flat_map(Session::take_warnings) {
        ui.warn(&d);
    }
    if executor::interrupted() {
        st.failures.push(
            Diagnostic::new("the run was interrupted").cause(
                "running commands were stopped; their stages' previous outputs were put back",
            ),
        );
    }
    ui.end();
    if let Err(e) = store.save_stat_cache(&stat) {
        tracing::warn!("cannot save the stat cache: {e}");
    }
    prune_lock(p, &lock_path, &mut lockfile)?;
    if !st.failures.is_empty() {
        return Err(Failure {
            exit: repro_kind::diag::Exit::StageFailed,
            diagnostics: st.failures,
        });
    }
    Ok(st.summary)
}

/// What the dispatcher reads while a run is under way.
struct Dispatch<'a> {
    p: &'a Pipeline,
    selected: &'a [usize],
    cfg: &'a RunConfig,
    ctx: &'a Ctx<'a>,
    lock_path: &'a Path,
    /// When the run started (seconds since the epoch), for the run log.
    run_started: f64,
}

/// Stages in flight: building, or built and storing their outputs.
#[derive(Default)]
struct InFlight {
    running: usize,
    storing: usize,
}

/// The dispatcher loop: starts every stage whose upstream stages are done (at most `jobs` at
/// once), records what the workers report, and writes the lock as stages finish. Returns when
/// nothing is in flight and nothing more may start.
fn dispatch(
    run: &Dispatch<'_>,
    st: &mut RunState,
    lockfile: &mut lock::LockFile,
    ui: &mut dyn Reporter,
) {
    let mut stop = false;
    let mut lock_saves = lock::Saves::default();
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<Msg>();
        let mut flight = InFlight::default();
        loop {
            stop |= executor::interrupted();
            if !stop {
                for (i, stage, entry) in start_ready(run, st, lockfile, &mut flight, &tx, ui) {
                    let tx = tx.clone();
                    let ctx = run.ctx;
                    scope.spawn(move || work(ctx, &stage, i, entry, &tx));
                }
            }
            if flight.running == 0 && flight.storing == 0 {
                break;
            }
            // Handle every finished stage that is waiting, then write the lock once.
            let mut batch = Vec::new();
            match rx.recv() {
                Ok(d) => batch.push(d),
                Err(_) => break,
            }
            batch.extend(rx.try_iter());
            for d in run.ctx.remote.iter().flat_map(|s| s.take_warnings()) {
                ui.warn(&d);
            }
            let mut changed = false;
            for msg in batch {
                changed |= receive(run, st, lockfile, &mut flight, msg, ui);
                if st.stop_requested && !run.cfg.keep_going {
                    stop = true;
                }
            }
            lock_saves.unsaved |= changed;
            if lock_saves.due(flight.running == 0 && flight.storing == 0)
                && save_lock(run.lock_path, &mut lock_saves, lockfile, st)
            {
                // Reported once; the run stops.
                lock_saves.unsaved = false;
                stop = true;
            }
        }
    });
    if lock_saves.unsaved {
        save_lock(run.lock_path, &mut lock_saves, lockfile, st);
    }
}

/// Writes the lock; true (with the failure recorded) when it cannot be written.
fn save_lock(
    lock_path: &Path,
    saves: &mut lock::Saves,
    lockfile: &lock::LockFile,
    st: &mut RunState,
) -> bool {
    match saves.save(lock_path, lockfile) {
        Ok(()) => false,
        Err(e) => {
            st.failures.push(
                Diagnostic::new(format!("cannot write `{}`", lock_path.display()))
                    .cause(e.to_string()),
            );
            true
        }
    }
}

/// The stages that may start now (their upstream stages are done, and fewer than `jobs` are
/// running), as (index, stage with fresh params, lock entry) for workers to build. Stages whose
/// upstream failed are skipped, and stages that are up to date by their stats alone are
/// reported to the dispatcher without a worker.
fn start_ready<'p>(
    run: &Dispatch<'p>,
    st: &mut RunState,
    lockfile: &lock::LockFile,
    flight: &mut InFlight,
    tx: &mpsc::Sender<Msg>,
    ui: &mut dyn Reporter,
) -> Vec<(usize, std::borrow::Cow<'p, Stage>, Option<LockEntry>)> {
    let p = run.p;
    let mut ready = Vec::new();
    for &i in run.selected {
        if flight.running >= run.cfg.jobs.max(1) {
            break;
        }
        if st.state[i] != State::Pending {
            continue;
        }
        let ups = &p.stages[i].upstream;
        if ups.iter().any(|&u| st.state[u] == State::Bad) {
            st.state[i] = State::Bad;
            st.summary.skipped += 1;
            ui.finished(&p.stages[i].name, &Outcome::Skipped);
            continue;
        }
        if !ups.iter().all(|&u| st.state[u] == State::Ok) {
            continue;
        }
        st.state[i] = State::Running;
        flight.running += 1;
        let entry = lockfile.stages.get(&p.stages[i].name).cloned();
        let report = |outcome: Outcome, entry: Option<LockEntry>| {
            let _ = tx.send(Msg::Done(Done {
                index: i,
                outcome,
                entry,
                storing: false,
            }));
        };
        let stage = match with_fresh_params(&p.root, &p.stages[i]) {
            Ok(stage) => stage,
            Err(d) => {
                report(Outcome::Failed(Box::new(d)), None);
                continue;
            }
        };
        // Most stages of a no-op run are up to date: decide those here, cheaply, instead of
        // starting a worker for each.
        if !run.cfg.force {
            if let Some(e) = entry
                .as_ref()
                .filter(|e| build::up_to_date(run.ctx, &stage, e))
            {
                report(Outcome::UpToDate, Some(e.clone()));
                continue;
            }
        }
        ui.started(&p.stages[i].name);
        ready.push((i, stage, entry));
    }
    ready
}

/// Records one message from a worker; true when the lock changed.
fn receive(
    run: &Dispatch<'_>,
    st: &mut RunState,
    lockfile: &mut lock::LockFile,
    flight: &mut InFlight,
    msg: Msg,
    ui: &mut dyn Reporter,
) -> bool {
    match msg {
        Msg::Done(done) => {
            flight.running -= 1;
            flight.storing += usize::from(done.storing);
            let store = run.ctx.store;
            record(run.p, store, run.run_started, ui, st, lockfile, done)
        }
        Msg::Stored { index, result } => {
            flight.storing -= 1;
            record_stored(run.p, st, lockfile, index, result)
        }
    }
}

/// What the dispatcher owns while a run is under way.
struct RunState {
    state: Vec<State>,
    summary: Summary,
    failures: Vec<Diagnostic>,
    /// A stage failed; without `--keep-going` no new stage starts.
    stop_requested: bool,
}

/// Records one finished stage: the run log, the display, the counts and its new lock entry.
/// True when the lock changed.
fn record(
    p: &Pipeline,
    store: &Store,
    run_started: f64,
    ui: &mut dyn Reporter,
    st: &mut RunState,
    lockfile: &mut lock::LockFile,
    done: Done,
) -> bool {
    let stage = &p.stages[done.index];
    if !matches!(done.outcome, Outcome::UpToDate) {
        let _ = store.log_run(&serde_json::json!({
            "run_started": run_started,
            "finished": unix_now(),
            "stage": stage.name,
            "outcome": done.outcome.label(),
            "seconds": match &done.outcome { Outcome::Ran { seconds, .. } => *seconds, _ => 0.0 },
            "max_rss_bytes": match &done.outcome { Outcome::Ran { memory: Some(m), .. } => Some(m.bytes()), _ => None },
            "max_rss_of": match &done.outcome { Outcome::Ran { memory: Some(m), .. } => Some(m.scope()), _ => None },
        }));
    }
    ui.finished(&stage.name, &done.outcome);
    match done.outcome {
        Outcome::Failed(d) => {
            st.state[done.index] = State::Bad;
            st.summary.failed += 1;
            st.failures.push(*d);
            st.stop_requested = true;
        }
        other => {
            st.state[done.index] = State::Ok;
            match other {
                Outcome::Ran { .. } => st.summary.ran += 1,
                Outcome::Restored => st.summary.restored += 1,
                _ => st.summary.up_to_date += 1,
            }
        }
    }
    match done.entry {
        Some(entry) if lockfile.stages.get(&stage.name) != Some(&entry) => {
            lockfile.stages.insert(stage.name.clone(), entry);
            true
        }
        _ => false,
    }
}

/// Records a stage whose outputs were stored (its lock entry) or could not be: a failure of the
/// run, though the stage's outputs stay in place. True when the lock changed.
fn record_stored(
    p: &Pipeline,
    st: &mut RunState,
    lockfile: &mut lock::LockFile,
    index: usize,
    result: Result<LockEntry, Diagnostic>,
) -> bool {
    match result {
        Ok(entry) => {
            let name = &p.stages[index].name;
            let changed = lockfile.stages.get(name) != Some(&entry);
            lockfile.stages.insert(name.clone(), entry);
            changed
        }
        Err(d) => {
            st.failures.push(d);
            st.stop_requested = true;
            false
        }
    }
}

/// A worker: builds one stage and reports it; when the stage ran, goes on to store its outputs
/// and reports that too. A panic anywhere is that stage's failure: the worker still reports, so
/// the dispatcher never waits forever.
fn work(
    ctx: &Ctx<'_>,
    stage: &Stage,
    index: usize,
    entry: Option<LockEntry>,
    tx: &mpsc::Sender<Msg>,
) {
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        build::build_stage(ctx, stage, entry)
    }))
    .unwrap_or_else(|panic| {
        Built::from((
            Outcome::Failed(Box::new(build::bug(stage, panic.as_ref()))),
            None,
        ))
    });
    let Some((commit, entry)) = built.commit else {
        let _ = tx.send(Msg::Done(Done {
            index,
            outcome: built.outcome,
            entry: built.entry,
            storing: false,
        }));
        return;
    };
    let _ = tx.send(Msg::Done(Done {
        index,
        outcome: built.outcome,
        entry: None,
        storing: true,
    }));
    let stored = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        commit::store_outputs(ctx.store, stage, &commit)
    }))
    .unwrap_or_else(|panic| Err(build::bug(stage, panic.as_ref())));
    build::failpoint(&stage.name, "after-record");
    let _ = tx.send(Msg::Stored {
        index,
        result: stored.map(|()| entry),
    });
}

/// Stages not reached because the run stopped early: skipped (a stage they need failed) or not
/// started.
fn mark_unreached(p: &Pipeline, selected: &[usize], st: &mut RunState, ui: &mut dyn Reporter) {
    for &i in selected {
        if st.state[i] != State::Pending {
            continue;
        }
        let needs_failed = p.stages[i]
            .upstream
            .iter()
            .any(|&u| st.state[u] == State::Bad);
        let outcome = if needs_failed {
            Outcome::Skipped
        } else {
            Outcome::NotStarted
        };
        // Later stages that need this one are skipped too.
        st.state[i] = State::Bad;
        st.summary.skipped += 1;
        ui.finished(&p.stages[i].name, &outcome);
    }
}

/// Drops lock entries of stages that no longer exist (they would keep their objects alive
/// forever), and writes a lock where there was none.
fn prune_lock(
    p: &Pipeline,
    lock_path: &Path,
    lockfile: &mut lock::LockFile,
) -> Result<(), Failure> {
    let names: std::collections::HashSet<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
    let before = lockfile.stages.len();
    lockfile.stages.retain(|k, _| names.contains(&k.as_str()));
    if lockfile.stages.len() != before || !lock_path.exists() {
        lock::write(lock_path, lockfile)
            .map_err(|e| Failure::io(format!("cannot write `{}`", lock_path.display()), &e))?;
    }
    Ok(())
}

/// Takes the project lock (or waits for it with `wait`), then clears the scratch files of a run
/// that was killed: they are garbage once the lock is ours.
/// Also returns what it rescued (`Store::clean_scratch`), for the caller to tell.
pub(crate) fn own_project(
    store: &Store,
    wait: bool,
) -> Result<(crate::store::ProjectLock, Vec<String>), Failure> {
    let guard = match store
        .lock_project(wait)
        .map_err(|e| Failure::io("cannot take the project lock `cache/lock`", &e))?
    {
        LockOutcome::Acquired(g) => g,
        LockOutcome::Busy => {
            return Err(Failure::stage(
                Diagnostic::new("another repro process is running in this project")
                    .cause("`cache/lock` is held by another `repro run` or a command it started")
                    .hint("wait for it to finish, or pass `--wait` to queue behind it"),
            ))
        }
    };
    let notes = store
        .clean_scratch()
        .map_err(|e| Failure::io("cannot clean `cache/tmp`", &e))?;
    Ok((guard, notes))
}

/// The Slurm executor of this run: jobs work in the project folder (absolute, on the shared
/// filesystem) and write their output under the project's scratch space.
fn slurm_executor(p: &Pipeline, store: &Store) -> Result<SlurmExecutor, Failure> {
    let root = std::path::absolute(&p.root)
        .map_err(|e| Failure::io(format!("cannot resolve `{}`", p.root.display()), &e))?;
    let log_dir = store
        .scratch_path("slurm")
        .map_err(|e| Failure::io("cannot create `cache/tmp`", &e))?;
    Ok(SlurmExecutor::new(SlurmConfig {
        root,
        log_dir,
        run: slurm::run_id(),
    }))
}

/// Ctrl-C, SIGTERM and SIGHUP stop the running commands and end the run as failed, instead of
/// leaving commands behind (installed once per process).
fn forward_signals_once() {
    static SIGNALS: std::sync::Once = std::sync::Once::new();
    SIGNALS.call_once(|| {
        if let Err(e) = crate::stop::forward_signals() {
            tracing::warn!("cannot catch signals: {e}");
        }
    });
}

/// Every dep that no stage produces must exist before anything runs.
fn check_sources(p: &Pipeline, selected: &[usize], stat: &StatCache) -> Result<(), Failure> {
    let mut diags = Vec::new();
    for &i in selected {
        let s = &p.stages[i];
        for d in &s.deps {
            let produced = s.upstream.iter().any(|&u| {
                p.stages[u].outs.iter().any(|o| {
                    repro_kind::paths::path_within(d, o) || repro_kind::paths::path_within(o, d)
                })
            });
            if produced {
                continue;
            }
            // Stats only: whether the dep exists; hashing is for the workers.
            match crate::fsstate::look(&p.root, d, stat, crate::fsstate::Reading::StatOnly) {
                Ok(PathState::Missing) => diags.push(
                    Diagnostic::new(format!(
                        "dep `{d}` of stage `{}` does not exist and no stage produces it",
                        s.name
                    ))
                    .at(Some(repro_kind::diag::Location {
                        file: p.file.clone(),
                        line: s.pos.line,
                        column: s.pos.column,
                    }))
                    .hint("create the file, fix the path, or add the stage that writes it"),
                ),
                Ok(_) => {}
                Err(e) if e.kind() == crate::fsstate::NEEDS_CONTENT => {}
                Err(e) => diags.push(
                    Diagnostic::new(format!("cannot read dep `{d}` of stage `{}`", s.name))
                        .cause(e.to_string()),
                ),
            }
        }
    }
    if diags.is_empty() {
        Ok(())
    } else {
        Err(Failure::usage_many(diags))
    }
}

/// The stage as it is to run: params it names from a file that another stage writes are read
/// now, after that stage has run (DVC reads params when a stage runs, not when it loads).
fn with_fresh_params<'s>(
    root: &std::path::Path,
    stage: &'s Stage,
) -> Result<std::borrow::Cow<'s, Stage>, Diagnostic> {
    if !stage.params_from_outputs {
        return Ok(std::borrow::Cow::Borrowed(stage));
    }
    let params = crate::pipeline::read_param_refs(root, &stage.param_refs).map_err(|why| {
        Diagnostic::new(format!("stage `{}` cannot start", stage.name)).cause(why)
    })?;
    let mut fresh = stage.clone();
    fresh.params = params;
    Ok(std::borrow::Cow::Owned(fresh))
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
