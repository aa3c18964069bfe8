//! The `curve` kind (a specification curve): every specification against pyfixest on the plm
//! `Produc` panel, the per-specification memo (adding a choice computes only the new
//! specifications, a damaged entry is recomputed, a warm curve equals a cold one byte for
//! byte), the same bytes at one and two threads, the joint test under the null, and the errors
//! a user sees for a bad spec.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::{snapshot_settings, Project};

const SPEC: &str = include_str!("../fixtures/curve/curve.yaml");

const PIPELINE: &str =
    "stages:\n  curve:\n    kind: curve\n    params: {spec: stages/curve.yaml}\n";

fn project(spec: &str) -> Project {
    let p = Project::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = std::fs::read_to_string(root.join("tests/fixtures/estimators/produc.csv")).unwrap();
    p.write("data/produc.csv", &data)
        .write("pipeline.yaml", PIPELINE)
        .write("stages/curve.yaml", spec);
    p
}

/// `specifications.csv` as rows of named cells (the fixture's labels hold no commas).
fn rows(p: &Project) -> Vec<BTreeMap<String, String>> {
    let text = p.read("output/results/produc_curve/specifications.csv");
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            assert_eq!(cells.len(), head.len(), "{l}");
            head.iter()
                .zip(cells)
                .map(|(h, c)| (h.to_string(), c.to_string()))
                .collect()
        })
        .collect()
}

/// `computed` and `restored` of the kind's `-v` line.
fn counts(stderr: &str) -> (usize, usize) {
    let line = stderr
        .lines()
        .find(|l| l.contains("specification curve"))
        .unwrap_or_else(|| panic!("no curve line in:\n{stderr}"));
    let field = |name: &str| -> usize {
        let at = line.find(&format!("{name}=")).unwrap() + name.len() + 1;
        line[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (field("computed"), field("restored"))
}

fn rel_close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1e-300)
}

#[test]
fn every_specification_matches_pyfixest() {
    let p = project(SPEC);
    p.repro(&["run"]).ok();
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/curve/reference.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let tol_est = reference["tolerance"]["estimate_rel"].as_f64().unwrap();
    let tol_se = reference["tolerance"]["std_error_rel"].as_f64().unwrap();
    let ours: BTreeMap<(String, String, String), BTreeMap<String, String>> = rows(&p)
        .into_iter()
        .map(|r| {
            let key = (
                r["formula"].clone(),
                r["vcov_spec"].clone(),
                r["sample_restriction"].clone(),
            );
            (key, r)
        })
        .collect();
    let specs = reference["specifications"].as_array().unwrap();
    // 2 x 3 x 3 x 3 x 3 combinations less the 18 without fixed effects and with iid errors.
    assert_eq!(specs.len(), 144);
    assert_eq!(
        ours.len(),
        specs.len(),
        "repro and pyfixest fit different sets"
    );
    for r in specs {
        let key = (
            r["formula"].as_str().unwrap().to_string(),
            r["vcov"].as_str().unwrap().to_string(),
            r["sample"].as_str().unwrap().to_string(),
        );
        let row = ours
            .get(&key)
            .unwrap_or_else(|| panic!("repro has no specification {key:?}"));
        let est: f64 = row["estimate"].parse().unwrap();
        let se: f64 = row["std_error"].parse().unwrap();
        let (want_est, want_se) = (
            r["estimate"].as_f64().unwrap(),
            r["std_error"].as_f64().unwrap(),
        );
        assert!(
            rel_close(est, want_est, tol_est),
            "{key:?}: estimate {est} vs pyfixest {want_est}"
        );
        assert!(
            rel_close(se, want_se, tol_se),
            "{key:?}: se {se} vs pyfixest {want_se}"
        );
        assert_eq!(row["nobs"], r["nobs"].to_string(), "{key:?}");
    }
    // The figure plots the same estimates, sorted: its points are a permutation of the table's.
    let fig: Value = serde_json::from_str(&p.read("output/figures/produc_curve.json")).unwrap();
    let plotted: Vec<f64> = fig["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pt| pt["estimate"].as_f64().unwrap())
        .collect();
    assert!(
        plotted.windows(2).all(|w| w[0] <= w[1]),
        "the curve is not sorted"
    );
    let mut table: Vec<f64> = ours
        .values()
        .map(|r| r["estimate"].parse().unwrap())
        .collect();
    table.sort_by(f64::total_cmp);
    assert_eq!(plotted.len(), table.len());
    // serde_json's default parser may miss the last bit of a shortest-form number.
    for (a, b) in plotted.iter().zip(&table) {
        assert!(rel_close(*a, *b, 1e-15), "plotted {a} vs table {b}");
    }
    let summary: Value =
        serde_json::from_str(&p.read("output/results/produc_curve/summary.json")).unwrap();
    assert_eq!(summary["specifications"], 144);
    for ext in ["svg", "pdf", "png"] {
        assert!(p.exists(&format!("output/figures/produc_curve.{ext}")));
    }
    for ext in ["tex", "md", "html", "csv"] {
        assert!(p.exists(&format!("output/tables/produc_curve.{ext}")));
    }
}

/// Every output of the curve stage, by path.
fn outputs(p: &Project) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for dir in [
        "output/results/produc_curve",
        "output/tables",
        "output/figures",
    ] {
        for e in std::fs::read_dir(p.path().join(dir)).unwrap() {
            let path = e.unwrap().path();
            let rel = path
                .strip_prefix(p.path())
                .unwrap()
                .to_string_lossy()
                .to_string();
            out.insert(rel, std::fs::read(&path).unwrap());
        }
    }
    out
}

fn assert_same(a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>, what: &str) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{what}: different files"
    );
    for (k, v) in a {
        assert!(v == &b[k], "{what}: `{k}` differs");
    }
}

#[test]
fn adding_a_choice_computes_only_the_new_specifications() {
    let without_state = SPEC.replace("  State: state\n", "");
    assert_ne!(without_state, SPEC);
    let p = project(&without_state);
    // 2 x 3 x 3 x 2 x 3 = 108 less the 18 excluded.
    let first = p.repro(&["-v", "run"]);
    first.ok();
    assert_eq!(counts(&first.stderr), (90, 0));
    p.write("stages/curve.yaml", SPEC);
    let second = p.repro(&["-v", "run"]);
    second.ok();
    assert_eq!(
        counts(&second.stderr),
        (54, 90),
        "only the 54 new specifications run"
    );
    let warm = outputs(&p);

    let cold = project(SPEC);
    let out = cold.repro(&["-v", "run"]);
    out.ok();
    assert_eq!(counts(&out.stderr), (144, 0));
    assert_same(&warm, &outputs(&cold), "memoised vs cold run");

    // A damaged entry is not trusted: it is recomputed, and the outputs are the same.
    let memo = p.path().join("cache/memo");
    let shard = std::fs::read_dir(&memo)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let entry = std::fs::read_dir(&shard)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&entry).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&entry, bytes).unwrap();
    let third = p.repro(&["-v", "run", "--force"]);
    third.ok();
    assert_eq!(
        counts(&third.stderr),
        (1, 143),
        "the damaged entry is recomputed"
    );
    assert_same(&warm, &outputs(&p), "after repairing a damaged entry");
}

const JOINT: &str = "title: Private capital\ndata: data/produc.csv\nname: produc_curve\nexpected_sign: positive\noutcomes: {Log GSP: lgsp}\ntreatments: {Private capital: lpc, Public capital: lpcap}\ncontrols: {None: [], Employment: [lemp], Employment and unemployment: [lemp, unemp]}\nfixed_effects: {State and year: state + year}\nvcov: {Clustered by state: cluster:state}\njoint_test: {reps: 200, seed: 20200101, cluster: state}\n";

#[test]
fn the_joint_test_is_the_same_at_one_and_two_threads() {
    let runs: Vec<BTreeMap<String, Vec<u8>>> = ["1", "2"]
        .iter()
        .map(|threads| {
            let p = project(JOINT);
            let o = p
                .command(&["run", "-j", threads])
                .env("RAYON_NUM_THREADS", threads)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            outputs(&p)
        })
        .collect();
    assert_same(&runs[0], &runs[1], "-j 1 and RAYON_NUM_THREADS=1 vs 2");
    let summary: Value =
        serde_json::from_slice(&runs[0]["output/results/produc_curve/summary.json"]).unwrap();
    let j = &summary["joint_test"];
    assert_eq!(j["reps"], 200);
    // Under the imposed null the curve centres on zero: the resamples' median estimate is a
    // small fraction of the observed one.
    let observed = summary["median_estimate"].as_f64().unwrap();
    let null = j["null_mean"]["median_estimate"].as_f64().unwrap();
    assert!(
        null.abs() < 0.1 * observed.abs(),
        "null mean {null} vs observed {observed}"
    );
    // ... and an observed curve this far from it is rarely matched.
    for p in ["p_median_estimate", "p_share_significant_expected_sign"] {
        let v = j[p].as_f64().unwrap();
        assert!((0.0..=0.05).contains(&v), "{p} = {v}");
    }
}

#[test]
fn a_bad_spec_names_its_place() {
    let p = project(&SPEC.replace(
        "  - {fixed_effects: None, vcov: iid}",
        "  - {fixed_effects: Nothing, vcov: iid}",
    ));
    let out = p.repro(&["run"]);
    assert_eq!(out.code, 2);
    snapshot_settings().bind(|| insta::assert_snapshot!("curve_bad_exclude", out.snapshot()));
    let p = project(&SPEC.replace("region != 6", "region !! 6"));
    let out = p.repro(&["run"]);
    assert_eq!(out.code, 2);
    snapshot_settings().bind(|| insta::assert_snapshot!("curve_bad_sample", out.snapshot()));
    // A variable the data lacks is found before anything runs, with the choice's line.
    let p = project(&SPEC.replace("[lemp, unemp]", "[lemp, unemployment]"));
    let out = p.repro(&["run"]);
    assert_eq!(out.code, 2);
    assert!(!p.exists("output"), "nothing ran");
    snapshot_settings().bind(|| insta::assert_snapshot!("curve_unknown_variable", out.snapshot()));
}

#[test]
fn the_summary_reads_as_users_see_it() {
    let p = project(SPEC);
    p.repro(&["run"]).ok();
    let md = p.read("output/tables/produc_curve.md");
    // The listing of every specification: its head and notes (the body is 144 rows like these).
    let listing = p.read("output/results/produc_curve/specifications.md");
    let lines: Vec<&str> = listing.lines().collect();
    let head = [&lines[..6], &lines[lines.len() - 6..]].concat().join("\n");
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("curve_table_md", md);
        insta::assert_snapshot!("curve_specifications_md", head);
        insta::assert_snapshot!(
            "curve_summary_json",
            p.read("output/results/produc_curve/summary.json")
        );
    });
}
