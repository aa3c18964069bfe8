//! The Slurm executor against a real Slurm (Debian's slurm-wlm): the cluster `SLURM_CONF` names,
//! or a one-node cluster started here with tests/services/slurm.sh and stopped at the end. Without
//! Slurm the tests say so and pass, except under `REPRO_REQUIRE_SERVICES=1` (CI), where they fail.
//! What each case checks comes from Slurm itself: its job-completion records (`JobCompLoc`),
//! `squeue`, and the states tests/services/README.md lists.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::study::default_pipeline;
use crate::{Out, Project};

/// A Slurm cluster for one test: stopped on drop when this test started it.
struct Cluster {
    conf: PathBuf,
    /// The state folder of a cluster this test started.
    started: Option<tempfile::TempDir>,
}

fn services() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/services")
}

/// The cluster of `SLURM_CONF`, or a new one; None (after saying why) when Slurm cannot start.
fn cluster() -> Option<Cluster> {
    if let Some(conf) = std::env::var_os("SLURM_CONF").map(PathBuf::from) {
        if conf.is_file() {
            return Some(Cluster {
                conf,
                started: None,
            });
        }
        return unavailable(&format!(
            "`SLURM_CONF` names `{}`, which does not exist",
            conf.display()
        ));
    }
    let dir = tempfile::Builder::new()
        .prefix("repro-slurm-")
        .tempdir()
        .expect("temp dir");
    let out = Command::new("bash")
        .arg(services().join("slurm.sh"))
        .arg("start")
        .arg(dir.path())
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => return unavailable(&format!("cannot run bash: {e}")),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let conf = stdout
        .lines()
        .find_map(|l| l.strip_prefix("export SLURM_CONF="))
        .map(PathBuf::from);
    match conf {
        Some(conf) if out.status.success() => Some(Cluster {
            conf,
            started: Some(dir),
        }),
        _ => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            unavailable(&format!(
                "tests/services/slurm.sh start failed:\n{}",
                tail.join("\n")
            ))
        }
    }
}

fn unavailable(why: &str) -> Option<Cluster> {
    if std::env::var("REPRO_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("Slurm is required (REPRO_REQUIRE_SERVICES=1) but unavailable: {why}");
    }
    eprintln!("skipping: Slurm is not available ({why}); run tests/services/install.sh as root");
    None
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(dir) = &self.started {
            let _ = Command::new("bash")
                .arg(services().join("slurm.sh"))
                .arg("stop")
                .arg(dir.path())
                .stdout(Stdio::null())
                .status();
        }
    }
}

impl Cluster {
    /// `repro ARGS` in the project, with this cluster's configuration.
    fn repro(&self, p: &Project, args: &[&str]) -> Out {
        let o = self.command(p, args).output().expect("run repro");
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    fn command(&self, p: &Project, args: &[&str]) -> Command {
        let mut c = p.command(args);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    fn client(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// The job-completion records (`JobCompLoc`) of jobs that ran in `workdir`, as
    /// (name, state, exit code).
    fn completed_jobs(&self, workdir: &Path) -> Vec<(String, String, String)> {
        let conf = std::fs::read_to_string(&self.conf).unwrap();
        let loc = conf
            .lines()
            .find_map(|l| l.strip_prefix("JobCompLoc="))
            .expect("the test cluster writes job-completion records (JobCompType=jobcomp/filetxt)");
        let text = std::fs::read_to_string(loc.trim()).unwrap_or_default();
        let workdir = workdir.canonicalize().unwrap();
        let field = |line: &str, key: &str| {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(key))
                .unwrap_or("")
                .to_string()
        };
        text.lines()
            .filter(|l| Path::new(&field(l, "WorkDir=")) == workdir)
            .map(|l| {
                (
                    field(l, "Name="),
                    field(l, "JobState="),
                    field(l, "ExitCode="),
                )
            })
            .collect()
    }

    /// The id of the queued or running job whose name ends with `-STAGE` and that works in the
    /// project folder, as `squeue` lists it.
    fn job_of(&self, p: &Project, stage: &str, timeout: Duration) -> Option<(String, String)> {
        let workdir = p.path().canonicalize().unwrap();
        let started = Instant::now();
        while started.elapsed() < timeout {
            let o = self
                .client("squeue")
                .args(["-h", "-o", "%i|%j|%T|%Z"])
                .output()
                .expect("squeue");
            for line in String::from_utf8_lossy(&o.stdout).lines() {
                let f: Vec<&str> = line.split('|').collect();
                if f.len() == 4
                    && f[1].ends_with(&format!("-{stage}"))
                    && Path::new(f[3]) == workdir
                    && f[2] == "RUNNING"
                {
                    return Some((f[0].to_string(), f[1].to_string()));
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        None
    }
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Waits for a child, killing it (a PID this test started) after `timeout`.
fn wait_bounded(child: &mut std::process::Child, timeout: Duration) -> i32 {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("repro did not end within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_default_pipeline_runs_on_slurm_with_the_same_bytes_as_locally() {
    let Some(cluster) = cluster() else { return };
    let local = default_pipeline();
    let t = Instant::now();
    local.repro(&["run", "-j", "2"]).ok();
    let local_secs = t.elapsed().as_secs_f64();

    let remote = default_pipeline();
    // Each job gets 1 GB without `memory:` (DefMemPerCPU); the data stages need more.
    let pipeline = remote.read("pipeline.yaml");
    remote.write(
        "pipeline.yaml",
        &format!("{pipeline}\nresources:\n  memory: 6G\n"),
    );
    let t = Instant::now();
    let out = cluster.repro(&remote, &["run", "-j", "2", "--executor", "slurm"]);
    out.ok();
    let slurm_secs = t.elapsed().as_secs_f64();
    eprintln!("default pipeline: local {local_secs:.1} s, slurm {slurm_secs:.1} s");

    // Every stage ran as its own Slurm job, in this project, and completed.
    let jobs = cluster.completed_jobs(remote.path());
    // The stages are those the lock records; the default pipeline has thirteen.
    let lock: serde_json::Value = serde_json::from_str(&remote.read("repro.lock")).unwrap();
    let stages: Vec<String> = lock["stages"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(stages.len(), 13, "{stages:?}");
    for stage in &stages {
        let mine: Vec<_> = jobs
            .iter()
            .filter(|(name, _, _)| {
                name.starts_with("repro-") && name.ends_with(&format!("-{stage}"))
            })
            .collect();
        assert_eq!(mine.len(), 1, "one job for `{stage}`: {jobs:?}");
        assert_eq!(
            (mine[0].1.as_str(), mine[0].2.as_str()),
            ("COMPLETED", "0:0")
        );
    }
    assert_eq!(jobs.len(), stages.len(), "{jobs:?}");

    // The same bytes, and the same lock: the executor enters no key. (The report is not a
    // stage output: it shows each run's durations.)
    let report = Path::new("report.html");
    let outputs: Vec<PathBuf> = files(&local.path().join("output"))
        .into_iter()
        .filter(|f| f != report)
        .collect();
    let remote_outputs: Vec<PathBuf> = files(&remote.path().join("output"))
        .into_iter()
        .filter(|f| f != report)
        .collect();
    assert_eq!(outputs, remote_outputs);
    assert!(outputs.len() > 30, "{outputs:?}");
    for rel in &outputs {
        let a = std::fs::read(local.path().join("output").join(rel)).unwrap();
        let b = std::fs::read(remote.path().join("output").join(rel)).unwrap();
        assert!(
            a == b,
            "output/{} differs between local and Slurm",
            rel.display()
        );
    }
    assert_eq!(local.read("repro.lock"), remote.read("repro.lock"));
    let again = cluster.repro(&remote, &["run", "--executor", "slurm"]);
    again.ok();
    assert!(
        again
            .stderr
            .contains("0 ran, 0 restored from the cache, 13 up to date"),
        "{}",
        again.stderr
    );
}

/// `slow` sleeps and `hungry` holds 300 MB under a 50 MB limit, until the file `go` exists (it is
/// no dep: the rerun must not change any key).
const FAILING: &str = r#"executor: slurm
stages:
  fast:
    cmd: mkdir -p runs && echo x >> runs/fast && echo fast > fast.txt
    outs: [fast.txt]
  slow:
    cmd: mkdir -p runs && echo x >> runs/slow && if [ -f go ]; then echo slow > slow.txt; else sleep 300; fi
    outs: [slow.txt]
  hungry:
    cmd: mkdir -p runs && echo x >> runs/hungry && if [ -f go ]; then echo hungry > hungry.txt; else python3 -c "import time; s = 'x' * (300 << 20); time.sleep(60)"; fi
    outs: [hungry.txt]
    resources: {memory: 50M}
  after:
    cmd: mkdir -p runs && echo x >> runs/after && cat fast.txt slow.txt hungry.txt > after.txt
    deps: [fast.txt, slow.txt, hungry.txt]
    outs: [after.txt]
"#;

#[test]
fn cancelled_and_out_of_memory_jobs_fail_with_slurms_reason_and_a_rerun_resumes() {
    let Some(cluster) = cluster() else { return };
    let p = Project::new();
    p.write("pipeline.yaml", FAILING);
    let mut child = cluster
        .command(&p, &["run", "-k", "-j", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (id, name) = cluster
        .job_of(&p, "slow", Duration::from_secs(60))
        .expect("the job of `slow` runs");
    assert!(
        name.starts_with("repro-") && name.ends_with("-slow"),
        "{name}"
    );
    // Slurm says RUNNING before the job's shell has started: cancel only once the command has
    // made its mark, so that the count below does not depend on the machine's load.
    let started = Instant::now();
    while !p.exists("runs/slow") && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = cluster.client("scancel").arg(&id).status().unwrap();
    assert!(status.success());
    let code = wait_bounded(&mut child, Duration::from_secs(120));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!("Slurm job {id} was cancelled (state CANCELLED")),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("*** JOB {id} ON")), "{stderr}");
    assert!(
        stderr.contains("ran out of memory (`memory: 50M`)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("exceeded memory limit") || stderr.contains("OUT_OF_MEMORY"),
        "{stderr}"
    );
    assert!(stderr.contains("skipped `after`"), "{stderr}");
    assert!(p.exists("fast.txt") && !p.exists("slow.txt") && !p.exists("hungry.txt"));
    let jobs = cluster.completed_jobs(p.path());
    let state = |stage: &str| {
        jobs.iter()
            .find(|(n, _, _)| n.ends_with(&format!("-{stage}")))
            .map(|(_, s, _)| s.clone())
    };
    assert_eq!(state("slow").as_deref(), Some("CANCELLED"));
    assert!(
        matches!(state("hungry").as_deref(), Some("FAILED" | "OUT_OF_MEMORY")),
        "{jobs:?}"
    );
    let job = p.read("cache/logs/slow.job.json");
    assert!(job.contains(&format!("\"id\": \"{id}\"")), "{job}");

    // The rerun runs only what failed or did not run.
    p.write("go", "");
    let again = cluster.repro(&p, &["run"]);
    again.ok();
    assert!(
        again
            .stderr
            .contains("4 stages: 3 ran, 0 restored from the cache, 1 up to date"),
        "{}",
        again.stderr
    );
    let counts: Vec<usize> = ["fast", "slow", "hungry", "after"]
        .iter()
        .map(|s| p.count(&format!("runs/{s}")))
        .collect();
    assert_eq!(counts, [1, 2, 2, 1]);
    assert_eq!(p.read("after.txt"), "fast\nslow\nhungry\n");
}

#[test]
fn sigterm_cancels_the_runs_jobs() {
    let Some(cluster) = cluster() else { return };
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        "stages:\n  wait:\n    cmd: sleep 300 && echo done > w.txt\n    outs: [w.txt]\n    executor: slurm\n",
    );
    let mut child = cluster
        .command(&p, &["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (id, _) = cluster
        .job_of(&p, "wait", Duration::from_secs(60))
        .expect("the job of `wait` runs");
    // SAFETY: signals the repro process this test started, by its PID.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let code = wait_bounded(&mut child, Duration::from_secs(90));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("the run was interrupted"), "{stderr}");
    assert!(
        stderr.contains(&format!("Slurm job {id} was cancelled")),
        "{stderr}"
    );
    let jobs = cluster.completed_jobs(p.path());
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].1, "CANCELLED");
}

const LIMITED: &str = r#"executor: slurm
stages:
  late:
    cmd: sleep 300 && echo late > late.txt
    outs: [late.txt]
    resources: {time: "1"}
  threads:
    cmd: echo "$RAYON_NUM_THREADS $POLARS_MAX_THREADS $OMP_NUM_THREADS" > threads.txt
    outs: [threads.txt]
    resources: {cpus: 1}
"#;

/// A job past its `time:` is a failed stage with Slurm's reason (Slurm's limits are whole
/// minutes, so this test takes one to two); a job's thread pools take its `cpus:`.
#[test]
fn a_job_past_its_time_limit_fails_with_slurms_reason_and_threads_follow_cpus() {
    let Some(cluster) = cluster() else { return };
    let p = Project::new();
    p.write("pipeline.yaml", LIMITED);
    let mut child = cluster
        .command(&p, &["run", "-k", "-j", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let code = wait_bounded(&mut child, Duration::from_secs(240));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("reached its time limit (`time: 1`)") && stderr.contains("TIMEOUT"),
        "{stderr}"
    );
    assert!(!p.exists("late.txt"));
    assert_eq!(p.read("threads.txt"), "1 1 1\n");
}
