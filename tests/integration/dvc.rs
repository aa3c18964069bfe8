//! DVC as the reference: the same `dvc.yaml` project in two twin folders, one run with
//! `dvc repro`, the other with `repro -f dvc.yaml run`; after each edit scenario both must rerun
//! the same stages and leave identical files (issue 15). DVC comes from `REPRO_DVC` (a path to
//! its `dvc` program; `.ci/run` installs a pinned one) or `dvc` on the PATH; without it the
//! tests print why and pass, except under `REPRO_REQUIRE_SERVICES=1`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::repro_bin;

fn dvc_program() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("REPRO_DVC") {
        return Some(PathBuf::from(p));
    }
    let found = Command::new("dvc").arg("--version").output().ok()?;
    found.status.success().then(|| PathBuf::from("dvc"))
}

/// DVC, or None after saying why the test does not run (a failure when CI requires it).
fn dvc_or_skip() -> Option<PathBuf> {
    match dvc_program() {
        Some(p) => Some(p),
        None if std::env::var("REPRO_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("DVC is required (REPRO_REQUIRE_SERVICES=1) but neither REPRO_DVC nor `dvc` on the PATH was found")
        }
        None => {
            eprintln!("skipped: DVC not found (set REPRO_DVC=/path/to/dvc, see .ci/run)");
            None
        }
    }
}

/// What one tool did in one run.
#[derive(Debug, PartialEq)]
struct Ran {
    code: i32,
    /// Stages whose command ran.
    ran: BTreeSet<String>,
    /// Stages whose outputs came from the tool's cache instead.
    restored: BTreeSet<String>,
}

/// Lines naming a stage between two markers: `Running stage 'x':`, `ran `x` (...)`.
fn names_between(text: &str, before: &str, after: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix(before)?;
            Some(rest[..rest.find(after)?].to_string())
        })
        .collect()
}

struct Twin {
    dvc: PathBuf,
    dvc_dir: tempfile::TempDir,
    repro_dir: tempfile::TempDir,
}

impl Twin {
    fn new(dvc: PathBuf, files: &[(&str, &str)]) -> Twin {
        let t = Twin {
            dvc,
            dvc_dir: tempfile::tempdir().unwrap(),
            repro_dir: tempfile::tempdir().unwrap(),
        };
        for (rel, text) in files {
            t.write(rel, text);
        }
        let init = t.dvc_cmd(&["init", "--no-scm", "-q"]).output().unwrap();
        assert!(
            init.status.success(),
            "dvc init: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        // A clone of a DVC project holds `.dvc/config` (git keeps it); repro's twin too.
        let config = t.repro_dir.path().join(".dvc/config");
        std::fs::create_dir_all(config.parent().unwrap()).unwrap();
        std::fs::copy(t.dvc_dir.path().join(".dvc/config"), config).unwrap();
        t
    }

    fn dirs(&self) -> [&Path; 2] {
        [self.dvc_dir.path(), self.repro_dir.path()]
    }

    fn write(&self, rel: &str, text: &str) {
        for d in self.dirs() {
            let p = d.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }

    fn edit(&self, f: impl Fn(&Path)) {
        for d in self.dirs() {
            f(d);
        }
    }

    fn dvc_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.dvc);
        c.args(args)
            .current_dir(self.dvc_dir.path())
            .env("DVC_NO_ANALYTICS", "1")
            .env("DVC_SITE_CACHE_DIR", self.dvc_dir.path().join(".dvc/site"))
            // The shell DVC runs commands with is $SHELL; repro runs `sh`. Same shell here.
            .env("SHELL", "/bin/sh");
        c
    }

    fn run_dvc(&self) -> Ran {
        // Without a root `dvc.yaml`, `dvc repro` needs `-P` to take every pipeline of the
        // project, as `dvc status` and `dvc dag` do by default.
        let args: &[&str] = if self.dvc_dir.path().join("dvc.yaml").exists() {
            &["repro"]
        } else {
            &["repro", "-P"]
        };
        let o = self.dvc_cmd(args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        Ran {
            code: i32::from(!o.status.success()),
            ran: names_between(&text, "Running stage '", "':"),
            restored: names_between(&text, "Stage '", "' is cached"),
        }
    }

    fn run_repro(&self) -> Ran {
        let o = Command::new(repro_bin())
            .args(["-f", "dvc.yaml", "run"])
            .current_dir(self.repro_dir.path())
            .env("CI", "true")
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stderr);
        Ran {
            code: i32::from(!o.status.success()),
            ran: names_between(&text, "ran `", "` ("),
            restored: names_between(&text, "restored `", "` from"),
        }
    }

    /// Runs both tools and checks they did the same and left the same files.
    #[track_caller]
    fn both(&self, what: &str) -> Ran {
        let d = self.run_dvc();
        let r = self.run_repro();
        assert_eq!(
            d.code, r.code,
            "{what}: exit status differs: dvc {d:?}, repro {r:?}"
        );
        let d_all: BTreeSet<_> = d.ran.union(&d.restored).collect();
        let r_all: BTreeSet<_> = r.ran.union(&r.restored).collect();
        assert_eq!(
            d_all, r_all,
            "{what}: stages brought up to date differ: dvc {d:?}, repro {r:?}"
        );
        assert_eq!(
            d.ran, r.ran,
            "{what}: stages run differ: dvc {d:?}, repro {r:?}"
        );
        let (df, rf) = (files(self.dvc_dir.path()), files(self.repro_dir.path()));
        assert_eq!(df, rf, "{what}: the files left differ");
        d
    }
}

/// Every file of a project with its content, leaving out each tool's own state.
fn files(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .to_string();
            if [
                ".dvc",
                "cache",
                "dvc.lock",
                "dvc.repro.lock",
                ".dvcignore",
                ".gitignore",
            ]
            .contains(&rel.as_str())
                || rel.ends_with("/.gitignore")
                || rel.ends_with("/dvc.lock")
                || rel.ends_with("/dvc.repro.lock")
            {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push((rel, std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn rewrite(rel: &'static str, from: &'static str, to: &'static str) -> impl Fn(&Path) {
    move |d: &Path| {
        let p = d.join(rel);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "`{from}` not in {rel}");
        std::fs::write(p, text.replace(from, to)).unwrap();
    }
}

/// A three-stage pipeline in DVC's documented forms: deps, params from `params.yaml` (one used
/// in the command through `${...}`), outputs, a metric kept out of the cache.
const BASIC: &[(&str, &str)] = &[
    ("data/raw.txt", "alpha\nbeta\n"),
    ("params.yaml", "train:\n  lr: 0.1\n  epochs: 3\nunused: 1\n"),
    (
        "dvc.yaml",
        "stages:\n  prepare:\n    cmd: tr a-z A-Z < data/raw.txt > data/clean.txt\n    deps:\n      - data/raw.txt\n    outs:\n      - data/clean.txt\n  train:\n    cmd: (cat data/clean.txt; echo lr=${train.lr}) > model.txt\n    deps:\n      - data/clean.txt\n    params:\n      - train.lr\n    outs:\n      - model.txt\n  evaluate:\n    cmd: wc -c < model.txt > metrics.json\n    deps:\n      - model.txt\n    metrics:\n      - metrics.json:\n          cache: false\n",
    ),
];

/// Templating, run options and command forms: `vars` (a file and inline values), `foreach` over
/// a list from the vars file, `matrix`, a persisted output, an always-changed stage, a
/// multi-line command, a stage in its own `wdir` reaching `..`.
const FEATURES: &[(&str, &str)] = &[
    ("seed.txt", "1\n"),
    ("config.yaml", "items: [x, y]\n"),
    ("out/.keep", ""),
    ("grid/.keep", ""),
    ("sub/.keep", ""),
    (
        "dvc.yaml",
        "vars:\n  - config.yaml\n  - suffix: v1\nstages:\n  grow:\n    cmd: cat seed.txt >> log.txt\n    deps: [seed.txt]\n    outs:\n      - log.txt:\n          persist: true\n  tick:\n    cmd: echo tick > tick.txt\n    always_changed: true\n    outs: [tick.txt]\n  per_item:\n    foreach: ${items}\n    do:\n      cmd: echo ${item} ${suffix} > out/${item}.txt\n      deps: [seed.txt]\n      outs:\n        - out/${item}.txt\n  grid:\n    matrix:\n      model: [a, b]\n      lr: [0.1, 0.01]\n    cmd: echo ${item.model} ${item.lr} > grid/${key}.txt\n    outs:\n      - grid/${key}.txt\n  multi:\n    cmd:\n      - echo one > multi.txt\n      - cat seed.txt >> multi.txt\n    deps: [seed.txt]\n    outs: [multi.txt]\n  sub:\n    wdir: sub\n    cmd: cat ../seed.txt ../seed.txt > result.txt\n    deps: [../seed.txt]\n    outs: [result.txt]\n",
    ),
];

/// A project whose only pipeline lives in a subfolder, as many DVC projects keep
/// `pipelines/dvc.yaml` with `.dvc/` at the root: a `vars` file and paths reaching `..`, one
/// stage run at the root by `wdir: ..` (params then read from the root's `params.yaml`), one
/// run in the subfolder.
const NESTED_ONLY: &[(&str, &str)] = &[
    ("data/raw.txt", "alpha\n"),
    ("params.yaml", "prep:\n  n: 1\n"),
    (
        "pipelines/dvc.yaml",
        "vars:\n  - ../params.yaml\nstages:\n  prepare:\n    wdir: ..\n    cmd: (cat data/raw.txt; echo n=${prep.n}) > data/clean.txt\n    deps: [data/raw.txt]\n    params:\n      - prep.n\n    outs: [data/clean.txt]\n  count:\n    cmd: wc -c < ../data/clean.txt > ../count.txt\n    deps: [../data/clean.txt]\n    outs: [../count.txt]\n",
    ),
];

/// A `foreach` list and a `matrix` axis that repeat a value: DVC makes one stage per name. Each
/// stage appends to a file of its own, so a second run of one shows (and stages independent of
/// each other may run in any order).
const REPEATED_ITEMS: &[(&str, &str)] = &[
    ("seed.txt", "1\n"),
    (
        "dvc.yaml",
        "stages:\n  each:\n    foreach: [x, y, x]\n    do:\n      cmd: echo ${item} >> each-${item}.txt\n      deps: [seed.txt]\n  grid:\n    matrix:\n      m: [1, 1]\n      n: [a]\n    cmd: echo ${item.m}${item.n} >> grid-${key}.txt\n    deps: [seed.txt]\n",
    ),
];

/// A params file that a stage writes (`tune` copies `hp.txt` to `best.yaml`) and another stage
/// reads (`params: [best.yaml: [lr]]`), as real projects keep tuned hyperparameters. DVC reads
/// such a file when the reading stage is about to run, not when it loads the pipeline.
const PRODUCED_PARAMS: &[(&str, &str)] = &[
    ("hp.txt", "lr: 0.1\nother: 1\n"),
    (
        "dvc.yaml",
        "stages:\n  tune:\n    cmd: cp hp.txt best.yaml\n    deps: [hp.txt]\n    outs: [best.yaml]\n  train:\n    cmd: grep lr best.yaml > model.txt\n    params:\n      - best.yaml:\n          - lr\n    outs: [model.txt]\n",
    ),
];

/// Runs one edit scenario on a fresh twin: first build, the edit, the rebuild, each compared.
fn scenario(files: &[(&str, &str)], what: &str, edit: impl Fn(&Path)) {
    scenario_ran(files, what, edit);
}

/// [`scenario`], returning what DVC did in the first run and after the edit.
fn scenario_ran(files: &[(&str, &str)], what: &str, edit: impl Fn(&Path)) -> Option<[Ran; 2]> {
    let dvc = dvc_or_skip()?;
    let t = Twin::new(dvc, files);
    let first = t.both(&format!("{what} (first run)"));
    t.edit(edit);
    Some([first, t.both(what)])
}

#[test]
fn no_change_reruns_nothing() {
    scenario(BASIC, "no change", |_| {});
}

#[test]
fn dep_content_reruns_downstream() {
    scenario(BASIC, "dep content", |d| {
        std::fs::write(d.join("data/raw.txt"), "gamma\n").unwrap()
    });
}

#[test]
fn touching_a_dep_reruns_nothing() {
    scenario(BASIC, "touch", |d| {
        let f = std::fs::File::options()
            .write(true)
            .open(d.join("data/raw.txt"))
            .unwrap();
        f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
            .unwrap();
    });
}

#[test]
fn a_used_param_reruns_its_stage() {
    scenario(
        BASIC,
        "param used",
        rewrite("params.yaml", "lr: 0.1", "lr: 0.2"),
    );
}

#[test]
fn an_unused_param_reruns_nothing() {
    scenario(
        BASIC,
        "param unused",
        rewrite("params.yaml", "unused: 1", "unused: 2"),
    );
}

#[test]
fn a_changed_command_reruns_its_stage() {
    scenario(
        BASIC,
        "cmd",
        rewrite("dvc.yaml", "tr a-z A-Z", "tr a-y A-Y"),
    );
}

#[test]
fn deleted_and_edited_outputs() {
    scenario(BASIC, "deleted output", |d| {
        std::fs::remove_file(d.join("model.txt")).unwrap()
    });
    scenario(BASIC, "edited output", |d| {
        std::fs::write(d.join("model.txt"), "edited\n").unwrap()
    });
}

#[test]
fn an_uncached_output_deleted_is_restored_as_dvc_does() {
    scenario(BASIC, "cache false", |d| {
        std::fs::remove_file(d.join("metrics.json")).unwrap()
    });
}

#[test]
fn a_new_stage_runs_alone() {
    scenario(BASIC, "new stage", |d| {
        let p = d.join("dvc.yaml");
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(p, text + "  report:\n    cmd: cat metrics.json model.txt > report.txt\n    deps: [metrics.json, model.txt]\n    outs: [report.txt]\n").unwrap();
    });
}

#[test]
fn features_first_run_and_no_change() {
    // `tick` is always changed and runs again; nothing else does.
    scenario(FEATURES, "features: no change", |_| {});
}

#[test]
fn persisted_output_grows() {
    scenario(FEATURES, "persist", |d| {
        std::fs::write(d.join("seed.txt"), "2\n").unwrap()
    });
}

#[test]
fn frozen_stage_does_not_run() {
    scenario(FEATURES, "frozen", |d| {
        rewrite("dvc.yaml", "  multi:\n", "  multi:\n    frozen: true\n")(d);
        std::fs::write(d.join("seed.txt"), "3\n").unwrap();
    });
}

#[test]
fn templated_stages_follow_their_variables() {
    scenario(
        FEATURES,
        "foreach items",
        rewrite("config.yaml", "[x, y]", "[x, y, z]"),
    );
    scenario(
        FEATURES,
        "inline var",
        rewrite("dvc.yaml", "suffix: v1", "suffix: v2"),
    );
}

#[test]
fn matrix_stages_follow_their_axes() {
    scenario(
        FEATURES,
        "matrix",
        rewrite("dvc.yaml", "lr: [0.1, 0.01]", "lr: [0.1, 0.001]"),
    );
}

#[test]
fn pipelines_only_in_a_subfolder() {
    let all = ["pipelines/dvc.yaml:count", "pipelines/dvc.yaml:prepare"].map(String::from);
    // Both tools must have built the project, not failed alike, and rerun what the edit needs.
    let check = |what: &str, edit: &dyn Fn(&Path), reran: &[String]| {
        let Some([first, then]) = scenario_ran(NESTED_ONLY, what, edit) else {
            return;
        };
        assert_eq!((first.code, first.ran), (0, all.iter().cloned().collect()));
        assert_eq!((then.code, then.ran), (0, reran.iter().cloned().collect()));
    };
    check("nested only: no change", &|_| {}, &[]);
    check(
        "nested only: param",
        &rewrite("params.yaml", "n: 1", "n: 2"),
        &all,
    );
    check(
        "nested only: dep",
        &|d| std::fs::write(d.join("data/raw.txt"), "beta\n").unwrap(),
        &all,
    );
}

#[test]
fn repeated_items_make_one_stage() {
    scenario(REPEATED_ITEMS, "repeated items", |d| {
        std::fs::write(d.join("seed.txt"), "2\n").unwrap()
    });
}

#[test]
fn repro_keeps_its_own_lock_beside_dvcs() {
    let Some(dvc) = dvc_or_skip() else { return };
    let t = Twin::new(dvc, BASIC);
    // DVC builds; repro then runs in the same folder, and DVC must still read its lock.
    let o = t.dvc_cmd(&["repro"]).output().unwrap();
    assert!(o.status.success());
    let lock = std::fs::read(t.dvc_dir.path().join("dvc.lock")).unwrap();
    let r = Command::new(repro_bin())
        .args(["-f", "dvc.yaml", "run"])
        .current_dir(t.dvc_dir.path())
        .env("CI", "true")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(t.dvc_dir.path().join("dvc.repro.lock").exists());
    assert_eq!(
        std::fs::read(t.dvc_dir.path().join("dvc.lock")).unwrap(),
        lock,
        "repro changed dvc.lock"
    );
    let s = t.dvc_cmd(&["status"]).output().unwrap();
    let text = String::from_utf8_lossy(&s.stdout);
    assert!(
        s.status.success() && text.contains("up to date"),
        "dvc status after repro: {text}"
    );
}

#[test]
fn a_params_file_written_by_a_stage_is_read_when_its_reader_runs() {
    let both = ["train", "tune"].map(String::from);
    let check = |what: &str, edit: &dyn Fn(&Path), reran: &[String]| {
        let Some([first, then]) = scenario_ran(PRODUCED_PARAMS, what, edit) else {
            return;
        };
        // A fresh clone has no `best.yaml`: both tools build it, then the stage reading it.
        assert_eq!((first.code, first.ran), (0, both.iter().cloned().collect()));
        assert_eq!((then.code, then.ran), (0, reran.iter().cloned().collect()));
    };
    check("produced params: no change", &|_| {}, &[]);
    check(
        "produced params: the used key changes",
        &rewrite("hp.txt", "lr: 0.1", "lr: 0.2"),
        &both,
    );
    check(
        "produced params: another key changes",
        &rewrite("hp.txt", "other: 1", "other: 2"),
        &both[1..],
    );
}
