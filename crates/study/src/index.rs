//! The `index` built-in kind: the city-year collaborative-innovation index and the city-pair
//! collaboration network.
//!
//! Owns: the counting rules (docs/data.md, "Index"): joint applications (two or more
//! applicants) counted in full for every city where an applicant is located; of them, those with
//! located applicants in two or more cities (cross-city) and provinces (cross-province);
//! fractional counting (a city's share of an application's applicants); invention-only variants;
//! per 10,000 people; and per year the edge list (city pairs with their number of joint
//! applications), degree and strength. Deliberately does not own: locating applicants
//! (`locate`) or the analysis panel (`panel`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use polars::prelude::{Int64Chunked, PlHashMap};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::places::Cities;
use repro_kind::diag::Diagnostic;
use repro_kind::KindError;
use repro_tabular::dataio;
use repro_tabular::table::{self as tabular, Col, Table};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSpec {
    /// The applicant table written by a `locate` stage.
    pub applicants: String,
    #[serde(default = "default_cities")]
    pub cities: String,
    /// A city-year table with population (10,000 persons) for the per-10,000 measures.
    pub population: String,
    #[serde(default = "default_pop_column")]
    pub pop_column: String,
    #[serde(deserialize_with = "crate::ranges::first_year")]
    pub first_year: i32,
    #[serde(deserialize_with = "crate::ranges::last_year")]
    pub last_year: i32,
    /// The city-year index (`.csv`; a `.parquet` twin is written beside it).
    pub out: String,
    pub edges: String,
    pub report: String,
}

fn default_cities() -> String {
    "data/cities.csv".into()
}

fn default_pop_column() -> String {
    "pop".into()
}

pub fn parse(spec_path: &str, root: &Path) -> Result<IndexSpec, KindError> {
    let spec: IndexSpec = repro_kind::load_spec(root, spec_path)?;
    repro_kind::check_spec_paths(
        spec_path,
        [
            &spec.applicants,
            &spec.cities,
            &spec.population,
            &spec.out,
            &spec.edges,
            &spec.report,
        ],
    )?;
    repro_kind::check_csv_out(spec_path, &spec.out)?;
    if spec.last_year < spec.first_year {
        return Err(repro_kind::spec_err(
            spec_path,
            "`last_year` is before `first_year`",
        ));
    }
    Ok(spec)
}

pub fn deps(spec: &IndexSpec) -> Vec<String> {
    vec![
        spec.applicants.clone(),
        spec.cities.clone(),
        spec.population.clone(),
    ]
}

pub fn outs(spec: &IndexSpec) -> Vec<String> {
    vec![
        spec.out.clone(),
        tabular::parquet_twin(&spec.out),
        spec.edges.clone(),
        spec.report.clone(),
    ]
}

/// Counts of one city in one year.
#[derive(Debug, Clone, Default)]
struct Counts {
    apps: u64,
    joint: u64,
    joint_cc: u64,
    joint_cp: u64,
    frac_cc: f64,
    inv_joint: u64,
    inv_joint_cc: u64,
    inv_frac_cc: f64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.apps += o.apps;
        self.joint += o.joint;
        self.joint_cc += o.joint_cc;
        self.joint_cp += o.joint_cp;
        self.frac_cc += o.frac_cc;
        self.inv_joint += o.inv_joint;
        self.inv_joint_cc += o.inv_joint_cc;
        self.inv_frac_cc += o.inv_frac_cc;
    }
}

/// Counts by (city, year).
type CityYearCounts = BTreeMap<(usize, i32), Counts>;

/// Joint cross-city applications by (year, city a, city b), a < b: the network's edges.
type Edges = BTreeMap<(i32, usize, usize), u64>;

/// The counts and edges of one block of applications.
type Partial = (
    PlHashMap<(usize, i32), Counts>,
    PlHashMap<(i32, usize, usize), u64>,
);

/// The applicant table as compact vectors: what each application's first row says, and each
/// row's city. About 15 bytes an application (most have one applicant), so that the memory this
/// stage faults in stays small: zeroing fresh pages was a third of its time.
struct Applications {
    /// Year of each application (its first row's).
    year: Vec<Option<i32>>,
    /// Whether each application is an invention patent (its first row's type is 1).
    invention: Vec<bool>,
    /// The index of each row's city in the city table (`NO_CITY`: not located).
    city_idx: Vec<u16>,
    /// The first row of each application, then the number of rows: rows of one application
    /// are consecutive.
    starts: Vec<u32>,
}

/// `city_idx` of an applicant not located in a city of the table.
const NO_CITY: u16 = u16::MAX;

impl Applications {
    fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// The rows of application `a`.
    fn rows(&self, a: usize) -> std::ops::Range<usize> {
        self.starts[a] as usize..self.starts[a + 1] as usize
    }
}

/// Applications per parallel block. Fixed (not derived from the thread count), and blocks are
/// merged in order, so fractional sums are identical whatever the number of threads.
const BLOCK: usize = 1 << 16;

/// Runs an `index` stage: counts every application for the cities of its applicants, and
/// writes the city-year index (CSV and Parquet), the edge list and the report.
pub fn run(root: &Path, stage: &str, spec: &IndexSpec) -> Result<(), Diagnostic> {
    let fail = |d: Diagnostic| repro_kind::stage_failed(stage, d);
    let cities = Cities::load(&root.join(&spec.cities)).map_err(fail)?;
    let apps = read_applications(root, spec, &cities).map_err(fail)?;
    let (first, last) = (spec.first_year, spec.last_year);
    let n_apps = apps.len();
    let out_of_range = apps.year.iter().filter(|&&y| !in_years(spec, y)).count();
    let (counts, edges) = count(&apps, &cities, spec);
    drop(apps);
    let pop = read_population(root, spec).map_err(fail)?;

    let (t, missing_pop) = index_table(spec, &cities, &counts, &edges, &pop);
    t.write_csv(root, &spec.out).map_err(fail)?;
    t.write_parquet(root, &tabular::parquet_twin(&spec.out))
        .map_err(fail)?;
    edge_table(&cities, &edges)
        .write_csv(root, &spec.edges)
        .map_err(fail)?;

    let report = serde_json::json!({
        "applications": n_apps,
        "outside_years": out_of_range,
        "city_years": cities.rows.len() * (last - first + 1) as usize,
        "city_years_without_population": missing_pop,
        "edges": edges.len(),
    });
    tabular::write_json(root, &spec.report, &report).map_err(fail)?;
    Ok(())
}

/// Whether an application's year is one the index covers.
fn in_years(spec: &IndexSpec, year: Option<i32>) -> bool {
    year.is_some_and(|y| y >= spec.first_year && y <= spec.last_year)
}

/// Rows of the applicant table read at a time, at least (see `read_applications`).
const BATCH_ROWS: usize = 1 << 18;

/// Reads the applicant table's four columns into compact vectors and finds the applications.
/// The table is read in batches: only the compact vectors grow with the table, and a batch's
/// polars columns reuse the memory of the one before instead of faulting in fresh pages.
fn read_applications(
    root: &Path,
    spec: &IndexSpec,
    cities: &Cities,
) -> Result<Applications, Diagnostic> {
    let file = spec.applicants.as_str();
    let path = root.join(file);
    let rows = dataio::row_count(&path, dataio::format_of(&path)?)?;
    if u32::try_from(rows).is_err() || cities.rows.len() >= usize::from(NO_CITY) {
        return Err(Diagnostic::new(format!(
            "`{file}` has {rows} rows and the city table {}; at most {} and {} are supported",
            cities.rows.len(),
            u32::MAX,
            NO_CITY - 1
        )));
    }
    // At most one application a row: reserved whole, a vector never grows by copying itself
    // into fresh pages (pages reserved but never written cost nothing).
    let mut apps = Applications {
        year: Vec::with_capacity(rows),
        invention: Vec::with_capacity(rows),
        city_idx: Vec::with_capacity(rows),
        starts: Vec::with_capacity(rows + 1),
    };
    let mut previous = None;
    // Whether each row of the batch starts an application.
    let mut first_row: Vec<bool> = Vec::new();
    let columns = ["app", "year", "ptype", "adcode6"];
    let read = dataio::for_each_batch(&path, &columns, BATCH_ROWS, |offset, df| {
        let int_column = |name: &str| tabular::int_column(&df, file, name);
        first_row.clear();
        let mut r = offset;
        each_value(&int_column("app")?, |a| {
            let starts = r == 0 || a != previous;
            if starts {
                // `rows` fits in u32 (checked above).
                apps.starts.push(r as u32);
            }
            first_row.push(starts);
            previous = a;
            r += 1;
        });
        let mut i = 0;
        each_value(&int_column("year")?, |y| {
            if first_row[i] {
                apps.year.push(y.and_then(|y| i32::try_from(y).ok()));
            }
            i += 1;
        });
        i = 0;
        each_value(&int_column("ptype")?, |t| {
            if first_row[i] {
                apps.invention.push(t == Some(1));
            }
            i += 1;
        });
        each_value(&int_column("adcode6")?, |c| {
            let city = c
                .and_then(|c| u32::try_from(c).ok())
                .and_then(|c| cities.index_of(c))
                .and_then(|i| u16::try_from(i).ok());
            apps.city_idx.push(city.unwrap_or(NO_CITY));
        });
        Ok(())
    })?;
    apps.starts.push(read as u32);
    Ok(apps)
}

/// Calls `f` with every value of `ca` in order. Walks each chunk's values directly when it has
/// no nulls: polars' per-value iterator was most of reading the applicant table.
fn each_value(ca: &Int64Chunked, mut f: impl FnMut(Option<i64>)) {
    for arr in ca.downcast_iter() {
        if arr.validity().is_none_or(|v| v.unset_bits() == 0) {
            arr.values().iter().for_each(|&v| f(Some(v)));
        } else {
            arr.iter().for_each(|v| f(v.copied()));
        }
    }
}

/// Counts the applications in the years of the spec, in fixed blocks in parallel, merged in
/// block order.
fn count(apps: &Applications, cities: &Cities, spec: &IndexSpec) -> (CityYearCounts, Edges) {
    let blocks: Vec<Partial> = (0..apps.len().div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| count_block(apps, cities, spec, b))
        .collect();
    // Merge in block order; within a block, one city-year's sums were already in row order.
    let mut counts = CityYearCounts::new();
    let mut edges = Edges::new();
    for (c, e) in blocks {
        let mut c: Vec<_> = c.into_iter().collect();
        c.sort_by_key(|(k, _)| *k);
        for (k, v) in c {
            counts.entry(k).or_default().add(&v);
        }
        for (k, v) in e {
            *edges.entry(k).or_insert(0) += v;
        }
    }
    (counts, edges)
}

/// Counts block `b` of the applications (docs/data.md, "Index").
fn count_block(apps: &Applications, cities: &Cities, spec: &IndexSpec, b: usize) -> Partial {
    let (year, invention, city_idx) = (&apps.year, &apps.invention, &apps.city_idx);
    let n_apps = apps.len();
    let mut counts: PlHashMap<(usize, i32), Counts> = PlHashMap::default();
    let mut edges: PlHashMap<(i32, usize, usize), u64> = PlHashMap::default();
    // Reused for every application: cities of located applicants, then the distinct ones.
    let mut located: Vec<usize> = Vec::new();
    let mut distinct: Vec<usize> = Vec::new();
    for a in b * BLOCK..((b + 1) * BLOCK).min(n_apps) {
        if !in_years(spec, year[a]) {
            continue;
        }
        let y = year[a].unwrap_or_default();
        let invention = invention[a];
        let rows = apps.rows(a);
        let n_applicants = rows.len() as f64;
        let joint = rows.len() >= 2;
        located.clear();
        located.extend(
            city_idx[rows]
                .iter()
                .filter(|&&c| c != NO_CITY)
                .map(|&c| usize::from(c)),
        );
        distinct.clear();
        distinct.extend_from_slice(&located);
        distinct.sort_unstable();
        distinct.dedup();
        let cross_city = distinct.len() >= 2;
        let province = |c: usize| cities.rows[c].province_code;
        let cross_prov = distinct
            .iter()
            .any(|&c| province(c) != province(distinct[0]));
        for &c in &distinct {
            let k = counts.entry((c, y)).or_default();
            k.apps += 1;
            if !joint {
                continue;
            }
            k.joint += 1;
            k.inv_joint += u64::from(invention);
            if cross_city {
                let share = located.iter().filter(|&&x| x == c).count() as f64 / n_applicants;
                k.joint_cc += 1;
                k.frac_cc += share;
                if invention {
                    k.inv_joint_cc += 1;
                    k.inv_frac_cc += share;
                }
            }
            k.joint_cp += u64::from(cross_prov);
        }
        if cross_city {
            let d = &distinct;
            for i in 0..d.len() {
                for j in i + 1..d.len() {
                    *edges.entry((y, d[i], d[j])).or_insert(0) += 1;
                }
            }
        }
    }
    (counts, edges)
}

/// Population for the per-10,000 measures, by (city code, year).
fn read_population(root: &Path, spec: &IndexSpec) -> Result<HashMap<(u32, i32), f64>, Diagnostic> {
    let pop_file = spec.population.as_str();
    let pdf = tabular::read(root, pop_file)?;
    let pcode = tabular::ints(&pdf, pop_file, "adcode6")?;
    let pyear = tabular::ints(&pdf, pop_file, "year")?;
    let pvalue = tabular::floats(&pdf, pop_file, &spec.pop_column)?;
    let mut pop: HashMap<(u32, i32), f64> = HashMap::new();
    for ((c, y), v) in pcode.iter().zip(&pyear).zip(&pvalue) {
        if let (Some(c), Some(y), Some(v)) = (c, y, v) {
            pop.insert((*c as u32, *y as i32), *v);
        }
    }
    Ok(pop)
}

/// The city-year index: every city and year, with zeros where nothing was filed; and how many
/// city-years lack population.
fn index_table(
    spec: &IndexSpec,
    cities: &Cities,
    counts: &CityYearCounts,
    edges: &Edges,
    pop: &HashMap<(u32, i32), f64>,
) -> (Table, usize) {
    let (first, last) = (spec.first_year, spec.last_year);
    // Degree and strength per city-year.
    let mut degree: HashMap<(usize, i32), (u64, u64)> = HashMap::new();
    for ((y, a, b), w) in edges {
        for c in [a, b] {
            let d = degree.entry((*c, *y)).or_insert((0, 0));
            d.0 += 1;
            d.1 += w;
        }
    }

    // Every city and year appears, with zeros where nothing was filed.
    let mut t = Table::default();
    let mut cols: Vec<Vec<Option<f64>>> = vec![Vec::new(); 13];
    let mut codes = Vec::new();
    let mut yrs = Vec::new();
    let mut missing_pop = 0usize;
    for (i, c) in cities.rows.iter().enumerate() {
        for y in first..=last {
            let k = counts.get(&(i, y)).cloned().unwrap_or_default();
            let (deg, strength) = degree.get(&(i, y)).copied().unwrap_or((0, 0));
            let p = pop.get(&(c.adcode, y)).copied().filter(|p| *p > 0.0);
            missing_pop += usize::from(p.is_none());
            let per = |v: f64| p.map(|p| v / p);
            codes.push(Some(i64::from(c.adcode)));
            yrs.push(Some(i64::from(y)));
            let values = [
                Some(k.apps as f64),
                Some(k.joint as f64),
                Some(k.joint_cc as f64),
                Some(k.joint_cp as f64),
                Some(k.frac_cc),
                Some(k.inv_joint_cc as f64),
                Some(k.inv_frac_cc),
                Some(deg as f64),
                Some(strength as f64),
                per(k.joint_cc as f64),
                per(k.joint_cp as f64),
                per(k.frac_cc),
                per(k.inv_joint_cc as f64),
            ];
            for (col, v) in cols.iter_mut().zip(values) {
                col.push(v);
            }
        }
    }
    t.push("adcode6", Col::Int(codes));
    t.push("year", Col::Int(yrs));
    let names = [
        "apps",
        "joint",
        "joint_cc",
        "joint_cp",
        "frac_cc",
        "inv_joint_cc",
        "inv_frac_cc",
        "degree",
        "strength",
        "collab",
        "collab_cp",
        "collab_frac",
        "collab_inv",
    ];
    for (k, (name, col)) in names.iter().zip(cols).enumerate() {
        // Counts are integers (except fractional ones); keep them integer-typed.
        if [0usize, 1, 2, 3, 5, 7, 8].contains(&k) {
            t.push(
                name,
                Col::Int(col.iter().map(|v| v.map(|v| v as i64)).collect()),
            );
        } else {
            t.push(name, Col::Float(col));
        }
    }

    (t, missing_pop)
}

/// The network's edge list: year, the two cities' codes and the number of joint applications.
fn edge_table(cities: &Cities, edges: &Edges) -> Table {
    let mut e = Table::default();
    let mut ey = Vec::new();
    let mut ea = Vec::new();
    let mut eb = Vec::new();
    let mut ew = Vec::new();
    for ((y, a, b), w) in edges {
        ey.push(Some(i64::from(*y)));
        ea.push(Some(i64::from(cities.rows[*a].adcode)));
        eb.push(Some(i64::from(cities.rows[*b].adcode)));
        ew.push(Some(*w as i64));
    }
    e.push("year", Col::Int(ey));
    e.push("city_a", Col::Int(ea));
    e.push("city_b", Col::Int(eb));
    e.push("weight", Col::Int(ew));
    e
}
