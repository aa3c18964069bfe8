//! The city table and the place names derived from it.
//!
//! Owns: loading `data/cities.csv` (or a user's table with the same columns) into typed rows, the
//! short names used in addresses and organisation names (`杭州` for `杭州市`, `凉山` for
//! `凉山彝族自治州`, `广西` for `广西壮族自治区`), each province's capital, and great-circle
//! distances. Deliberately does not own: matching text against these names (`locate`) or
//! generating data (`synth`).

use std::collections::BTreeMap;
use std::path::Path;

use repro_kind::diag::Diagnostic;
use repro_tabular::dataio;

#[derive(Debug, Clone)]
pub struct City {
    pub adcode: u32,
    pub name: String,
    pub short: String,
    pub province: String,
    pub province_short: String,
    /// The first two digits of the adcode (`33` for Zhejiang).
    pub province_code: u32,
    pub region: String,
    pub coastal: bool,
    pub agglomeration: Option<String>,
    pub capital: bool,
    pub municipality: bool,
    pub lon: f64,
    pub lat: f64,
}

#[derive(Debug, Clone)]
pub struct Cities {
    /// Sorted by adcode.
    pub rows: Vec<City>,
}

/// Ethnic names inside autonomous-prefecture names; the short name ends before the first one.
const ETHNIC_MARKERS: &[&str] = &[
    "朝鲜族",
    "土家族",
    "布依族",
    "哈尼族",
    "景颇族",
    "傈僳族",
    "柯尔克孜",
    "哈萨克",
    "蒙古",
    "彝族",
    "藏族",
    "苗族",
    "侗族",
    "壮族",
    "傣族",
    "白族",
    "回族",
];

/// The name a city goes by in running text: `杭州市` -> `杭州`, `阿克苏地区` -> `阿克苏`,
/// `锡林郭勒盟` -> `锡林郭勒`, `凉山彝族自治州` -> `凉山`.
pub fn city_short(name: &str) -> String {
    if let Some(stem) = name.strip_suffix("自治州") {
        let cut = ETHNIC_MARKERS
            .iter()
            .filter_map(|m| stem.find(m))
            .min()
            .unwrap_or(stem.len());
        return stem[..cut].to_string();
    }
    for suffix in ["地区", "盟", "市"] {
        if let Some(stem) = name.strip_suffix(suffix) {
            if stem.chars().count() >= 2 {
                return stem.to_string();
            }
        }
    }
    name.to_string()
}

/// `浙江省` -> `浙江`, `广西壮族自治区` -> `广西`, `内蒙古自治区` -> `内蒙古`, `北京市` -> `北京`.
pub fn province_short(name: &str) -> String {
    if let Some(stem) = name.strip_suffix("自治区") {
        for marker in ["壮族", "回族", "维吾尔"] {
            if let Some(s) = stem.strip_suffix(marker) {
                return s.to_string();
            }
        }
        return stem.to_string();
    }
    for suffix in ["省", "市"] {
        if let Some(stem) = name.strip_suffix(suffix) {
            return stem.to_string();
        }
    }
    name.to_string()
}

impl Cities {
    pub fn load(path: &Path) -> Result<Cities, Diagnostic> {
        let df = dataio::read_frame(path)?;
        let shown = path.display().to_string();
        let cast = |c: &polars::prelude::Column, to: &polars::prelude::DataType| {
            c.cast(to).map_err(|e| {
                Diagnostic::new(format!("cannot convert column `{}` of `{shown}`", c.name()))
                    .cause(e.to_string())
            })
        };
        let is_number =
            |c: &polars::prelude::Column| c.dtype().is_primitive_numeric() || c.dtype().is_bool();
        // Text cells as written (numbers in their shortest form), blank when missing.
        let text = |name: &str| -> Result<Vec<String>, Diagnostic> {
            let c = df.column(name).map_err(|_| missing_column(&shown, name))?;
            if is_number(c) {
                let v = cast(c, &polars::prelude::DataType::Float64)?;
                let v = v.f64().map_err(|e| Diagnostic::new(e.to_string()))?;
                return Ok(v
                    .iter()
                    .map(|x| x.map(|x| format!("{x}")).unwrap_or_default())
                    .collect());
            }
            let v = cast(c, &polars::prelude::DataType::String)?;
            let v = v.str().map_err(|e| Diagnostic::new(e.to_string()))?;
            Ok(v.iter()
                .map(|s| s.unwrap_or_default().to_string())
                .collect())
        };
        // Numbers, NaN when missing or not a number.
        let num = |name: &str| -> Result<Vec<f64>, Diagnostic> {
            let c = df.column(name).map_err(|_| missing_column(&shown, name))?;
            if is_number(c) {
                let v = cast(c, &polars::prelude::DataType::Float64)?;
                let v = v.f64().map_err(|e| Diagnostic::new(e.to_string()))?;
                return Ok(v.iter().map(|x| x.unwrap_or(f64::NAN)).collect());
            }
            let v = cast(c, &polars::prelude::DataType::String)?;
            let v = v.str().map_err(|e| Diagnostic::new(e.to_string()))?;
            Ok(v.iter()
                .map(|s| s.and_then(|s| s.trim().parse().ok()).unwrap_or(f64::NAN))
                .collect())
        };
        let adcode = num("adcode6")?;
        let name = text("city")?;
        let province = text("province")?;
        let region = text("region")?;
        let coastal = num("coastal")?;
        let agglo = text("agglomeration")?;
        let capital = num("provincial_capital")?;
        let municipality = num("municipality")?;
        let lon = num("longitude")?;
        let lat = num("latitude")?;
        let mut rows = Vec::with_capacity(adcode.len());
        for i in 0..adcode.len() {
            let code = adcode[i];
            if !(code.is_finite() && (100_000.0..1_000_000.0).contains(&code)) {
                return Err(Diagnostic::new(format!(
                    "invalid adcode in `{shown}`, data row {}",
                    i + 1
                ))
                .cause("`adcode6` must be a 6-digit code"));
            }
            let code = code as u32;
            rows.push(City {
                adcode: code,
                short: city_short(&name[i]),
                name: name[i].clone(),
                province_short: province_short(&province[i]),
                province: province[i].clone(),
                province_code: code / 10_000,
                region: region[i].clone(),
                coastal: coastal[i] == 1.0,
                agglomeration: Some(agglo[i].trim().to_string()).filter(|s| !s.is_empty()),
                capital: capital[i] == 1.0,
                municipality: municipality[i] == 1.0,
                lon: lon[i],
                lat: lat[i],
            });
        }
        rows.sort_by_key(|c| c.adcode);
        Ok(Cities { rows })
    }

    pub fn index_of(&self, adcode: u32) -> Option<usize> {
        self.rows.binary_search_by_key(&adcode, |c| c.adcode).ok()
    }

    /// The capital city of each province (by province code).
    pub fn capitals(&self) -> BTreeMap<u32, usize> {
        let mut out = BTreeMap::new();
        for (i, c) in self.rows.iter().enumerate() {
            if c.capital {
                out.entry(c.province_code).or_insert(i);
            }
        }
        out
    }
}

fn missing_column(file: &str, name: &str) -> Diagnostic {
    Diagnostic::new(format!("city table `{file}` has no column `{name}`")).hint(
        "the table needs adcode6, city, province, region, coastal, agglomeration, \
         provincial_capital, municipality, longitude, latitude",
    )
}

/// Whether text continues a place name into a street name (`中山` + `路`).
fn starts_street(rest: &str) -> bool {
    ["路", "街", "道", "巷"].iter().any(|w| rest.starts_with(w))
}

/// Great-circle distance in kilometres.
pub fn distance_km(a: &City, b: &City) -> f64 {
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().min(1.0).asin()
}

/// Finds cities in addresses and organisation names.
///
/// Built once from the city table; matching is leftmost-longest over every full and short city
/// and province name, so `吉林省吉林市` reads as province 吉林 then city 吉林市.
pub struct PlaceIndex {
    matcher: aho_corasick::AhoCorasick,
    /// What each pattern names.
    targets: Vec<Place>,
    capitals: BTreeMap<u32, usize>,
    municipality_of_province: BTreeMap<u32, usize>,
    /// Province code of each city (by index into `Cities::rows`).
    city_province: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// A city by its full name (index into `Cities::rows`).
    CityFull(usize),
    /// A city by its short name.
    CityShort(usize),
    /// A province (code) by its full or short name.
    Province(u32),
    /// A short name shared by a city and a province (`吉林`, `海南`).
    Both(usize, u32),
}

impl PlaceIndex {
    pub fn new(cities: &Cities) -> PlaceIndex {
        let mut names: BTreeMap<String, Place> = BTreeMap::new();
        let mut provinces: BTreeMap<u32, (String, String)> = BTreeMap::new();
        for c in &cities.rows {
            provinces
                .entry(c.province_code)
                .or_insert_with(|| (c.province.clone(), c.province_short.clone()));
        }
        for (code, (full, short)) in &provinces {
            names.insert(full.clone(), Place::Province(*code));
            names.insert(short.clone(), Place::Province(*code));
        }
        for (i, c) in cities.rows.iter().enumerate() {
            // A municipality's full name is also its province's: keep it as the province, whose
            // only city it is.
            if !c.municipality {
                names.insert(c.name.clone(), Place::CityFull(i));
            }
            let entry = names.get(&c.short).copied();
            let place = match entry {
                Some(Place::Province(code)) if !c.municipality => Place::Both(i, code),
                Some(other) => other,
                None => Place::CityShort(i),
            };
            names.insert(c.short.clone(), place);
        }
        let (patterns, targets): (Vec<String>, Vec<Place>) = names.into_iter().unzip();
        let matcher = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            // A full DFA: a few hundred patterns make a small one, and it searches addresses
            // faster than the default NFA (`locate` on 10M rows: about 19 s of CPU time to 16 s).
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            // Every name starts with one of a few lead bytes that are as common in Chinese text
            // as the names are rare, so a prefilter only adds work.
            .prefilter(false)
            .build(&patterns)
            .expect("place names build an automaton");
        let mut municipality_of_province = BTreeMap::new();
        for (i, c) in cities.rows.iter().enumerate() {
            if c.municipality {
                municipality_of_province.insert(c.province_code, i);
            }
        }
        PlaceIndex {
            matcher,
            targets,
            capitals: cities.capitals(),
            municipality_of_province,
            city_province: cities.rows.iter().map(|c| c.province_code).collect(),
        }
    }

    fn places<'a>(&'a self, text: &'a str) -> impl Iterator<Item = (usize, Place)> + 'a {
        self.matcher
            .find_iter(text)
            .map(move |m| (m.start(), self.targets[m.pattern().as_usize()]))
    }

    /// The city of an address: the province (full or short name), then a city of that province
    /// by full or short name; a municipality is its own city. Without a province, only a full
    /// city name counts (short names alone are too ambiguous in street addresses).
    pub fn address_city(&self, cities: &Cities, address: &str) -> Option<usize> {
        let found: Vec<(usize, usize, Place)> = self
            .matcher
            .find_iter(address)
            .map(|m| (m.start(), m.end(), self.targets[m.pattern().as_usize()]))
            .collect();
        let province = found.iter().enumerate().find_map(|(k, (_, _, p))| match p {
            Place::Province(code) | Place::Both(_, code) => Some((k, *code)),
            _ => None,
        });
        let Some((token, code)) = province else {
            return found.iter().find_map(|(_, _, p)| match p {
                Place::CityFull(i) => Some(*i),
                _ => None,
            });
        };
        if let Some(&m) = self.municipality_of_province.get(&code) {
            return Some(m);
        }
        let in_province = |i: usize| cities.rows[i].province_code == code;
        // A full name of one of the province's cities anywhere in the address; else a short name,
        // unless it starts a street name (`中山路`, `南京街`) or is the token read as the province.
        if let Some(i) = found.iter().find_map(|(_, _, p)| match p {
            Place::CityFull(i) if in_province(*i) => Some(*i),
            _ => None,
        }) {
            return Some(i);
        }
        found
            .iter()
            .enumerate()
            .find_map(|(k, (_, end, p))| match p {
                Place::CityShort(i) | Place::Both(i, _)
                    if k != token && in_province(*i) && !starts_street(&address[*end..]) =>
                {
                    Some(*i)
                }
                _ => None,
            })
    }

    /// The city a place name inside an organisation name points to: the leftmost city name, or a
    /// province name standing for its capital (a provincial university's seat). A name shared by a
    /// city and a province is read as the city when the city lies in that province (`吉林`), else
    /// as the province (`海南`: Hainan, not the prefecture of that name in Qinghai).
    pub fn name_city(&self, name: &str) -> Option<usize> {
        self.places(name).find_map(|(_, p)| match p {
            Place::CityFull(i) | Place::CityShort(i) => Some(i),
            Place::Both(i, code) if self.city_province[i] == code => Some(i),
            Place::Province(code) | Place::Both(_, code) => self
                .municipality_of_province
                .get(&code)
                .or_else(|| self.capitals.get(&code))
                .copied(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(city_short("杭州市"), "杭州");
        assert_eq!(city_short("阿克苏地区"), "阿克苏");
        assert_eq!(city_short("锡林郭勒盟"), "锡林郭勒");
        assert_eq!(city_short("凉山彝族自治州"), "凉山");
        assert_eq!(city_short("海西蒙古族藏族自治州"), "海西");
        assert_eq!(city_short("巴音郭楞蒙古自治州"), "巴音郭楞");
        assert_eq!(city_short("伊犁哈萨克自治州"), "伊犁");
        assert_eq!(city_short("湘西土家族苗族自治州"), "湘西");
        assert_eq!(province_short("广西壮族自治区"), "广西");
        assert_eq!(province_short("新疆维吾尔自治区"), "新疆");
        assert_eq!(province_short("内蒙古自治区"), "内蒙古");
        assert_eq!(province_short("北京市"), "北京");
        assert_eq!(province_short("浙江省"), "浙江");
    }

    #[test]
    fn the_project_table_loads_with_unique_short_names_per_province() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let cities = Cities::load(&root.join("../../data/cities.csv")).unwrap();
        assert_eq!(cities.rows.len(), 337);
        let places = PlaceIndex::new(&cities);
        let by = |name: &str| cities.rows.iter().position(|c| c.name == name);
        assert_eq!(
            places.address_city(&cities, "吉林省吉林市船营区"),
            by("吉林市")
        );
        assert_eq!(
            places.address_city(&cities, "浙江省杭州市西湖区文三路90号"),
            by("杭州市")
        );
        assert_eq!(places.address_city(&cities, "浙江杭州西湖区"), by("杭州市"));
        assert_eq!(places.address_city(&cities, "北京市朝阳区"), by("北京市"));
        assert_eq!(
            places.address_city(&cities, "辽宁省朝阳市双塔区"),
            by("朝阳市")
        );
        assert_eq!(places.address_city(&cities, "朝阳区建国路"), None);
        assert_eq!(places.address_city(&cities, "浙江省西湖区"), None);
        assert_eq!(
            places.address_city(&cities, "四川省凉山彝族自治州西昌市"),
            by("凉山彝族自治州")
        );
        assert_eq!(places.name_city("杭州华信科技有限公司"), by("杭州市"));
        assert_eq!(places.name_city("浙江大学"), by("杭州市"));
        assert_eq!(places.name_city("上海交通大学"), by("上海市"));
        assert_eq!(places.name_city("华信恒达科技有限公司"), None);
        // Shared names: 吉林 is a city of 吉林省; 海南 (a prefecture of Qinghai) is Hainan.
        assert_eq!(places.name_city("吉林某某有限公司"), by("吉林市"));
        assert_eq!(places.name_city("海南大学"), by("海口市"));
        // Street names are not cities; a city later in the address still counts.
        assert_eq!(places.address_city(&cities, "广东省中山路100号"), None);
        assert_eq!(
            places.address_city(&cities, "广东省中山市中山路100号"),
            by("中山市")
        );
        assert_eq!(
            places.address_city(&cities, "浙江省长春路8号杭州"),
            by("杭州市")
        );
        assert_eq!(places.address_city(&cities, "吉林省吉林"), by("吉林市"));
        assert_eq!(places.address_city(&cities, "吉林船营区"), None);
        let caps = cities.capitals();
        assert_eq!(caps.len(), 31);
        let mut seen = std::collections::BTreeSet::new();
        for c in &cities.rows {
            assert!(c.short.chars().count() >= 2, "{}", c.name);
            assert!(
                seen.insert(c.short.clone()),
                "duplicate short name {}",
                c.short
            );
        }
    }
}
