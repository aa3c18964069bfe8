//! The statistical tables: the city-year yearbook and the province R&D table.
//!
//! Owns: drawing every yearbook series (sector shares, the controls, the gap and the per-capita
//! GDP it implies, employment by sector, wages, capital stock from TFP, the innovation index,
//! passengers, price indices, the 1984 post offices), the blank cells real yearbooks have,
//! writing `yearbook.csv` in the column order of the yearbook schema (`crate::yearbook`), the
//! per-city effects the truth files report, and `rd_province.csv`. Deliberately does not own:
//! the yearbook's column names and decimals (`crate::yearbook`), the city draws and series it
//! starts from (`cities`), or the collaboration it responds to (counted in `truth`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::cities::{World, SECTORS};
use super::draw::{normal, stream};
use super::spec::SynthSpec;
use crate::places::Cities;
use crate::yearbook;

/// The mean employment share of each sector, in the yearbook's sector order.
const SECTOR_MEAN_SHARES: [f64; SECTORS] = [0.30, 0.12, 0.18, 0.08, 0.07, 0.25];

/// How many goods have a price index.
const GOODS: usize = yearbook::PRICES.len();

/// The yearbook as written, and the per-city facts of its draw that the truth files report.
pub struct Yearbook {
    pub csv: String,
    /// Tertiary-dominated in the first year (tertiary share above secondary), per city.
    pub tertiary_first: Vec<bool>,
    /// The collaboration effect on the gap, per city.
    pub beta: Vec<f64>,
    /// The collaboration effect on ln(innovation index), per city.
    pub innovation: Vec<f64>,
}

/// Shares, ratios and the gap of one city-year, drawn before the cells.
struct Row {
    sec: f64,
    ter: f64,
    gov: f64,
    open: f64,
    fin: f64,
    hum: f64,
    infra: f64,
    info: f64,
    gap: f64,
}

/// What drawing one city-year's cells needs, drawn once for all cities.
struct Inputs<'a> {
    spec: &'a SynthSpec,
    world: &'a World,
    /// ln(1 + true cross-city collaboration per 10,000), per city-year.
    x: &'a [Vec<f64>],
    /// `x` minus the city's mean over the years.
    x_dev: Vec<Vec<f64>>,
    rows: Vec<Vec<Row>>,
    /// The year's shift c_t of ln per-capita GDP.
    shift: Vec<f64>,
    /// Each year's inflation per good.
    prices: Vec<[f64; GOODS]>,
    /// The collaboration effect on ln(innovation index), per city.
    innov_effect: Vec<f64>,
}

/// Formats a yearbook cell: a value with `digits` decimals, or blank when missing.
fn cell(out: &mut String, value: Option<f64>, digits: usize) {
    out.push(',');
    if let Some(v) = value {
        let _ = write!(out, "{v:.digits$}");
    }
}

/// Draws and writes the yearbook; `x` is ln(1 + true cross-city collaboration per 10,000) per
/// city-year, as counted from the clean records.
pub fn yearbook(spec: &SynthSpec, cities: &Cities, world: &World, x: &[Vec<f64>]) -> Yearbook {
    let fx = &spec.effects;
    let nt = world.trend.len();
    let beta: Vec<f64> = world
        .draws
        .iter()
        .map(|d| if d.core { fx.gap_core } else { fx.gap_other })
        .collect();
    // The gap and the innovation index respond to a city's collaboration relative to its own
    // mean over the years: fixed-effects estimators see only that variation anyway, and it keeps
    // the gap positive and the cities' innovation ranking stable.
    let x_dev: Vec<Vec<f64>> = x
        .iter()
        .map(|row| {
            let m = row.iter().sum::<f64>() / row.len() as f64;
            row.iter().map(|v| v - m).collect()
        })
        .collect();
    let rows = draw_rows(spec, world, &beta, x, &x_dev);
    let tertiary_first = rows.iter().map(|row| row[0].ter > row[0].sec).collect();
    let inputs = Inputs {
        spec,
        world,
        x,
        shift: gdp_shift(world, &rows),
        prices: inflation(spec.seed, nt),
        innov_effect: innovation_effects(spec, world),
        x_dev,
        rows,
    };

    let mut csv = yearbook::header();
    csv.push('\n');
    for (i, c) in cities.rows.iter().enumerate() {
        let mut r = stream(spec.seed, "yearbook-cells", i as u64);
        for t in 0..nt {
            let year = spec.first_year + t as i32;
            let values = city_year_values(&inputs, i, t, &mut r);
            let _ = write!(csv, "{},{},{year}", c.adcode, c.name);
            for (column, value) in yearbook::COLUMNS.iter().zip(values) {
                cell(&mut csv, value, column.decimals);
            }
            csv.push('\n');
        }
    }
    Yearbook {
        csv,
        tertiary_first,
        beta,
        innovation: inputs.innov_effect,
    }
}

/// Shares, ratios and the gap per city-year, each city from its own stream (`yearbook`, city).
fn draw_rows(
    spec: &SynthSpec,
    world: &World,
    beta: &[f64],
    x: &[Vec<f64>],
    x_dev: &[Vec<f64>],
) -> Vec<Vec<Row>> {
    let fx = &spec.effects;
    let (confounder, trend) = (&world.confounder, &world.trend);
    let nt = trend.len();
    let sqrt3 = 3f64.sqrt();
    (0..world.draws.len())
        .map(|i| {
            let d = &world.draws[i];
            let mut r = stream(spec.seed, "yearbook", i as u64);
            let open_level = (0.02f64.ln() + 0.5 * normal(&mut r)).exp();
            let hum_level = (150f64.ln() + 0.8 * normal(&mut r)).exp();
            let infra_level = 10.0 + 3.0 * normal(&mut r);
            let scale_i = fx.gap_scale_base * (1.0 + 0.3 * normal(&mut r)).max(0.4);
            (0..nt)
                .map(|t| {
                    let tf = t as f64;
                    let sec = (d.sec_base - 0.5 * tf + normal(&mut r)).clamp(15.0, 75.0);
                    let ter = (d.ter_base + 0.8 * tf + normal(&mut r)).clamp(15.0, 95.0 - sec);
                    let gov = (d.gov_level + 0.003 * tf + 0.01 * normal(&mut r)).max(0.05);
                    let fin = (d.fin_level + 0.03 * tf + 0.05 * normal(&mut r)).max(0.2);
                    let eps = r.random_range(-sqrt3..sqrt3);
                    let gap = d.gap_level
                        + beta[i] * x_dev[i][t]
                        + fx.gov * gov
                        + fx.fin * fin
                        + fx.confounder_gap * confounder[i][t]
                        + (scale_i + fx.gap_scale * x[i][t]) * eps;
                    Row {
                        sec,
                        ter,
                        gov,
                        open: open_level * (0.1 * normal(&mut r)).exp(),
                        fin,
                        hum: hum_level * (0.02 * tf + 0.05 * normal(&mut r)).exp(),
                        infra: infra_level + 0.3 * tf + 0.3 * normal(&mut r),
                        info: 10.0 + 20.0 * trend[t] + 2.0 * normal(&mut r),
                        gap,
                    }
                })
                .collect()
        })
        .collect()
}

/// ln pcGDP = L_t + s_i * gap_it + c_t, with c_t making the mean over cities with data equal
/// exp(L_t), so that |ln pcGDP - ln mean pcGDP| = |s_i * gap_it + c_t| (docs/dgp.md): the c_t.
fn gdp_shift(world: &World, rows: &[Vec<Row>]) -> Vec<f64> {
    let complete = &world.complete;
    (0..world.trend.len())
        .map(|t| {
            let m = complete
                .iter()
                .map(|&i| (world.draws[i].sign() * rows[i][t].gap).exp())
                .sum::<f64>()
                / complete.len() as f64;
            -m.ln()
        })
        .collect()
}

/// Each year's inflation per good, from the year's stream (`inflation`, year).
fn inflation(seed: u64, nt: usize) -> Vec<[f64; GOODS]> {
    (0..nt)
        .map(|t| {
            let mut r = stream(seed, "inflation", t as u64);
            let mut p = [0.0; GOODS];
            for v in &mut p {
                *v = 0.02 + 0.01 * normal(&mut r);
            }
            p
        })
        .collect()
}

/// The collaboration effect on ln(innovation index) per city: larger for cities lagging in
/// innovation (a level below the log of the mean of exp(levels) over cities with data), so that
/// collaboration narrows the innovation gap.
fn innovation_effects(spec: &SynthSpec, world: &World) -> Vec<f64> {
    let fx = &spec.effects;
    let (draws, complete) = (&world.draws, &world.complete);
    let innov_ref = (complete
        .iter()
        .map(|&i| draws[i].innov_level.exp())
        .sum::<f64>()
        / complete.len() as f64)
        .ln();
    draws
        .iter()
        .map(|d| {
            let lagging = if d.innov_level < innov_ref { 1.0 } else { -1.0 };
            fx.innovation * (1.0 + lagging * fx.innovation_catch_up)
        })
        .collect()
}

/// The cells of city `i` in year `t`, in the yearbook schema's column order, drawn from the
/// city's stream `r` (`yearbook-cells`, city) in that order too.
fn city_year_values(inp: &Inputs<'_>, i: usize, t: usize, r: &mut ChaCha8Rng) -> Vec<Option<f64>> {
    let fx = &inp.spec.effects;
    let (x, x_dev) = (inp.x, &inp.x_dev);
    let d = &inp.world.draws[i];
    let row = &inp.rows[i][t];
    let tf = t as f64;
    let p = inp.world.pop[i][t];
    let pc = (32_000f64.ln() + 0.075 * tf + d.sign() * row.gap + inp.shift[t]).exp();
    let pc = pc.round();
    let gdp = pc * p / 10_000.0;
    // Real yearbooks leave cells blank: whole series for prefectures without data,
    // scattered cells elsewhere.
    let have = |r: &mut ChaCha8Rng| d.complete && r.random::<f64>() >= 0.01;
    let emp = p * 0.55 * (0.05 * normal(r)).exp();
    let tfp = (3.3f64).ln() + d.tfp_level + 0.02 * tf + fx.tfp * x[i][t] + 0.02 * normal(r);
    let capital = (gdp / (tfp.exp() * emp.powf(0.6))).powf(1.0 / 0.4);
    let innov = 10.0
        * (d.innov_level + 0.05 * tf + inp.innov_effect[i] * x_dev[i][t] + 0.05 * normal(r)).exp();
    let passengers =
        (d.pass_level + 0.03 * tf + fx.linkage * x[i][t] + 0.05 * normal(r)).exp() * 100.0;
    let dispersion = 0.02 * (d.price_level - fx.price_dispersion * x[i][t] + 0.1 * normal(r)).exp();
    let spread = 0.2 + fx.specialisation * x[i][t] + 0.02 * normal(r);
    let weights: Vec<f64> = (0..SECTORS)
        .map(|k| SECTOR_MEAN_SHARES[k] * (spread * d.spec_loadings[k]).exp())
        .collect();
    let wsum: f64 = weights.iter().sum();
    let wage = (40_000f64.ln() + d.wage_level + 0.08 * tf + 0.03 * normal(r)).exp();

    let mut values: Vec<Option<f64>> = Vec::with_capacity(yearbook::COLUMNS.len());
    values.extend([
        Some(p),
        Some(d.area),
        d.complete.then_some(gdp),
        d.complete.then_some(pc),
        Some(row.sec),
        Some(row.ter),
        d.complete.then_some(row.gov * gdp),
    ]);
    values.push(have(r).then_some(row.open * gdp));
    values.push(have(r).then_some(row.fin * gdp));
    values.push(have(r).then_some(row.hum * p));
    values.push(have(r).then_some(row.infra * p));
    values.push(have(r).then_some(row.info * p / 100.0));
    values.push(Some(emp));
    values.extend(weights.iter().map(|w| Some(emp * w / wsum)));
    values.extend([
        Some(wage),
        d.complete.then_some(capital),
        Some(innov),
        Some(passengers),
    ]);
    for good in &inp.prices[t] {
        values.push(Some(100.0 * (good + dispersion * normal(r)).exp()));
    }
    values.push(Some((0.3 + 0.4 * d.hist).exp()));
    debug_assert_eq!(values.len(), yearbook::COLUMNS.len());
    values
}

/// The province R&D table, `rd_province.csv`: spending and personnel per province-year, each
/// province from its own stream (`rd`, province code).
pub fn rd_province(seed: u64, cities: &Cities, years: &[i32]) -> String {
    let mut provinces: BTreeMap<u32, &str> = BTreeMap::new();
    for c in &cities.rows {
        provinces.entry(c.province_code).or_insert(&c.province);
    }
    let mut out = String::from("province_code,province,year,rd_spending,rd_personnel\n");
    for (code, name) in provinces {
        let mut r = stream(seed, "rd", u64::from(code));
        let level = 4.5 + 1.0 * normal(&mut r);
        let staff = 10.5 + 0.9 * normal(&mut r);
        for (t, year) in years.iter().enumerate() {
            let tf = t as f64;
            let spend = (level + 0.1 * tf + 0.03 * normal(&mut r)).exp();
            let people = (staff + 0.05 * tf + 0.03 * normal(&mut r)).exp();
            let _ = writeln!(out, "{code},{name},{year},{spend:.2},{people:.0}");
        }
    }
    out
}
