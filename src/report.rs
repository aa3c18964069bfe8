//! `repro report`: one self-contained HTML page with the study's tables, figures, the stage
//! graph and per-stage provenance.
//!
//! Owns: assembling the page (inline CSS, the HTML table fragments of `output/tables/`, the SVG
//! figures of `output/figures/` inlined, the DAG drawn as an inline SVG, and for every stage its
//! key, inputs with hashes, params, outputs, and what the last run did with it and how long it
//! took), and writing it atomically. Deliberately does not own: producing tables or figures (the
//! kinds do), the lock format (`lock`) or the run log (`store`). The page links to nothing outside
//! itself, so it can be mailed or archived as one file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use repro_engine::lock::{self, LockFile};
use repro_engine::pipeline::{Action, Pipeline};
use repro_engine::store::Store;
use repro_kind::diag::{Diagnostic, Failure};
use repro_tables::table::html_escape;

/// The default place of the report when the pipeline names none.
pub const DEFAULT_REPORT: &str = "output/report.html";

/// What the last run did with one stage.
#[derive(Debug, Clone, PartialEq)]
struct LastRun {
    outcome: String,
    seconds: f64,
}

/// Writes the report to `rel` (relative to the pipeline's folder).
pub fn write(p: &Pipeline, rel: &str) -> Result<(), Failure> {
    let page = render(p)?;
    repro_kind::write_output(&p.root, rel, page.as_bytes()).map_err(|e| {
        Failure::stage(
            Diagnostic::new(format!("cannot write the report `{rel}`")).cause(e.to_string()),
        )
    })
}

/// The page.
pub fn render(p: &Pipeline) -> Result<String, Failure> {
    let lockfile = lock::read(&p.lock_path())?;
    let log = Store::new(&p.root).run_log();
    let (last, last_ran) = last_runs(&log);
    let tables = files_with_ext(&p.root.join("output/tables"), "html");
    let figures = files_with_ext(&p.root.join("output/figures"), "svg");

    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<title>repro report</title>\n<style>\n");
    out.push_str(CSS);
    out.push_str("</style>\n</head>\n<body>\n");
    let _ = writeln!(
        out,
        "<h1>Report</h1>\n<p>Pipeline <code>{}</code>: {} stages, {} tables, {} figures. Written by {}.</p>",
        html_escape(&p.file.display().to_string()),
        p.stages.len(),
        tables.len(),
        figures.len(),
        html_escape(&lock::engine_version())
    );
    out.push_str("<nav><a href=\"#tables\">Tables</a> · <a href=\"#figures\">Figures</a> · <a href=\"#dag\">Stage graph</a> · <a href=\"#provenance\">Provenance</a></nav>\n");

    out.push_str("<h2 id=\"tables\">Tables</h2>\n");
    if tables.is_empty() {
        out.push_str("<p class=\"none\">No tables in <code>output/tables/</code>.</p>\n");
    }
    for name in &tables {
        let rel = format!("output/tables/{name}");
        let text = std::fs::read_to_string(p.root.join(&rel)).unwrap_or_default();
        let _ = writeln!(
            out,
            "<section class=\"table\" id=\"table-{}\">\n<p class=\"file\">{}</p>\n{}</section>",
            html_escape(stem(name)),
            html_escape(&rel),
            text
        );
    }

    out.push_str("<h2 id=\"figures\">Figures</h2>\n");
    if figures.is_empty() {
        out.push_str("<p class=\"none\">No figures in <code>output/figures/</code>.</p>\n");
    }
    for name in &figures {
        let rel = format!("output/figures/{name}");
        let text = std::fs::read_to_string(p.root.join(&rel)).unwrap_or_default();
        let _ = writeln!(
            out,
            "<figure id=\"figure-{}\">\n{}\n<figcaption>{}</figcaption>\n</figure>",
            html_escape(stem(name)),
            strip_xml_prolog(&text),
            html_escape(&rel)
        );
    }

    out.push_str("<h2 id=\"dag\">Stage graph</h2>\n");
    out.push_str(&dag_svg(p));
    let _ = writeln!(
        out,
        "<pre class=\"dag\">{}</pre>",
        html_escape(&repro_engine::status::render_dag(
            p,
            repro_engine::status::DagFormat::Text
        ))
    );

    out.push_str("<h2 id=\"provenance\">Provenance</h2>\n");
    out.push_str(&provenance(p, &lockfile, &last, &last_ran));
    out.push_str("</body>\n</html>\n");
    Ok(out)
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.4}
h1,h2,h3{font-weight:600}h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2.5rem}
nav a{color:#245}code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}
table{border-collapse:collapse;margin:.5rem 0}
table.repro-table{border-top:2px solid #222;border-bottom:2px solid #222}
table.repro-table caption{font-weight:600;text-align:left;padding:.3rem 0}
table.repro-table th,table.repro-table td{padding:.15rem .7rem;text-align:center}
table.repro-table th[scope=row]{text-align:left;font-weight:normal}
table.repro-table thead tr:last-child th{border-bottom:1px solid #222}
table.repro-table tbody{border-top:1px solid #888}
table.repro-table tfoot td{text-align:left;font-size:.85em;color:#444}
.file{font-size:.8em;color:#666;margin:.2rem 0}
figure{margin:1rem 0}figure svg{max-width:100%;height:auto}figcaption{font-size:.8em;color:#666}
table.prov th,table.prov td{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top;font-size:.85em}
.ran{color:#155724}.restored{color:#0c5460}.up-to-date{color:#555}.failed{color:#721c24}
.none{color:#777}pre.dag{background:#f6f6f6;padding:.5rem}
";

fn stem(name: &str) -> &str {
    name.rsplit_once('.').map_or(name, |(s, _)| s)
}

/// File names in `dir` ending in `.ext`, sorted (missing folder: none).
fn files_with_ext(dir: &Path, ext: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let suffix = format!(".{ext}");
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.ends_with(&suffix) && !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

fn strip_xml_prolog(svg: &str) -> &str {
    let t = svg.trim_start();
    if t.starts_with("<?xml") {
        if let Some(end) = t.find("?>") {
            return t[end + 2..].trim_start();
        }
    }
    t
}

/// From the run log: what the most recent run did per stage, and the last time each stage ran.
fn last_runs(log: &[serde_json::Value]) -> (BTreeMap<String, LastRun>, BTreeMap<String, LastRun>) {
    let latest = log
        .iter()
        .filter_map(|l| l.get("run_started").and_then(serde_json::Value::as_f64))
        .fold(f64::NEG_INFINITY, f64::max);
    let mut last = BTreeMap::new();
    let mut ran = BTreeMap::new();
    for line in log {
        let (Some(stage), Some(outcome)) = (
            line.get("stage").and_then(serde_json::Value::as_str),
            line.get("outcome").and_then(serde_json::Value::as_str),
        ) else {
            continue;
        };
        let entry = LastRun {
            outcome: outcome.to_string(),
            seconds: line
                .get("seconds")
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(0.0),
        };
        if outcome == "ran" {
            ran.insert(stage.to_string(), entry.clone());
        }
        if line.get("run_started").and_then(serde_json::Value::as_f64) == Some(latest) {
            last.insert(stage.to_string(), entry);
        }
    }
    (last, ran)
}

fn provenance(
    p: &Pipeline,
    lockfile: &LockFile,
    last: &BTreeMap<String, LastRun>,
    last_ran: &BTreeMap<String, LastRun>,
) -> String {
    let mut out = String::from(
        "<p>From <code>repro.lock</code> (keys, hashes, params) and the run log <code>cache/runs.jsonl</code> (what ran, for how long). The run log records the stages a run rebuilt or restored; a run in which every stage was up to date leaves no entry, so \"latest logged run\" is the latest run that changed something.</p>\n",
    );
    for s in &p.stages {
        let (class, what) = match last.get(&s.name) {
            Some(l) if l.outcome == "ran" => (
                "ran",
                format!("ran in the latest logged run ({:.2} s)", l.seconds),
            ),
            Some(l) if l.outcome == "restored" => (
                "restored",
                "restored from the cache in the latest logged run".to_string(),
            ),
            Some(l) => ("failed", format!("{} in the latest logged run", l.outcome)),
            None => (
                "up-to-date",
                "up to date in the latest logged run (not rebuilt)".to_string(),
            ),
        };
        let _ = writeln!(
            out,
            "<h3 id=\"stage-{0}\">{0} <span class=\"{1}\">{2}</span></h3>",
            html_escape(&s.name),
            class,
            html_escape(&what)
        );
        out.push_str("<table class=\"prov\">\n");
        let action = match &s.action {
            Action::Cmd(c) => format!("<code>{}</code>", html_escape(c)),
            Action::Builtin(b) => format!("built-in <code>{}</code>", html_escape(&b.definition())),
        };
        let _ = writeln!(out, "<tr><th>action</th><td>{action}</td></tr>");
        let entry = lockfile.stages.get(&s.name);
        match entry {
            Some(e) => {
                let _ = writeln!(
                    out,
                    "<tr><th>key</th><td><code>{}</code></td></tr>",
                    html_escape(&e.key)
                );
            }
            None => out.push_str(
                "<tr><th>key</th><td class=\"none\">not in the lock file (never built)</td></tr>\n",
            ),
        }
        if let Some(r) = last_ran.get(&s.name) {
            let _ = writeln!(
                out,
                "<tr><th>last build took</th><td>{:.2} s</td></tr>",
                r.seconds
            );
        }
        let params: Vec<String> = s
            .params
            .iter()
            .map(|(k, v)| {
                format!(
                    "<code>{}</code> = <code>{}</code>",
                    html_escape(k),
                    html_escape(&v.canonical())
                )
            })
            .collect();
        if !params.is_empty() {
            let _ = writeln!(
                out,
                "<tr><th>params</th><td>{}</td></tr>",
                params.join("<br>")
            );
        }
        let hashes = |paths: &[String], get: &dyn Fn(&str) -> Option<String>| -> String {
            paths
                .iter()
                .map(|d| {
                    let h = get(d).unwrap_or_else(|| "(not recorded)".to_string());
                    format!(
                        "<code>{}</code> <code class=\"hash\">{}</code>",
                        html_escape(d),
                        html_escape(&h)
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>")
        };
        if !s.deps.is_empty() {
            let _ = writeln!(
                out,
                "<tr><th>inputs</th><td>{}</td></tr>",
                hashes(&s.deps, &|d| entry.and_then(|e| e.deps.get(d).cloned()))
            );
        }
        if !s.outs.is_empty() {
            let _ = writeln!(
                out,
                "<tr><th>outputs</th><td>{}</td></tr>",
                hashes(&s.outs, &|o| entry
                    .and_then(|e| e.outs.get(o).map(|x| x.hash.clone())))
            );
        }
        out.push_str("</table>\n");
    }
    out
}

/// The stage graph as an inline SVG: columns by depth (longest path from a source), one box per
/// stage, an arrow per dependency.
fn dag_svg(p: &Pipeline) -> String {
    const W: usize = 170;
    const H: usize = 28;
    const GAP_X: usize = 60;
    const GAP_Y: usize = 14;
    // Stages are in dependency order, so every upstream depth is known before its users'.
    let mut depth = vec![0usize; p.stages.len()];
    for (i, s) in p.stages.iter().enumerate() {
        depth[i] = s.upstream.iter().map(|&u| depth[u] + 1).max().unwrap_or(0);
    }
    let mut row = vec![0usize; p.stages.len()];
    let mut per_depth: BTreeMap<usize, usize> = BTreeMap::new();
    for (i, &d) in depth.iter().enumerate() {
        let slot = per_depth.entry(d).or_insert(0);
        row[i] = *slot;
        *slot += 1;
    }
    let cols = depth.iter().max().map_or(0, |d| d + 1);
    let rows = per_depth.values().max().copied().unwrap_or(0);
    let width = cols * (W + GAP_X) + 10;
    let height = rows * (H + GAP_Y) + 10;
    let pos = |i: usize| (5 + depth[i] * (W + GAP_X), 5 + row[i] * (H + GAP_Y));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"stage graph\">"
    );
    out.push_str("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0L10,5L0,10z\" fill=\"#555\"/></marker></defs>\n");
    for (i, s) in p.stages.iter().enumerate() {
        let (x2, y2) = pos(i);
        for &u in &s.upstream {
            let (x1, y1) = pos(u);
            let _ = writeln!(
                out,
                "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#555\" marker-end=\"url(#arrow)\"/>",
                x1 + W,
                y1 + H / 2,
                x2,
                y2 + H / 2
            );
        }
    }
    for (i, s) in p.stages.iter().enumerate() {
        let (x, y) = pos(i);
        let _ = writeln!(
            out,
            "<g><rect x=\"{x}\" y=\"{y}\" width=\"{W}\" height=\"{H}\" rx=\"4\" fill=\"#eef3f8\" stroke=\"#245\"/><text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\" font-family=\"sans-serif\">{}</text></g>",
            x + W / 2,
            y + H / 2 + 4,
            html_escape(&s.name)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_run_is_the_latest_run_started() {
        let log: Vec<serde_json::Value> = vec![
            serde_json::json!({"run_started": 1.0, "stage": "a", "outcome": "ran", "seconds": 2.0}),
            serde_json::json!({"run_started": 5.0, "stage": "b", "outcome": "restored", "seconds": 0.0}),
        ];
        let (last, ran) = last_runs(&log);
        assert_eq!(last.len(), 1);
        assert_eq!(last["b"].outcome, "restored");
        assert_eq!(ran["a"].seconds, 2.0);
    }

    #[test]
    fn prolog_is_stripped() {
        assert_eq!(
            strip_xml_prolog("<?xml version=\"1.0\"?>\n<svg/>"),
            "<svg/>"
        );
        assert_eq!(strip_xml_prolog("<svg/>"), "<svg/>");
    }
}
