//! Printing a [`Changes`]: plain text (the default), Markdown, an HTML fragment (also the
//! report's "what changed" section) and JSON.
//!
//! Owns: the wording and layout of `repro diff`'s output. Deliberately does not own: what
//! changed (`diff`).

use std::fmt::Write as _;

use repro_kind::diag::count;
use repro_tables::table::html_escape;
use serde_json::Value;

use super::{Cell, Changes, Model, Status};

/// One row of the flat listing every format shares: where, what, old, new, change, note.
struct Row {
    table: String,
    model: String,
    cell: String,
    old: String,
    new: String,
    change: String,
    note: &'static str,
}

fn rows(c: &Changes) -> Vec<Row> {
    let mut out = Vec::new();
    for t in &c.tables {
        for m in &t.models {
            out.extend(model_rows(&t.results, m));
        }
    }
    out
}

fn model_rows(table: &str, m: &Model) -> Vec<Row> {
    let row = |cell: String, old: String, new: String| Row {
        table: table.to_string(),
        model: m.model.clone(),
        cell,
        old,
        new,
        change: String::new(),
        note: "",
    };
    if m.status != Status::Changed {
        let n = m.nobs.map_or(String::new(), |n| n.to_string());
        let (old, new) = match m.status {
            Status::New => (String::new(), n),
            _ => (n, String::new()),
        };
        let mut r = row("N".into(), old, new);
        r.note = m.status.word();
        return vec![r];
    }
    m.cells
        .iter()
        .map(|c| Row {
            change: c
                .change_in_se
                .map_or(String::new(), |d| format!("{d:+.2} se")),
            note: if c.rounding { "rounding" } else { "" },
            ..row(cell_name(c), value(&c.old), value(&c.new))
        })
        .collect()
}

/// `lpcap: coefficient`, `N`, `clusters (state)`.
fn cell_name(c: &Cell) -> String {
    let field = match c.field.as_str() {
        "estimate" => "coefficient".to_string(),
        "std_error" => "std. error".to_string(),
        "nobs" => "N".to_string(),
        "r2" => "R-squared".to_string(),
        "r2_within" => "within R-squared".to_string(),
        "p_value" => "p-value".to_string(),
        other => match other.strip_prefix("clusters:") {
            Some(v) => format!("clusters ({v})"),
            None => other.to_string(),
        },
    };
    match &c.term {
        Some(t) => format!("{t}: {field}"),
        None => field,
    }
}

/// A cell value: floats with six decimals, stars as printed (`none` for no stars), absent as
/// `-`.
fn value(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "none".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => format!("{:.6}", n.as_f64().unwrap_or(f64::NAN)),
        other => other.to_string(),
    }
}

fn rows_text(old: &Option<usize>, new: &Option<usize>) -> String {
    let n = |x: &Option<usize>| x.map_or("-".to_string(), |n| n.to_string());
    format!("{} -> {} rows", n(old), n(new))
}

/// A changed file outside the model results, under its section.
struct Item {
    section: &'static str,
    path: String,
    stage: String,
    what: String,
}

/// Data files (with row counts), other files, then what could not be compared.
fn items(c: &Changes) -> Vec<Item> {
    let item = |section, path: &str, stage: &str, what: String| Item {
        section,
        path: path.to_string(),
        stage: stage.to_string(),
        what,
    };
    let data = c.data.iter().map(|d| {
        let what = format!(
            "{}, {}",
            d.status.word(),
            rows_text(&d.old_rows, &d.new_rows)
        );
        item("data files", &d.path, &d.stage, what)
    });
    let files = c
        .files
        .iter()
        .map(|f| item("other files", &f.path, &f.stage, f.status.word().into()));
    let missing = c
        .not_compared
        .iter()
        .map(|n| item("not compared", &n.path, &n.stage, n.reason.clone()));
    data.chain(files).chain(missing).collect()
}

/// The one-line summary.
fn summary(c: &Changes) -> String {
    if c.is_empty() {
        return format!("no changes between `{}` and `{}`", c.old, c.new);
    }
    let cells: usize = c
        .tables
        .iter()
        .flat_map(|t| &t.models)
        .map(|m| m.cells.len())
        .sum();
    let models: usize = c.tables.iter().map(|t| t.models.len()).sum();
    format!(
        "{} in {}, {}, {}, {} not compared",
        count(cells, "changed cell", "changed cells"),
        count(models, "result", "results"),
        count(c.data.len(), "data file", "data files"),
        count(c.files.len(), "other file", "other files"),
        count(c.not_compared.len(), "output", "outputs"),
    )
}

pub fn text(c: &Changes) -> String {
    let mut out = format!("comparing `{}` (old) with `{}` (new)\n", c.old, c.new);
    let rows = rows(c);
    let w = rows
        .iter()
        .map(|r| r.cell.chars().count())
        .max()
        .unwrap_or(0);
    for t in &c.tables {
        let _ = writeln!(out, "\ntable `{}` (stage `{}`)", t.results, t.stage);
        for m in &t.models {
            let what = match m.kind {
                "model" => "model",
                _ => "difference test",
            };
            let _ = writeln!(out, "  {what} `{}`: {}", m.model, m.status.word());
            for r in model_rows(&t.results, m) {
                let mut line = format!("    {:w$}  {} -> {}", r.cell, r.old, r.new);
                if !r.change.is_empty() {
                    let _ = write!(line, "  ({})", r.change);
                }
                if r.note == "rounding" {
                    line.push_str("  [rounding]");
                }
                let _ = writeln!(out, "{}", line.trim_end());
            }
        }
    }
    let mut section = "";
    for i in items(c) {
        if i.section != section {
            section = i.section;
            let _ = writeln!(out, "\n{section}");
        }
        let _ = writeln!(out, "  `{}` (stage `{}`): {}", i.path, i.stage, i.what);
    }
    let _ = writeln!(out, "\n{}", summary(c));
    out
}

/// A Markdown cell: pipes and backslashes escaped.
fn md(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('*', "\\*")
}

pub fn markdown(c: &Changes) -> String {
    let mut out = format!("## Changes: `{}` -> `{}`\n\n", c.old, c.new);
    let rows = rows(c);
    if !rows.is_empty() {
        out.push_str("| table | model | cell | old | new | change | note |\n");
        out.push_str("|:--|:--|:--|--:|--:|--:|:--|\n");
        for r in &rows {
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {} | {} | {} | {} | {} |",
                r.table,
                r.model,
                md(&r.cell),
                md(&r.old),
                md(&r.new),
                r.change,
                r.note
            );
        }
        out.push('\n');
    }
    let items = items(c);
    for i in &items {
        let _ = writeln!(
            out,
            "- {}: `{}` (stage `{}`): {}",
            i.section,
            i.path,
            i.stage,
            md(&i.what)
        );
    }
    if !items.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "{}", md(&summary(c)));
    out
}

/// An HTML fragment (a `<section>`), self-contained, for the report or a page of its own.
pub fn html(c: &Changes) -> String {
    let e = |s: &str| html_escape(s);
    let mut out = format!(
        "<section class=\"changes\">\n<p>Compared with {}: {}.</p>\n",
        e(&c.old),
        e(&summary(c))
    );
    let rows = rows(c);
    if !rows.is_empty() {
        out.push_str("<table class=\"changes\">\n<thead><tr><th>table</th><th>model</th><th>cell</th><th>old</th><th>new</th><th>change</th><th>note</th></tr></thead>\n<tbody>\n");
        for r in &rows {
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e(&r.table),
                e(&r.model),
                e(&r.cell),
                e(&r.old),
                e(&r.new),
                e(&r.change),
                r.note
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    let items: Vec<String> = items(c)
        .iter()
        .map(|i| {
            format!(
                "{}: <code>{}</code> (stage <code>{}</code>): {}",
                i.section,
                e(&i.path),
                e(&i.stage),
                e(&i.what)
            )
        })
        .collect();
    if !items.is_empty() {
        out.push_str("<ul>\n");
        for i in items {
            let _ = writeln!(out, "<li>{i}</li>");
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
    out
}

/// `repro diff --format html`: the fragment on a page of its own.
pub fn html_page(c: &Changes) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>repro diff</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>Changes</h1>\n{}</body>\n</html>\n",
        html(c)
    )
}

/// The style of the changes table, shared with the report.
pub const CSS: &str = "table.changes{border-collapse:collapse}table.changes th,table.changes td{padding:.15rem .6rem;border-bottom:1px solid #ddd;text-align:left}";

pub fn json(c: &Changes) -> String {
    let mut v = serde_json::to_value(c).unwrap_or_default();
    if let Value::Object(o) = &mut v {
        o.insert("changed".into(), Value::Bool(!c.is_empty()));
    }
    let mut out = serde_json::to_string_pretty(&v).unwrap_or_default();
    out.push('\n');
    out
}
