//! The `panel` built-in kind: the city-year analysis panel and its codebook.
//!
//! Owns: joining the yearbook, the province R&D table and the collaboration index; filling
//! interior gaps of yearbook series; the economic-gap measures; the controls; the mechanism
//! variables (innovation capability and gap, TFP, gravity linkage, market integration by the
//! relative-price method, specialisation, cross-province R&D flows); the instrument; lags,
//! winsorised variants and the group flags; and the codebook that defines every column.
//! Deliberately does not own: counting collaboration (`collab`) or estimating anything.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::places::{distance_km, Cities};
use crate::yearbook;
use repro_kind::diag::Diagnostic;
use repro_kind::KindError;
use repro_tabular::table::{self as tabular, Col, Table};

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
    pub first_year: i32,
    pub last_year: i32,
    #[serde(default = "default_transform")]
    pub collab_transform: Transform,
    /// Which reference the main `gap` uses; the other two are always written as `gap_prov` /
    /// `gap_frontier` / `gap_mean`.
    #[serde(default = "default_reference")]
    pub gap_reference: GapReference,
    /// Two-sided winsorising share for the `_w` variants.
    #[serde(default = "default_winsor")]
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
    #[serde(default = "default_alpha")]
    pub tfp_alpha: f64,
    /// Nearest cities compared in the relative-price (market integration) measure.
    #[serde(default = "default_neighbours")]
    pub integration_neighbours: usize,
    /// City-years missing any of these are left out of the panel (and counted in the report).
    #[serde(default = "default_require")]
    pub require: Vec<String>,
    /// The panel as CSV; a Parquet twin is written beside it.
    pub out: String,
    pub codebook: String,
    pub report: String,
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

pub fn parse(spec_path: &str, root: &Path) -> Result<PanelSpec, KindError> {
    let spec: PanelSpec = repro_kind::load_spec(root, spec_path)?;
    let bad = |m: String| repro_kind::spec_err(spec_path, m);
    repro_kind::check_spec_paths(
        spec_path,
        [
            &spec.yearbook,
            &spec.rd_province,
            &spec.index,
            &spec.cities,
            &spec.out,
            &spec.codebook,
            &spec.report,
        ],
    )?;
    repro_kind::check_csv_out(spec_path, &spec.out)?;
    if !(0.0..0.5).contains(&spec.winsorize) {
        return Err(bad("`winsorize` must be in [0, 0.5)".into()));
    }
    if !(0.0..1.0).contains(&spec.tfp_alpha) || spec.tfp_alpha == 0.0 {
        return Err(bad("`tfp_alpha` must be in (0, 1)".into()));
    }
    if spec.integration_neighbours == 0 {
        return Err(bad("`integration_neighbours` must be at least 1".into()));
    }
    let known: Vec<&str> = CODEBOOK.iter().map(|e| e.name).collect();
    for v in spec.lags.iter().chain(&spec.require) {
        if !known.contains(&v.as_str()) {
            return Err(KindError {
                hint: Some(format!("panel variables: {}", known.join(", "))),
                ..bad(format!("unknown panel variable `{v}`"))
            });
        }
    }
    Ok(spec)
}

pub fn deps(spec: &PanelSpec) -> Vec<String> {
    vec![
        spec.yearbook.clone(),
        spec.rd_province.clone(),
        spec.index.clone(),
        spec.cities.clone(),
    ]
}

pub fn outs(spec: &PanelSpec) -> Vec<String> {
    vec![
        spec.out.clone(),
        tabular::parquet_twin(&spec.out),
        spec.codebook.clone(),
        spec.report.clone(),
    ]
}

/// One codebook entry: the column, its label, its definition and its source.
pub struct Entry {
    pub name: &'static str,
    pub label: &'static str,
    pub definition: &'static str,
    pub source: &'static str,
}

const YB: &str = "yearbook";
const IDX: &str = "collaboration index (patent applications)";

/// Every column of the panel, in output order. Lags (`_l1`) and winsorised (`_w`) variants are
/// documented by rule under the table.
pub const CODEBOOK: &[Entry] = &[
    Entry { name: "city", label: "City", definition: "6-digit administrative code of the prefecture-level city", source: "city table" },
    Entry { name: "city_name", label: "City name", definition: "Official Chinese name", source: "city table" },
    Entry { name: "province", label: "Province", definition: "2-digit province code", source: "city table" },
    Entry { name: "year", label: "Year", definition: "Calendar year", source: "yearbook" },
    Entry { name: "gap", label: "Economic gap", definition: "The spec's chosen gap measure (default `gap_mean`)", source: YB },
    Entry { name: "gap_mean", label: "Economic gap (sample mean)", definition: "|ln pcGDP_it - ln(mean over the year's sample cities of pcGDP)|", source: YB },
    Entry { name: "gap_prov", label: "Economic gap (province mean)", definition: "|ln pcGDP_it - ln(mean pcGDP of the city's province in the year)|; 0 for a single-city province", source: YB },
    Entry { name: "gap_frontier", label: "Economic gap (frontier)", definition: "ln(max over the year's sample cities of pcGDP) - ln pcGDP_it", source: YB },
    Entry { name: "collab", label: "Collaborative innovation", definition: "Cross-city co-applied applications per 10,000 people, ln(1 + x) by default (`collab_transform`)", source: IDX },
    Entry { name: "collab_raw", label: "Collaboration per 10,000 (level)", definition: "Cross-city co-applied applications per 10,000 people", source: IDX },
    Entry { name: "collab_cp", label: "Cross-province collaboration", definition: "Co-applied applications with applicants in two or more provinces per 10,000 people, transformed as `collab`", source: IDX },
    Entry { name: "collab_inv", label: "Invention collaboration", definition: "Cross-city co-applied invention applications per 10,000 people, transformed as `collab`", source: IDX },
    Entry { name: "collab_frac", label: "Collaboration (fractional)", definition: "Fractionally counted cross-city co-applied applications per 10,000 people (the city's share of each application's applicants), transformed as `collab`", source: IDX },
    Entry { name: "iv_hist", label: "Instrument", definition: "ln(post offices per 10,000 people in 1984) x national internet users per 100 people in the year (shift-share)", source: YB },
    Entry { name: "indstr", label: "Industrial structure", definition: "Tertiary share of GDP / secondary share of GDP", source: YB },
    Entry { name: "gov", label: "Government intervention", definition: "General budget expenditure / GDP", source: YB },
    Entry { name: "open", label: "Openness", definition: "Foreign direct investment actually used / GDP", source: YB },
    Entry { name: "fin", label: "Financial development", definition: "Year-end loans of financial institutions / GDP", source: YB },
    Entry { name: "hum", label: "Human capital", definition: "ln(college students per 10,000 people)", source: YB },
    Entry { name: "dens", label: "Population density", definition: "ln(persons per square kilometre)", source: YB },
    Entry { name: "infra", label: "Infrastructure", definition: "Road area per capita (square metres)", source: YB },
    Entry { name: "info", label: "Informatisation", definition: "Internet broadband users per 100 people", source: YB },
    Entry { name: "innov", label: "Innovation capability", definition: "ln(city innovation index)", source: YB },
    Entry { name: "innov_gap", label: "Innovation gap", definition: "|ln innovation index_it - ln(mean over the year's sample cities)|", source: YB },
    Entry { name: "tfp", label: "Total factor productivity", definition: "ln GDP - alpha ln capital stock - (1 - alpha) ln employment (Solow residual; alpha = `tfp_alpha`)", source: YB },
    Entry { name: "linkage", label: "City linkage", definition: "ln(sum over other sample cities j of V_i V_j / d_ij^2): gravity model with passenger volume V (10,000 persons) and great-circle distance d (km)", source: YB },
    Entry { name: "mkt_integ", label: "Market integration", definition: "-0.5 ln(mean over the k nearest cities of the variance across goods of the de-meaned |ln P_ik - ln P_jk|), P = price index, previous year = 100 (relative-price method)", source: YB },
    Entry { name: "division", label: "Division of labour", definition: "Krugman specialisation index: sum over sectors of |employment share - national share|", source: YB },
    Entry { name: "rd_fund_flow", label: "R&D fund inflow", definition: "ln(sum over other provinces q of R&D spending_q x (wage_i / mean wage_q) / d(i, capital of q)^2)", source: "province R&D table, yearbook" },
    Entry { name: "rd_staff_flow", label: "R&D personnel inflow", definition: "As `rd_fund_flow` with R&D personnel (full-time equivalent) in place of spending", source: "province R&D table, yearbook" },
    Entry { name: "pcgdp", label: "GDP per capita", definition: "Yuan", source: YB },
    Entry { name: "pop", label: "Population", definition: "10,000 persons, year end", source: YB },
    Entry { name: "east", label: "Eastern", definition: "1 if the city's NBS region is in `east_regions`", source: "city table" },
    Entry { name: "central_west", label: "Central/western", definition: "1 - east", source: "city table" },
    Entry { name: "coastal", label: "Coastal", definition: "1 if the city borders the sea", source: "city table" },
    Entry { name: "inland", label: "Inland", definition: "1 - coastal", source: "city table" },
    Entry { name: "tertiary", label: "Tertiary-dominated", definition: "1 if the tertiary share exceeds the secondary share in the first sample year", source: YB },
    Entry { name: "secondary", label: "Not tertiary-dominated", definition: "1 - tertiary", source: YB },
    Entry { name: "agglo", label: "Urban agglomeration", definition: "1 if the city belongs to a national urban agglomeration", source: "city table" },
    Entry { name: "non_agglo", label: "Outside agglomerations", definition: "1 - agglo", source: "city table" },
    Entry { name: "capital", label: "Provincial capital", definition: "1 for provincial capitals and municipalities", source: "city table" },
    Entry { name: "municipality", label: "Municipality", definition: "1 for Beijing, Tianjin, Shanghai, Chongqing", source: "city table" },
];

/// Columns that get winsorised `_w` variants.
const WINSORISED: &[&str] = &[
    "gap", "collab", "indstr", "gov", "open", "fin", "hum", "dens", "infra", "info",
];

struct Yearbook {
    /// (adcode, year) -> row
    rows: HashMap<(u32, i32), usize>,
    cols: BTreeMap<String, Vec<Option<f64>>>,
}

pub fn run(root: &Path, stage: &str, spec: &PanelSpec) -> Result<(), Diagnostic> {
    let fail = |d: Diagnostic| repro_kind::stage_failed(stage, d);
    let cities = Cities::load(&root.join(&spec.cities)).map_err(fail)?;
    let years: Vec<i32> = (spec.first_year..=spec.last_year).collect();
    let nt = years.len();
    let n = cities.rows.len();

    // The yearbook, by city and year.
    let yf = spec.yearbook.as_str();
    let ydf = tabular::read(root, yf).map_err(fail)?;
    let codes = tabular::ints(&ydf, yf, yearbook::CITY_CODE).map_err(fail)?;
    let yyears = tabular::ints(&ydf, yf, yearbook::YEAR).map_err(fail)?;
    let mut yb = Yearbook {
        rows: HashMap::new(),
        cols: BTreeMap::new(),
    };
    for (r, (c, y)) in codes.iter().zip(&yyears).enumerate() {
        if let (Some(c), Some(y)) = (c, y) {
            yb.rows.insert((*c as u32, *y as i32), r);
        }
    }
    for column in &yearbook::COLUMNS {
        yb.cols.insert(
            column.name.to_string(),
            tabular::floats(&ydf, yf, column.name).map_err(fail)?,
        );
    }
    drop(ydf);

    // Series as [city][year] grids, with interior gaps filled when asked.
    let mut filled = 0usize;
    let grid = |name: &str, filled: &mut usize| -> Vec<Vec<Option<f64>>> {
        let col = &yb.cols[name];
        (0..n)
            .map(|i| {
                let mut s: Vec<Option<f64>> = years
                    .iter()
                    .map(|y| {
                        yb.rows
                            .get(&(cities.rows[i].adcode, *y))
                            .and_then(|&r| col[r])
                    })
                    .collect();
                if spec.interpolate {
                    *filled += interpolate(&mut s);
                }
                s
            })
            .collect()
    };
    let g: BTreeMap<&str, Vec<Vec<Option<f64>>>> = yearbook::COLUMNS
        .iter()
        .map(|column| (column.name, grid(column.name, &mut filled)))
        .collect();

    // The index.
    let xf = spec.index.as_str();
    let xdf = tabular::read(root, xf).map_err(fail)?;
    let xcodes = tabular::ints(&xdf, xf, "adcode6").map_err(fail)?;
    let xyears = tabular::ints(&xdf, xf, "year").map_err(fail)?;
    let mut xrow: HashMap<(u32, i32), usize> = HashMap::new();
    for (r, (c, y)) in xcodes.iter().zip(&xyears).enumerate() {
        if let (Some(c), Some(y)) = (c, y) {
            xrow.insert((*c as u32, *y as i32), r);
        }
    }
    let index_grid = |name: &str| -> Result<Vec<Vec<Option<f64>>>, Diagnostic> {
        let col = tabular::floats(&xdf, xf, name)?;
        Ok((0..n)
            .map(|i| {
                years
                    .iter()
                    .map(|y| xrow.get(&(cities.rows[i].adcode, *y)).and_then(|&r| col[r]))
                    .collect()
            })
            .collect())
    };
    let collab_raw = index_grid("collab").map_err(fail)?;
    let collab_cp = index_grid("collab_cp").map_err(fail)?;
    let collab_inv = index_grid("collab_inv").map_err(fail)?;
    let collab_frac = index_grid("collab_frac").map_err(fail)?;
    drop(xdf);
    let transform = |v: Option<f64>| {
        v.map(|v| match spec.collab_transform {
            Transform::Log1p => (1.0 + v).ln(),
            Transform::Level => v,
        })
    };

    // Province R&D.
    let rf = spec.rd_province.as_str();
    let rdf = tabular::read(root, rf).map_err(fail)?;
    let rcode = tabular::ints(&rdf, rf, "province_code").map_err(fail)?;
    let ryear = tabular::ints(&rdf, rf, "year").map_err(fail)?;
    let rspend = tabular::floats(&rdf, rf, "rd_spending").map_err(fail)?;
    let rstaff = tabular::floats(&rdf, rf, "rd_personnel").map_err(fail)?;
    let mut rd: HashMap<(u32, i32), (Option<f64>, Option<f64>)> = HashMap::new();
    for r in 0..rcode.len() {
        if let (Some(c), Some(y)) = (rcode[r], ryear[r]) {
            rd.insert((c as u32, y as i32), (rspend[r], rstaff[r]));
        }
    }

    // The sample for year references: cities with per-capita GDP in the year.
    let pc = &g["pcgdp"];
    let in_sample = |i: usize, t: usize| pc[i][t].is_some_and(|v| v > 0.0);
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    };
    let ln = |v: Option<f64>| v.filter(|v| *v > 0.0).map(f64::ln);

    let mut vars: BTreeMap<&str, Vec<Vec<Option<f64>>>> = BTreeMap::new();
    let blank = || vec![vec![None; nt]; n];

    // Gaps.
    let mut gap_mean = blank();
    let mut gap_prov = blank();
    let mut gap_frontier = blank();
    let mut innov_gap = blank();
    for t in 0..nt {
        let sample: Vec<usize> = (0..n).filter(|&i| in_sample(i, t)).collect();
        if sample.is_empty() {
            continue;
        }
        let mean =
            sample.iter().map(|&i| pc[i][t].unwrap_or(0.0)).sum::<f64>() / sample.len() as f64;
        let max = sample
            .iter()
            .map(|&i| pc[i][t].unwrap_or(0.0))
            .fold(f64::MIN, f64::max);
        let mut by_prov: BTreeMap<u32, (f64, usize)> = BTreeMap::new();
        for &i in &sample {
            let e = by_prov
                .entry(cities.rows[i].province_code)
                .or_insert((0.0, 0));
            e.0 += pc[i][t].unwrap_or(0.0);
            e.1 += 1;
        }
        let innov = &g["innov_index"];
        let with_innov: Vec<usize> = sample
            .iter()
            .copied()
            .filter(|&i| innov[i][t].is_some_and(|v| v > 0.0))
            .collect();
        let innov_mean = with_innov
            .iter()
            .map(|&i| innov[i][t].unwrap_or(0.0))
            .sum::<f64>()
            / with_innov.len().max(1) as f64;
        for &i in &sample {
            let lp = pc[i][t].unwrap_or(1.0).ln();
            gap_mean[i][t] = Some((lp - mean.ln()).abs());
            let (s, k) = by_prov[&cities.rows[i].province_code];
            gap_prov[i][t] = Some((lp - (s / k as f64).ln()).abs());
            gap_frontier[i][t] = Some(max.ln() - lp);
            innov_gap[i][t] = ln(innov[i][t]).map(|v| (v - innov_mean.ln()).abs());
        }
    }
    let gap = match spec.gap_reference {
        GapReference::Mean => gap_mean.clone(),
        GapReference::Province => gap_prov.clone(),
        GapReference::Frontier => gap_frontier.clone(),
    };
    vars.insert("gap", gap);
    vars.insert("gap_mean", gap_mean);
    vars.insert("gap_prov", gap_prov);
    vars.insert("gap_frontier", gap_frontier);
    let map2 = |a: &Vec<Vec<Option<f64>>>,
                f: &dyn Fn(Option<f64>) -> Option<f64>|
     -> Vec<Vec<Option<f64>>> {
        a.iter()
            .map(|row| row.iter().map(|v| f(*v)).collect())
            .collect()
    };
    vars.insert("collab", map2(&collab_raw, &transform));
    vars.insert("collab_raw", collab_raw.clone());
    vars.insert("collab_cp", map2(&collab_cp, &transform));
    vars.insert("collab_inv", map2(&collab_inv, &transform));
    vars.insert("collab_frac", map2(&collab_frac, &transform));

    // Controls.
    let zip2 = |a: &str,
                b: &str,
                f: &dyn Fn(Option<f64>, Option<f64>) -> Option<f64>|
     -> Vec<Vec<Option<f64>>> {
        (0..n)
            .map(|i| (0..nt).map(|t| f(g[a][i][t], g[b][i][t])).collect())
            .collect()
    };
    vars.insert("indstr", zip2("ter_share", "sec_share", &ratio));
    vars.insert("gov", zip2("budget_exp", "gdp", &ratio));
    vars.insert("open", zip2("fdi", "gdp", &ratio));
    vars.insert("fin", zip2("loans", "gdp", &ratio));
    vars.insert("hum", zip2("students", "pop", &|s, p| ln(ratio(s, p))));
    vars.insert(
        "dens",
        zip2("pop", "area_km2", &|p, a| {
            ln(ratio(p.map(|p| p * 10_000.0), a))
        }),
    );
    vars.insert("infra", zip2("road_area", "pop", &ratio));
    vars.insert(
        "info",
        zip2("internet", "pop", &|u, p| ratio(u.map(|u| u * 100.0), p)),
    );

    // Mechanisms.
    vars.insert("innov", map2(&g["innov_index"], &ln));
    vars.insert("innov_gap", innov_gap);
    let alpha = spec.tfp_alpha;
    vars.insert(
        "tfp",
        (0..n)
            .map(|i| {
                (0..nt)
                    .map(|t| {
                        let y = ln(g["gdp"][i][t])?;
                        let k = ln(g["capital_stock"][i][t])?;
                        let l = ln(g["employment"][i][t])?;
                        Some(y - alpha * k - (1.0 - alpha) * l)
                    })
                    .collect()
            })
            .collect(),
    );
    let dist: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| distance_km(&cities.rows[i], &cities.rows[j]).max(1.0))
                .collect()
        })
        .collect();
    let pass = &g["passengers"];
    vars.insert(
        "linkage",
        (0..n)
            .map(|i| {
                (0..nt)
                    .map(|t| {
                        if !in_sample(i, t) {
                            return None;
                        }
                        let vi = pass[i][t]?;
                        let s: f64 = (0..n)
                            .filter(|&j| j != i && in_sample(j, t))
                            .filter_map(|j| pass[j][t].map(|vj| vi * vj / dist[i][j].powi(2)))
                            .sum();
                        ln(Some(s))
                    })
                    .collect()
            })
            .collect(),
    );
    vars.insert(
        "mkt_integ",
        market_integration(&g, &dist, n, nt, spec.integration_neighbours, &in_sample),
    );
    vars.insert(
        "division",
        (0..n)
            .map(|i| {
                (0..nt)
                    .map(|t| {
                        if !in_sample(i, t) {
                            return None;
                        }
                        let national: Vec<f64> = yearbook::SECTORS
                            .iter()
                            .map(|sector| {
                                (0..n)
                                    .filter(|&j| in_sample(j, t))
                                    .filter_map(|j| g[sector][j][t])
                                    .sum::<f64>()
                            })
                            .collect();
                        let ntot: f64 = national.iter().sum();
                        let own: Option<Vec<f64>> = yearbook::SECTORS
                            .iter()
                            .map(|sector| g[sector][i][t])
                            .collect();
                        let own = own?;
                        let otot: f64 = own.iter().sum();
                        if otot <= 0.0 || ntot <= 0.0 {
                            return None;
                        }
                        Some(
                            own.iter()
                                .zip(&national)
                                .map(|(o, m)| (o / otot - m / ntot).abs())
                                .sum(),
                        )
                    })
                    .collect()
            })
            .collect(),
    );
    let capitals = cities.capitals();
    let wage = &g["wage"];
    let flows = |which: usize| -> Vec<Vec<Option<f64>>> {
        (0..n)
            .map(|i| {
                (0..nt)
                    .map(|t| {
                        if !in_sample(i, t) {
                            return None;
                        }
                        let wi = wage[i][t]?;
                        let own = cities.rows[i].province_code;
                        let mut s = 0.0;
                        for (&q, &cap) in &capitals {
                            if q == own {
                                continue;
                            }
                            let (spend, staff) =
                                rd.get(&(q, years[t])).copied().unwrap_or((None, None));
                            let Some(m) = (if which == 0 { spend } else { staff }) else {
                                continue;
                            };
                            let wages: Vec<f64> = (0..n)
                                .filter(|&j| cities.rows[j].province_code == q)
                                .filter_map(|j| wage[j][t])
                                .collect();
                            if wages.is_empty() {
                                continue;
                            }
                            let wq = wages.iter().sum::<f64>() / wages.len() as f64;
                            s += m * (wi / wq) / dist[i][cap].powi(2);
                        }
                        ln(Some(s))
                    })
                    .collect()
            })
            .collect()
    };
    vars.insert("rd_fund_flow", flows(0));
    vars.insert("rd_staff_flow", flows(1));
    vars.insert("pcgdp", g["pcgdp"].clone());
    vars.insert("pop", g["pop"].clone());

    // The instrument: ln(1984 post offices) x national internet users per 100 people.
    let national_info: Vec<Option<f64>> = (0..nt)
        .map(|t| {
            let (u, p) = (0..n)
                .filter(|&i| in_sample(i, t))
                .filter_map(|i| Some((g["internet"][i][t]?, g["pop"][i][t]?)))
                .fold((0.0, 0.0), |acc, (u, p)| (acc.0 + u, acc.1 + p));
            (p > 0.0).then(|| 100.0 * u / p)
        })
        .collect();
    vars.insert(
        "iv_hist",
        (0..n)
            .map(|i| {
                (0..nt)
                    .map(|t| Some(ln(g["hist_post_1984"][i][t])? * national_info[t]?))
                    .collect()
            })
            .collect(),
    );

    // Lags.
    let mut lagged: Vec<(String, Vec<Vec<Option<f64>>>)> = Vec::new();
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

    // Flags.
    let tertiary: Vec<bool> = (0..n)
        .map(|i| match (g["ter_share"][i][0], g["sec_share"][i][0]) {
            (Some(t), Some(s)) => t > s,
            _ => false,
        })
        .collect();

    // Rows: city-years in the sample with every required variable.
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

    // Winsorised variants over the kept rows.
    let mut winsorised: Vec<(String, Vec<Vec<Option<f64>>>)> = Vec::new();
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

    let mut table = Table::default();
    let east: Vec<bool> = cities
        .rows
        .iter()
        .map(|c| spec.east_regions.contains(&c.region))
        .collect();
    let ints = |f: &dyn Fn(usize, usize) -> i64| -> Col {
        Col::Int(keep.iter().map(|&(i, t)| Some(f(i, t))).collect())
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
    for (name, v) in lagged.iter().chain(&winsorised) {
        table.push(
            name,
            Col::Float(keep.iter().map(|&(i, t)| v[i][t]).collect()),
        );
    }
    table.write_csv(root, &spec.out).map_err(fail)?;
    table
        .write_parquet(root, &tabular::parquet_twin(&spec.out))
        .map_err(fail)?;
    tabular::write(
        root,
        &spec.codebook,
        codebook(spec, &lagged, &winsorised).as_bytes(),
    )
    .map_err(fail)?;

    // The report: sample sizes and the study's headline statistic.
    let cities_kept: std::collections::BTreeSet<usize> = keep.iter().map(|&(i, _)| i).collect();
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
    let report = serde_json::json!({
        "rows": keep.len(),
        "cities": cities_kept.len(),
        "years": nt,
        "city_years_without_gdp": no_gdp,
        "dropped_missing_required": dropped,
        "cells_interpolated": filled,
        "mean_collab_per_10k_by_year": collab_mean,
    });
    tabular::write_json(root, &spec.report, &report).map_err(fail)?;
    Ok(())
}

/// Fills interior runs of missing values linearly; returns how many cells were filled.
fn interpolate(s: &mut [Option<f64>]) -> usize {
    let known: Vec<usize> = (0..s.len()).filter(|&t| s[t].is_some()).collect();
    let mut filled = 0;
    for w in known.windows(2) {
        let (a, b) = (w[0], w[1]);
        let (va, vb) = (s[a].unwrap_or(0.0), s[b].unwrap_or(0.0));
        for (step, cell) in s[a + 1..b].iter_mut().enumerate() {
            *cell = Some(va + (vb - va) * (step + 1) as f64 / (b - a) as f64);
            filled += 1;
        }
    }
    filled
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

/// Relative-price market integration per city-year (see the codebook entry `mkt_integ`).
fn market_integration(
    g: &BTreeMap<&str, Vec<Vec<Option<f64>>>>,
    dist: &[Vec<f64>],
    n: usize,
    nt: usize,
    k: usize,
    in_sample: &dyn Fn(usize, usize) -> bool,
) -> Vec<Vec<Option<f64>>> {
    let goods = yearbook::PRICES;
    let mut out = vec![vec![None; nt]; n];
    for t in 0..nt {
        let cities: Vec<usize> = (0..n)
            .filter(|&i| {
                in_sample(i, t)
                    && goods
                        .iter()
                        .all(|gname| g[gname][i][t].is_some_and(|v| v > 0.0))
            })
            .collect();
        // Each city's k nearest comparable cities (ties by adcode order).
        let pairs: Vec<(usize, Vec<usize>)> = cities
            .iter()
            .map(|&i| {
                let mut others: Vec<usize> = cities.iter().copied().filter(|&j| j != i).collect();
                others.sort_by(|&a, &b| dist[i][a].total_cmp(&dist[i][b]).then(a.cmp(&b)));
                others.truncate(k);
                (i, others)
            })
            .collect();
        let lp = |i: usize, gname: &str| g[gname][i][t].unwrap_or(1.0).ln();
        // |dQ| per pair and good, then de-meaned per good over all pairs of the year.
        let mut dq: Vec<Vec<f64>> = Vec::new();
        for (i, others) in &pairs {
            for &j in others {
                dq.push(
                    goods
                        .iter()
                        .map(|gn| (lp(*i, gn) - lp(j, gn)).abs())
                        .collect(),
                );
            }
        }
        if dq.is_empty() {
            continue;
        }
        let means: Vec<f64> = (0..goods.len())
            .map(|q| dq.iter().map(|row| row[q]).sum::<f64>() / dq.len() as f64)
            .collect();
        let mut at = 0;
        for (i, others) in &pairs {
            let mut seg = 0.0;
            for _ in others {
                let row: Vec<f64> = dq[at].iter().zip(&means).map(|(v, m)| v - m).collect();
                at += 1;
                let m = row.iter().sum::<f64>() / row.len() as f64;
                seg += row.iter().map(|v| (v - m).powi(2)).sum::<f64>() / row.len() as f64;
            }
            seg /= others.len().max(1) as f64;
            if seg > 0.0 {
                out[*i][t] = Some(-0.5 * seg.ln());
            }
        }
    }
    out
}

fn codebook(
    spec: &PanelSpec,
    lagged: &[(String, Vec<Vec<Option<f64>>>)],
    winsorised: &[(String, Vec<Vec<Option<f64>>>)],
) -> String {
    let mut s = String::from("# Codebook: the city-year analysis panel\n\n");
    let _ = writeln!(
        s,
        "One row per prefecture-level city and year, {}-{}, for city-years with per-capita GDP \
         and every variable listed under `require` in the panel spec ({}).\n",
        spec.first_year,
        spec.last_year,
        spec.require.join(", ")
    );
    s.push_str("| variable | label | definition | source |\n|---|---|---|---|\n");
    for e in CODEBOOK {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} |",
            e.name,
            e.label,
            e.definition.replace('|', "\\|"),
            e.source
        );
    }
    s.push('\n');
    for (name, _) in lagged {
        let _ = writeln!(
            s,
            "- `{name}`: `{}` of the previous year (blank in the first year)",
            name.trim_end_matches("_l1")
        );
    }
    for (name, _) in winsorised {
        let _ = writeln!(
            s,
            "- `{name}`: `{}` winsorised at the {} and {} quantiles of the panel",
            name.trim_end_matches("_w"),
            spec.winsorize,
            1.0 - spec.winsorize
        );
    }
    let _ = writeln!(
        s,
        "\nSettings: collaboration transform `{:?}`, gap reference `{:?}`, yearbook interior gaps \
         {}interpolated linearly within a city, eastern regions {:?}, TFP alpha {}, market \
         integration over the {} nearest cities.",
        spec.collab_transform,
        spec.gap_reference,
        if spec.interpolate { "" } else { "not " },
        spec.east_regions,
        spec.tfp_alpha,
        spec.integration_neighbours
    );
    s
}
