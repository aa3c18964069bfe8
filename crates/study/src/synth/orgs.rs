//! The applicants: every city's organisations (firms, universities, institutes) with unique
//! names, people's names and the foreign applicants.
//!
//! Owns: the word lists names are made of, building each city's organisations in the forms real
//! exports have (universities from the institution register in their true city; firms named
//! after their city, a county-level city of it, their province or no place, in the spec's
//! shares) and drawing a person's name. Every organisation's city is decided first and its name
//! written for it from the gazetteer's tables; no name is checked against `locate`'s matcher, so
//! a name that happens to contain another place (`泰安` from two brand characters) stays as real
//! names do. Deliberately does not own: who applies with whom (`records`) or how a name is
//! written into the export (`export`).

use std::collections::HashSet;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::cities::CityDraw;
use super::draw::{cumulative, draw_cum, pick, stream};
use super::places::Places;
use super::spec::FirmNames;
use crate::places::{province_short, Cities, City};

/// How an organisation's name is written (the truth table's `form` for co-applicants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgForm {
    /// A university of the institution register, in the register's city.
    Register,
    /// A university named after its city that no register lists.
    University,
    /// A research institute named after its city.
    Institute,
    FirmCity,
    FirmCityShort,
    FirmCountyCity,
    FirmProvince,
    FirmPlain,
}

/// Firm forms in `FirmNames::shares` order.
pub const FIRM_FORMS: [OrgForm; 5] = [
    OrgForm::FirmCity,
    OrgForm::FirmCityShort,
    OrgForm::FirmCountyCity,
    OrgForm::FirmProvince,
    OrgForm::FirmPlain,
];

impl OrgForm {
    pub fn name(self) -> &'static str {
        match self {
            OrgForm::Register => "register",
            OrgForm::University => "university",
            OrgForm::Institute => "institute",
            OrgForm::FirmCity => "firm_city",
            OrgForm::FirmCityShort => "firm_city_short",
            OrgForm::FirmCountyCity => "firm_county_city",
            OrgForm::FirmProvince => "firm_province",
            OrgForm::FirmPlain => "firm_plain",
        }
    }
}

/// An organisation that applies for patents.
#[derive(Debug, Clone)]
pub struct Org {
    pub name: String,
    pub city: usize,
    pub form: OrgForm,
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
/// Foreign applicants: name, address and country code (they have no city).
pub const FOREIGN: &[(&str, &str, &str)] = &[
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

/// Builds every city's organisations with globally unique names: each city's register
/// universities first (one in twenty organisations is a university, one an institute), then
/// firms in the forms of `firm_names`. A form the city cannot take (no county-level city; a
/// municipality's province is the city) falls back to the city's short name.
pub fn build_orgs(
    seed: u64,
    cities: &Cities,
    draws: &[CityDraw],
    places: &Places,
    firm_names: &FirmNames,
) -> Vec<Org> {
    let mut used: HashSet<String> = HashSet::new();
    let mut orgs = Vec::new();
    let firm_cum = cumulative(firm_names.shares().into_iter());
    for (i, c) in cities.rows.iter().enumerate() {
        let mut r = stream(seed, "orgs", i as u64);
        let n = (draws[i].pop0 / 4.0).round().clamp(12.0, 400.0) as usize;
        let mut register = places.institutions[i].iter();
        let county_cities: Vec<&str> = places.counties[i]
            .iter()
            .filter(|k| k.county_city)
            .map(|k| k.name.as_str())
            .collect();
        for k in 0..n {
            let registered = if k % 20 == 0 { register.next() } else { None };
            for _attempt in 0..50 {
                let (name, form) = match (k % 20, registered) {
                    (_, Some(name)) => (name.clone(), OrgForm::Register),
                    (0, None) => (
                        org_name(&mut r, c, OrgForm::University, &[]),
                        OrgForm::University,
                    ),
                    (1, _) => (
                        org_name(&mut r, c, OrgForm::Institute, &[]),
                        OrgForm::Institute,
                    ),
                    _ => {
                        let mut form = FIRM_FORMS[draw_cum(&mut r, &firm_cum)];
                        if (form == OrgForm::FirmCountyCity && county_cities.is_empty())
                            || (form == OrgForm::FirmProvince && c.municipality)
                        {
                            form = OrgForm::FirmCityShort;
                        }
                        (org_name(&mut r, c, form, &county_cities), form)
                    }
                };
                if used.insert(name.clone()) {
                    orgs.push(Org {
                        name,
                        city: i,
                        form,
                    });
                    break;
                }
            }
        }
    }
    orgs
}

fn org_name(r: &mut ChaCha8Rng, c: &City, form: OrgForm, county_cities: &[&str]) -> String {
    let brand = format!("{}{}", pick(r, BRAND), pick(r, BRAND));
    let firm = |r: &mut ChaCha8Rng, place: &str| {
        format!(
            "{place}{brand}{}{}",
            pick(r, INDUSTRY),
            pick(r, FIRM_SUFFIX)
        )
    };
    match form {
        OrgForm::FirmCity => firm(r, &c.name),
        OrgForm::FirmCityShort => firm(r, &c.short),
        OrgForm::FirmCountyCity => {
            let cc = *pick(r, county_cities);
            firm(r, cc)
        }
        OrgForm::FirmProvince => firm(r, &province_short(&c.province)),
        OrgForm::FirmPlain => {
            let third = *pick(r, BRAND);
            firm(r, third)
        }
        OrgForm::University | OrgForm::Register => {
            format!("{}{brand}{}", c.short, pick(r, UNI_WORDS))
        }
        // Academy institutes are named after their city, as 中国科学院长春光学精密机械与物理研究所.
        OrgForm::Institute if r.random::<f64>() < 0.5 => {
            format!("中国科学院{}{}{brand}研究所", c.short, pick(r, FIELDS))
        }
        OrgForm::Institute => format!("{}{}{brand}研究院", c.short, pick(r, FIELDS)),
    }
}

/// A person's name: a surname and one or two given characters, kept inline (at most three
/// characters of three bytes) so that a record's applicants need no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersonName {
    bytes: [u8; 9],
    len: u8,
}

impl PersonName {
    pub fn as_str(&self) -> &str {
        // Built from whole `&str` characters only (`person_name`).
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or_default()
    }

    fn push(&mut self, part: &str) {
        let at = self.len as usize;
        self.bytes[at..at + part.len()].copy_from_slice(part.as_bytes());
        self.len += part.len() as u8;
    }
}

/// A person's name: surname and one or two given characters.
pub fn person_name(r: &mut ChaCha8Rng) -> PersonName {
    let mut name = PersonName {
        bytes: [0; 9],
        len: 0,
    };
    let parts = if r.random::<f64>() < 0.6 { 3 } else { 2 };
    name.push(pick::<&str>(r, SURNAMES));
    for _ in 1..parts {
        name.push(pick::<&str>(r, GIVEN));
    }
    name
}

/// The organisations of each city, as indices into `orgs`, in `orgs` order.
pub fn orgs_by_city(orgs: &[Org], n: usize) -> Vec<Vec<usize>> {
    let mut of_city: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (k, o) in orgs.iter().enumerate() {
        of_city[o.city].push(k);
    }
    of_city
}
