//! The applicants: every city's organisations (firms, universities, institutes) with unique
//! names, people's names and the foreign applicants.
//!
//! Owns: the word lists names are made of, building each city's organisations (a placed name
//! carries its city and is checked with the place matcher `locate` uses) and drawing a person's
//! name. Deliberately does not own: who applies with whom (`records`) or how a name is written
//! into the export (`export`).

use std::collections::HashSet;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::cities::CityDraw;
use super::draw::{pick, stream};
use crate::places::{Cities, City, PlaceIndex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrgKind {
    Firm,
    University,
    Institute,
}

/// An organisation that applies for patents.
#[derive(Debug, Clone)]
pub struct Org {
    pub name: String,
    pub city: usize,
    /// Its name carries its city (a place-name match finds it).
    pub placed: bool,
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

/// Builds every city's organisations with globally unique names. A placed name must be found by
/// the same place matcher `locate` uses, and an unplaced one must not be; names are redrawn until
/// that holds, so the truth files agree with what the pipeline can know.
pub fn build_orgs(seed: u64, cities: &Cities, draws: &[CityDraw], places: &PlaceIndex) -> Vec<Org> {
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

/// A person's name: surname and one or two given characters.
pub fn person_name(r: &mut ChaCha8Rng) -> String {
    if r.random::<f64>() < 0.6 {
        format!("{}{}{}", pick(r, SURNAMES), pick(r, GIVEN), pick(r, GIVEN))
    } else {
        format!("{}{}", pick(r, SURNAMES), pick(r, GIVEN))
    }
}

/// The organisations of each city, as indices into `orgs`, in `orgs` order.
pub fn orgs_by_city(orgs: &[Org], n: usize) -> Vec<Vec<usize>> {
    let mut of_city: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (k, o) in orgs.iter().enumerate() {
        of_city[o.city].push(k);
    }
    of_city
}
