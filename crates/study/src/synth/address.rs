//! First applicants' addresses in the forms real exports have, written from the gazetteer's
//! tables for a city whose identity the generator already knows.
//!
//! Owns: the address forms (docs/dgp.md, "Addresses"), the fallback of a form a city cannot take
//! in a year, and writing one address with its postcode cell. Deliberately does not own: which
//! form a record gets (`records` draws it), the postcode directory or the rest of the export line
//! (`export`), or reading the tables (`places`). Nothing here asks `locate`'s matcher anything.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::draw::pick;
use super::places::Places;
use crate::places::{province_short, City};

/// How a first applicant's address is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressForm {
    Full,
    CountyCity,
    District,
    OldName,
    Postcode,
    ProvincePostcode,
    OtherStreet,
    NoPlace,
    /// No address at all (individual filers who give none).
    Blank,
}

impl AddressForm {
    /// The forms a spec gives shares for, in `AddressForms::shares` order.
    pub const DRAWN: [AddressForm; 8] = [
        AddressForm::Full,
        AddressForm::CountyCity,
        AddressForm::District,
        AddressForm::OldName,
        AddressForm::Postcode,
        AddressForm::ProvincePostcode,
        AddressForm::OtherStreet,
        AddressForm::NoPlace,
    ];

    /// Its name in the truth table (`truth_applicants.parquet`, column `form`).
    pub fn name(self) -> &'static str {
        match self {
            AddressForm::Full => "full",
            AddressForm::CountyCity => "county_city",
            AddressForm::District => "district",
            AddressForm::OldName => "old_name",
            AddressForm::Postcode => "postcode",
            AddressForm::ProvincePostcode => "province_postcode",
            AddressForm::OtherStreet => "other_street",
            AddressForm::NoPlace => "no_place",
            AddressForm::Blank => "blank",
        }
    }

    /// Whether the address (with its postcode) tells the city by design: the forms an
    /// organisation's anchor record may have.
    pub fn tells_city(self) -> bool {
        !matches!(self, AddressForm::NoPlace | AddressForm::Blank)
    }

    /// Whether the address names the city or a unit in it, so that the postcode cell may be
    /// blank.
    fn names_place(self) -> bool {
        !matches!(
            self,
            AddressForm::Postcode
                | AddressForm::ProvincePostcode
                | AddressForm::NoPlace
                | AddressForm::Blank
        )
    }
}

/// An address as written, its postcode cell and the form it was written in.
pub struct Written {
    pub address: String,
    pub postcode: String,
    pub form: AddressForm,
}

const DISTRICTS: &[&str] = &["高新技术产业开发区", "经济技术开发区", "工业园区", "科技园"];
const ROADS: &[&str] = &[
    "科技路",
    "创新大道",
    "工业大道",
    "学府路",
    "人民路",
    "建设路",
    "解放路",
    "文化路",
];
const DIRECTIONS: &[&str] = &["", "", "东", "西", "南", "北", "中"];
const STREET_WORDS: &[&str] = &["路", "路", "街", "大道", "大街"];

/// A street and number with no place in it: `科技路118号`, sometimes after a zone
/// (`经济技术开发区科技路118号`).
fn street(r: &mut ChaCha8Rng, zone: bool) -> String {
    let road = pick(r, ROADS);
    let n = r.random_range(1..400u32);
    if zone && r.random::<f64>() < 0.3 {
        format!("{}{road}{n}号", pick(r, DISTRICTS))
    } else {
        format!("{road}{n}号")
    }
}

/// What writing an address needs: the city, its gazetteer rows and the record's year.
pub struct Target<'a> {
    pub city: &'a City,
    pub index: usize,
    pub year: i32,
    pub places: &'a Places,
}

/// Writes the address of a first applicant in `city` in `form` (or `full` where the city
/// cannot take the form that year). `code` is the postcode; `blank_postcode` blanks its cell
/// where the address names a place.
pub fn write(
    r: &mut ChaCha8Rng,
    t: &Target<'_>,
    form: AddressForm,
    code: String,
    blank_postcode: bool,
) -> Written {
    let (address, form) = match compose(r, t, form) {
        Some(a) => (a, form),
        None => (
            compose(r, t, AddressForm::Full).unwrap_or_default(),
            AddressForm::Full,
        ),
    };
    let address = match form {
        AddressForm::Postcode => {
            let sep = if r.random::<f64>() < 0.5 { " " } else { "" };
            format!("{code}{sep}{address}")
        }
        _ => address,
    };
    let postcode = match form {
        AddressForm::Postcode | AddressForm::NoPlace | AddressForm::Blank => String::new(),
        _ if blank_postcode && form.names_place() => String::new(),
        _ => code,
    };
    Written {
        address,
        postcode,
        form,
    }
}

/// The address in `form`, or None where the city cannot take it in the year.
fn compose(r: &mut ChaCha8Rng, t: &Target<'_>, form: AddressForm) -> Option<String> {
    let c = t.city;
    let counties = &t.places.counties[t.index];
    // The province as written before a city: nothing for a municipality (its name is both).
    let province = if c.municipality {
        ""
    } else {
        c.province.as_str()
    };
    Some(match form {
        AddressForm::Full => {
            let county = if !counties.is_empty() && r.random::<f64>() < 0.8 {
                pick(r, counties).name.as_str()
            } else {
                ""
            };
            format!("{province}{}{county}{}", c.name, street(r, true))
        }
        AddressForm::CountyCity => {
            let ccs: Vec<_> = counties.iter().filter(|k| k.county_city).collect();
            if ccs.is_empty() {
                return None;
            }
            let cc = pick(r, &ccs);
            let before = if r.random::<f64>() < 0.5 {
                province_short(&c.province)
            } else {
                String::new()
            };
            format!("{before}{}{}", cc.name, street(r, false))
        }
        AddressForm::District => {
            let ok: Vec<_> = counties
                .iter()
                .filter(|k| !k.county_city && (k.unique || k.unique_in_province))
                .collect();
            if ok.is_empty() {
                return None;
            }
            let k = pick(r, &ok);
            // A name shared with another province's unit needs its province before it.
            let before = if !k.unique || r.random::<f64>() < 0.3 {
                c.province.as_str()
            } else {
                ""
            };
            format!("{before}{}{}", k.name, street(r, false))
        }
        AddressForm::OldName => {
            let valid: Vec<_> = t.places.old_names[t.index]
                .iter()
                .filter(|o| o.first_year <= t.year && t.year <= o.last_year)
                .collect();
            if valid.is_empty() {
                return None;
            }
            let o = pick(r, &valid);
            let before = if o.prefecture == c.province {
                ""
            } else {
                c.province.as_str()
            };
            format!("{before}{}{}{}", o.prefecture, o.name, street(r, false))
        }
        AddressForm::Postcode | AddressForm::ProvincePostcode => {
            format!("{}{}", c.province, street(r, true))
        }
        AddressForm::OtherStreet => {
            let own = province_short(&c.province);
            let names = &t.places.street_names;
            let other = loop {
                let o = pick(r, names);
                if *o != c.short && *o != own {
                    break o;
                }
            };
            let written_province = if r.random::<f64>() < 0.5 {
                province
            } else {
                ""
            };
            let county = if !counties.is_empty() && r.random::<f64>() < 0.3 {
                pick(r, counties).name.as_str()
            } else {
                ""
            };
            format!(
                "{written_province}{}{county}{other}{}{}{}号",
                c.name,
                pick(r, DIRECTIONS),
                pick(r, STREET_WORDS),
                r.random_range(1..800u32)
            )
        }
        AddressForm::NoPlace => street(r, false),
        AddressForm::Blank => String::new(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::draw::stream;
    use super::super::places::Tables;
    use super::*;
    use crate::places::Cities;

    /// Every city, every form, every year: the written address says what its form promises,
    /// from the tables alone (the truth is the city it was written for).
    #[test]
    fn each_form_is_written_from_the_tables_or_falls_back_to_full() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let cities = Cities::load(&root.join("data/cities.csv")).unwrap();
        let tables = Tables {
            counties: "data/counties.csv",
            place_history: "data/place_history.csv",
            institutions: "data/institutions.csv",
        };
        let places = Places::load(&root, &cities, &tables).unwrap();
        let mut r = stream(1, "test", 0);
        let mut realised = [0usize; 8];
        for (i, c) in cities.rows.iter().enumerate() {
            for year in 2010..=2020 {
                let t = Target {
                    city: c,
                    index: i,
                    year,
                    places: &places,
                };
                for (k, &form) in AddressForm::DRAWN.iter().enumerate() {
                    let w = write(&mut r, &t, form, "123456".into(), false);
                    let a = &w.address;
                    assert!(w.form == form || w.form == AddressForm::Full, "{a}");
                    realised[k] += usize::from(w.form == form);
                    let counties = &places.counties[i];
                    match w.form {
                        AddressForm::Full | AddressForm::OtherStreet => {
                            assert!(a.contains(&c.name), "{a} lacks {}", c.name)
                        }
                        AddressForm::CountyCity => assert!(
                            counties
                                .iter()
                                .any(|k| k.county_city && a.contains(&k.name)),
                            "{a}"
                        ),
                        AddressForm::District => {
                            assert!(
                                counties.iter().any(|k| a.contains(&k.name)
                                    && (k.unique || a.starts_with(&c.province))),
                                "{a}"
                            )
                        }
                        AddressForm::OldName => assert!(
                            places.old_names[i].iter().any(|o| a.contains(&o.name)
                                && o.first_year <= year
                                && year <= o.last_year),
                            "{a} in {year}"
                        ),
                        AddressForm::Postcode => {
                            assert!(a.starts_with("123456") && w.postcode.is_empty())
                        }
                        AddressForm::ProvincePostcode => assert_eq!(w.postcode, "123456"),
                        AddressForm::NoPlace => {
                            assert!(!a.contains(&c.short) && w.postcode.is_empty(), "{a}")
                        }
                        AddressForm::Blank => unreachable!(),
                    }
                }
            }
        }
        // Every form is realised for a good share of city-years.
        let n = cities.rows.len() * 11;
        for (k, form) in AddressForm::DRAWN.iter().enumerate() {
            println!("{}: {} of {n}", form.name(), realised[k]);
            assert!(
                realised[k] * 20 > n,
                "{} realised {}",
                form.name(),
                realised[k]
            );
        }
    }
}
