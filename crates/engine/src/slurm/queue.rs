//! What Slurm's client programs print, read into values, and a job's end explained in words.
//!
//! Owns: the `sbatch` options a stage's resources map to, parsing `sbatch --parsable`, `squeue
//! -O` and `sacct -P` output, which job states are final, and the failure message for each
//! final state (with Slurm's reason and the slurmstepd lines of the job's output). Pure
//! functions, so each is tested on the text Slurm prints (tests/services/README.md lists what
//! Slurm 22.05 reported on the test cluster). Deliberately does not own: running the programs
//! or waiting (`super`).

use std::collections::HashMap;

use crate::pipeline::Resources;

/// The `sbatch` options for a stage's resources, in a fixed order, extra options last.
pub fn sbatch_options(r: &Resources) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(n) = r.cpus {
        out.push(format!("--cpus-per-task={n}"));
    }
    if let Some(m) = &r.memory {
        out.push(format!("--mem={m}"));
    }
    if let Some(t) = &r.time {
        out.push(format!("--time={t}"));
    }
    if let Some(p) = &r.partition {
        out.push(format!("--partition={p}"));
    }
    out.extend(r.sbatch.iter().cloned());
    out
}

/// The job id in `sbatch --parsable` output: `ID` or `ID;CLUSTER`.
pub fn parse_job_id(stdout: &str) -> Option<u64> {
    let line = stdout.lines().find(|l| !l.trim().is_empty())?;
    line.trim().split(';').next()?.parse().ok()
}

/// A job's state as the queue or the accounting database shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    pub state: String,
    pub reason: String,
    /// Exit status of the batch script and the signal that ended it.
    pub status: i32,
    pub signal: i32,
}

impl JobState {
    /// True once the job has ended for good (COMPLETING and requeued states are not).
    pub fn is_final(&self) -> bool {
        matches!(
            self.state.as_str(),
            "COMPLETED"
                | "FAILED"
                | "CANCELLED"
                | "TIMEOUT"
                | "OUT_OF_MEMORY"
                | "NODE_FAIL"
                | "BOOT_FAIL"
                | "DEADLINE"
                | "PREEMPTED"
                | "REVOKED"
        )
    }

    pub fn exit_code(&self) -> String {
        format!("{}:{}", self.status, self.signal)
    }
}

/// The fields the executor asks `squeue` for, `|`-separated and never truncated.
pub const SQUEUE_FORMAT: &str = "JobID:|,State:|,Reason:|,exit_code:|";

/// Parses `squeue -h -t all -O SQUEUE_FORMAT` lines. `exit_code` is the raw wait status in
/// Slurm 22.05 (`768` = exit 3); a `STATUS:SIGNAL` form is read too.
pub fn parse_squeue(text: &str) -> HashMap<u64, JobState> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(id), Some(state), Some(reason), Some(code)) = (
            f.first().and_then(|s| s.parse::<u64>().ok()),
            f.get(1),
            f.get(2),
            f.get(3),
        ) else {
            continue;
        };
        let (status, signal) = parse_exit(code);
        out.insert(
            id,
            JobState {
                state: first_word(state),
                reason: reason.to_string(),
                status,
                signal,
            },
        );
    }
    out
}

/// The fields the executor asks `sacct` for, in the order `squeue` gives them.
pub const SACCT_FIELDS: &str = "JobIDRaw,State,Reason,ExitCode";

/// Parses `sacct -n -X -P -o SACCT_FIELDS` lines (`CANCELLED by 0` is read as `CANCELLED`).
pub fn parse_sacct(text: &str) -> HashMap<u64, JobState> {
    parse_squeue(text)
}

fn first_word(s: &str) -> String {
    s.split_whitespace().next().unwrap_or("").to_string()
}

fn parse_exit(code: &str) -> (i32, i32) {
    if let Some((a, b)) = code.split_once(':') {
        return (a.parse().unwrap_or(-1), b.parse().unwrap_or(0));
    }
    match code.parse::<i32>() {
        // A wait status: exit status in bits 8-15, terminating signal in bits 0-6.
        Ok(raw) => ((raw >> 8) & 0xff, raw & 0x7f),
        Err(_) => (-1, 0),
    }
}

/// What is known of a finished job, for [`explain`].
pub struct Ended<'a> {
    pub id: u64,
    pub state: &'a JobState,
    pub resources: &'a Resources,
    /// The job's stdout and stderr as text (slurmstepd writes its reasons there).
    pub output: &'a str,
}

/// Why a finished job did not succeed, with Slurm's state and reason; None when it did.
pub fn explain(e: &Ended<'_>) -> Option<String> {
    let s = e.state;
    if s.state == "COMPLETED" && s.status == 0 && s.signal == 0 {
        return None;
    }
    let slurm = if s.reason.is_empty() || s.reason == "None" {
        format!("state {}, exit code {}", s.state, s.exit_code())
    } else {
        format!(
            "state {}, reason {}, exit code {}",
            s.state,
            s.reason,
            s.exit_code()
        )
    };
    let id = e.id;
    let stepd = stepd_lines(e.output);
    // Without task/cgroup, Slurm kills a job over its memory limit with SIGKILL and records it
    // as FAILED; only slurmstepd's line in the output says why.
    let over_memory = s.state == "OUT_OF_MEMORY"
        || stepd.iter().any(|l| {
            l.contains("exceeded memory limit")
                || l.contains("Exceeded job memory limit")
                || l.contains("oom-kill")
        });
    let what = if over_memory {
        match &e.resources.memory {
            Some(m) => format!("Slurm job {id} ran out of memory (`memory: {m}`)"),
            None => format!("Slurm job {id} ran out of memory"),
        }
    } else {
        match s.state.as_str() {
            "TIMEOUT" => match &e.resources.time {
                Some(t) => format!("Slurm job {id} reached its time limit (`time: {t}`)"),
                None => format!("Slurm job {id} reached its time limit"),
            },
            "CANCELLED" => format!("Slurm job {id} was cancelled"),
            "FAILED" if s.signal != 0 => {
                format!("Slurm job {id} failed: killed by signal {}", s.signal)
            }
            "FAILED" => format!(
                "Slurm job {id} failed: the command exited with code {}",
                s.status
            ),
            "COMPLETED" => format!("Slurm job {id} ended with exit code {}", s.exit_code()),
            "NODE_FAIL" => format!("Slurm job {id} failed: its node failed"),
            "PREEMPTED" => format!("Slurm job {id} was preempted"),
            other => format!("Slurm job {id} ended {other}"),
        }
    };
    let mut msg = format!("{what} ({slurm})");
    for l in stepd {
        msg.push_str("\nslurmstepd: ");
        msg.push_str(l);
    }
    Some(msg)
}

/// slurmstepd's `error:` lines in a job's output (`slurmstepd-HOST: error: *** JOB 5 ...`).
fn stepd_lines(output: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    let lines = output
        .lines()
        .filter(|l| l.starts_with("slurmstepd"))
        .filter_map(|l| l.split_once("error: ").map(|(_, rest)| rest.trim()));
    // The same line may appear in both the job's stdout and stderr, or twice in one.
    for l in lines {
        if !out.contains(&l) && out.len() < 4 {
            out.push(l);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(s: &str, reason: &str, status: i32, signal: i32) -> JobState {
        JobState {
            state: s.into(),
            reason: reason.into(),
            status,
            signal,
        }
    }

    fn explained(st: &JobState, resources: &Resources, output: &str) -> Option<String> {
        explain(&Ended {
            id: 7,
            state: st,
            resources,
            output,
        })
    }

    #[test]
    fn resources_map_to_sbatch_options() {
        let r = Resources {
            cpus: Some(4),
            memory: Some("8G".into()),
            time: Some("2:00:00".into()),
            partition: Some("short".into()),
            sbatch: vec!["--qos=econ".into()],
        };
        assert_eq!(
            sbatch_options(&r),
            [
                "--cpus-per-task=4",
                "--mem=8G",
                "--time=2:00:00",
                "--partition=short",
                "--qos=econ"
            ]
        );
        assert!(sbatch_options(&Resources::default()).is_empty());
    }

    #[test]
    fn reads_what_slurm_prints() {
        assert_eq!(parse_job_id("42\n"), Some(42));
        assert_eq!(parse_job_id("42;cluster\n"), Some(42));
        assert_eq!(parse_job_id("sbatch: error\n"), None);
        // squeue -h -t all -O 'JobID:|,State:|,Reason:|,exit_code:|' on Slurm 22.05.
        let q = parse_squeue("1|FAILED|NonZeroExitCode|768|\n3|PENDING|BeginTime|0|\n");
        assert_eq!(q[&1], state("FAILED", "NonZeroExitCode", 3, 0));
        assert!(!q[&3].is_final());
        assert!(q[&1].is_final());
        // sacct -n -X -P -o JobIDRaw,State,Reason,ExitCode
        let a = parse_sacct("5|CANCELLED by 0|None|0:15\n");
        assert_eq!(a[&5], state("CANCELLED", "None", 0, 15));
    }

    #[test]
    fn explains_each_end_with_slurms_words() {
        let none = Resources::default();
        assert_eq!(
            explained(&state("COMPLETED", "None", 0, 0), &none, ""),
            None
        );
        let failed = explained(&state("FAILED", "NonZeroExitCode", 3, 0), &none, "").unwrap();
        assert_eq!(
            failed,
            "Slurm job 7 failed: the command exited with code 3 (state FAILED, reason NonZeroExitCode, exit code 3:0)"
        );
        let cancelled = explained(
            &state("CANCELLED", "None", 0, 15),
            &none,
            "slurmstepd-vm: error: *** JOB 7 ON vm CANCELLED AT 2026-12-02T02:22:48 ***\n",
        )
        .unwrap();
        assert!(cancelled.starts_with("Slurm job 7 was cancelled (state CANCELLED"));
        assert!(cancelled.contains("*** JOB 7 ON vm CANCELLED AT"));
        let mem = Resources {
            memory: Some("10M".into()),
            ..Resources::default()
        };
        // The OverMemoryKill case from tests/services/README.md: FAILED, JobLaunchFailure, 0:9.
        let oom = explained(
            &state("FAILED", "JobLaunchFailure", 0, 9),
            &mem,
            "slurmstepd-vm: error: StepId=3.batch exceeded memory limit (225095680 > 10485760), being killed\nslurmstepd-vm: error: Exceeded job memory limit\n",
        )
        .unwrap();
        assert!(oom.starts_with("Slurm job 7 ran out of memory (`memory: 10M`) (state FAILED, reason JobLaunchFailure, exit code 0:9)"), "{oom}");
        assert!(oom.contains("exceeded memory limit (225095680 > 10485760)"));
        let cgroup_oom = explained(&state("OUT_OF_MEMORY", "OutOfMemory", 0, 125), &mem, "");
        assert!(cgroup_oom.unwrap().contains("ran out of memory"));
        let timeout = explained(&state("TIMEOUT", "TimeLimit", 0, 15), &none, "").unwrap();
        assert!(timeout.contains("reached its time limit (state TIMEOUT, reason TimeLimit"));
    }
}
