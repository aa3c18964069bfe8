//! The engine as a user runs it: keys, incremental runs, the cache, the lock, status, the graph,
//! crash safety and concurrency.

use std::time::Duration;

use crate::{snapshot_settings, Project};

/// Two stages: `prep` turns `in.txt` into `mid.txt` (upper case), `report` counts its lines.
/// Each appends to `runs/<stage>` when it really runs.
const TWO_STAGES: &str = r#"stages:
  prep:
    cmd: mkdir -p runs && echo x >> runs/prep && tr a-z A-Z < in.txt > mid.txt
    deps: [in.txt]
    outs: [mid.txt]
    params:
      level: 1
  report:
    cmd: mkdir -p runs && echo x >> runs/report && wc -l < mid.txt | tr -d ' ' > report.txt
    deps: [mid.txt]
    outs: [report.txt]
"#;

fn two_stage_project() -> Project {
    let p = Project::new();
    p.write("pipeline.yaml", TWO_STAGES)
        .write("in.txt", "a\nb\n");
    p
}

#[test]
fn runs_in_dependency_order_then_does_nothing() {
    let p = two_stage_project();
    let out = p.repro(&["run"]);
    out.ok();
    assert_eq!(p.read("mid.txt"), "A\nB\n");
    assert_eq!(p.read("report.txt"), "2\n");
    assert!(out.stderr.contains("ran `prep`"), "{}", out.stderr);
    assert!(out
        .stderr
        .contains("2 stages: 2 ran, 0 restored from the cache, 0 up to date"));
    let again = p.repro(&["run"]);
    again.ok();
    assert!(again
        .stderr
        .contains("2 stages: 0 ran, 0 restored from the cache, 2 up to date"));
    assert_eq!((p.count("runs/prep"), p.count("runs/report")), (1, 1));
}

#[test]
fn plain_progress_lines_when_ci_is_set() {
    let p = two_stage_project();
    let out = p.repro(&["run"]);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(lines[0].starts_with("ran `prep` ("), "{}", out.stderr);
    assert!(lines[1].starts_with("ran `report` ("), "{}", out.stderr);
    assert!(
        !out.stderr.contains('\u{1b}'),
        "no terminal escapes: {:?}",
        out.stderr
    );
}

#[test]
fn a_changed_dep_reruns_it_and_its_dependents() {
    let p = two_stage_project();
    p.repro(&["run"]).ok();
    p.write("in.txt", "a\nb\nc\n");
    p.repro(&["run"]).ok();
    assert_eq!(p.read("report.txt"), "3\n");
    assert_eq!((p.count("runs/prep"), p.count("runs/report")), (2, 2));
}

#[test]
fn early_cutoff_identical_outputs_do_not_make_dependents_stale() {
    let p = two_stage_project();
    p.repro(&["run"]).ok();
    // Upper-casing makes `mid.txt` the same bytes as before.
    p.write("in.txt", "A\nb\n");
    let out = p.repro(&["run"]);
    out.ok();
    assert_eq!(
        (p.count("runs/prep"), p.count("runs/report")),
        (2, 1),
        "{}",
        out.stderr
    );
}

#[test]
fn a_touched_file_with_the_same_content_makes_nothing_stale() {
    let p = two_stage_project();
    p.repro(&["run"]).ok();
    std::thread::sleep(Duration::from_millis(20));
    p.write("in.txt", "a\nb\n");
    let st = p.repro(&["status"]);
    st.ok();
    assert_eq!(st.stdout, "all 2 stages are up to date\n");
    p.repro(&["run"]).ok();
    assert_eq!(p.count("runs/prep"), 1);
}

#[test]
fn params_are_canonical_key_order_and_integer_floats_do_not_matter() {
    let p = two_stage_project();
    p.repro(&["run"]).ok();
    p.write(
        "pipeline.yaml",
        &TWO_STAGES.replace("level: 1", "level: 1.0"),
    );
    assert_eq!(p.repro(&["status"]).stdout, "all 2 stages are up to date\n");
    let two = TWO_STAGES.replace("level: 1", "level: 1\n      extra: {b: 2, a: 1}");
    p.write("pipeline.yaml", &two);
    p.repro(&["run"]).ok();
    assert_eq!(p.count("runs/prep"), 2);
    let reordered = TWO_STAGES.replace("level: 1", "extra: {a: 1.0, b: 2}\n      level: 1");
    p.write("pipeline.yaml", &reordered);
    assert_eq!(p.repro(&["status"]).stdout, "all 2 stages are up to date\n");
    // A removed key does matter; going back restores from the cache without running.
    p.write("pipeline.yaml", TWO_STAGES);
    let st = p.repro(&["status", "--json"]);
    assert!(st.stdout.contains("param `extra` removed"), "{}", st.stdout);
    let out = p.repro(&["run"]);
    out.ok();
    assert!(
        out.stderr.contains("restored `prep` from the cache"),
        "{}",
        out.stderr
    );
    assert_eq!(p.count("runs/prep"), 2);
}

#[test]
fn params_reach_commands_by_substitution_and_environment() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        r#"stages:
  s:
    cmd: echo "${params.alpha} ${params.model.depth} $REPRO_PARAM_NAME" > out.txt
    outs: [out.txt]
    params:
      alpha: 0.5
      name: hello world
      model: {depth: 3}
"#,
    );
    p.repro(&["run"]).ok();
    assert_eq!(p.read("out.txt"), "0.5 3 hello world\n");
}

#[test]
fn params_from_a_shared_params_file() {
    let p = Project::new();
    p.write("params.yaml", "train:\n  lr: 0.1\n  epochs: 3\nother: 7\n");
    p.write(
        "pipeline.yaml",
        "stages:\n  s:\n    cmd: echo ${params.train.lr} > out.txt && echo x >> runs\n    outs: [out.txt]\n    params: [train.lr]\n",
    );
    p.repro(&["run"]).ok();
    assert_eq!(p.read("out.txt"), "0.1\n");
    // A key the stage does not use changes nothing.
    p.write("params.yaml", "train:\n  lr: 0.1\n  epochs: 4\nother: 7\n");
    assert_eq!(p.repro(&["status"]).stdout, "all 1 stages are up to date\n");
    p.write("params.yaml", "train:\n  lr: 0.2\n  epochs: 4\nother: 7\n");
    let st = p.repro(&["status"]);
    assert!(
        st.stdout
            .contains("param `train.lr` changed: `0.1` -> `0.2`"),
        "{}",
        st.stdout
    );
}

#[test]
fn deleted_outputs_and_reverted_inputs_come_back_from_the_cache() {
    let p = two_stage_project();
    p.repro(&["run"]).ok();
    p.remove("report.txt");
    let st = p.repro(&["status"]);
    assert!(
        st.stdout.contains("output `report.txt` missing"),
        "{}",
        st.stdout
    );
    let out = p.repro(&["run"]);
    assert!(
        out.stderr.contains("restored `report` from the cache"),
        "{}",
        out.stderr
    );
    assert_eq!(p.read("report.txt"), "2\n");
    p.write("in.txt", "x\ny\nz\n");
    p.repro(&["run"]).ok();
    p.write("in.txt", "a\nb\n");
    let out = p.repro(&["run"]);
    out.ok();
    assert!(out.stderr.contains("restored `prep`"), "{}", out.stderr);
    assert!(out.stderr.contains("restored `report`"), "{}", out.stderr);
    assert_eq!(p.read("report.txt"), "2\n");
    assert_eq!((p.count("runs/prep"), p.count("runs/report")), (2, 2));
}

#[test]
fn modified_outputs_are_reported_and_restored() {
    let p = two_stage_project();
    p.repro(&["run"]).ok();
    p.write("report.txt", "tampered\n");
    let st = p.repro(&["status"]);
    assert!(
        st.stdout.contains("output `report.txt` modified"),
        "{}",
        st.stdout
    );
    p.repro(&["run"]).ok();
    assert_eq!(p.read("report.txt"), "2\n");
    assert_eq!(p.count("runs/report"), 1);
}

#[test]
fn folder_outputs_and_folder_deps() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        r#"stages:
  split:
    cmd: mkdir -p parts/sub && echo 1 > parts/a && echo 2 > parts/sub/b && echo x >> runs
    outs: [parts]
  join:
    cmd: cat parts/a parts/sub/b > joined.txt
    deps: [parts]
    outs: [joined.txt]
"#,
    );
    p.repro(&["run"]).ok();
    assert_eq!(p.read("joined.txt"), "1\n2\n");
    p.remove("parts");
    let out = p.repro(&["run"]);
    out.ok();
    assert!(out.stderr.contains("restored `split`"), "{}", out.stderr);
    assert_eq!(p.read("parts/sub/b"), "2\n");
    assert_eq!(p.count("runs"), 1);
    assert_eq!(p.repro(&["dag"]).stdout, "split\njoin <- split\n");
}

#[test]
fn force_dry_run_and_named_stages() {
    let p = two_stage_project();
    let dry = p.repro(&["run", "--dry-run"]);
    dry.ok();
    assert_eq!(
        dry.stdout,
        "would run `prep`: never run\nwould run `report`: upstream stage `prep` is stale; never run\n"
    );
    assert!(!p.exists("mid.txt"));
    p.repro(&["run", "prep"]).ok();
    assert!(p.exists("mid.txt") && !p.exists("report.txt"));
    p.repro(&["run", "report"]).ok();
    assert!(p.exists("report.txt"));
    assert_eq!(
        p.repro(&["run", "--dry-run"]).stdout,
        "nothing to do: all 2 stages are up to date\n"
    );
    p.repro(&["run", "--force", "report"]).ok();
    assert_eq!((p.count("runs/prep"), p.count("runs/report")), (2, 2));
    let bad = p.repro(&["run", "nope"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("error: no stage named `nope`"),
        "{}",
        bad.stderr
    );
}

#[test]
fn independent_stages_run_in_parallel() {
    // Each stage waits for the other's marker: only a parallel run can finish both.
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        r#"stages:
  a:
    cmd: touch a.started && for i in $(seq 100); do [ -e b.started ] && break; sleep 0.05; done && [ -e b.started ] && echo a > a.txt
    outs: [a.txt]
  b:
    cmd: touch b.started && for i in $(seq 100); do [ -e a.started ] && break; sleep 0.05; done && [ -e a.started ] && echo b > b.txt
    outs: [b.txt]
"#,
    );
    p.repro(&["run", "-j", "2"]).ok();
    assert!(p.exists("a.txt") && p.exists("b.txt"));
}

#[test]
fn status_json_lists_every_stage_with_reasons() {
    let p = two_stage_project();
    let st = p.repro(&["status", "--json"]);
    st.ok();
    let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
    assert_eq!(v["stages"][0]["name"], "prep");
    assert_eq!(v["stages"][0]["stale"], true);
    assert_eq!(v["stages"][0]["reasons"][0], "never run");
    p.repro(&["run"]).ok();
    p.write(
        "pipeline.yaml",
        &TWO_STAGES
            .replace("level: 1", "level: 2")
            .replace("wc -l", "wc  -l"),
    );
    p.write("in.txt", "q\n");
    let st = p.repro(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
    let prep: Vec<String> = v["stages"][0]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        prep,
        ["param `level` changed: `1` -> `2`", "dep `in.txt` changed"]
    );
    let report = v["stages"][1]["reasons"].as_array().unwrap();
    assert_eq!(report[0], "upstream stage `prep` is stale");
    assert!(
        report[1]
            .as_str()
            .unwrap()
            .starts_with("command changed: `mkdir"),
        "{report:?}"
    );
    assert_eq!(v["stages"][1]["stale"], true);
}

#[test]
fn dag_in_three_formats() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        r#"stages:
  report:
    cmd: cat fit.txt desc.txt > report.txt
    deps: [fit.txt, desc.txt]
    outs: [report.txt]
  fit:
    cmd: cp data.txt fit.txt
    deps: [data.txt]
    outs: [fit.txt]
  desc:
    cmd: cp data.txt desc.txt
    deps: [data.txt]
    outs: [desc.txt]
  data:
    cmd: echo 1 > data.txt
    outs: [data.txt]
"#,
    );
    let settings = snapshot_settings();
    settings.bind(|| {
        insta::assert_snapshot!("dag_text", p.repro(&["dag"]).snapshot());
        insta::assert_snapshot!("dag_dot", p.repro(&["dag", "--format", "dot"]).snapshot());
        insta::assert_snapshot!(
            "dag_mermaid",
            p.repro(&["dag", "--format", "mermaid"]).snapshot()
        );
    });
}

#[test]
fn the_lock_is_stable_text_without_volatile_values() {
    let p = two_stage_project();
    p.repro(&["run"]).ok();
    let lock = p.read("repro.lock");
    let root = p.path().to_string_lossy().to_string();
    assert!(!lock.contains(&root), "no absolute paths: {lock}");
    let v: serde_json::Value = serde_json::from_str(&lock).unwrap();
    assert_eq!(v["engine"], format!("repro {}", env!("CARGO_PKG_VERSION")));
    let prep = &v["stages"]["prep"];
    assert_eq!(prep["key"].as_str().unwrap().len(), 64);
    assert_eq!(prep["params"]["level"], "1");
    assert!(prep["deps"]["in.txt"].is_string());
    assert!(prep["outs"]["mid.txt"]["hash"].is_string());
    p.repro(&["run", "--force"]).ok();
    assert_eq!(
        p.read("repro.lock"),
        lock,
        "a forced rerun with equal outputs writes the same lock"
    );
    let log = p.read("cache/runs.jsonl");
    assert!(log.contains("\"stage\":\"prep\"") && log.contains("\"seconds\""));
}

#[test]
fn a_moved_project_gets_cache_hits() {
    let p = two_stage_project();
    p.repro(&["run"]).ok();
    let moved = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", p.path().display()))
        .arg(moved.path())
        .status()
        .unwrap();
    assert!(status.success());
    let out = std::process::Command::new(crate::repro_bin())
        .args(["status"])
        .current_dir(moved.path())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "all 2 stages are up to date\n"
    );
    // Without outputs but with the cache: restored, not rerun.
    std::fs::remove_file(moved.path().join("mid.txt")).unwrap();
    std::fs::remove_file(moved.path().join("report.txt")).unwrap();
    let out = std::process::Command::new(crate::repro_bin())
        .args(["run"])
        .env("CI", "1")
        .current_dir(moved.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("0 ran, 2 restored"), "{err}");
}

#[test]
fn gc_removes_objects_no_lock_entry_needs() {
    let p = two_stage_project();
    p.repro(&["run"]).ok();
    p.write("in.txt", "other\n");
    p.repro(&["run"]).ok();
    let dry = p.repro(&["gc", "--dry-run"]);
    dry.ok();
    assert!(
        dry.stdout.starts_with("would remove 2 objects"),
        "{}",
        dry.stdout
    );
    let gc = p.repro(&["gc"]);
    assert!(gc.stdout.starts_with("removed 2 objects"), "{}", gc.stdout);
    assert!(gc.stdout.contains("and 2 stage records"), "{}", gc.stdout);
    assert!(p.repro(&["gc"]).stdout.starts_with("removed 0 objects"));
    // What the lock needs is still there.
    p.remove("mid.txt");
    let out = p.repro(&["run"]);
    assert!(out.stderr.contains("restored `prep`"), "{}", out.stderr);
}

#[test]
fn a_failing_command_keeps_earlier_outputs_and_stops_downstream() {
    let p = two_stage_project();
    p.repro(&["run"]).ok();
    p.write(
        "pipeline.yaml",
        &TWO_STAGES.replace(
            "tr a-z A-Z < in.txt > mid.txt",
            "echo partial > mid.txt && echo 'something broke' >&2 && exit 3",
        ),
    );
    let out = p.repro(&["run"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert_eq!(p.read("mid.txt"), "A\nB\n", "the earlier output is kept");
    assert!(out.stderr.contains("skipped `report`"), "{}", out.stderr);
    let settings = snapshot_settings();
    settings.bind(|| insta::assert_snapshot!("failing_command", out.snapshot()));
    assert_eq!(p.count("runs/report"), 1);
}

#[test]
fn keep_going_runs_what_does_not_need_the_failed_stage() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        "stages:\n  bad:\n    cmd: exit 1\n    outs: [x]\n  after:\n    cmd: cp x y\n    deps: [x]\n    outs: [y]\n  good:\n    cmd: echo ok > g\n    outs: [g]\n",
    );
    let out = p.repro(&["run", "-k", "-j", "1"]);
    assert_eq!(out.code, 1);
    assert!(p.exists("g"));
    assert!(!p.exists("y"));
}

#[test]
fn a_declared_output_the_command_did_not_create_is_an_error() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        "stages:\n  s:\n    cmd: echo hi > a.txt\n    outs: [a.txt, b.txt]\n",
    );
    let out = p.repro(&["run"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("declared output `b.txt` was not created"),
        "{}",
        out.stderr
    );
    assert!(!p.exists("a.txt"), "nothing half-recorded is left in place");
    assert!(!p.exists("repro.lock") || !p.read("repro.lock").contains("\"s\""));
}

#[test]
fn kill_9_mid_run_loses_only_the_unfinished_stage_and_leaves_no_command_behind() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        r#"stages:
  first:
    cmd: echo 1 > first.txt && echo x >> runs.first
    outs: [first.txt]
  slow:
    cmd: echo x >> runs.slow && echo partial > slow.txt && touch slow.started && sleep 3 && echo done > slow.txt && echo x >> runs.slow.done
    deps: [first.txt]
    outs: [slow.txt]
"#,
    );
    let mut child = p.command(&["run"]).spawn().unwrap();
    let started = p.path().join("slow.started");
    for _ in 0..400 {
        if started.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(started.exists(), "the slow stage never started");
    // SIGKILL to the repro process this test started, and to nothing else.
    child.kill().unwrap();
    let _ = child.wait();
    let lock = p.read("repro.lock");
    assert!(
        lock.contains("\"first\""),
        "the finished stage is recorded: {lock}"
    );
    assert!(
        !lock.contains("\"slow\""),
        "the killed stage is not: {lock}"
    );
    let st = p.repro(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
    assert_eq!(v["stages"][0]["stale"], false);
    assert_eq!(v["stages"][1]["stale"], true);
    // What the killed command started still runs (its `sleep`): no new run may start beside it.
    let beside = p.repro(&["run"]);
    assert_eq!(beside.code, 1, "{}", beside.snapshot());
    assert!(
        beside.stderr.contains("another repro process is running"),
        "{}",
        beside.stderr
    );
    // Once it has ended, a run goes ahead; the killed command's shell died with repro, so it
    // never went on to write its output.
    p.repro(&["run", "--wait"]).ok();
    assert_eq!(p.read("slow.txt"), "done\n");
    assert_eq!(
        (
            p.count("runs.first"),
            p.count("runs.slow"),
            p.count("runs.slow.done")
        ),
        (1, 2, 1)
    );
}

#[test]
fn ctrl_c_stops_the_running_command_and_puts_outputs_back() {
    let p = Project::new();
    let fast = "stages:\n  slow:\n    cmd: cp in.txt out.txt && touch started && true && echo late >> out.txt\n    deps: [in.txt]\n    outs: [out.txt]\n";
    p.write("in.txt", "1\n").write("pipeline.yaml", fast);
    p.repro(&["run"]).ok();
    assert_eq!(p.read("out.txt"), "1\nlate\n");
    p.remove("started");
    p.write("pipeline.yaml", &fast.replace("&& true", "&& sleep 30"));
    p.write("in.txt", "2\n");
    let child = p
        .command(&["run"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..400 {
        if p.exists("started") {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(p.exists("started"), "the command never started");
    let begun = std::time::Instant::now();
    // SIGINT, as Ctrl-C sends, to the repro process this test started.
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        begun.elapsed() < Duration::from_secs(20),
        "repro waited for the command"
    );
    assert!(stderr.contains("the run was interrupted"), "{stderr}");
    assert_eq!(
        p.read("out.txt"),
        "1\nlate\n",
        "the previous output is back"
    );
    // The command's whole process group was stopped, so the project is free at once.
    p.write("pipeline.yaml", fast);
    p.repro(&["run"]).ok();
    assert_eq!(p.read("out.txt"), "2\nlate\n");
}

#[test]
fn a_second_run_in_the_same_project_refuses_or_waits() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        "stages:\n  slow:\n    cmd: touch started && sleep 2 && echo done > out.txt\n    outs: [out.txt]\n",
    );
    let mut first = p.command(&["run"]).spawn().unwrap();
    for _ in 0..400 {
        if p.exists("started") {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let second = p.repro(&["run"]);
    assert_eq!(second.code, 1, "{}", second.snapshot());
    assert!(
        second
            .stderr
            .contains("another repro process is running in this project"),
        "{}",
        second.stderr
    );
    assert!(second
        .stderr
        .contains("hint: wait for it to finish, or pass `--wait`"));
    let waited = p.repro(&["run", "--wait"]);
    waited.ok();
    assert!(first.wait().unwrap().success());
    assert!(waited.stderr.contains("1 up to date"), "{}", waited.stderr);
    assert_eq!(p.read("out.txt"), "done\n");
}

#[test]
fn verbose_logs_go_through_tracing() {
    let p = two_stage_project();
    let out = p.repro(&["-v", "run"]);
    out.ok();
    assert!(out.stderr.contains("running command"), "{}", out.stderr);
    assert!(out.stderr.contains("`prep` is up to date") || out.stderr.contains("ran `prep`"));
    let quiet = p.repro(&["run"]);
    assert!(!quiet.stderr.contains("INFO"), "{}", quiet.stderr);
    let with_env = p
        .command(&["run", "--force"])
        .env("RUST_LOG", "repro=info")
        .output()
        .unwrap();
    assert!(with_env.status.success());
    assert!(String::from_utf8_lossy(&with_env.stderr).contains("running command"));
}

#[test]
fn the_stat_cache_skips_files_whose_size_mtime_and_inode_are_unchanged() {
    let p = two_stage_project();
    p.repro(&["run"]).ok();
    // Same size, same inode, mtime put back: repro must trust its stat cache and not re-read.
    let path = p.path().join("in.txt");
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all(b"z\nz\n").unwrap();
        f.set_modified(mtime).unwrap();
    }
    assert_eq!(p.repro(&["status"]).stdout, "all 2 stages are up to date\n");
    // A real edit (new mtime) is seen.
    std::thread::sleep(Duration::from_millis(20));
    p.write("in.txt", "z\nz\n");
    assert!(p.repro(&["status"]).stdout.contains("dep `in.txt` changed"));
}

#[test]
fn outputs_and_lock_are_byte_identical_across_folders_jobs_and_threads() {
    // A panel big enough for the estimators to split work across threads.
    let mut csv = String::from("unit,period,y,x1,x2\n");
    let mut state: u64 = 42;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5
    };
    for u in 0..2000 {
        let a = next();
        for t in 0..15 {
            let (x1, x2) = (next(), next());
            csv.push_str(&format!(
                "{u},{t},{},{x1},{x2}\n",
                x1 - 0.5 * x2 + a + next()
            ));
        }
    }
    let pipeline = r#"stages:
  twfe:
    kind: fit
    params:
      data: panel.csv
      formula: y ~ x1 + x2 | unit + period
      vcov: cluster:unit+period
      out: out/twfe.json
  median:
    kind: fit
    params:
      data: panel.csv
      formula: y ~ x1 + x2
      quantile: 0.5
      out: out/median.json
  both:
    cmd: cat out/twfe.json out/median.json > out/both.json
    deps: [out/twfe.json, out/median.json]
    outs: [out/both.json]
"#;
    let runs: Vec<(Project, &str, &str)> =
        vec![(Project::new(), "1", "1"), (Project::new(), "2", "2")];
    for (p, jobs, threads) in &runs {
        p.write("panel.csv", &csv).write("pipeline.yaml", pipeline);
        let out = p
            .command(&["run", "-j", jobs])
            .env("RAYON_NUM_THREADS", threads)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for file in [
        "out/twfe.json",
        "out/median.json",
        "out/both.json",
        "repro.lock",
    ] {
        assert_eq!(runs[0].0.read(file), runs[1].0.read(file), "{file} differs");
    }
}

/// The hash a lock records for output `out` of stage `stage`.
fn recorded_hash(p: &Project, stage: &str, out: &str) -> String {
    let lock: serde_json::Value = serde_json::from_str(&p.read("repro.lock")).unwrap();
    lock["stages"][stage]["outs"][out]["hash"]
        .as_str()
        .unwrap()
        .to_string()
}

fn object_path(p: &Project, hash: &str) -> std::path::PathBuf {
    p.path()
        .join("cache/objects")
        .join(&hash[..2])
        .join(&hash[2..])
}

/// Overwrites a (read-only) cache object, as a power loss or a bad disk would.
fn damage(path: &std::path::Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_damaged_cache_object_is_never_restored() {
    for damaged in [&b""[..], &b"A\nC\n"[..]] {
        let p = two_stage_project();
        p.repro(&["run"]).ok();
        let hash = recorded_hash(&p, "prep", "mid.txt");
        damage(&object_path(&p, &hash), damaged);
        p.remove("mid.txt");
        let out = p.repro(&["run"]);
        out.ok();
        assert!(out.stderr.contains("ran `prep`"), "{}", out.stderr);
        assert!(!out.stderr.contains("restored `prep`"), "{}", out.stderr);
        assert_eq!(p.read("mid.txt"), "A\nB\n");
        assert_eq!(p.count("runs/prep"), 2);
        // The rerun stored a good object in place of the damaged one.
        assert_eq!(std::fs::read(object_path(&p, &hash)).unwrap(), b"A\nB\n");
        assert_eq!(p.read("report.txt"), "2\n");
    }
}

#[test]
fn a_damaged_folder_manifest_is_never_restored() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        "stages:\n  split:\n    cmd: mkdir -p parts && echo 1 > parts/a && echo x >> runs\n    outs: [parts]\n",
    );
    p.repro(&["run"]).ok();
    let hash = recorded_hash(&p, "split", "parts");
    damage(&object_path(&p, &hash), b"0 f a\n");
    p.remove("parts");
    let out = p.repro(&["run"]);
    out.ok();
    assert!(out.stderr.contains("ran `split`"), "{}", out.stderr);
    assert_eq!(p.read("parts/a"), "1\n");
    assert_eq!(p.count("runs"), 2);
}

#[test]
fn a_panic_in_a_stage_fails_it_and_the_run_ends() {
    let p = Project::new();
    p.write("in.csv", "y,x\n1,1\n2,3\n3,2\n4,5\n").write(
        "pipeline.yaml",
        "stages:\n  m:\n    kind: fit\n    params: {data: in.csv, out: m.json, formula: y ~ x}\n",
    );
    p.repro(&["run"]).ok();
    let before = p.read("m.json");
    p.write("in.csv", "y,x\n1,1\n2,3\n3,2\n4,6\n");
    let mut cmd = p.command(&["run"]);
    cmd.env("REPRO_FAILPOINT", "panic:m");
    let o = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("this is a bug in repro"), "{stderr}");
    // The previous output is back and the project lock is free: the next run succeeds.
    assert_eq!(p.read("m.json"), before);
    p.repro(&["run"]).ok();
    assert_ne!(p.read("m.json"), before);
}

#[test]
fn a_dep_edited_while_its_stage_runs_is_not_recorded() {
    let p = Project::new();
    p.write("in.txt", "old\n").write(
        "pipeline.yaml",
        "stages:\n  copy:\n    cmd: cp in.txt out.txt && echo new > in.txt\n    deps: [in.txt]\n    outs: [out.txt]\n",
    );
    let out = p.repro(&["run"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(
        out.stderr
            .contains("dep `in.txt` changed while the stage ran"),
        "{}",
        out.stderr
    );
    assert!(!p.exists("out.txt"), "no output is recorded or kept");
    // Reverting the edit must not restore an output made from other content.
    p.write("in.txt", "old\n");
    let status = p.repro(&["status"]);
    assert!(!status.stdout.contains("up to date"), "{}", status.stdout);
}

#[test]
fn repros_own_files_and_paths_below_a_link_are_not_outputs() {
    for (out, says) in [
        ("pipeline.yaml", "is repro's own file `pipeline.yaml`"),
        ("repro.lock", "is repro's own file `repro.lock`"),
        ("cache", "is the cache folder `cache/`"),
        ("cache/objects", "is the cache folder `cache/`"),
    ] {
        let p = Project::new();
        let pipeline = format!("stages:\n  s:\n    cmd: echo x > {out}\n    outs: [{out}]\n");
        p.write("pipeline.yaml", &pipeline);
        let o = p.repro(&["run"]);
        assert_eq!(o.code, 2, "{}", o.snapshot());
        assert!(o.stderr.contains(says), "{}", o.stderr);
        assert_eq!(p.read("pipeline.yaml"), pipeline, "nothing was run");
    }
    // A folder outside the project, reached through a link inside it, is never touched.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("keep.txt"), "precious\n").unwrap();
    let p = Project::new();
    std::os::unix::fs::symlink(outside.path(), p.path().join("ext")).unwrap();
    p.write(
        "pipeline.yaml",
        "stages:\n  s:\n    cmd: echo x > ext/keep.txt\n    outs: [ext/keep.txt]\n",
    );
    let o = p.repro(&["run"]);
    assert_eq!(o.code, 2, "{}", o.snapshot());
    assert!(
        o.stderr.contains("lies below the symbolic link `ext`"),
        "{}",
        o.stderr
    );
    assert_eq!(
        std::fs::read_to_string(outside.path().join("keep.txt")).unwrap(),
        "precious\n"
    );
}
