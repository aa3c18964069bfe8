//! Building the gazetteer: the names of the city table, then one function per optional table
//! (the county table, the old names, the institution register), then the indexes assembled from
//! them (the name list and its matcher, the history of old county names, the traditional forms).
//!
//! Does not own: the city table itself (`places`), normalising a text to match (`text`) or
//! matching (`matching`, `organisation`). Imports only the leaves `model` and `text`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use aho_corasick::{AhoCorasick, MatchKind, StartKind};
use daachorse::{CharwiseDoubleArrayAhoCorasickBuilder, MatchKind as DaachorseMatchKind};
use rustc_hash::FxHashMap;

use super::model::{Entry, Gazetteer, Level, Name, Sources, GENERIC};
use super::text::{nfkc, TRADITIONAL};
use crate::places::{city_short, Cities};
use repro_kind::diag::Diagnostic;
use repro_tabular::table as tabular;

/// Names by their NFKC text, each with its entries in the order they were added.
type Names = BTreeMap<String, Vec<Entry>>;

/// (old county name, prefecture it was in then, unit it is in now).
type HistoryRows = Vec<(String, u16, u16)>;

/// The units known so far: adcodes by index, and the index of each adcode.
struct Units {
    codes: Vec<u32>,
    index: HashMap<u32, u16>,
}

impl Gazetteer {
    /// Builds the gazetteer from the city table and the optional tables under `root`. Without
    /// them, only province and prefecture names are known.
    pub fn load(
        root: &Path,
        cities: &Cities,
        sources: &Sources<'_>,
    ) -> Result<Gazetteer, Diagnostic> {
        let codes: Vec<u32> = cities.rows.iter().map(|c| c.adcode).collect();
        let n_cities = codes.len();
        let index = codes
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, i as u16))
            .collect();
        let mut units = Units { codes, index };
        let (mut names, capitals) = city_names(cities);
        if let Some(rel) = sources.counties {
            read_counties(root, rel, &mut units, &mut names)?;
        }
        let mut history_rows = Vec::new();
        if let Some(rel) = sources.history {
            history_rows = read_history(root, rel, cities, &units, &mut names)?;
        }
        prune(&mut names);
        let names = index_names(names);
        let history = history_index(&names, &history_rows);
        let matcher = CharwiseDoubleArrayAhoCorasickBuilder::new()
            .match_kind(DaachorseMatchKind::LeftmostLongest)
            .build(names.iter().map(|n| n.text.as_str()))
            .map_err(|e| {
                Diagnostic::new("cannot build the place-name matcher").cause(e.to_string())
            })?;
        let (register, register_units) = match sources.institutions {
            None => (None, Vec::new()),
            Some(rel) => read_register(root, rel, &units)?,
        };
        let (traditional, traditional_bits) = traditional_forms(root, sources, &names)?;
        Ok(Gazetteer {
            units: units.codes,
            n_cities,
            matcher,
            names,
            history,
            capitals,
            register,
            register_units,
            traditional,
            traditional_bits,
        })
    }
}

fn add(names: &mut Names, name: &str, e: Entry) {
    let v = names.entry(nfkc(name)).or_default();
    if !v.contains(&e) {
        v.push(e);
    }
}

/// A 6-digit code in a table's cell.
fn code(rel: &str, row: usize, s: &str) -> Result<u32, Diagnostic> {
    s.parse::<f64>()
        .ok()
        .filter(|v| (100_000.0..1_000_000.0).contains(v))
        .map(|v| v as u32)
        .ok_or_else(|| {
            Diagnostic::new(format!(
                "`{rel}`, data row {}: `{s}` is no 6-digit code",
                row + 1
            ))
        })
}

/// Province and prefecture names of the city table, and the capital of each province.
fn city_names(cities: &Cities) -> (Names, BTreeMap<u8, u16>) {
    let mut names = Names::new();
    let mut capitals = BTreeMap::new();
    for (i, c) in cities.rows.iter().enumerate() {
        let unit = i as u16;
        let province = (c.adcode / 10_000) as u8;
        let e = |level| Entry {
            level,
            unit,
            province,
        };
        // The province's names point at its capital for the record; only `province` counts.
        add(&mut names, &c.province, e(Level::Province));
        add(&mut names, &c.province_short, e(Level::Province));
        add(&mut names, &c.name, e(Level::PrefFull));
        let short = if c.municipality {
            c.province_short.clone()
        } else {
            city_short(&c.name)
        };
        if short != c.name && short.chars().count() >= 2 {
            add(&mut names, &short, e(Level::PrefShort));
        }
        if c.capital || c.municipality {
            capitals.entry(province).or_insert(unit);
        }
    }
    // Province entries carry a unit only so that every entry has one: keep one per province.
    for v in names.values_mut() {
        let mut seen = BTreeSet::new();
        v.retain(|e| e.level != Level::Province || seen.insert(e.province));
    }
    (names, capitals)
}

/// County-level names (full, short, generic); adds the province-administered groups to `units`.
// Rows are read across several columns at once, by index.
#[allow(clippy::needless_range_loop)]
fn read_counties(
    root: &Path,
    rel: &str,
    units: &mut Units,
    names: &mut Names,
) -> Result<(), Diagnostic> {
    let cols = tabular::trimmed_texts(
        root,
        rel,
        &["adcode6", "name", "short_name", "kind", "prefecture_adcode"],
    )?;
    for row in 0..cols[0].len() {
        let pref = code(rel, row, &cols[4][row])?;
        let unit = match units.index.get(&pref) {
            Some(&u) => u,
            None if pref % 10_000 == 9_000 => {
                // A province-administered group: located, outside the panel.
                let u = units.codes.len() as u16;
                units.codes.push(pref);
                units.index.insert(pref, u);
                u
            }
            None => {
                return Err(Diagnostic::new(format!(
                    "`{rel}`, data row {}: prefecture `{pref}` is not in the city table",
                    row + 1
                ))
                .hint("county tables and the city table must be of one vintage"))
            }
        };
        let province = (code(rel, row, &cols[0][row])? / 10_000) as u8;
        let e = |level| Entry {
            level,
            unit,
            province,
        };
        let (name, short) = (&cols[1][row], &cols[2][row]);
        if GENERIC.contains(&name.as_str()) {
            add(names, name, e(Level::CountyGeneric));
            continue;
        }
        add(names, name, e(Level::CountyFull));
        if short != name && short.chars().count() >= 2 && !GENERIC.contains(&short.as_str()) {
            add(names, short, e(Level::CountyShort));
        }
    }
    Ok(())
}

/// Old prefecture and county names; returns the old county names with the prefecture they were
/// in then and the unit they are in now.
// Rows are read across several columns at once, by index.
#[allow(clippy::needless_range_loop)]
fn read_history(
    root: &Path,
    rel: &str,
    cities: &Cities,
    units: &Units,
    names: &mut Names,
) -> Result<HistoryRows, Diagnostic> {
    let cols = tabular::trimmed_texts(
        root,
        rel,
        &[
            "old_name",
            "old_short",
            "level",
            "old_adcode",
            "old_prefecture",
            "new_prefecture_adcode",
            "change",
            "last_year",
        ],
    )?;
    // (old county name, province, last year, entry): an old name alone is read in its
    // latest meaning within a province (横县: 南宁市's until 2020, not 南宁地区's).
    let mut old_counties: Vec<(String, u8, u32, Entry)> = Vec::new();
    let mut county_rows: Vec<(String, String, u16)> = Vec::new();
    // Old prefecture names and current ones, to the unit they mean now.
    let mut prefecture_now: HashMap<String, u16> = cities
        .rows
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.clone(), i as u16))
        .collect();
    for row in 0..cols[0].len() {
        let new = code(rel, row, &cols[5][row])?;
        let Some(&unit) = units.index.get(&new) else {
            return Err(Diagnostic::new(format!(
                "`{rel}`, data row {}: `{new}` is not in the city or county table",
                row + 1
            )));
        };
        let province = (code(rel, row, &cols[3][row])? / 10_000) as u8;
        let e = Entry {
            level: Level::OldCounty,
            unit,
            province,
        };
        let (old, short) = (&cols[0][row], &cols[1][row]);
        if cols[2][row] == "prefecture" {
            prefecture_now.entry(old.clone()).or_insert(unit);
            old_prefecture(names, cities, old, short, &cols[6][row], e);
        } else {
            county_rows.push((old.clone(), cols[4][row].clone(), unit));
            if short != old && short.chars().count() >= 2 {
                county_rows.push((short.clone(), cols[4][row].clone(), unit));
            }
            if !GENERIC.contains(&old.as_str()) {
                let last = cols[7][row].parse::<u32>().unwrap_or(0);
                old_counties.push((old.clone(), province, last, e));
            }
        }
    }
    for (name, province, last, e) in &old_counties {
        let latest = old_counties
            .iter()
            .filter(|o| &o.0 == name && o.1 == *province)
            .map(|o| o.2)
            .max()
            .unwrap_or(0);
        if *last == latest {
            add(names, name, *e);
        }
    }
    Ok(county_rows
        .into_iter()
        .filter_map(|(old, then, now)| Some((old, *prefecture_now.get(&then)?, now)))
        .collect())
}

/// An old prefecture name (`old`, its short form `short`) of the history table; `at` is an entry
/// with the unit and province it means now (its level is replaced).
fn old_prefecture(
    names: &mut Names,
    cities: &Cities,
    old: &str,
    short: &str,
    change: &str,
    at: Entry,
) {
    let e = |level| Entry { level, ..at };
    if change.starts_with("abolished") || change.starts_with("renamed_and_split") {
        // Context for every prefecture its counties went to
        // (`abolished (counties to: 合肥市 2; 芜湖市 1; 马鞍山市 2)`).
        add(names, old, e(Level::OldPrefSplit));
        for dest in split_destinations(change) {
            if let Some(i) = cities.rows.iter().position(|c| c.name == dest) {
                let unit = i as u16;
                add(
                    names,
                    old,
                    Entry {
                        level: Level::OldPrefSplit,
                        unit,
                        province: at.province,
                    },
                );
            }
        }
    } else {
        add(names, old, e(Level::OldPref));
        if short != old && short.chars().count() >= 2 {
            add(names, short, e(Level::OldPrefShort));
        }
    }
}

/// Drops the entries that a name's other entries override.
fn prune(names: &mut Names) {
    // An old county name that is now a prefecture's (亳州市 and 随州市 were county-level
    // cities before they became prefectures) applies only with its old prefecture before it
    // (`history`), never alone. One that is a current county's name elsewhere (清河区) is
    // tried after the current names (rule 7's order).
    for v in names.values_mut() {
        let current = v
            .iter()
            .any(|e| matches!(e.level, Level::PrefFull | Level::Province));
        if current {
            v.retain(|e| e.level != Level::OldCounty);
        }
    }
    // Short names of a prefecture are read as the prefecture, not as a county of that short
    // name (西安, 大同, 中山, 朝阳: docs/data.md).
    for v in names.values_mut() {
        if v.iter().any(|e| e.level == Level::PrefShort) {
            v.retain(|e| e.level != Level::CountyShort);
        }
    }
}

/// The names in text order (their ids), with what each can stand for.
fn index_names(names: Names) -> Vec<Name> {
    names
        .into_iter()
        .map(|(text, entries)| {
            let short = !["省", "市", "区", "县", "旗", "州", "盟"]
                .iter()
                .any(|s| text.ends_with(s));
            let province = entries
                .iter()
                .find(|e| e.level == Level::Province)
                .map(|e| e.province);
            let prefecture = entries.iter().any(|e| {
                matches!(
                    e.level,
                    Level::PrefFull | Level::OldPref | Level::OldPrefSplit
                )
            });
            let county = entries.iter().any(|e| {
                matches!(
                    e.level,
                    Level::CountyFull | Level::OldCounty | Level::CountyGeneric
                )
            });
            Name {
                text,
                entries,
                short,
                province,
                prefecture,
                county,
            }
        })
        .collect()
}

/// (old county name id, unit of the prefecture it was in then) -> unit it is in now.
fn history_index(names: &[Name], rows: &HistoryRows) -> FxHashMap<(u32, u16), u16> {
    let id_of: HashMap<&str, u32> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.text.as_str(), i as u32))
        .collect();
    let mut history = FxHashMap::default();
    for (old, then, now) in rows {
        if let Some(&id) = id_of.get(nfkc(old).as_str()) {
            history.insert((id, *then), *now);
        }
    }
    history
}

/// The institution register: an anchored matcher over the names and the unit of each.
// Rows are read across several columns at once, by index.
#[allow(clippy::needless_range_loop)]
fn read_register(
    root: &Path,
    rel: &str,
    units: &Units,
) -> Result<(Option<AhoCorasick>, Vec<u16>), Diagnostic> {
    let cols = tabular::trimmed_texts(root, rel, &["name", "prefecture_adcode"])?;
    let mut by_name: BTreeMap<String, u16> = BTreeMap::new();
    for row in 0..cols[0].len() {
        let c = code(rel, row, &cols[1][row])?;
        let Some(&unit) = units.index.get(&c) else {
            return Err(Diagnostic::new(format!(
                "`{rel}`, data row {}: `{c}` is not in the city or county table",
                row + 1
            )));
        };
        let name: String = nfkc(&cols[0][row])
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if !name.is_empty() {
            by_name.insert(name, unit);
        }
    }
    let (patterns, units): (Vec<String>, Vec<u16>) = by_name.into_iter().unzip();
    let ac = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .start_kind(StartKind::Anchored)
        .build(&patterns)
        .map_err(|e| {
            Diagnostic::new("cannot build the institution matcher").cause(e.to_string())
        })?;
    Ok((Some(ac), units))
}

/// Traditional forms and their bitset, except characters that a place or institution name uses
/// as is.
fn traditional_forms(
    root: &Path,
    sources: &Sources<'_>,
    names: &[Name],
) -> Result<(HashMap<char, char>, Vec<u64>), Diagnostic> {
    let mut used: BTreeSet<char> = names.iter().flat_map(|n| n.text.chars()).collect();
    if let Some(rel) = sources.institutions {
        used.extend(
            tabular::trimmed_texts(root, rel, &["name"])?[0]
                .iter()
                .flat_map(|s| s.chars()),
        );
    }
    let mut traditional = HashMap::new();
    let mut traditional_bits = vec![0u64; (0x9FFF - 0x4E00) / 64 + 1];
    let chars: Vec<char> = TRADITIONAL.chars().filter(|c| !c.is_whitespace()).collect();
    for pair in chars.chunks(2) {
        let [t, s] = pair else { continue };
        if t == s || used.contains(t) || !('\u{4E00}'..='\u{9FFF}').contains(t) {
            continue;
        }
        traditional.insert(*t, *s);
        let k = *t as usize - 0x4E00;
        traditional_bits[k / 64] |= 1 << (k % 64);
    }
    Ok((traditional, traditional_bits))
}

/// The prefectures named in a `change` cell of `place_history.csv`:
/// `renamed_and_split (counties to: 柳州市 4; the rest to 来宾市)` -> 柳州市, 来宾市.
fn split_destinations(change: &str) -> Vec<&str> {
    let Some(list) = change.split_once("counties to:").map(|(_, l)| l) else {
        return Vec::new();
    };
    list.trim_end_matches(')')
        .split(';')
        .filter_map(|item| {
            let item = item.trim();
            let item = item.strip_prefix("the rest to").unwrap_or(item).trim();
            item.split_whitespace().next()
        })
        .collect()
}
