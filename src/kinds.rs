//! The closed set of built-in kinds: the one file that names every kind.
//!
//! Owns: the list of kinds (`kind:` in a stage), dispatching each kind's params to the crate that
//! implements it, the kind's canonical definition (which enters the stage key), which crate's code
//! fingerprint covers each kind, and the per-kind versions. Deliberately does not own: any kind's
//! work (crates `repro-study` and `repro-tables`) or anything the engine does with a stage (it
//! sees kinds only through `repro_kind::BuiltinStage`); no kind imports this file.

use std::path::Path;
use std::sync::Arc;

use repro_engine::pipeline::{self, Pipeline};
use repro_kind::columns::ColumnsCtx;
use repro_kind::stage::unknown_kind;
use repro_kind::{
    spec_path, BuiltinCtx, BuiltinStage, Diagnostic, Failure, ImpliedIo, KindError, KindRegistry,
    ParseCtx,
};
use repro_study::{index, ingest, locate, panel, synth};
use repro_tables::{curve, describe, fit_stage, models, quantiles};
use serde::Serialize;

/// Every built-in kind. Adding one means adding a variant here, its name, and its crate's
/// functions; nothing in the engine changes.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Builtin {
    /// One model on one data file, written as JSON (`repro fit --json` form).
    Fit(fit_stage::FitStage),
    /// Raw patent exports to clean applications, a quarantine and a report.
    Ingest(ingest::IngestStage),
    /// Synthetic raw data with a documented, seeded data-generating process.
    Synth(Spec<synth::SynthSpec>),
    /// Which city each applicant is in.
    Locate(Spec<locate::LocateSpec>),
    /// The city-year collaboration index and network.
    Index(Spec<index::IndexSpec>),
    /// The city-year analysis panel and its codebook.
    Panel(Spec<panel::PanelSpec>),
    /// A table of regression models declared in a spec file.
    Models(models::ModelsStage),
    /// A table of descriptive statistics.
    Describe(describe::DescribeStage),
    /// A coefficient's quantile process: table and figure.
    Quantiles(Box<quantiles::QuantilesStage>),
    /// One coefficient over every combination of declared choices: a specification curve.
    Curve(Box<curve::CurveStage>),
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
    "curve",
];

/// The registry the pipeline parser asks.
pub struct Registry;

impl KindRegistry for Registry {
    fn names(&self) -> &[&'static str] {
        KIND_NAMES
    }

    fn parse(
        &self,
        kind: &str,
        params: serde_json::Value,
        ctx: &ParseCtx<'_>,
    ) -> Result<Arc<dyn BuiltinStage>, KindError> {
        Builtin::parse(kind, params, ctx).map(|b| Arc::new(b) as Arc<dyn BuiltinStage>)
    }
}

/// Reads and validates a pipeline file with every built-in kind available.
pub fn load_pipeline(file: &Path) -> Result<Pipeline, Failure> {
    pipeline::load(file, &Registry)
}

impl Builtin {
    fn parse(kind: &str, params: serde_json::Value, ctx: &ParseCtx<'_>) -> Result<Self, KindError> {
        let root = ctx.root;
        Ok(match kind {
            "fit" => Builtin::Fit(fit_stage::parse(params, ctx)?),
            "synth" => Builtin::Synth(spec(params, |p| synth::parse(p, root))?),
            "locate" => Builtin::Locate(spec(params, |p| locate::parse(p, root))?),
            "index" => Builtin::Index(spec(params, |p| index::parse(p, root))?),
            "panel" => Builtin::Panel(spec(params, |p| panel::parse(p, root))?),
            "ingest" => Builtin::Ingest(ingest::parse(params, ctx)?),
            "models" => Builtin::Models(models::parse(params, root)?),
            "describe" => Builtin::Describe(describe::parse(params, root)?),
            "quantiles" => Builtin::Quantiles(Box::new(quantiles::parse(params, root)?)),
            "curve" => Builtin::Curve(Box::new(curve::parse(params, root)?)),
            _ => return Err(unknown_kind(kind, KIND_NAMES)),
        })
    }

    /// The crate whose code computes this kind, and that crate's code fingerprint.
    fn code(&self) -> (&'static str, &'static str) {
        match self {
            Builtin::Ingest(_)
            | Builtin::Synth(_)
            | Builtin::Locate(_)
            | Builtin::Index(_)
            | Builtin::Panel(_) => ("repro-study", repro_study::CODE_FINGERPRINT),
            Builtin::Fit(_)
            | Builtin::Models(_)
            | Builtin::Describe(_)
            | Builtin::Quantiles(_)
            | Builtin::Curve(_) => ("repro-tables", repro_tables::CODE_FINGERPRINT),
        }
    }

    /// The kind's own version: bump it when the kind's outputs change in a way its crate's code
    /// fingerprint cannot see (docs/caching.md). Every kind is at its first version.
    fn version(&self) -> u32 {
        1
    }
}

/// A kind configured by a spec file: its `spec:` param and the parsed file.
fn spec<T>(
    params: serde_json::Value,
    parse: impl FnOnce(&str) -> Result<T, KindError>,
) -> Result<Spec<T>, KindError> {
    let path = spec_path(params)?;
    let spec = parse(&path)?;
    Ok(Spec { path, spec })
}

fn with_spec(spec: &str, deps: Vec<String>) -> Vec<String> {
    std::iter::once(spec.to_string()).chain(deps).collect()
}

impl BuiltinStage for Builtin {
    fn kind_name(&self) -> &'static str {
        match self {
            Builtin::Fit(_) => "fit",
            Builtin::Ingest(_) => "ingest",
            Builtin::Synth(_) => "synth",
            Builtin::Locate(_) => "locate",
            Builtin::Index(_) => "index",
            Builtin::Panel(_) => "panel",
            Builtin::Models(_) => "models",
            Builtin::Describe(_) => "describe",
            Builtin::Quantiles(_) => "quantiles",
            Builtin::Curve(_) => "curve",
        }
    }

    fn implied_io(&self) -> ImpliedIo {
        match self {
            Builtin::Fit(f) => ImpliedIo {
                deps: vec![f.data.clone()],
                outs: vec![f.out.clone()],
            },
            Builtin::Synth(s) => ImpliedIo {
                deps: with_spec(&s.path, synth::deps(&s.spec)),
                outs: synth::outputs(&s.spec),
            },
            Builtin::Locate(s) => ImpliedIo {
                deps: with_spec(&s.path, locate::deps(&s.spec)),
                outs: locate::outs(&s.spec),
            },
            Builtin::Index(s) => ImpliedIo {
                deps: with_spec(&s.path, index::deps(&s.spec)),
                outs: index::outs(&s.spec),
            },
            Builtin::Panel(s) => ImpliedIo {
                deps: with_spec(&s.path, panel::deps(&s.spec)),
                outs: panel::outs(&s.spec),
            },
            Builtin::Ingest(i) => ingest::implied_io(i),
            Builtin::Models(m) => m.implied_io(),
            Builtin::Describe(d) => d.implied_io(),
            Builtin::Quantiles(q) => q.implied_io(),
            Builtin::Curve(c) => c.implied_io(),
        }
    }

    fn seeds(&self) -> Vec<u64> {
        match self {
            Builtin::Fit(f) => fit_stage::seeds(f),
            Builtin::Synth(s) => vec![s.spec.seed],
            Builtin::Models(m) => m.seeds(),
            Builtin::Quantiles(q) => q.seeds(),
            Builtin::Curve(c) => c.seeds(),
            Builtin::Ingest(_)
            | Builtin::Locate(_)
            | Builtin::Index(_)
            | Builtin::Panel(_)
            | Builtin::Describe(_) => Vec::new(),
        }
    }

    fn definition(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn fingerprint(&self) -> String {
        let (krate, code) = self.code();
        format!("{krate}:{code}:{}@{}", self.kind_name(), self.version())
    }

    fn spec_files(&self) -> Vec<String> {
        let path = match self {
            Builtin::Fit(_) => return Vec::new(),
            Builtin::Ingest(i) => &i.spec_path,
            Builtin::Synth(s) => &s.path,
            Builtin::Locate(s) => &s.path,
            Builtin::Index(s) => &s.path,
            Builtin::Panel(s) => &s.path,
            Builtin::Models(m) => &m.spec,
            Builtin::Describe(d) => &d.spec,
            Builtin::Quantiles(q) => &q.spec,
            Builtin::Curve(c) => &c.spec,
        };
        vec![path.clone()]
    }

    fn output_columns(&self) -> Vec<(String, Vec<String>)> {
        match self {
            Builtin::Panel(s) => panel::columns(&s.spec),
            _ => Vec::new(),
        }
    }

    fn check_columns(&self, ctx: &ColumnsCtx<'_>) -> Vec<Diagnostic> {
        match self {
            Builtin::Fit(f) => fit_stage::check_columns(f, ctx),
            Builtin::Models(m) => m.check_columns(ctx),
            Builtin::Describe(d) => d.check_columns(ctx),
            Builtin::Quantiles(q) => q.check_columns(ctx),
            Builtin::Curve(c) => c.check_columns(ctx),
            _ => Vec::new(),
        }
    }

    fn run(&self, ctx: &BuiltinCtx<'_>) -> Result<(), Diagnostic> {
        match self {
            Builtin::Fit(f) => fit_stage::run(ctx, f),
            Builtin::Synth(s) => synth::run(ctx.root, ctx.stage, &s.spec),
            Builtin::Locate(s) => locate::run(ctx.root, ctx.stage, &s.spec),
            Builtin::Index(s) => index::run(ctx.root, ctx.stage, &s.spec),
            Builtin::Panel(s) => panel::run(ctx.root, ctx.stage, &s.spec),
            Builtin::Ingest(i) => ingest::run(ctx, i),
            Builtin::Models(m) => m.run(ctx),
            Builtin::Describe(d) => d.run(ctx),
            Builtin::Quantiles(q) => q.run(ctx),
            Builtin::Curve(c) => c.run(ctx),
        }
    }
}
