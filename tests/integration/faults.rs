//! Fault injection: `repro run` killed (SIGKILL) at seeded random moments and at fail points,
//! damaged cache objects, stage records and locks, a full file system, two runs at once and a
//! dep edited during a run. After each fault: the lock is consistent, a rerun gives outputs (and a
//! lock) byte-identical to a clean run's, nothing outside the project changed, and no command a
//! killed run started is still alive.
//!
//! Owns: these cases and their checks. Deliberately does not own: the single-fault tests of the
//! engine (`engine.rs`), which this suite extends. Every random choice comes from a fixed seed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::repro_bin;

/// Four command stages: two independent ones (`-j 2` runs them together; `b` has a folder
/// output), then a chain. Each writes its output in two steps with a pause between, so a kill
/// can land while an output is half-written; each records its shell's pid.
const PIPELINE: &str = r#"stages:
  a:
    cmd: echo $$ >> pids && head -c 3000 in.txt > a.txt && sleep 0.1 && cat in.txt >> a.txt
    deps: [in.txt]
    outs: [a.txt]
  b:
    cmd: echo $$ >> pids && mkdir -p b && tr a-z A-Z < in.txt > b/x && sleep 0.1 && sort -r in.txt > b/y
    deps: [in.txt]
    outs: [b]
  c:
    cmd: echo $$ >> pids && cat a.txt b/x > c.txt && sleep 0.1 && cat b/y >> c.txt
    deps: [a.txt, b]
    outs: [c.txt]
  d:
    cmd: echo $$ >> pids && wc -c < c.txt > d.txt && sleep 0.05 && cat a.txt >> d.txt
    deps: [c.txt]
    outs: [d.txt]
"#;

/// The files a run writes (outputs and the lock), compared byte for byte with a clean run's.
const PRODUCTS: [&str; 6] = ["a.txt", "b/x", "b/y", "c.txt", "d.txt", "repro.lock"];

/// A small deterministic generator (SplitMix64): the same seed, the same faults.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The input: deterministic lines of words.
fn input_text(seed: u64) -> String {
    let mut rng = Rng(seed);
    (0..400)
        .map(|i| format!("line {i} word{} word{}\n", rng.below(1000), rng.below(1000)))
        .collect()
}

/// A project beside a sibling folder that no run may touch, both in one temporary folder.
struct Case {
    base: tempfile::TempDir,
}

impl Case {
    fn new(input: &str) -> Case {
        let base = tempfile::tempdir().expect("temp dir");
        let case = Case { base };
        std::fs::create_dir_all(case.sibling().join("nested")).unwrap();
        std::fs::write(case.sibling().join("keep.txt"), "precious\n").unwrap();
        std::fs::write(case.sibling().join("nested/data.csv"), "a,b\n1,2\n").unwrap();
        std::fs::create_dir(case.dir()).unwrap();
        case.write("pipeline.yaml", PIPELINE);
        case.write("in.txt", input);
        case
    }

    fn dir(&self) -> PathBuf {
        self.base.path().join("project")
    }

    fn sibling(&self) -> PathBuf {
        self.base.path().join("sibling")
    }

    fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.dir().join(rel), text).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(repro_bin());
        c.args(args)
            .current_dir(self.dir())
            .env("CI", "true")
            .env_remove("RUST_LOG")
            .env_remove("REPRO_FAILPOINT")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    }

    /// Runs repro to the end: exit code and stderr.
    fn repro(&self, args: &[&str]) -> (i32, String) {
        let o = self.command(args).output().expect("run repro");
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "repro panicked: {stderr}");
        (o.status.code().unwrap_or(-1), stderr)
    }

    fn spawn(&self, args: &[&str], failpoint: Option<&str>) -> Child {
        let mut c = self.command(args);
        if let Some(fp) = failpoint {
            c.env("REPRO_FAILPOINT", fp);
        }
        c.stderr(Stdio::null()).spawn().expect("spawn repro")
    }

    /// What the run produced, by path.
    fn products(&self) -> BTreeMap<String, Vec<u8>> {
        PRODUCTS
            .iter()
            .map(|rel| {
                let bytes = std::fs::read(self.dir().join(rel))
                    .unwrap_or_else(|e| panic!("`{rel}` after the rerun: {e}"));
                (rel.to_string(), bytes)
            })
            .collect()
    }

    /// Every file of the project outside `cache/`, except the pid log the commands append to.
    fn project_files(&self) -> Vec<String> {
        tree(&self.dir())
            .into_keys()
            .filter(|p| !p.starts_with("cache/") && p != "pids")
            .collect()
    }

    /// The shells the stages ran (each command logs `$$`).
    fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir().join("pids"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

/// Every file under `root` with its content (symlinks fail the test: none is expected).
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(root.join(rel)) else {
            return;
        };
        for e in entries {
            let e = e.unwrap();
            let rel = rel.join(e.file_name());
            let meta = std::fs::symlink_metadata(root.join(&rel)).unwrap();
            if meta.is_dir() {
                walk(root, &rel, out);
            } else {
                assert!(meta.is_file(), "`{}` is not a regular file", rel.display());
                let bytes = std::fs::read(root.join(&rel)).unwrap_or_default();
                out.insert(rel.to_string_lossy().into_owned(), bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), &mut out);
    out
}

/// True while process `pid` lives (a zombie counts as ended).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// What a clean run produces, and which files it leaves, for one input.
struct Clean {
    products: BTreeMap<String, Vec<u8>>,
    files: Vec<String>,
}

fn clean_run(input: &str) -> Clean {
    let case = Case::new(input);
    let (code, stderr) = case.repro(&["run"]);
    assert_eq!(code, 0, "{stderr}");
    Clean {
        products: case.products(),
        files: case.project_files(),
    }
}

/// The cache is sound: every object holds what its name says, every stage record is whole, and
/// every output the lock records (if it parses) has its object.
fn assert_cache_consistent(case: &Case, context: &str) {
    let cache = case.dir().join("cache");
    for (rel, bytes) in tree(&cache.join("objects")) {
        let name = rel.replace('/', "");
        assert_eq!(
            blake3::hash(&bytes).to_hex().as_str(),
            name,
            "{context}: object `{rel}` does not hold what its name says"
        );
    }
    for (rel, bytes) in tree(&cache.join("stages")) {
        assert!(
            bytes.is_empty() || bytes.ends_with(b"\n"),
            "{context}: stage record `{rel}` is cut short"
        );
    }
    let Ok(text) = std::fs::read_to_string(case.dir().join("repro.lock")) else {
        return;
    };
    let lock: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{context}: repro.lock does not parse: {e}\n{text}"));
    for (stage, entry) in lock["stages"].as_object().into_iter().flatten() {
        for (out, rec) in entry["outs"].as_object().into_iter().flatten() {
            let hash = rec["hash"].as_str().unwrap_or_default();
            let object = cache.join("objects").join(&hash[..2]).join(&hash[2..]);
            assert!(
                object.is_file(),
                "{context}: the lock records `{out}` of `{stage}` but the cache lacks it"
            );
        }
    }
}

/// After a fault: the lock and cache are consistent; a rerun (waiting for whatever a killed run
/// left running) rebuilds exactly the clean run's outputs and lock and nothing else; no command
/// is still alive; the sibling folder is unchanged.
fn assert_recovers(
    case: &Case,
    clean: &Clean,
    sibling: &BTreeMap<String, Vec<u8>>,
    jobs: &str,
    context: &str,
) {
    assert_cache_consistent(case, context);
    let (code, stderr) = case.repro(&["run", "--wait", "-j", jobs]);
    assert_eq!(code, 0, "{context}: the rerun failed: {stderr}");
    assert_cache_consistent(case, context);
    assert_eq!(
        case.products(),
        clean.products,
        "{context}: outputs differ from a clean run's"
    );
    assert_eq!(
        case.project_files(),
        clean.files,
        "{context}: other files than a clean run's"
    );
    for pid in case.pids() {
        assert!(!alive(pid), "{context}: command shell {pid} still runs");
    }
    assert_eq!(
        &tree(&case.sibling()),
        sibling,
        "{context}: the sibling folder changed"
    );
    let (_, status) = {
        let o = case
            .command(&["status"])
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    assert!(
        status.contains("all 4 stages are up to date"),
        "{context}: {status}"
    );
}

/// Kills the run with SIGKILL after the given delay (or lets it end first).
fn kill_after(mut child: Child, delay: Duration) {
    std::thread::sleep(delay);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn kill_9_at_seeded_random_moments_recovers_to_a_clean_runs_outputs() {
    let input = input_text(1);
    let clean = clean_run(&input);
    let mut rng = Rng(0x5EED_0001);
    for jobs in ["1", "2"] {
        for point in 0..4 {
            let case = Case::new(&input);
            let sibling = tree(&case.sibling());
            // A first complete run, then an edit, so the killed run replaces earlier outputs
            // (the interesting case: outputs moved aside, half-written, put back).
            if point % 2 == 1 {
                case.write("in.txt", &input_text(2));
                assert_eq!(case.repro(&["run"]).0, 0);
                case.write("in.txt", &input);
            }
            let delay = Duration::from_millis(rng.below(700));
            kill_after(case.spawn(&["run", "-j", jobs], None), delay);
            let context = format!("-j {jobs}, kill after {delay:?}");
            assert_recovers(&case, &clean, &sibling, jobs, &context);
        }
    }
}

#[test]
fn kill_9_at_fail_points_recovers_to_a_clean_runs_outputs() {
    let input = input_text(1);
    let clean = clean_run(&input);
    for (jobs, stage) in [("1", "a"), ("2", "b"), ("1", "c"), ("2", "d")] {
        for point in ["after-command", "after-record"] {
            let case = Case::new(&input);
            let sibling = tree(&case.sibling());
            let fp = format!("kill:{stage}:{point}");
            let mut child = case.spawn(&["run", "-j", jobs], Some(&fp));
            let status = child.wait().unwrap();
            assert_eq!(status.code(), None, "{fp}: repro was not killed");
            assert_recovers(&case, &clean, &sibling, jobs, &fp);
        }
    }
}

/// How a file is damaged, as a power loss, a bad disk or a stray edit would.
#[derive(Clone, Copy, Debug)]
enum Damage {
    Empty,
    /// Cut at a random offset.
    Truncate,
    /// One random bit of one random byte flipped.
    Flip,
    /// A bit of the last byte before the final line break flipped (in a stage record: its path).
    FlipAtEnd,
}

fn damage(path: &Path, how: Damage, rng: &mut Rng) {
    use std::os::unix::fs::PermissionsExt;
    let mut bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match how {
        Damage::Empty => bytes.clear(),
        Damage::Truncate => bytes.truncate(rng.below(bytes.len() as u64) as usize),
        Damage::Flip => {
            let at = rng.below(bytes.len() as u64) as usize;
            bytes[at] ^= 1 << rng.below(8);
        }
        Damage::FlipAtEnd => {
            let at = bytes.len().saturating_sub(2);
            bytes[at] ^= 0x01;
        }
    }
    // Objects are read-only; the damage comes from outside repro.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// The lock's record of stage `stage`: its key and the hash of output `out`.
fn lock_entry(case: &Case, stage: &str, out: &str) -> (String, String) {
    let text = std::fs::read_to_string(case.dir().join("repro.lock")).unwrap();
    let lock: serde_json::Value = serde_json::from_str(&text).unwrap();
    let entry = &lock["stages"][stage];
    let key = entry["key"].as_str().unwrap().to_string();
    let hash = entry["outs"][out]["hash"].as_str().unwrap().to_string();
    (key, hash)
}

fn object(case: &Case, hash: &str) -> PathBuf {
    case.dir()
        .join("cache/objects")
        .join(&hash[..2])
        .join(&hash[2..])
}

/// The file of b's folder manifest that lists `x`: its hash, read from the manifest object.
fn manifest_file_hash(case: &Case, manifest: &str, name: &str) -> String {
    let text = std::fs::read_to_string(object(case, manifest)).unwrap();
    text.lines()
        .find(|l| l.ends_with(&format!(" {name}")))
        .and_then(|l| l.split_whitespace().find(|w| w.len() == 64))
        .unwrap_or_else(|| panic!("no `{name}` in the manifest:\n{text}"))
        .to_string()
}

#[test]
fn damaged_objects_records_and_locks_are_rebuilt_or_refused_never_trusted() {
    let input = input_text(1);
    let clean = clean_run(&input);
    let mut rng = Rng(0x5EED_0002);
    let targets = [
        "object of a file output",
        "folder manifest",
        "object of a file in a folder output",
        "stage record",
        "repro.lock",
    ];
    for target in targets {
        for how in [
            Damage::Empty,
            Damage::Truncate,
            Damage::Flip,
            Damage::Flip,
            Damage::FlipAtEnd,
        ] {
            let case = Case::new(&input);
            let sibling = tree(&case.sibling());
            assert_eq!(case.repro(&["run"]).0, 0);
            let (a_key, a_hash) = lock_entry(&case, "a", "a.txt");
            let (_, b_hash) = lock_entry(&case, "b", "b");
            // The workspace copy goes, so that the next run must restore from what was damaged.
            let path = match target {
                "object of a file output" => {
                    std::fs::remove_file(case.dir().join("a.txt")).unwrap();
                    object(&case, &a_hash)
                }
                "folder manifest" => {
                    std::fs::remove_dir_all(case.dir().join("b")).unwrap();
                    object(&case, &b_hash)
                }
                "object of a file in a folder output" => {
                    let x = manifest_file_hash(&case, &b_hash, "x");
                    std::fs::remove_dir_all(case.dir().join("b")).unwrap();
                    object(&case, &x)
                }
                "stage record" => {
                    std::fs::remove_file(case.dir().join("a.txt")).unwrap();
                    case.dir().join("cache/stages").join(&a_key)
                }
                _ => case.dir().join("repro.lock"),
            };
            damage(&path, how, &mut rng);
            let context = format!("{target}, {how:?}");
            let (code, stderr) = case.repro(&["run"]);
            if code == 2 && target == "repro.lock" {
                // Refused, naming the file; the hint's way out rebuilds.
                assert!(
                    stderr.contains("repro.lock` is damaged"),
                    "{context}: {stderr}"
                );
                std::fs::remove_file(case.dir().join("repro.lock")).unwrap();
            } else {
                assert_eq!(code, 0, "{context}: {stderr}");
            }
            assert_recovers(&case, &clean, &sibling, "1", &context);
        }
    }
}

/// A tmpfs mounted for one test, unmounted when dropped (also when the test fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None` when this machine does not let the test mount one (not root, or a container
    /// without the capability).
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_file_system_fails_the_stage_cleanly_and_a_rerun_after_freeing_space_succeeds() {
    let base = tempfile::tempdir().unwrap();
    let mount = base.path().join("small");
    let Some(_fs) = Tmpfs::mount(&mount, "2m") else {
        // Not skipped silently, and not a failure under REPRO_REQUIRE_SERVICES=1 either: CI
        // containers may forbid mount(2), which no install step can change.
        eprintln!(
            "SKIPPED faults::a_full_file_system...: cannot mount a tmpfs here (needs root and \
             CAP_SYS_ADMIN; CI containers may forbid it, so this skips even with \
             REPRO_REQUIRE_SERVICES=1)"
        );
        return;
    };
    let project = mount.join("project");
    std::fs::create_dir(&project).unwrap();
    // 0.6 MB of someone else's file on the same file system; the stage's 0.8 MB output fits in
    // the workspace but its copy in the cache does not (2 MB in all).
    let filler = mount.join("filler");
    std::fs::write(&filler, vec![b'f'; 600 << 10]).unwrap();
    std::fs::write(project.join("in.txt"), "seed\n").unwrap();
    std::fs::write(
        project.join("pipeline.yaml"),
        "stages:\n  small:\n    cmd: cp in.txt small.txt\n    deps: [in.txt]\n    outs: [small.txt]\n  big:\n    cmd: yes \"$(cat small.txt)\" | head -c 819200 > big.bin\n    deps: [small.txt]\n    outs: [big.bin]\n",
    )
    .unwrap();
    let run = || {
        let o = Command::new(repro_bin())
            .args(["run", "-j", "1"])
            .current_dir(&project)
            .env("CI", "true")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{stderr}");
        (o.status.code(), stderr)
    };
    let (code, stderr) = run();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("stage `big`"), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    // The output fitted: it stays whole in the workspace (downstream stages may already have
    // read it), but nothing claims it is stored.
    let big = std::fs::read(project.join("big.bin")).unwrap();
    assert_eq!(big.len(), 819200, "{stderr}");
    let big_hash = blake3::hash(&big).to_hex().to_string();
    // The lock records the stage whose outputs are stored and not the other; the cache holds
    // only whole objects.
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(project.join("repro.lock")).unwrap())
            .unwrap();
    assert!(lock["stages"]["small"].is_object() && lock["stages"]["big"].is_null());
    for (rel, bytes) in tree(&project.join("cache/objects")) {
        assert_eq!(blake3::hash(&bytes).to_hex().as_str(), rel.replace('/', ""));
        assert_ne!(
            rel.replace('/', ""),
            big_hash,
            "a stored object of a failed copy"
        );
    }
    assert_eq!(
        std::fs::read(&filler).unwrap().len(),
        600 << 10,
        "the filler was touched"
    );
    std::fs::remove_file(&filler).unwrap();
    let (code, stderr) = run();
    assert_eq!(code, Some(0), "{stderr}");
    let big = std::fs::read(project.join("big.bin")).unwrap();
    assert_eq!(big.len(), 819200);
    assert!(big.starts_with(b"seed\nseed\n"));
}

#[test]
fn two_runs_at_once_never_mix_outputs() {
    let input = input_text(1);
    let clean = clean_run(&input);
    for wait in [false, true] {
        let case = Case::new(&input);
        let sibling = tree(&case.sibling());
        let args: &[&str] = if wait {
            &["run", "--wait", "-j", "2"]
        } else {
            &["run", "-j", "2"]
        };
        let first = case.command(args).spawn().unwrap();
        let second = case.command(args).spawn().unwrap();
        let mut codes = Vec::new();
        for child in [first, second] {
            let o = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
            let code = o.status.code();
            if code != Some(0) {
                assert!(!wait, "--wait must wait, not refuse: {stderr}");
                assert_eq!(code, Some(1), "{stderr}");
                assert!(
                    stderr.contains("another repro process is running in this project"),
                    "{stderr}"
                );
            }
            codes.push(code);
        }
        assert!(codes.contains(&Some(0)), "neither run went ahead");
        // Each stage ran once: the second run found the first's outputs up to date.
        assert_eq!(case.pids().len(), 4, "wait={wait}: stages ran twice");
        assert_recovers(
            &case,
            &clean,
            &sibling,
            "2",
            &format!("two runs, wait={wait}"),
        );
    }
}

#[test]
fn a_dep_edited_during_a_run_at_seeded_moments_never_leaves_a_wrong_output() {
    let first = input_text(1);
    let second = input_text(3);
    let clean = clean_run(&second);
    let mut rng = Rng(0x5EED_0003);
    for jobs in ["1", "2"] {
        for _ in 0..3 {
            let case = Case::new(&first);
            let sibling = tree(&case.sibling());
            let child = case.command(&["run", "-j", jobs]).spawn().unwrap();
            std::thread::sleep(Duration::from_millis(rng.below(500)));
            // Written through a temporary file and a rename, as editors save.
            case.write("in.txt.new", &second);
            std::fs::rename(case.dir().join("in.txt.new"), case.dir().join("in.txt")).unwrap();
            let o = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert!(!stderr.contains("panicked"), "{stderr}");
            // Whatever the first run did, a rerun gives exactly a clean run on the new content.
            assert_recovers(
                &case,
                &clean,
                &sibling,
                jobs,
                &format!("edit during -j {jobs}"),
            );
        }
    }
}

/// An output that no run recorded (here a file the user made before the first run) is moved
/// aside while its stage runs, and has no other copy. A run killed then must not lose it: the
/// next run puts it back where it was free, or keeps it under `cache/recovered/` when the killed
/// run's command had already written a new one.
#[test]
fn an_unrecorded_output_moved_aside_survives_a_killed_run() {
    let user = "the user's only copy\n";
    for (cmd, rescued_to, note) in [
        (
            "echo new > out.txt",
            "cache/recovered/out.txt",
            "kept the earlier content of `out.txt`",
        ),
        ("exit 0", "out.txt", "put `out.txt` back"),
    ] {
        let p = crate::Project::new();
        p.write(
            "pipeline.yaml",
            &format!("stages:\n  s:\n    cmd: {cmd}\n    outs: [out.txt]\n"),
        );
        p.write("out.txt", user);
        let status = p
            .command(&["run"])
            .env("REPRO_FAILPOINT", "kill:s:after-command")
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), None, "{cmd}: repro was not killed");
        let again = p.repro(&["run"]);
        assert!(again.stderr.contains(note), "{cmd}: {}", again.stderr);
        assert_eq!(p.read(rescued_to), user, "{cmd}");
    }
}
