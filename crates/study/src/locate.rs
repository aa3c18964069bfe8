//! The `locate` built-in kind: which city each applicant of each application is in.
//!
//! Owns: the assignment strategy (an ordered list of steps: `address`, `postcode`, `name`,
//! `register`, `place`), classifying applicants as organisations or individuals, the name
//! dictionary built from located first applicants, the applicant table it writes and the report
//! of what was left unresolved or ambiguous. Deliberately does not own: reading raw exports
//! (`ingest`), place-name tables and matching (`places`, `gazetteer`) or counting (`index`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::gazetteer::{self, Gazetteer, Located, Scratch, Sources};
use crate::places::Cities;
use repro_kind::diag::Diagnostic;
use repro_kind::KindError;
use repro_tabular::stream::{self, Coded, StreamConfig};
use repro_tabular::table as tabular;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The first applicant's address: province and city names.
    Address,
    /// The first applicant's postcode, through the postcode directory.
    Postcode,
    /// Any organisation whose exact name is a located first applicant elsewhere.
    Name,
    /// An organisation whose name starts with a name in the institution register.
    Register,
    /// A place name inside an organisation's name (a firm named after its city, a provincial
    /// university at the provincial capital).
    Place,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocateSpec {
    pub applications: String,
    #[serde(default = "default_cities")]
    pub cities: String,
    /// A directory of 4-digit postcode prefixes (`prefix4,adcode6`); needed by `postcode`.
    #[serde(default)]
    pub postcodes: Option<String>,
    /// County-level units with their prefecture (`data/counties.csv`); without it only province
    /// and prefecture names are known.
    #[serde(default)]
    pub counties: Option<String>,
    /// Old names of prefectures and counties with their current prefecture
    /// (`data/place_history.csv`).
    #[serde(default)]
    pub place_history: Option<String>,
    /// The institution register (`data/institutions.csv`); needed by `register`.
    #[serde(default)]
    pub institutions: Option<String>,
    #[serde(default = "default_strategy")]
    pub strategy: Vec<Step>,
    pub out: String,
    pub report: String,
}

fn default_cities() -> String {
    "data/cities.csv".into()
}

fn default_strategy() -> Vec<Step> {
    vec![
        Step::Address,
        Step::Postcode,
        Step::Name,
        Step::Register,
        Step::Place,
    ]
}

pub fn parse(spec_path: &str, root: &Path) -> Result<LocateSpec, KindError> {
    let spec: LocateSpec = repro_kind::load_spec(root, spec_path)?;
    let bad = |m: String| repro_kind::spec_err(spec_path, m);
    repro_kind::check_spec_paths(
        spec_path,
        [&spec.applications, &spec.cities, &spec.out, &spec.report]
            .into_iter()
            .chain(spec.postcodes.as_ref())
            .chain(spec.counties.as_ref())
            .chain(spec.place_history.as_ref())
            .chain(spec.institutions.as_ref()),
    )?;
    if spec.strategy.is_empty() {
        return Err(bad("`strategy` is empty".into()));
    }
    let mut seen = spec.strategy.clone();
    seen.sort();
    seen.dedup();
    if seen.len() != spec.strategy.len() {
        return Err(bad("`strategy` names a step twice".into()));
    }
    if spec.strategy.contains(&Step::Postcode) && spec.postcodes.is_none() {
        return Err(KindError {
            hint: Some("set `postcodes:` to a `prefix4,adcode6` table, or drop `postcode`".into()),
            ..bad("the `postcode` step needs a postcode directory".into())
        });
    }
    if spec.strategy.contains(&Step::Register) && spec.institutions.is_none() {
        return Err(KindError {
            hint: Some(
                "set `institutions:` to a register such as data/institutions.csv, or drop \
                 `register`"
                    .into(),
            ),
            ..bad("the `register` step needs an institution register".into())
        });
    }
    Ok(spec)
}

fn gazetteer_sources(spec: &LocateSpec) -> Sources<'_> {
    Sources {
        counties: spec.counties.as_deref(),
        history: spec.place_history.as_deref(),
        institutions: spec.institutions.as_deref(),
    }
}

pub fn deps(spec: &LocateSpec) -> Vec<String> {
    let mut d = vec![spec.applications.clone(), spec.cities.clone()];
    d.extend(spec.postcodes.clone());
    d.extend(spec.counties.clone());
    d.extend(spec.place_history.clone());
    d.extend(spec.institutions.clone());
    d
}

pub fn outs(spec: &LocateSpec) -> Vec<String> {
    vec![spec.out.clone(), spec.report.clone()]
}

/// A person's name: two to four Chinese characters (or `·`) without a word that marks an
/// organisation.
pub fn is_individual(name: &str) -> bool {
    // Two to four characters of two (`·`) or three (CJK) bytes each: anything longer or shorter
    // is no person's name, and most organisation names stop here.
    if !(4..=12).contains(&name.len()) {
        return false;
    }
    let n = name.chars().count();
    (2..=4).contains(&n)
        && name
            .chars()
            .all(|c| ('\u{4e00}'..='\u{9fff}').contains(&c) || c == '·')
        && !has_org_marker(name)
}

/// Whether a short name holds a word that marks an organisation: 公司, 大学, 学院, 学校, 研究,
/// 中心, 集团, 医院, 厂, 局, 所, 院, 站, 会, 社, 部, 委 or 室. Checked by characters and pairs of
/// characters: searching for each word as a substring took a tenth of `locate`'s time.
fn has_org_marker(name: &str) -> bool {
    let mut prev = None;
    for c in name.chars() {
        if matches!(
            c,
            '厂' | '局' | '所' | '院' | '站' | '会' | '社' | '部' | '委' | '室'
        ) {
            return true;
        }
        if let Some(p) = prev {
            if matches!(
                (p, c),
                ('公', '司')
                    | ('大', '学')
                    | ('学', '院')
                    | ('学', '校')
                    | ('研', '究')
                    | ('中', '心')
                    | ('集', '团')
                    | ('医', '院')
            ) {
                return true;
            }
        }
        prev = Some(c);
    }
    false
}

/// Where a first applicant was found: the unit (index into `Gazetteer::units`: a city of the
/// table or a province-administered group) and the step. Four bytes a row, since pass 1 keeps
/// one for every application.
type Found = Option<(u16, Step)>;

/// Applicants per method, by role (first, co) and method (`Step` order, then unresolved).
type MethodCounts = [[u64; 6]; 2];

const METHODS: [&str; 6] = [
    "address",
    "postcode",
    "name",
    "register",
    "place",
    "unresolved",
];

/// The applicant table's `kind` of an individual and of an organisation.
const KINDS: [&str; 2] = ["individual", "organisation"];

/// The index into `METHODS` of what `method` found (or of `unresolved`).
fn method_slot(method: Option<Step>) -> usize {
    method.map_or(5, |s| s as usize)
}

/// How often each place name made the matcher abstain (name id -> count).
type Abstentions = PlHashMap<u32, u64>;

fn add_abstentions(mut a: Abstentions, b: Abstentions) -> Abstentions {
    let (mut a, b) = if a.len() >= b.len() {
        (a, b)
    } else {
        (b, std::mem::take(&mut a))
    };
    for (k, n) in b {
        *a.entry(k).or_insert(0) += n;
    }
    a
}

fn str_column(df: &DataFrame, file: &str, name: &str) -> Result<StringChunked, Diagnostic> {
    let c = df.column(name).map_err(|_| {
        Diagnostic::new(format!("`{file}` has no column `{name}`"))
            .hint("the applications table comes from an `ingest` stage")
    })?;
    let c = c
        .cast(&DataType::String)
        .map_err(|e| Diagnostic::new(e.to_string()))?;
    // No rechunk: the values are only iterated, and copying a 10M-row text column into one
    // chunk cost time and a gigabyte of memory.
    Ok(c.str().map_err(|e| Diagnostic::new(e.to_string()))?.clone())
}

/// Pass 1: each application's first applicant from its address and postcode, in strategy order,
/// and the place names at which the address matcher abstained. A blank postcode is taken from
/// the start of the address when one is written there (`100084 北京市海淀区…`).
fn locate_first(
    address: &StringChunked,
    postcode: &StringChunked,
    spec: &LocateSpec,
    gaz: &Gazetteer,
    postcodes: &HashMap<String, usize>,
) -> (Vec<Found>, Abstentions) {
    let addrs = tabular::str_values(address);
    let posts = tabular::str_values(postcode);
    let parts: Vec<(Vec<Found>, Abstentions)> = addrs
        .par_chunks(4096)
        .zip(posts.par_chunks(4096))
        .map(|(addrs, posts)| {
            let mut s = Scratch::default();
            let mut abstained = Abstentions::default();
            let found = addrs
                .iter()
                .zip(posts)
                .map(|(address, post)| {
                    for step in &spec.strategy {
                        let found = match step {
                            Step::Address => match address.map(|a| gaz.locate_address(a, &mut s)) {
                                Some(Located::Unit(u)) => Some(u),
                                Some(Located::Ambiguous(name)) => {
                                    *abstained.entry(name).or_insert(0) += 1;
                                    None
                                }
                                _ => None,
                            },
                            Step::Postcode => post
                                .filter(|p| !p.trim().is_empty())
                                .or_else(|| address.and_then(gazetteer::postcode_in))
                                .filter(|p| p.len() >= 4 && p.is_char_boundary(4))
                                .and_then(|p| postcodes.get(&p[..4]))
                                // City tables have a few hundred rows (checked when loaded).
                                .map(|&c| c as u16),
                            _ => None,
                        };
                        if let Some(c) = found {
                            return Some((c, *step));
                        }
                    }
                    None
                })
                .collect();
            (found, abstained)
        })
        .collect();
    let mut first = Vec::with_capacity(addrs.len());
    let mut abstained = Abstentions::default();
    for (found, a) in parts {
        first.extend(found);
        abstained = add_abstentions(abstained, a);
    }
    (first, abstained)
}

/// Located first applicants that are organisations: for each name, how often it was found in
/// each city (index into `Cities::rows`).
type NameCounts = PlHashMap<String, Vec<(u16, u32)>>;

/// Adds one slice's located first applicants to `counts`. Counted in parallel over fixed blocks
/// of rows and merged: counts add up the same in any order, so the result does not depend on the
/// thread count.
fn count_first_names(apps: &[Option<&str>], first: &[Found], counts: &mut NameCounts) {
    type Local<'a> = PlHashMap<(&'a str, u16), u32>;
    let local: Local<'_> = apps
        .par_chunks(1 << 16)
        .zip(first.par_chunks(1 << 16))
        .map(|(apps, first)| {
            let mut local: Local<'_> = PlHashMap::default();
            for (list, found) in apps.iter().zip(first) {
                let (Some((c, _)), Some(list)) = (found, list) else {
                    continue;
                };
                let name = list.split(';').next().unwrap_or("").trim();
                if !name.is_empty() && !is_individual(name) {
                    *local.entry((name, *c)).or_insert(0) += 1;
                }
            }
            local
        })
        .reduce(PlHashMap::default, |a, b| {
            let (mut a, b) = if a.len() >= b.len() { (a, b) } else { (b, a) };
            for (key, k) in b {
                *a.entry(key).or_insert(0) += k;
            }
            a
        });
    for ((name, c), k) in local {
        let by_city = match counts.get_mut(name) {
            Some(v) => v,
            None => counts.entry(name.to_string()).or_default(),
        };
        match by_city.iter_mut().find(|(city, _)| *city == c) {
            Some((_, n)) => *n += k,
            None => by_city.push((c, k)),
        }
    }
}

/// Organisation names located in several units as first applicants, with counts by unit.
type AmbiguousNames = Vec<(String, Vec<(u16, u32)>)>;

/// The name dictionary: each organisation located as a first applicant, at its most frequent
/// city (ties to the lower unit, so the result does not depend on row order); and the names
/// located in more than one city, with their counts by unit (sorted by unit).
fn name_dictionary(counts: NameCounts) -> (PlHashMap<String, u16>, AmbiguousNames) {
    let mut ambiguous = Vec::new();
    let dictionary = counts
        .into_iter()
        .map(|(name, mut by_city)| {
            let best = by_city
                .iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
                .map_or(0, |(c, _)| *c);
            if by_city.len() > 1 {
                by_city.sort();
                ambiguous.push((name.clone(), by_city));
            }
            (name, best)
        })
        .collect();
    (dictionary, ambiguous)
}

/// Report entries listed at most, for ambiguous place names and organisation names.
const LISTED: usize = 50;

/// The table was rewritten between the two passes (another process wrote it).
fn changed(file: &str) -> Diagnostic {
    Diagnostic::new(format!("`{file}` changed while it was read"))
        .hint("run again once nothing else writes the applications table")
}

/// Rows of the applications table read at a time, at least: memory stays bounded by a batch
/// whatever the number of applications. Batches start on row-group boundaries, so no row group is
/// decoded twice, and the next batch is decoded while this one is located.
const SLICE_ROWS: usize = 1 << 18;

/// Reads the table in batches of about `SLICE_ROWS`, handing each with the row number it starts
/// at; the number of rows.
fn for_each_slice(
    root: &Path,
    file: &str,
    columns: &[&str],
    mut f: impl FnMut(usize, &DataFrame) -> Result<(), Diagnostic>,
) -> Result<usize, Diagnostic> {
    repro_tabular::dataio::for_each_batch(&root.join(file), columns, SLICE_ROWS, |offset, df| {
        f(offset, &df)
    })
}

pub fn run(root: &Path, stage: &str, spec: &LocateSpec) -> Result<(), Diagnostic> {
    let fail = |d: Diagnostic| repro_kind::stage_failed(stage, d);
    let (gaz, postcodes) = load_places(root, spec).map_err(fail)?;
    let pass1 = first_pass(root, spec, &gaz, &postcodes).map_err(fail)?;
    let (dictionary, ambiguous_orgs) = name_dictionary(pass1.counts);
    let tally =
        second_pass(root, spec, &gaz, &pass1.first, pass1.rows, &dictionary).map_err(fail)?;
    let report = report_json(
        spec,
        &gaz,
        pass1.rows,
        &tally,
        &pass1.abstained,
        ambiguous_orgs,
    );
    tabular::write_json(root, &spec.report, &report).map_err(fail)?;
    let (total, unresolved) = tally.totals();
    tracing::info!(
        applicants = total,
        unresolved,
        "located {:.1}% of applicants",
        100.0 * (1.0 - share(unresolved, total))
    );
    Ok(())
}

/// The gazetteer over the city table and the postcode table, if the spec names one.
fn load_places(
    root: &Path,
    spec: &LocateSpec,
) -> Result<(Gazetteer, HashMap<String, usize>), Diagnostic> {
    let cities = Cities::load(&root.join(&spec.cities))?;
    if cities.rows.len() >= usize::from(u16::MAX) {
        return Err(Diagnostic::new(format!(
            "city table `{}` has {} rows; at most 65534 are supported",
            spec.cities,
            cities.rows.len()
        )));
    }
    let gaz = Gazetteer::load(root, &cities, &gazetteer_sources(spec))?;
    let postcodes = match &spec.postcodes {
        Some(p) => load_postcodes(root, p, &cities)?,
        None => HashMap::new(),
    };
    Ok((gaz, postcodes))
}

/// What pass 1 leaves for pass 2 and the report.
struct FirstPass {
    /// Rows of the applications table.
    rows: usize,
    first: Vec<Found>,
    counts: NameCounts,
    abstained: Abstentions,
}

/// Pass 1 over the table, slice by slice: the first applicants (`locate_first`) and, when the
/// strategy has the name step, the counts of the name dictionary.
fn first_pass(
    root: &Path,
    spec: &LocateSpec,
    gaz: &Gazetteer,
    postcodes: &HashMap<String, usize>,
) -> Result<FirstPass, Diagnostic> {
    let file = spec.applications.as_str();
    let has = |s: Step| spec.strategy.contains(&s);
    let mut first: Vec<Found> = Vec::new();
    let mut counts = NameCounts::default();
    let mut abstained = Abstentions::default();
    let rows = for_each_slice(
        root,
        file,
        &["applicants", "address", "postcode"],
        |_, df| {
            let address = str_column(df, file, "address")?;
            let postcode = str_column(df, file, "postcode")?;
            let (found, a) = locate_first(&address, &postcode, spec, gaz, postcodes);
            abstained = add_abstentions(std::mem::take(&mut abstained), a);
            if has(Step::Name) {
                let applicants = str_column(df, file, "applicants")?;
                let apps = tabular::str_values(&applicants);
                count_first_names(&apps, &found, &mut counts);
            }
            first.extend(found);
            Ok(())
        },
    )?;
    Ok(FirstPass {
        rows,
        first,
        counts,
        abstained,
    })
}

/// Applicants counted in pass 2.
#[derive(Default)]
struct Tally {
    by_method: MethodCounts,
    /// Applicants located in a province-administered unit (outside the panel).
    outside: u64,
    /// (applicants, unresolved) of individuals and organisations.
    by_kind: [(u64, u64); 2],
}

impl Tally {
    fn add(&mut self, e: &Entry<'_>, gaz: &Gazetteer) {
        self.outside += u64::from(e.unit.is_some_and(|u| !gaz.in_panel(u)));
        self.by_method[usize::from(e.pos > 0)][method_slot(e.method)] += 1;
        let k = &mut self.by_kind[usize::from(!e.individual)];
        k.0 += 1;
        k.1 += u64::from(e.unit.is_none());
    }

    /// (applicants, unresolved).
    fn totals(&self) -> (u64, u64) {
        let total: u64 = self.by_kind.iter().map(|k| k.0).sum();
        let unresolved: u64 = self.by_kind.iter().map(|k| k.1).sum();
        (total, unresolved)
    }
}

/// Pass 2: every applicant, slice by slice, streamed to Parquet (written beside `spec.out`, then
/// renamed over it; removed on failure).
fn second_pass(
    root: &Path,
    spec: &LocateSpec,
    gaz: &Gazetteer,
    first: &[Found],
    n: usize,
    dictionary: &PlHashMap<String, u16>,
) -> Result<Tally, Diagnostic> {
    let file = spec.applications.as_str();
    let (tmp, dest, out_file) = repro_kind::create_temp_beside(root, &spec.out).map_err(|e| {
        Diagnostic::new(format!("cannot write `{}`", spec.out)).cause(e.to_string())
    })?;
    let cannot = |e: PolarsError| {
        let _ = std::fs::remove_file(&tmp);
        Diagnostic::new(format!("cannot write `{}`", spec.out)).cause(e.to_string())
    };
    // Most applications have one applicant, so application numbers are almost all distinct;
    // application indices count up (delta encoding).
    let config = StreamConfig {
        plain: &["app_no"],
        delta: &["app"],
        coded: &[
            Coded {
                name: "kind",
                categories: &KINDS,
            },
            Coded {
                name: "method",
                categories: &METHODS,
            },
        ],
    };
    let mut writer = stream::stream_writer(
        std::io::BufWriter::new(out_file),
        &applicant_schema(),
        config,
    )
    .map_err(cannot)?;
    let mut tally = Tally::default();
    let columns = ["app_no", "year", "ptype", "applicants"];
    let cannot_write = |e: &dyn std::fmt::Display| {
        Diagnostic::new(format!("cannot write `{}`", spec.out)).cause(e.to_string())
    };
    // Encoding and compressing one slice's applicants overlaps with locating the next.
    let second = stream::with_parquet_thread(&mut writer, cannot_write, |frames| {
        for_each_slice(root, file, &columns, |offset, df| {
            let app_no = str_column(df, file, "app_no")?;
            let applicants = str_column(df, file, "applicants")?;
            let years = tabular::ints(df, file, "year")?;
            let ptypes = tabular::ints(df, file, "ptype")?;
            let app_nos = tabular::str_values(&app_no);
            let apps = tabular::str_values(&applicants);
            let Some(first) = first.get(offset..offset + apps.len()) else {
                return Err(changed(file));
            };
            let entries = slice_entries(&apps, first, offset, spec, dictionary, gaz);
            for e in &entries {
                tally.add(e, gaz);
            }
            let df = applicant_frame(&entries, offset, &app_nos, &years, &ptypes, &gaz.units)
                .map_err(|e| cannot_write(&e))?;
            frames.send(df).map_err(|_| stream::writer_gone())
        })
    });
    let second = second.and_then(|rows| {
        if rows == n {
            Ok(())
        } else {
            Err(changed(file))
        }
    });
    if let Err(d) = second {
        let _ = std::fs::remove_file(&tmp);
        return Err(d);
    }
    writer.finish().map_err(cannot)?;
    std::fs::rename(&tmp, &dest).map_err(|e| {
        Diagnostic::new(format!("cannot write `{}`", spec.out)).cause(e.to_string())
    })?;
    Ok(tally)
}

fn share(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// The report: counts by role, method and kind, and the most frequent ambiguous place and
/// organisation names.
fn report_json(
    spec: &LocateSpec,
    gaz: &Gazetteer,
    n: usize,
    tally: &Tally,
    abstained: &Abstentions,
    ambiguous_orgs: AmbiguousNames,
) -> serde_json::Value {
    let (total, unresolved) = tally.totals();
    let (by_role, share_by_method, kinds_json) = method_tables(tally, total);
    // Place names at which the address matcher abstained, most frequent first.
    let mut places: Vec<(&str, u64)> = abstained
        .iter()
        .map(|(&id, &k)| (gaz.name_text(id), k))
        .collect();
    places.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let ambiguous_places: Vec<serde_json::Value> = places
        .iter()
        .take(LISTED)
        .map(|(name, k)| serde_json::json!({"name": name, "addresses": k}))
        .collect();
    // Organisations whose first-applicant addresses put them in several cities.
    let mut orgs = ambiguous_orgs;
    let total_of = |v: &[(u16, u32)]| v.iter().map(|x| u64::from(x.1)).sum::<u64>();
    orgs.sort_by(|a, b| total_of(&b.1).cmp(&total_of(&a.1)).then(a.0.cmp(&b.0)));
    let ambiguous_orgs: Vec<serde_json::Value> = orgs
        .iter()
        .take(LISTED)
        .map(|(name, by)| {
            let cities: BTreeMap<String, u32> = by
                .iter()
                .map(|(u, k)| (gaz.units[usize::from(*u)].to_string(), *k))
                .collect();
            serde_json::json!({"name": name, "first_applicant_cities": cities})
        })
        .collect();
    serde_json::json!({
        "applications": n,
        "applicants": total,
        "unresolved": unresolved,
        "unresolved_share": share(unresolved, total),
        "outside_panel": tally.outside,
        "strategy": spec.strategy,
        "by_role_and_method": by_role,
        "share_by_method": share_by_method,
        "by_kind": kinds_json,
        "ambiguous_places": {
            "names": places.len(),
            "addresses": places.iter().map(|p| p.1).sum::<u64>(),
            "most_frequent": ambiguous_places,
        },
        "ambiguous_organisations": {
            "names": orgs.len(),
            "most_frequent": ambiguous_orgs,
        },
        "gazetteer": {
            "names": gaz.name_count(),
            "institutions": gaz.register_len(),
        },
    })
}

/// Method counts by role, method shares of all `total` applicants, and counts by kind.
#[allow(clippy::type_complexity)]
fn method_tables(
    tally: &Tally,
    total: u64,
) -> (
    BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    BTreeMap<&'static str, f64>,
    serde_json::Map<String, serde_json::Value>,
) {
    let by_method = &tally.by_method;
    // Only methods that located someone are listed, keys sorted.
    let methods = |counts: &[u64; 6]| -> BTreeMap<&'static str, u64> {
        METHODS
            .iter()
            .zip(counts)
            .filter(|(_, k)| **k > 0)
            .map(|(m, k)| (*m, *k))
            .collect()
    };
    let mut by_role = BTreeMap::new();
    for (role, counts) in ["first", "co"].into_iter().zip(by_method) {
        if counts.iter().any(|k| *k > 0) {
            by_role.insert(role, methods(counts));
        }
    }
    let mut kinds_json = serde_json::Map::new();
    for (kind, (all, unres)) in ["individual", "organisation"]
        .into_iter()
        .zip(tally.by_kind)
    {
        if all > 0 {
            kinds_json.insert(
                kind.to_string(),
                serde_json::json!({
                    "applicants": all,
                    "unresolved": unres,
                    "unresolved_share": share(unres, all),
                }),
            );
        }
    }
    // Share of all applicants resolved by each method (unresolved included, so they sum to 1).
    let mut share_by_method = BTreeMap::new();
    for (slot, m) in METHODS.iter().enumerate() {
        let k = by_method[0][slot] + by_method[1][slot];
        if k > 0 {
            share_by_method.insert(*m, share(k, total));
        }
    }
    (by_role, share_by_method, kinds_json)
}

/// Every applicant of one slice's applications (rows `offset..`), in row and position order.
fn slice_entries<'a>(
    apps: &[Option<&'a str>],
    first: &[Found],
    offset: usize,
    spec: &LocateSpec,
    dictionary: &PlHashMap<String, u16>,
    gaz: &Gazetteer,
) -> Vec<Entry<'a>> {
    let parts: Vec<Vec<Entry<'a>>> = apps
        .par_chunks(8192)
        .zip(first.par_chunks(8192))
        .enumerate()
        .map(|(chunk, (apps, first))| {
            let mut out = Vec::with_capacity(apps.len() * 2);
            let mut s = Scratch::default();
            for (i, (list, found_first)) in apps.iter().zip(first).enumerate() {
                let names = list
                    .unwrap_or("")
                    .split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty());
                for (pos, name) in names.enumerate() {
                    let individual = is_individual(name);
                    let mut found = if pos == 0 { *found_first } else { None };
                    if found.is_none() && !individual {
                        for step in &spec.strategy {
                            let c = match step {
                                Step::Name => dictionary.get(name).copied(),
                                Step::Register => gaz.locate_register(name, &mut s),
                                Step::Place => gaz.locate_name(name, &mut s).unit(),
                                _ => None,
                            };
                            if let Some(c) = c {
                                found = Some((c, *step));
                                break;
                            }
                        }
                    }
                    out.push(Entry {
                        app: offset + chunk * 8192 + i,
                        pos,
                        name,
                        individual,
                        unit: found.map(|(c, _)| c),
                        method: found.map(|(_, s)| s),
                    });
                }
            }
            out
        })
        .collect();
    parts.into_iter().flatten().collect()
}

/// One applicant of one application, borrowing its name from the applications table.
struct Entry<'a> {
    app: usize,
    pos: usize,
    name: &'a str,
    individual: bool,
    /// Index into `Gazetteer::units`.
    unit: Option<u16>,
    method: Option<Step>,
}

fn applicant_schema() -> Schema {
    let field = |name: &str, dtype: DataType| Field::new(name.into(), dtype);
    Schema::from_iter([
        field("app", DataType::Int64),
        field("app_no", DataType::String),
        field("year", DataType::Int64),
        field("ptype", DataType::Int64),
        field("pos", DataType::Int64),
        field("name", DataType::String),
        field("kind", DataType::String),
        field("adcode6", DataType::Int64),
        field("method", DataType::String),
    ])
}

/// The slice's applicants as a frame; `app_nos`, `years` and `ptypes` are the slice's rows, which
/// start at row `offset` of the table.
fn applicant_frame(
    entries: &[Entry<'_>],
    offset: usize,
    app_nos: &[Option<&str>],
    years: &[Option<i64>],
    ptypes: &[Option<i64>],
    units: &[u32],
) -> PolarsResult<DataFrame> {
    // Columns are built in parallel (they were a serial step between locating one slice and the
    // next); the order of the vector is the schema's order.
    let build = |i: usize| -> Column {
        match i {
            0 => Column::new(
                "app".into(),
                entries.iter().map(|e| e.app as i64).collect::<Vec<i64>>(),
            ),
            1 => Column::new(
                "app_no".into(),
                entries
                    .iter()
                    .map(|e| app_nos[e.app - offset])
                    .collect::<Vec<Option<&str>>>(),
            ),
            2 => Column::new(
                "year".into(),
                entries
                    .iter()
                    .map(|e| years[e.app - offset])
                    .collect::<Vec<Option<i64>>>(),
            ),
            3 => Column::new(
                "ptype".into(),
                entries
                    .iter()
                    .map(|e| ptypes[e.app - offset])
                    .collect::<Vec<Option<i64>>>(),
            ),
            4 => Column::new(
                "pos".into(),
                entries.iter().map(|e| e.pos as i64).collect::<Vec<i64>>(),
            ),
            5 => Column::new(
                "name".into(),
                entries.iter().map(|e| e.name).collect::<Vec<&str>>(),
            ),
            // `kind` and `method` as codes into `KINDS` and `METHODS` (coded columns: the
            // writer turns them into dictionaries of those texts without hashing every row).
            6 => Column::new(
                "kind".into(),
                entries
                    .iter()
                    .map(|e| u32::from(!e.individual))
                    .collect::<Vec<u32>>(),
            ),
            7 => Column::new(
                "adcode6".into(),
                entries
                    .iter()
                    .map(|e| e.unit.map(|u| i64::from(units[usize::from(u)])))
                    .collect::<Vec<Option<i64>>>(),
            ),
            _ => Column::new(
                "method".into(),
                entries
                    .iter()
                    .map(|e| method_slot(e.method) as u32)
                    .collect::<Vec<u32>>(),
            ),
        }
    };
    let columns: Vec<Column> = (0..applicant_schema().len())
        .into_par_iter()
        .map(build)
        .collect();
    DataFrame::new(entries.len(), columns)
}

fn load_postcodes(
    root: &Path,
    rel: &str,
    cities: &Cities,
) -> Result<HashMap<String, usize>, Diagnostic> {
    let df = tabular::read(root, rel)?;
    let prefixes = tabular::texts(&df, rel, "prefix4")?;
    let codes = tabular::ints(&df, rel, "adcode6")?;
    let mut out = HashMap::new();
    for (row, (p, c)) in prefixes.iter().zip(&codes).enumerate() {
        let (Some(p), Some(c)) = (p, c) else {
            return Err(Diagnostic::new(format!(
                "postcode directory `{rel}` has a blank cell in data row {}",
                row + 1
            )));
        };
        let p = format!("{:0>4}", p.trim());
        let Some(i) = u32::try_from(*c).ok().and_then(|c| cities.index_of(c)) else {
            return Err(Diagnostic::new(format!(
                "postcode directory `{rel}`, data row {}: unknown adcode `{c}`",
                row + 1
            ))
            .hint("adcodes must appear in the city table"));
        };
        out.insert(p, i);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The words `has_org_marker` looks for, as substrings.
    const ORG_MARKERS: &[&str] = &[
        "公司", "大学", "学院", "学校", "研究", "中心", "集团", "医院", "厂", "局", "所", "院",
        "站", "会", "社", "部", "委", "室",
    ];

    #[test]
    fn every_marker_is_found_and_people_are_not_organisations() {
        for m in ORG_MARKERS {
            assert!(has_org_marker(m), "{m}");
            assert!(has_org_marker(&format!("张{m}")), "{m}");
        }
        assert!(is_individual("张三"));
        assert!(is_individual("欧阳娜娜"));
        assert!(is_individual("买买·提"));
        assert!(!is_individual("李厂"));
        assert!(!is_individual("华为技术有限公司"));
        assert!(!is_individual("张"));
    }

    /// The applicant table's `method` of each step is the step's name in a stage spec.
    #[test]
    fn methods_are_named_as_the_strategy_names_the_steps() {
        let steps = [
            Step::Address,
            Step::Postcode,
            Step::Name,
            Step::Register,
            Step::Place,
        ];
        for step in steps {
            let name = serde_json::to_value(step).unwrap();
            assert_eq!(METHODS[method_slot(Some(step))], name.as_str().unwrap());
        }
        assert_eq!(METHODS[method_slot(None)], "unresolved");
    }

    proptest! {
        /// The character scan agrees with searching for every marker as a substring.
        #[test]
        fn marker_scan_agrees_with_substring_search(
            name in "[公司大学院校研究中心集团医厂局所站会社部委室张三王·a]{0,6}"
        ) {
            let by_substring = ORG_MARKERS.iter().any(|m| name.contains(m));
            prop_assert_eq!(has_org_marker(&name), by_substring);
        }
    }
}
