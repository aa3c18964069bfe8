//! The package README's checklist items of the Social Science Data Editors' template beyond the
//! sections `readme` writes itself: the Statement about Rights, the licences for data and code,
//! the summary of availability, the derived files and codebook, the network needs, runtime and
//! peak memory per stage with the template's time and storage buckets, the cost of building from
//! source, and whether all tables and figures are reproduced.
//!
//! Owns: those sections' wording and the buckets. Deliberately does not own: the other sections
//! or the checklist itself (`readme`), or measuring anything (the engine's run log, `package`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::replication::readme_inputs::Facts;
use crate::replication::words::{bytes, seconds, MISSING};
use repro_engine::pipeline::{path_within, Pipeline};

/// Building repro from the vendored source, as `bench/offline_build.sh` measured it (with no
/// network and an empty cargo home; docs/benchmarks.md). A measurement of this repro's build,
/// not of the machine the package is made on: the README says where it comes from.
pub struct BuildCost {
    pub minutes: f64,
    pub cores: usize,
    pub cpu: &'static str,
    /// Size of `repro-src/target/` afterwards.
    pub target_bytes: u64,
    /// Peak resident memory of the build (GNU time's "Maximum resident set size").
    pub peak_rss_bytes: u64,
}

/// `cargo build --release --locked --offline` of the vendored source under `unshare -n` with an
/// empty `CARGO_HOME` (docs/benchmarks.md §6): 2,479 s of CPU time (2,364 s user + 115 s system)
/// on 2 cores is 20.7 minutes of wall time on an idle machine (the measured wall time, 84 min,
/// was on a machine shared with other builds, at `nice -n 19`); GNU time's peak 1,636,688 KiB;
/// `du -sb target` 1,699,352,166 B.
pub const MEASURED_BUILD: BuildCost = BuildCost {
    minutes: 20.7,
    cores: 2,
    cpu: "AMD EPYC",
    target_bytes: 1_699_352_166,
    peak_rss_bytes: 1_636_688 * 1024,
};

/// The template's time buckets (upper bounds in seconds).
const TIME_BUCKETS: &[(f64, &str)] = &[
    (600.0, "<10 minutes"),
    (3600.0, "10-60 minutes"),
    (7200.0, "1-2 hours"),
    (28800.0, "2-8 hours"),
    (86400.0, "8-24 hours"),
    (259_200.0, "1-3 days"),
    (1_209_600.0, "3-14 days"),
    (f64::INFINITY, "> 14 days"),
];

/// The template's storage buckets (upper bounds in bytes).
const STORAGE_BUCKETS: &[(u64, &str)] = &[
    (25_000_000, "< 25 MBytes"),
    (250_000_000, "25 MB - 250 MB"),
    (2_000_000_000, "250 MB - 2 GB"),
    (25_000_000_000, "2 GB - 25 GB"),
    (250_000_000_000, "25 GB - 250 GB"),
    (u64::MAX, "> 250 GB"),
];

/// The template's bucket label for `value`.
fn bucket<T: PartialOrd + Copy>(buckets: &[(T, &'static str)], value: T) -> &'static str {
    buckets
        .iter()
        .find(|(limit, _)| value < *limit)
        .map_or(buckets[buckets.len() - 1].1, |(_, label)| label)
}

/// A checklist with the one bucket `chosen` ticked.
fn checklist(o: &mut String, labels: &[&str], chosen: &str) {
    for l in labels {
        let mark = if *l == chosen { "x" } else { " " };
        let _ = writeln!(o, "- [{mark}] {l}");
    }
    let _ = writeln!(o);
}

/// `### Statement about Rights`, `### License for Data`, `### Summary of Availability`.
pub fn write_rights(o: &mut String, p: &Pipeline) {
    let unlicensed: Vec<&str> = p
        .sources
        .iter()
        .filter(|s| s.license.is_none())
        .map(|s| s.name.as_str())
        .collect();
    let _ = writeln!(o, "### Statement about Rights\n");
    if p.sources.is_empty() {
        let _ = writeln!(o, "{MISSING} no data source is declared, so no right to use or redistribute data is stated.\n");
    } else if !unlicensed.is_empty() {
        let _ = writeln!(
            o,
            "{MISSING} no `license` is declared for {}, so the right to use and redistribute its data is not stated.\n",
            crate::replication::words::quoted(&unlicensed)
        );
    } else {
        let _ = writeln!(
            o,
            "- [x] I certify that the author(s) of the manuscript have legitimate access to and permission to use the data used in this manuscript.\n\
             - [x] I certify that the author(s) of the manuscript have documented permission to redistribute/publish the data contained within this replication package.\n\n\
             The authors state both by declaring, for every source in the pipeline, its licence and how it is obtained (below); only the \
             sources they mark as provided are in this package.\n"
        );
    }
    let _ = writeln!(o, "### License for Data\n");
    if p.sources.is_empty() {
        let _ = writeln!(o, "{MISSING} no data source is declared.\n");
    }
    for s in &p.sources {
        let _ = writeln!(
            o,
            "- `{}`: {}",
            s.name,
            s.license
                .clone()
                .unwrap_or_else(|| format!("{MISSING} no `license` declared"))
        );
    }
    if !p.sources.is_empty() {
        let _ = writeln!(
            o,
            "\nFiles the stages derive from these data carry the licences of the data they come from.\n"
        );
    }
    let _ = writeln!(o, "### Summary of Availability\n");
    let provided = p.sources.iter().filter(|s| s.provided).count();
    let labels = [
        "All data **are** publicly available.",
        "Some data **cannot be made** publicly available.",
        "**No data can be made** publicly available.",
    ];
    let chosen = if provided == p.sources.len() {
        labels[0]
    } else if provided > 0 {
        labels[1]
    } else {
        labels[2]
    };
    checklist(o, &labels, chosen);
}

/// The derived files of the dataset list: every output the lock records, with its stage, size
/// and role (a codebook, an exhibit).
pub fn write_derived(
    o: &mut String,
    p: &Pipeline,
    outputs: &[&String],
    sizes: &BTreeMap<String, u64>,
) {
    if outputs.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "Derived files: written by the stages, shipped in this package, rebuilt and compared by `run.sh`.\n"
    );
    let _ = writeln!(o, "| Derived file | Stage | Size | Role |");
    let _ = writeln!(o, "|---|---|---|---|");
    let mut sorted: Vec<&String> = outputs.to_vec();
    sorted.sort();
    for out in sorted {
        let size: u64 = sizes
            .iter()
            .filter(|(k, _)| path_within(k, out))
            .map(|(_, v)| v)
            .sum();
        let stage = p
            .producer_of(out)
            .map_or("?".to_string(), |i| format!("`{}`", p.stages[i].name));
        let name = out.rsplit('/').next().unwrap_or(out).to_ascii_lowercase();
        let role = if let Some(e) = p.exhibits.iter().find(|e| e.output == **out) {
            e.label.clone()
        } else if name.contains("codebook") {
            "codebook: defines every variable".to_string()
        } else {
            String::new()
        };
        let _ = writeln!(o, "| `{out}` | {stage} | {} | {role} |", bytes(size));
    }
    let _ = writeln!(o);
}

/// The network line of the software requirements.
pub fn write_network(o: &mut String, vendored: bool) {
    if vendored {
        let _ = writeln!(
            o,
            "- Network: none. `run.sh` and `repro verify` read only this folder, and building from source needs none \
             either: `repro-src/vendor/` holds every crate `Cargo.lock` names (`cargo vendor`), and \
             `repro-src/.cargo/config.toml` points cargo at it"
        );
    } else {
        let _ = writeln!(
            o,
            "- Network: none to run the shipped binary. This package was made with `repro package --no-vendor`: \
             building from source downloads the crates `Cargo.lock` names from crates.io"
        );
    }
}

/// What the storage bucket adds up.
pub struct Storage {
    pub data: u64,
    pub outputs: u64,
    pub package: u64,
}

/// `### Memory, Runtime and Storage Requirements`.
pub fn write_resources(o: &mut String, p: &Pipeline, f: &Facts, st: &Storage, total: f64) {
    let _ = writeln!(o, "### Memory, Runtime and Storage Requirements\n");
    let m = &f.machine;
    let machine = format!(
        "{}, {}, {} CPUs{}{}",
        m.os,
        m.arch,
        m.cpus,
        m.cpu_model
            .as_ref()
            .map_or(String::new(), |c| format!(" ({c})")),
        m.memory_bytes
            .map_or(String::new(), |b| format!(", {} memory", bytes(b)))
    );
    let b = &MEASURED_BUILD;
    let build_seconds = b.minutes * 60.0;
    let _ = writeln!(
        o,
        "Approximate time needed to reproduce the analyses on a standard desktop machine, with the shipped binary \
         (the stages' runtimes below, added up):\n"
    );
    let time_labels: Vec<&str> = TIME_BUCKETS.iter().map(|(_, l)| *l).collect();
    checklist(o, &time_labels, bucket(TIME_BUCKETS, total));
    let _ = writeln!(
        o,
        "Building repro from `repro-src/` first (only where the shipped binary does not run, or with \
         `sh run.sh --build`) adds {:.0} minutes on {} cores ({}): {} in all.\n",
        b.minutes,
        b.cores,
        b.cpu,
        bucket(TIME_BUCKETS, total + build_seconds)
    );
    // verify copies the inputs and rebuilds every output, which its store keeps a copy of.
    let need = st.package + 2 * st.outputs;
    let _ = writeln!(
        o,
        "Approximate storage space needed (the package, and the rebuilt outputs with repro's cache of them):\n"
    );
    let storage_labels: Vec<&str> = STORAGE_BUCKETS.iter().map(|(_, l)| *l).collect();
    checklist(o, &storage_labels, bucket(STORAGE_BUCKETS, need));
    let _ = writeln!(
        o,
        "Storage: data {}, outputs {}, the whole package {}; a build from source adds {} in \
         `repro-src/target/` and needs {} of memory at its peak.\n",
        bytes(st.data),
        bytes(st.outputs),
        bytes(st.package),
        bytes(b.target_bytes),
        bytes(b.peak_rss_bytes)
    );
    let _ = writeln!(
        o,
        "Measured on the machine that made this package: {machine}.\n"
    );
    if f.runtimes.is_empty() {
        let _ = writeln!(
            o,
            "{MISSING} no stage run is recorded in this project's run log; run `repro run --force` before `repro package`.\n"
        );
        return;
    }
    let _ = writeln!(
        o,
        "Runtime and peak memory of the last run of each stage:\n"
    );
    let _ = writeln!(o, "| Stage | Runtime | Peak memory |");
    let _ = writeln!(o, "|---|---|---|");
    let mut peak = 0u64;
    for s in &p.stages {
        let t = f.runtimes.get(&s.name).map_or_else(
            || "not recorded (outputs restored from the cache)".to_string(),
            |t| seconds(*t),
        );
        let mem = match f.memory.get(&s.name) {
            Some((b, of)) => {
                peak = peak.max(*b);
                let what = if of == "command" { "command" } else { "repro" };
                format!("{} ({what})", bytes(*b))
            }
            None => "not recorded".to_string(),
        };
        let _ = writeln!(o, "| `{}` | {t} | {mem} |", s.name);
    }
    let _ = writeln!(
        o,
        "| total | {} | {} |\n\nThe total adds the stages up; repro runs independent stages in parallel, \
         so a run takes less on several cores. Peak memory is the peak resident set size: for a command \
         stage, that of its processes (from wait4); for a built-in stage, which runs inside repro, repro's \
         own peak when the stage ended, which counts the stages that ran before or beside it too.\n",
        seconds(total),
        bytes(peak)
    );
}

/// `### License for Code`.
pub fn write_code_licence(o: &mut String, p: &Pipeline) {
    let _ = writeln!(o, "### License for Code\n");
    let _ = writeln!(
        o,
        "- repro, in `repro-src/`: MIT OR Apache-2.0, at your option (`repro-src/LICENSE-MIT`, \
         `repro-src/LICENSE-APACHE`). The font its figures embed \
         (`repro-src/crates/tables/assets/fonts/repro-sans.ttf`, a subset of WenQuanYi Micro Hei) is \
         under the Apache License 2.0 (`repro-src/crates/tables/assets/fonts/LICENSE-Apache-2.0.txt`, \
         `LICENSE-wqy-microhei.txt` beside it). The vendored crates in `repro-src/vendor/`, when \
         present, each carry their own licence files."
    );
    let _ = writeln!(
        o,
        "- the pipeline's own files (the pipeline file, stage specs and scripts): {}\n",
        p.license
            .clone()
            .unwrap_or_else(|| format!("{MISSING} the pipeline declares no `license:`"))
    );
}

/// Whether all tables and figures are reproduced (before the exhibit list).
pub fn write_exhibits_statement(o: &mut String, p: &Pipeline) {
    if p.exhibits.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "The replication package reproduces:\n\n\
         - [ ] All numbers provided in text in the paper\n\
         - [x] All tables and figures in the paper\n\
         - [ ] Selected tables and figures in the paper, as explained and justified below.\n\n\
         These are the {} exhibits the pipeline declares; `run.sh` rebuilds each and compares it byte for \
         byte with `repro.lock`.\n",
        p.exhibits.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_the_template() {
        assert_eq!(bucket(TIME_BUCKETS, 30.0), "<10 minutes");
        assert_eq!(bucket(TIME_BUCKETS, 1200.0), "10-60 minutes");
        assert_eq!(bucket(TIME_BUCKETS, 1e9), "> 14 days");
        assert_eq!(bucket(STORAGE_BUCKETS, 300_000_000), "250 MB - 2 GB");
        assert_eq!(bucket(STORAGE_BUCKETS, 10), "< 25 MBytes");
    }
}
