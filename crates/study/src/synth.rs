//! The `synth` built-in kind: realistic synthetic raw data with a documented, seeded
//! data-generating process (docs/dgp.md).
//!
//! Owns: drawing the city attributes, the collaboration intensities, the patent application
//! records (as a messy office export), the city-year yearbook, the province R&D table, the
//! synthetic postcode directory, and the truth files (true parameters and the city-year counts
//! the pipeline must find). Every draw comes from ChaCha8 streams derived from the spec's seed
//! and a fixed tag, so the output is byte-identical whatever the thread count.
//! Deliberately does not own: reading raw data back (`ingest`, `locate`), counting (`collab`).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::places::{distance_km, Cities, City, PlaceIndex};
use crate::yearbook;
use repro_kind::diag::Diagnostic;
use repro_kind::KindError;
use repro_tabular::table as tabular;

/// The spec of a `synth` stage (`stages/synth.yaml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthSpec {
    pub seed: u64,
    #[serde(default = "default_cities")]
    pub cities: String,
    #[serde(default = "default_first_year")]
    pub first_year: i32,
    #[serde(default = "default_last_year")]
    pub last_year: i32,
    /// About how many patent records to write (more records add single-applicant patents; the
    /// collaboration level is set by `collab_first`/`collab_last`).
    #[serde(default = "default_records")]
    pub records: u64,
    /// Target mean cross-city co-applied applications per 10,000 people in the first and last
    /// year (the study reports 0.306 in 2010 and 0.983 in 2020).
    #[serde(default = "default_collab_first")]
    pub collab_first: f64,
    #[serde(default = "default_collab_last")]
    pub collab_last: f64,
    pub out_dir: String,
    #[serde(default)]
    pub mess: Mess,
    #[serde(default)]
    pub effects: Effects,
}

fn default_cities() -> String {
    "data/cities.csv".into()
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
    pub duplicates: f64,
    pub bad_dates: f64,
    pub missing_applicants: f64,
    pub bad_numbers: f64,
    pub full_width: f64,
    pub stray_spaces: f64,
    pub blank_fields: f64,
    pub foreign: f64,
    /// Share of first-applicant addresses written without the city (the postcode then tells).
    pub address_without_city: f64,
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
            address_without_city: 0.08,
        }
    }
}

/// The true parameters of the data-generating process (docs/dgp.md explains each).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Effects {
    /// Effect of collaboration, ln(1 + per 10,000), on the gap in core cities: central/western
    /// (non-eastern), inside an urban agglomeration and tertiary-dominated.
    pub gap_core: f64,
    /// The same effect in every other city.
    pub gap_other: f64,
    /// Effect of collaboration on the dispersion of the gap (the quantile slope).
    pub gap_scale: f64,
    /// Base dispersion of the gap.
    pub gap_scale_base: f64,
    /// Effect of the unobserved confounder on the gap and on ln collaboration intensity.
    pub confounder_gap: f64,
    pub confounder_collab: f64,
    /// Effect of the instrument (standardised historical post offices x national internet
    /// trend) on ln collaboration intensity.
    pub instrument: f64,
    /// Effects of the controls on the gap.
    pub gov: f64,
    pub fin: f64,
    /// Effects of collaboration on the mechanism variables.
    pub innovation: f64,
    /// Lagging cities (innovation below the mean) gain `innovation * (1 + catch_up)`, leading
    /// ones `innovation * (1 - catch_up)`: collaboration narrows the innovation gap.
    pub innovation_catch_up: f64,
    pub tfp: f64,
    pub linkage: f64,
    pub price_dispersion: f64,
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

/// The files a `synth` stage writes, under `out_dir`.
pub const OUTPUT_FILES: &[&str] = &[
    "patents.csv",
    "yearbook.csv",
    "rd_province.csv",
    "postcodes.csv",
    "truth.json",
    "truth_city_year.csv",
];

pub fn parse(spec_path: &str, root: &Path) -> Result<SynthSpec, KindError> {
    let spec: SynthSpec = repro_kind::load_spec(root, spec_path)?;
    let bad = |m: String| KindError {
        location: None,
        ..repro_kind::spec_err(spec_path, m)
    };
    repro_kind::normalize_path(&spec.out_dir).map_err(|why| bad(format!("`out_dir`: {why}")))?;
    repro_kind::normalize_path(&spec.cities).map_err(|why| bad(format!("`cities`: {why}")))?;
    if spec.last_year <= spec.first_year {
        return Err(bad("`last_year` must be after `first_year`".into()));
    }
    if !(spec.collab_first > 0.0 && spec.collab_last > 0.0) {
        return Err(bad(
            "`collab_first` and `collab_last` must be positive".into()
        ));
    }
    Ok(spec)
}

pub fn outputs(spec: &SynthSpec) -> Vec<String> {
    let dir = spec.out_dir.trim_end_matches('/');
    OUTPUT_FILES.iter().map(|f| format!("{dir}/{f}")).collect()
}

/// A ChaCha8 stream for one component of the draw: the seed, a tag naming the component and an
/// index (a year, a city), hashed, so adding a component never shifts another's numbers.
fn stream(seed: u64, tag: &str, index: u64) -> ChaCha8Rng {
    let mut h = blake3::Hasher::new();
    h.update(&seed.to_le_bytes());
    h.update(tag.as_bytes());
    h.update(&index.to_le_bytes());
    let bytes = h.finalize();
    let mut s = [0u8; 32];
    s.copy_from_slice(bytes.as_bytes());
    ChaCha8Rng::from_seed(s)
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// Draws an index with probability proportional to `cum` increments (a cumulative table).
fn draw_cum(rng: &mut ChaCha8Rng, cum: &[f64]) -> usize {
    let total = *cum.last().unwrap_or(&0.0);
    let u = rng.random::<f64>() * total;
    cum.partition_point(|&c| c <= u)
        .min(cum.len().saturating_sub(1))
}

fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut acc = 0.0;
    weights
        .map(|w| {
            acc += w.max(0.0);
            acc
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// City attributes

/// Time-invariant draws per city.
#[derive(Debug, Clone)]
struct CityDraw {
    /// Has yearbook data (prefectures named 地区, 盟 or 自治州 lack GDP, as in real yearbooks).
    complete: bool,
    pop0: f64,
    pop_growth: f64,
    area: f64,
    /// Above the mean per-capita GDP.
    rich: bool,
    gap_level: f64,
    core: bool,
    collab_level: f64,
    /// Standardised instrument base.
    hist: f64,
    /// City effects of the yearbook series.
    innov_level: f64,
    tfp_level: f64,
    pass_level: f64,
    price_level: f64,
    wage_level: f64,
    spec_loadings: [f64; SECTORS],
    gov_level: f64,
    fin_level: f64,
    ter_base: f64,
    sec_base: f64,
}

/// How many employment sectors the yearbook has.
const SECTORS: usize = yearbook::SECTORS.len();
/// The mean employment share of each sector, in the yearbook's sector order.
const SECTOR_MEAN_SHARES: [f64; SECTORS] = [0.30, 0.12, 0.18, 0.08, 0.07, 0.25];

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

// ---------------------------------------------------------------------------------------------
// Organisations and names

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrgKind {
    Firm,
    University,
    Institute,
}

#[derive(Debug, Clone)]
struct Org {
    name: String,
    city: usize,
    /// Its name carries its city (a place-name match finds it).
    placed: bool,
}

const BRAND: &[&str] = &[
    "华", "信", "恒", "达", "新", "元", "博", "创", "瑞", "泰", "宏", "远", "安", "通", "益", "科",
    "海", "天", "正", "德", "金", "鑫", "盛", "辰", "润", "和", "永", "嘉", "力", "凯", "中", "联",
    "航", "星", "智", "微", "晶", "光", "电", "源", "合", "众", "兴", "昌", "隆", "鸿", "思", "锐",
];
const INDUSTRY: &[&str] = &[
    "科技",
    "电子",
    "机械",
    "材料",
    "生物",
    "医药",
    "化工",
    "能源",
    "信息技术",
    "智能装备",
    "汽车零部件",
    "新材料",
    "环保",
    "光电",
    "精密仪器",
    "软件",
    "食品",
    "纺织",
];
const FIRM_SUFFIX: &[&str] = &["有限公司", "股份有限公司", "集团有限公司"];
const UNI_WORDS: &[&str] = &[
    "大学",
    "理工大学",
    "师范大学",
    "职业技术学院",
    "工程学院",
    "医科大学",
];
const FIELDS: &[&str] = &[
    "农业科学",
    "工业技术",
    "环境科学",
    "材料",
    "信息",
    "生物技术",
];
const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超",
    "霞", "平", "刚", "华",
];
const FOREIGN: &[(&str, &str, &str)] = &[
    ("SIEMENS AKTIENGESELLSCHAFT", "德国慕尼黑", "DE"),
    ("SONY CORPORATION", "日本东京都", "JP"),
    ("SAMSUNG ELECTRONICS CO., LTD.", "韩国京畿道", "KR"),
    (
        "INTERNATIONAL BUSINESS MACHINES CORPORATION",
        "美国纽约州阿蒙克",
        "US",
    ),
    ("KONINKLIJKE PHILIPS N.V.", "荷兰埃因霍温", "NL"),
    ("BASF SE", "德国路德维希港", "DE"),
];
const DISTRICTS: &[&str] = &[
    "高新技术产业开发区",
    "经济技术开发区",
    "城东新区",
    "城西新区",
    "滨江新区",
    "工业园区",
];
const ROADS: &[&str] = &[
    "科技路",
    "创新大道",
    "工业大道",
    "学府路",
    "人民路",
    "建设路",
];
const TITLE_NOUN: &[&str] = &[
    "数据处理装置",
    "电池极片",
    "复合材料",
    "检测系统",
    "控制电路",
    "传动机构",
    "催化剂",
    "显示面板",
];
const TITLE_HOW: &[&str] = &["制备方法", "控制方法", "及其应用", "装置", "系统及方法"];
const IPC: &[&str] = &[
    "H04L 29/06",
    "G06F 17/30",
    "H01M 4/13",
    "C08L 67/02",
    "G01N 21/01",
    "B65G 47/90",
    "A61K 31/00",
    "F16H 1/28",
    "C02F 9/14",
    "H02J 7/00",
];

/// Builds every city's organisations with globally unique names. A placed name must be found by
/// the same place matcher `locate` uses, and an unplaced one must not be; names are redrawn until
/// that holds, so the truth files agree with what the pipeline can know.
fn build_orgs(seed: u64, cities: &Cities, draws: &[CityDraw], places: &PlaceIndex) -> Vec<Org> {
    let mut used: HashSet<String> = HashSet::new();
    let mut orgs = Vec::new();
    // A short name that is also a province's (吉林, 海南) cannot carry its city in a name.
    let province_shorts: HashSet<&str> = cities
        .rows
        .iter()
        .map(|c| c.province_short.as_str())
        .collect();
    for (i, c) in cities.rows.iter().enumerate() {
        let mut r = stream(seed, "orgs", i as u64);
        let n = (draws[i].pop0 / 4.0).round().clamp(12.0, 400.0) as usize;
        let can_place = !province_shorts.contains(c.short.as_str()) || c.municipality;
        for k in 0..n {
            let kind = match k % 20 {
                0 => OrgKind::University,
                1 => OrgKind::Institute,
                _ => OrgKind::Firm,
            };
            for attempt in 0..50 {
                let placed = can_place && (kind != OrgKind::Firm || r.random::<f64>() < 0.4);
                let name = org_name(&mut r, c, kind, placed);
                if used.contains(&name) {
                    continue;
                }
                let found = places.name_city(&name);
                let ok = if placed {
                    found == Some(i)
                } else {
                    found.is_none()
                };
                if !ok && attempt < 49 {
                    continue;
                }
                if !ok {
                    break;
                }
                used.insert(name.clone());
                orgs.push(Org {
                    name,
                    city: i,
                    placed,
                });
                break;
            }
        }
    }
    orgs
}

fn org_name(r: &mut ChaCha8Rng, c: &City, kind: OrgKind, placed: bool) -> String {
    let brand = format!("{}{}", pick(r, BRAND), pick(r, BRAND));
    match (kind, placed) {
        (OrgKind::Firm, true) => format!(
            "{}{}{}{}",
            c.short,
            brand,
            pick(r, INDUSTRY),
            pick(r, FIRM_SUFFIX)
        ),
        (OrgKind::Firm, false) => format!(
            "{}{}{}{}",
            brand,
            pick(r, BRAND),
            pick(r, INDUSTRY),
            pick(r, FIRM_SUFFIX)
        ),
        (OrgKind::University, true) => format!("{}{}{}", c.short, brand, pick(r, UNI_WORDS)),
        (OrgKind::University, false) => format!("{}{}", brand, pick(r, UNI_WORDS)),
        (OrgKind::Institute, true) => {
            format!("{}{}{}研究院", c.short, pick(r, FIELDS), brand)
        }
        (OrgKind::Institute, false) => format!("{}{}研究所", brand, pick(r, FIELDS)),
    }
}

fn person_name(r: &mut ChaCha8Rng) -> String {
    if r.random::<f64>() < 0.6 {
        format!("{}{}{}", pick(r, SURNAMES), pick(r, GIVEN), pick(r, GIVEN))
    } else {
        format!("{}{}", pick(r, SURNAMES), pick(r, GIVEN))
    }
}

// ---------------------------------------------------------------------------------------------
// Postcodes

/// A synthetic postcode directory: each city gets a 4-digit prefix (province block + city).
fn postcode_prefixes(cities: &Cities) -> Vec<u32> {
    let mut next_in_province: BTreeMap<u32, u32> = BTreeMap::new();
    let mut province_block: BTreeMap<u32, u32> = BTreeMap::new();
    cities
        .rows
        .iter()
        .map(|c| {
            let n = province_block.len() as u32;
            let block = *province_block.entry(c.province_code).or_insert(10 + n * 2);
            let k = next_in_province.entry(c.province_code).or_insert(0);
            let prefix = block * 100 + *k;
            *k += 1;
            prefix
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Records

/// The check character of a 12-digit application number (docs/data.md).
pub fn check_char(digits: &str) -> char {
    const W: [u32; 12] = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5];
    let sum: u32 = digits
        .chars()
        .filter_map(|c| c.to_digit(10))
        .zip(W)
        .map(|(d, w)| d * w)
        .sum();
    match sum % 11 {
        10 => 'X',
        v => char::from_digit(v, 10).unwrap_or('0'),
    }
}

/// One applicant as generated: who, and the city the pipeline can find (None: unlocatable).
#[derive(Debug, Clone)]
struct Applicant {
    name: String,
    city: Option<usize>,
}

#[derive(Debug, Clone)]
struct Record {
    year: i32,
    ptype: u8,
    applicants: Vec<Applicant>,
    first_city: Option<usize>,
    foreign: Option<usize>,
    /// Whether this record survives ingestion (no fatal mess); only such records count in truth.
    clean: bool,
}

/// Per-year generation plan.
struct YearPlan {
    year: i32,
    t: usize,
    cross_city: u64,
    same_city: u64,
    single: u64,
    /// Expected cross-city incidences per city drive the draws.
    first_cum: Vec<f64>,
    weight: Vec<f64>,
    pop: Vec<f64>,
}

/// Counts of the truth table per city-year.
#[derive(Debug, Clone, Default)]
struct Counts {
    joint: f64,
    joint_cc: f64,
    joint_cp: f64,
    frac_cc: f64,
    inv_joint_cc: f64,
    inv_frac_cc: f64,
    total: f64,
}

pub fn run(root: &Path, stage: &str, spec: &SynthSpec) -> Result<(), Diagnostic> {
    let fail = |m: String| Diagnostic::new(format!("stage `{stage}` failed")).cause(m);
    let cities = Cities::load(&root.join(&spec.cities))?;
    let places = PlaceIndex::new(&cities);
    let n = cities.rows.len();
    let years: Vec<i32> = (spec.first_year..=spec.last_year).collect();
    let nt = years.len();
    let seed = spec.seed;
    let fx = &spec.effects;
    let draws = draw_cities(seed, &cities);

    // Population per city-year (10,000 persons).
    let pop: Vec<Vec<f64>> = (0..n)
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
        .collect();

    // Unobserved confounder: an AR(1) local shock per city.
    let confounder: Vec<Vec<f64>> = (0..n)
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
        .collect();
    // National internet trend (0 in the first year, 1 in the last): the shift of the instrument.
    let trend: Vec<f64> = (0..nt).map(|t| t as f64 / (nt - 1) as f64).collect();

    // Collaboration intensity (relative): ln c = a_i + pi * hist_i * trend_t + phi * u_it + e_it.
    let intensity: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            let mut r = stream(seed, "intensity", i as u64);
            (0..nt)
                .map(|t| {
                    (draws[i].collab_level
                        + fx.instrument * draws[i].hist * trend[t] * 2.0
                        + fx.confounder_collab * confounder[i][t]
                        + 0.25 * normal(&mut r))
                    .exp()
                })
                .collect()
        })
        .collect();

    // Calibrate the number of cross-city patents per year so that the expected mean incidences
    // per 10,000 people (over cities with yearbook data) follow the targets geometrically.
    let gravity: Vec<Vec<f64>> = (0..n)
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
        .collect();
    let complete: Vec<usize> = (0..n).filter(|&i| draws[i].complete).collect();
    let mut plans = Vec::with_capacity(nt);
    let mut cross_total = 0u64;
    for (t, &year) in years.iter().enumerate() {
        let demand: Vec<f64> = (0..n).map(|i| intensity[i][t] * pop[i][t]).collect();
        let total_demand: f64 = demand.iter().sum();
        let p: Vec<f64> = demand.iter().map(|d| d / total_demand).collect();
        // Partner probabilities q(j | i) ∝ demand_j * gravity_ij.
        // A partner city always, a third city in 8% of applications (see `gen_year`); records
        // made unusable by the export's mess do not count.
        let mut expected = p.clone();
        for i in 0..n {
            let row: f64 = (0..n).map(|j| demand[j] * gravity[i][j]).sum();
            for j in 0..n {
                expected[j] += 1.08 * p[i] * demand[j] * gravity[i][j] / row;
            }
        }
        let usable =
            1.0 - (spec.mess.bad_dates + spec.mess.missing_applicants + spec.mess.bad_numbers);
        for e in &mut expected {
            *e *= usable;
        }
        let per_patent: f64 = complete
            .iter()
            .map(|&i| expected[i] / pop[i][t])
            .sum::<f64>()
            / complete.len() as f64;
        let share = t as f64 / (nt - 1) as f64;
        let target = spec.collab_first * (spec.collab_last / spec.collab_first).powf(share);
        let cross_city = (target / per_patent).round() as u64;
        cross_total += cross_city;
        plans.push(YearPlan {
            year,
            t,
            cross_city,
            same_city: 0,
            single: 0,
            first_cum: cumulative(demand.iter().copied()),
            weight: demand,
            pop: (0..n).map(|i| pop[i][t]).collect(),
        });
    }
    let budget = spec.records as f64;
    if budget < cross_total as f64 * 1.3 {
        return Err(fail(format!(
            "`records` = {} is too few for the calibrated collaboration level",
            spec.records
        ))
        .hint(format!(
            "use at least {} records, or lower `collab_first`/`collab_last`",
            (cross_total as f64 * 1.3).ceil()
        )));
    }
    // The rest: same-city joint applications (a quarter of the cross-city number) and
    // single-applicant ones, growing 8% a year.
    let rest = budget - cross_total as f64 * 1.25;
    let growth: Vec<f64> = (0..nt).map(|t| 1.08f64.powi(t as i32)).collect();
    let gsum: f64 = growth.iter().sum();
    for plan in &mut plans {
        plan.same_city = (plan.cross_city as f64 * 0.25).round() as u64;
        plan.single = (rest * growth[plan.t] / gsum).round() as u64;
    }

    let orgs = build_orgs(seed, &cities, &draws, &places);
    let mut orgs_of_city: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (k, o) in orgs.iter().enumerate() {
        orgs_of_city[o.city].push(k);
    }
    let prefixes = postcode_prefixes(&cities);
    let ctx = GenCtx {
        seed,
        cities: &cities,
        orgs: &orgs,
        orgs_of_city: &orgs_of_city,
        gravity: &gravity,
        mess: &spec.mess,
    };

    // Records per year, in parallel; each year has its own streams, so the result does not
    // depend on the thread count.
    let per_year: Vec<Vec<Record>> = plans.par_iter().map(|p| gen_year(&ctx, p)).collect();

    // Unplaced organisations that appear as co-applicants must be findable by name: make sure
    // each has at least one clean record as first applicant with its address.
    let mut anchored = vec![false; orgs.len()];
    let mut needed = vec![false; orgs.len()];
    let org_index: std::collections::HashMap<&str, usize> = orgs
        .iter()
        .enumerate()
        .map(|(k, o)| (o.name.as_str(), k))
        .collect();
    for rec in per_year.iter().flatten() {
        for (pos, a) in rec.applicants.iter().enumerate() {
            if let Some(&k) = org_index.get(a.name.as_str()) {
                if pos == 0 && rec.clean && rec.first_city.is_some() {
                    anchored[k] = true;
                } else if pos > 0 && !orgs[k].placed {
                    needed[k] = true;
                }
            }
        }
    }
    let mut anchors: Vec<Record> = Vec::new();
    let mut ar = stream(seed, "anchors", 0);
    for k in 0..orgs.len() {
        if needed[k] && !anchored[k] {
            let year = years[ar.random_range(0..nt)];
            anchors.push(Record {
                year,
                ptype: 2,
                applicants: vec![Applicant {
                    name: orgs[k].name.clone(),
                    city: Some(orgs[k].city),
                }],
                first_city: Some(orgs[k].city),
                foreign: None,
                clean: true,
            });
        }
    }

    // Truth counts, from clean records only (what ingestion keeps).
    let mut counts: Vec<Vec<Counts>> = vec![vec![Counts::default(); nt]; n];
    for rec in per_year.iter().flatten().chain(anchors.iter()) {
        if !rec.clean {
            continue;
        }
        count_record(
            &mut counts,
            rec,
            (rec.year - spec.first_year) as usize,
            &cities,
        );
    }

    // Write the export: per year, records then duplicates, in a fixed order.
    let mut text = String::with_capacity(spec.records as usize * 200);
    text.push_str("申请号,申请日,名称,主分类号,申请(专利权)人,地址,邮编,国省代码\n");
    let mut serial: BTreeMap<(i32, u8), u32> = BTreeMap::new();
    let mut anchors_by_year: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
    for a in anchors {
        anchors_by_year.entry(a.year).or_default().push(a);
    }
    for (yi, recs) in per_year.iter().enumerate() {
        let year = years[yi];
        let mut r = stream(seed, "export", year as u64);
        let extra = anchors_by_year.remove(&year).unwrap_or_default();
        let mut dups: Vec<String> = Vec::new();
        for rec in recs.iter().chain(extra.iter()) {
            let s = serial.entry((rec.year, rec.ptype)).or_insert(100_000);
            *s += 1 + r.random_range(0..3u32);
            let line = export_line(&ctx, &mut r, rec, *s, &prefixes);
            if r.random::<f64>() < spec.mess.duplicates && rec.clean {
                dups.push(line.clone());
            }
            text.push_str(&line);
        }
        for d in dups {
            // A re-export of the same application, sometimes with different spacing.
            if r.random::<f64>() < 0.5 {
                text.push(' ');
            }
            text.push_str(&d);
        }
    }

    let out = |f: &str| format!("{}/{f}", spec.out_dir.trim_end_matches('/'));
    let write = |f: &str, bytes: &[u8]| {
        repro_kind::write_output(root, &out(f), bytes)
            .map_err(|e| fail(format!("cannot write `{}`: {e}", out(f))))
    };
    write("patents.csv", text.as_bytes())?;
    drop(text);

    let x_true: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..nt)
                .map(|t| (1.0 + counts[i][t].joint_cc / pop[i][t]).ln())
                .collect()
        })
        .collect();
    let yb = yearbook(
        spec,
        &cities,
        &draws,
        &pop,
        &confounder,
        &trend,
        &x_true,
        &complete,
    );
    write("yearbook.csv", yb.csv.as_bytes())?;
    write(
        "rd_province.csv",
        rd_province(seed, &cities, &years).as_bytes(),
    )?;
    let mut pc = String::from("prefix4,adcode6\n");
    let mut sorted: Vec<(u32, u32)> = prefixes
        .iter()
        .zip(&cities.rows)
        .map(|(p, c)| (*p, c.adcode))
        .collect();
    sorted.sort();
    for (p, a) in sorted {
        let _ = writeln!(pc, "{p:04},{a}");
    }
    write("postcodes.csv", pc.as_bytes())?;

    // Truth per city-year.
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
    write("truth_city_year.csv", tc.as_bytes())?;

    // Means of collaboration per 10,000 people over cities with yearbook data, per year.
    let realised: Vec<f64> = (0..nt)
        .map(|t| {
            complete
                .iter()
                .map(|&i| counts[i][t].joint_cc / pop[i][t])
                .sum::<f64>()
                / complete.len() as f64
        })
        .collect();
    let truth = truth_json(spec, &cities, &draws, &complete, &years, &realised, &yb);
    let mut text = serde_json::to_string_pretty(&truth).map_err(|e| fail(e.to_string()))?;
    text.push('\n');
    write("truth.json", text.as_bytes())?;
    tracing::info!(
        records = spec.records,
        cross_city = cross_total,
        "synthetic data written"
    );
    Ok(())
}

struct GenCtx<'a> {
    seed: u64,
    cities: &'a Cities,
    orgs: &'a [Org],
    orgs_of_city: &'a [Vec<usize>],
    gravity: &'a [Vec<f64>],
    mess: &'a Mess,
}

fn org_applicant(ctx: &GenCtx<'_>, k: usize) -> Applicant {
    Applicant {
        name: ctx.orgs[k].name.clone(),
        city: Some(ctx.orgs[k].city),
    }
}

fn random_org(ctx: &GenCtx<'_>, r: &mut ChaCha8Rng, city: usize) -> usize {
    *pick(r, &ctx.orgs_of_city[city])
}

fn draw_type(r: &mut ChaCha8Rng, invention_share: f64) -> u8 {
    let u = r.random::<f64>();
    if u < invention_share {
        1
    } else if u < invention_share + (1.0 - invention_share) * 0.8 {
        2
    } else {
        3
    }
}

fn gen_year(ctx: &GenCtx<'_>, plan: &YearPlan) -> Vec<Record> {
    let n = ctx.cities.rows.len();
    let mut r = stream(ctx.seed, "records", plan.year as u64);
    let total = plan.cross_city + plan.same_city + plan.single;
    let mut recs = Vec::with_capacity(total as usize);
    let m = ctx.mess;
    let fatal = m.bad_dates + m.missing_applicants + m.bad_numbers;
    let partner_cums: Vec<Vec<f64>> = (0..n)
        .map(|i| cumulative((0..n).map(|j| plan.weight[j] * ctx.gravity[i][j])))
        .collect();
    // Cross-city joint applications.
    for _ in 0..plan.cross_city {
        let i = draw_cum(&mut r, &plan.first_cum);
        let partner_cum = &partner_cums[i];
        let j = draw_cum(&mut r, partner_cum);
        let mut applicants = vec![
            org_applicant(ctx, random_org(ctx, &mut r, i)),
            org_applicant(ctx, random_org(ctx, &mut r, j)),
        ];
        let u = r.random::<f64>();
        if u < 0.08 {
            let k = draw_cum(&mut r, partner_cum);
            applicants.push(org_applicant(ctx, random_org(ctx, &mut r, k)));
        } else if u < 0.20 {
            // An inventor named as co-applicant: individuals cannot be located by name.
            applicants.push(Applicant {
                name: person_name(&mut r),
                city: None,
            });
        }
        dedup_names(&mut applicants);
        recs.push(Record {
            year: plan.year,
            ptype: draw_type(&mut r, 0.6),
            first_city: Some(i),
            applicants,
            foreign: None,
            clean: r.random::<f64>() >= fatal,
        });
    }
    // Same-city joint applications.
    let pop_cum = cumulative(plan.pop.iter().copied());
    for _ in 0..plan.same_city {
        let i = draw_cum(&mut r, &pop_cum);
        let mut applicants = vec![org_applicant(ctx, random_org(ctx, &mut r, i))];
        if r.random::<f64>() < 0.5 {
            applicants.push(org_applicant(ctx, random_org(ctx, &mut r, i)));
        } else {
            applicants.push(Applicant {
                name: person_name(&mut r),
                city: None,
            });
        }
        dedup_names(&mut applicants);
        recs.push(Record {
            year: plan.year,
            ptype: draw_type(&mut r, 0.45),
            first_city: Some(i),
            applicants,
            foreign: None,
            clean: r.random::<f64>() >= fatal,
        });
    }
    // Single-applicant applications, and foreign applicants.
    for _ in 0..plan.single {
        let u = r.random::<f64>();
        if u < m.foreign {
            let f = r.random_range(0..FOREIGN.len());
            let mut applicants = vec![Applicant {
                name: FOREIGN[f].0.to_string(),
                city: None,
            }];
            if r.random::<f64>() < 0.3 {
                let i = draw_cum(&mut r, &pop_cum);
                // Only placed organisations: a foreign-led record does not anchor any name.
                let placed: Vec<usize> = ctx.orgs_of_city[i]
                    .iter()
                    .copied()
                    .filter(|&k| ctx.orgs[k].placed)
                    .collect();
                if !placed.is_empty() {
                    let k = placed[r.random_range(0..placed.len())];
                    applicants.push(org_applicant(ctx, k));
                }
            }
            recs.push(Record {
                year: plan.year,
                ptype: draw_type(&mut r, 0.7),
                first_city: None,
                applicants,
                foreign: Some(f),
                clean: r.random::<f64>() >= fatal,
            });
            continue;
        }
        let i = draw_cum(&mut r, &pop_cum);
        let (applicant, located) = if r.random::<f64>() < 0.25 {
            // Individuals file too; a tenth of them give no usable address.
            let located = r.random::<f64>() >= 0.1;
            (
                Applicant {
                    name: person_name(&mut r),
                    city: located.then_some(i),
                },
                located,
            )
        } else {
            (org_applicant(ctx, random_org(ctx, &mut r, i)), true)
        };
        recs.push(Record {
            year: plan.year,
            ptype: draw_type(&mut r, 0.35),
            first_city: located.then_some(i),
            applicants: vec![applicant],
            foreign: None,
            clean: r.random::<f64>() >= fatal,
        });
    }
    // Shuffle within the year (exports are sorted by number, which is assigned afterwards).
    for k in (1..recs.len()).rev() {
        let j = r.random_range(0..=k);
        recs.swap(k, j);
    }
    recs
}

fn dedup_names(applicants: &mut Vec<Applicant>) {
    let mut seen = HashSet::new();
    applicants.retain(|a| seen.insert(a.name.clone()));
}

fn count_record(counts: &mut [Vec<Counts>], rec: &Record, t: usize, cities: &Cities) {
    let located: Vec<usize> = rec
        .applicants
        .iter()
        .enumerate()
        .filter_map(|(pos, a)| if pos == 0 { rec.first_city } else { a.city })
        .collect();
    let mut distinct: Vec<usize> = located.clone();
    distinct.sort_unstable();
    distinct.dedup();
    for &c in &distinct {
        counts[c][t].total += 1.0;
    }
    if rec.applicants.len() < 2 {
        return;
    }
    let n_app = rec.applicants.len() as f64;
    let cross_city = distinct.len() >= 2;
    let provinces: HashSet<u32> = distinct
        .iter()
        .map(|&c| cities.rows[c].province_code)
        .collect();
    let cross_prov = provinces.len() >= 2;
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

fn to_full_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '!'..='~' => char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c),
            ' ' => '\u{3000}',
            _ => c,
        })
        .collect()
}

fn export_line(
    ctx: &GenCtx<'_>,
    r: &mut ChaCha8Rng,
    rec: &Record,
    serial: u32,
    prefixes: &[u32],
) -> String {
    let m = ctx.mess;
    let digits = format!("{}{}{:07}", rec.year, rec.ptype, serial);
    let mut check = check_char(&digits);
    // Fatal mess, chosen so that exactly the records marked unclean are unusable.
    let mut bad_date = false;
    let mut no_applicant = false;
    if !rec.clean {
        let u = r.random::<f64>() * (m.bad_dates + m.missing_applicants + m.bad_numbers);
        if u < m.bad_dates {
            bad_date = true;
        } else if u < m.bad_dates + m.missing_applicants {
            no_applicant = true;
        } else {
            check = if check == '0' { '1' } else { '0' };
        }
    }
    let mut number = format!("CN{digits}.{check}");
    let day_of_year = r.random_range(0..365u32);
    let (month, day) = month_day(rec.year, day_of_year);
    let mut date = match r.random_range(0..20u32) {
        0..=13 => format!("{}-{month:02}-{day:02}", rec.year),
        14 | 15 => format!("{}/{month}/{day}", rec.year),
        16 | 17 => format!("{}.{month:02}.{day:02}", rec.year),
        18 => format!("{}{month:02}{day:02}", rec.year),
        _ => format!("{}年{month}月{day}日", rec.year),
    };
    if bad_date {
        date = match r.random_range(0..4u32) {
            0 => format!("{}-13-{day:02}", rec.year),
            1 => format!("{}-02-30", rec.year),
            2 => "NA".to_string(),
            _ => String::new(),
        };
    }
    let blank = |r: &mut ChaCha8Rng| r.random::<f64>() < m.blank_fields;
    let title = if blank(r) {
        String::new()
    } else {
        format!("一种{}的{}", pick(r, TITLE_NOUN), pick(r, TITLE_HOW))
    };
    let ipc = if blank(r) {
        String::new()
    } else {
        pick(r, IPC).to_string()
    };
    let mut applicants = if no_applicant {
        String::new()
    } else {
        rec.applicants
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(";")
    };
    let (address, postcode, province_code) = match (rec.foreign, rec.first_city) {
        (Some(f), _) => (
            FOREIGN[f].1.to_string(),
            String::new(),
            FOREIGN[f].2.to_string(),
        ),
        (None, None) => (String::new(), String::new(), String::new()),
        (None, Some(i)) => {
            let c = &ctx.cities.rows[i];
            let street = format!(
                "{}{}{}号",
                pick(r, DISTRICTS),
                pick(r, ROADS),
                r.random_range(1..400u32)
            );
            let code = format!("{:04}{:02}", prefixes[i], r.random_range(0..100u32));
            let without_city = !c.municipality && r.random::<f64>() < m.address_without_city;
            let address = if c.municipality {
                format!("{}{street}", c.name)
            } else if without_city {
                format!("{}{street}", c.province)
            } else {
                format!("{}{}{street}", c.province, c.name)
            };
            // A blank postcode only where the address names the city.
            let postcode = if !without_city && blank(r) {
                String::new()
            } else {
                code
            };
            (address, postcode, format!("{}", c.province_code))
        }
    };
    if r.random::<f64>() < m.full_width {
        number = to_full_width(&number);
        applicants = applicants
            .replace(';', "；")
            .replace('(', "（")
            .replace(')', "）");
    }
    if r.random::<f64>() < m.stray_spaces {
        number = format!(" {number} ");
        applicants = applicants.replace(';', " ; ");
    }
    let mut line = String::with_capacity(200);
    for (k, f) in [
        &number,
        &date,
        &title,
        &ipc,
        &applicants,
        &address,
        &postcode,
        &province_code,
    ]
    .into_iter()
    .enumerate()
    {
        if k > 0 {
            line.push(',');
        }
        tabular::push_field(&mut line, f);
    }
    line.push('\n');
    line
}

fn month_day(year: i32, day_of_year: u32) -> (u32, u32) {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let lengths = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut d = day_of_year;
    for (m, len) in lengths.iter().enumerate() {
        if d < *len {
            return (m as u32 + 1, d + 1);
        }
        d -= len;
    }
    (12, 31)
}

// ---------------------------------------------------------------------------------------------
// Yearbook

struct Yearbook {
    csv: String,
    /// Tertiary-dominated in the first year (tertiary share above secondary), per city.
    tertiary_first: Vec<bool>,
    /// The collaboration effect on the gap, per city.
    beta: Vec<f64>,
    /// The collaboration effect on ln(innovation index), per city.
    innovation: Vec<f64>,
}

/// Formats a yearbook cell: a value with `digits` decimals, or blank when missing.
fn cell(out: &mut String, value: Option<f64>, digits: usize) {
    out.push(',');
    if let Some(v) = value {
        let _ = write!(out, "{v:.digits$}");
    }
}

#[allow(clippy::too_many_arguments)]
fn yearbook(
    spec: &SynthSpec,
    cities: &Cities,
    draws: &[CityDraw],
    pop: &[Vec<f64>],
    confounder: &[Vec<f64>],
    trend: &[f64],
    x: &[Vec<f64>],
    complete: &[usize],
) -> Yearbook {
    let seed = spec.seed;
    let fx = &spec.effects;
    let n = cities.rows.len();
    let nt = trend.len();
    let sqrt3 = 3f64.sqrt();
    let beta: Vec<f64> = draws
        .iter()
        .map(|d| if d.core { fx.gap_core } else { fx.gap_other })
        .collect();

    // Shares, ratios and the gap per city-year, from per-city streams.
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
    let rows: Vec<Vec<Row>> = (0..n)
        .map(|i| {
            let d = &draws[i];
            let mut r = stream(seed, "yearbook", i as u64);
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
        .collect();

    // ln pcGDP = L_t + s_i * gap_it + c_t, with c_t making the mean over cities with data equal
    // exp(L_t), so that |ln pcGDP - ln mean pcGDP| = |s_i * gap_it + c_t| (docs/dgp.md).
    let sign = |i: usize| if draws[i].rich { 1.0 } else { -1.0 };
    let shift: Vec<f64> = (0..nt)
        .map(|t| {
            let m = complete
                .iter()
                .map(|&i| (sign(i) * rows[i][t].gap).exp())
                .sum::<f64>()
                / complete.len() as f64;
            -m.ln()
        })
        .collect();
    let prices: Vec<[f64; yearbook::PRICES.len()]> = (0..nt)
        .map(|t| {
            let mut r = stream(seed, "inflation", t as u64);
            let mut p = [0.0; yearbook::PRICES.len()];
            for v in &mut p {
                *v = 0.02 + 0.01 * normal(&mut r);
            }
            p
        })
        .collect();

    // Lagging in innovation: a level below the log of the mean of exp(levels) over cities with data.
    let innov_ref = (complete
        .iter()
        .map(|&i| draws[i].innov_level.exp())
        .sum::<f64>()
        / complete.len() as f64)
        .ln();
    let innov_effect: Vec<f64> = draws
        .iter()
        .map(|d| {
            let lagging = if d.innov_level < innov_ref { 1.0 } else { -1.0 };
            fx.innovation * (1.0 + lagging * fx.innovation_catch_up)
        })
        .collect();
    let mut csv = yearbook::header();
    csv.push('\n');
    for i in 0..n {
        let c = &cities.rows[i];
        let d = &draws[i];
        let mut r = stream(seed, "yearbook-cells", i as u64);
        for t in 0..nt {
            let row = &rows[i][t];
            let tf = t as f64;
            let year = spec.first_year + t as i32;
            let p = pop[i][t];
            let pc = (32_000f64.ln() + 0.075 * tf + sign(i) * row.gap + shift[t]).exp();
            let pc = pc.round();
            let gdp = pc * p / 10_000.0;
            // Real yearbooks leave cells blank: whole series for prefectures without data,
            // scattered cells elsewhere.
            let have = |r: &mut ChaCha8Rng| d.complete && r.random::<f64>() >= 0.01;
            let emp = p * 0.55 * (0.05 * normal(&mut r)).exp();
            let tfp =
                (3.3f64).ln() + d.tfp_level + 0.02 * tf + fx.tfp * x[i][t] + 0.02 * normal(&mut r);
            let capital = (gdp / (tfp.exp() * emp.powf(0.6))).powf(1.0 / 0.4);
            let innov = 10.0
                * (d.innov_level
                    + 0.05 * tf
                    + innov_effect[i] * x_dev[i][t]
                    + 0.05 * normal(&mut r))
                .exp();
            let passengers =
                (d.pass_level + 0.03 * tf + fx.linkage * x[i][t] + 0.05 * normal(&mut r)).exp()
                    * 100.0;
            let dispersion =
                0.02 * (d.price_level - fx.price_dispersion * x[i][t] + 0.1 * normal(&mut r)).exp();
            let spread = 0.2 + fx.specialisation * x[i][t] + 0.02 * normal(&mut r);
            let weights: Vec<f64> = (0..SECTORS)
                .map(|k| SECTOR_MEAN_SHARES[k] * (spread * d.spec_loadings[k]).exp())
                .collect();
            let wsum: f64 = weights.iter().sum();
            let wage = (40_000f64.ln() + d.wage_level + 0.08 * tf + 0.03 * normal(&mut r)).exp();

            // The values in the schema's column order; the draws happen in that order too.
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
            values.push(have(&mut r).then_some(row.open * gdp));
            values.push(have(&mut r).then_some(row.fin * gdp));
            values.push(have(&mut r).then_some(row.hum * p));
            values.push(have(&mut r).then_some(row.infra * p));
            values.push(have(&mut r).then_some(row.info * p / 100.0));
            values.push(Some(emp));
            values.extend(weights.iter().map(|w| Some(emp * w / wsum)));
            values.extend([
                Some(wage),
                d.complete.then_some(capital),
                Some(innov),
                Some(passengers),
            ]);
            for good in &prices[t] {
                values.push(Some(100.0 * (good + dispersion * normal(&mut r)).exp()));
            }
            values.push(Some((0.3 + 0.4 * d.hist).exp()));
            debug_assert_eq!(values.len(), yearbook::COLUMNS.len());

            let _ = write!(csv, "{},{},{year}", c.adcode, c.name);
            for (column, value) in yearbook::COLUMNS.iter().zip(values) {
                cell(&mut csv, value, column.decimals);
            }
            csv.push('\n');
        }
    }
    let tertiary_first = (0..n).map(|i| rows[i][0].ter > rows[i][0].sec).collect();
    Yearbook {
        csv,
        tertiary_first,
        beta,
        innovation: innov_effect,
    }
}

fn rd_province(seed: u64, cities: &Cities, years: &[i32]) -> String {
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

#[allow(clippy::too_many_arguments)]
fn truth_json(
    spec: &SynthSpec,
    cities: &Cities,
    draws: &[CityDraw],
    complete: &[usize],
    years: &[i32],
    realised: &[f64],
    yb: &Yearbook,
) -> serde_json::Value {
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
