//! The `models` built-in kind: a table of regression models declared in a stage spec file, in the
//! manner of fixest's `etable` and Stata's `esttab`.
//!
//! Owns: running the kind: fitting the validated models (and optional first-stage columns), the
//! result JSON per model, the difference tests' JSON, and handing the columns to `layout`. The
//! spec's fields are in `spec`, their checks in `validate`, the difference tests in `difference`,
//! the table's rows and notes in `layout`, the variables it reads
//! (checked when the pipeline loads) in `reads`. Deliberately does not own: the estimators
//! (`repro-estimators`), the rendering of the table (`table`) or sample parsing (`sample`).

mod difference;
mod layout;
mod reads;
mod spec;
mod validate;

use std::collections::BTreeMap;

use repro_estimators::data::Frame;
use repro_estimators::fit;
use repro_estimators::formula::Formula;
use repro_estimators::result::FitResult;
use repro_kind::diag::Diagnostic;
use repro_kind::{BuiltinCtx, ImpliedIo, KindError};
use serde::Serialize;

use crate::common::{spec_param, spec_path, stage_failed, table_io, write_json, write_table};
use crate::fitting::{self, FitRequest};
use crate::sample;
use crate::stars::Stars;
use difference::difference;
use layout::{build_table, Column, Marks};
use spec::diff_file_stem;
pub use spec::{Below, DiffMethod, DifferenceEntry, Model, ModelEntry, ModelsSpec};
use validate::validate;

/// A validated `models` stage. Only the spec path enters the stage definition: the spec file is
/// a dependency, so its content is in the key already.
#[derive(Debug, Clone, Serialize)]
pub struct ModelsStage {
    pub spec: String,
    #[serde(skip)]
    pub parsed: ModelsSpec,
    #[serde(skip)]
    pub models: Vec<Model>,
    #[serde(skip)]
    pub stars: Stars,
}

impl ModelsStage {
    /// Seeds of the permutation difference tests.
    pub fn seeds(&self) -> Vec<u64> {
        self.parsed
            .differences
            .iter()
            .filter_map(|d| d.seed)
            .collect()
    }
}

pub fn parse(params: serde_json::Value, root: &std::path::Path) -> Result<ModelsStage, KindError> {
    let file = spec_param(params)?;
    let mut parsed: ModelsSpec = repro_kind::load_spec(root, &file)?;
    parsed.data = spec_path("data", &parsed.data)?;
    let models = validate(&file, &parsed)?;
    let stars = Stars::from_spec(&file, parsed.stars.as_ref())?;
    Ok(ModelsStage {
        spec: file,
        parsed,
        models,
        stars,
    })
}

impl ModelsStage {
    pub fn implied_io(&self) -> ImpliedIo {
        let name = &self.parsed.name;
        table_io(
            &self.spec,
            &self.parsed.data,
            name,
            vec![format!("output/results/{name}")],
        )
    }

    pub fn run(&self, ctx: &BuiltinCtx<'_>) -> Result<(), Diagnostic> {
        self.run_inner(ctx).map_err(|d| stage_failed(ctx, d))
    }

    fn run_inner(&self, ctx: &BuiltinCtx<'_>) -> Result<(), Diagnostic> {
        let spec = &self.parsed;
        let frame = crate::frame::read_estimator_frame(&ctx.root.join(&spec.data))?;
        let mut columns: Vec<Column> = Vec::new();
        let mut rows_of: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let results_dir = format!("output/results/{}", spec.name);
        for m in &self.models {
            let rows = match &m.sample {
                None => (0..frame.nrows()).collect(),
                Some(s) => s.rows(&frame)?,
            };
            // Without a sample the model reads the frame itself, not a copy.
            let sub = match &m.sample {
                None => std::borrow::Cow::Borrowed(&frame),
                Some(_) => std::borrow::Cow::Owned(sample::subset(&frame, &rows)),
            };
            let req = request(&m.formula, &m.vcov);
            let res = estimate(&sub, &req, &m.id)?;
            let json = result_json(&spec.data, m, &self.producer(&req, &m.id), &res);
            write_json(ctx, &format!("{results_dir}/{}.json", m.id), &json)?;
            let used: Vec<usize> = res.used_rows.iter().map(|&i| rows[i]).collect();
            rows_of.insert(m.id.clone(), used.clone());
            let iv = m.parsed.iv.clone();
            columns.push(Column {
                model: m.clone(),
                outcome: m.parsed.outcome.clone(),
                fixed_effects: m.parsed.fixed_effects.iter().map(|f| f.name()).collect(),
                dep_mean: mean_over(&frame, &m.parsed.outcome, &used)?,
                result: res,
                first_stage_of: None,
            });
            let Some(iv) = iv.filter(|_| m.first_stage) else {
                continue;
            };
            for endo in &iv.endogenous {
                let f = first_stage_formula(&m.parsed, endo);
                let req = request(&f, &m.vcov);
                let res = estimate(&sub, &req, &m.id)?;
                let id = format!("{}_first_stage_{endo}", m.id);
                let json = result_json(&spec.data, m, &self.producer(&req, &id), &res);
                write_json(
                    ctx,
                    &format!("{results_dir}/{}_first_stage_{endo}.json", m.id),
                    &json,
                )?;
                let used: Vec<usize> = res.used_rows.iter().map(|&i| rows[i]).collect();
                columns.push(Column {
                    model: m.clone(),
                    outcome: endo.clone(),
                    dep_mean: mean_over(&frame, endo, &used)?,
                    fixed_effects: m.parsed.fixed_effects.iter().map(|f| f.name()).collect(),
                    result: res,
                    first_stage_of: Some(endo.clone()),
                });
            }
        }
        let mut diffs = Vec::new();
        for d in &spec.differences {
            let outcome = difference(&frame, &self.models, &rows_of, d)?;
            let file = format!("{results_dir}/{}.json", diff_file_stem(d));
            let mut json = outcome.json;
            if let serde_json::Value::Object(o) = &mut json {
                o.insert("spec".into(), self.spec.clone().into());
                o.insert(
                    "printed".into(),
                    crate::common::printed(spec.digits, &self.stars),
                );
            }
            write_json(ctx, &file, &json)?;
            diffs.push((d.clone(), outcome.p_value));
        }
        let marks = Marks { stars: &self.stars };
        write_table(
            ctx,
            &spec.name,
            &build_table(spec, &columns, &diffs, &marks),
        )
    }
}

impl ModelsStage {
    /// `produced_by` of a model's result JSON: the producer, the formula as fitted and how the
    /// table prints it.
    fn producer(&self, req: &FitRequest, id: &str) -> serde_json::Value {
        let mut producer = with_formula(fitting::producer(req, &self.spec, id), req);
        producer["printed"] = crate::common::printed(self.parsed.digits, &self.stars);
        producer
    }
}

/// The mean of column `name` over `rows` (rows with a missing value are not among a fit's used
/// rows).
fn mean_over(frame: &Frame, name: &str, rows: &[usize]) -> Result<f64, Diagnostic> {
    let col = sample::numeric_column(frame, name)?;
    let values: Vec<f64> = rows.iter().filter_map(|&i| col[i]).collect();
    Ok(values.iter().sum::<f64>() / values.len() as f64)
}

/// `endo ~ instruments + exogenous | fe` for an IV formula.
fn first_stage_formula(f: &Formula, endo: &str) -> String {
    let iv =
        f.iv.as_ref()
            .map(|iv| iv.instruments.clone())
            .unwrap_or_default();
    let rhs: Vec<String> = iv.iter().chain(&f.regressors).cloned().collect();
    let mut out = format!("{endo} ~ {}", rhs.join(" + "));
    if !f.fixed_effects.is_empty() {
        let fe: Vec<String> = f.fixed_effects.iter().map(|t| t.name()).collect();
        out.push_str(&format!(" | {}", fe.join(" + ")));
    }
    out
}

/// `producer` with the formula as fitted (the result JSON's `formula`).
fn with_formula(mut producer: serde_json::Value, req: &FitRequest) -> serde_json::Value {
    producer["formula"] = req.formula.clone().into();
    producer
}

/// The request of one linear model of the table.
fn request(formula: &str, vcov: &str) -> FitRequest {
    FitRequest {
        formula: formula.to_string(),
        vcov: vcov.to_string(),
        quantile: None,
        se: None,
        method: None,
        drop_singletons: false,
    }
}

fn estimate(frame: &Frame, req: &FitRequest, id: &str) -> Result<FitResult, Diagnostic> {
    let formula = &req.formula;
    let spec = fitting::model_spec(req)?;
    fit::fit(frame, &spec).map_err(|e| {
        let d = fitting::fit_diag(e, req);
        Diagnostic {
            message: format!("cannot estimate model `{id}` (`{formula}`)"),
            causes: std::iter::once(d.message).chain(d.causes).collect(),
            ..d
        }
    })
}

fn result_json(
    data: &str,
    m: &Model,
    producer: &serde_json::Value,
    res: &FitResult,
) -> serde_json::Value {
    let mut obj = serde_json::Map::new();
    obj.insert("id".into(), m.id.clone().into());
    obj.insert("produced_by".into(), producer.clone());
    obj.insert("formula".into(), producer["formula"].clone());
    obj.insert(
        "sample".into(),
        m.sample
            .as_ref()
            .map_or(serde_json::Value::Null, |s| s.text.clone().into()),
    );
    if let serde_json::Value::Object(rest) = fitting::to_json(data, res) {
        for (k, v) in rest {
            obj.entry(k).or_insert(v);
        }
    }
    serde_json::Value::Object(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::expand_sets;
    use indexmap::IndexMap;
    use repro_estimators::formula;

    #[test]
    fn sets_expand_in_place() {
        let mut sets = IndexMap::new();
        sets.insert("c".to_string(), vec!["a".to_string(), "b".to_string()]);
        let (f, used) = expand_sets("y ~ x + {c} | id", &sets).unwrap();
        assert_eq!(f, "y ~ x + a + b | id");
        assert_eq!(used, vec!["c"]);
        assert!(expand_sets("y ~ {d}", &sets)
            .unwrap_err()
            .contains("unknown set `d`"));
        assert!(expand_sets("y ~ {c", &sets)
            .unwrap_err()
            .contains("unclosed"));
    }

    #[test]
    fn first_stage_formula_keeps_exogenous_and_fe() {
        let f = formula::parse("y ~ a + b | id + t | x ~ z1 + z2").unwrap();
        assert_eq!(first_stage_formula(&f, "x"), "x ~ z1 + z2 + a + b | id + t");
    }
}
