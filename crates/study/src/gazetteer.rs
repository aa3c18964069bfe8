//! The gazetteer and the place matcher of `locate` (docs/data.md, "Place matching").
//!
//! Owns: loading the county table, the old names and the institution register (`data/`) beside
//! the city table, normalising a text for matching (NFKC, whitespace, traditional forms of place
//! characters, a leading postcode), and reading an address or an organisation's name as a person
//! does: the most specific unit named wins, street and township names are not places, context
//! comes from the left, ambiguity abstains. Deliberately does not own: the city table (`places`),
//! the order of the assignment steps or the name dictionary (`locate`).
//!
//! A unit is an index: `0..n` are the rows of the city table (`Cities::rows`, same order), then
//! the province-administered groups (`419000`, `429000`, `469000`, `659000`): located, but outside
//! the panel.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use aho_corasick::{AhoCorasick, Anchored, Input, MatchKind, StartKind};
use unicode_normalization::UnicodeNormalization;

use crate::places::{city_short, Cities};
use repro_kind::diag::Diagnostic;
use repro_tabular::table as tabular;

/// What a name can stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    /// A province (full or short name); a municipality's name is also a prefecture.
    Province,
    /// A prefecture's full name (`杭州市`, `凉山彝族自治州`).
    PrefFull,
    /// A prefecture's short name (`杭州`, `凉山`).
    PrefShort,
    /// An old prefecture name that maps to one current prefecture (`襄樊市`).
    OldPref,
    /// Its short form (`襄樊`).
    OldPrefShort,
    /// An old prefecture whose counties went to several prefectures (`巢湖地区`, `南宁地区`):
    /// context for its counties, never a decision by itself.
    OldPrefSplit,
    /// A county-level unit's full name, or a functional zone's (`昆山市`, `苏州工业园区`).
    CountyFull,
    /// 城区, 郊区, 矿区, 东区, 西区, 市中区: only with a province or prefecture before them.
    CountyGeneric,
    /// A county-level unit's short name (`昆山`, `海淀`).
    CountyShort,
    /// An old county-level name (`居巢区`, `崇文区`).
    OldCounty,
}

/// The levels in the order they decide (docs/data.md, rule 7): the first level with a candidate
/// consistent with the context decides.
const ORDER: [&[Level]; 6] = [
    &[Level::CountyFull],
    &[Level::OldCounty],
    &[Level::CountyGeneric],
    &[Level::PrefFull, Level::OldPref],
    &[Level::CountyShort],
    &[Level::PrefShort, Level::OldPrefShort],
];

/// County-level names shared by many prefectures that say nothing without a place before them,
/// and words of addresses that were once such names (唐山's 新区 until 2001).
const GENERIC: [&str; 10] = [
    "城区",
    "郊区",
    "矿区",
    "东区",
    "西区",
    "市中区",
    "新区",
    "市辖区",
    "开发区",
    "高新区",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    level: Level,
    unit: u16,
    /// Two-digit province code of the unit (`33` for Zhejiang).
    province: u8,
}

#[derive(Debug, Clone)]
struct Name {
    text: String,
    entries: Vec<Entry>,
    /// Without an administrative suffix (省/市/区/县/旗/州/盟): may start a street or township name.
    short: bool,
    /// The province this name also names, if any (`吉林`, `海南`, `河南`).
    province: Option<u8>,
    /// Also a (current or old) prefecture name: read as context when a county follows it.
    prefecture: bool,
    /// Names a county-level unit (full, old or generic).
    county: bool,
}

/// What a text says about its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Located {
    /// A unit (index into `Gazetteer::units`).
    Unit(u16),
    /// The deciding level had several candidates and none of its names was unique: abstained.
    /// The id of the leftmost such name (`Gazetteer::name_text`).
    Ambiguous(u32),
    /// No place name, or none consistent with the rest of the text.
    Nothing,
}

impl Located {
    pub fn unit(self) -> Option<u16> {
        match self {
            Located::Unit(u) => Some(u),
            _ => None,
        }
    }
}

/// A name found in a text (its id), in the order of the text.
#[derive(Debug, Clone, Copy)]
struct Hit {
    id: u32,
}

/// Reusable buffers for matching one text after another (one per worker thread).
#[derive(Default)]
pub struct Scratch {
    text: String,
    hits: Vec<Hit>,
    cands: Vec<u16>,
    found: Vec<(usize, Vec<u16>)>,
}

pub struct Gazetteer {
    /// Adcode of every unit: the city table's rows, then the province-administered groups.
    pub units: Vec<u32>,
    /// Units below this index are rows of the city table (in the panel).
    n_cities: usize,
    matcher: AhoCorasick,
    names: Vec<Name>,
    /// (old county name id, unit of the prefecture it was in then) -> unit it is in now.
    history: HashMap<(u32, u16), u16>,
    /// Provincial capital (or the municipality) of each two-digit province code.
    capitals: BTreeMap<u8, u16>,
    /// Institution names (NFKC), anchored at the start of an applicant's name, longest first.
    register: Option<AhoCorasick>,
    register_units: Vec<u16>,
    /// Traditional characters of place names and their simplified forms; a bitset over
    /// U+4E00..U+9FFF says which characters to look up.
    traditional: HashMap<char, char>,
    traditional_bits: Vec<u64>,
}

/// Where the gazetteer's optional tables are (paths relative to the project root).
#[derive(Debug, Clone, Default)]
pub struct Sources<'a> {
    pub counties: Option<&'a str>,
    pub history: Option<&'a str>,
    pub institutions: Option<&'a str>,
}

/// Traditional forms of characters common in place names, addresses and organisation names,
/// paired with their simplified forms (hand-made, not exhaustive). A pair is left out when its
/// traditional character is itself written in a current place name (乾 in 乾安县).
const TRADITIONAL: &str =
    "廣广東东蘇苏門门灣湾國国陽阳縣县區区鄉乡鎮镇黃黄長长島岛龍龙興兴華华寧宁遼辽\
雲云貴贵陝陕蘭兰烏乌魯鲁齊齐濟济漢汉鄭郑開开張张楊杨劉刘臺台遠远銀银錫锡鐵铁嶺岭陰阴豐丰慶庆\
廈厦順顺雙双關关滬沪園园莊庄橋桥溝沟號号樓楼廠厂學学醫医農农業业電电機机術术環环際际發发質质\
紹绍溫温麗丽饒饶贛赣鷹鹰婁娄懷怀匯汇滙汇灘滩潛潜澤泽澗涧濱滨瀋沈盧卢蘆芦葉叶廬庐歸归巖岩嶽岳\
崗岗峽峡衛卫連连進进達达遷迁邊边郵邮鄰邻鄖郧鄲郸閩闽閔闵陸陆隴陇雞鸡靈灵韓韩頭头領领馬马駐驻\
驛驿魚鱼鳳凤鶴鹤麥麦龜龟塢坞壩坝壽寿夾夹寶宝將将專专岡冈嶗崂崑昆巒峦帶带廟庙彎弯從从徠徕撫抚\
晉晋會会棗枣榮荣樂乐標标權权橫横欽钦淶涞淺浅湯汤溈沩滄沧滿满潁颍濰潍瀘泸瀏浏瀾澜灃沣無无為为\
煙烟營营爾尔獅狮瑪玛畢毕當当盤盘礦矿祿禄禮礼種种穀谷窯窑築筑紅红紀纪納纳紡纺絳绛綏绥維维綿绵\
縉缙總总義义聖圣聯联肅肃臨临舊旧萊莱萬万蒼苍蓋盖蔣蒋蕪芜薊蓟藍蓝蘄蕲觀观設设誠诚諸诸譙谯貝贝\
資资賀贺趙赵車车軍军輝辉輪轮運运遊游過过郟郏鄒邹鄧邓釐厘鋼钢錦锦鍾钟鐘钟間间閣阁陳陈隨随雜杂\
靜静須须額额風风飛飞館馆駝驼騰腾體体鹽盐鹹咸龐庞廳厅團团樹树藝艺薩萨滎荥鞏巩澠渑堯尧穎颖\
渦涡碭砀蕭萧餘余";

impl Gazetteer {
    /// Builds the gazetteer from the city table and the optional tables under `root`. Without
    /// them, only province and prefecture names are known.
    // Rows are read across several columns at once, by index.
    #[allow(clippy::needless_range_loop)]
    pub fn load(
        root: &Path,
        cities: &Cities,
        sources: &Sources<'_>,
    ) -> Result<Gazetteer, Diagnostic> {
        let mut units: Vec<u32> = cities.rows.iter().map(|c| c.adcode).collect();
        let n_cities = units.len();
        let mut unit_of: HashMap<u32, u16> = units
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, i as u16))
            .collect();
        let mut names: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
        let add = |names: &mut BTreeMap<String, Vec<Entry>>, name: &str, e: Entry| {
            let v = names.entry(nfkc(name)).or_default();
            if !v.contains(&e) {
                v.push(e);
            }
        };
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

        let read = |rel: &str, columns: &[&str]| -> Result<Vec<Vec<String>>, Diagnostic> {
            let df = tabular::read(root, rel)?;
            columns
                .iter()
                .map(|c| {
                    Ok(tabular::texts(&df, rel, c)?
                        .into_iter()
                        .map(|s| s.unwrap_or_default().trim().to_string())
                        .collect())
                })
                .collect()
        };
        let code = |rel: &str, row: usize, s: &str| -> Result<u32, Diagnostic> {
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
        };

        if let Some(rel) = sources.counties {
            let cols = read(
                rel,
                &["adcode6", "name", "short_name", "kind", "prefecture_adcode"],
            )?;
            for row in 0..cols[0].len() {
                let pref = code(rel, row, &cols[4][row])?;
                let unit = match unit_of.get(&pref) {
                    Some(&u) => u,
                    None if pref % 10_000 == 9_000 => {
                        // A province-administered group: located, outside the panel.
                        let u = units.len() as u16;
                        units.push(pref);
                        unit_of.insert(pref, u);
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
                    add(&mut names, name, e(Level::CountyGeneric));
                    continue;
                }
                add(&mut names, name, e(Level::CountyFull));
                if short != name && short.chars().count() >= 2 && !GENERIC.contains(&short.as_str())
                {
                    add(&mut names, short, e(Level::CountyShort));
                }
            }
        }

        // (old county name, prefecture it was in then, unit it is in now).
        let mut history_rows: Vec<(String, u16, u16)> = Vec::new();
        if let Some(rel) = sources.history {
            let cols = read(
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
            let e_unit = |level, unit, province| Entry {
                level,
                unit,
                province,
            };
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
                let Some(&unit) = unit_of.get(&new) else {
                    return Err(Diagnostic::new(format!(
                        "`{rel}`, data row {}: `{new}` is not in the city or county table",
                        row + 1
                    )));
                };
                let province = (code(rel, row, &cols[3][row])? / 10_000) as u8;
                let e = |level| Entry {
                    level,
                    unit,
                    province,
                };
                let (old, short) = (&cols[0][row], &cols[1][row]);
                if cols[2][row] == "prefecture" {
                    prefecture_now.entry(old.clone()).or_insert(unit);
                    let change = &cols[6][row];
                    if change.starts_with("abolished") || change.starts_with("renamed_and_split") {
                        // Context for every prefecture its counties went to
                        // (`abolished (counties to: 合肥市 2; 芜湖市 1; 马鞍山市 2)`).
                        add(&mut names, old, e(Level::OldPrefSplit));
                        for dest in split_destinations(change) {
                            if let Some(i) = cities.rows.iter().position(|c| c.name == dest) {
                                add(
                                    &mut names,
                                    old,
                                    e_unit(Level::OldPrefSplit, i as u16, province),
                                );
                            }
                        }
                    } else {
                        add(&mut names, old, e(Level::OldPref));
                        if short != old && short.chars().count() >= 2 {
                            add(&mut names, short, e(Level::OldPrefShort));
                        }
                    }
                } else {
                    county_rows.push((old.clone(), cols[4][row].clone(), unit));
                    if short != old && short.chars().count() >= 2 {
                        county_rows.push((short.clone(), cols[4][row].clone(), unit));
                    }
                    if !GENERIC.contains(&old.as_str()) {
                        let last = cols[7][row].parse::<u32>().unwrap_or(0);
                        old_counties.push((old.clone(), province, last, e(Level::OldCounty)));
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
                    add(&mut names, name, *e);
                }
            }
            history_rows = county_rows
                .into_iter()
                .filter_map(|(old, then, now)| Some((old, *prefecture_now.get(&then)?, now)))
                .collect();
        }

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

        let names: Vec<Name> = names
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
            .collect();
        let id_of: HashMap<&str, u32> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.text.as_str(), i as u32))
            .collect();
        let mut history = HashMap::new();
        for (old, then, now) in &history_rows {
            if let Some(&id) = id_of.get(nfkc(old).as_str()) {
                history.insert((id, *then), *now);
            }
        }
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .start_kind(StartKind::Unanchored)
            .build(names.iter().map(|n| n.text.as_str()))
            .map_err(|e| {
                Diagnostic::new("cannot build the place-name matcher").cause(e.to_string())
            })?;

        let (register, register_units) = match sources.institutions {
            None => (None, Vec::new()),
            Some(rel) => {
                let cols = read(rel, &["name", "prefecture_adcode"])?;
                let mut by_name: BTreeMap<String, u16> = BTreeMap::new();
                for row in 0..cols[0].len() {
                    let c = code(rel, row, &cols[1][row])?;
                    let Some(&unit) = unit_of.get(&c) else {
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
                (Some(ac), units)
            }
        };

        // Traditional forms, except characters that a place or institution name uses as is.
        let mut used: BTreeSet<char> = names.iter().flat_map(|n| n.text.chars()).collect();
        if let Some(rel) = sources.institutions {
            used.extend(read(rel, &["name"])?[0].iter().flat_map(|s| s.chars()));
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

        Ok(Gazetteer {
            units,
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

    /// Whether a unit is a row of the city table (else a province-administered group).
    pub fn in_panel(&self, unit: u16) -> bool {
        usize::from(unit) < self.n_cities
    }

    /// The text of a name id (from `Located::Ambiguous`).
    pub fn name_text(&self, id: u32) -> &str {
        &self.names[id as usize].text
    }

    /// Number of names the matcher knows.
    pub fn name_count(&self) -> usize {
        self.names.len()
    }

    /// Number of institutions in the register.
    pub fn register_len(&self) -> usize {
        self.register_units.len()
    }

    /// The text as matched: NFKC (full-width forms, compatibility ideographs, Kangxi radicals),
    /// traditional place characters to simplified, whitespace removed. Borrows when there is
    /// nothing to change (ASCII and unified ideographs that are not traditional forms).
    pub fn normalize<'a>(&self, text: &'a str, buf: &'a mut String) -> &'a str {
        let plain = text.chars().all(|c| {
            (c.is_ascii() && !c.is_ascii_whitespace())
                || (('\u{4E00}'..='\u{9FFF}').contains(&c) && !self.is_traditional(c))
        });
        if plain {
            return text;
        }
        buf.clear();
        for c in text.nfkc() {
            if c.is_whitespace() {
                continue;
            }
            let c = if ('\u{4E00}'..='\u{9FFF}').contains(&c) && self.is_traditional(c) {
                self.traditional[&c]
            } else {
                c
            };
            buf.push(c);
        }
        buf
    }

    fn is_traditional(&self, c: char) -> bool {
        let k = c as usize - 0x4E00;
        self.traditional_bits[k / 64] >> (k % 64) & 1 == 1
    }

    /// The place an address names.
    pub fn locate_address(&self, address: &str, s: &mut Scratch) -> Located {
        let mut buf = std::mem::take(&mut s.text);
        let t = self.normalize(address, &mut buf);
        let t = strip_postcode(t);
        let out = self.decide(t, s);
        s.text = buf;
        out
    }

    /// The register's prefecture for an organisation whose name starts with an institution's
    /// name, unless a place named after it says otherwise (`山东大学威海分校` -> 威海).
    pub fn locate_register(&self, name: &str, s: &mut Scratch) -> Option<u16> {
        let register = self.register.as_ref()?;
        let mut buf = std::mem::take(&mut s.text);
        let t = strip_postcode(self.normalize(name, &mut buf));
        let found = register
            .find(Input::new(t).anchored(Anchored::Yes))
            .map(|m| {
                let rest = &t[m.end()..];
                let after = if rest.is_empty() {
                    None
                } else {
                    self.decide(rest, s).unit()
                };
                after.unwrap_or(self.register_units[m.pattern().as_usize()])
            });
        s.text = buf;
        found
    }

    /// The place an organisation's name points to: the most specific place it names; failing
    /// that, a university or public institute named after a province only is at the provincial
    /// capital (`山西大学`). Companies named after a province only are not guessed.
    pub fn locate_name(&self, name: &str, s: &mut Scratch) -> Located {
        let mut buf = std::mem::take(&mut s.text);
        let t = strip_postcode(self.normalize(name, &mut buf));
        let mut out = self.decide(t, s);
        if out == Located::Nothing && is_public_institution(t) {
            let mut provinces = s
                .hits
                .iter()
                .filter_map(|h| self.names[h.id as usize].province);
            if let Some(p) = provinces.next() {
                if provinces.all(|q| q == p) {
                    if let Some(&u) = self.capitals.get(&p) {
                        out = Located::Unit(u);
                    }
                }
            }
        }
        s.text = buf;
        out
    }

    /// Names in the text, longest at each position, left to right; a short name that begins a
    /// street, road or township name is no place (`天河北路`, `上海路`, `河北街道`).
    fn scan(&self, t: &str, hits: &mut Vec<Hit>) {
        hits.clear();
        let mut at = 0;
        while at < t.len() {
            let Some(m) = self.matcher.find(Input::new(t).range(at..)) else {
                break;
            };
            let id = m.pattern().as_usize();
            let name = &self.names[id];
            let rest = &t[m.end()..];
            let dropped = name.short
                && (starts_street(rest)
                    || starts_township(rest)
                    || (rest.starts_with("新区") && is_county_short_only(name)));
            if dropped {
                at = m.start() + t[m.start()..].chars().next().map_or(1, char::len_utf8);
                continue;
            }
            hits.push(Hit { id: id as u32 });
            at = m.end();
        }
    }

    /// Rules 6 to 9 of docs/data.md over the names found in `t`.
    fn decide(&self, t: &str, s: &mut Scratch) -> Located {
        let mut hits = std::mem::take(&mut s.hits);
        self.scan(t, &mut hits);
        let out = self.decide_hits(&hits, s);
        s.hits = hits;
        out
    }

    fn decide_hits(&self, hits: &[Hit], s: &mut Scratch) -> Located {
        if hits.is_empty() {
            return Located::Nothing;
        }
        let province_of = |u: u16| (self.units[usize::from(u)] / 10_000) as u8;
        let mut found = std::mem::take(&mut s.found);
        let mut out = Located::Nothing;
        for (g, levels) in ORDER.iter().enumerate() {
            let county_level = g != 3 && g != 5;
            found.clear();
            for (k, hit) in hits.iter().enumerate() {
                let name = &self.names[hit.id as usize];
                // A name that is both a prefecture and a county (巢湖市, 嘉峪关市) followed by a
                // county-level name is the prefecture of that county.
                if g <= 1
                    && name.prefecture
                    && hits[k + 1..]
                        .iter()
                        .any(|h| self.names[h.id as usize].county)
                {
                    continue;
                }
                // Context from the left: provinces, full prefecture names (hard), short
                // prefecture names (soft).
                let before = &hits[..k];
                let provinces = |p: u8| {
                    before.iter().any(|h| {
                        self.names[h.id as usize]
                            .entries
                            .iter()
                            .any(|e| e.level == Level::Province && e.province == p)
                    })
                };
                let any_province = before
                    .iter()
                    .any(|h| self.names[h.id as usize].province.is_some());
                let mut hard: Vec<u16> = Vec::new();
                let mut soft: Vec<u16> = Vec::new();
                for h in before {
                    for e in &self.names[h.id as usize].entries {
                        match e.level {
                            Level::PrefFull | Level::OldPref | Level::OldPrefSplit => {
                                hard.push(e.unit)
                            }
                            Level::PrefShort | Level::OldPrefShort => soft.push(e.unit),
                            _ => {}
                        }
                    }
                }
                let cands = &mut s.cands;
                cands.clear();
                for e in &name.entries {
                    if !levels.contains(&e.level) {
                        continue;
                    }
                    // A short name that is also a province's (海南, 河南, 河北) names a place of
                    // another province only when that province is named before it.
                    if let Some(p) = name.province {
                        if matches!(e.level, Level::PrefShort | Level::CountyShort)
                            && e.province != p
                            && !provinces(e.province)
                        {
                            continue;
                        }
                    }
                    if !cands.contains(&e.unit) {
                        cands.push(e.unit);
                    }
                }
                if cands.is_empty() {
                    continue;
                }
                if !hard.is_empty() {
                    let mut kept: Vec<u16> =
                        cands.iter().copied().filter(|c| hard.contains(c)).collect();
                    for p in &hard {
                        if let Some(&now) = self.history.get(&(hit.id, *p)) {
                            if !kept.contains(&now) {
                                kept.push(now);
                            }
                        }
                    }
                    if !kept.is_empty() {
                        *cands = kept;
                    } else if county_level || g == 5 {
                        continue;
                    }
                }
                if any_province {
                    let kept: Vec<u16> = cands
                        .iter()
                        .copied()
                        .filter(|&c| provinces(province_of(c)))
                        .collect();
                    if !kept.is_empty() {
                        *cands = kept;
                    } else if g != 3 {
                        continue;
                    }
                }
                if g == 2 && hard.is_empty() && !any_province {
                    continue;
                }
                if !soft.is_empty() {
                    let kept: Vec<u16> =
                        cands.iter().copied().filter(|c| soft.contains(c)).collect();
                    if !kept.is_empty() {
                        *cands = kept;
                    }
                }
                found.push((k, cands.clone()));
            }
            if found.is_empty() {
                continue;
            }
            let first = found[0].1[0];
            out = if found.iter().all(|(_, c)| c.iter().all(|&u| u == first)) {
                Located::Unit(first)
            } else if let Some((_, c)) = found.iter().find(|(_, c)| c.len() == 1) {
                Located::Unit(c[0])
            } else {
                Located::Ambiguous(hits[found[0].0].id)
            };
            break;
        }
        s.found = found;
        out
    }
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

fn nfkc(s: &str) -> String {
    s.nfkc().collect()
}

/// A name that only names county-level units by their short name (`滨江`, `城东`).
fn is_county_short_only(name: &Name) -> bool {
    name.entries.iter().all(|e| e.level == Level::CountyShort)
}

/// An optional direction and a street word: `路`, `北路`, `大街`, `胡同`, `广场` ...
fn starts_street(rest: &str) -> bool {
    let rest = ['东', '西', '南', '北', '中']
        .iter()
        .find_map(|d| rest.strip_prefix(*d))
        .unwrap_or(rest);
    [
        "路", "街", "大街", "大道", "道", "巷", "弄", "胡同", "桥", "广场",
    ]
    .iter()
    .any(|w| rest.starts_with(w))
}

/// A township word: `街道`, `镇`, `乡`, `村`, `社区`, `苏木`, `嘎查`.
fn starts_township(rest: &str) -> bool {
    ["街道", "镇", "乡", "村", "社区", "苏木", "嘎查"]
        .iter()
        .any(|w| rest.starts_with(w))
}

/// Names a university, college, research institute, academy or hospital, and not a company.
fn is_public_institution(t: &str) -> bool {
    ["大学", "学院", "研究院", "研究所", "科学院", "医院"]
        .iter()
        .any(|w| t.contains(w))
        && !t.contains("公司")
}

/// A text without a 6-digit postcode at its start (`100084北京市海淀区` -> `北京市海淀区`).
pub fn strip_postcode(t: &str) -> &str {
    match leading_postcode(t) {
        Some(p) => t[p.len()..].trim_start_matches([',', ';', ':', '-']),
        None => t,
    }
}

/// The 6-digit postcode a text starts with, or that follows a name and a comma
/// (`清华大学,100084`), if any.
pub fn postcode_in(t: &str) -> Option<&str> {
    let t = t.trim_start();
    if let Some(p) = leading_postcode(t) {
        return Some(p);
    }
    t.match_indices([',', '，'])
        .find_map(|(i, sep)| leading_postcode(t[i + sep.len()..].trim_start()))
}

fn leading_postcode(t: &str) -> Option<&str> {
    let b = t.as_bytes();
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    (digits == 6).then(|| &t[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn gazetteer() -> (Cities, Gazetteer) {
        let root = root();
        let cities = Cities::load(&root.join("data/cities.csv")).unwrap();
        let g = Gazetteer::load(
            &root,
            &cities,
            &Sources {
                counties: Some("data/counties.csv"),
                history: Some("data/place_history.csv"),
                institutions: Some("data/institutions.csv"),
            },
        )
        .unwrap();
        (cities, g)
    }

    #[test]
    fn postcodes() {
        assert_eq!(postcode_in("100084 北京市海淀区"), Some("100084"));
        assert_eq!(postcode_in("清华大学，100084"), Some("100084"));
        assert_eq!(postcode_in("北京市海淀区1000845号"), None);
        assert_eq!(strip_postcode("100084北京市"), "北京市");
        assert_eq!(strip_postcode("1000845北京市"), "1000845北京市");
    }

    /// The adcode an address (or, with `org`, an organisation's name) is located in.
    fn code(g: &Gazetteer, text: &str, org: bool) -> Option<u32> {
        let mut s = Scratch::default();
        let unit = if org {
            g.locate_register(text, &mut s)
                .or_else(|| g.locate_name(text, &mut s).unit())
        } else {
            g.locate_address(text, &mut s).unit()
        };
        unit.map(|u| g.units[usize::from(u)])
    }

    #[test]
    fn the_issue_examples_and_the_plan_examples() {
        let (_, g) = gazetteer();
        let addresses: &[(&str, Option<u32>)] = &[
            // Issue 13's failures.
            ("日照市经济开发区上海路556号", Some(371100)),
            ("北海市重庆路16号", Some(450500)),
            ("广州市天河区天河北路28号", Some(440100)),
            ("苏州工业园区星湖街328号", Some(320500)),
            (
                "新疆维吾尔自治区伊犁哈萨克自治州塔城地区额敏县",
                Some(654200),
            ),
            ("100084 北京市海淀区清华园1号", Some(110000)),
            // docs/places-plan.md's examples.
            ("昆山市花桥镇", Some(320500)),
            ("江苏太仓市城厢镇", Some(320500)),
            ("海淀区中关村东路", Some(110000)),
            ("浦东新区张江", Some(310000)),
            ("上海市黄浦区南京东路100号", Some(310000)),
            ("南京市雨花区小行路58号名城世家花园", Some(320100)),
            ("成都高新区天府大道中段530号", Some(510100)),
            ("襄樊市", Some(420600)),
            ("湖北省襄樊市樊城区", Some(420600)),
            ("巢湖市", Some(340100)),
            ("那曲地区", Some(540600)),
            ("莱芜市", Some(370100)),
            ("莱芜市钢城区", Some(370100)),
            ("吉林省四平市公主岭市", Some(220100)),
            ("河北省邢台市桥东区", Some(130500)),
            ("新疆伊宁市上海城", Some(654000)),
            ("天门市胡市镇河南新村", Some(429000)),
            ("海州区河北街道", None),
            ("四川成都高新区北京万商天勤(成都)律师事务所", Some(510100)),
            // Normalisation: full-width, traditional forms, spaces.
            ("廣東省廣州市天河區", Some(440100)),
            ("ＳＺ 深圳市 南山区", Some(440300)),
        ];
        for (text, want) in addresses {
            assert_eq!(code(&g, text, false), *want, "address {text}");
        }
        let orgs: &[(&str, Option<u32>)] = &[
            ("吉林大学", Some(220100)),
            ("山西大同大学", Some(140200)),
            ("中山大学", Some(440100)),
            ("山东大学威海分校", Some(371000)),
            ("吉林大学第一医院", Some(220100)),
            ("中国矿业大学（北京）", Some(110000)),
            ("中国科学院长春光学精密机械与物理研究所", Some(220100)),
            ("江苏恒瑞医药股份有限公司", None),
            ("山西省农业科学院", Some(140100)),
            ("杭州华信科技有限公司", Some(330100)),
            ("昆山华信科技有限公司", Some(320500)),
        ];
        for (text, want) in orgs {
            assert_eq!(code(&g, text, true), *want, "organisation {text}");
        }
        // Without the register, the city in the name still beats the province (rule 7).
        let mut s = Scratch::default();
        let datong = g.locate_name("山西大同大学", &mut s).unit();
        assert_eq!(datong.map(|u| g.units[usize::from(u)]), Some(140200));
        // Ambiguity is reported with the name that caused it.
        assert_eq!(
            g.locate_address("鼓楼区中山路1号", &mut s),
            Located::Ambiguous(g.names.iter().position(|n| n.text == "鼓楼区").unwrap() as u32)
        );
    }

    /// The evaluation set's rows (`tests/fixtures/places/eval.csv`): id, text, form, expected.
    pub(crate) fn eval_rows() -> Vec<(usize, String, String, u32)> {
        let root = root();
        let rel = "tests/fixtures/places/eval.csv";
        let df = tabular::read(&root, rel).unwrap();
        let col = |c: &str| tabular::texts(&df, rel, c).unwrap();
        let (ids, texts, forms, codes) =
            (col("id"), col("text"), col("form"), col("expected_adcode"));
        (0..ids.len())
            .map(|i| {
                (
                    ids[i].as_deref().unwrap().parse().unwrap(),
                    texts[i].clone().unwrap_or_default(),
                    forms[i].clone().unwrap(),
                    codes[i].as_deref().unwrap().parse::<f64>().unwrap() as u32,
                )
            })
            .collect()
    }

    /// Development aid: the matcher on the evaluation set's even rows (`REPRO_EVAL=even`), odd
    /// rows (`odd`) or all (`all`); prints the table by form and, with `REPRO_EVAL_SHOW=1`, the
    /// misses.
    /// Run with `cargo test --release -p repro-study eval_by_form -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn eval_by_form() {
        let (cities, mut g) = gazetteer();
        // `REPRO_EVAL_NO_REGISTER=1`: the name heuristics alone on the organisation rows.
        if std::env::var("REPRO_EVAL_NO_REGISTER").is_ok() {
            let sources = Sources {
                counties: Some("data/counties.csv"),
                history: Some("data/place_history.csv"),
                institutions: None,
            };
            g = Gazetteer::load(&root(), &cities, &sources).unwrap();
        }
        let which = std::env::var("REPRO_EVAL").unwrap_or_else(|_| "even".into());
        let show = std::env::var("REPRO_EVAL_SHOW").is_ok();
        let mut s = Scratch::default();
        let mut table: BTreeMap<String, [usize; 4]> = BTreeMap::new();
        for (id, text, form, want) in eval_rows() {
            let keep = match which.as_str() {
                "even" => id % 2 == 0,
                "odd" => id % 2 == 1,
                _ => true,
            };
            if !keep {
                continue;
            }
            let got = if form == "organisation" {
                g.locate_register(&text, &mut s)
                    .map(Located::Unit)
                    .unwrap_or_else(|| g.locate_name(&text, &mut s))
            } else {
                g.locate_address(&text, &mut s)
            };
            let code = got.unit().map(|u| g.units[usize::from(u)]);
            let slot = match code {
                Some(c) if c == want => 1,
                Some(_) => 2,
                None => 3,
            };
            for key in [form.clone(), "all".to_string()] {
                let row = table.entry(key).or_default();
                row[0] += 1;
                row[slot] += 1;
            }
            if show && slot != 1 {
                let why = match got {
                    Located::Ambiguous(n) => format!("ambiguous {}", g.name_text(n)),
                    _ => String::new(),
                };
                println!("MISS {id} {form} {text} want {want} got {code:?} {why}");
            }
        }
        println!("{which} rows: form, rows, right %, wrong %, unresolved %");
        for (form, [n, right, wrong, none]) in &table {
            let pct = |k: usize| 100.0 * k as f64 / *n as f64;
            println!(
                "{form:14}{n:>6}{:>8.1}{:>8.1}{:>8.1}",
                pct(*right),
                pct(*wrong),
                pct(*none)
            );
        }
    }
}
