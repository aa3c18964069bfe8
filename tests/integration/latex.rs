//! Every table compiled the way a journal compiles it: each `.tex` of the default pipeline, and an
//! 8-column table with the longest labels and widest numbers, `\input` into an A4 article with
//! 2.5 cm margins at 10, 11 and 12 pt, with real pdflatex (TeX Live). Fails on any LaTeX error and
//! on any overfull box: the tables must fit the text block by construction, without resizing.
//! Skips with a message when pdflatex is absent, except under `REPRO_REQUIRE_SERVICES=1`.

use std::path::Path;
use std::process::Command;

use repro_tables::table::{Cell, Group, Row, Spanner, Table};

/// Whether pdflatex runs; absent is a skip, or a failure when CI requires the services.
fn have_pdflatex() -> bool {
    let ok = Command::new("pdflatex")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("REPRO_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "pdflatex is required (REPRO_REQUIRE_SERVICES=1): apt-get install texlive-latex-base texlive-latex-recommended texlive-latex-extra texlive-science"
        );
        eprintln!("skipped: pdflatex not found (apt-get install texlive-latex-base texlive-latex-recommended texlive-latex-extra texlive-science)");
    }
    ok
}

/// The packages a table's header comment names (`% Needs: \usepackage{a,b}`).
fn needed_packages(tex: &str) -> String {
    tex.lines()
        .find_map(|l| l.strip_prefix("% Needs: \\usepackage{"))
        .and_then(|rest| rest.split_once('}'))
        .map(|(p, _)| p.to_string())
        .unwrap_or_else(|| panic!("no `% Needs:` header comment in\n{tex}"))
}

/// Compiles `tex` in an A4 article at `pt` points; returns the log. Panics on an error or an
/// overfull box, with the offending lines.
fn compile(dir: &Path, name: &str, tex: &str, pt: u32) -> String {
    std::fs::write(dir.join(format!("{name}.tex")), tex).unwrap();
    let doc = format!("{name}-{pt}pt");
    std::fs::write(
        dir.join(format!("{doc}.tex")),
        format!(
            "\\documentclass[{pt}pt]{{article}}\n\\usepackage[a4paper,margin=2.5cm]{{geometry}}\n\\usepackage{{{}}}\n\\begin{{document}}\n\\input{{{name}}}\n\\end{{document}}\n",
            needed_packages(tex)
        ),
    )
    .unwrap();
    let out = Command::new("pdflatex")
        .args(["-halt-on-error", "-interaction=nonstopmode", &doc])
        .current_dir(dir)
        .output()
        .expect("run pdflatex");
    let log = std::fs::read_to_string(dir.join(format!("{doc}.log"))).unwrap_or_default();
    assert!(
        out.status.success(),
        "pdflatex failed on `{name}` at {pt}pt:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let overfull: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("Overfull \\hbox") || l.starts_with("Overfull \\vbox"))
        .collect();
    assert!(
        overfull.is_empty(),
        "`{name}` does not fit an A4 page at {pt}pt:\n{}\n{tex}",
        overfull.join("\n")
    );
    log
}

#[test]
fn every_table_of_the_default_pipeline_fits_an_a4_page() {
    if !have_pdflatex() {
        return;
    }
    let p = crate::study::default_pipeline();
    // Everything up to the tables; the report and figures are not needed here.
    p.repro(&["run"]).ok();
    let dir = tempfile::tempdir().unwrap();
    let mut compiled = 0;
    for entry in std::fs::read_dir(p.path().join("output/tables")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "tex") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let tex = std::fs::read_to_string(&path).unwrap();
        for pt in [10, 11, 12] {
            compile(dir.path(), &name, &tex, pt);
        }
        compiled += 1;
    }
    assert_eq!(compiled, 8, "the default pipeline has eight tables");
}

/// Eight model columns with long labels, groups, a merged dependent variable, estimates such as
/// `-0.123***` (`int_digits` integer digits: `-12.345***` with two), and notes full of formula
/// characters.
fn eight_columns(int_digits: usize) -> Table {
    let labels = [
        "Eastern",
        "Central/western",
        "Coastal",
        "Inland",
        "Tertiary-dominated",
        "Other",
        "In agglomeration",
        "Outside",
    ];
    let groups = ["Region", "Location", "Industry", "Urban agglomeration"];
    let lead = &"123456789"[..int_digits];
    let lead = if int_digits == 1 { "0" } else { lead };
    let est = |k: usize| Cell {
        text: format!("-{lead}.{:03}", 100 + k),
        stars: "***",
    };
    let se = |k: usize| Cell::text(format!("(0.{:03})", 200 + k));
    Table {
        title: "Heterogeneity & more_stuff".into(),
        groups: groups
            .iter()
            .map(|g| Group {
                label: g.to_string(),
                span: 2,
            })
            .collect(),
        spanners: vec![Spanner {
            label: "Dependent variable".into(),
            groups: vec![Group {
                label: "Economic gap between the city and its province".into(),
                span: 8,
            }],
        }],
        columns: labels.iter().map(|l| l.to_string()).collect(),
        numbered: true,
        sections: vec![
            vec![
                Row {
                    label: "Collaborative innovation (co-applied patents per 10,000 people)".into(),
                    cells: (0..8).map(est).collect(),
                },
                Row {
                    label: String::new(),
                    cells: (0..8).map(se).collect(),
                },
            ],
            vec![
                Row {
                    label: "City FE".into(),
                    cells: vec![Cell::text("Yes"); 8],
                },
                Row {
                    label: "Province x year FE".into(),
                    cells: vec![Cell::text("No"); 8],
                },
            ],
            vec![
                Row {
                    label: "Observations".into(),
                    cells: vec![Cell::text("123,456"); 8],
                },
                Row {
                    label: "Within R-squared".into(),
                    cells: vec![Cell::text("0.123"); 8],
                },
                Row {
                    label: "Difference, p-value".into(),
                    cells: (0..8)
                        .map(|k| Cell::text(if k % 2 == 1 { "<0.001" } else { "" }))
                        .collect(),
                },
            ],
        ],
        notes: vec![
            "Model: gap ~ collab + indstr + gov + open + fin + hum + dens + infra + info | city + province^year; 50% of ~ | _ ^ & # $ { } \\ as written.".into(),
            "Standard errors in parentheses, clustered by city. * p<0.1, ** p<0.05, *** p<0.01".into(),
        ],
        caption: Some("Heterogeneity: split samples & a test of the difference".into()),
        label: Some("tab:heterogeneity".into()),
    }
}

#[test]
fn an_eight_column_table_with_long_labels_fits_an_a4_page() {
    if !have_pdflatex() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tex = repro_tables::latex::to_latex(&eight_columns(1));
    for pt in [10, 11, 12] {
        compile(dir.path(), "eight", &tex, pt);
    }
}

/// Two integer digits (`-12.345***`) in all eight columns: the widest numbers a study table
/// usually holds; and three (`-123.456***`). Two overflowed by 15 pt at 11 and 12 pt before the
/// padding and stub width were derived from the widest cells.
#[test]
fn an_eight_column_table_with_two_integer_digits_fits_an_a4_page() {
    if !have_pdflatex() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (digits, widest) in [(2, "-12.100"), (3, "-123.100")] {
        let tex = repro_tables::latex::to_latex(&eight_columns(digits));
        assert!(
            tex.contains(&format!("{widest}\\textsuperscript{{***}}")),
            "{tex}"
        );
        for pt in [10, 11, 12] {
            compile(dir.path(), &format!("eight{digits}"), &tex, pt);
        }
    }
}
