//! Bounded spec numbers, distinct quantile result files and `repro gc` with several pipelines
//! sharing one cache (issue 12).

use crate::{snapshot_settings, Project};

const DATA: &str = "y,x,g\n1,1,1\n2,3,1\n3,2,2\n4,5,2\n5,4,1\n6,7,2\n7,6,1\n8,9,2\n";

/// Forty rows for quantile fits at tau 0.1: eight rows leave the sparsity estimate at tau 0.101
/// without observations inside its bandwidth (a singular matrix, correctly reported).
fn quantile_data() -> String {
    let mut s = String::from("y,x,g\n");
    for i in 0..40u32 {
        // y = x + a deterministic wobble; x spreads over 0..40.
        let x = (i * 7) % 40;
        let y = f64::from(x) + f64::from((i * 13) % 11) - 5.0;
        s.push_str(&format!("{y},{x},{}\n", i % 2));
    }
    s
}

/// One spec file with one bad number: (kind, spec text).
const OUT_OF_RANGE: &[(&str, &str)] = &[
    (
        "models",
        "title: t\ndata: d.csv\nname: t\nmodels:\n  - {id: a, formula: y ~ x}\n  - {id: b, formula: y ~ x}\n\
         differences:\n  - {a: a, b: b, coef: x, method: permutation, reps: 100000000000000, seed: 1}\n",
    ),
    (
        "models",
        "title: t\ndata: d.csv\nname: t\ndigits: 70000\nmodels:\n  - {id: a, formula: y ~ x}\n",
    ),
    (
        "quantiles",
        "data: d.csv\nname: q\nformula: y ~ x\ncoef: x\ntaus: [0.5]\nse: bootstrap:100000000000000:1\n",
    ),
    (
        "quantiles",
        "data: d.csv\nname: q\nformula: y ~ x\ncoef: x\ntaus: [0.5, 1.5]\n",
    ),
    ("describe", "data: d.csv\nname: d\nvariables: {y: Y}\ndigits: 13\n"),
    (
        "synth",
        "seed: 1\nrecords: 100000000000000\nout_dir: raw\n",
    ),
    (
        "synth",
        "seed: 1\nout_dir: raw\nmess:\n  bad_dates: 2\n",
    ),
    ("synth", "seed: 1\nout_dir: raw\neffects:\n  gap_core: 1e308\n"),
    ("synth", "seed: 1\nout_dir: raw\nlast_year: 100000\n"),
    (
        "panel",
        "yearbook: y.csv\nrd_province: r.csv\nindex: i.csv\nfirst_year: 2010\nlast_year: 2020\n\
         integration_neighbours: 1000000\nout: p.csv\ncodebook: c.md\nreport: r.json\n",
    ),
    (
        "panel",
        "yearbook: y.csv\nrd_province: r.csv\nindex: i.csv\nfirst_year: 2010\nlast_year: 2020\n\
         winsorize: 0.5\nout: p.csv\ncodebook: c.md\nreport: r.json\n",
    ),
    (
        "index",
        "applicants: a.csv\npopulation: p.csv\nfirst_year: -5\nlast_year: 2020\nout: i.csv\n\
         edges: e.csv\nreport: r.json\n",
    ),
];

/// Every out-of-range number is an error when the pipeline loads (exit 2), naming the field,
/// the value, the range and the spec file's line and column; nothing aborts or runs away (a
/// permutation test with 10^14 replications tried to allocate 800 TB and aborted).
#[test]
fn out_of_range_spec_numbers_are_errors_with_their_place() {
    let mut seen = String::new();
    for (i, (kind, spec)) in OUT_OF_RANGE.iter().enumerate() {
        let p = Project::new();
        p.write("d.csv", DATA).write("s.yaml", spec).write(
            "pipeline.yaml",
            &format!("stages:\n  s:\n    kind: {kind}\n    params: {{spec: s.yaml}}\n"),
        );
        let out = p.repro(&["run"]);
        assert_eq!(out.code, 2, "case {i}:\n{}", out.snapshot());
        assert!(
            out.stderr.contains("outside its range") && out.stderr.contains("--> s.yaml:"),
            "case {i}:\n{}",
            out.snapshot()
        );
        seen.push_str(&format!("--- {kind}\n{}", out.stderr));
    }
    snapshot_settings().bind(|| insta::assert_snapshot!("spec_numbers_out_of_range", seen));
}

/// `0.101` and `0.104` both print as `0.10` with two decimals; each gets its own result file
/// (named by its exact value) and table row. A tau listed twice is a spec error.
#[test]
fn taus_that_print_alike_keep_their_own_result_files() {
    let p = Project::new();
    p.write("d.csv", &quantile_data())
        .write(
            "q.yaml",
            "data: d.csv\nname: q\nformula: y ~ x\ncoef: x\ntaus: [0.101, 0.104, 0.5]\n",
        )
        .write(
            "pipeline.yaml",
            "stages:\n  q:\n    kind: quantiles\n    params: {spec: q.yaml}\n",
        );
    p.repro(&["run"]).ok();
    for t in ["0.101", "0.104", "0.50"] {
        let r = p.read(&format!("output/results/q/pooled_tau{t}.json"));
        assert!(r.contains("\"coefficients\""), "{t}: {r}");
    }
    let a = p.read("output/results/q/pooled_tau0.101.json");
    let b = p.read("output/results/q/pooled_tau0.104.json");
    assert_ne!(a, b, "the two taus' results must differ");
    let md = p.read("output/tables/q.md");
    assert!(md.contains("0.101") && md.contains("0.104"), "{md}");

    p.write(
        "q.yaml",
        "data: d.csv\nname: q\nformula: y ~ x\ncoef: x\ntaus: [0.25, 0.5, 0.25]\n",
    );
    let out = p.repro(&["run"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    assert!(
        out.stderr.contains("`taus` lists 0.25 twice") && out.stderr.contains("--> q.yaml:5:"),
        "{}",
        out.stderr
    );
}

fn stage(out: &str, text: &str) -> String {
    format!("stages:\n  s:\n    cmd: printf '{text}' > {out}\n    outs: [{out}]\n")
}

/// Two pipelines of one project share `cache/`; `repro gc -f a.yaml` keeps what `b.yaml`'s lock
/// needs (it deleted it), says which locks it kept, and forgets a lock that was deleted.
#[test]
fn gc_keeps_what_every_pipeline_sharing_the_cache_needs() {
    let p = Project::new();
    p.write("a.yaml", &stage("a.txt", "from a"))
        .write("b.yaml", &stage("b.txt", "from b"));
    p.repro(&["run", "-f", "a.yaml"]).ok();
    p.repro(&["run", "-f", "b.yaml"]).ok();
    // An old version of a's output, which no lock needs any more.
    p.write("a.yaml", &stage("a.txt", "from a, again"));
    p.repro(&["run", "-f", "a.yaml"]).ok();
    // Another tool's lock beside them is not repro's and is left alone.
    p.write("Cargo.lock", "# not repro's\n");

    let gc = p.repro(&["gc", "-f", "a.yaml"]);
    gc.ok();
    assert!(gc.stdout.starts_with("removed 1 objects"), "{}", gc.stdout);
    assert!(
        gc.stdout
            .contains("kept the objects these locks refer to: `a.lock`, `b.lock`"),
        "{}",
        gc.stdout
    );
    p.remove("b.txt");
    let out = p.repro(&["run", "-f", "b.yaml"]);
    out.ok();
    assert!(out.stderr.contains("restored `s`"), "{}", out.stderr);
    assert_eq!(p.read("b.txt"), "from b");
    assert!(p.exists("Cargo.lock"));

    // A lock that is gone no longer keeps anything, and gc says so.
    p.remove("b.lock");
    let gc = p.repro(&["gc", "-f", "a.yaml"]);
    gc.ok();
    assert!(gc.stdout.starts_with("removed 1 objects"), "{}", gc.stdout);
    assert!(
        gc.stdout
            .contains("`b.lock` no longer exists: its objects were not kept"),
        "{}",
        gc.stdout
    );

    // A damaged lock of a pipeline sharing the cache stops gc (exit 2) before anything goes.
    p.repro(&["run", "-f", "b.yaml"]).ok();
    p.write(
        "b.lock",
        "{ \"format\": 1, \"engine\": \"repro 0.1.0\", \"stages\": ",
    );
    let gc = p.repro(&["gc", "-f", "a.yaml"]);
    assert_eq!(gc.code, 2, "{}", gc.snapshot());
    assert!(gc.stderr.contains("the lock file"), "{}", gc.stderr);
    assert!(gc.stderr.contains("b.lock` is damaged"), "{}", gc.stderr);
}
