//! The validated pipeline: stages with resolved params, normalised paths and the dependency graph.
//!
//! Owns: turning `pipeline.yaml` (and the params files it names) into a [`Pipeline`] whose stages
//! are in a dependency order, collecting every problem into one report: YAML syntax, unknown keys,
//! bad paths, duplicate outputs, cycles, unknown built-in kinds and their parameter errors, and
//! variables that the known columns of a stage's data file lack (`columns`).
//! Deliberately does not own: whether files exist or what they hash to (`fsstate`), or what is
//! stale (`planner`).

mod cluster;
mod columns;
mod cx;
mod dvc;
mod graph;
mod links;
mod model;
mod param_refs;
mod parse;
mod relpath;
mod remote;
mod template;

pub use model::{
    Action, ExecutorKind, Exhibit, OutOpts, Pipeline, Resources, RunOpts, Source, Stage,
    DEFAULT_PARAMS_FILE,
};
pub use param_refs::{read as read_param_refs, ParamRef};
pub use parse::{load, parse_pipeline};
pub use remote::{RemoteSpec, RemoteUrl};
pub use repro_kind::paths::{normalize_path, path_within};

#[cfg(test)]
mod tests {
    use super::*;
    use repro_kind::diag::render;
    use std::collections::BTreeMap;
    use std::path::Path;

    fn parse(text: &str) -> Result<Pipeline, String> {
        parse_pipeline(
            Path::new("pipeline.yaml"),
            Path::new("."),
            text,
            &repro_kind::stage::NoKinds,
        )
        .map_err(|f| render(&f))
    }

    #[test]
    fn orders_stages_by_dependency() {
        let p = parse(
            "stages:\n  b:\n    cmd: cp a.txt b.txt\n    deps: [a.txt]\n    outs: [b.txt]\n  a:\n    cmd: echo > a.txt\n    outs: [a.txt]\n",
        )
        .unwrap();
        let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(p.stages[1].upstream, vec![0]);
    }

    #[test]
    fn reports_every_unknown_key_with_its_line() {
        let err =
            parse("stages:\n  a:\n    cmdd: x\n  b:\n    cmd: y\n    dep: [z]\n").unwrap_err();
        assert!(err.contains("unknown key `cmdd` in stage `a`"), "{err}");
        assert!(err.contains("pipeline.yaml:3:5"), "{err}");
        assert!(err.contains("unknown key `dep` in stage `b`"), "{err}");
        assert!(err.contains("pipeline.yaml:6:5"), "{err}");
        assert!(err.contains("did you mean `cmd`?"), "{err}");
    }

    #[test]
    fn reports_a_cycle_as_a_path() {
        let err = parse(
            "stages:\n  a:\n    cmd: x\n    deps: [b.txt]\n    outs: [a.txt]\n  b:\n    cmd: y\n    deps: [a.txt]\n    outs: [b.txt]\n",
        )
        .unwrap_err();
        assert!(
            err.contains("cycle: a -> b -> a") || err.contains("cycle: b -> a -> b"),
            "{err}"
        );
    }

    #[test]
    fn rejects_two_stages_with_one_output() {
        let err =
            parse("stages:\n  a:\n    cmd: x\n    outs: [o]\n  b:\n    cmd: y\n    outs: [o]\n")
                .unwrap_err();
        assert!(
            err.contains("output `o` is declared by two stages, `a` and `b`"),
            "{err}"
        );
    }

    #[test]
    fn reads_sources_exhibits_and_seeds() {
        let p = parse(
            "sources:\n  s:\n    files: [./data/a.csv]\n    citation: C\n    provided: false\n    statement: S\nexhibits:\n  out/t.csv: Table 1\nstages:\n  a:\n    cmd: echo ${seed} > out/t.csv\n    outs: [out/t.csv]\n    seed: 3\n",
        )
        .unwrap();
        assert_eq!(p.sources[0].files, ["data/a.csv"]);
        assert!(!p.sources[0].provided);
        assert_eq!(p.sources[0].statement.as_deref(), Some("S"));
        assert_eq!(p.exhibits[0].label, "Table 1");
        assert_eq!(p.exhibits[0].output, "out/t.csv");
        assert_eq!(p.stages[0].seeds(), [3]);
    }

    #[test]
    fn reads_the_papers_title_and_authors() {
        let stages = "stages:\n  a:\n    cmd: echo > o\n    outs: [o]\n";
        let p = parse(&format!(
            "title: T\nauthors: [A B, C D]\nlicense: MIT\n{stages}"
        ))
        .unwrap();
        assert_eq!(p.title.as_deref(), Some("T"));
        assert_eq!(p.license.as_deref(), Some("MIT"));
        assert_eq!(p.authors, ["A B", "C D"]);
        let one = parse(&format!("authors: A B\n{stages}")).unwrap();
        assert_eq!((one.title, one.authors), (None, vec!["A B".to_string()]));
        let bad = parse(&format!("title: [x]\n{stages}")).unwrap_err();
        assert!(
            bad.contains("`title` of the pipeline must be a string"),
            "{bad}"
        );
    }

    #[test]
    fn the_seed_enters_the_key_and_metadata_does_not() {
        let key = |text: &str| {
            let p = parse(text).unwrap();
            crate::key::stage_key(&p.stages[0], &BTreeMap::new())
        };
        let plain = "stages:\n  a:\n    cmd: echo > o\n    outs: [o]\n";
        let seeded = "stages:\n  a:\n    cmd: echo > o\n    outs: [o]\n    seed: 1\n";
        let reseeded = "stages:\n  a:\n    cmd: echo > o\n    outs: [o]\n    seed: 2\n";
        let with_meta = "sources:\n  s:\n    files: [x]\nexhibits:\n  o: Table 1\nstages:\n  a:\n    cmd: echo > o\n    outs: [o]\n";
        assert_ne!(key(plain), key(seeded));
        assert_ne!(key(seeded), key(reseeded));
        assert_eq!(key(plain), key(with_meta));
    }

    #[test]
    fn reports_bad_metadata_with_places() {
        let err = parse(
            "sources:\n  s:\n    citation: 3\n    provided: maybe\nexhibits:\n  nope.csv: Table 1\nstages:\n  a:\n    cmd: echo ${seed} > o\n    outs: [o]\n  b:\n    kind: fit\n    seed: -1\n    params: {data: d.csv, formula: y ~ x, out: r.json}\n",
        )
        .unwrap_err();
        for needed in [
            "`citation` of source `s` must be a string, found a number",
            "`provided` of source `s` must be `true` or `false`",
            "source `s` lists no `files`",
            "stage `a` uses `${seed}` but declares no `seed:`",
            "`seed` of stage `b` must be a non-negative integer, found -1",
        ] {
            assert!(err.contains(needed), "{needed} not in:\n{err}");
        }
        // Stage `b` was left out for its errors, so what it outputs is unknown: no exhibit is
        // reported as unproduced on top of the real errors.
        assert!(!err.contains("which no stage outputs"), "{err}");
        let err = parse(
            "exhibits:\n  nope.csv: Table 1\nstages:\n  a:\n    cmd: echo > o\n    outs: [o]\n",
        )
        .unwrap_err();
        assert!(
            err.contains("exhibit `Table 1` names `nope.csv`, which no stage outputs"),
            "{err}"
        );
    }

    fn names(p: &Pipeline) -> Vec<&str> {
        let mut v: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn foreach_and_matrix_generate_dvcs_names() {
        // Names as DVC 3 generates them (dvc/parsing: `name@key`; matrix keys joined by `-`).
        let p = parse(
            "vars:\n  - models: [lin, tree]\nstages:\n  fit:\n    foreach: ${models}\n    do:\n      cmd: echo ${item} > ${item}.txt\n      outs:\n        - ${item}.txt\n  rows:\n    foreach:\n      - {n: a}\n      - {n: b}\n    do:\n      cmd: echo ${item.n} > r${item.n}\n      outs:\n        - r${item.n}\n  grid:\n    matrix:\n      m: [x, y]\n      lr: [0.1, 1e-5]\n    cmd: echo ${item.m} ${item.lr} > g${key}\n    outs:\n      - g${key}\n",
        )
        .unwrap();
        assert_eq!(
            names(&p),
            [
                "fit@lin",
                "fit@tree",
                "grid@x-0.1",
                "grid@x-1e-05",
                "grid@y-0.1",
                "grid@y-1e-05",
                "rows@0",
                "rows@1"
            ]
        );
        let g = &p.stages[p.index_of("grid@y-1e-05").unwrap()];
        assert!(
            matches!(&g.action, Action::Cmd(c) if c == "echo y 1e-05 > gy-1e-05"),
            "{:?}",
            g.action
        );
        assert_eq!(g.outs, ["gy-1e-05"]);
        assert_eq!(g.run.group.as_deref(), Some("grid"));
    }

    #[test]
    fn unknown_variables_and_run_options_are_checked() {
        let err = parse("stages:\n  a:\n    cmd: echo ${nope} > o\n    outs: [o]\n").unwrap_err();
        assert!(
            err.contains("`${nope}` in `cmd` of stage `a` names no variable"),
            "{err}"
        );
        let p = parse(
            "stages:\n  a:\n    cmd:\n      - echo 1 > o\n      - echo 2 >> o\n    outs:\n      - o:\n          cache: false\n          persist: true\n    metrics:\n      - m.json:\n          cache: false\n    frozen: true\n  b:\n    cmd: echo hi\n",
        )
        .unwrap();
        let a = &p.stages[p.index_of("a").unwrap()];
        assert_eq!(a.outs, ["o", "m.json"]);
        assert_eq!(a.run.lines, ["echo 1 > o", "echo 2 >> o"]);
        assert!(!a.run.out("o").cache && a.run.out("o").persist && !a.run.out("m.json").cache);
        assert!(a.run.frozen && !a.run.restorable());
        // A command with neither deps nor outputs always runs (DVC's "callback" stage).
        assert!(p.stages[p.index_of("b").unwrap()].run.always_changed);
        let err = parse("stages:\n  a:\n    cmd: x\n    deps: [s3://bucket/x]\n").unwrap_err();
        assert!(err.contains("is a URL"), "{err}");
    }
}
