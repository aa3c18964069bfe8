//! The fields of a `models` stage spec file and of one validated model.
//!
//! Owns: the serde mirror of the spec (`title`, `data`, `name`, `vcov`, `sets`, `labels`, `keep`,
//! `fe_labels`, `models`, `differences`, `notes`, `digits`, `caption`, `latex_label`,
//! `stars`, `below`, `dep_mean`, `adj_r2`) with unknown fields denied, and
//! [`Model`], a model after validation. Deliberately does not own: checking values (`validate`).

use indexmap::IndexMap;
use repro_estimators::formula::Formula;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::common::{default_digits, digits, REPLICATIONS};
use crate::sample::SampleSpec;
use crate::stars::StarsSpec;

/// The spec file of a `models` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsSpec {
    pub title: String,
    pub data: String,
    pub name: String,
    #[serde(default = "default_vcov")]
    pub vcov: Spanned<String>,
    /// Set name -> its variables, each with its place (for messages about it).
    #[serde(default)]
    pub sets: IndexMap<String, Vec<Spanned<String>>>,
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
    /// What the row under each estimate shows (default `se`).
    #[serde(default)]
    pub below: Below,
    /// A row with the mean of the dependent variable in each model's estimation sample.
    #[serde(default)]
    pub dep_mean: bool,
    /// Rows with the adjusted R-squared and adjusted within R-squared (fixest's `ar2`, `war2`).
    #[serde(default)]
    pub adj_r2: bool,
}

impl ModelsSpec {
    /// The sets without their places, as `{set}` expansion takes them.
    pub fn plain_sets(&self) -> IndexMap<String, Vec<String>> {
        (self.sets.iter())
            .map(|(k, vars)| (k.clone(), vars.iter().map(|v| v.value.clone()).collect()))
            .collect()
    }
}

/// The statistic under each estimate, as etable's `coefstat` and modelsummary's `statistic`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Below {
    /// Standard error in parentheses.
    #[default]
    Se,
    /// t (or z) statistic in parentheses.
    T,
    /// p-value in parentheses.
    P,
    /// 95% confidence interval in brackets.
    Ci,
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
    pub vcov: Option<Spanned<String>>,
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
    #[serde(default, deserialize_with = "reps")]
    pub reps: Option<usize>,
    #[serde(default)]
    pub seed: Option<u64>,
}

fn default_vcov() -> Spanned<String> {
    let nowhere = serde_saphyr::Location::UNKNOWN;
    Spanned::new("iid".to_string(), nowhere, nowhere)
}

fn reps<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    repro_kind::range::opt_int(d, &REPLICATIONS)
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

/// `diff_<a>_<b>_<coef>_<method>`: the result file of one difference test.
pub(super) fn diff_file_stem(d: &DifferenceEntry) -> String {
    let method = match d.method {
        DiffMethod::Stacked => "stacked",
        DiffMethod::Permutation => "permutation",
    };
    format!("diff_{}_{}_{}_{method}", d.a, d.b, d.coef)
}
