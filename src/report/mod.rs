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

use crate::diff::Changes;

use repro_kind::diag::count;

mod dag;
mod exhibits;

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
    write_at(p, &p.root, rel)
}

/// Writes the report to `path` relative to `base` (an absolute `path` is taken as it is).
pub fn write_at(p: &Pipeline, base: &Path, path: &str) -> Result<(), Failure> {
    write_with(p, base, path, None)
}

/// [`write_at`] with a "What changed" section: what the run that just ended changed in the
/// results (`repro run` after a rerun).
pub fn write_with(
    p: &Pipeline,
    base: &Path,
    path: &str,
    changes: Option<&Changes>,
) -> Result<(), Failure> {
    let rel = path;
    let page = render(p, changes)?;
    repro_kind::write_output(base, rel, page.as_bytes()).map_err(|e| {
        Failure::stage(
            Diagnostic::new(format!("cannot write the report `{rel}`")).cause(e.to_string()),
        )
    })
}

/// The page.
pub fn render(p: &Pipeline, changes: Option<&Changes>) -> Result<String, Failure> {
    let lockfile = lock::read(&p.lock_path())?;
    let log = Store::new(&p.root).run_log();
    let (last, last_ran) = last_runs(&log);
    let tables = files_with_ext(&p.root.join("output/tables"), "html");
    let figures = files_with_ext(&p.root.join("output/figures"), "svg");
    let listed = exhibits::ordered(p, &tables, &figures);

    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let title = p.title.clone().unwrap_or_else(|| "repro report".into());
    let _ = writeln!(out, "<title>{}</title>\n<style>", html_escape(&title));
    out.push_str(CSS);
    if changes.is_some() {
        out.push_str(crate::diff::render::CSS);
        out.push('\n');
    }
    out.push_str("</style>\n</head>\n<body>\n");
    let _ = writeln!(out, "<h1>{}</h1>", html_escape(&title));
    if !p.authors.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"authors\">{}</p>",
            html_escape(&p.authors.join(", "))
        );
    }
    let _ = writeln!(
        out,
        "<p>Pipeline <code>{}</code>: {}, {}, {}. {}. Written by {}.</p>",
        html_escape(&p.file.display().to_string()),
        count(p.stages.len(), "stage", "stages"),
        count(tables.len(), "table", "tables"),
        count(figures.len(), "figure", "figures"),
        html_escape(&run_line(&log)),
        html_escape(&lock::engine_version())
    );
    out.push_str("<nav>");
    if changes.is_some() {
        out.push_str("<a href=\"#changes\">What changed</a> · ");
    }
    out.push_str("<a href=\"#exhibits\">Exhibits</a> · <a href=\"#dag\">Stage graph</a> · <a href=\"#provenance\">Provenance</a></nav>\n");
    if let Some(c) = changes {
        out.push_str("<h2 id=\"changes\">What changed</h2>\n");
        out.push_str(&crate::diff::render::html(c));
    }

    out.push_str("<h2 id=\"exhibits\">Exhibits</h2>\n");
    if listed.is_empty() {
        out.push_str("<p class=\"none\">No tables in <code>output/tables/</code> and no figures in <code>output/figures/</code>.</p>\n");
    }
    for e in &listed {
        out.push_str(&exhibits::render(p, e));
    }

    out.push_str("<h2 id=\"dag\">Stage graph</h2>\n");
    out.push_str(&dag::svg(p));
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
h3.exhibit{margin-bottom:.2rem}.authors{font-size:1.1em;margin-top:-.5rem}
svg.dag{width:100%;height:auto;display:block}
table.prov{table-layout:fixed;width:100%}table.prov th{width:9rem}
table.prov th,table.prov td{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top;font-size:.85em;overflow-wrap:anywhere}
table.prov code{white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-all}
pre{white-space:pre-wrap;overflow-wrap:anywhere}
.ran{color:#155724}.restored{color:#0c5460}.up-to-date{color:#555}.failed{color:#721c24}
.none{color:#777}pre.dag{background:#f6f6f6;padding:.5rem}
";

/// When the latest logged run started (UTC) and on which machine this page was written; the
/// report is the only output that names either.
fn run_line(log: &[serde_json::Value]) -> String {
    let latest = log
        .iter()
        .filter_map(|l| l.get("run_started").and_then(serde_json::Value::as_f64))
        .fold(f64::NEG_INFINITY, f64::max);
    let when = if latest.is_finite() && latest >= 0.0 {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(latest as u64);
        format!(
            "Latest logged run {} UTC",
            humantime::format_rfc3339_seconds(t)
                .to_string()
                .trim_end_matches('Z')
                .replace('T', " ")
        )
    } else {
        "No run logged".to_string()
    };
    let m = crate::replication::readme_inputs::this_machine();
    format!("{when}; machine: {}", m.describe())
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
