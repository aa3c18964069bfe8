//! Where a stage runs: `executor:` (top level and per stage) and `resources:` (top-level defaults
//! and per stage), validated with their places.
//!
//! Owns: reading [`ExecutorKind`] and [`Resources`] (defined with the rest of the model in
//! `model`) from the pipeline file, and merging a
//! stage's resources over the top-level defaults. Neither enters a stage key: a stage's outputs
//! are the same bytes wherever it runs. Deliberately does not own: turning resources into
//! `sbatch` options or submitting jobs (`crate::slurm`).

use repro_kind::suggest::closest;

use super::cx::Cx;
use super::model::{ExecutorKind, Resources, Stage};
use crate::yaml::{Node, Value};

const RESOURCE_KEYS: &[&str] = &["cpus", "memory", "time", "partition", "sbatch"];

/// `sbatch` options repro sets itself, or that a field of `resources:` sets: a copy in `sbatch:`
/// would contradict it. Each with the field to use instead, if any.
const RESERVED_FLAGS: &[(&str, Option<&str>)] = &[
    ("--job-name", None),
    ("-J", None),
    ("--output", None),
    ("-o", None),
    ("--error", None),
    ("-e", None),
    ("--chdir", None),
    ("-D", None),
    ("--parsable", None),
    ("--wrap", None),
    ("--array", None),
    ("-a", None),
    ("--wait", None),
    ("-W", None),
    ("--cpus-per-task", Some("cpus")),
    ("-c", Some("cpus")),
    ("--mem", Some("memory")),
    ("--time", Some("time")),
    ("-t", Some("time")),
    ("--partition", Some("partition")),
    ("-p", Some("partition")),
];

/// The top-level `executor:` and `resources:` of a pipeline.
pub(super) struct ClusterDefaults {
    pub(super) executor: Option<ExecutorKind>,
    pub(super) resources: Resources,
}

impl Cx<'_> {
    pub(super) fn cluster_defaults(&mut self, doc: &Node) -> ClusterDefaults {
        let mut out = ClusterDefaults {
            executor: None,
            resources: Resources::default(),
        };
        if let Value::Map(entries) = &doc.value {
            for (k, v) in entries {
                match k.name.as_str() {
                    "executor" => out.executor = self.executor_kind("the pipeline", v),
                    "resources" => out.resources = self.resources("the pipeline", v),
                    _ => {}
                }
            }
        }
        out
    }

    /// `executor: local | slurm`.
    pub(super) fn executor_kind(&mut self, owner: &str, v: &Node) -> Option<ExecutorKind> {
        let Value::Str(name) = &v.value else {
            self.error(
                v.pos,
                format!(
                    "`executor` of {owner} must be `local` or `slurm`, found {}",
                    v.value.type_name()
                ),
            );
            return None;
        };
        let kind = ExecutorKind::parse(name);
        if kind.is_none() {
            let d = self.error(
                v.pos,
                format!("unknown executor `{name}` in {owner}: expected `local` or `slurm`"),
            );
            d.hint = closest(name, ExecutorKind::NAMES).map(|s| format!("did you mean `{s}`?"));
        }
        kind
    }

    /// `resources: {cpus, memory, time, partition, sbatch}`.
    pub(super) fn resources(&mut self, owner: &str, v: &Node) -> Resources {
        let mut r = Resources::default();
        let fields = match &v.value {
            Value::Map(fields) => fields,
            Value::Null => return r,
            other => {
                self.error(
                    v.pos,
                    format!(
                        "`resources` of {owner} must be a mapping, found {}",
                        other.type_name()
                    ),
                )
                .hint = Some(format!("keys: {}", RESOURCE_KEYS.join(", ")));
                return r;
            }
        };
        for (k, node) in fields {
            match k.name.as_str() {
                "cpus" => r.cpus = self.cpus(owner, node),
                "memory" => r.memory = self.resource_text(owner, "memory", node, memory_ok),
                "time" => r.time = self.resource_text(owner, "time", node, time_ok),
                "partition" => {
                    r.partition = self.resource_text(owner, "partition", node, partition_ok)
                }
                "sbatch" => r.sbatch = self.sbatch_flags(owner, node),
                _ => self.unknown_key(k, &format!("in `resources` of {owner}"), RESOURCE_KEYS),
            }
        }
        r
    }

    fn cpus(&mut self, owner: &str, v: &Node) -> Option<u32> {
        match v.value {
            Value::Int(n) if n >= 1 && n <= u32::MAX as i64 => Some(n as u32),
            _ => {
                self.error(
                    v.pos,
                    format!("`resources.cpus` of {owner} must be a positive integer"),
                );
                None
            }
        }
    }

    /// A text field (numbers are read as their text: `memory: 512` is 512 MB, `time: 30` is 30
    /// minutes, as in Slurm), checked by `ok`, which says what is expected when it refuses.
    fn resource_text(
        &mut self,
        owner: &str,
        field: &str,
        v: &Node,
        ok: fn(&str) -> Result<(), &'static str>,
    ) -> Option<String> {
        let text = match &v.value {
            Value::Str(s) => s.trim().to_string(),
            Value::Int(n) => n.to_string(),
            other => other.type_name().to_string(),
        };
        match ok(&text) {
            Ok(()) => Some(text),
            Err(expected) => {
                self.error(
                    v.pos,
                    format!("invalid `resources.{field}` `{text}` in {owner}"),
                )
                .hint = Some(expected.into());
                None
            }
        }
    }

    fn sbatch_flags(&mut self, owner: &str, v: &Node) -> Vec<String> {
        let items: Vec<&Node> = match &v.value {
            Value::Seq(items) => items.iter().collect(),
            _ => vec![v],
        };
        let mut out = Vec::new();
        for item in items {
            let Value::Str(flag) = &item.value else {
                self.error(
                    item.pos,
                    format!(
                        "entries of `resources.sbatch` in {owner} must be strings such as `--qos=long`, found {}",
                        item.value.type_name()
                    ),
                );
                continue;
            };
            if !flag.starts_with('-') {
                self.error(
                    item.pos,
                    format!("`resources.sbatch` entry `{flag}` in {owner} is not an option"),
                )
                .hint = Some("write each option with its value, e.g. `--qos=long`".into());
                continue;
            }
            let name = flag.split('=').next().unwrap_or(flag);
            // `-c4`, `-t10`: a short option glued to its value.
            let short = (name.len() > 2 && !name.starts_with("--")).then(|| &name[..2]);
            let reserved = RESERVED_FLAGS
                .iter()
                .find(|(f, _)| *f == name || Some(*f) == short);
            if let Some((f, field)) = reserved {
                let hint = match field {
                    Some(field) => format!("use `resources.{field}` instead"),
                    None => "repro sets it for every job (name, logs, folder)".to_string(),
                };
                self.error(
                    item.pos,
                    format!("`resources.sbatch` of {owner} may not set `{f}`"),
                )
                .hint = Some(hint);
                continue;
            }
            out.push(flag.clone());
        }
        out
    }
}

/// Applies the top-level `resources:` under each stage's own.
pub(super) fn apply_defaults(stages: &mut [Stage], defaults: &ClusterDefaults) {
    for s in stages {
        s.resources = s.resources.over(&defaults.resources);
    }
}

/// `--mem`: digits and an optional unit K, M, G or T (Slurm's default unit is M).
fn memory_ok(s: &str) -> Result<(), &'static str> {
    let digits = s.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
    let unit_len = s.len() - digits.len();
    if !digits.is_empty() && unit_len <= 1 && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err("memory is a whole number with an optional unit K, M, G or T, e.g. `512M` or `4G` (a plain number is megabytes)")
    }
}

/// `--time`: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M` or `D-H:M:S` (digits), or `UNLIMITED`.
fn time_ok(s: &str) -> Result<(), &'static str> {
    const EXPECTED: &str = "time is minutes (`30`), `H:MM:SS`, `D-HH`, `D-HH:MM` or `D-HH:MM:SS`";
    if s.eq_ignore_ascii_case("unlimited") || s.eq_ignore_ascii_case("infinite") {
        return Ok(());
    }
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (Some(d), r),
        None => (None, s),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let numeric = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let shape_ok = match days {
        Some(d) => numeric(d) && parts.len() <= 3,
        None => parts.len() <= 3,
    };
    if shape_ok && parts.iter().all(|p| numeric(p)) {
        Ok(())
    } else {
        Err(EXPECTED)
    }
}

fn partition_ok(s: &str) -> Result<(), &'static str> {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ','))
    {
        Ok(())
    } else {
        Err("a partition name (letters, digits, `_`, `-`, `.`), or several separated by commas")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::Path;

    fn parse(text: &str) -> Result<super::super::Pipeline, String> {
        super::super::parse_pipeline(
            Path::new("pipeline.yaml"),
            Path::new("."),
            text,
            &repro_kind::stage::NoKinds,
        )
        .map_err(|f| repro_kind::diag::render(&f))
    }

    #[test]
    fn where_a_stage_runs_enters_no_key() {
        let key = |text: &str| {
            let p = parse(text).unwrap();
            crate::key::stage_key(&p.stages[0], &BTreeMap::new())
        };
        let plain = "stages:\n  a:\n    cmd: echo > o\n    outs: [o]\n";
        let on_slurm = "executor: slurm\nresources: {memory: 4G}\nstages:\n  a:\n    cmd: echo > o\n    outs: [o]\n    executor: slurm\n    resources: {cpus: 8, time: 30, partition: long, sbatch: [--qos=x]}\n";
        assert_eq!(key(plain), key(on_slurm));
        let p = parse(on_slurm).unwrap();
        assert_eq!(p.executor, Some(ExecutorKind::Slurm));
        assert_eq!(p.stages[0].executor, Some(ExecutorKind::Slurm));
        assert_eq!(p.stages[0].resources.memory.as_deref(), Some("4G"));
        assert_eq!(p.stages[0].resources.time.as_deref(), Some("30"));
    }

    #[test]
    fn reports_bad_executors_and_resources_with_their_lines() {
        let err = parse(
            "executor: slurmm\nstages:\n  a:\n    cmd: x\n    executor: 3\n    resources:\n      cpus: 0\n      memory: 4GB\n      time: 1h\n      gpus: 1\n      sbatch: [--mem=4G, qos, -c4, --qos=long]\n",
        )
        .unwrap_err();
        for (message, at) in [
            (
                "unknown executor `slurmm` in the pipeline: expected `local` or `slurm`",
                "1:11",
            ),
            (
                "`executor` of stage `a` must be `local` or `slurm`, found a number",
                "5:15",
            ),
            (
                "`resources.cpus` of stage `a` must be a positive integer",
                "7:13",
            ),
            ("invalid `resources.memory` `4GB` in stage `a`", "8:15"),
            ("invalid `resources.time` `1h` in stage `a`", "9:13"),
            ("unknown key `gpus` in `resources` of stage `a`", "10:7"),
            (
                "`resources.sbatch` of stage `a` may not set `--mem`",
                "11:16",
            ),
            (
                "`resources.sbatch` entry `qos` in stage `a` is not an option",
                "11:26",
            ),
            ("`resources.sbatch` of stage `a` may not set `-c`", "11:31"),
        ] {
            let needed = format!("error: {message}\n  --> pipeline.yaml:{at}\n");
            assert!(err.contains(&needed), "{needed} not in:\n{err}");
        }
        assert!(err.contains("hint: did you mean `slurm`?"), "{err}");
        assert!(
            err.contains("hint: use `resources.memory` instead"),
            "{err}"
        );
        // `--qos=long` is accepted: nine problems, not ten.
        assert!(err.contains("error: 9 problems found"), "{err}");
    }

    #[test]
    fn memory_and_time_follow_slurm_formats() {
        for good in ["512", "512M", "4G", "1t", "100K"] {
            assert!(memory_ok(good).is_ok(), "{good}");
        }
        for bad in ["", "4GB", "4.5G", "G", "-1", "lots"] {
            assert!(memory_ok(bad).is_err(), "{bad}");
        }
        for good in [
            "30",
            "30:00",
            "1:30:00",
            "2-12",
            "2-12:30",
            "2-12:30:00",
            "UNLIMITED",
        ] {
            assert!(time_ok(good).is_ok(), "{good}");
        }
        for bad in ["", "1h", "1:2:3:4", "-5", "2-", "1::2", "a-1"] {
            assert!(time_ok(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_stage_overrides_the_defaults_field_by_field() {
        let defaults = Resources {
            cpus: Some(2),
            memory: Some("4G".into()),
            sbatch: vec!["--qos=normal".into()],
            ..Resources::default()
        };
        let stage = Resources {
            memory: Some("16G".into()),
            sbatch: vec!["--constraint=avx2".into()],
            ..Resources::default()
        };
        let merged = stage.over(&defaults);
        assert_eq!(merged.cpus, Some(2));
        assert_eq!(merged.memory.as_deref(), Some("16G"));
        assert_eq!(merged.sbatch, ["--qos=normal", "--constraint=avx2"]);
    }
}
