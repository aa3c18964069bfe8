//! The gazetteer as the generator sees it: for each city of the city table, its county-level
//! units, the old names that lead to it and the institutions in it, read straight from the
//! data tables (`data/counties.csv`, `data/place_history.csv`, `data/institutions.csv`).
//!
//! Owns: reading those three tables into per-city lists, and whether a county-level name is
//! unique nationally or within its province (counted over current and old names). The true city
//! of every row is the table's own prefecture column, so what `synth` writes is placed by the
//! data, never by `locate`'s matcher. Deliberately does not own: writing addresses (`address`)
//! or names (`orgs`), or matching text (`crate::gazetteer`).

use std::collections::HashMap;
use std::path::Path;

use crate::places::{province_short, Cities};
use repro_kind::diag::Diagnostic;
use repro_tabular::table as tabular;

/// A current county-level unit of a city.
#[derive(Debug, Clone)]
pub struct County {
    pub name: String,
    /// A county-level city (`县级市`).
    pub county_city: bool,
    /// No other current or old county-level unit has this full name.
    pub unique: bool,
    /// No other current or old county-level unit of the province has this full name.
    pub unique_in_province: bool,
}

/// A name that led to a city in some years and has changed since.
#[derive(Debug, Clone)]
pub struct OldName {
    pub name: String,
    /// For a county, the prefecture it was in then (written before it); empty for a prefecture.
    pub prefecture: String,
    pub first_year: i32,
    pub last_year: i32,
}

/// Per city (index into `Cities::rows`): its units, old names and institutions.
#[derive(Debug, Clone, Default)]
pub struct Places {
    pub counties: Vec<Vec<County>>,
    pub old_names: Vec<Vec<OldName>>,
    pub institutions: Vec<Vec<String>>,
    /// Short names of every prefecture and province, for streets named after other places.
    pub street_names: Vec<String>,
}

/// The spec's paths of the three tables.
pub struct Tables<'a> {
    pub counties: &'a str,
    pub place_history: &'a str,
    pub institutions: &'a str,
}

/// Kinds of county-level unit an address names (functional zones and `other` are left out).
const ADDRESS_KINDS: &[&str] = &[
    "district",
    "county",
    "county_city",
    "banner",
    "autonomous_county",
    "autonomous_banner",
    "forestry_district",
    "special_district",
];

/// A code cell (`110000` or `110000.0`) as a number; 0 when blank or not a number.
fn code(s: &str) -> u32 {
    s.parse::<f64>().map_or(0, |v| v as u32)
}

fn year(rel: &str, row: usize, s: &str) -> Result<i32, Diagnostic> {
    s.parse::<f64>()
        .map(|v| v as i32)
        .map_err(|_| Diagnostic::new(format!("`{rel}`, data row {}: `{s}` is no year", row + 1)))
}

impl Places {
    pub fn load(root: &Path, cities: &Cities, tables: &Tables<'_>) -> Result<Places, Diagnostic> {
        let n = cities.rows.len();
        let index: HashMap<u32, usize> = cities
            .rows
            .iter()
            .enumerate()
            .map(|(i, c)| (c.adcode, i))
            .collect();
        let mut places = Places {
            counties: vec![Vec::new(); n],
            old_names: vec![Vec::new(); n],
            institutions: vec![Vec::new(); n],
            street_names: Vec::new(),
        };

        let rel = tables.counties;
        let [name, kind, prefecture, province] = tabular::trimmed_texts(
            root,
            rel,
            &["name", "kind", "prefecture_adcode", "province"],
        )?
        .try_into()
        .map_err(|_| Diagnostic::new(format!("`{rel}`: cannot read its columns")))?;
        let rel_h = tables.place_history;
        let [old, level, old_prefecture, old_province, first, last, new_prefecture, change] =
            tabular::trimmed_texts(
                root,
                rel_h,
                &[
                    "old_name",
                    "level",
                    "old_prefecture",
                    "province",
                    "first_year",
                    "last_year",
                    "new_prefecture_adcode",
                    "change",
                ],
            )?
            .try_into()
            .map_err(|_| Diagnostic::new(format!("`{rel_h}`: cannot read its columns")))?;

        // How often each county-level full name occurs, nationally and per province, over the
        // current units and the old names.
        let mut national: HashMap<&str, u32> = HashMap::new();
        let mut provincial: HashMap<(&str, &str), u32> = HashMap::new();
        let old_counties = (0..old.len()).filter(|&r| level[r] == "county");
        for (nm, pr) in (0..name.len())
            .map(|r| (name[r].as_str(), province[r].as_str()))
            .chain(old_counties.map(|r| (old[r].as_str(), old_province[r].as_str())))
        {
            *national.entry(nm).or_insert(0) += 1;
            *provincial.entry((nm, pr)).or_insert(0) += 1;
        }
        for r in 0..name.len() {
            let Some(&i) = index.get(&code(&prefecture[r])) else {
                continue;
            };
            if !ADDRESS_KINDS.contains(&kind[r].as_str()) {
                continue;
            }
            places.counties[i].push(County {
                name: name[r].clone(),
                county_city: kind[r] == "county_city",
                unique: national[name[r].as_str()] == 1,
                unique_in_province: provincial[&(name[r].as_str(), province[r].as_str())] == 1,
            });
        }
        for r in 0..old.len() {
            let Some(&i) = index.get(&code(&new_prefecture[r])) else {
                continue;
            };
            // A prefecture whose counties went to several prefectures (abolished, split) leads
            // to none of them by its name alone.
            let whole = change[r] == "renamed" || change[r].starts_with("merged");
            if level[r] == "prefecture" && !whole {
                continue;
            }
            places.old_names[i].push(OldName {
                name: old[r].clone(),
                prefecture: if level[r] == "county" {
                    old_prefecture[r].clone()
                } else {
                    String::new()
                },
                first_year: year(rel_h, r, &first[r])?,
                last_year: year(rel_h, r, &last[r])?,
            });
        }

        let rel_i = tables.institutions;
        let [inst, inst_prefecture] =
            tabular::trimmed_texts(root, rel_i, &["name", "prefecture_adcode"])?
                .try_into()
                .map_err(|_| Diagnostic::new(format!("`{rel_i}`: cannot read its columns")))?;
        for (nm, p) in inst.into_iter().zip(&inst_prefecture) {
            if let Some(&i) = index.get(&code(p)) {
                places.institutions[i].push(nm);
            }
        }

        let mut streets: Vec<String> = cities.rows.iter().map(|c| c.short.clone()).collect();
        streets.extend(cities.rows.iter().map(|c| province_short(&c.province)));
        streets.sort();
        streets.dedup();
        places.street_names = streets;
        Ok(places)
    }
}
