//! Built-in stage kinds: a closed, typed set.
//!
//! Owns: the list of kinds (`kind:` in a stage), deserialising and validating each kind's `params`
//! up front (unknown fields are errors), the deps and outputs a kind implies, its canonical
//! definition (which enters the stage key), and running it. Deliberately does not own: the
//! estimators (crate `repro-estimators`) or scheduling.

use std::path::Path;

use serde::Serialize;

use crate::diag::Diagnostic;
use crate::fitting::{self, FitRequest};
use crate::pipeline::normalize_path;

/// Every built-in kind. Adding one means adding a variant here and its module; nothing else in the
/// engine changes.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Builtin {
    /// One model on one data file, written as JSON (`repro fit --json` form).
    Fit(FitStage),
    /// Raw patent exports to clean applications, a quarantine and a report (`crate::ingest`).
    Ingest(crate::ingest::IngestStage),
    /// Synthetic raw data with a documented, seeded data-generating process.
    Synth(Spec<crate::synth::SynthSpec>),
    /// Which city each applicant is in.
    Locate(Spec<crate::locate::LocateSpec>),
    /// The city-year collaboration index and network.
    Index(Spec<crate::collab::IndexSpec>),
    /// The city-year analysis panel and its codebook.
    Panel(Spec<crate::panel::PanelSpec>),
    /// A table of regression models declared in a spec file.
    Models(crate::models::ModelsStage),
    /// A table of descriptive statistics.
    Describe(crate::describe::DescribeStage),
    /// A coefficient's quantile process: table and figure.
    Quantiles(crate::quantiles::QuantilesStage),
}

/// A kind configured by a stage spec file: its path (a dependency) and its parsed content
/// (which enters the definition, so the key changes with the spec).
#[derive(Debug, Clone, Serialize)]
pub struct Spec<T> {
    pub path: String,
    pub spec: T,
}

/// The names accepted in `kind:`.
pub const KIND_NAMES: &[&str] = &[
    "fit",
    "synth",
    "ingest",
    "locate",
    "index",
    "panel",
    "describe",
    "models",
    "quantiles",
];

/// Params of a `fit` stage: `data`, `out`, and the model (`formula`, `vcov`, `quantile`, `se`,
/// `method`, `drop_singletons`).
#[derive(Debug, Clone, Serialize)]
pub struct FitStage {
    pub data: String,
    pub out: String,
    pub model: FitRequest,
}

#[derive(Debug)]
pub struct KindError {
    pub message: String,
    pub hint: Option<String>,
    /// Where in a stage spec file the problem is (errors in `params` point at the stage).
    pub location: Option<crate::diag::Location>,
}

/// What parsing a kind may look at: the project root, to read the stage spec files a kind names
/// (their content is also a dependency of the stage, so it enters the key).
pub struct ParseCtx<'a> {
    pub root: &'a Path,
}

/// Paths a kind reads and writes because of its parameters (e.g. its data file).
#[derive(Debug, Default)]
pub struct ImpliedIo {
    pub deps: Vec<String>,
    pub outs: Vec<String>,
}

/// What a running built-in stage may use.
pub struct BuiltinCtx<'a> {
    pub root: &'a Path,
    pub stage: &'a str,
}

impl Builtin {
    pub fn parse(
        kind: &str,
        params: serde_json::Value,
        ctx: &ParseCtx<'_>,
    ) -> Result<Builtin, KindError> {
        let root = ctx.root;
        match kind {
            "fit" => return parse_fit(params).map(Builtin::Fit),
            "synth" => {
                let path = spec_path(params)?;
                let spec = crate::synth::parse(&path, root)?;
                return Ok(Builtin::Synth(Spec { path, spec }));
            }
            "locate" => {
                let path = spec_path(params)?;
                let spec = crate::locate::parse(&path, root)?;
                return Ok(Builtin::Locate(Spec { path, spec }));
            }
            "index" => {
                let path = spec_path(params)?;
                let spec = crate::collab::parse(&path, root)?;
                return Ok(Builtin::Index(Spec { path, spec }));
            }
            "panel" => {
                let path = spec_path(params)?;
                let spec = crate::panel::parse(&path, root)?;
                return Ok(Builtin::Panel(Spec { path, spec }));
            }
            _ => {}
        }
        if kind == "ingest" {
            return crate::ingest::parse(params, ctx).map(Builtin::Ingest);
        }
        if kind == "models" {
            return crate::models::parse(params, ctx.root).map(Builtin::Models);
        }
        if kind == "describe" {
            return crate::describe::parse(params, ctx.root).map(Builtin::Describe);
        }
        if kind == "quantiles" {
            return crate::quantiles::parse(params, ctx.root).map(Builtin::Quantiles);
        }
        let known: Vec<String> = KIND_NAMES.iter().map(|k| format!("`{k}`")).collect();
        Err(KindError {
            message: format!("unknown built-in kind `{kind}`"),
            location: None,
            hint: Some(if known.is_empty() {
                "this version of repro has no built-in kinds; use `cmd:`".to_string()
            } else {
                format!("built-in kinds: {}", known.join(", "))
            }),
        })
    }

    pub fn implied_io(&self) -> ImpliedIo {
        match self {
            Builtin::Fit(f) => ImpliedIo {
                deps: vec![f.data.clone()],
                outs: vec![f.out.clone()],
            },
            Builtin::Synth(s) => ImpliedIo {
                deps: vec![s.path.clone(), s.spec.cities.clone()],
                outs: crate::synth::outputs(&s.spec),
            },
            Builtin::Locate(s) => ImpliedIo {
                deps: with_spec(&s.path, crate::locate::deps(&s.spec)),
                outs: crate::locate::outs(&s.spec),
            },
            Builtin::Index(s) => ImpliedIo {
                deps: with_spec(&s.path, crate::collab::deps(&s.spec)),
                outs: crate::collab::outs(&s.spec),
            },
            Builtin::Panel(s) => ImpliedIo {
                deps: with_spec(&s.path, crate::panel::deps(&s.spec)),
                outs: crate::panel::outs(&s.spec),
            },
            Builtin::Ingest(i) => crate::ingest::implied_io(i),
            Builtin::Models(m) => m.implied_io(),
            Builtin::Describe(d) => d.implied_io(),
            Builtin::Quantiles(q) => q.implied_io(),
        }
    }

    /// The seeds of the random draws this stage makes, as its params or spec declare them (for
    /// the package README and `repro lint`); empty when the kind draws nothing at random.
    pub fn seeds(&self) -> Vec<u64> {
        match self {
            Builtin::Fit(f) => fitting::bootstrap_seed(&f.model).into_iter().collect(),
            Builtin::Synth(s) => vec![s.spec.seed],
            Builtin::Models(m) => m.seeds(),
            Builtin::Quantiles(q) => q.seeds(),
            Builtin::Ingest(_)
            | Builtin::Locate(_)
            | Builtin::Index(_)
            | Builtin::Panel(_)
            | Builtin::Describe(_) => Vec::new(),
        }
    }

    /// The canonical text of the kind and its parameters (enters the stage key and the lock).
    pub fn definition(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn run(&self, ctx: &BuiltinCtx<'_>) -> Result<(), Diagnostic> {
        match self {
            Builtin::Fit(f) => run_fit(ctx, f),
            Builtin::Synth(s) => crate::synth::run(ctx.root, ctx.stage, &s.spec),
            Builtin::Locate(s) => crate::locate::run(ctx.root, ctx.stage, &s.spec),
            Builtin::Index(s) => crate::collab::run(ctx.root, ctx.stage, &s.spec),
            Builtin::Panel(s) => crate::panel::run(ctx.root, ctx.stage, &s.spec),
            Builtin::Ingest(i) => crate::ingest::run(ctx, i),
            Builtin::Models(m) => m.run(ctx),
            Builtin::Describe(d) => d.run(ctx),
            Builtin::Quantiles(q) => q.run(ctx),
        }
    }
}

/// The `spec:` path of a kind configured by a stage spec file (`params: {spec: stages/x.yaml}`).
pub fn spec_path(params: serde_json::Value) -> Result<String, KindError> {
    let serde_json::Value::Object(mut obj) = params else {
        return Err(kind_err(
            "`params` must be a mapping with `spec: <stage spec file>`",
        ));
    };
    let path = take_path(&mut obj, "spec")?;
    if let Some(extra) = obj.keys().next() {
        return Err(KindError {
            hint: Some(format!(
                "settings of this kind go in the spec file `{path}`"
            )),
            ..kind_err(format!("unknown param `{extra}`"))
        });
    }
    Ok(path)
}

fn with_spec(spec: &str, deps: Vec<String>) -> Vec<String> {
    std::iter::once(spec.to_string()).chain(deps).collect()
}

pub fn kind_err(message: impl Into<String>) -> KindError {
    KindError {
        message: message.into(),
        hint: None,
        location: None,
    }
}

/// Reads and deserialises a stage spec file (`stages/*.yaml`); errors carry the file, line and
/// column. Unknown fields should be denied by `T` so a typo is caught before anything runs.
pub fn load_spec<T: serde::de::DeserializeOwned>(root: &Path, rel: &str) -> Result<T, KindError> {
    let text = std::fs::read_to_string(root.join(rel)).map_err(|e| KindError {
        hint: Some("stage spec paths are relative to the pipeline file".into()),
        ..kind_err(format!("cannot read stage spec `{rel}`: {e}"))
    })?;
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    serde_saphyr::from_str_with_options::<T>(&text, options).map_err(|e| {
        let location = e.location().map(|l| crate::diag::Location {
            file: rel.into(),
            line: l.line(),
            column: l.column(),
        });
        let full = e.to_string();
        let first = full.lines().next().unwrap_or("invalid yaml").trim();
        let first = first.strip_prefix("error: ").unwrap_or(first);
        let message = match first.split_once(": ") {
            Some((head, rest)) if head.starts_with("line ") && location.is_some() => rest,
            _ => first,
        };
        KindError {
            location,
            ..kind_err(format!("invalid stage spec `{rel}`: {message}"))
        }
    })
}

/// An error about what stage spec `spec_path` says.
pub fn spec_err(spec_path: &str, message: impl std::fmt::Display) -> KindError {
    kind_err(format!("invalid stage spec `{spec_path}`: {message}"))
}

/// Checks that every path a stage spec names is a valid project path (relative, no `..`).
pub fn check_spec_paths<'a>(
    spec_path: &str,
    paths: impl IntoIterator<Item = &'a String>,
) -> Result<(), KindError> {
    for p in paths {
        normalize_path(p).map_err(|why| spec_err(spec_path, format!("path `{p}`: {why}")))?;
    }
    Ok(())
}

/// Checks that a spec's `out` is a `.csv` path (stages write its Parquet twin beside it).
pub fn check_csv_out(spec_path: &str, out: &str) -> Result<(), KindError> {
    if out.ends_with(".csv") {
        return Ok(());
    }
    Err(spec_err(
        spec_path,
        format!("`out` must be a `.csv` path, found `{out}`"),
    ))
}

pub fn take_path(
    obj: &mut serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Result<String, KindError> {
    match obj.remove(key) {
        Some(serde_json::Value::String(s)) => normalize_path(&s)
            .map_err(|why| kind_err(format!("invalid path `{s}` in `{key}`: {why}"))),
        Some(other) => Err(kind_err(format!("`{key}` must be a path, found `{other}`"))),
        None => Err(kind_err(format!("missing param `{key}`"))),
    }
}

fn parse_fit(params: serde_json::Value) -> Result<FitStage, KindError> {
    let serde_json::Value::Object(mut obj) = params else {
        return Err(kind_err("`params` must be a mapping"));
    };
    let data = take_path(&mut obj, "data")?;
    let out = take_path(&mut obj, "out")?;
    let model: FitRequest = serde_json::from_value(serde_json::Value::Object(obj))
        .map_err(|e| kind_err(e.to_string()))?;
    // Check the formula, vcov and quantile options now, before anything runs.
    fitting::model_spec(&model).map_err(|d| KindError {
        message: match d.snippet {
            Some(s) => format!("{}\n{s}", d.message),
            None => d.message,
        },
        hint: d.hint,
        location: None,
    })?;
    Ok(FitStage { data, out, model })
}

fn run_fit(ctx: &BuiltinCtx<'_>, f: &FitStage) -> Result<(), Diagnostic> {
    let fail = |d: Diagnostic| stage_failed(ctx.stage, d);
    let res = fitting::run(&ctx.root.join(&f.data), &f.model).map_err(fail)?;
    let mut text = serde_json::to_string_pretty(&fitting::to_json(&f.data, &res))
        .map_err(|e| fail(Diagnostic::new(e.to_string())))?;
    text.push('\n');
    write_output(ctx.root, &f.out, text.as_bytes()).map_err(|e| {
        fail(Diagnostic::new(format!("cannot write `{}`", f.out)).cause(e.to_string()))
    })
}

/// `stage `x` failed`, with the problem as its first cause (location and hint kept): how every
/// built-in kind reports a failure.
pub fn stage_failed(stage: &str, d: Diagnostic) -> Diagnostic {
    Diagnostic {
        message: format!("stage `{stage}` failed"),
        causes: std::iter::once(d.message).chain(d.causes).collect(),
        ..d
    }
}

/// The temp file beside output `rel` (`.NAME.repro-tmp`) and the output's path, with the folder
/// created: outputs are written there and renamed into place, so a failed stage leaves no half
/// file under the real name.
pub fn temp_beside(
    root: &Path,
    rel: &str,
) -> std::io::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let dest = root.join(rel);
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = dest.with_file_name(format!(
        ".{}.repro-tmp",
        dest.file_name().and_then(|n| n.to_str()).unwrap_or("out")
    ));
    Ok((tmp, dest))
}

/// `temp_beside` with the temp file created, for outputs streamed in batches (they cannot go
/// through `write_output`'s one buffer) and renamed into place at the end.
pub fn create_temp_beside(
    root: &Path,
    rel: &str,
) -> std::io::Result<(std::path::PathBuf, std::path::PathBuf, std::fs::File)> {
    let (tmp, dest) = temp_beside(root, rel)?;
    let file = std::fs::File::create(&tmp)?;
    Ok((tmp, dest, file))
}

/// Writes an output beside its final path and renames it into place.
pub fn write_output(root: &Path, rel: &str, bytes: &[u8]) -> std::io::Result<()> {
    let (tmp, dest) = temp_beside(root, rel)?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &dest)
}
