//! The gazetteer's shared types: levels and entries of place names, the loaded `Gazetteer`,
//! what a text says about its place (`Located`), reusable buffers (`Scratch`) and where the
//! optional tables are (`Sources`), plus the gazetteer's plain accessors.
//!
//! Does not own: reading the tables (`load`), normalising text (`text`), matching addresses
//! (`matching`) or organisation names (`organisation`). A leaf: imports nothing from its siblings
//! or its parent.

use std::collections::{BTreeMap, HashMap};

use aho_corasick::AhoCorasick;
use rustc_hash::FxHashMap;

/// What a name can stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Level {
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
pub(super) const ORDER: [&[Level]; 6] = [
    &[Level::CountyFull],
    &[Level::OldCounty],
    &[Level::CountyGeneric],
    &[Level::PrefFull, Level::OldPref],
    &[Level::CountyShort],
    &[Level::PrefShort, Level::OldPrefShort],
];

/// County-level names shared by many prefectures that say nothing without a place before them,
/// and words of addresses that were once such names (唐山's 新区 until 2001).
pub(super) const GENERIC: [&str; 10] = [
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
pub(super) struct Entry {
    pub(super) level: Level,
    pub(super) unit: u16,
    /// Two-digit province code of the unit (`33` for Zhejiang).
    pub(super) province: u8,
}

#[derive(Debug, Clone)]
pub(super) struct Name {
    pub(super) text: String,
    pub(super) entries: Vec<Entry>,
    /// Without an administrative suffix (省/市/区/县/旗/州/盟): may start a street or township name.
    pub(super) short: bool,
    /// The province this name also names, if any (`吉林`, `海南`, `河南`).
    pub(super) province: Option<u8>,
    /// Also a (current or old) prefecture name: read as context when a county follows it.
    pub(super) prefecture: bool,
    /// Names a county-level unit (full, old or generic).
    pub(super) county: bool,
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
pub(super) struct Hit {
    pub(super) id: u32,
}

/// Reusable buffers for matching one text after another (one per worker thread).
#[derive(Default)]
pub struct Scratch {
    pub(super) text: String,
    pub(super) hits: Vec<Hit>,
    pub(super) cands: Vec<u16>,
    /// Per name with candidates: its index among the hits and the end of its candidates in
    /// `found_units` (flat, so that no name's candidates need a vector of their own).
    pub(super) found: Vec<(usize, usize)>,
    pub(super) found_units: Vec<u16>,
    /// Context from the left (`hard`, `soft`) and a filter's survivors (`kept`).
    pub(super) hard: Vec<u16>,
    pub(super) soft: Vec<u16>,
    pub(super) kept: Vec<u16>,
}

pub struct Gazetteer {
    /// Adcode of every unit: the city table's rows, then the province-administered groups.
    pub units: Vec<u32>,
    /// Units below this index are rows of the city table (in the panel).
    pub(super) n_cities: usize,
    /// Every name, leftmost-longest, its value the index into `names`. A character-wise
    /// double-array automaton: on 10M addresses `locate` took about 1.2 s less CPU than with
    /// aho-corasick's byte-wise NFA (whose search was a fifth of the stage); aho-corasick's DFA,
    /// its table too large for the cache, was no faster than the NFA.
    pub(super) matcher: daachorse::CharwiseDoubleArrayAhoCorasick<u32>,
    pub(super) names: Vec<Name>,
    /// (old county name id, unit of the prefecture it was in then) -> unit it is in now; Fx
    /// hashing because it is looked up for every name with a prefecture before it.
    pub(super) history: FxHashMap<(u32, u16), u16>,
    /// Provincial capital (or the municipality) of each two-digit province code.
    pub(super) capitals: BTreeMap<u8, u16>,
    /// Institution names (NFKC), anchored at the start of an applicant's name, longest first.
    pub(super) register: Option<AhoCorasick>,
    pub(super) register_units: Vec<u16>,
    /// Traditional characters of place names and their simplified forms; a bitset over
    /// U+4E00..U+9FFF says which characters to look up.
    pub(super) traditional: HashMap<char, char>,
    pub(super) traditional_bits: Vec<u64>,
}

/// Where the gazetteer's optional tables are (paths relative to the project root).
#[derive(Debug, Clone, Default)]
pub struct Sources<'a> {
    pub counties: Option<&'a str>,
    pub history: Option<&'a str>,
    pub institutions: Option<&'a str>,
}

impl Gazetteer {
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
}
