//! `repro run`: bringing stale stages up to date, independent ones in parallel.
//!
//! Owns: the dispatcher loop (one thread owns all state; workers only build a stage and report back
//! over a channel), building one stage (up to date, restored from the cache, or run), keeping the
//! previous outputs when a stage fails, recording results in the lock file after every stage so
//! a killed run loses only the stages that were in flight, and choosing each stage's executor
//! (local, or Slurm with built-in stages run by the node's `repro __stage`). Deliberately does
//! not own: what is stale (`planner`), how commands run (`executor`, `slurm`), hashing and storing
//! a stage's outputs (`commit`), where outputs are kept (`store`), or display (a [`Reporter`] the
//! caller passes).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::commit::{self, Commit};
use crate::executor::{self, CommandJob, Executor};
use crate::fsstate::{PathState, StatCache};
use crate::lock::{self, LockEntry, LockOut};
use crate::observe::{observe, observe_known, StageView};
use crate::pipeline::{Action, ExecutorKind, Pipeline, Stage};
use crate::planner;
use crate::remote::{RemoteHandle, Session};
use crate::reporter::{Outcome, PeakMemory, Reporter};
use crate::slurm::{self, SlurmConfig, SlurmExecutor};
use crate::store::{LockOutcome, Output, Store};
use repro_kind::diag::{Diagnostic, Failure};
use repro_kind::BuiltinCtx;

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

struct Ctx<'a> {
    root: &'a Path,
    /// The project lock's descriptor, inherited by commands.
    hold: Option<std::os::fd::RawFd>,
    store: &'a Store,
    stat: &'a StatCache,
    executor: &'a dyn Executor,
    /// Present when a selected stage runs on Slurm.
    slurm: Option<&'a SlurmExecutor>,
    place: Placement<'a>,
    force: bool,
    remote: Option<&'a Session>,
}

/// Where each stage runs: `--executor`, else the stage's `executor:`, else the pipeline's, else
/// here. The choice never enters a key: a stage's outputs are the same bytes wherever it runs.
#[derive(Clone, Copy)]
struct Placement<'a> {
    flag: Option<ExecutorKind>,
    pipeline: Option<ExecutorKind>,
    node_command: &'a [String],
}

impl Placement<'_> {
    fn of(&self, stage: &Stage) -> ExecutorKind {
        self.flag
            .or(stage.executor)
            .or(self.pipeline)
            .unwrap_or_default()
    }
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

/// A stage built by a worker: its outcome and lock entry, or, when it ran, its outputs still to
/// be stored with the lock entry to write once they are.
struct Built {
    outcome: Outcome,
    entry: Option<LockEntry>,
    commit: Option<(Commit, LockEntry)>,
}

impl From<(Outcome, Option<LockEntry>)> for Built {
    fn from((outcome, entry): (Outcome, Option<LockEntry>)) -> Built {
        Built {
            outcome,
            entry,
            commit: None,
        }
    }
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
    let run_started = unix_now();
    let mut st = RunState {
        state: vec![State::Pending; p.stages.len()],
        summary: Summary::default(),
        failures: Vec::new(),
        stop_requested: false,
    };
    let mut stop = false;
    let mut lock_saves = lock::Saves::default();
    let jobs = cfg.jobs.max(1);
    ui.begin(selected.len());

    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<Msg>();
        let mut running = 0usize;
        // Stages built whose outputs are still being stored.
        let mut storing = 0usize;
        loop {
            stop |= executor::interrupted();
            if !stop {
                for &i in selected {
                    if running >= jobs {
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
                    running += 1;
                    let entry = lockfile.stages.get(&p.stages[i].name).cloned();
                    let stage = match with_fresh_params(&p.root, &p.stages[i]) {
                        Ok(stage) => stage,
                        Err(d) => {
                            let _ = tx.send(Msg::Done(Done {
                                index: i,
                                outcome: Outcome::Failed(Box::new(d)),
                                entry: None,
                                storing: false,
                            }));
                            continue;
                        }
                    };
                    // Most stages of a no-op run are up to date: decide those here, cheaply,
                    // instead of starting a worker for each.
                    if !cfg.force {
                        if let Some(e) = entry.as_ref().filter(|e| up_to_date(&ctx, &stage, e)) {
                            let _ = tx.send(Msg::Done(Done {
                                index: i,
                                outcome: Outcome::UpToDate,
                                entry: Some(e.clone()),
                                storing: false,
                            }));
                            continue;
                        }
                    }
                    ui.started(&p.stages[i].name);
                    let tx = tx.clone();
                    let ctx = &ctx;
                    scope.spawn(move || work(ctx, &stage, i, entry, &tx));
                }
            }
            if running == 0 && storing == 0 {
                break;
            }
            // Handle every finished stage that is waiting, then write the lock once.
            let mut batch = Vec::new();
            match rx.recv() {
                Ok(d) => batch.push(d),
                Err(_) => break,
            }
            while let Ok(d) = rx.try_recv() {
                batch.push(d);
            }
            for d in session.iter().flat_map(Session::take_warnings) {
                ui.warn(&d);
            }
            let mut changed = false;
            for msg in batch {
                match msg {
                    Msg::Done(done) => {
                        running -= 1;
                        storing += usize::from(done.storing);
                        changed |= record(p, &store, run_started, ui, &mut st, &mut lockfile, done);
                    }
                    Msg::Stored { index, result } => {
                        storing -= 1;
                        changed |= record_stored(p, &mut st, &mut lockfile, index, result);
                    }
                }
                if st.stop_requested && !cfg.keep_going {
                    stop = true;
                }
            }
            lock_saves.unsaved |= changed;
            if lock_saves.due(running == 0 && storing == 0) {
                if let Err(e) = lock_saves.save(&lock_path, &lockfile) {
                    st.failures.push(
                        Diagnostic::new(format!("cannot write `{}`", lock_path.display()))
                            .cause(e.to_string()),
                    );
                    // Reported once; the run stops.
                    lock_saves.unsaved = false;
                    stop = true;
                }
            }
        }
    });
    if lock_saves.unsaved {
        if let Err(e) = lock_saves.save(&lock_path, &lockfile) {
            st.failures.push(
                Diagnostic::new(format!("cannot write `{}`", lock_path.display()))
                    .cause(e.to_string()),
            );
        }
    }
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
        build_stage(ctx, stage, entry)
    }))
    .unwrap_or_else(|panic| {
        Built::from((Outcome::Failed(Box::new(bug(stage, panic.as_ref()))), None))
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
    .unwrap_or_else(|panic| Err(bug(stage, panic.as_ref())));
    failpoint(&stage.name, "after-record");
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

/// True when the stage's key and outputs match its lock entry, decided from stats alone: a file
/// the stat cache cannot vouch for makes this false, and a worker hashes it.
fn up_to_date(ctx: &Ctx<'_>, stage: &Stage, entry: &LockEntry) -> bool {
    if stage.run.always_changed && !stage.run.frozen {
        return false;
    }
    match observe_known(ctx.root, stage, ctx.stat) {
        Some(view) => {
            view.missing_deps.is_empty()
                && entry.key == view.observed.key
                && planner::outputs_intact(entry, &view.observed)
        }
        None => false,
    }
}

fn build_stage(ctx: &Ctx<'_>, stage: &Stage, entry: Option<LockEntry>) -> Built {
    match try_build(ctx, stage, entry.as_ref()) {
        Ok(r) => r,
        Err(d) => Built::from((Outcome::Failed(Box::new(d)), None)),
    }
}

fn try_build(ctx: &Ctx<'_>, stage: &Stage, entry: Option<&LockEntry>) -> Result<Built, Diagnostic> {
    let view = observe(ctx.root, stage, ctx.stat)
        .map_err(|e| io_diag(stage, "cannot read its files", &e))?;
    if let Some(missing) = view.missing_deps.first() {
        return Err(
            Diagnostic::new(format!("stage `{}` cannot start", stage.name))
                .cause(format!("dep `{missing}` does not exist")),
        );
    }
    let obs = &view.observed;
    if stage.run.frozen {
        return frozen(stage, &view).map(Built::from);
    }
    if !ctx.force && !stage.run.always_changed {
        if let Some(e) = entry {
            if e.key == obs.key && planner::outputs_intact(e, obs) {
                return Ok(Built::from((Outcome::UpToDate, Some(e.clone()))));
            }
        }
    }
    if !ctx.force && stage.run.restorable() {
        let local = ctx
            .store
            .stage_record(&obs.key, &stage.outs)
            .filter(|outs| ctx.store.outputs_available(outs));
        // The remote is asked only for keys the local cache cannot restore.
        let cached = local.or_else(|| ctx.remote?.fetch_stage(ctx.store, stage, &obs.key));
        if let Some(outs) = cached {
            if restore_all(ctx, stage, &view, &outs)? {
                return Ok(Built::from((
                    Outcome::Restored,
                    Some(planner::lock_entry(stage, obs, lock_outs(&outs))),
                )));
            }
        }
    }
    run_stage(ctx, stage, &view)
}

/// A frozen stage never runs (`frozen: true`, as in DVC): its outputs must be there, and are
/// recorded as they are.
fn frozen(stage: &Stage, view: &StageView) -> Result<(Outcome, Option<LockEntry>), Diagnostic> {
    let mut outs = BTreeMap::new();
    for (path, state) in &view.out_states {
        let Some(hash) = state.hash() else {
            return Err(Diagnostic::new(format!("stage `{}` is frozen and its output `{path}` is missing", stage.name))
                .hint("a frozen stage never runs: restore the file, or remove `frozen: true` to rebuild it"));
        };
        let dir = matches!(state, PathState::Dir { .. });
        outs.insert(
            path.clone(),
            LockOut {
                hash: hash.to_string(),
                dir,
            },
        );
    }
    Ok((
        Outcome::UpToDate,
        Some(planner::lock_entry(stage, &view.observed, outs)),
    ))
}

/// The deps a stage ran on must still be the ones its key was computed from: a dep edited while
/// the command ran would teach the cache "old input -> output made from new input", and a revert
/// would later restore that wrong output. Such a run fails; the next run sees the new content.
fn deps_unchanged(ctx: &Ctx<'_>, stage: &Stage, view: &StageView) -> Result<(), Diagnostic> {
    for (dep, before) in &view.observed.deps {
        let now = crate::fsstate::hash_path(ctx.root, dep, ctx.stat)
            .map_err(|e| io_diag(stage, &format!("cannot read dep `{dep}` again"), &e))?;
        if now.hash() != Some(before.as_str()) {
            return Err(Diagnostic::new(format!("stage `{}` failed", stage.name))
                .cause(format!("dep `{dep}` changed while the stage ran"))
                .hint(
                    "its outputs were not recorded and the previous ones were put back; run again",
                ));
        }
    }
    Ok(())
}

/// Restores a stage's outputs from the store, each verified against its hash. False when an
/// object turned out to be damaged: it has been removed, and the stage must run instead.
fn restore_all(
    ctx: &Ctx<'_>,
    stage: &Stage,
    view: &StageView,
    outs: &[Output],
) -> Result<bool, Diagnostic> {
    for o in outs {
        let on_disk = view.out_states.get(&o.path).and_then(|s| s.hash());
        if on_disk == Some(o.hash.as_str()) {
            continue;
        }
        match ctx.store.restore(o) {
            Ok(()) => ctx.stat.forget(&o.path),
            Err(e) if crate::store::is_damaged(&e) => {
                tracing::warn!("stage `{}`: {e}; running it instead", stage.name);
                ctx.stat.forget(&o.path);
                return Ok(false);
            }
            Err(e) => {
                return Err(io_diag(
                    stage,
                    &format!("cannot restore `{}` from the cache", o.path),
                    &e,
                ))
            }
        }
    }
    Ok(true)
}

fn run_stage(ctx: &Ctx<'_>, stage: &Stage, view: &StageView) -> Result<Built, Diagnostic> {
    // Keep the current outputs aside: a failed stage gets them back, untouched. Persisted
    // outputs (`persist: true`) stay in place: the command builds on them.
    let mut aside = Vec::new();
    for o in &stage.outs {
        if stage.run.out(o).persist {
            ctx.stat.forget(o);
            continue;
        }
        match ctx.store.move_aside(o) {
            Ok(a) => aside.push((o.clone(), a)),
            Err(e) => {
                put_back_all(ctx, aside);
                return Err(io_diag(
                    stage,
                    &format!("cannot move output `{o}` aside"),
                    &e,
                ));
            }
        }
        ctx.stat.forget(o);
        if let Some(parent) = ctx.root.join(o).parent() {
            let _ = std::fs::create_dir_all(parent);
        }
    }
    let started = Instant::now();
    let result = execute(ctx, stage);
    let seconds = started.elapsed().as_secs_f64();
    failpoint(&stage.name, "after-command");
    let mut memory = None;
    let result = result
        .map(|m| memory = m)
        .and_then(|()| deps_unchanged(ctx, stage, view))
        .and_then(|()| commit::hash_outputs(ctx.root, ctx.stat, stage, &view.observed.key));
    match result {
        Ok(commit) => {
            for (_, a) in aside {
                let _ = ctx.store.discard(a);
            }
            let outs = commit.outputs();
            let mut obs = view.observed.clone();
            for o in &outs {
                obs.outs.insert(o.path.clone(), Some(o.hash.clone()));
            }
            Ok(Built {
                outcome: Outcome::Ran { seconds, memory },
                entry: None,
                commit: Some((commit, planner::lock_entry(stage, &obs, lock_outs(&outs)))),
            })
        }
        Err(d) => {
            put_back_all(ctx, aside);
            for o in &stage.outs {
                ctx.stat.forget(o);
            }
            Err(d)
        }
    }
}

fn put_back_all(ctx: &Ctx<'_>, aside: Vec<(String, Option<std::path::PathBuf>)>) {
    for (rel, a) in aside {
        if let Err(e) = ctx.store.put_back(&rel, a) {
            tracing::error!("cannot put output `{rel}` back: {e}");
        }
    }
}

/// Fault injection for the reliability tests (docs/reliability.md), set by `REPRO_FAILPOINT`:
/// - `panic:STAGE`: built-in stage `STAGE` panics where its work would start (`start`), as a bug
///   in a kind would;
/// - `kill:STAGE:after-command`: repro kills itself (SIGKILL) once `STAGE`'s command or kind has
///   finished, before its outputs are stored;
/// - `kill:STAGE:after-record`: the same once `STAGE`'s outputs and stage record are in the
///   cache, before the lock records the stage (downstream stages may be running).
///
/// The kill points reach windows that a kill at a random moment rarely hits.
fn failpoint(stage: &str, point: &str) {
    let Ok(fp) = std::env::var("REPRO_FAILPOINT") else {
        return;
    };
    if point == "start" && fp.strip_prefix("panic:") == Some(stage) {
        panic!("failpoint `{fp}`");
    }
    if fp.strip_prefix("kill:").and_then(|r| r.rsplit_once(':')) == Some((stage, point)) {
        // The shell's `kill`, as `repro verify` signals its group: no `unsafe` for a test hook.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &std::process::id().to_string()])
            .status();
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}

/// The failure of a stage whose code panicked: a bug in repro, not in the user's input.
fn bug(stage: &Stage, panic: &(dyn std::any::Any + Send)) -> Diagnostic {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    Diagnostic::new(format!("stage `{}` failed", stage.name))
        .cause(format!("this is a bug in repro: {what}"))
        .hint("its previous outputs were put back; please report the bug with the stage's spec")
}

/// Runs a built-in stage in this process, a panic in its code being its failure. The runner
/// calls it for local stages; the binary's `__stage` calls it on a cluster node.
pub fn run_builtin(root: &Path, stage: &Stage) -> Result<(), Diagnostic> {
    let Action::Builtin(b) = &stage.action else {
        return Err(Diagnostic::new(format!(
            "stage `{}` is a command, not a built-in kind",
            stage.name
        )));
    };
    // Caught here, inside the stage's run, so that the outputs moved aside are put back.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        failpoint(&stage.name, "start");
        b.run(&BuiltinCtx {
            root,
            stage: &stage.name,
            memo: &crate::store::Store::new(root),
        })
    }))
    .unwrap_or_else(|panic| Err(bug(stage, panic.as_ref())))
}

/// Runs the stage's work; Ok with the peak memory measured for it, when known.
fn execute(ctx: &Ctx<'_>, stage: &Stage) -> Result<Option<PeakMemory>, Diagnostic> {
    let on = ctx.place.of(stage);
    let template = match &stage.action {
        Action::Builtin(_) if on == ExecutorKind::Local => {
            return crate::pools::in_own_pool(|| run_builtin(ctx.root, stage))
                .map(|()| executor::process_max_rss_bytes().map(PeakMemory::Process));
        }
        Action::Builtin(_) => {
            let job = builtin_job(ctx, stage)?;
            let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
            let result = run_job(ctx, stage, on, &job, &mut stdout, &mut stderr);
            let _ = ctx.store.save_command_logs(&stage.name, &stdout, &stderr);
            return result;
        }
        Action::Cmd(template) => template,
    };
    // DVC runs a command's lines one by one, each in its own shell, stopping at the first that
    // fails; on Slurm each line is its own job for the same reason.
    let whole = [template.clone()];
    let lines: &[String] = if stage.run.lines.is_empty() {
        &whole
    } else {
        &stage.run.lines
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let mut peak: Option<PeakMemory> = None;
    for line in lines {
        let job = command_job(ctx, stage, line)?;
        let result = run_job(ctx, stage, on, &job, &mut stdout, &mut stderr);
        match result {
            // A multi-line command's peak is its largest line's.
            Ok(m) => {
                if m.map(PeakMemory::bytes) > peak.map(PeakMemory::bytes) {
                    peak = m;
                }
            }
            Err(d) => {
                let _ = ctx.store.save_command_logs(&stage.name, &stdout, &stderr);
                return Err(d);
            }
        }
    }
    let _ = ctx.store.save_command_logs(&stage.name, &stdout, &stderr);
    Ok(peak)
}

/// Runs one job here or on Slurm, appending its output to the stage's; the failure names
/// Slurm's reason or the exit code, with the tail of stderr.
fn run_job(
    ctx: &Ctx<'_>,
    stage: &Stage,
    on: ExecutorKind,
    job: &CommandJob,
    stdout: &mut Vec<u8>,
    stderr: &mut Vec<u8>,
) -> Result<Option<PeakMemory>, Diagnostic> {
    let out = match (on, ctx.slurm) {
        (ExecutorKind::Slurm, Some(slurm)) => slurm.run(job),
        _ => ctx.executor.run(job),
    };
    stdout.extend_from_slice(&out.stdout);
    stderr.extend_from_slice(&out.stderr);
    let record = out
        .job
        .as_ref()
        .and_then(|j| serde_json::to_vec_pretty(j).ok());
    let _ = ctx.store.save_job_record(&stage.name, record.as_deref());
    if out.success() {
        return Ok(out.max_rss_bytes.map(PeakMemory::Command));
    }
    let mut d = Diagnostic::new(format!("stage `{}` failed", stage.name))
        .cause(out.failure_cause(&job.cmd));
    let tail = stderr_tail(&out.stderr, 20);
    if !tail.is_empty() {
        d = d.cause(format!("stderr (last lines):\n{tail}"));
    }
    let logs = crate::store::log_name(&stage.name);
    let shell_hint = if tail.contains("Bad substitution") || tail.contains("Syntax error") {
        "repro runs each line with `sh` (POSIX sh, dash on Debian), not your login shell as DVC does: write bash syntax as `bash -c '...'` or in a script; "
    } else {
        ""
    };
    Err(d.hint(format!(
        "{shell_hint}full output in `cache/logs/{logs}.out` and `cache/logs/{logs}.err`; earlier outputs were kept"
    )))
}

/// One line of a command stage as a job: the command with its params and seed, their
/// environment variables, run in the stage's folder (`wdir`).
fn command_job(ctx: &Ctx<'_>, stage: &Stage, template: &str) -> Result<CommandJob, Diagnostic> {
    let template = executor::substitute_seed(template, stage.seed);
    let cmd = executor::substitute(&template, &stage.params)
        .map_err(|e| Diagnostic::new(format!("stage `{}` failed", stage.name)).cause(e))?;
    let mut env = executor::param_env(&stage.params);
    env.push(("REPRO_STAGE".into(), stage.name.clone()));
    // What DVC gives its commands, for commands written for DVC.
    env.push(("DVC_STAGE".into(), stage.name.clone()));
    if let Ok(abs) = std::path::absolute(ctx.root) {
        env.push(("DVC_ROOT".into(), abs.to_string_lossy().to_string()));
    }
    if let Some(seed) = stage.seed {
        env.push(("REPRO_SEED".into(), seed.to_string()));
    }
    Ok(CommandJob {
        stage: stage.name.clone(),
        cmd,
        cwd: ctx.root.join(&stage.run.wdir),
        env,
        hold: ctx.hold,
        resources: stage.resources.clone(),
    })
}

/// A built-in stage as a job on a node: `repro __stage NAME --expect CHECK`, which runs the
/// stage's work only; hashing, recording and the lock stay with this dispatcher.
fn builtin_job(ctx: &Ctx<'_>, stage: &Stage) -> Result<CommandJob, Diagnostic> {
    if ctx.place.node_command.is_empty() {
        return Err(
            Diagnostic::new(format!("stage `{}` cannot run on Slurm", stage.name))
                .cause("this program cannot run built-in stages on a node")
                .hint("run it with `repro run`"),
        );
    }
    let mut words: Vec<String> = ctx.place.node_command.to_vec();
    words.extend([
        stage.name.clone(),
        "--expect".into(),
        slurm::definition_check(stage),
    ]);
    let cmd: Vec<String> = words.iter().map(|w| slurm::sh_quote(w)).collect();
    Ok(CommandJob {
        stage: stage.name.clone(),
        cmd: cmd.join(" "),
        cwd: ctx.root.to_path_buf(),
        env: vec![("REPRO_STAGE".into(), stage.name.clone())],
        hold: None,
        resources: stage.resources.clone(),
    })
}

fn lock_outs(outs: &[Output]) -> BTreeMap<String, LockOut> {
    outs.iter()
        .map(|o| {
            (
                o.path.clone(),
                LockOut {
                    hash: o.hash.clone(),
                    dir: o.is_dir,
                },
            )
        })
        .collect()
}

fn io_diag(stage: &Stage, what: &str, e: &std::io::Error) -> Diagnostic {
    Diagnostic::new(format!("stage `{}`: {what}", stage.name)).cause(e.to_string())
}

fn stderr_tail(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n")
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
