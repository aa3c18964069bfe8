//! The `quantiles` built-in kind: a coefficient's quantile process, as a table and a figure.
//!
//! Owns: its spec (`title`, `data`, `name`, `formula`, `sets`, `taus`, `methods`, `coef`, `se`,
//! `quantile_vcov`, `vcov`, `labels`, `sample`, `digits`), fitting the quantile regression at every
//! (method, tau) and the fixed-effects OLS reference (same formula, the spec's `vcov`), the result
//! JSON per fit, the table (rows: tau; per method a coefficient and a standard-error column) and
//! the figure's data (`output/figures/<name>.json`, the series exactly as plotted). Deliberately
//! does not own: the estimators, drawing (`figures`) or rendering tables (`tables`).
//!
//! Bands are estimate +/- 1.96 standard errors (normal critical value) for every series,
//! including the OLS reference.

use indexmap::IndexMap;
use rayon::prelude::*;
use repro_estimators::data::Frame;
use repro_estimators::fit;
use repro_estimators::result::FitResult;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::common::{
    check_name, default_digits, digits, expand_sets, quantile_se, spec_param, spec_path,
    stage_failed, to_location, write_json, write_table,
};
use crate::figures::{self, Panel, ProcessPoint, QuantileFigure, Reference};
use crate::fitting::{self, FitRequest};
use crate::sample::{self, SampleSpec};
use crate::stars::{Stars, StarsSpec};
use crate::table::{self as tables, Cell, Group, Row, Table};
use repro_kind::diag::Diagnostic;
use repro_kind::range::FloatRange;
use repro_kind::{BuiltinCtx, ImpliedIo, KindError};

/// Two-sided 95% normal critical value.
const Z95: f64 = 1.959_963_984_540_054;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantilesSpec {
    #[serde(default)]
    pub title: Option<String>,
    pub data: String,
    pub name: String,
    pub formula: Spanned<String>,
    #[serde(default)]
    pub sets: IndexMap<String, Vec<String>>,
    #[serde(default = "default_taus", deserialize_with = "taus")]
    pub taus: Vec<f64>,
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    pub coef: String,
    /// Standard errors of the `pooled` and `canay` quantile fits (`iid`, `nid`, `ker`,
    /// `bootstrap:REPS:SEED`); MM-QR's come from `mmqr_vcov`.
    #[serde(default, deserialize_with = "quantile_se")]
    pub se: Option<String>,
    /// Variance option of the `pooled` and `canay` quantile fits.
    #[serde(default = "default_iid")]
    pub quantile_vcov: String,
    /// Variance convention of the `mmqr` fits (`robust`, `xtqreg`, `mmqreg`, `mmqreg-robust`,
    /// `cluster:VAR`, `mmqreg-cluster:VAR`, `mmqreg-cluster-dfadj:VAR`; crates/estimators/VCOV.md).
    #[serde(default = "default_mmqr_vcov")]
    pub mmqr_vcov: String,
    /// Variance of the OLS reference.
    #[serde(default = "default_iid")]
    pub vcov: String,
    #[serde(default)]
    pub labels: IndexMap<String, String>,
    #[serde(default)]
    pub sample: Option<Spanned<String>>,
    #[serde(default = "default_digits", deserialize_with = "digits")]
    pub digits: usize,
    /// LaTeX `\caption`; with it (or `latex_label`) the `.tex` is a `table` float.
    #[serde(default)]
    pub caption: Option<String>,
    /// LaTeX `\label` key.
    #[serde(default)]
    pub latex_label: Option<String>,
    /// `none` or p-value thresholds (default `[0.1, 0.05, 0.01]`).
    #[serde(default)]
    pub stars: Option<StarsSpec>,
}

/// A quantile lies strictly between 0 and 1.
const TAU: FloatRange = FloatRange {
    field: "a tau in `taus`",
    min: 0.0,
    max: 1.0,
    min_open: true,
    max_open: true,
};

/// `taus`: each in [`TAU`], none twice (two fits of one tau would write one result file).
fn taus<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    let taus = repro_kind::range::floats(d, &TAU)?;
    for (i, t) in taus.iter().enumerate() {
        if taus[..i].contains(t) {
            return Err(serde::de::Error::custom(format!("`taus` lists {t} twice")));
        }
    }
    Ok(taus)
}

fn default_taus() -> Vec<f64> {
    (1..=9).map(|k| k as f64 / 10.0).collect()
}

fn default_methods() -> Vec<String> {
    vec!["pooled".into()]
}

fn default_iid() -> String {
    "iid".into()
}

fn default_mmqr_vcov() -> String {
    "robust".into()
}

/// A validated `quantiles` stage; only the spec path enters the definition (the spec file is a
/// dependency).
#[derive(Debug, Clone, Serialize)]
pub struct QuantilesStage {
    pub spec: String,
    #[serde(skip)]
    pub parsed: QuantilesSpec,
    #[serde(skip)]
    pub formula: String,
    #[serde(skip)]
    pub sample: Option<SampleSpec>,
    #[serde(skip)]
    pub stars: Stars,
}

/// The request of one quantile fit: MM-QR takes its variance convention from `mmqr_vcov` and has
/// no `se` option; the other methods take `quantile_vcov` and `se`.
fn quantile_request(s: &QuantilesSpec, formula: &str, method: &str, tau: f64) -> FitRequest {
    let mmqr = method == "mmqr";
    FitRequest {
        formula: formula.to_string(),
        vcov: if mmqr {
            s.mmqr_vcov.clone()
        } else {
            s.quantile_vcov.clone()
        },
        quantile: Some(tau),
        se: if mmqr { None } else { s.se.clone() },
        method: Some(method.to_string()),
        drop_singletons: false,
    }
}

fn ols_request(s: &QuantilesSpec, formula: &str) -> FitRequest {
    FitRequest {
        formula: formula.to_string(),
        vcov: s.vcov.clone(),
        quantile: None,
        se: None,
        method: None,
        drop_singletons: false,
    }
}

impl QuantilesStage {
    /// The bootstrap seed of the quantile standard errors, if any.
    pub fn seeds(&self) -> Vec<u64> {
        match self
            .parsed
            .se
            .as_deref()
            .map(str::parse::<repro_estimators::fit::QuantileSe>)
        {
            Some(Ok(repro_estimators::fit::QuantileSe::Bootstrap { seed, .. })) => vec![seed],
            _ => Vec::new(),
        }
    }
}

pub fn parse(
    params: serde_json::Value,
    root: &std::path::Path,
) -> Result<QuantilesStage, KindError> {
    let spec = spec_param(params)?;
    let mut parsed: QuantilesSpec = repro_kind::load_spec(root, &spec)?;
    parsed.data = spec_path("data", &parsed.data)?;
    check_name(&parsed.name)?;
    let at = to_location(&spec, &parsed.formula.referenced);
    let located = |message: String, hint: Option<String>| KindError {
        message,
        hint,
        location: Some(at.clone()),
    };
    let (formula, _) =
        expand_sets(&parsed.formula.value, &parsed.sets).map_err(|m| located(m, None))?;
    if parsed.taus.is_empty() || parsed.methods.is_empty() {
        return Err(repro_kind::kind_err(format!(
            "`{spec}` needs at least one tau in `taus` and one method in `methods`"
        )));
    }
    let mut checks = vec![ols_request(&parsed, &formula)];
    for m in &parsed.methods {
        for &t in &parsed.taus {
            checks.push(quantile_request(&parsed, &formula, m, t));
        }
    }
    for req in &checks {
        fitting::model_spec(req).map_err(|d| {
            let message = match d.snippet {
                Some(s) => format!("{}\n{s}", d.message),
                None => d.message,
            };
            located(message, d.hint)
        })?;
    }
    let parsed_formula =
        repro_estimators::formula::parse(&formula).map_err(|e| located(e.to_string(), None))?;
    if parsed_formula.fixed_effects.len() > 1 {
        if let Some(m) = parsed
            .methods
            .iter()
            .find(|m| *m == "mmqr" || *m == "canay")
        {
            return Err(located(
                format!(
                    "method `{m}` takes one fixed effect; `{formula}` has {}",
                    parsed_formula.fixed_effects.len()
                ),
                Some("keep one fixed effect for this method, or use `methods: [pooled]`".into()),
            ));
        }
    }
    if !parsed_formula.regressors.contains(&parsed.coef) {
        return Err(located(
            format!("`coef` `{}` is not a regressor of `{formula}`", parsed.coef),
            None,
        ));
    }
    let sample = SampleSpec::from_spec(&spec, parsed.sample.as_ref())?;
    let stars = Stars::from_spec(&spec, parsed.stars.as_ref())?;
    Ok(QuantilesStage {
        spec,
        parsed,
        formula,
        sample,
        stars,
    })
}

fn method_title(m: &str) -> String {
    match m {
        "pooled" => "Pooled QR (FE dummies)".into(),
        "mmqr" => "MMQR".into(),
        "canay" => "Canay two-step".into(),
        other => other.to_string(),
    }
}

/// A tau as the table rows and result files name it: two decimals (`0.50`) when they are the
/// exact value, else the shortest decimal that reads back as the same number (`0.101`), so
/// distinct taus never share a name (two that printed alike overwrote each other's file).
fn tau_text(t: f64) -> String {
    let two = format!("{t:.2}");
    if two.parse::<f64>() == Ok(t) {
        two
    } else {
        t.to_string()
    }
}

impl QuantilesStage {
    fn figure_base(&self) -> String {
        format!("output/figures/{}", self.parsed.name)
    }

    pub fn implied_io(&self) -> ImpliedIo {
        let name = &self.parsed.name;
        let mut extra = vec![format!("output/results/{name}")];
        for ext in ["svg", "pdf", "png", "json"] {
            extra.push(format!("{}.{ext}", self.figure_base()));
        }
        crate::common::table_io(&self.spec, &self.parsed.data, name, extra)
    }

    pub fn run(&self, ctx: &BuiltinCtx<'_>) -> Result<(), Diagnostic> {
        self.run_inner(ctx).map_err(|d| stage_failed(ctx, d))
    }

    /// The variables of the formula, the vcov options and the sample that the data file's known
    /// columns lack (`crate::columns`).
    pub fn check_columns(&self, ctx: &repro_kind::columns::ColumnsCtx<'_>) -> Vec<Diagnostic> {
        let Ok(formula) = repro_estimators::formula::parse(&self.formula) else {
            return Vec::new();
        };
        let s = &self.parsed;
        let at = to_location(&self.spec, &s.formula.referenced);
        let places = crate::columns::ModelPlaces {
            name: "",
            formula: at.clone(),
            vcov: at,
            own_vcov: false,
        };
        let vcovs = [
            ("vcov", s.vcov.as_str()),
            ("quantile_vcov", &s.quantile_vcov),
            ("mmqr_vcov", &s.mmqr_vcov),
        ];
        let reads = crate::columns::model_reads(&formula, &vcovs, self.sample.as_ref(), &places);
        crate::columns::check(ctx, &s.data, &reads)
    }

    fn run_inner(&self, ctx: &BuiltinCtx<'_>) -> Result<(), Diagnostic> {
        let s = &self.parsed;
        let frame = sample::load(ctx.root, &s.data, self.sample.as_ref())?;
        let results = format!("output/results/{}", s.name);
        let ols_req = ols_request(s, &self.formula);
        // Every fit at once, in parallel (each is independent and its arithmetic does not depend
        // on the thread it runs on); results are used in the order below, so files, the first
        // error reported and the table are those of fitting one after the other.
        let requests: Vec<FitRequest> = std::iter::once(ols_req.clone())
            .chain(s.methods.iter().flat_map(|m| {
                s.taus
                    .iter()
                    .map(move |&t| quantile_request(s, &self.formula, m, t))
            }))
            .collect();
        let mut estimates = requests
            .par_iter()
            .map(|req| estimate(&frame, req))
            .collect::<Vec<_>>()
            .into_iter();
        let mut next = || estimates.next().expect("one estimate per request");
        let ols = next()?;
        let json = self.result_json(&ols_req, "ols", &ols);
        write_json(ctx, &format!("{results}/ols.json"), &json)?;
        let ols_coef = coefficient(&ols, &s.coef)?;
        let mut panels = Vec::new();
        let mut fits: Vec<Vec<FitResult>> = Vec::new();
        for m in &s.methods {
            let mut series = Vec::new();
            let mut per_tau = Vec::new();
            for &t in &s.taus {
                let req = quantile_request(s, &self.formula, m, t);
                let res = next()?;
                let id = format!("{m}_tau{}", tau_text(t));
                let json = self.result_json(&req, &id, &res);
                write_json(ctx, &format!("{results}/{id}.json"), &json)?;
                let c = coefficient(&res, &s.coef)?;
                series.push(ProcessPoint {
                    tau: t,
                    coef: c.estimate,
                    se: c.std_error,
                    lo: c.estimate - Z95 * c.std_error,
                    hi: c.estimate + Z95 * c.std_error,
                });
                per_tau.push(res);
            }
            panels.push(Panel {
                method: m.clone(),
                title: method_title(m),
                series,
            });
            fits.push(per_tau);
        }
        let reference = Reference {
            label: format!("FE OLS ({})", s.vcov),
            coef: ols_coef.estimate,
            se: ols_coef.std_error,
            lo: ols_coef.estimate - Z95 * ols_coef.std_error,
            hi: ols_coef.estimate + Z95 * ols_coef.std_error,
        };
        let (x_range, y_range) = figures::axis_ranges(&panels, &reference);
        let coef_label = s.labels.get(&s.coef).cloned().unwrap_or(s.coef.clone());
        let title = s
            .title
            .clone()
            .unwrap_or_else(|| format!("Quantile process of {coef_label}"));
        let fig = QuantileFigure {
            title: title.clone(),
            y_label: format!("Coefficient on {coef_label}"),
            series_label: coef_label.to_string(),
            level: 0.95,
            panels,
            ols: reference,
            x_range,
            y_range,
        };
        figures::write_figure(ctx, &self.figure_base(), &fig, "the figure")?;
        write_table(ctx, &s.name, &self.table(&title, &coef_label, &fits, &ols))
    }

    fn table(
        &self,
        title: &str,
        coef_label: &str,
        fits: &[Vec<FitResult>],
        ols: &FitResult,
    ) -> Table {
        let s = &self.parsed;
        let d = s.digits;
        let pair = |c: Option<&repro_estimators::result::Coefficient>| match c {
            Some(c) => vec![
                Cell {
                    text: tables::fixed(c.estimate, d),
                    stars: self.stars.mark(c.p_value),
                },
                tables::paren(c.std_error, d),
            ],
            None => vec![Cell::empty(), Cell::empty()],
        };
        let mut rows = Vec::new();
        for (k, &t) in s.taus.iter().enumerate() {
            let mut cells = Vec::new();
            for per_tau in fits {
                cells.extend(pair(per_tau.get(k).and_then(|r| r.coefficient(&s.coef))));
            }
            rows.push(Row {
                label: tau_text(t),
                cells,
            });
        }
        let ols_cells: Vec<Cell> = fits
            .iter()
            .flat_map(|_| pair(ols.coefficient(&s.coef)))
            .collect();
        let reference = vec![Row {
            label: "FE OLS".into(),
            cells: ols_cells,
        }];
        let n_row = vec![Row {
            label: "Observations".into(),
            cells: fits
                .iter()
                .flat_map(|per_tau| {
                    let n = per_tau
                        .first()
                        .map_or(String::new(), |r| fitting::thousands(r.nobs));
                    [Cell::text(n), Cell::empty()]
                })
                .collect(),
        }];
        Table {
            title: title.to_string(),
            groups: s
                .methods
                .iter()
                .map(|m| Group {
                    label: method_title(m),
                    span: 2,
                })
                .collect(),
            columns: s
                .methods
                .iter()
                .flat_map(|_| [coef_label.to_string(), "SE".to_string()])
                .collect(),
            sections: vec![rows, reference, n_row],
            notes: [
                format!("Model: {}.", self.formula),
                format!(
                    "Rows: quantile tau. Standard errors: {}; FE OLS: {}.",
                    self.quantile_se_notes().join("; "),
                    describe_vcov(&s.vcov)
                ),
            ]
            .into_iter()
            .chain(self.stars.note())
            .collect(),
            caption: s.caption.clone(),
            label: s.latex_label.clone(),
            ..Table::default()
        }
    }
}

impl QuantilesStage {
    /// How each method's standard errors were computed, in `methods` order.
    fn quantile_se_notes(&self) -> Vec<String> {
        let s = &self.parsed;
        s.methods
            .iter()
            .map(|m| {
                let how = if m == "mmqr" {
                    describe_vcov(&s.mmqr_vcov)
                } else {
                    let se = s.se.as_deref().unwrap_or("nid");
                    if s.quantile_vcov == "iid" {
                        se.to_string()
                    } else {
                        format!("{se}, {}", describe_vcov(&s.quantile_vcov))
                    }
                };
                format!("{} {how}", method_title(m))
            })
            .collect()
    }
}

/// A vcov option as the notes name it.
fn describe_vcov(v: &str) -> String {
    v.parse::<repro_estimators::fit::VcovSpec>()
        .map_or_else(|_| v.to_string(), |spec| spec.describe())
}

fn estimate(frame: &Frame, req: &FitRequest) -> Result<FitResult, Diagnostic> {
    let spec = fitting::model_spec(req)?;
    fit::fit(frame, &spec).map_err(|e| {
        let d = fitting::fit_diag(e, req);
        let what = match (req.quantile, &req.method) {
            (Some(t), Some(m)) => format!("the {m} quantile regression at tau {t}"),
            _ => "the OLS reference".to_string(),
        };
        Diagnostic {
            message: format!("cannot estimate {what} (`{}`)", req.formula),
            causes: std::iter::once(d.message).chain(d.causes).collect(),
            ..d
        }
    })
}

fn coefficient<'a>(
    res: &'a FitResult,
    coef: &str,
) -> Result<&'a repro_estimators::result::Coefficient, Diagnostic> {
    res.coefficient(coef).ok_or_else(|| {
        Diagnostic::new(format!("`{coef}` has no estimate in `{}`", res.formula))
            .cause(res.messages.join("; "))
    })
}

impl QuantilesStage {
    /// A fit's result JSON: what produced it (`produced_by`), then the `repro fit --json` object.
    fn result_json(&self, req: &FitRequest, id: &str, res: &FitResult) -> serde_json::Value {
        let mut obj = serde_json::Map::new();
        let mut producer = fitting::producer(req, &self.spec, id);
        producer["printed"] = crate::common::printed(self.parsed.digits, &self.stars);
        obj.insert("produced_by".into(), producer);
        if let serde_json::Value::Object(rest) = fitting::to_json(&self.parsed.data, res) {
            obj.extend(rest);
        }
        serde_json::Value::Object(obj)
    }
}

#[cfg(test)]
mod tests {
    use super::tau_text;

    #[test]
    fn taus_that_print_alike_get_distinct_names() {
        assert_eq!(tau_text(0.5), "0.50");
        assert_eq!(tau_text(0.1), "0.10");
        assert_eq!(tau_text(0.101), "0.101");
        assert_eq!(tau_text(0.104), "0.104");
    }

    proptest::proptest! {
        /// A name reads back as its tau, so distinct taus never share a name.
        #[test]
        fn a_tau_reads_back_from_its_name(t in 0.0f64..1.0) {
            proptest::prop_assert_eq!(tau_text(t).parse::<f64>(), Ok(t));
        }
    }
}
