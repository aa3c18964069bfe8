//! The README.md of a replication package, following the Social Science Data Editors' template
//! (<https://social-science-data-editors.github.io/template_README/>), filled from what repro
//! knows: sources, exhibits, seeds, the lock, the run log and the machine.
//!
//! Owns: the README's sections and wording, the facts about the machine (OS, CPU, memory, read
//! from `/proc` where available), and the checklist of sections ([`problems`]) that tests and
//! `repro lint` apply. Where the pipeline lacks a fact the README says `MISSING:` and why, so a
//! gap is visible rather than papered over. Deliberately does not own: choosing or writing the
//! package's files (`package`).

use std::fmt::Write as _;

use crate::replication::readme_facts as facts;
use crate::replication::readme_inputs::Facts;
use crate::replication::words::{bytes, quoted, seconds, MISSING};
use repro_engine::lock::LockFile;
use repro_engine::pipeline::{path_within, Action, Pipeline};
use repro_kind::diag::count;

/// The template's sections, in order; every one must be present and filled.
pub const SECTIONS: &[&str] = &[
    "## Overview",
    "## Data Availability and Provenance Statements",
    "### Statement about Rights",
    "### License for Data",
    "### Summary of Availability",
    "### Details on each Data Source",
    "## Dataset list",
    "## Computational requirements",
    "### Software Requirements",
    "### Controlled Randomness",
    "### Memory, Runtime and Storage Requirements",
    "## Description of programs/code",
    "### License for Code",
    "## Instructions to Replicators",
    "## List of tables and programs",
    "## References",
];

/// Files with these extensions are code or specs; other inputs count as data.
const CODE_EXTENSIONS: &[&str] = &[
    "sh", "r", "py", "do", "ado", "jl", "m", "sas", "sps", "yaml", "yml", "toml", "rmd", "qmd",
    "ipynb", "sql", "pl", "rb", "js",
];

pub fn is_code(path: &str) -> bool {
    path.rsplit_once('.')
        .is_some_and(|(_, ext)| CODE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

/// What every section of the README is written from.
struct View<'a> {
    p: &'a Pipeline,
    f: &'a Facts,
    /// The data files of the package that no stage writes, with those withheld from it.
    data: Vec<&'a String>,
    /// Seconds the last run of every stage took, summed.
    total_runtime: f64,
    /// Every output the lock records.
    outputs: Vec<&'a String>,
}

impl View<'_> {
    /// True when `path` is an output or inside one.
    fn is_output(&self, path: &str) -> bool {
        self.outputs.iter().any(|out| path_within(path, out))
    }
}

/// The README text, section by section in the template's order.
pub fn render(p: &Pipeline, lock: &LockFile, f: &Facts) -> String {
    let outputs: Vec<&String> = lock.stages.values().flat_map(|e| e.outs.keys()).collect();
    let is_output = |path: &str| outputs.iter().any(|out| path_within(path, out));
    let inputs: Vec<&String> = f
        .sizes
        .keys()
        .filter(|k| {
            !k.starts_with("repro-src/")
                && !k.starts_with("repro-bin/")
                && *k != crate::replication::files::MARKER
                && !is_output(k)
        })
        .collect();
    let data: Vec<&String> = inputs
        .iter()
        .copied()
        .filter(|k| !is_code(k) && **k != f.pipeline_file && !k.ends_with(".lock"))
        .chain(f.withheld.iter())
        .collect();
    let total_runtime: f64 = f.runtimes.values().sum();
    let v = View {
        p,
        f,
        data,
        total_runtime,
        outputs,
    };
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# Replication package: {}\n",
        p.title.as_deref().unwrap_or("untitled")
    );
    if p.title.is_none() {
        let _ = writeln!(
            o,
            "{MISSING} the pipeline declares no `title:` of the paper.\n"
        );
    }
    if p.authors.is_empty() {
        let _ = writeln!(
            o,
            "{MISSING} the pipeline declares no `authors:` of the paper.\n"
        );
    } else {
        let _ = writeln!(o, "Authors: {}.\n", p.authors.join(", "));
    }
    let _ = writeln!(
        o,
        "Written by `repro package` (repro {}) from `{}`. The sections follow the Social Science \
         Data Editors' template README (<https://social-science-data-editors.github.io/template_README/>).\n",
        f.repro_version, f.pipeline_file
    );
    write_overview(&mut o, &v);
    write_data_availability(&mut o, &v);
    write_dataset_list(&mut o, &v);
    write_computational_requirements(&mut o, &v);
    write_programs(&mut o, &v);
    facts::write_code_licence(&mut o, p);
    write_instructions(&mut o, &v);
    write_exhibits(&mut o, &v);
    write_references(&mut o, &v);
    o
}

/// `## Overview`.
fn write_overview(o: &mut String, v: &View<'_>) {
    let View {
        p,
        f,
        total_runtime,
        ..
    } = v;
    let _ = writeln!(o, "## Overview\n");
    let labels: Vec<String> = p.exhibits.iter().map(|e| e.label.clone()).collect();
    let _ = writeln!(
        o,
        "The code in this package rebuilds {} from {} in {} stages declared in `{}` and run by repro \
         (the binary that made this package is in `repro-bin/`, its source, with `Cargo.lock`, in \
         `repro-src/`). `sh run.sh` runs that binary (or builds repro from source where it does not run), \
         rebuilds every stage from scratch in a temporary folder and compares each output byte for byte \
         with the hashes recorded in `repro.lock`. The last run of every stage took {} in total.\n",
        count(labels.len(), "exhibit", "exhibits")
            + &if labels.is_empty() {
                String::new()
            } else {
                format!(" ({})", labels.join(", "))
            },
        count(p.sources.len(), "data source", "data sources"),
        p.stages.len(),
        f.pipeline_file,
        seconds(*total_runtime)
    );
}

/// `## Data availability`.
fn write_data_availability(o: &mut String, v: &View<'_>) {
    let View { p, f, .. } = v;
    let _ = writeln!(o, "## Data Availability and Provenance Statements\n");
    let not_provided: Vec<&str> = p
        .sources
        .iter()
        .filter(|s| !s.provided)
        .map(|s| s.name.as_str())
        .collect();
    if p.sources.is_empty() {
        let _ = writeln!(
            o,
            "{MISSING} the pipeline declares no `sources:`, so nothing states where the data come from.\n"
        );
    } else if not_provided.is_empty() {
        let _ = writeln!(
            o,
            "All data used are provided in this package, under the licences stated below.\n"
        );
    } else {
        let _ = writeln!(
            o,
            "Some data cannot be made available in this package: {}. The statement of each says how \
             to obtain them; place the files at the paths listed before running `./run.sh`.\n",
            quoted(&not_provided)
        );
    }
    facts::write_rights(o, p);
    let _ = writeln!(o, "### Details on each Data Source\n");
    if p.sources.is_empty() {
        let _ = writeln!(o, "{MISSING} no data source is declared.\n");
    }
    for s in &p.sources {
        let _ = writeln!(o, "#### {}\n", s.name);
        let _ = writeln!(
            o,
            "- Citation: {}",
            s.citation
                .clone()
                .unwrap_or_else(|| format!("{MISSING} no `citation` declared"))
        );
        let _ = writeln!(
            o,
            "- Licence: {}",
            s.license
                .clone()
                .unwrap_or_else(|| format!("{MISSING} no `license` declared"))
        );
        let _ = writeln!(
            o,
            "- Access: {}",
            s.access.clone().unwrap_or_else(|| format!(
                "{MISSING} no `access` declared (how to obtain the data)"
            ))
        );
        let _ = writeln!(
            o,
            "- Provided in this package: {}",
            if s.provided { "yes" } else { "no" }
        );
        match (&s.statement, s.provided) {
            (Some(st), _) => {
                let _ = writeln!(o, "- Data availability statement: {st}");
            }
            (None, false) => {
                let _ = writeln!(
                    o,
                    "- Data availability statement: {MISSING} the data are not provided and no `statement` says why or how to get them"
                );
            }
            (None, true) => {}
        }
        let files: Vec<String> = s
            .files
            .iter()
            .map(|file| {
                let size: u64 = f
                    .sizes
                    .iter()
                    .filter(|(k, _)| path_within(k, file))
                    .map(|(_, v)| v)
                    .sum();
                if s.provided {
                    format!("`{file}` ({})", bytes(size))
                } else {
                    format!("`{file}` (not included)")
                }
            })
            .collect();
        let _ = writeln!(o, "- Files: {}\n", files.join(", "));
    }
}

/// `## Dataset list`.
fn write_dataset_list(o: &mut String, v: &View<'_>) {
    let View { p, f, data, .. } = v;
    let _ = writeln!(o, "## Dataset list\n");
    if data.is_empty() {
        let _ = writeln!(o, "{MISSING} the pipeline reads no data file.\n");
    } else {
        let _ = writeln!(o, "| Data file | Source | Provided | Size |");
        let _ = writeln!(o, "|---|---|---|---|");
        for d in data {
            let source = p
                .sources
                .iter()
                .find(|s| s.files.iter().any(|sf| path_within(d, sf)));
            let provided = !f.withheld.contains(d);
            let _ = writeln!(
                o,
                "| `{d}` | {} | {} | {} |",
                source.map_or("(no source declared)".to_string(), |s| s.name.clone()),
                if provided { "yes" } else { "no" },
                f.sizes.get(*d).map_or("-".to_string(), |b| bytes(*b))
            );
        }
        let _ = writeln!(o);
    }
    facts::write_derived(o, p, &v.outputs, &f.sizes);
}

/// `## Computational requirements`.
fn write_computational_requirements(o: &mut String, v: &View<'_>) {
    let View {
        p,
        f,
        data,
        total_runtime,
        ..
    } = v;
    let _ = writeln!(o, "## Computational requirements\n");
    let _ = writeln!(o, "### Software Requirements\n");
    let _ = writeln!(
        o,
        "- repro {} (source in `repro-src/`; `Cargo.lock` pins every Rust dependency)",
        f.repro_version
    );
    let _ = writeln!(
        o,
        "- the repro binary that made this package, `{}` (sha256 `{}`): built for `{}`, needs {}; `run.sh` uses it when it runs on the machine",
        crate::replication::runsh::BIN_PATH,
        f.shipped.sha256,
        f.shipped.target,
        f.shipped.libc.describe()
    );
    let _ = writeln!(
        o,
        "- otherwise Rust {} or newer to build it from `repro-src/`; this repro was built with `{}`",
        env!("CARGO_PKG_RUST_VERSION"),
        f.rustc_version
    );
    facts::write_network(o, f.vendored);
    let mut any_cmd = false;
    for s in &p.stages {
        if let Action::Cmd(cmd) = &s.action {
            any_cmd = true;
            let _ = writeln!(
                o,
                "- stage `{}` calls {} (the programs its command names; their versions are not recorded by repro)",
                s.name,
                quoted(&programs(cmd))
            );
        }
    }
    if !any_cmd {
        let _ = writeln!(
            o,
            "- every stage is a built-in repro kind: nothing else is needed"
        );
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "### Controlled Randomness\n");
    let seeded: Vec<(&str, Vec<u64>, &str)> = p
        .stages
        .iter()
        .filter_map(|s| {
            let seeds = s.seeds();
            let where_ = match s.action {
                Action::Cmd(_) => {
                    "`seed:` of the stage (the command sees `${seed}` and `REPRO_SEED`)"
                }
                Action::Builtin(_) => "the built-in kind's params or spec",
            };
            (!seeds.is_empty()).then_some((s.name.as_str(), seeds, where_))
        })
        .collect();
    if seeded.is_empty() {
        let _ = writeln!(
            o,
            "No stage declares a seed: no stage draws random numbers (`repro lint` checks the \
             scripts of command stages for unseeded random calls).\n"
        );
    } else {
        let _ = writeln!(o, "Every random draw comes from a declared seed:\n");
        let _ = writeln!(o, "| Stage | Seed | Declared in |");
        let _ = writeln!(o, "|---|---|---|");
        for (name, seeds, where_) in seeded {
            let list: Vec<String> = seeds.iter().map(|s| s.to_string()).collect();
            let _ = writeln!(o, "| `{name}` | {} | {where_} |", list.join(", "));
        }
        let _ = writeln!(o);
    }
    let data_bytes: u64 = data.iter().filter_map(|d| f.sizes.get(*d)).sum();
    let out_bytes: u64 = f
        .sizes
        .iter()
        .filter(|(k, _)| v.is_output(k))
        .map(|(_, v)| v)
        .sum();
    facts::write_resources(
        o,
        p,
        f,
        &facts::Storage {
            data: data_bytes,
            outputs: out_bytes,
            package: f.sizes.values().sum(),
        },
        *total_runtime,
    );
}

/// `## Programs`.
fn write_programs(o: &mut String, v: &View<'_>) {
    let View { p, f, .. } = v;
    let _ = writeln!(o, "## Description of programs/code\n");
    let _ = writeln!(
        o,
        "`{}` declares the stages; repro runs each after the stages it needs.\n",
        f.pipeline_file
    );
    let _ = writeln!(o, "| Stage | Runs | Reads | Writes | Description |");
    let _ = writeln!(o, "|---|---|---|---|---|");
    for s in &p.stages {
        let runs = match &s.action {
            Action::Cmd(c) => format!("`{}`", c.replace('|', "\\|")),
            Action::Builtin(b) => format!("built-in `{}`", kind_name(&b.definition())),
        };
        let _ = writeln!(
            o,
            "| `{}` | {runs} | {} | {} | {} |",
            s.name,
            code_list(&s.deps),
            code_list(&s.outs),
            s.desc.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(o);
}

/// `## Instructions`.
fn write_instructions(o: &mut String, v: &View<'_>) {
    let View { f, .. } = v;
    let _ = writeln!(o, "## Instructions to Replicators\n");
    let _ = writeln!(
        o,
        "1. Install the programs listed under Software Requirements. Rust {} or newer \
         (<https://rustup.rs>) is needed only where the shipped binary does not run.",
        env!("CARGO_PKG_RUST_VERSION")
    );
    let mut step = 2;
    if !f.withheld.is_empty() {
        let _ = writeln!(
            o,
            "{step}. Obtain the data that are not provided (see Data Availability) and place them at {}.",
            quoted(&f.withheld.iter().map(String::as_str).collect::<Vec<_>>())
        );
        step += 1;
    }
    let build = if f.vendored {
        "`cargo build --release --locked --offline`, from the crates vendored in `repro-src/vendor/`, with no network"
    } else {
        "`cargo build --release --locked`, which downloads the crates from crates.io: this package was made with `--no-vendor`"
    };
    let _ = writeln!(
        o,
        "{step}. Run `sh run.sh`. It uses the shipped `{bin}` when its sha256 matches and it runs on \
         the machine, and otherwise (or with `sh run.sh --build`) builds repro from `repro-src/` ({build}). \
         Then it runs `repro verify .`, which checks `MANIFEST.sha256`, rebuilds every stage from scratch in a \
         temporary folder and compares every output with `repro.lock`. Exit code 0 means everything \
         reproduced byte for byte; otherwise it names each differing file and, for a table, the first \
         differing cell.",
        bin = crate::replication::runsh::BIN_PATH
    );
    let _ = writeln!(
        o,
        "{}. To rewrite the outputs in this folder instead: `{} -f {} run --force` (or \
         `repro-src/target/release/repro` after a build).\n",
        step + 1,
        crate::replication::runsh::BIN_PATH,
        crate::replication::shell::file_arg(&f.pipeline_file)
    );
}

/// `## Exhibits`.
fn write_exhibits(o: &mut String, v: &View<'_>) {
    let View { p, f, .. } = v;
    let _ = writeln!(o, "## List of tables and programs\n");
    facts::write_exhibits_statement(o, p);
    if p.exhibits.is_empty() {
        let _ = writeln!(
            o,
            "{MISSING} the pipeline declares no `exhibits:`, so no output is mapped to a table or figure.\n"
        );
    } else {
        let _ = writeln!(o, "| Exhibit | Output file | Stage | Program or spec |");
        let _ = writeln!(o, "|---|---|---|---|");
        for e in &p.exhibits {
            let stage = p.producer_of(&e.output).map(|i| &p.stages[i]);
            let code: Vec<String> = stage
                .map(|s| s.deps.iter().filter(|d| is_code(d)).cloned().collect())
                .unwrap_or_default();
            let code = if code.is_empty() {
                format!("params in `{}`", f.pipeline_file)
            } else {
                code_list(&code)
            };
            let _ = writeln!(
                o,
                "| {} | `{}` | `{}` | {code} |",
                e.label,
                e.output,
                stage.map_or("?", |s| s.name.as_str())
            );
        }
        let _ = writeln!(o);
    }
}

/// `## References`.
fn write_references(o: &mut String, v: &View<'_>) {
    let View { p, .. } = v;
    let _ = writeln!(o, "## References\n");
    let citations: Vec<&str> = p
        .sources
        .iter()
        .filter_map(|s| s.citation.as_deref())
        .collect();
    if citations.is_empty() {
        let _ = writeln!(o, "{MISSING} no data source declares a `citation`.");
    }
    for c in citations {
        let _ = writeln!(o, "- {c}");
    }
}

/// What the README lacks against the template: sections absent or empty, and `MISSING:` facts.
pub fn problems(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for section in SECTIONS {
        let Some(start) = lines.iter().position(|l| l.trim_end() == *section) else {
            out.push(format!(
                "section `{}` is missing",
                section.trim_start_matches('#').trim()
            ));
            continue;
        };
        let body: Vec<&str> = lines[start + 1..]
            .iter()
            .take_while(|l| !l.starts_with("## ") && !l.starts_with("### "))
            .filter(|l| !l.trim().is_empty())
            .copied()
            .collect();
        let name = section.trim_start_matches('#').trim();
        // A section with subsections may have an empty body of its own.
        let has_sub = lines
            .get(start + 1..)
            .and_then(|rest| rest.iter().find(|l| !l.trim().is_empty()))
            .is_some_and(|l| l.starts_with("### "));
        if body.is_empty() && !has_sub {
            out.push(format!("section `{name}` is empty"));
        }
        for l in body {
            if let Some(at) = l.find(MISSING) {
                out.push(format!(
                    "section `{name}`: {}",
                    l[at + MISSING.len()..].trim()
                ));
            }
        }
    }
    out
}

/// The programs a shell command names: the first word of each simple command.
pub fn programs(cmd: &str) -> Vec<&str> {
    let mut out: Vec<&str> = cmd
        .split(['\n', ';', '|', '&', '(', ')'])
        .filter_map(|part| {
            part.split_whitespace().find(|w| {
                !w.contains('=') && !matches!(*w, "then" | "do" | "else" | "if" | "exec" | "time")
            })
        })
        .filter(|w| !w.starts_with('>') && !w.starts_with('<') && !w.starts_with('$'))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn kind_name(definition: &str) -> String {
    serde_json::from_str::<serde_json::Value>(definition)
        .ok()
        .and_then(|v| v["kind"].as_str().map(str::to_string))
        .unwrap_or_else(|| "kind".into())
}

fn code_list(items: &[String]) -> String {
    let v: Vec<String> = items.iter().map(|i| format!("`{i}`")).collect();
    v.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_the_first_words_of_simple_commands() {
        assert_eq!(
            programs("FOO=1 Rscript a.R && python3 b.py | sort > out.txt; sh c.sh"),
            ["Rscript", "python3", "sh", "sort"]
        );
    }

    #[test]
    fn the_checklist_finds_missing_and_empty_sections() {
        let mut full = String::new();
        for s in SECTIONS {
            full.push_str(&format!("{s}\n\ntext\n\n"));
        }
        assert!(problems(&full).is_empty(), "{:?}", problems(&full));
        let gap = full.replace(
            "## References\n\ntext",
            "## References\n\nMISSING: no citation",
        );
        assert_eq!(problems(&gap), ["section `References`: no citation"]);
        let empty = full.replace("## Dataset list\n\ntext\n\n", "## Dataset list\n\n");
        assert_eq!(problems(&empty), ["section `Dataset list` is empty"]);
        let absent = full.replace("## Overview\n\ntext\n\n", "");
        assert_eq!(problems(&absent), ["section `Overview` is missing"]);
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
    }
}
