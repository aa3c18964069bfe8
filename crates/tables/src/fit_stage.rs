//! The `fit` built-in kind: one model on one data file, written as the JSON `repro fit --json`
//! prints.
//!
//! Owns: the kind's params (`data`, `out`, and the model: `formula`, `vcov`, `quantile`, `se`,
//! `method`, `drop_singletons`), checking the model before anything runs (its variables against
//! the data's known columns too), and writing the result. Deliberately does not own: fitting
//! (`fitting`).

use repro_kind::columns::{ColumnsCtx, Read};
use repro_kind::{kind_err, take_path, BuiltinCtx, Diagnostic, KindError, ParseCtx};
use serde::Serialize;

use crate::fitting::{self, FitRequest};

/// Params of a `fit` stage.
#[derive(Debug, Clone, Serialize)]
pub struct FitStage {
    pub data: String,
    pub out: String,
    pub model: FitRequest,
    /// The variables the model reads, each where the pipeline file writes it (not in the key).
    #[serde(skip)]
    pub reads: Vec<Read>,
}

/// Parses and checks a `fit` stage's params: the formula, vcov and quantile options are checked
/// now, before anything runs, and its variables are placed for `check_columns`.
pub fn parse(params: serde_json::Value, ctx: &ParseCtx<'_>) -> Result<FitStage, KindError> {
    let serde_json::Value::Object(mut obj) = params else {
        return Err(kind_err("`params` must be a mapping"));
    };
    let data = take_path(&mut obj, "data")?;
    let out = take_path(&mut obj, "out")?;
    let model: FitRequest = serde_json::from_value(serde_json::Value::Object(obj))
        .map_err(|e| kind_err(e.to_string()))?;
    fitting::model_spec(&model).map_err(|d| KindError {
        message: match d.snippet {
            Some(s) => format!("{}\n{s}", d.message),
            None => d.message,
        },
        hint: d.hint,
        location: None,
    })?;
    let reads = reads(&model, ctx);
    Ok(FitStage {
        data,
        out,
        model,
        reads,
    })
}

/// The formula's variables and the `vcov`'s cluster variables, each at its place.
fn reads(model: &FitRequest, ctx: &ParseCtx<'_>) -> Vec<Read> {
    let formula = repro_estimators::formula::parse(&model.formula).ok();
    let vars = formula.map(|f| f.variables()).unwrap_or_default();
    let formula_reads = vars.into_iter().map(|v| Read {
        location: (ctx.param_at)("formula", &v),
        variable: v,
        role: "the formula".into(),
    });
    let cluster_reads = crate::columns::cluster_variables(&model.vcov)
        .into_iter()
        .map(|v| Read {
            location: (ctx.param_at)("vcov", &v),
            variable: v,
            role: "the cluster variables of `vcov`".into(),
        });
    formula_reads.chain(cluster_reads).collect()
}

/// The model's variables that the data file's known columns lack (`crate::columns`).
pub fn check_columns(f: &FitStage, ctx: &ColumnsCtx<'_>) -> Vec<Diagnostic> {
    crate::columns::check(ctx, &f.data, &f.reads)
}

/// Fits the model and writes its JSON to `out`.
pub fn run(ctx: &BuiltinCtx<'_>, f: &FitStage) -> Result<(), Diagnostic> {
    let fail = |d: Diagnostic| repro_kind::stage_failed(ctx.stage, d);
    let res = fitting::run(&ctx.root.join(&f.data), &f.model).map_err(fail)?;
    let mut text = serde_json::to_string_pretty(&fitting::to_json(&f.data, &res))
        .map_err(|e| fail(Diagnostic::new(e.to_string())))?;
    text.push('\n');
    repro_kind::write_output(ctx.root, &f.out, text.as_bytes()).map_err(|e| {
        fail(Diagnostic::new(format!("cannot write `{}`", f.out)).cause(e.to_string()))
    })
}

/// The seed of the model's bootstrap, if it draws one.
pub fn seeds(f: &FitStage) -> Vec<u64> {
    fitting::bootstrap_seed(&f.model).into_iter().collect()
}
