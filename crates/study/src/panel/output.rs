//! The panel's rows and columns: which city-years it keeps, the lagged and winsorised
//! variants, the group flags, the table in codebook order and the stage's report.
//!
//! Owns: the sample rule (city-years with per-capita GDP and every required variable), the
//! `_l1` and `_w` columns, the flags from the city table and the first year's sector shares,
//! and the report's counts. Deliberately does not own: the variables themselves (`measures`),
//! the column list (`codebook`) or writing files (`panel::run`).

use std::collections::{BTreeMap, BTreeSet};

use super::codebook::CODEBOOK;
use super::grid::{Frame, Named, Vars};
use super::spec::PanelSpec;
use repro_tabular::table::{Col, Table};

/// Columns that get winsorised `_w` variants.
const WINSORISED: &[&str] = &[
    "gap", "collab", "indstr", "gov", "open", "fin", "hum", "dens", "infra", "info",
];

/// Codebook columns built from the city table and the grid rather than computed as variables:
/// they have no lag (`lags` naming one is skipped).
const NOT_VARIABLES: &[&str] = &[
    "city",
    "city_name",
    "province",
    "year",
    "east",
    "central_west",
    "coastal",
    "inland",
    "tertiary",
    "secondary",
    "agglo",
    "non_agglo",
    "capital",
    "municipality",
];

/// The panel's columns in the order [`table`] writes them, from the spec alone: the codebook's,
/// the lags, the winsorised variants.
pub fn column_names(spec: &PanelSpec) -> Vec<String> {
    let lagged = spec
        .lags
        .iter()
        .filter(|l| !NOT_VARIABLES.contains(&l.as_str()))
        .map(|l| format!("{l}_l1"));
    CODEBOOK
        .iter()
        .map(|e| e.name.to_string())
        .chain(lagged)
        .chain(WINSORISED.iter().map(|w| format!("{w}_w")))
        .collect()
}

/// The city-years the panel keeps, and why the others are left out.
pub struct Rows {
    /// (city, year) indices, city by city, year by year.
    pub keep: Vec<(usize, usize)>,
    /// City-years in the sample left out for a missing required variable, by the first one.
    pub dropped: BTreeMap<String, u64>,
    /// City-years without per-capita GDP.
    pub no_gdp: u64,
}

/// The variables the spec lags one year, as `<name>_l1` (blank in the first year).
pub fn lags(f: &Frame<'_>, vars: &Vars) -> Vec<Named> {
    let (spec, nt) = (f.spec, f.nt());
    let mut lagged: Vec<Named> = Vec::new();
    for name in &spec.lags {
        let Some(v) = vars.get(name.as_str()) else {
            continue;
        };
        let l = v
            .iter()
            .map(|row| {
                (0..nt)
                    .map(|t| if t == 0 { None } else { row[t - 1] })
                    .collect()
            })
            .collect();
        lagged.push((format!("{name}_l1"), l));
    }
    lagged
}

/// City-years in the sample with every required variable.
pub fn select_rows(f: &Frame<'_>, vars: &Vars) -> Rows {
    let (spec, n, nt) = (f.spec, f.n(), f.nt());
    let in_sample = |i: usize, t: usize| f.in_sample(i, t);
    let mut keep: Vec<(usize, usize)> = Vec::new();
    let mut dropped: BTreeMap<String, u64> = BTreeMap::new();
    let mut no_gdp = 0u64;
    for i in 0..n {
        for t in 0..nt {
            if !in_sample(i, t) {
                no_gdp += 1;
                continue;
            }
            let missing = spec
                .require
                .iter()
                .find(|v| vars.get(v.as_str()).is_some_and(|g| g[i][t].is_none()));
            if let Some(v) = missing {
                *dropped.entry(v.clone()).or_insert(0) += 1;
                continue;
            }
            keep.push((i, t));
        }
    }
    Rows {
        keep,
        dropped,
        no_gdp,
    }
}

/// Winsorised variants (`_w`) of [`WINSORISED`], at the spec's quantiles over the kept rows.
pub fn winsorise(f: &Frame<'_>, vars: &Vars, keep: &[(usize, usize)]) -> Vec<Named> {
    let spec = f.spec;
    let mut winsorised: Vec<Named> = Vec::new();
    for name in WINSORISED {
        let v = &vars[name];
        let mut values: Vec<f64> = keep.iter().filter_map(|&(i, t)| v[i][t]).collect();
        values.sort_by(f64::total_cmp);
        let (lo, hi) = (
            quantile_type7(&values, spec.winsorize),
            quantile_type7(&values, 1.0 - spec.winsorize),
        );
        let w = v
            .iter()
            .map(|row| row.iter().map(|x| x.map(|x| x.clamp(lo, hi))).collect())
            .collect();
        winsorised.push((format!("{name}_w"), w));
    }
    winsorised
}

/// The panel as a table: the codebook's columns in order, then the lags and winsorised variants.
pub fn table(
    f: &Frame<'_>,
    vars: &Vars,
    keep: &[(usize, usize)],
    lagged: &[Named],
    winsorised: &[Named],
) -> Table {
    let (spec, cities, years, g) = (f.spec, f.cities, &f.years, &f.yb);
    let n = f.n();
    // Tertiary-dominated: the tertiary share above the secondary in the first year.
    let tertiary: Vec<bool> = (0..n)
        .map(|i| match (g["ter_share"][i][0], g["sec_share"][i][0]) {
            (Some(t), Some(s)) => t > s,
            _ => false,
        })
        .collect();
    let mut table = Table::default();
    let east: Vec<bool> = cities
        .rows
        .iter()
        .map(|c| spec.east_regions.contains(&c.region))
        .collect();
    let ints = |value: &dyn Fn(usize, usize) -> i64| -> Col {
        Col::Int(keep.iter().map(|&(i, t)| Some(value(i, t))).collect())
    };
    for e in CODEBOOK {
        let col = match e.name {
            "city" => ints(&|i, _| i64::from(cities.rows[i].adcode)),
            "city_name" => Col::Text(
                keep.iter()
                    .map(|&(i, _)| Some(cities.rows[i].name.clone()))
                    .collect(),
            ),
            "province" => ints(&|i, _| i64::from(cities.rows[i].province_code)),
            "year" => ints(&|_, t| i64::from(years[t])),
            "east" => ints(&|i, _| i64::from(east[i])),
            "central_west" => ints(&|i, _| i64::from(!east[i])),
            "coastal" => ints(&|i, _| i64::from(cities.rows[i].coastal)),
            "inland" => ints(&|i, _| i64::from(!cities.rows[i].coastal)),
            "tertiary" => ints(&|i, _| i64::from(tertiary[i])),
            "secondary" => ints(&|i, _| i64::from(!tertiary[i])),
            "agglo" => ints(&|i, _| i64::from(cities.rows[i].agglomeration.is_some())),
            "non_agglo" => ints(&|i, _| i64::from(cities.rows[i].agglomeration.is_none())),
            "capital" => ints(&|i, _| i64::from(cities.rows[i].capital)),
            "municipality" => ints(&|i, _| i64::from(cities.rows[i].municipality)),
            name => {
                let v = &vars[name];
                Col::Float(keep.iter().map(|&(i, t)| v[i][t]).collect())
            }
        };
        table.push(e.name, col);
    }
    for (name, v) in lagged.iter().chain(winsorised) {
        table.push(
            name,
            Col::Float(keep.iter().map(|&(i, t)| v[i][t]).collect()),
        );
    }
    table
}

/// The stage's report: sample sizes and the study's headline statistic (mean collaboration per
/// 10,000 people by year over the kept rows).
pub fn report(f: &Frame<'_>, vars: &Vars, rows: &Rows, filled: usize) -> serde_json::Value {
    let (years, nt) = (&f.years, f.nt());
    let collab_raw = &vars["collab_raw"];
    let Rows {
        keep,
        dropped,
        no_gdp,
    } = rows;
    let cities_kept: BTreeSet<usize> = keep.iter().map(|&(i, _)| i).collect();
    let collab_mean: BTreeMap<String, f64> = (0..nt)
        .map(|t| {
            let v: Vec<f64> = keep
                .iter()
                .filter(|&&(_, tt)| tt == t)
                .filter_map(|&(i, _)| collab_raw[i][t])
                .collect();
            (
                years[t].to_string(),
                v.iter().sum::<f64>() / v.len().max(1) as f64,
            )
        })
        .collect();
    serde_json::json!({
        "rows": keep.len(),
        "cities": cities_kept.len(),
        "years": nt,
        "city_years_without_gdp": no_gdp,
        "dropped_missing_required": dropped,
        "cells_interpolated": filled,
        "mean_collab_per_10k_by_year": collab_mean,
    })
}

/// The sample quantile with linear interpolation (R's type 7, numpy's default).
fn quantile_type7(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}
