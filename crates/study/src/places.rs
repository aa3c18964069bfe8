//! The city table and the place names derived from it.
//!
//! Owns: loading `data/cities.csv` (or a user's table with the same columns) into typed rows, the
//! short names used in addresses and organisation names (`杭州` for `杭州市`, `凉山` for
//! `凉山彝族自治州`, `广西` for `广西壮族自治区`), each province's capital, and great-circle
//! distances. Deliberately does not own: matching text against these names (`gazetteer`) or
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

/// Great-circle distance in kilometres.
pub fn distance_km(a: &City, b: &City) -> f64 {
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().min(1.0).asin()
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
