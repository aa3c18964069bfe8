//! Running a command stage's program.
//!
//! Owns: the [`Executor`] seam (`crate::slurm` implements it too), the local executor (`sh -c` from the pipeline folder), how commands see their params (`${params.NAME}`
//! substitution in the command and `REPRO_PARAM_NAME` environment variables), and capturing output.
//! Deliberately does not own: deciding whether to run, or outputs and the store.

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::params::Param;
use crate::pipeline::Resources;

/// One program to run.
#[derive(Debug, Clone)]
pub struct CommandJob {
    pub stage: String,
    /// The command after `${params.NAME}` substitution.
    pub cmd: String,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    /// A descriptor the command's processes inherit: the project lock, so that no new run can
    /// start while any process of this command lives, even after repro itself was killed.
    pub hold: Option<RawFd>,
    /// What the stage asks of a cluster; the local executor ignores it.
    pub resources: Resources,
}

#[derive(Debug)]
pub struct CommandOutcome {
    /// Exit code; None when the program was killed by a signal or could not start.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub spawn_error: Option<String>,
    /// What the batch system said about the job (None for a local command).
    pub job: Option<JobReport>,
    /// Peak resident memory of the command in bytes (wait4's `ru_maxrss`: the largest of the
    /// shell and the descendants it waited for); None when unknown.
    pub max_rss_bytes: Option<u64>,
}

/// A batch job's end as the scheduler reported it, kept in `cache/logs/<stage>.job.json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobReport {
    pub executor: &'static str,
    pub id: String,
    pub name: String,
    /// The scheduler's final state (`COMPLETED`, `FAILED`, `CANCELLED`, `TIMEOUT`, ...).
    pub state: String,
    pub reason: String,
    /// Exit status and terminating signal of the job's script, `STATUS:SIGNAL`.
    pub exit_code: String,
    /// Why the job did not succeed, in words; None when it did.
    pub failure: Option<String>,
}

impl CommandOutcome {
    pub fn success(&self) -> bool {
        self.spawn_error.is_none()
            && self.code == Some(0)
            && self.job.as_ref().is_none_or(|j| j.failure.is_none())
    }

    /// An outcome for a command that never started.
    pub fn not_started(why: impl Into<String>) -> CommandOutcome {
        CommandOutcome {
            code: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
            spawn_error: Some(why.into()),
            job: None,
            max_rss_bytes: None,
        }
    }

    /// Why the command did not succeed, in words.
    pub fn failure_cause(&self, cmd: &str) -> String {
        if let Some(why) = self.job.as_ref().and_then(|j| j.failure.clone()) {
            return why;
        }
        match (&self.spawn_error, self.code) {
            (Some(e), _) => e.clone(),
            (None, Some(code)) => format!("command exited with code {code}: `{cmd}`"),
            (None, None) => format!("command was killed by a signal: `{cmd}`"),
        }
    }
}

/// Where commands run. Implementations must be usable from several worker threads at once.
pub trait Executor: Sync {
    fn run(&self, job: &CommandJob) -> CommandOutcome;
}

/// Runs commands on this machine with `sh -c`.
pub struct LocalExecutor;

/// Process groups of the commands running now, for [`interrupt`].
static RUNNING: Mutex<Vec<i32>> = Mutex::new(Vec::new());
/// Set once the run was interrupted: commands still starting are not started.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Whether command stages start with transparent huge pages off (`PR_SET_THP_DISABLE`, which a
/// child inherits): the binary turns them off for its own data work and sets here what the
/// commands must get back.
static CHILD_THP_DISABLED: AtomicBool = AtomicBool::new(false);

/// Command stages start with transparent huge pages off when `disabled`, on otherwise; see
/// [`CHILD_THP_DISABLED`].
pub fn children_disable_huge_pages(disabled: bool) {
    CHILD_THP_DISABLED.store(disabled, Ordering::Relaxed);
}

/// True after [`interrupt`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Stops every running local command: SIGTERM to each command's process group (its shell and
/// everything the shell started). `stop::interrupt` calls it, with Slurm's cancel.
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
    let groups = RUNNING.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for pgid in groups {
        // SAFETY: kill(2) with a negative pid signals the process group; no memory is touched.
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
    }
}

impl Executor for LocalExecutor {
    fn run(&self, job: &CommandJob) -> CommandOutcome {
        tracing::info!(stage = %job.stage, cmd = %job.cmd, "running command");
        if interrupted() {
            return CommandOutcome::not_started("cannot start `sh`: the run was interrupted");
        }
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(&job.cmd)
            .current_dir(&job.cwd)
            .envs(job.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let hold = job.hold;
        let thp_disabled = libc::c_ulong::from(CHILD_THP_DISABLED.load(Ordering::Relaxed));
        // SAFETY: between fork and exec only async-signal-safe calls (setpgid, prctl, getppid,
        // fcntl) are made, on the child's own state.
        unsafe {
            command.pre_exec(move || {
                // Its own process group, so that stopping the command stops all it started.
                if libc::setpgid(0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The shell dies with repro, even with kill -9.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::getppid() == 1 {
                    return Err(std::io::Error::other(
                        "repro exited before the command started",
                    ));
                }
                if let Some(fd) = hold {
                    libc::fcntl(fd, libc::F_SETFD, 0);
                }
                // Huge pages as repro was started with (it may have turned them off for itself).
                libc::prctl(libc::PR_SET_THP_DISABLE, thp_disabled, 0, 0, 0);
                Ok(())
            });
        }
        let out = command.spawn().and_then(|mut child| {
            let pgid = child.id() as i32;
            RUNNING.lock().unwrap_or_else(|e| e.into_inner()).push(pgid);
            if interrupted() {
                // SAFETY: as in `interrupt`.
                unsafe { libc::kill(-pgid, libc::SIGTERM) };
            }
            let out = wait_with_rusage(&mut child);
            RUNNING
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|g| *g != pgid);
            out
        });
        match out {
            Ok(o) => CommandOutcome {
                code: o.status.code(),
                stdout: o.stdout,
                stderr: o.stderr,
                spawn_error: None,
                job: None,
                max_rss_bytes: Some(o.max_rss_bytes),
            },
            Err(e) => CommandOutcome::not_started(format!("cannot start `sh`: {e}")),
        }
    }
}

/// What [`wait_with_rusage`] returns.
struct Finished {
    status: std::process::ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    max_rss_bytes: u64,
}

/// `Child::wait_with_output`, plus the child's resource usage from wait4(2), which std does not
/// expose: the peak memory a command stage needs goes into the run log and the package README.
fn wait_with_rusage(child: &mut std::process::Child) -> std::io::Result<Finished> {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let stderr_pipe = child.stderr.take();
    // Both pipes are drained at once, so a command filling one cannot block on the other.
    let stderr_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = stderr_pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    });
    let mut stdout = Vec::new();
    if let Some(mut pipe) = child.stdout.take() {
        let _ = pipe.read_to_end(&mut stdout);
    }
    let stderr = stderr_reader.join().unwrap_or_default();
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; wait4 writes it and `status` for our own child only.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pointers to live locals; the pid is this process's unreaped child.
        if unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(Finished {
        status: std::process::ExitStatus::from_raw(status),
        stdout,
        stderr,
        // Linux reports kilobytes.
        max_rss_bytes: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
    })
}

/// Peak resident memory of this process so far, in bytes (getrusage(RUSAGE_SELF)).
pub fn process_max_rss_bytes() -> Option<u64> {
    // SAFETY: as in `wait_with_rusage`; getrusage writes only `usage`.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    u64::try_from(usage.ru_maxrss).ok().map(|kb| kb * 1024)
}

/// How a command names its stage's declared seed.
pub const SEED_VAR: &str = "${seed}";

/// Replaces `${seed}` with the stage's seed (the pipeline rejects `${seed}` without `seed:`).
pub fn substitute_seed(cmd: &str, seed: Option<u64>) -> String {
    match seed {
        Some(s) => cmd.replace(SEED_VAR, &s.to_string()),
        None => cmd.to_string(),
    }
}

/// Environment variables for params: `REPRO_PARAM_<NAME>` with the name upper-cased and every
/// character that is not a letter or digit replaced by `_`.
pub fn param_env(params: &BTreeMap<String, Param>) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(name, value)| (param_var(name), value.as_command_text()))
        .collect()
}

/// The environment variable that holds param `name`: `REPRO_PARAM_` and the name upper-cased,
/// every character that is not a letter or digit as `_`.
pub fn param_var(name: &str) -> String {
    let var: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("REPRO_PARAM_{var}")
}

/// Replaces `${params.NAME}` (NAME may be dotted) with the param's text. Unknown names are an
/// error naming them, so a typo is caught when the pipeline is loaded.
pub fn substitute(cmd: &str, params: &BTreeMap<String, Param>) -> Result<String, String> {
    let mut out = String::with_capacity(cmd.len());
    let mut rest = cmd;
    while let Some(start) = rest.find("${params.") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "${params.".len()..];
        let Some(end) = after.find('}') else {
            return Err("unclosed `${params.` in the command".to_string());
        };
        let name = &after[..end];
        let value = params.get(name).or_else(|| {
            let (head, tail) = name.split_once('.')?;
            params.get(head)?.lookup(tail)
        });
        match value {
            Some(v) => out.push_str(&v.as_command_text()),
            None => {
                return Err(format!(
                    "the command uses `${{params.{name}}}`, which is not a param of the stage"
                ))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> BTreeMap<String, Param> {
        let mut p = BTreeMap::new();
        p.insert("alpha".into(), Param::Number(0.5));
        p.insert("name".into(), Param::Str("x y".into()));
        let mut inner = BTreeMap::new();
        inner.insert("depth".into(), Param::Number(3.0));
        p.insert("model".into(), Param::Map(inner));
        p
    }

    #[test]
    fn substitutes_params() {
        assert_eq!(
            substitute(
                "run --a ${params.alpha} --d ${params.model.depth} '${params.name}'",
                &params()
            )
            .unwrap(),
            "run --a 0.5 --d 3 'x y'"
        );
        assert!(substitute("run ${params.beta}", &params())
            .unwrap_err()
            .contains("`${params.beta}`"));
    }

    #[test]
    fn exports_params_as_environment() {
        let env = param_env(&params());
        assert!(env.contains(&("REPRO_PARAM_ALPHA".into(), "0.5".into())));
        assert!(env.contains(&("REPRO_PARAM_MODEL".into(), r#"{"depth":3}"#.into())));
    }
}
