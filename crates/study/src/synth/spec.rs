//! The spec of a `synth` stage: its fields, their defaults, the export's mess and the true
//! parameters of the data-generating process.
//!
//! Owns: the types `stages/synth.yaml` deserialises into and their default values.
//! Deliberately does not own: checking a spec (`synth::parse`) or using it (the other modules
//! of `synth`).

use repro_kind::range::{FloatRange, IntRange};
use serde::{Deserialize, Deserializer, Serialize};

use crate::ranges::{first_year, last_year, share};

/// The spec of a `synth` stage (`stages/synth.yaml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthSpec {
    pub seed: u64,
    #[serde(default = "default_cities")]
    pub cities: String,
    /// The gazetteer the addresses and organisation names are written from: county-level units,
    /// old names and the institution register (`data/*.README.md`).
    #[serde(default = "default_counties")]
    pub counties: String,
    #[serde(default = "default_place_history")]
    pub place_history: String,
    #[serde(default = "default_institutions")]
    pub institutions: String,
    #[serde(default = "default_first_year", deserialize_with = "first_year")]
    pub first_year: i32,
    #[serde(default = "default_last_year", deserialize_with = "last_year")]
    pub last_year: i32,
    /// About how many patent records to write (more records add single-applicant patents; the
    /// collaboration level is set by `collab_first`/`collab_last`).
    #[serde(default = "default_records", deserialize_with = "records")]
    pub records: u64,
    /// Target mean cross-city co-applied applications per 10,000 people in the first and last
    /// year (the study reports 0.306 in 2010 and 0.983 in 2020).
    #[serde(default = "default_collab_first", deserialize_with = "collab_first")]
    pub collab_first: f64,
    #[serde(default = "default_collab_last", deserialize_with = "collab_last")]
    pub collab_last: f64,
    pub out_dir: String,
    #[serde(default)]
    pub mess: Mess,
    /// How first applicants' addresses are written (shares of records; docs/dgp.md).
    #[serde(default)]
    pub address_forms: AddressForms,
    /// How firms' names are written (shares of firms; docs/dgp.md).
    #[serde(default)]
    pub firm_names: FirmNames,
    #[serde(default)]
    pub effects: Effects,
}

/// `records`: the export and every year's records are held in memory (a few hundred bytes a
/// record), so 20 million (about 6 GB of export text) is the most a workstation can take; the
/// default is 1,000,000. Too few for the collaboration level is caught when the stage runs,
/// with the least number that would do.
const RECORDS: IntRange = IntRange {
    field: "`records`",
    min: 1,
    max: 20_000_000,
};

fn records<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    repro_kind::range::int(d, &RECORDS)
}

/// Co-applied applications per 10,000 people: the study reports about 1; 100 would mean one
/// person in a hundred co-applying across cities every year, far beyond any real economy, and
/// would need more records than [`RECORDS`] allows.
const COLLAB: FloatRange = FloatRange {
    field: "collaboration level",
    min: 0.0,
    max: 100.0,
    min_open: true,
    max_open: false,
};

fn collab_first<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let range = FloatRange {
        field: "`collab_first`",
        ..COLLAB
    };
    repro_kind::range::float(d, &range)
}

fn collab_last<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let range = FloatRange {
        field: "`collab_last`",
        ..COLLAB
    };
    repro_kind::range::float(d, &range)
}

/// An effect of the data-generating process: they act on logs and shares, where 100 is already
/// a factor of e^100; a larger one overflows the draws instead of meaning anything.
const EFFECT: FloatRange = FloatRange {
    field: "an effect in `effects`",
    min: -100.0,
    max: 100.0,
    min_open: false,
    max_open: false,
};

fn effect<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    repro_kind::range::float(d, &EFFECT)
}

fn default_cities() -> String {
    "data/cities.csv".into()
}
fn default_counties() -> String {
    "data/counties.csv".into()
}
fn default_place_history() -> String {
    "data/place_history.csv".into()
}
fn default_institutions() -> String {
    "data/institutions.csv".into()
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
    #[serde(deserialize_with = "share")]
    pub duplicates: f64,
    #[serde(deserialize_with = "share")]
    pub bad_dates: f64,
    #[serde(deserialize_with = "share")]
    pub missing_applicants: f64,
    #[serde(deserialize_with = "share")]
    pub bad_numbers: f64,
    #[serde(deserialize_with = "share")]
    pub full_width: f64,
    #[serde(deserialize_with = "share")]
    pub stray_spaces: f64,
    #[serde(deserialize_with = "share")]
    pub blank_fields: f64,
    #[serde(deserialize_with = "share")]
    pub foreign: f64,
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
        }
    }
}

/// Shares of the forms a first applicant's address is written in (docs/dgp.md, "Addresses";
/// they must sum to 1). A form a city cannot take in a year (no county-level city, no old name
/// valid that year, no district name that is unique) is written as `full` instead.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AddressForms {
    /// Province, city, district or county, street: `广东省广州市天河区科技路8号`.
    pub full: f64,
    /// A county-level city only, sometimes after the province: `江苏太仓市学府路8号`.
    pub county_city: f64,
    /// A district or county only, with the province where its name is not unique nationally.
    pub district: f64,
    /// A name valid in the record's year that has changed since (`湖北省襄樊市…` in 2010).
    pub old_name: f64,
    /// A postcode written before the address, which names the province only (blank postcode
    /// cell): `430070 湖北省学府路8号`.
    pub postcode: f64,
    /// The province only, the postcode in its own cell.
    pub province_postcode: f64,
    /// The city, and a street named after another place: `日照市上海路556号`.
    pub other_street: f64,
    /// No place at all and no postcode: `科技路8号`.
    pub no_place: f64,
}

impl Default for AddressForms {
    fn default() -> Self {
        AddressForms {
            full: 0.42,
            county_city: 0.10,
            district: 0.10,
            old_name: 0.06,
            postcode: 0.06,
            province_postcode: 0.06,
            other_street: 0.16,
            no_place: 0.04,
        }
    }
}

impl AddressForms {
    /// The shares in the order of `address::AddressForm::ALL`.
    pub fn shares(&self) -> [f64; 8] {
        [
            self.full,
            self.county_city,
            self.district,
            self.old_name,
            self.postcode,
            self.province_postcode,
            self.other_street,
            self.no_place,
        ]
    }
}

/// Shares of the forms a firm's name is written in (docs/dgp.md, "Organisations"; they must sum
/// to 1). Universities and institutes are named separately.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FirmNames {
    /// The city's full name: `日照市华信科技有限公司`.
    pub city: f64,
    /// The city's short name: `日照华信科技有限公司`.
    pub city_short: f64,
    /// A county-level city of the prefecture: `昆山市华信科技有限公司` (in 苏州).
    pub county_city: f64,
    /// The province only: `江苏华信医药股份有限公司` (anywhere in the province).
    pub province: f64,
    /// No place: `华信恒达科技有限公司`.
    pub plain: f64,
}

impl Default for FirmNames {
    fn default() -> Self {
        FirmNames {
            city: 0.15,
            city_short: 0.15,
            county_city: 0.08,
            province: 0.12,
            plain: 0.50,
        }
    }
}

impl FirmNames {
    /// The shares in the order of `orgs::FIRM_FORMS`.
    pub fn shares(&self) -> [f64; 5] {
        [
            self.city,
            self.city_short,
            self.county_city,
            self.province,
            self.plain,
        ]
    }
}

/// The true parameters of the data-generating process (docs/dgp.md explains each).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Effects {
    /// Effect of collaboration, ln(1 + per 10,000), on the gap in core cities: central/western
    /// (non-eastern), inside an urban agglomeration and tertiary-dominated.
    #[serde(deserialize_with = "effect")]
    pub gap_core: f64,
    /// The same effect in every other city.
    #[serde(deserialize_with = "effect")]
    pub gap_other: f64,
    /// Effect of collaboration on the dispersion of the gap (the quantile slope).
    #[serde(deserialize_with = "effect")]
    pub gap_scale: f64,
    /// Base dispersion of the gap.
    #[serde(deserialize_with = "effect")]
    pub gap_scale_base: f64,
    /// Effect of the unobserved confounder on the gap and on ln collaboration intensity.
    #[serde(deserialize_with = "effect")]
    pub confounder_gap: f64,
    #[serde(deserialize_with = "effect")]
    pub confounder_collab: f64,
    /// Effect of the instrument (standardised historical post offices x national internet
    /// trend) on ln collaboration intensity.
    #[serde(deserialize_with = "effect")]
    pub instrument: f64,
    /// Effects of the controls on the gap.
    #[serde(deserialize_with = "effect")]
    pub gov: f64,
    #[serde(deserialize_with = "effect")]
    pub fin: f64,
    /// Effects of collaboration on the mechanism variables.
    #[serde(deserialize_with = "effect")]
    pub innovation: f64,
    /// Lagging cities (innovation below the mean) gain `innovation * (1 + catch_up)`, leading
    /// ones `innovation * (1 - catch_up)`: collaboration narrows the innovation gap.
    #[serde(deserialize_with = "effect")]
    pub innovation_catch_up: f64,
    #[serde(deserialize_with = "effect")]
    pub tfp: f64,
    #[serde(deserialize_with = "effect")]
    pub linkage: f64,
    #[serde(deserialize_with = "effect")]
    pub price_dispersion: f64,
    #[serde(deserialize_with = "effect")]
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
