//! Messages that pointed the wrong way (issue 12): each names what is really wrong, where, and
//! what to do. Snapshots show what the user reads.

use std::fs::File;

use polars::prelude::*;

use crate::{snapshot_settings, Project};

const INGEST: &str =
    "stages:\n  ingest:\n    kind: ingest\n    params: {spec: stages/ingest.yaml}\n";
const OUTPUTS: &str = "out: output/data/applications.parquet\nquarantine: output/data/quarantine.csv\nreport: output/reports/ingest.json\n";
const HEADER: &str = "申请号,申请日,名称,主分类号,申请(专利权)人,地址,邮编,国省代码,专利类型\n";
const ROW: &str =
    "CN201610000004.9,2016-02-01,一种方法,G06F 1/00,北京大学,北京市海淀区,100871,11,发明\n";

fn ingest_project(input: &str) -> Project {
    let p = Project::new();
    p.write("pipeline.yaml", INGEST).write(
        "stages/ingest.yaml",
        &format!("inputs: [{input}]\nencoding: auto\n{OUTPUTS}"),
    );
    p
}

/// A UTF-8 export with one line that is neither UTF-8 nor GBK (`\xff`): `auto` reads the file as
/// GBK because of that line, and GBK stumbles on the valid UTF-8 header first. The message
/// named a byte of the header; it must name line 3.
#[test]
fn auto_encoding_names_the_line_that_is_not_utf8() {
    let p = ingest_project("raw/mixed.csv");
    let mut bytes = format!("{HEADER}{ROW}").into_bytes();
    bytes.extend_from_slice(b"CN201810000009.0,2018-03-01,\xff\xfe,G06F 1/00,x,y,310027,33,x\n");
    std::fs::create_dir_all(p.path().join("raw")).unwrap();
    std::fs::write(p.path().join("raw/mixed.csv"), bytes).unwrap();
    let out = p.repro(&["run"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(
        out.stderr.contains("line 3 (byte 229) is not UTF-8"),
        "{}",
        out.stderr
    );
    snapshot_settings().bind(|| insta::assert_snapshot!("ingest_mixed_encodings", out.snapshot()));
}

/// A NUL after a header printed as "no column `申请号`" beside "columns found: `申请号`".
#[test]
fn a_control_character_in_a_header_is_shown() {
    let p = ingest_project("raw/nul.csv");
    p.write(
        "raw/nul.csv",
        &format!("{}{ROW}", HEADER.replacen(',', "\0,", 1)),
    );
    let out = p.repro(&["run"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(out.stderr.contains("`申请号\\u{0}`"), "{}", out.stderr);
    snapshot_settings().bind(|| insta::assert_snapshot!("ingest_nul_in_header", out.snapshot()));
}

fn write_parquet(p: &Project, rel: &str, mut df: DataFrame) {
    let path = p.path().join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    ParquetWriter::new(File::create(path).unwrap())
        .finish(&mut df)
        .unwrap();
}

fn list_column(n: usize) -> Column {
    let lists: Vec<Series> = (0..n)
        .map(|i| Series::new("".into(), [i as i64, 1]))
        .collect();
    Column::new("tags".into(), lists)
}

/// A Parquet column with no text form (a list) made ingest fail without naming it.
#[test]
fn a_parquet_column_ingest_cannot_read_is_named() {
    let p = ingest_project("raw/list.parquet");
    let df = DataFrame::new(
        1,
        vec![
            Column::new("申请号".into(), ["CN201610000004.9"]),
            list_column(1),
        ],
    )
    .unwrap();
    write_parquet(&p, "raw/list.parquet", df);
    let out = p.repro(&["run"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(
        out.stderr.contains("column `tags` of type `list[i64]`"),
        "{}",
        out.stderr
    );
}

/// `repro fit` reads only the model's columns: an unrelated list column is no obstacle.
#[test]
fn fit_reads_only_the_models_columns() {
    let p = Project::new();
    let df = DataFrame::new(
        5,
        vec![
            Column::new("y".into(), [1.0, 2.0, 2.5, 4.0, 5.5]),
            Column::new("x".into(), [1.0, 2.0, 3.0, 4.0, 5.0]),
            list_column(5),
        ],
    )
    .unwrap();
    write_parquet(&p, "d.parquet", df);
    let out = p.repro(&["fit", "--data", "d.parquet", "--formula", "y ~ x"]);
    out.ok();
    assert!(out.stdout.contains("observations: 5"), "{}", out.stdout);
}

/// Messages of `repro fit` on awkward data, together.
#[test]
fn fit_messages_name_the_real_problem() {
    let p = Project::new();
    std::fs::create_dir_all(p.path().join("folder.csv")).unwrap();
    p.write("one.csv", "y,x\n1,2\n")
        .write("ragged.csv", "y,x\n1,2\n2,3,4\n3,5\n")
        .write(
            "huge.csv",
            "y,x,z\n1,1e200,1\n2,2e200,3\n3,-1e200,2\n4,1e199,5\n5,3e200,1\n",
        );
    let cases: &[&[&str]] = &[
        &["fit", "--data", "folder.csv", "--formula", "y ~ x"],
        &[
            "fit",
            "--data",
            "one.csv",
            "--formula",
            "y ~ x",
            "--quantile",
            "0.5",
        ],
        &["fit", "--data", "ragged.csv", "--formula", "y ~ x"],
        &["fit", "--data", "huge.csv", "--formula", "y ~ x + z"],
    ];
    let mut seen = String::new();
    for args in cases {
        let out = p.repro(args);
        seen.push_str(&format!("$ repro {}\n{}\n", args.join(" "), out.snapshot()));
    }
    assert!(seen.contains("it is a folder, not a file"), "{seen}");
    assert!(
        seen.contains("too few observations: 1 for 2 parameters"),
        "{seen}"
    );
    assert!(!seen.contains("singular"), "{seen}");
    assert!(!seen.contains("truncate_ragged_lines"), "{seen}");
    assert!(
        seen.contains("variable `x` dropped: its values are too large"),
        "{seen}"
    );
    assert!(!seen.contains("no variation"), "{seen}");
    snapshot_settings().bind(|| insta::assert_snapshot!("fit_awkward_data", seen));
}

/// Every kind of damage to a lock is the same error: exit 2, the lock named, a hint.
#[test]
fn a_damaged_lock_is_always_exit_2_naming_it() {
    let damages: &[&[u8]] = &[
        b"",
        b"{",
        b"\xff\xfe not text",
        b"[1, 2]",
        b"{\"format\": 1, \"engine\": \"repro 0.1.0\", \"stages\": {\"a\": {\"key\": 7}}}",
    ];
    for (i, bytes) in damages.iter().enumerate() {
        let p = Project::new();
        p.write(
            "pipeline.yaml",
            "stages:\n  a:\n    cmd: echo a > a.txt\n    outs: [a.txt]\n",
        );
        std::fs::write(p.path().join("repro.lock"), bytes).unwrap();
        for cmd in ["run", "status"] {
            let out = p.repro(&[cmd]);
            assert_eq!(out.code, 2, "damage {i}, {cmd}:\n{}", out.snapshot());
            assert!(
                out.stderr
                    .contains("error: the lock file `repro.lock` is damaged")
                    || out.stderr.contains("repro.lock` is damaged"),
                "damage {i}, {cmd}:\n{}",
                out.stderr
            );
            assert!(
                out.stderr.contains("hint: restore it from version control"),
                "damage {i}, {cmd}:\n{}",
                out.stderr
            );
        }
    }
}

/// A pipeline of 50,000 stages loads (it broke the YAML reader's default budget with "budget
/// breached: Nodes"); a document nested past the depth limit gets a message saying so.
#[test]
fn a_large_pipeline_loads_and_a_deep_one_is_explained() {
    let p = Project::new();
    let mut text = String::from("stages:\n");
    for i in 0..50_000 {
        let dep = if i == 0 {
            "in.txt".to_string()
        } else {
            format!("out/s{}.txt", i - 1)
        };
        text.push_str(&format!(
            "  s{i}:\n    cmd: cat {dep} > out/s{i}.txt\n    deps:\n    - {dep}\n    outs:\n    - out/s{i}.txt\n"
        ));
    }
    p.write("pipeline.yaml", &text).write("in.txt", "x\n");
    let out = p.repro(&["dag", "--format", "mermaid"]);
    assert_eq!(out.code, 0, "{}", &out.stderr);

    let deep = format!("stages: {}{}\n", "[".repeat(100), "]".repeat(100));
    p.write("pipeline.yaml", &deep);
    let out = p.repro(&["status"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    assert!(
        out.stderr
            .contains("the YAML nests more than 64 levels deep, repro's limit; flatten it"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("budget breached"), "{}", out.stderr);
}
