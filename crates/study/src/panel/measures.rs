//! The panel's variables, each from the yearbook's series, the index or the R&D table: the gap
//! measures, collaboration, the controls, the mechanism variables and the instrument.
//!
//! Owns: every definition the codebook states for these columns (`codebook`), each step adding
//! its variables to the panel's `Vars`. Deliberately does not own: reading the inputs
//! (`inputs`), choosing the rows, lags, winsorised variants, flags or writing (`output`).

use std::collections::BTreeMap;

use super::grid::{ln, map, ratio, Frame, Grid, Vars};
use super::inputs::{IndexGrids, Rd};
use super::spec::{GapReference, Transform};
use crate::places::distance_km;
use crate::yearbook;

/// The gaps of per-capita GDP to the year's sample mean, the province mean and the frontier
/// (`gap` is the one the spec chooses), and the innovation gap.
pub fn gaps(f: &Frame<'_>, vars: &mut Vars) {
    let (spec, cities, g) = (f.spec, f.cities, &f.yb);
    let (n, nt) = (f.n(), f.nt());
    let pc = &g["pcgdp"];
    let in_sample = |i: usize, t: usize| f.in_sample(i, t);
    let blank = || f.blank();
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
    vars.insert("innov_gap", innov_gap);
}

/// Collaboration per 10,000 people from the index, transformed as the spec says
/// (`collab_raw` keeps the level).
pub fn collaboration(f: &Frame<'_>, index: IndexGrids, vars: &mut Vars) {
    let spec = f.spec;
    let transform = |v: Option<f64>| {
        v.map(|v| match spec.collab_transform {
            Transform::Log1p => (1.0 + v).ln(),
            Transform::Level => v,
        })
    };
    vars.insert("collab", map(&index.collab, &transform));
    vars.insert("collab_cp", map(&index.collab_cp, &transform));
    vars.insert("collab_inv", map(&index.collab_inv, &transform));
    vars.insert("collab_frac", map(&index.collab_frac, &transform));
    vars.insert("collab_raw", index.collab);
}

/// The usual controls of this literature (`CONTROLS`), from the yearbook's series.
pub fn controls(f: &Frame<'_>, vars: &mut Vars) {
    let zip2 =
        |a: &str, b: &str, op: &dyn Fn(Option<f64>, Option<f64>) -> Option<f64>| f.zip(a, b, op);
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
}

/// The mechanism variables: innovation capability, TFP, linkage, market integration, division
/// of labour and the cross-province R&D flows; and per-capita GDP and population as published.
pub fn mechanisms(f: &Frame<'_>, rd: &Rd, vars: &mut Vars) {
    let g = &f.yb;
    let alpha = f.spec.tfp_alpha;
    vars.insert("innov", map(&g["innov_index"], &ln));
    vars.insert(
        "tfp",
        (0..f.n())
            .map(|i| {
                (0..f.nt())
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
    let dist = distances(f);
    vars.insert("linkage", linkage(f, &dist));
    vars.insert("mkt_integ", market_integration(f, &dist));
    vars.insert("division", division(f));
    vars.insert("rd_fund_flow", rd_flow(f, rd, &dist, RdMeasure::Spending));
    vars.insert("rd_staff_flow", rd_flow(f, rd, &dist, RdMeasure::Personnel));
    vars.insert("pcgdp", g["pcgdp"].clone());
    vars.insert("pop", g["pop"].clone());
}

/// Great-circle distances between cities (km), at least 1.
fn distances(f: &Frame<'_>) -> Vec<Vec<f64>> {
    let (n, cities) = (f.n(), f.cities);
    (0..n)
        .map(|i| {
            (0..n)
                .map(|j| distance_km(&cities.rows[i], &cities.rows[j]).max(1.0))
                .collect()
        })
        .collect()
}

/// Gravity linkage with the other sample cities, from passenger volumes.
fn linkage(f: &Frame<'_>, dist: &[Vec<f64>]) -> Grid {
    let (n, nt) = (f.n(), f.nt());
    let in_sample = |i: usize, t: usize| f.in_sample(i, t);
    let pass = &f.yb["passengers"];
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
        .collect()
}

/// The Krugman specialisation index against the sample's national sector shares.
fn division(f: &Frame<'_>) -> Grid {
    let (n, nt, g) = (f.n(), f.nt(), &f.yb);
    let in_sample = |i: usize, t: usize| f.in_sample(i, t);
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
        .collect()
}

/// Which R&D measure flows in.
#[derive(Clone, Copy)]
enum RdMeasure {
    Spending,
    Personnel,
}

/// R&D inflow from the other provinces: their R&D, weighted by the wage ratio and the inverse
/// squared distance to their capital.
fn rd_flow(f: &Frame<'_>, rd: &Rd, dist: &[Vec<f64>], which: RdMeasure) -> Grid {
    let (n, nt, cities, years) = (f.n(), f.nt(), f.cities, &f.years);
    let in_sample = |i: usize, t: usize| f.in_sample(i, t);
    let capitals = cities.capitals();
    let wage = &f.yb["wage"];
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
                        let measure = match which {
                            RdMeasure::Spending => spend,
                            RdMeasure::Personnel => staff,
                        };
                        let Some(m) = measure else {
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
}

/// The instrument: ln(1984 post offices) x national internet users per 100 people.
pub fn instrument(f: &Frame<'_>, vars: &mut Vars) {
    let (n, nt, g) = (f.n(), f.nt(), &f.yb);
    let in_sample = |i: usize, t: usize| f.in_sample(i, t);
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
}

/// Relative-price market integration per city-year (see the codebook entry `mkt_integ`).
fn market_integration(f: &Frame<'_>, dist: &[Vec<f64>]) -> Grid {
    let (n, nt, g) = (f.n(), f.nt(), &f.yb);
    let k = f.spec.integration_neighbours;
    let in_sample = |i: usize, t: usize| f.in_sample(i, t);
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
