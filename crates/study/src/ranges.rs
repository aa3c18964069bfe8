//! The ranges of numeric spec fields that several study kinds share (years, shares).
//!
//! Owns: [`YEAR`], [`SHARE`] and their `deserialize_with` helpers. Deliberately does not own:
//! ranges of one kind's own fields (declared beside the field) or cross-field checks
//! (`last_year` after `first_year`, in each kind's `parse`).

use repro_kind::range::{FloatRange, IntRange};
use serde::Deserializer;

/// A calendar year of a study: modern statistics start well after 1900, and a year past 2100 is a
/// typo; each year costs memory and time in every stage, so an unbounded span could run away.
pub const YEAR: IntRange = IntRange {
    field: "a year",
    min: 1900,
    max: 2100,
};

pub fn first_year<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    let range = IntRange {
        field: "`first_year`",
        ..YEAR
    };
    repro_kind::range::int(d, &range)
}

pub fn last_year<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    let range = IntRange {
        field: "`last_year`",
        ..YEAR
    };
    repro_kind::range::int(d, &range)
}

/// A share of records given some defect: beyond one half the export is mostly mess, and the
/// shares of fatal defects must leave records that survive (synth divides by what is left).
pub const SHARE: FloatRange = FloatRange {
    field: "a share in `mess`",
    min: 0.0,
    max: 0.5,
    min_open: false,
    max_open: false,
};

pub fn share<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    repro_kind::range::float(d, &SHARE)
}
