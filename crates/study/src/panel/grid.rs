//! The shape every panel variable has: a grid of optional values by city and year, and the
//! context the steps that compute them share.
//!
//! Owns: the `Grid` type, the `Frame` (spec, cities, years and the yearbook's series as grids)
//! with the sample rule (a city-year with per-capita GDP), and the small cell-wise helpers (ratio,
//! log, map and zip of grids). Deliberately does not own: reading files (`inputs`) or any
//! variable's definition (`measures`, `output`).

use std::collections::BTreeMap;

use super::spec::PanelSpec;
use crate::places::Cities;

/// Values by city (the city table's order) and year (`first_year..=last_year`); `None` is a
/// missing value.
pub type Grid = Vec<Vec<Option<f64>>>;

/// A derived column that is not in the codebook's list: its name and values.
pub type Named = (String, Grid);

/// The panel's variables by codebook name.
pub type Vars = BTreeMap<&'static str, Grid>;

/// What every step of building the panel reads.
pub struct Frame<'a> {
    pub spec: &'a PanelSpec,
    pub cities: &'a Cities,
    pub years: Vec<i32>,
    /// The yearbook's series by column name, interior gaps filled when the spec asks.
    pub yb: BTreeMap<&'static str, Grid>,
    /// Whether each city-year is in the sample for year references (see [`Frame::in_sample`]).
    sample: Vec<Vec<bool>>,
}

impl<'a> Frame<'a> {
    pub fn new(
        spec: &'a PanelSpec,
        cities: &'a Cities,
        years: Vec<i32>,
        yb: BTreeMap<&'static str, Grid>,
    ) -> Self {
        let sample = yb["pcgdp"]
            .iter()
            .map(|row| row.iter().map(|v| v.is_some_and(|v| v > 0.0)).collect())
            .collect();
        Frame {
            spec,
            cities,
            years,
            yb,
            sample,
        }
    }

    /// The number of cities.
    pub fn n(&self) -> usize {
        self.cities.rows.len()
    }

    /// The number of years.
    pub fn nt(&self) -> usize {
        self.years.len()
    }

    /// The sample for year references: cities with per-capita GDP in the year.
    pub fn in_sample(&self, i: usize, t: usize) -> bool {
        self.sample[i][t]
    }

    /// A grid of nothing but missing values.
    pub fn blank(&self) -> Grid {
        vec![vec![None; self.nt()]; self.n()]
    }

    /// `f` of two yearbook series, cell by cell.
    pub fn zip(
        &self,
        a: &str,
        b: &str,
        f: &dyn Fn(Option<f64>, Option<f64>) -> Option<f64>,
    ) -> Grid {
        let (a, b) = (&self.yb[a], &self.yb[b]);
        (0..self.n())
            .map(|i| (0..self.nt()).map(|t| f(a[i][t], b[i][t])).collect())
            .collect()
    }
}

/// `a / b`, missing when either is or `b` is zero.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

/// The natural log of a positive value, missing otherwise.
pub fn ln(v: Option<f64>) -> Option<f64> {
    v.filter(|v| *v > 0.0).map(f64::ln)
}

/// `f` of every cell of `a`.
pub fn map(a: &Grid, f: &dyn Fn(Option<f64>) -> Option<f64>) -> Grid {
    a.iter()
        .map(|row| row.iter().map(|v| f(*v)).collect())
        .collect()
}
