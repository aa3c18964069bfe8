//! The spec of a `panel` stage: its fields and their defaults.
//!
//! Owns: the types `stages/panel.yaml` deserialises into, their default values and the list of
//! controls. Deliberately does not own: checking a spec against the codebook (`panel::parse`)
//! or building the panel (the other modules of `panel`).

use repro_kind::range::{FloatRange, IntRange};
use serde::{Deserialize, Deserializer, Serialize};

use crate::ranges::{first_year, last_year};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// ln(1 + x)
    Log1p,
    Level,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapReference {
    /// The mean per-capita GDP of the sample's cities in the year.
    Mean,
    /// The mean of the city's province.
    Province,
    /// The richest city of the year.
    Frontier,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanelSpec {
    pub yearbook: String,
    pub rd_province: String,
    pub index: String,
    #[serde(default = "default_cities")]
    pub cities: String,
    #[serde(deserialize_with = "first_year")]
    pub first_year: i32,
    #[serde(deserialize_with = "last_year")]
    pub last_year: i32,
    #[serde(default = "default_transform")]
    pub collab_transform: Transform,
    /// Which reference the main `gap` uses; the other two are always written as `gap_prov` /
    /// `gap_frontier` / `gap_mean`.
    #[serde(default = "default_reference")]
    pub gap_reference: GapReference,
    /// Two-sided winsorising share for the `_w` variants.
    #[serde(default = "default_winsor", deserialize_with = "winsorize")]
    pub winsorize: f64,
    /// Variables to lag one year (written as `<name>_l1`).
    #[serde(default = "default_lags")]
    pub lags: Vec<String>,
    /// Fill interior gaps of yearbook series by linear interpolation within a city.
    #[serde(default = "default_true")]
    pub interpolate: bool,
    /// NBS regions counted as eastern; every other city is central/western.
    #[serde(default = "default_east")]
    pub east_regions: Vec<String>,
    /// Capital's output elasticity in the TFP (Solow residual) computation.
    #[serde(default = "default_alpha", deserialize_with = "tfp_alpha")]
    pub tfp_alpha: f64,
    /// Nearest cities compared in the relative-price (market integration) measure.
    #[serde(default = "default_neighbours", deserialize_with = "neighbours")]
    pub integration_neighbours: usize,
    /// City-years missing any of these are left out of the panel (and counted in the report).
    #[serde(default = "default_require")]
    pub require: Vec<String>,
    /// The panel as CSV; a Parquet twin is written beside it.
    pub out: String,
    pub codebook: String,
    pub report: String,
}

/// `winsorize`: a two-sided share, so below one half (at one half nothing would be left
/// between the cut points).
const WINSORIZE: FloatRange = FloatRange {
    field: "`winsorize`",
    min: 0.0,
    max: 0.5,
    min_open: false,
    max_open: true,
};

fn winsorize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    repro_kind::range::float(d, &WINSORIZE)
}

/// `tfp_alpha`: an output elasticity of capital under constant returns, strictly between 0 and 1.
const TFP_ALPHA: FloatRange = FloatRange {
    field: "`tfp_alpha`",
    min: 0.0,
    max: 1.0,
    min_open: true,
    max_open: true,
};

fn tfp_alpha<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    repro_kind::range::float(d, &TFP_ALPHA)
}

/// `integration_neighbours`: the literature compares 5 to 10 nearest cities; past 100 (a third
/// of China's prefectures) they are no longer neighbours.
const NEIGHBOURS: IntRange = IntRange {
    field: "`integration_neighbours`",
    min: 1,
    max: 100,
};

fn neighbours<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    repro_kind::range::int(d, &NEIGHBOURS)
}

fn default_cities() -> String {
    "data/cities.csv".into()
}
fn default_transform() -> Transform {
    Transform::Log1p
}
fn default_reference() -> GapReference {
    GapReference::Mean
}
fn default_winsor() -> f64 {
    0.01
}
fn default_lags() -> Vec<String> {
    vec!["collab".into()]
}
fn default_true() -> bool {
    true
}
fn default_east() -> Vec<String> {
    vec!["east".into()]
}
fn default_alpha() -> f64 {
    0.4
}
fn default_neighbours() -> usize {
    5
}
fn default_require() -> Vec<String> {
    CONTROLS
        .iter()
        .map(|s| s.to_string())
        .chain(["gap".to_string(), "collab".to_string()])
        .collect()
}

/// The usual controls of this literature, in table order.
pub const CONTROLS: &[&str] = &[
    "indstr", "gov", "open", "fin", "hum", "dens", "infra", "info",
];
