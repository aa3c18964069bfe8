//! Text as the gazetteer matches it: NFKC, whitespace removed, traditional forms of place
//! characters to simplified (the `TRADITIONAL` pairs), a leading postcode stripped; and the
//! words that follow a short name in a street or township name.
//!
//! Does not own: the tables (`load`) or the reading of names in a text (`matching`,
//! `organisation`). Imports only the leaf `model`.

use unicode_normalization::UnicodeNormalization;

use super::model::{Gazetteer, Level, Name};

/// Traditional forms of characters common in place names, addresses and organisation names,
/// paired with their simplified forms (hand-made, not exhaustive). A pair is left out when its
/// traditional character is itself written in a current place name (乾 in 乾安县).
pub(super) const TRADITIONAL: &str =
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
}

pub(super) fn nfkc(s: &str) -> String {
    s.nfkc().collect()
}

/// A name that only names county-level units by their short name (`滨江`, `城东`).
pub(super) fn is_county_short_only(name: &Name) -> bool {
    name.entries.iter().all(|e| e.level == Level::CountyShort)
}

/// An optional direction and a street word: `路`, `北路`, `大街`, `胡同`, `广场` ...
pub(super) fn starts_street(rest: &str) -> bool {
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
pub(super) fn starts_township(rest: &str) -> bool {
    ["街道", "镇", "乡", "村", "社区", "苏木", "嘎查"]
        .iter()
        .any(|w| rest.starts_with(w))
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
