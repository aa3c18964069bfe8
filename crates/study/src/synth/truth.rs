//! The truth files: what the pipeline must find, counted from the records as the pipeline
//! counts them, and the true parameters with the estimands they imply.
//!
//! Owns: the city-year counts from the clean records at every applicant's true city
//! (`truth_city_year.csv`), the true city and written form of every applicant
//! (`truth_applicants.parquet`), the true regressor ln(1 + cross-city co-applications per
//! 10,000) the yearbook responds to, the realised collaboration means, and `truth.json`. Deliberately does not own: drawing the
//! records (`records`) or the yearbook (`statistics`).

use std::fmt::Write as _;

use arrayvec::ArrayVec;
use polars::prelude::{
    Column, DataFrame, Int64Chunked, IntoSeries, NewChunkedArray, StringChunked,
};
use repro_kind::diag::Diagnostic;

use super::address::AddressForm;
use super::cities::World;
use super::orgs::Org;
use super::records::Record;
use super::spec::SynthSpec;
use super::statistics::Yearbook;
use crate::places::Cities;
use repro_tabular::table as tabular;

/// Every applicant of every clean record of a part of the export (a year): application number
/// (as `ingest` normalises it), position, true city (blank for foreign applicants and inventors
/// listed as co-applicants) and how it is written (the first applicant's address form, the
/// others' name form). Kept compact (no `String` per cell): a million records have about 1.3
/// million rows.
#[derive(Debug, Default)]
pub struct ApplicantTruth {
    /// Every row's application number, one after the other; `ends` says where each ends.
    app_nos: String,
    ends: Vec<u32>,
    pos: Vec<u8>,
    adcode: Vec<Option<u32>>,
    form: Vec<&'static str>,
}

impl ApplicantTruth {
    /// Room for `rows` applicants.
    pub fn with_capacity(rows: usize) -> ApplicantTruth {
        ApplicantTruth {
            app_nos: String::with_capacity(rows * 14),
            ends: Vec::with_capacity(rows),
            pos: Vec::with_capacity(rows),
            adcode: Vec::with_capacity(rows),
            form: Vec::with_capacity(rows),
        }
    }

    /// Adds a clean record's applicants; `address` is the form its first address was written in.
    pub fn push_record(
        &mut self,
        cities: &Cities,
        orgs: &[Org],
        rec: &Record,
        app_no: &str,
        address: AddressForm,
    ) {
        for (pos, a) in rec.applicants.iter().enumerate() {
            let (city, form) = if pos == 0 {
                let form = if rec.foreign.is_some() {
                    "foreign"
                } else {
                    address.name()
                };
                (rec.first_city, form)
            } else {
                (a.city(), a.form(orgs))
            };
            self.app_nos.push_str(app_no);
            self.ends.push(self.app_nos.len() as u32);
            self.pos.push(pos as u8);
            self.adcode.push(city.map(|i| cities.rows[i].adcode));
            self.form.push(form);
        }
    }

    fn app_nos(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| &self.app_nos[start as usize..end as usize])
    }
}

/// The truth of `parts` one after the other as the table `truth_applicants.parquet` holds: the
/// columns built as `Table::to_polars` builds text and integer columns (the same arrays, so the
/// same Parquet bytes), straight from the parts.
pub fn applicants_frame(parts: &[ApplicantTruth]) -> Result<DataFrame, Diagnostic> {
    let rows: usize = parts.iter().map(|p| p.ends.len()).sum();
    let text = |name: &str, values: &mut dyn Iterator<Item = &str>| -> Column {
        StringChunked::from_iter_options(name.into(), values.map(Some))
            .into_series()
            .into()
    };
    let int = |name: &str, values: &mut dyn Iterator<Item = i64>| -> Column {
        Int64Chunked::from_iter_options(name.into(), values.map(Some))
            .into_series()
            .into()
    };
    let int_opt = |name: &str, values: &mut dyn Iterator<Item = Option<i64>>| -> Column {
        Int64Chunked::from_iter_options(name.into(), values)
            .into_series()
            .into()
    };
    let columns = vec![
        text("app_no", &mut parts.iter().flat_map(|p| p.app_nos())),
        int(
            "pos",
            &mut parts
                .iter()
                .flat_map(|p| p.pos.iter().map(|&k| i64::from(k))),
        ),
        int_opt(
            "adcode6",
            &mut parts
                .iter()
                .flat_map(|p| p.adcode.iter().map(|a| a.map(i64::from))),
        ),
        text(
            "form",
            &mut parts.iter().flat_map(|p| p.form.iter().copied()),
        ),
    ];
    DataFrame::new(rows, columns)
        .map_err(|e| Diagnostic::new("cannot build the output table").cause(e.to_string()))
}

/// Counts of the truth table per city-year.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub joint: f64,
    pub joint_cc: f64,
    pub joint_cp: f64,
    pub frac_cc: f64,
    pub inv_joint_cc: f64,
    pub inv_frac_cc: f64,
    pub total: f64,
}

/// The counts per city-year from the clean records only (what ingestion keeps).
pub fn count_clean<'a>(
    spec: &SynthSpec,
    cities: &Cities,
    records: impl Iterator<Item = &'a Record>,
) -> Vec<Vec<Counts>> {
    let n = cities.rows.len();
    let nt = (spec.last_year - spec.first_year + 1) as usize;
    let mut counts: Vec<Vec<Counts>> = vec![vec![Counts::default(); nt]; n];
    for rec in records {
        if !rec.clean {
            continue;
        }
        count_record(
            &mut counts,
            rec,
            (rec.year - spec.first_year) as usize,
            cities,
        );
    }
    counts
}

/// Counts one record for every city where an applicant truly is (docs/data.md, "Index").
fn count_record(counts: &mut [Vec<Counts>], rec: &Record, t: usize, cities: &Cities) {
    let located: ArrayVec<usize, 3> = rec
        .applicants
        .iter()
        .enumerate()
        .filter_map(|(pos, a)| if pos == 0 { rec.first_city } else { a.city() })
        .collect();
    let mut sorted = located.clone();
    sorted.sort_unstable();
    let mut distinct: ArrayVec<usize, 3> = ArrayVec::new();
    for c in sorted {
        if distinct.last() != Some(&c) {
            distinct.push(c);
        }
    }
    for &c in &distinct {
        counts[c][t].total += 1.0;
    }
    if rec.applicants.len() < 2 {
        return;
    }
    let n_app = rec.applicants.len() as f64;
    let cross_city = distinct.len() >= 2;
    let province = |c: usize| cities.rows[c].province_code;
    let cross_prov = distinct
        .iter()
        .any(|&c| province(c) != province(distinct[0]));
    for &c in &distinct {
        let share = located.iter().filter(|&&x| x == c).count() as f64 / n_app;
        let k = &mut counts[c][t];
        k.joint += 1.0;
        if cross_city {
            k.joint_cc += 1.0;
            k.frac_cc += share;
            if rec.ptype == 1 {
                k.inv_joint_cc += 1.0;
                k.inv_frac_cc += share;
            }
        }
        if cross_prov {
            k.joint_cp += 1.0;
        }
    }
}

/// The true regressor per city-year: ln(1 + cross-city co-applied applications per 10,000).
pub fn collab_true(counts: &[Vec<Counts>], pop: &[Vec<f64>]) -> Vec<Vec<f64>> {
    counts
        .iter()
        .zip(pop)
        .map(|(k, p)| {
            k.iter()
                .zip(p)
                .map(|(k, p)| (1.0 + k.joint_cc / p).ln())
                .collect()
        })
        .collect()
}

/// The truth per city-year, `truth_city_year.csv`.
pub fn city_year_csv(cities: &Cities, world: &World, counts: &[Vec<Counts>]) -> String {
    let (years, pop) = (&world.years, &world.pop);
    let mut tc = String::from(
        "adcode6,year,pop,apps,joint,joint_cc,joint_cp,frac_cc,inv_joint_cc,inv_frac_cc,collab\n",
    );
    for (i, c) in cities.rows.iter().enumerate() {
        for (t, year) in years.iter().enumerate() {
            let k = &counts[i][t];
            let _ = writeln!(
                tc,
                "{},{year},{},{},{},{},{},{},{},{},{}",
                c.adcode,
                pop[i][t],
                k.total,
                k.joint,
                k.joint_cc,
                k.joint_cp,
                tabular::fmt_f(k.frac_cc),
                k.inv_joint_cc,
                tabular::fmt_f(k.inv_frac_cc),
                tabular::fmt_f(k.joint_cc / pop[i][t])
            );
        }
    }
    tc
}

/// Means of collaboration per 10,000 people over cities with yearbook data, per year.
pub fn realised_means(world: &World, counts: &[Vec<Counts>]) -> Vec<f64> {
    let (complete, pop) = (&world.complete, &world.pop);
    (0..world.years.len())
        .map(|t| {
            complete
                .iter()
                .map(|&i| counts[i][t].joint_cc / pop[i][t])
                .sum::<f64>()
                / complete.len() as f64
        })
        .collect()
}

/// `truth.json`: the spec's true parameters, the realised collaboration level and the estimands.
pub fn truth_json(
    spec: &SynthSpec,
    cities: &Cities,
    world: &World,
    realised: &[f64],
    yb: &Yearbook,
) -> serde_json::Value {
    let (draws, complete, years) = (&world.draws, &world.complete, &world.years);
    use serde_json::json;
    let fx = &spec.effects;
    let mean_beta = |keep: &dyn Fn(usize) -> bool| -> f64 {
        let sel: Vec<usize> = complete.iter().copied().filter(|&i| keep(i)).collect();
        sel.iter().map(|&i| yb.beta[i]).sum::<f64>() / sel.len().max(1) as f64
    };
    let east = |i: usize| cities.rows[i].region == "east";
    let coastal = |i: usize| cities.rows[i].coastal;
    let agglo = |i: usize| cities.rows[i].agglomeration.is_some();
    let tert = |i: usize| yb.tertiary_first[i];
    let average = mean_beta(&|_| true);
    let sqrt3 = 3f64.sqrt();
    let quantiles: serde_json::Map<String, serde_json::Value> = (1..10)
        .map(|k| {
            let tau = k as f64 / 10.0;
            (
                format!("{tau:.1}"),
                json!(average + fx.gap_scale * sqrt3 * (2.0 * tau - 1.0)),
            )
        })
        .collect();
    let by_year: serde_json::Map<String, serde_json::Value> = years
        .iter()
        .zip(realised)
        .map(|(y, v)| (y.to_string(), json!(v)))
        .collect();
    json!({
        "seed": spec.seed,
        "records": spec.records,
        "effects": fx,
        "cities": {
            "total": cities.rows.len(),
            "with_yearbook_data": complete.len(),
            "core": complete.iter().filter(|&&i| draws[i].core).count(),
        },
        "collaboration_per_10k": {
            "target_first": spec.collab_first,
            "target_last": spec.collab_last,
            "mean_by_year": by_year,
        },
        "estimands": {
            "note": "effects of collab = ln(1 + cross-city co-applied applications per 10,000 \
                     people); gap = |ln pcGDP - ln mean pcGDP|; averages over cities with \
                     yearbook data, equally weighted",
            "gap_average": average,
            "gap_by_group": {
                "east": mean_beta(&|i| east(i)),
                "central_west": mean_beta(&|i| !east(i)),
                "coastal": mean_beta(&|i| coastal(i)),
                "inland": mean_beta(&|i| !coastal(i)),
                "tertiary": mean_beta(&|i| tert(i)),
                "not_tertiary": mean_beta(&|i| !tert(i)),
                "agglomeration": mean_beta(&|i| agglo(i)),
                "not_agglomeration": mean_beta(&|i| !agglo(i)),
            },
            "gap_quantile_note": "conditional quantile effects of the DGP: gap_average + \
                                  gap_scale * sqrt(3) * (2 tau - 1)",
            "gap_quantile": quantiles,
            "tfp": fx.tfp,
            "innovation_capability": complete.iter().map(|&i| yb.innovation[i]).sum::<f64>()
                / complete.len() as f64,
            "linkage_approx": fx.linkage,
            "rd_fund_flow": 0.0,
            "rd_personnel_flow": 0.0,
            "ols_bias": "positive: the unobserved confounder raises both collaboration and the gap",
        },
    })
}
