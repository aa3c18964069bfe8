//! Building one stage: deciding that it is up to date, restoring its outputs from the cache, or
//! running it (its command or built-in kind, here or on Slurm) with its previous outputs kept
//! aside and put back if it fails.
//!
//! Owns: one stage, from its lock entry to an outcome and the outputs it left (hashed, not yet
//! stored). Deliberately does not own: which stages run and when, the lock file, or storing
//! outputs (`runner`, `commit`); what is stale (`planner`); how a command runs (`executor`,
//! `slurm`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use crate::commit::{self, Commit};
use crate::executor::{self, CommandJob, Executor};
use crate::fsstate::{PathState, StatCache};
use crate::lock::{LockEntry, LockOut};
use crate::observe::{observe, observe_known, StageView};
use crate::pipeline::{Action, ExecutorKind, Stage};
use crate::planner;
use crate::remote::Session;
use crate::reporter::{Outcome, PeakMemory};
use crate::slurm::{self, SlurmExecutor};
use crate::store::{Output, Store};
use repro_kind::diag::Diagnostic;
use repro_kind::BuiltinCtx;

pub(crate) struct Ctx<'a> {
    pub(crate) root: &'a Path,
    /// The project lock's descriptor, inherited by commands.
    pub(crate) hold: Option<std::os::fd::RawFd>,
    pub(crate) store: &'a Store,
    pub(crate) stat: &'a StatCache,
    pub(crate) executor: &'a dyn Executor,
    /// Present when a selected stage runs on Slurm.
    pub(crate) slurm: Option<&'a SlurmExecutor>,
    pub(crate) place: Placement<'a>,
    pub(crate) force: bool,
    pub(crate) remote: Option<&'a Session>,
}

/// Where each stage runs: `--executor`, else the stage's `executor:`, else the pipeline's, else
/// here. The choice never enters a key: a stage's outputs are the same bytes wherever it runs.
#[derive(Clone, Copy)]
pub(crate) struct Placement<'a> {
    pub(crate) flag: Option<ExecutorKind>,
    pub(crate) pipeline: Option<ExecutorKind>,
    pub(crate) node_command: &'a [String],
}

impl Placement<'_> {
    pub(crate) fn of(&self, stage: &Stage) -> ExecutorKind {
        self.flag
            .or(stage.executor)
            .or(self.pipeline)
            .unwrap_or_default()
    }
}

/// A stage built by a worker: its outcome and lock entry, or, when it ran, its outputs still to
/// be stored with the lock entry to write once they are.
pub(crate) struct Built {
    pub(crate) outcome: Outcome,
    pub(crate) entry: Option<LockEntry>,
    pub(crate) commit: Option<(Commit, LockEntry)>,
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

/// True when the stage's key and outputs match its lock entry, decided from stats alone: a file
/// the stat cache cannot vouch for makes this false, and a worker hashes it.
pub(crate) fn up_to_date(ctx: &Ctx<'_>, stage: &Stage, entry: &LockEntry) -> bool {
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

/// Builds one stage: up to date, restored from the cache, or run; an error is its failure.
pub(crate) fn build_stage(ctx: &Ctx<'_>, stage: &Stage, entry: Option<LockEntry>) -> Built {
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
pub(crate) fn failpoint(stage: &str, point: &str) {
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
pub(crate) fn bug(stage: &Stage, panic: &(dyn std::any::Any + Send)) -> Diagnostic {
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
