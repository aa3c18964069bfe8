//! The spec of a `synth` stage: its fields, their defaults, the export's mess and the true
//! parameters of the data-generating process.
//!
//! Owns: the types `stages/synth.yaml` deserialises into and their default values.
//! Deliberately does not own: checking a spec (`synth::parse`) or using it (the other modules
//! of `synth`).

use serde::{Deserialize, Serialize};

/// The spec of a `synth` stage (`stages/synth.yaml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthSpec {
    pub seed: u64,
    #[serde(default = "default_cities")]
    pub cities: String,
    #[serde(default = "default_first_year")]
    pub first_year: i32,
    #[serde(default = "default_last_year")]
    pub last_year: i32,
    /// About how many patent records to write (more records add single-applicant patents; the
    /// collaboration level is set by `collab_first`/`collab_last`).
    #[serde(default = "default_records")]
    pub records: u64,
    /// Target mean cross-city co-applied applications per 10,000 people in the first and last
    /// year (the study reports 0.306 in 2010 and 0.983 in 2020).
    #[serde(default = "default_collab_first")]
    pub collab_first: f64,
    #[serde(default = "default_collab_last")]
    pub collab_last: f64,
    pub out_dir: String,
    #[serde(default)]
    pub mess: Mess,
    #[serde(default)]
    pub effects: Effects,
}

fn default_cities() -> String {
    "data/cities.csv".into()
}
fn default_first_year() -> i32 {
    2010
}
fn default_last_year() -> i32 {
    2020
}
fn default_records() -> u64 {
    1_000_000
}
fn default_collab_first() -> f64 {
    0.306
}
fn default_collab_last() -> f64 {
    0.983
}

/// How messy the export is: shares of records.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mess {
    pub duplicates: f64,
    pub bad_dates: f64,
    pub missing_applicants: f64,
    pub bad_numbers: f64,
    pub full_width: f64,
    pub stray_spaces: f64,
    pub blank_fields: f64,
    pub foreign: f64,
    /// Share of first-applicant addresses written without the city (the postcode then tells).
    pub address_without_city: f64,
}

impl Default for Mess {
    fn default() -> Self {
        Mess {
            duplicates: 0.01,
            bad_dates: 0.003,
            missing_applicants: 0.001,
            bad_numbers: 0.001,
            full_width: 0.05,
            stray_spaces: 0.05,
            blank_fields: 0.01,
            foreign: 0.01,
            address_without_city: 0.08,
        }
    }
}

/// The true parameters of the data-generating process (docs/dgp.md explains each).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Effects {
    /// Effect of collaboration, ln(1 + per 10,000), on the gap in core cities: central/western
    /// (non-eastern), inside an urban agglomeration and tertiary-dominated.
    pub gap_core: f64,
    /// The same effect in every other city.
    pub gap_other: f64,
    /// Effect of collaboration on the dispersion of the gap (the quantile slope).
    pub gap_scale: f64,
    /// Base dispersion of the gap.
    pub gap_scale_base: f64,
    /// Effect of the unobserved confounder on the gap and on ln collaboration intensity.
    pub confounder_gap: f64,
    pub confounder_collab: f64,
    /// Effect of the instrument (standardised historical post offices x national internet
    /// trend) on ln collaboration intensity.
    pub instrument: f64,
    /// Effects of the controls on the gap.
    pub gov: f64,
    pub fin: f64,
    /// Effects of collaboration on the mechanism variables.
    pub innovation: f64,
    /// Lagging cities (innovation below the mean) gain `innovation * (1 + catch_up)`, leading
    /// ones `innovation * (1 - catch_up)`: collaboration narrows the innovation gap.
    pub innovation_catch_up: f64,
    pub tfp: f64,
    pub linkage: f64,
    pub price_dispersion: f64,
    pub specialisation: f64,
}

impl Default for Effects {
    fn default() -> Self {
        Effects {
            gap_core: -0.25,
            gap_other: 0.0,
            gap_scale: 0.08,
            gap_scale_base: 0.025,
            confounder_gap: 0.02,
            confounder_collab: 0.5,
            instrument: 0.5,
            gov: 0.3,
            fin: 0.02,
            innovation: 0.5,
            innovation_catch_up: 0.6,
            tfp: 0.08,
            linkage: 0.3,
            price_dispersion: 0.8,
            specialisation: 0.15,
        }
    }
}
