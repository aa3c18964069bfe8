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
use crate::places::City;

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

/// An address as written and its postcode cell: buffers a caller reuses from one record to
/// the next (a million addresses are written into them, none allocated).
#[derive(Default)]
pub struct Written {
    pub address: String,
    pub postcode: String,
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

/// A street and number with no place in it, appended to `out`: `科技路118号`, sometimes after a
/// zone (`经济技术开发区科技路118号`).
fn street(r: &mut ChaCha8Rng, zone: bool, out: &mut String) {
    let road = pick(r, ROADS);
    let n = r.random_range(1..400u32);
    if zone && r.random::<f64>() < 0.3 {
        out.push_str(pick::<&str>(r, DISTRICTS));
    }
    out.push_str(road);
    out.push_str(itoa::Buffer::new().format(n));
    out.push('号');
}

/// What writing an address needs: the city, its gazetteer rows and the record's year.
pub struct Target<'a> {
    pub city: &'a City,
    pub index: usize,
    pub year: i32,
    pub places: &'a Places,
}

/// Writes the address of a first applicant in `city` in `form` (or `full` where the city
/// cannot take the form that year) into `out`, replacing what it held, and returns the form it
/// was written in. `code` is the postcode; `blank_postcode` blanks its cell where the address
/// names a place.
pub fn write(
    r: &mut ChaCha8Rng,
    t: &Target<'_>,
    form: AddressForm,
    code: &str,
    blank_postcode: bool,
    out: &mut Written,
) -> AddressForm {
    out.address.clear();
    out.postcode.clear();
    let form = if compose(r, t, form, &mut out.address) {
        form
    } else {
        compose(r, t, AddressForm::Full, &mut out.address);
        AddressForm::Full
    };
    if form == AddressForm::Postcode {
        let sep = if r.random::<f64>() < 0.5 { " " } else { "" };
        out.address.insert_str(0, sep);
        out.address.insert_str(0, code);
    }
    let blank = match form {
        AddressForm::Postcode | AddressForm::NoPlace | AddressForm::Blank => true,
        _ => blank_postcode && form.names_place(),
    };
    if !blank {
        out.postcode.push_str(code);
    }
    form
}

/// Appends the address in `form` to `out`; false (nothing appended, nothing drawn) where the
/// city cannot take the form in the year.
fn compose(r: &mut ChaCha8Rng, t: &Target<'_>, form: AddressForm, out: &mut String) -> bool {
    let c = t.city;
    let counties = &t.places.counties[t.index];
    // The province as written before a city: nothing for a municipality (its name is both).
    let province = if c.municipality {
        ""
    } else {
        c.province.as_str()
    };
    match form {
        AddressForm::Full => {
            let county = if !counties.is_empty() && r.random::<f64>() < 0.8 {
                pick(r, counties).name.as_str()
            } else {
                ""
            };
            push_all(out, &[province, &c.name, county]);
            street(r, true, out);
        }
        AddressForm::CountyCity => {
            let Some(cc) = pick_where(r, counties, |k| k.county_city) else {
                return false;
            };
            if r.random::<f64>() < 0.5 {
                out.push_str(&c.province_short);
            }
            out.push_str(&cc.name);
            street(r, false, out);
        }
        AddressForm::District => {
            let Some(k) = pick_where(r, counties, |k| {
                !k.county_city && (k.unique || k.unique_in_province)
            }) else {
                return false;
            };
            // A name shared with another province's unit needs its province before it.
            if !k.unique || r.random::<f64>() < 0.3 {
                out.push_str(&c.province);
            }
            out.push_str(&k.name);
            street(r, false, out);
        }
        AddressForm::OldName => {
            let Some(o) = pick_where(r, &t.places.old_names[t.index], |o| {
                o.first_year <= t.year && t.year <= o.last_year
            }) else {
                return false;
            };
            let before = if o.prefecture == c.province {
                ""
            } else {
                c.province.as_str()
            };
            push_all(out, &[before, &o.prefecture, &o.name]);
            street(r, false, out);
        }
        AddressForm::Postcode | AddressForm::ProvincePostcode => {
            out.push_str(&c.province);
            street(r, true, out);
        }
        AddressForm::OtherStreet => {
            let own = c.province_short.as_str();
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
            push_all(out, &[written_province, &c.name, county, other]);
            out.push_str(pick::<&str>(r, DIRECTIONS));
            out.push_str(pick::<&str>(r, STREET_WORDS));
            out.push_str(itoa::Buffer::new().format(r.random_range(1..800u32)));
            out.push('号');
        }
        AddressForm::NoPlace => street(r, false, out),
        AddressForm::Blank => {}
    }
    true
}

fn push_all(out: &mut String, parts: &[&str]) {
    for p in parts {
        out.push_str(p);
    }
}

/// One of the `items` that `keep` accepts, uniformly (the draw `pick` makes over the list of
/// them), or None without a draw where there is none.
fn pick_where<'a, T>(
    r: &mut ChaCha8Rng,
    items: &'a [T],
    keep: impl Fn(&T) -> bool,
) -> Option<&'a T> {
    let n = items.iter().filter(|x| keep(x)).count();
    if n == 0 {
        return None;
    }
    items.iter().filter(|x| keep(x)).nth(r.random_range(0..n))
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
        let mut w = Written::default();
        for (i, c) in cities.rows.iter().enumerate() {
            for year in 2010..=2020 {
                let t = Target {
                    city: c,
                    index: i,
                    year,
                    places: &places,
                };
                for (k, &form) in AddressForm::DRAWN.iter().enumerate() {
                    let written = write(&mut r, &t, form, "123456", false, &mut w);
                    let a = &w.address;
                    assert!(written == form || written == AddressForm::Full, "{a}");
                    realised[k] += usize::from(written == form);
                    let counties = &places.counties[i];
                    match written {
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
