//! The `models` built-in kind: a table of regression models declared in a stage spec file, in the
//! manner of fixest's `etable` and Stata's `esttab`.
//!
//! Owns: the spec (`title`, `data`, `name`, `vcov`, `sets`, `labels`, `keep`, `fe_labels`,
//! `models`, `differences`, `notes`, `digits`), expanding `{set}` references in formulas,
//! validating every model before anything runs (errors point at the spec file's line), fitting the
//! models (and optional first-stage columns), the coefficient-difference tests between columns,
//! the result JSON per model, and the table's content. Deliberately does not own: the estimators
//! (`repro-estimators`), the rendering of the table (`tables`) or sample parsing (`sample`).

use std::collections::BTreeMap;

use indexmap::IndexMap;
use repro_estimators::data::Frame;
use repro_estimators::difftest::{self, DiffData, PermutationOptions};
use repro_estimators::fit::{self, VcovSpec};
use repro_estimators::formula::{self, Formula};
use repro_estimators::result::FitResult;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::diag::{Diagnostic, Location};
use crate::fitting::{self, FitRequest};
use crate::kinds::{self, BuiltinCtx, ImpliedIo, KindError};
use crate::sample::{self, SampleSpec};
use crate::tables::{self, Cell, Row, Table};

/// The spec file of a `models` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsSpec {
    pub title: String,
    pub data: String,
    pub name: String,
    #[serde(default = "default_vcov")]
    pub vcov: String,
    #[serde(default)]
    pub sets: IndexMap<String, Vec<String>>,
    #[serde(default)]
    pub labels: IndexMap<String, String>,
    #[serde(default)]
    pub keep: Option<Vec<String>>,
    #[serde(default)]
    pub fe_labels: IndexMap<String, String>,
    pub models: Vec<ModelEntry>,
    #[serde(default)]
    pub differences: Vec<DifferenceEntry>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default = "default_digits")]
    pub digits: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub id: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    pub formula: Spanned<String>,
    #[serde(default)]
    pub vcov: Option<String>,
    #[serde(default)]
    pub sample: Option<Spanned<String>>,
    #[serde(default)]
    pub first_stage: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffMethod {
    Stacked,
    Permutation,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DifferenceEntry {
    pub a: String,
    pub b: String,
    pub coef: String,
    #[serde(default = "default_method")]
    pub method: DiffMethod,
    #[serde(default)]
    pub reps: Option<usize>,
    #[serde(default)]
    pub seed: Option<u64>,
}

fn default_vcov() -> String {
    "iid".to_string()
}

fn default_digits() -> usize {
    3
}

fn default_method() -> DiffMethod {
    DiffMethod::Stacked
}

/// One model after validation: its expanded formula and parsed restriction.
#[derive(Debug, Clone)]
pub struct Model {
    pub id: String,
    pub label: Option<String>,
    pub group: Option<String>,
    pub formula: String,
    pub parsed: Formula,
    pub vcov: String,
    pub sample: Option<SampleSpec>,
    /// Sets the formula referred to (`{controls}`).
    pub sets_used: Vec<String>,
    pub first_stage: bool,
}

/// A validated `models` stage. Only the spec path enters the stage definition: the spec file is
/// a dependency, so its content is in the key already.
#[derive(Debug, Clone, Serialize)]
pub struct ModelsStage {
    pub spec: String,
    #[serde(skip)]
    pub parsed: ModelsSpec,
    #[serde(skip)]
    pub models: Vec<Model>,
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
    let mut parsed: ModelsSpec = kinds::load_spec(root, &file)?;
    parsed.data = spec_path("data", &parsed.data)?;
    let models = validate(&file, &parsed)?;
    Ok(ModelsStage {
        spec: file,
        parsed,
        models,
    })
}

/// The `spec` path of a spec-file kind's params (`params: {spec: stages/x.yaml}`), normalised.
pub fn spec_param(params: serde_json::Value) -> Result<String, KindError> {
    let serde_json::Value::Object(mut obj) = params else {
        return Err(kinds::kind_err("`params` must be a mapping `{spec: PATH}`"));
    };
    let path = kinds::take_path(&mut obj, "spec")?;
    if let Some(extra) = obj.keys().next() {
        return Err(KindError {
            hint: Some("the settings of this kind live in its spec file".into()),
            ..kinds::kind_err(format!("unknown param `{extra}`; expected only `spec`"))
        });
    }
    Ok(path)
}

/// A path of a spec file, normalised; absolute paths and `..` are errors.
pub fn spec_path(key: &str, path: &str) -> Result<String, KindError> {
    crate::pipeline::normalize_path(path)
        .map_err(|why| kinds::kind_err(format!("invalid path `{path}` in `{key}`: {why}")))
}

/// A spec error at `at` in the spec file.
fn located(file: &str, at: &serde_saphyr::Location, message: String) -> KindError {
    KindError {
        location: Some(to_location(file, at)),
        ..kinds::kind_err(message)
    }
}

pub fn to_location(file: &str, at: &serde_saphyr::Location) -> Location {
    Location {
        file: file.into(),
        line: at.line(),
        column: at.column(),
    }
}

/// Replaces each `{set}` in `formula` by its variables joined with `+`; returns the sets used.
pub fn expand_sets(
    formula: &str,
    sets: &IndexMap<String, Vec<String>>,
) -> Result<(String, Vec<String>), String> {
    let mut out = String::new();
    let mut used = Vec::new();
    let mut rest = formula;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in formula `{formula}`"))?;
        let name = after[..close].trim();
        let vars = sets.get(name).ok_or_else(|| {
            let known: Vec<String> = sets.keys().map(|k| format!("`{k}`")).collect();
            format!(
                "unknown set `{name}` in formula `{formula}`{}",
                if known.is_empty() {
                    "; the spec declares no `sets`".to_string()
                } else {
                    format!("; sets: {}", known.join(", "))
                }
            )
        })?;
        if vars.is_empty() {
            return Err(format!("set `{name}` is empty"));
        }
        out.push_str(&vars.join(" + "));
        if !used.iter().any(|u| u == name) {
            used.push(name.to_string());
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok((out, used))
}

/// The `name` of a table kind names its output files: letters, digits, `_` and `-` only.
pub fn check_name(name: &str) -> Result<(), KindError> {
    if is_simple_name(name) {
        return Ok(());
    }
    Err(kinds::kind_err(format!(
        "`name` `{name}` must be letters, digits, `_` or `-` (it names the output files)"
    )))
}

fn is_simple_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Checks the whole spec without data: names, formulas, vcov, samples, differences.
fn validate(file: &str, spec: &ModelsSpec) -> Result<Vec<Model>, KindError> {
    check_name(&spec.name)?;
    if spec.models.is_empty() {
        return Err(kinds::kind_err(format!("`{file}` declares no `models`")));
    }
    let mut models: Vec<Model> = Vec::new();
    for entry in &spec.models {
        let at = &entry.formula.referenced;
        if !is_simple_name(&entry.id) {
            return Err(located(
                file,
                at,
                format!(
                    "model id `{}` must be letters, digits, `_` or `-` (it names a result file)",
                    entry.id
                ),
            ));
        }
        if models.iter().any(|m| m.id == entry.id) {
            return Err(located(
                file,
                at,
                format!("model id `{}` is used twice", entry.id),
            ));
        }
        let (expanded, sets_used) = expand_sets(&entry.formula.value, &spec.sets)
            .map_err(|m| located(file, at, format!("model `{}`: {m}", entry.id)))?;
        let vcov = entry.vcov.clone().unwrap_or_else(|| spec.vcov.clone());
        let req = FitRequest {
            formula: expanded.clone(),
            vcov: vcov.clone(),
            quantile: None,
            se: None,
            method: None,
            drop_singletons: false,
        };
        fitting::model_spec(&req).map_err(|d| KindError {
            message: match d.snippet {
                Some(s) => format!("model `{}`: {}\n{s}", entry.id, d.message),
                None => format!("model `{}`: {}", entry.id, d.message),
            },
            hint: d.hint,
            location: Some(to_location(file, at)),
        })?;
        let parsed = formula::parse(&expanded).map_err(|e| kinds::kind_err(e.to_string()))?;
        if entry.first_stage && parsed.iv.is_none() {
            return Err(KindError {
                hint: Some("write the IV part as `| endogenous ~ instruments`".into()),
                ..located(
                    file,
                    at,
                    format!(
                        "model `{}` asks for `first_stage` but its formula has no IV part",
                        entry.id
                    ),
                )
            });
        }
        let sample = SampleSpec::from_spec(file, entry.sample.as_ref())?;
        models.push(Model {
            id: entry.id.clone(),
            label: entry.label.clone(),
            group: entry.group.clone(),
            formula: expanded,
            parsed,
            vcov,
            sample,
            sets_used,
            first_stage: entry.first_stage,
        });
    }
    for (k, d) in spec.differences.iter().enumerate() {
        if spec.differences[..k]
            .iter()
            .any(|e| diff_file_stem(e) == diff_file_stem(d))
        {
            return Err(kinds::kind_err(format!(
                "the difference test `{}` vs `{}` of `{}` is declared twice with the same method",
                d.a, d.b, d.coef
            )));
        }
        for side in [&d.a, &d.b] {
            if !models.iter().any(|m| &m.id == side) {
                return Err(kinds::kind_err(format!(
                    "difference test names model `{side}`, which `{file}` does not declare"
                )));
            }
        }
        let ma = models.iter().find(|m| m.id == d.a);
        let mb = models.iter().find(|m| m.id == d.b);
        if let (Some(ma), Some(mb)) = (ma, mb) {
            if ma.formula != mb.formula || ma.vcov != mb.vcov {
                return Err(kinds::kind_err(format!(
                    "difference test `{}` vs `{}`: both models must have the same formula and vcov (they differ by sample only)",
                    d.a, d.b
                )));
            }
            if ma.parsed.iv.is_some() {
                return Err(kinds::kind_err(format!(
                    "difference test `{}` vs `{}`: IV models are not supported",
                    d.a, d.b
                )));
            }
            if !ma.parsed.regressors.contains(&d.coef) {
                return Err(kinds::kind_err(format!(
                    "difference test `{}` vs `{}`: `{}` is not a regressor of `{}`",
                    d.a, d.b, d.coef, ma.formula
                )));
            }
        }
        match (d.method, d.reps, d.seed) {
            (DiffMethod::Permutation, Some(r), Some(_)) if r > 0 => {}
            (DiffMethod::Permutation, _, _) => {
                return Err(kinds::kind_err(format!(
                    "the permutation test `{}` vs `{}` needs `reps` (at least 1) and `seed`",
                    d.a, d.b
                )))
            }
            (DiffMethod::Stacked, None, None) => {}
            (DiffMethod::Stacked, _, _) => {
                return Err(kinds::kind_err(format!(
                    "`reps` and `seed` apply to `method: permutation` only (test `{}` vs `{}`)",
                    d.a, d.b
                )))
            }
        }
    }
    Ok(models)
}

/// `diff_<a>_<b>_<coef>_<method>`: the result file of one difference test.
fn diff_file_stem(d: &DifferenceEntry) -> String {
    let method = match d.method {
        DiffMethod::Stacked => "stacked",
        DiffMethod::Permutation => "permutation",
    };
    format!("diff_{}_{}_{}_{method}", d.a, d.b, d.coef)
}

/// What a table kind reads (its spec file and data) and writes (table `name` in every format,
/// then `extra`).
pub fn table_io(spec: &str, data: &str, name: &str, extra: Vec<String>) -> ImpliedIo {
    let mut outs = table_outputs(name);
    outs.extend(extra);
    ImpliedIo {
        deps: vec![spec.to_string(), data.to_string()],
        outs,
    }
}

/// The files of table `name` in every format.
pub fn table_outputs(name: &str) -> Vec<String> {
    ["tex", "md", "html", "csv"]
        .iter()
        .map(|ext| format!("output/tables/{name}.{ext}"))
        .collect()
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
        let frame = crate::dataio::read_estimator_frame(&ctx.root.join(&spec.data))?;
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
            let res = estimate(&sub, &m.formula, &m.vcov, &m.id)?;
            let json = result_json(&spec.data, m, &m.formula, &res);
            write_json(ctx, &format!("{results_dir}/{}.json", m.id), &json)?;
            let used: Vec<usize> = res.used_rows.iter().map(|&i| rows[i]).collect();
            rows_of.insert(m.id.clone(), used);
            let iv = m.parsed.iv.clone();
            columns.push(Column {
                model: m.clone(),
                outcome: m.parsed.outcome.clone(),
                fixed_effects: m.parsed.fixed_effects.iter().map(|f| f.name()).collect(),
                result: res,
                first_stage_of: None,
            });
            let Some(iv) = iv.filter(|_| m.first_stage) else {
                continue;
            };
            for endo in &iv.endogenous {
                let f = first_stage_formula(&m.parsed, endo);
                let res = estimate(&sub, &f, &m.vcov, &m.id)?;
                let json = result_json(&spec.data, m, &f, &res);
                write_json(
                    ctx,
                    &format!("{results_dir}/{}_first_stage_{endo}.json", m.id),
                    &json,
                )?;
                columns.push(Column {
                    model: m.clone(),
                    outcome: endo.clone(),
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
            write_json(ctx, &file, &outcome.json)?;
            diffs.push((d.clone(), outcome.p_value));
        }
        write_table(ctx, &spec.name, &build_table(spec, &columns, &diffs))
    }
}

/// `stage `x` failed`, with the problem as its first cause (location and hint kept).
pub fn stage_failed(ctx: &BuiltinCtx<'_>, d: Diagnostic) -> Diagnostic {
    crate::kinds::stage_failed(ctx.stage, d)
}

/// Writes `output/tables/<name>.{tex,md,html,csv}`.
pub fn write_table(ctx: &BuiltinCtx<'_>, name: &str, table: &Table) -> Result<(), Diagnostic> {
    for (ext, text) in table.render_all() {
        let rel = format!("output/tables/{name}.{ext}");
        kinds::write_output(ctx.root, &rel, text.as_bytes())
            .map_err(|e| Diagnostic::new(format!("cannot write `{rel}`")).cause(e.to_string()))?;
    }
    Ok(())
}

/// One column of the table.
struct Column {
    model: Model,
    outcome: String,
    fixed_effects: Vec<String>,
    result: FitResult,
    /// For a first-stage column, the endogenous variable it explains.
    first_stage_of: Option<String>,
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

fn estimate(frame: &Frame, formula: &str, vcov: &str, id: &str) -> Result<FitResult, Diagnostic> {
    let req = FitRequest {
        formula: formula.to_string(),
        vcov: vcov.to_string(),
        quantile: None,
        se: None,
        method: None,
        drop_singletons: false,
    };
    let spec = fitting::model_spec(&req)?;
    fit::fit(frame, &spec).map_err(|e| {
        let d = fitting::estim_diag(e);
        Diagnostic {
            message: format!("cannot estimate model `{id}` (`{formula}`)"),
            causes: std::iter::once(d.message).chain(d.causes).collect(),
            ..d
        }
    })
}

fn result_json(data: &str, m: &Model, formula: &str, res: &FitResult) -> serde_json::Value {
    let mut obj = serde_json::Map::new();
    obj.insert("id".into(), m.id.clone().into());
    obj.insert("formula".into(), formula.into());
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

pub fn write_json(
    ctx: &BuiltinCtx<'_>,
    rel: &str,
    v: &serde_json::Value,
) -> Result<(), Diagnostic> {
    let mut text = serde_json::to_string_pretty(v).unwrap_or_default();
    text.push('\n');
    kinds::write_output(ctx.root, rel, text.as_bytes())
        .map_err(|e| Diagnostic::new(format!("cannot write `{rel}`")).cause(e.to_string()))
}

struct DiffOutcome {
    p_value: f64,
    json: serde_json::Value,
}

/// The difference test between the rows used by models `a` and `b` (both fitted already).
fn difference(
    frame: &Frame,
    models: &[Model],
    rows_of: &BTreeMap<String, Vec<usize>>,
    d: &DifferenceEntry,
) -> Result<DiffOutcome, Diagnostic> {
    let fail =
        |m: String| Diagnostic::new(format!("difference test `{}` vs `{}`", d.a, d.b)).cause(m);
    let model = models
        .iter()
        .find(|m| m.id == d.a)
        .ok_or_else(|| fail(format!("no model `{}`", d.a)))?;
    let empty = Vec::new();
    let rows_a = rows_of.get(&d.a).unwrap_or(&empty);
    let rows_b = rows_of.get(&d.b).unwrap_or(&empty);
    let rows: Vec<usize> = rows_a.iter().chain(rows_b).copied().collect();
    let in_a: Vec<bool> = (0..rows.len()).map(|i| i < rows_a.len()).collect();
    let pick = |name: &str| -> Result<Vec<f64>, Diagnostic> {
        let col = sample::numeric_column(frame, name)?;
        Ok(rows.iter().map(|&i| col[i].unwrap_or(f64::NAN)).collect())
    };
    let y = pick(&model.parsed.outcome)?;
    let xs: Vec<Vec<f64>> = model
        .parsed
        .regressors
        .iter()
        .map(|r| pick(r))
        .collect::<Result<_, _>>()?;
    let x: Vec<&[f64]> = xs.iter().map(Vec::as_slice).collect();
    let fes: Vec<Vec<u32>> = model
        .parsed
        .fixed_effects
        .iter()
        .map(|t| sample::codes(frame, &t.variables, &rows))
        .collect::<Result<_, _>>()?;
    let fe: Vec<&[u32]> = fes.iter().map(Vec::as_slice).collect();
    let vcov: VcovSpec = model.vcov.parse().map_err(fitting::estim_diag)?;
    let clusters = match &vcov {
        VcovSpec::Cluster(vars) if vars.len() == 1 => Some(sample::codes(frame, vars, &rows)?),
        VcovSpec::Cluster(_) => {
            return Err(fail("two-way clustering is not supported".into())
                .hint("cluster the two models by one variable"))
        }
        VcovSpec::Iid | VcovSpec::Hc1 => None,
    };
    let data = DiffData {
        y: &y,
        x: &x,
        fixed_effects: &fe,
        clusters: clusters.as_deref(),
    };
    let coef = model
        .parsed
        .regressors
        .iter()
        .position(|r| r == &d.coef)
        .ok_or_else(|| fail(format!("`{}` is not a regressor", d.coef)))?;
    let estim = |e| {
        let inner = fitting::estim_diag(e);
        fail(inner.message)
    };
    let (p_value, detail) = match d.method {
        DiffMethod::Stacked => {
            let r = difftest::stacked_difference(&data, &in_a, coef).map_err(estim)?;
            (r.p_value, serde_json::to_value(&r))
        }
        DiffMethod::Permutation => {
            let opts = PermutationOptions {
                reps: d.reps.unwrap_or(0),
                seed: d.seed.unwrap_or(0),
            };
            let r =
                difftest::coefficient_permutation_test(&data, &in_a, coef, &opts).map_err(estim)?;
            (r.p_value, serde_json::to_value(&r))
        }
    };
    let mut obj = serde_json::Map::new();
    obj.insert("a".into(), d.a.clone().into());
    obj.insert("b".into(), d.b.clone().into());
    obj.insert("coef".into(), d.coef.clone().into());
    obj.insert(
        "method".into(),
        serde_json::to_value(d.method).unwrap_or_default(),
    );
    obj.insert("formula".into(), model.formula.clone().into());
    obj.insert("vcov".into(), model.vcov.clone().into());
    obj.insert("result".into(), detail.unwrap_or_default());
    Ok(DiffOutcome {
        p_value,
        json: serde_json::Value::Object(obj),
    })
}

fn label<'a>(labels: &'a IndexMap<String, String>, name: &'a str) -> &'a str {
    labels.get(name).map_or(name, String::as_str)
}

/// Capitalised set name (`controls` -> `Controls`) unless `labels` names it.
fn set_label(labels: &IndexMap<String, String>, set: &str) -> String {
    if let Some(l) = labels.get(set) {
        return l.clone();
    }
    let mut chars = set.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn push_unique(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_string());
    }
}

/// How a vcov string reads in the notes.
fn describe_vcov(v: &str) -> String {
    match v.parse::<VcovSpec>() {
        Ok(VcovSpec::Iid) => "iid".into(),
        Ok(VcovSpec::Hc1) => "heteroskedasticity-robust (HC1)".into(),
        Ok(VcovSpec::Cluster(vars)) => format!("clustered by {}", vars.join(" and ")),
        Err(_) => v.to_string(),
    }
}

fn build_table(spec: &ModelsSpec, columns: &[Column], diffs: &[(DifferenceEntry, f64)]) -> Table {
    let digits = spec.digits;
    let n = columns.len();
    let col_labels: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(k, c)| match (&c.model.label, &c.first_stage_of) {
            (Some(l), None) => l.clone(),
            _ => format!("({})", k + 1),
        })
        .collect();
    let groups = tables::spans(
        &columns
            .iter()
            .map(|c| c.model.group.clone())
            .collect::<Vec<_>>(),
    );
    let head = vec![Row {
        label: "Dependent variable".into(),
        cells: columns
            .iter()
            .map(|c| {
                let l = label(&spec.labels, &c.outcome);
                Cell::text(match c.first_stage_of {
                    Some(_) => format!("{l} (first stage)"),
                    None => l.to_string(),
                })
            })
            .collect(),
    }];

    // Coefficient rows.
    let set_members: Vec<&String> = spec.sets.values().flatten().collect();
    let terms: Vec<String> = match &spec.keep {
        Some(k) => k.clone(),
        None => {
            let mut t = Vec::new();
            for c in columns {
                for coef in &c.result.coefficients {
                    if !set_members.contains(&&coef.term) {
                        push_unique(&mut t, &coef.term);
                    }
                }
            }
            // The intercept goes last, as in esttab and etable.
            if let Some(i) = t.iter().position(|x| x == "Intercept") {
                let icpt = t.remove(i);
                t.push(icpt);
            }
            t
        }
    };
    let mut coefs = Vec::new();
    for term in &terms {
        let mut est = Vec::with_capacity(n);
        let mut se = Vec::with_capacity(n);
        for c in columns {
            match c.result.coefficient(term) {
                Some(k) => {
                    est.push(Cell {
                        text: tables::fixed(k.estimate, digits),
                        stars: fitting::stars(k.p_value),
                    });
                    se.push(tables::paren(k.std_error, digits));
                }
                None => {
                    est.push(Cell::empty());
                    se.push(Cell::empty());
                }
            }
        }
        coefs.push(Row {
            label: label(&spec.labels, term).to_string(),
            cells: est,
        });
        coefs.push(Row {
            label: String::new(),
            cells: se,
        });
    }

    // Set and fixed-effect indicator rows.
    let mut indicators = Vec::new();
    let yes_no = |b: bool| Cell::text(if b { "Yes" } else { "No" });
    for set in spec.sets.keys() {
        if !columns.iter().any(|c| c.model.sets_used.contains(set)) {
            // A set no model uses would be a row of `No`s; leave it out.
            continue;
        }
        indicators.push(Row {
            label: set_label(&spec.labels, set),
            cells: columns
                .iter()
                .map(|c| yes_no(c.model.sets_used.contains(set)))
                .collect(),
        });
    }
    let mut fe_terms = Vec::new();
    for c in columns {
        for f in &c.fixed_effects {
            push_unique(&mut fe_terms, f);
        }
    }
    for f in &fe_terms {
        indicators.push(Row {
            label: spec
                .fe_labels
                .get(f)
                .cloned()
                .unwrap_or_else(|| format!("{f} FE")),
            cells: columns
                .iter()
                .map(|c| yes_no(c.fixed_effects.contains(f)))
                .collect(),
        });
    }

    // Fit statistics.
    let mut stats = vec![Row {
        label: "Observations".into(),
        cells: columns
            .iter()
            .map(|c| Cell::text(fitting::thousands(c.result.nobs)))
            .collect(),
    }];
    let opt_row = |label: &str, f: &dyn Fn(&FitResult) -> Option<String>| -> Option<Row> {
        let cells: Vec<Option<String>> = columns.iter().map(|c| f(&c.result)).collect();
        cells.iter().any(Option::is_some).then(|| Row {
            label: label.to_string(),
            cells: cells
                .into_iter()
                .map(|c| c.map_or_else(Cell::empty, Cell::text))
                .collect(),
        })
    };
    stats.extend(opt_row("R-squared", &|r| {
        r.r2.map(|x| tables::fixed(x, digits))
    }));
    stats.extend(opt_row("Within R-squared", &|r| {
        r.r2_within.map(|x| tables::fixed(x, digits))
    }));
    let mut cluster_vars = Vec::new();
    for c in columns {
        if let Some(cc) = &c.result.n_clusters {
            for (v, _) in &cc.0 {
                push_unique(&mut cluster_vars, v);
            }
        }
    }
    for v in &cluster_vars {
        let row_label = if cluster_vars.len() == 1 {
            "Clusters".to_string()
        } else {
            format!("Clusters ({})", label(&spec.labels, v))
        };
        stats.extend(opt_row(&row_label, &|r| {
            r.n_clusters
                .as_ref()
                .and_then(|cc| cc.0.iter().find(|(name, _)| name == v))
                .map(|(_, k)| fitting::thousands(*k))
        }));
    }
    let mut endogenous = Vec::new();
    for c in columns {
        if let Some(fs) = &c.result.first_stage {
            for f in &fs.first_stage {
                push_unique(&mut endogenous, &f.endogenous);
            }
        }
    }
    for e in &endogenous {
        let row_label = if endogenous.len() == 1 {
            "First-stage F".to_string()
        } else {
            format!("First-stage F ({})", label(&spec.labels, e))
        };
        stats.extend(opt_row(&row_label, &|r| {
            r.first_stage
                .as_ref()
                .and_then(|fs| fs.first_stage.iter().find(|f| &f.endogenous == e))
                .map(|f| tables::fixed(f.f_stat, digits))
        }));
    }
    stats.extend(opt_row("Kleibergen-Paap F", &|r| {
        r.first_stage
            .as_ref()
            .and_then(|fs| fs.kleibergen_paap_f)
            .map(|x| tables::fixed(x, digits))
    }));

    // Difference tests: the p-value sits in column b, the row names both columns.
    let mut tests = Vec::new();
    let col_of = |id: &str| {
        columns
            .iter()
            .position(|c| c.model.id == id && c.first_stage_of.is_none())
    };
    for (d, p) in diffs {
        let (Some(a), Some(b)) = (col_of(&d.a), col_of(&d.b)) else {
            continue;
        };
        let mut cells = vec![Cell::empty(); n];
        cells[b] = Cell::text(tables::fixed(*p, digits));
        tests.push(Row {
            label: format!(
                "p-value ({}), {}: {} = {}",
                match d.method {
                    DiffMethod::Stacked => "stacked",
                    DiffMethod::Permutation => "permutation",
                },
                label(&spec.labels, &d.coef),
                col_labels[a],
                col_labels[b]
            ),
            cells,
        });
    }

    let mut notes = Vec::new();
    let mut vcovs: Vec<(String, Vec<String>)> = Vec::new();
    for (c, l) in columns.iter().zip(&col_labels) {
        let v = describe_vcov(&c.model.vcov);
        match vcovs.iter_mut().find(|(x, _)| *x == v) {
            Some((_, ls)) => ls.push(l.clone()),
            None => vcovs.push((v, vec![l.clone()])),
        }
    }
    if vcovs.len() == 1 {
        notes.push(format!("Standard errors in parentheses, {}.", vcovs[0].0));
    } else {
        let parts: Vec<String> = vcovs
            .iter()
            .map(|(v, ls)| format!("{} {v}", ls.join(", ")))
            .collect();
        notes.push(format!(
            "Standard errors in parentheses: {}.",
            parts.join("; ")
        ));
    }
    notes.push("* p<0.1, ** p<0.05, *** p<0.01".into());
    for (d, _) in diffs {
        let (Some(a), Some(b)) = (col_of(&d.a), col_of(&d.b)) else {
            continue;
        };
        let what = format!(
            "Difference test of {} between {} and {}",
            label(&spec.labels, &d.coef),
            col_labels[a],
            col_labels[b]
        );
        notes.push(match d.method {
            DiffMethod::Stacked => format!(
                "{what}: both regressions stacked with a joint covariance (as Stata's suest), normal p-value."
            ),
            DiffMethod::Permutation => format!(
                "{what}: Fisher permutation test of the group assignment, {} permutations, seed {}.",
                d.reps.unwrap_or(0),
                d.seed.unwrap_or(0)
            ),
        });
    }
    if let Some(extra) = &spec.notes {
        notes.push(extra.trim().to_string());
    }
    Table {
        title: spec.title.clone(),
        groups: if groups.iter().any(|g| !g.label.is_empty()) {
            groups
        } else {
            Vec::new()
        },
        columns: col_labels,
        sections: vec![head, coefs, indicators, stats, tests],
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
