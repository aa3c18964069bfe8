//! The cities of the synthetic world: their time-invariant draws and the city-year series the
//! records and the yearbook are both drawn from.
//!
//! Owns: each city's attributes (population, rich or poor, core city, the instrument's base, the
//! levels of the yearbook series), population per city-year, the unobserved confounder, the
//! national internet trend, the relative collaboration intensity, and the gravity weights
//! between cities. Deliberately does not own: the patent records (`records`), the yearbook's
//! cells (`statistics`) or what the pipeline must find (`truth`).

use rand::RngExt;

use super::draw::{normal, stream};
use super::spec::SynthSpec;
use crate::places::{distance_km, Cities};
use crate::yearbook;

/// Time-invariant draws per city.
#[derive(Debug, Clone)]
pub struct CityDraw {
    /// Has yearbook data (prefectures named 地区, 盟 or 自治州 lack GDP, as in real yearbooks).
    pub complete: bool,
    pub pop0: f64,
    pub pop_growth: f64,
    pub area: f64,
    /// Above the mean per-capita GDP.
    pub rich: bool,
    pub gap_level: f64,
    pub core: bool,
    pub collab_level: f64,
    /// Standardised instrument base.
    pub hist: f64,
    /// City effects of the yearbook series.
    pub innov_level: f64,
    pub tfp_level: f64,
    pub pass_level: f64,
    pub price_level: f64,
    pub wage_level: f64,
    pub spec_loadings: [f64; SECTORS],
    pub gov_level: f64,
    pub fin_level: f64,
    pub ter_base: f64,
    pub sec_base: f64,
}

impl CityDraw {
    /// +1 for a rich city, -1 for a poor one: the side of the mean its per-capita GDP is on.
    pub fn sign(&self) -> f64 {
        if self.rich {
            1.0
        } else {
            -1.0
        }
    }
}

/// How many employment sectors the yearbook has.
pub const SECTORS: usize = yearbook::SECTORS.len();

/// Time-invariant draws per city, each city from its own stream (`city`, index).
fn draw_cities(seed: u64, cities: &Cities) -> Vec<CityDraw> {
    cities
        .rows
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut r = stream(seed, "city", i as u64);
            let complete =
                !(c.name.ends_with("地区") || c.name.ends_with("盟") || c.name.ends_with("自治州"));
            let east = c.region == "east";
            let pop0 = if c.municipality {
                1500.0 * (0.3 * normal(&mut r)).exp()
            } else if c.capital {
                700.0 * (0.35 * normal(&mut r)).exp()
            } else {
                350.0 * (0.5 * normal(&mut r)).exp()
            }
            .clamp(20.0, 3400.0);
            let tertiary =
                r.random::<f64>() < 0.30 + 0.35 * f64::from(c.capital) + 0.10 * f64::from(east);
            let rich = c.municipality
                || r.random::<f64>() < 0.12 + 0.40 * f64::from(east) + 0.35 * f64::from(c.capital);
            let gap_level = if rich {
                r.random_range(0.25..0.85)
            } else {
                r.random_range(0.30..0.80)
            };
            let core = !east && c.agglomeration.is_some() && tertiary;
            let mut spec_loadings = [0.0; SECTORS];
            for l in &mut spec_loadings {
                *l = normal(&mut r);
            }
            let sec_base = 42.0 + 6.0 * normal(&mut r);
            let ter_base = if tertiary {
                sec_base + 4.0 + 3.0 * r.random::<f64>()
            } else {
                sec_base - 10.0 + 3.0 * normal(&mut r)
            };
            CityDraw {
                complete,
                pop0,
                pop_growth: 0.004 + 0.006 * normal(&mut r),
                area: 9000.0 * (0.6 * normal(&mut r)).exp() * if east { 0.7 } else { 1.5 },
                rich,
                gap_level,
                core,
                collab_level: 0.45 * normal(&mut r)
                    + 0.5 * f64::from(c.capital)
                    + 0.3 * f64::from(east),
                hist: normal(&mut r),
                innov_level: 0.4 * normal(&mut r) + 0.3 * f64::from(east),
                tfp_level: 0.2 * normal(&mut r),
                pass_level: (pop0 / 100.0).ln() + 0.3 * normal(&mut r),
                price_level: 0.2 * normal(&mut r),
                wage_level: 0.15 * normal(&mut r) + 0.1 * f64::from(east),
                spec_loadings,
                gov_level: 0.18 + 0.05 * normal(&mut r) + 0.05 * f64::from(!east),
                fin_level: 1.1 + 0.3 * normal(&mut r),
                ter_base,
                sec_base,
            }
        })
        .collect()
}

/// The city-level world: what the records, the yearbook and the truth files share.
pub struct World {
    pub years: Vec<i32>,
    pub draws: Vec<CityDraw>,
    /// Population per city-year (10,000 persons).
    pub pop: Vec<Vec<f64>>,
    /// The unobserved confounder per city-year.
    pub confounder: Vec<Vec<f64>>,
    /// National internet trend (0 in the first year, 1 in the last): the shift of the instrument.
    pub trend: Vec<f64>,
    /// Relative collaboration intensity per city-year.
    pub intensity: Vec<Vec<f64>>,
    /// Gravity weight between two cities: 1 / (1 + distance / 300 km), 0 for a city itself.
    pub gravity: Vec<Vec<f64>>,
    /// The cities with yearbook data, in city order.
    pub complete: Vec<usize>,
}

/// Draws the world of `spec` over `cities`. Every component has its own streams, so the order
/// of these calls does not matter to the numbers.
pub fn draw_world(spec: &SynthSpec, cities: &Cities) -> World {
    let n = cities.rows.len();
    let years: Vec<i32> = (spec.first_year..=spec.last_year).collect();
    let nt = years.len();
    let draws = draw_cities(spec.seed, cities);
    let pop = population(spec.seed, &draws, nt);
    let confounder = confounder(spec.seed, n, nt);
    let trend: Vec<f64> = (0..nt).map(|t| t as f64 / (nt - 1) as f64).collect();
    let intensity = intensity(spec, &draws, &confounder, &trend);
    let complete: Vec<usize> = (0..n).filter(|&i| draws[i].complete).collect();
    World {
        years,
        pop,
        confounder,
        trend,
        intensity,
        gravity: gravity(cities),
        complete,
        draws,
    }
}

/// Population per city-year (10,000 persons), rounded to two decimals as the yearbook prints it.
fn population(seed: u64, draws: &[CityDraw], nt: usize) -> Vec<Vec<f64>> {
    (0..draws.len())
        .map(|i| {
            let mut r = stream(seed, "pop", i as u64);
            (0..nt)
                .map(|t| {
                    let d = &draws[i];
                    (d.pop0 * (d.pop_growth * t as f64 + 0.003 * normal(&mut r)).exp() * 100.0)
                        .round()
                        / 100.0
                })
                .collect()
        })
        .collect()
}

/// The unobserved confounder: an AR(1) local shock per city, started from its stationary law.
fn confounder(seed: u64, n: usize, nt: usize) -> Vec<Vec<f64>> {
    (0..n)
        .map(|i| {
            let mut r = stream(seed, "confounder", i as u64);
            let mut u = 0.15 / (1.0f64 - 0.36).sqrt() * normal(&mut r);
            (0..nt)
                .map(|_| {
                    let now = u;
                    u = 0.6 * u + 0.15 * normal(&mut r);
                    now
                })
                .collect()
        })
        .collect()
}

/// Collaboration intensity (relative): ln c = a_i + pi * hist_i * trend_t + phi * u_it + e_it.
fn intensity(
    spec: &SynthSpec,
    draws: &[CityDraw],
    confounder: &[Vec<f64>],
    trend: &[f64],
) -> Vec<Vec<f64>> {
    let fx = &spec.effects;
    (0..draws.len())
        .map(|i| {
            let mut r = stream(spec.seed, "intensity", i as u64);
            (0..trend.len())
                .map(|t| {
                    (draws[i].collab_level
                        + fx.instrument * draws[i].hist * trend[t] * 2.0
                        + fx.confounder_collab * confounder[i][t]
                        + 0.25 * normal(&mut r))
                    .exp()
                })
                .collect()
        })
        .collect()
}

/// Gravity weights between cities: partners are drawn in proportion to demand times these.
fn gravity(cities: &Cities) -> Vec<Vec<f64>> {
    let n = cities.rows.len();
    (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    if i == j {
                        0.0
                    } else {
                        1.0 / (1.0 + distance_km(&cities.rows[i], &cities.rows[j]) / 300.0)
                    }
                })
                .collect()
        })
        .collect()
}
