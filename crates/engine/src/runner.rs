//! `repro run`: bringing stale stages up to date, independent ones in parallel.
//!
//! Owns: the dispatcher loop (one thread owns all state; workers only build a stage and report back
//! over a channel), building one stage (up to date, restored from the cache, or run), keeping the
//! previous outputs when a stage fails, and recording results in the lock file after every stage so
//! a killed run loses only the stages that were in flight. Deliberately does not own: what is stale
//! (`planner`), how commands run (`executor`), where outputs are kept (`store`), or display (a [`Reporter`] the caller passes).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::executor::{self, CommandJob, Executor};
use crate::fsstate::{PathState, StatCache};
use crate::lock::{self, LockEntry, LockOut};
use crate::observe::{observe, observe_known, StageView};
use crate::pipeline::{Action, Pipeline, Stage};
use crate::planner;
use crate::remote::{RemoteHandle, Session};
use crate::reporter::{Outcome, Reporter};
use crate::store::{LockOutcome, Output, Store};
use repro_kind::diag::{Diagnostic, Failure};
use repro_kind::BuiltinCtx;

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub jobs: usize,
    pub force: bool,
    pub keep_going: bool,
    pub wait: bool,
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
    force: bool,
    remote: Option<&'a Session>,
}

struct Done {
    index: usize,
    outcome: Outcome,
    entry: Option<LockEntry>,
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
    let guard = own_project(&store, cfg.wait)?;
    let lock_path = p.lock_path();
    let mut lockfile = lock::read(&lock_path)?;
    lockfile.engine = lock::engine_version();
    let stat = store.load_stat_cache();
    check_sources(p, selected, &stat)?;

    let executor = executor::LocalExecutor;
    let session = cfg.remote.as_ref().map(Session::new);
    let ctx = Ctx {
        root: &p.root,
        hold: Some(guard.fd()),
        store: &store,
        stat: &stat,
        executor: &executor,
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
    let jobs = cfg.jobs.max(1);
    ui.begin(selected.len());

    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<Done>();
        let mut running = 0usize;
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
                    // Most stages of a no-op run are up to date: decide those here, cheaply,
                    // instead of starting a worker for each.
                    if !cfg.force {
                        if let Some(e) =
                            entry.as_ref().filter(|e| up_to_date(&ctx, &p.stages[i], e))
                        {
                            let _ = tx.send(Done {
                                index: i,
                                outcome: Outcome::UpToDate,
                                entry: Some(e.clone()),
                            });
                            continue;
                        }
                    }
                    ui.started(&p.stages[i].name);
                    let tx = tx.clone();
                    let ctx = &ctx;
                    let stage = &p.stages[i];
                    scope.spawn(move || {
                        // A panic anywhere in building the stage is that stage's failure: the
                        // worker still reports, so the dispatcher never waits forever.
                        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            build_stage(ctx, stage, entry)
                        }));
                        let (outcome, entry) = built.unwrap_or_else(|panic| {
                            (Outcome::Failed(Box::new(bug(stage, panic.as_ref()))), None)
                        });
                        let _ = tx.send(Done {
                            index: i,
                            outcome,
                            entry,
                        });
                    });
                }
            }
            if running == 0 {
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
            for done in batch {
                running -= 1;
                changed |= record(p, &store, run_started, ui, &mut st, &mut lockfile, done);
                if st.stop_requested && !cfg.keep_going {
                    stop = true;
                }
            }
            if changed {
                if let Err(e) = lock::write(&lock_path, &lockfile) {
                    st.failures.push(
                        Diagnostic::new(format!("cannot write `{}`", lock_path.display()))
                            .cause(e.to_string()),
                    );
                    stop = true;
                }
            }
        }
    });
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
            "seconds": match &done.outcome { Outcome::Ran { seconds } => *seconds, _ => 0.0 },
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
    let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
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
pub(crate) fn own_project(store: &Store, wait: bool) -> Result<crate::store::ProjectLock, Failure> {
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
    store
        .clean_scratch()
        .map_err(|e| Failure::io("cannot clean `cache/tmp`", &e))?;
    Ok(guard)
}

/// Ctrl-C, SIGTERM and SIGHUP stop the running commands and end the run as failed, instead of
/// leaving commands behind (installed once per process).
fn forward_signals_once() {
    static SIGNALS: std::sync::Once = std::sync::Once::new();
    SIGNALS.call_once(|| {
        if let Err(e) = executor::forward_signals() {
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

/// True when the stage's key and outputs match its lock entry, decided from stats alone: a file
/// the stat cache cannot vouch for makes this false, and a worker hashes it.
fn up_to_date(ctx: &Ctx<'_>, stage: &Stage, entry: &LockEntry) -> bool {
    match observe_known(ctx.root, stage, ctx.stat) {
        Some(view) => {
            view.missing_deps.is_empty()
                && entry.key == view.observed.key
                && planner::outputs_intact(entry, &view.observed)
        }
        None => false,
    }
}

fn build_stage(
    ctx: &Ctx<'_>,
    stage: &Stage,
    entry: Option<LockEntry>,
) -> (Outcome, Option<LockEntry>) {
    match try_build(ctx, stage, entry.as_ref()) {
        Ok(r) => r,
        Err(d) => (Outcome::Failed(Box::new(d)), None),
    }
}

fn try_build(
    ctx: &Ctx<'_>,
    stage: &Stage,
    entry: Option<&LockEntry>,
) -> Result<(Outcome, Option<LockEntry>), Diagnostic> {
    let view = observe(ctx.root, stage, ctx.stat)
        .map_err(|e| io_diag(stage, "cannot read its files", &e))?;
    if let Some(missing) = view.missing_deps.first() {
        return Err(
            Diagnostic::new(format!("stage `{}` cannot start", stage.name))
                .cause(format!("dep `{missing}` does not exist")),
        );
    }
    let obs = &view.observed;
    if !ctx.force {
        if let Some(e) = entry {
            if e.key == obs.key && planner::outputs_intact(e, obs) {
                return Ok((Outcome::UpToDate, Some(e.clone())));
            }
        }
        let local = ctx
            .store
            .stage_record(&obs.key)
            .filter(|outs| ctx.store.outputs_available(outs));
        // The remote is asked only for keys the local cache cannot restore.
        let cached = local.or_else(|| ctx.remote?.fetch_stage(ctx.store, stage, &obs.key));
        if let Some(outs) = cached {
            if restore_all(ctx, stage, &view, &outs)? {
                return Ok((
                    Outcome::Restored,
                    Some(planner::lock_entry(stage, obs, lock_outs(&outs))),
                ));
            }
        }
    }
    run_stage(ctx, stage, &view)
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

fn run_stage(
    ctx: &Ctx<'_>,
    stage: &Stage,
    view: &StageView,
) -> Result<(Outcome, Option<LockEntry>), Diagnostic> {
    // Keep the current outputs aside: a failed stage gets them back, untouched.
    let mut aside = Vec::new();
    for o in &stage.outs {
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
    let result = result
        .and_then(|()| deps_unchanged(ctx, stage, view))
        .and_then(|()| collect_outputs(ctx, stage, &view.observed.key));
    match result {
        Ok(outs) => {
            for (_, a) in aside {
                let _ = ctx.store.discard(a);
            }
            let mut obs = view.observed.clone();
            for o in &outs {
                obs.outs.insert(o.path.clone(), Some(o.hash.clone()));
            }
            Ok((
                Outcome::Ran { seconds },
                Some(planner::lock_entry(stage, &obs, lock_outs(&outs))),
            ))
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

/// Fault injection for the reliability tests (docs/reliability.md): with
/// `REPRO_FAILPOINT=panic:STAGE`, built-in stage `STAGE` panics where its work would start, as a
/// bug in a kind would.
fn failpoint(stage: &str) {
    if let Ok(fp) = std::env::var("REPRO_FAILPOINT") {
        if fp.strip_prefix("panic:") == Some(stage) {
            panic!("failpoint `{fp}`");
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

fn execute(ctx: &Ctx<'_>, stage: &Stage) -> Result<(), Diagnostic> {
    match &stage.action {
        // Caught here, inside the stage's run, so that the outputs moved aside are put back.
        Action::Builtin(b) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            failpoint(&stage.name);
            b.run(&BuiltinCtx {
                root: ctx.root,
                stage: &stage.name,
            })
        }))
        .unwrap_or_else(|panic| Err(bug(stage, panic.as_ref()))),
        Action::Cmd(template) => {
            let template = executor::substitute_seed(template, stage.seed);
            let cmd = executor::substitute(&template, &stage.params)
                .map_err(|e| Diagnostic::new(format!("stage `{}` failed", stage.name)).cause(e))?;
            let mut env = executor::param_env(&stage.params);
            env.push(("REPRO_STAGE".into(), stage.name.clone()));
            if let Some(seed) = stage.seed {
                env.push(("REPRO_SEED".into(), seed.to_string()));
            }
            let job = CommandJob {
                stage: stage.name.clone(),
                cmd,
                cwd: ctx.root.to_path_buf(),
                env,
                hold: ctx.hold,
            };
            let out = ctx.executor.run(&job);
            let _ = ctx
                .store
                .save_command_logs(&stage.name, &out.stdout, &out.stderr);
            if out.success() {
                return Ok(());
            }
            let mut d = Diagnostic::new(format!("stage `{}` failed", stage.name));
            d = match (&out.spawn_error, out.code) {
                (Some(e), _) => d.cause(format!("cannot start `sh`: {e}")),
                (None, Some(code)) => {
                    d.cause(format!("command exited with code {code}: `{}`", job.cmd))
                }
                (None, None) => d.cause(format!("command was killed by a signal: `{}`", job.cmd)),
            };
            let tail = stderr_tail(&out.stderr, 20);
            if !tail.is_empty() {
                d = d.cause(format!("stderr (last lines):\n{tail}"));
            }
            Err(d.hint(format!(
                "full output in `cache/logs/{0}.out` and `cache/logs/{0}.err`; earlier outputs were kept",
                stage.name
            )))
        }
    }
}

fn collect_outputs(ctx: &Ctx<'_>, stage: &Stage, key: &str) -> Result<Vec<Output>, Diagnostic> {
    let mut outs = Vec::new();
    let mut missing = Vec::new();
    for o in &stage.outs {
        let state = crate::fsstate::hash_path(ctx.root, o, ctx.stat)
            .map_err(|e| io_diag(stage, &format!("cannot read output `{o}`"), &e))?;
        match ctx.store.save_output(o, &state) {
            Ok(Some(out)) => outs.push(out),
            Ok(None) => missing.push(o.clone()),
            Err(e) => {
                return Err(io_diag(
                    stage,
                    &format!("cannot store output `{o}` in the cache"),
                    &e,
                ))
            }
        }
    }
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|m| format!("`{m}`")).collect();
        return Err(Diagnostic::new(format!("stage `{}` failed", stage.name))
            .cause(format!(
                "declared output {} was not created",
                list.join(", ")
            ))
            .hint("make the command write every path listed in `outs`, or remove it from `outs`"));
    }
    ctx.store
        .record_stage(key, &outs)
        .map_err(|e| io_diag(stage, "cannot record the stage in the cache", &e))?;
    Ok(outs)
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
