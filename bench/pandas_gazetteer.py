"""repro's place matcher (the `locate` stage's gazetteer) ported to Python for bench/pandas_index.py.

A line-by-line port of crates/study/src/places.rs (short names) and crates/study/src/gazetteer/
(`load.rs`: the tables and the name list; `text.rs`: normalisation, postcodes, street and
township words; `matching.rs`: reading an address; `organisation.rs`: the register and
organisation names), with the Rust function names in the comments so that a reviewer can check
the rules one by one against docs/data.md, "Place matching". Matching is plain Python, meant to
run once per distinct string (the caller factorises); the tables are read with pandas.

Units are indices as in Rust: `0..n` are the rows of the city table sorted by adcode, then the
province-administered groups (`419000`, `429000`, `469000`, `659000`) in the order the county
table first names them; they are located but outside the panel.
"""

import unicodedata

import pandas as pd

# Levels (gazetteer/model.rs `Level`), in the enum's order.
PROVINCE, PREF_FULL, PREF_SHORT, OLD_PREF, OLD_PREF_SHORT, OLD_PREF_SPLIT, COUNTY_FULL, \
    COUNTY_GENERIC, COUNTY_SHORT, OLD_COUNTY = range(10)

# model.rs `ORDER`: the levels in the order they decide (docs/data.md, rule 6).
ORDER = [(COUNTY_FULL,), (OLD_COUNTY,), (COUNTY_GENERIC,), (PREF_FULL, OLD_PREF), (COUNTY_SHORT,),
         (PREF_SHORT, OLD_PREF_SHORT)]

# model.rs `GENERIC`.
GENERIC = {"城区", "郊区", "矿区", "东区", "西区", "市中区", "新区", "市辖区", "开发区", "高新区"}

# places.rs `ETHNIC_MARKERS`.
ETHNIC_MARKERS = ["朝鲜族", "土家族", "布依族", "哈尼族", "景颇族", "傈僳族", "柯尔克孜", "哈萨克",
                  "蒙古", "彝族", "藏族", "苗族", "侗族", "壮族", "傣族", "白族", "回族"]

# text.rs `TRADITIONAL`: traditional forms and their simplified forms, in pairs (copied as is;
# bench/pandas_index_check.py checks the copy against the Rust source).
TRADITIONAL = (
    "廣广東东蘇苏門门灣湾國国陽阳縣县區区鄉乡鎮镇黃黄長长島岛龍龙興兴華华寧宁遼辽"
    "雲云貴贵陝陕蘭兰烏乌魯鲁齊齐濟济漢汉鄭郑開开張张楊杨劉刘臺台遠远銀银錫锡鐵铁嶺岭陰阴豐丰慶庆"
    "廈厦順顺雙双關关滬沪園园莊庄橋桥溝沟號号樓楼廠厂學学醫医農农業业電电機机術术環环際际發发質质"
    "紹绍溫温麗丽饒饶贛赣鷹鹰婁娄懷怀匯汇滙汇灘滩潛潜澤泽澗涧濱滨瀋沈盧卢蘆芦葉叶廬庐歸归巖岩嶽岳"
    "崗岗峽峡衛卫連连進进達达遷迁邊边郵邮鄰邻鄖郧鄲郸閩闽閔闵陸陆隴陇雞鸡靈灵韓韩頭头領领馬马駐驻"
    "驛驿魚鱼鳳凤鶴鹤麥麦龜龟塢坞壩坝壽寿夾夹寶宝將将專专岡冈嶗崂崑昆巒峦帶带廟庙彎弯從从徠徕撫抚"
    "晉晋會会棗枣榮荣樂乐標标權权橫横欽钦淶涞淺浅湯汤溈沩滄沧滿满潁颍濰潍瀘泸瀏浏瀾澜灃沣無无為为"
    "煙烟營营爾尔獅狮瑪玛畢毕當当盤盘礦矿祿禄禮礼種种穀谷窯窑築筑紅红紀纪納纳紡纺絳绛綏绥維维綿绵"
    "縉缙總总義义聖圣聯联肅肃臨临舊旧萊莱萬万蒼苍蓋盖蔣蒋蕪芜薊蓟藍蓝蘄蕲觀观設设誠诚諸诸譙谯貝贝"
    "資资賀贺趙赵車车軍军輝辉輪轮運运遊游過过郟郏鄒邹鄧邓釐厘鋼钢錦锦鍾钟鐘钟間间閣阁陳陈隨随雜杂"
    "靜静須须額额風风飛飞館馆駝驼騰腾體体鹽盐鹹咸龐庞廳厅團团樹树藝艺薩萨滎荥鞏巩澠渑堯尧穎颖"
    "渦涡碭砀蕭萧餘余"
)

# Rust's char::is_whitespace (the Unicode White_Space property); Python's str.isspace differs.
WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007" \
             "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
DROP_WHITESPACE = {ord(c): None for c in WHITESPACE}

# Results of `decide` besides a unit (model.rs `Located`).
NOTHING = -1
AMBIGUOUS = -2


# --------------------------------------------------------------------------------------------
# places.rs

def city_short(name: str) -> str:
    """places.rs `city_short`: 杭州市 -> 杭州, 阿克苏地区 -> 阿克苏, 凉山彝族自治州 -> 凉山."""
    if name.endswith("自治州"):
        stem = name[: -len("自治州")]
        cuts = [stem.find(m) for m in ETHNIC_MARKERS if m in stem]
        return stem[: min(cuts)] if cuts else stem
    for suffix in ["地区", "盟", "市"]:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


def province_short(name: str) -> str:
    """places.rs `province_short`: 浙江省 -> 浙江, 广西壮族自治区 -> 广西, 北京市 -> 北京."""
    if name.endswith("自治区"):
        stem = name[: -len("自治区")]
        for marker in ["壮族", "回族", "维吾尔"]:
            if stem.endswith(marker):
                return stem[: -len(marker)]
        return stem
    for suffix in ["省", "市"]:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def load_cities(path: str) -> pd.DataFrame:
    """places.rs `Cities::load`: the city table sorted by adcode (row position = unit)."""
    cities = pd.read_csv(path, dtype={"city": str, "province": str})
    cities = cities.sort_values("adcode6", kind="stable").reset_index(drop=True)
    cities["adcode6"] = cities["adcode6"].astype("int64")
    cities["capital"] = cities["provincial_capital"] == 1
    cities["municipality"] = cities["municipality"] == 1
    return cities


# --------------------------------------------------------------------------------------------
# text.rs

def nfkc(s: str) -> str:
    return unicodedata.normalize("NFKC", s)


def leading_postcode(t: str):
    """text.rs `leading_postcode`: exactly six ASCII digits at the start."""
    k = 0
    while k < len(t) and "0" <= t[k] <= "9":
        k += 1
    return t[:6] if k == 6 else None


def strip_postcode(t: str) -> str:
    """text.rs `strip_postcode`: `100084北京市海淀区` -> `北京市海淀区`."""
    return t[6:].lstrip(",;:-") if leading_postcode(t) else t


STREET_WORDS = ("路", "街", "大街", "大道", "道", "巷", "弄", "胡同", "桥", "广场")
TOWNSHIP_WORDS = ("街道", "镇", "乡", "村", "社区", "苏木", "嘎查")


def starts_street(rest: str) -> bool:
    """text.rs `starts_street`: an optional direction and a street word."""
    if rest[:1] in ("东", "西", "南", "北", "中"):
        rest = rest[1:]
    return rest.startswith(STREET_WORDS)


def starts_township(rest: str) -> bool:
    """text.rs `starts_township`."""
    return rest.startswith(TOWNSHIP_WORDS)


# --------------------------------------------------------------------------------------------
# model.rs `Name`

class Name:
    __slots__ = ("text", "entries", "short", "province", "prefecture", "county", "county_short_only")

    def __init__(self, text, entries):
        # load.rs `index_names`.
        self.text = text
        self.entries = entries  # [(level, unit, province)] in the order they were added
        self.short = not text.endswith(("省", "市", "区", "县", "旗", "州", "盟"))
        self.province = next((p for lvl, _, p in entries if lvl == PROVINCE), None)
        self.prefecture = any(lvl in (PREF_FULL, OLD_PREF, OLD_PREF_SPLIT) for lvl, _, _ in entries)
        self.county = any(lvl in (COUNTY_FULL, OLD_COUNTY, COUNTY_GENERIC) for lvl, _, _ in entries)
        # text.rs `is_county_short_only`.
        self.county_short_only = all(lvl == COUNTY_SHORT for lvl, _, _ in entries)


def _add(names: dict, name: str, entry: tuple) -> None:
    """load.rs `add`: a name's entries in the order added, without repeats."""
    v = names.setdefault(nfkc(name), [])
    if entry not in v:
        v.append(entry)


def _code(s: str) -> int:
    """load.rs `code`: a 6-digit code in a cell."""
    v = float(s)
    if not 100_000 <= v < 1_000_000:
        raise ValueError(f"`{s}` is no 6-digit code")
    return int(v)


def _texts(path: str, columns: list) -> pd.DataFrame:
    """tabular `trimmed_texts`: the columns as trimmed texts, a blank cell as an empty text."""
    df = pd.read_csv(path, usecols=columns, dtype=str, keep_default_na=False, na_values=[])
    return df[columns].apply(lambda c: c.str.strip())


def split_destinations(change: str) -> list:
    """load.rs `split_destinations`: `renamed_and_split (counties to: 柳州市 4; the rest to 来宾市)`."""
    if "counties to:" not in change:
        return []
    out = []
    for item in change.split("counties to:", 1)[1].rstrip(")").split(";"):
        item = item.strip()
        if item.startswith("the rest to"):
            item = item[len("the rest to"):].strip()
        words = item.split()
        if words:
            out.append(words[0])
    return out


class Gazetteer:
    """model.rs `Gazetteer`, built as load.rs `Gazetteer::load` builds it."""

    def __init__(self, cities: pd.DataFrame, counties=None, history=None, institutions=None):
        self.units = [int(c) for c in cities["adcode6"]]
        self.n_cities = len(self.units)
        self.unit_of = {c: i for i, c in enumerate(self.units)}
        names = self._city_names(cities)
        if counties:
            self._read_counties(counties, names)
        history_rows = self._read_history(history, cities, names) if history else []
        _prune(names)
        # load.rs `index_names`: sorted by text (a BTreeMap in Rust; UTF-8 byte order is code
        # point order).
        self.names = {text: Name(text, names[text]) for text in sorted(names)}
        assert "" not in self.names
        # The matcher (Aho-Corasick, leftmost-longest in Rust): the lengths of the names that
        # start with each character, longest first.
        lengths = {}
        for text in self.names:
            lengths.setdefault(text[0], set()).add(len(text))
        self.lengths = {c: sorted(v, reverse=True) for c, v in lengths.items()}
        # load.rs `history_index`: (old county name, prefecture unit then) -> unit now.
        self.history = {}
        for old, then, now in history_rows:
            if nfkc(old) in self.names:
                self.history[(nfkc(old), then)] = now
        self.register, self.register_lengths = ({}, [])
        if institutions:
            self._read_register(institutions)
        self._traditional_forms(institutions)

    # ---- load.rs ---------------------------------------------------------------------------

    def _city_names(self, cities):
        """load.rs `city_names`: province and prefecture names; each province's capital."""
        names = {}
        self.capitals = {}
        for unit, c in enumerate(cities.itertuples()):
            province = c.adcode6 // 10_000
            pshort = province_short(c.province)
            _add(names, c.province, (PROVINCE, unit, province))
            _add(names, pshort, (PROVINCE, unit, province))
            _add(names, c.city, (PREF_FULL, unit, province))
            short = pshort if c.municipality else city_short(c.city)
            if short != c.city and len(short) >= 2:
                _add(names, short, (PREF_SHORT, unit, province))
            if c.capital or c.municipality:
                self.capitals.setdefault(province, unit)
        # Province entries carry a unit only so that every entry has one: keep one per province.
        for text, v in names.items():
            seen = set()
            kept = []
            for e in v:
                if e[0] != PROVINCE or e[2] not in seen:
                    kept.append(e)
                    if e[0] == PROVINCE:
                        seen.add(e[2])
            names[text] = kept
        return names

    def _read_counties(self, path, names):
        """load.rs `read_counties`: county-level names; adds the province-administered groups."""
        cols = _texts(path, ["adcode6", "name", "short_name", "prefecture_adcode"])
        for adcode, name, short, pref in cols.itertuples(index=False):
            pref = _code(pref)
            unit = self.unit_of.get(pref)
            if unit is None:
                if pref % 10_000 != 9_000:
                    raise ValueError(f"{path}: prefecture `{pref}` is not in the city table")
                unit = len(self.units)
                self.units.append(pref)
                self.unit_of[pref] = unit
            province = _code(adcode) // 10_000
            if name in GENERIC:
                _add(names, name, (COUNTY_GENERIC, unit, province))
                continue
            _add(names, name, (COUNTY_FULL, unit, province))
            if short != name and len(short) >= 2 and short not in GENERIC:
                _add(names, short, (COUNTY_SHORT, unit, province))

    def _read_history(self, path, cities, names):
        """load.rs `read_history`: old prefecture and county names; returns the old county names
        with the prefecture unit they were in then and the unit they are in now."""
        cols = _texts(path, ["old_name", "old_short", "level", "old_adcode", "old_prefecture",
                             "new_prefecture_adcode", "change", "last_year"])
        old_counties = []  # (name, province, last year, entry)
        county_rows = []  # (old name, prefecture then, unit now)
        prefecture_now = {c: i for i, c in enumerate(cities["city"])}
        for old, short, level, old_adcode, old_pref, new, change, last in cols.itertuples(index=False):
            unit = self.unit_of[_code(new)]
            province = _code(old_adcode) // 10_000
            e = (OLD_COUNTY, unit, province)
            if level == "prefecture":
                prefecture_now.setdefault(old, unit)
                self._old_prefecture(names, cities, old, short, change, e)
            else:
                county_rows.append((old, old_pref, unit))
                if short != old and len(short) >= 2:
                    county_rows.append((short, old_pref, unit))
                if old not in GENERIC:
                    old_counties.append((old, province, int(last) if last.isdigit() else 0, e))
        # An old name alone is read in its latest meaning within a province.
        latest = {}
        for name, province, last, _ in old_counties:
            latest[(name, province)] = max(latest.get((name, province), 0), last)
        for name, province, last, e in old_counties:
            if last == latest[(name, province)]:
                _add(names, name, e)
        return [(old, prefecture_now[then], now) for old, then, now in county_rows
                if then in prefecture_now]

    @staticmethod
    def _old_prefecture(names, cities, old, short, change, at):
        """load.rs `old_prefecture`."""
        _, unit, province = at
        if change.startswith("abolished") or change.startswith("renamed_and_split"):
            # Context for every prefecture its counties went to.
            _add(names, old, (OLD_PREF_SPLIT, unit, province))
            city_names = list(cities["city"])
            for dest in split_destinations(change):
                if dest in city_names:
                    _add(names, old, (OLD_PREF_SPLIT, city_names.index(dest), province))
        else:
            _add(names, old, (OLD_PREF, unit, province))
            if short != old and len(short) >= 2:
                _add(names, short, (OLD_PREF_SHORT, unit, province))

    def _read_register(self, path):
        """load.rs `read_register`: institution names (NFKC, no whitespace) -> unit."""
        cols = _texts(path, ["name", "prefecture_adcode"])
        by_name = {}
        for name, code in cols.itertuples(index=False):
            unit = self.unit_of[_code(code)]
            name = nfkc(name).translate(DROP_WHITESPACE)
            if name:
                by_name[name] = unit  # a later row wins, as BTreeMap::insert
        self.register = by_name
        self.register_lengths = sorted({len(n) for n in by_name}, reverse=True)

    def _traditional_forms(self, institutions):
        """load.rs `traditional_forms`: the pairs of `TRADITIONAL`, except characters that a
        place or institution name uses as is."""
        used = set("".join(self.names))
        if institutions:
            used |= set("".join(_texts(institutions, ["name"])["name"]))
        pairs = [c for c in TRADITIONAL if c not in WHITESPACE]
        self.traditional = {}
        for t, s in zip(pairs[0::2], pairs[1::2]):
            if t != s and t not in used and "\u4e00" <= t <= "\u9fff":
                self.traditional[ord(t)] = s

    # ---- text.rs ---------------------------------------------------------------------------

    def normalize(self, text: str) -> str:
        """text.rs `Gazetteer::normalize`: NFKC, whitespace removed, traditional place
        characters to simplified."""
        return nfkc(text).translate(DROP_WHITESPACE).translate(self.traditional)

    # ---- matching.rs -----------------------------------------------------------------------

    def _find(self, t: str, at: int):
        """The leftmost-longest name starting at or after `at`: (start, end, Name) or None."""
        for i in range(at, len(t)):
            lengths = self.lengths.get(t[i])
            if lengths is None:
                continue
            for n in lengths:
                name = self.names.get(t[i:i + n]) if i + n <= len(t) else None
                if name is not None:
                    return i, i + n, name
        return None

    def scan(self, t: str) -> list:
        """matching.rs `scan`: names in the text, longest at each position, left to right; a
        short name that begins a street, road or township name is no place."""
        hits = []
        at = 0
        while at < len(t):
            m = self._find(t, at)
            if m is None:
                break
            start, end, name = m
            rest = t[end:]
            if name.short and (starts_street(rest) or starts_township(rest)
                               or (rest.startswith("新区") and name.county_short_only)):
                at = start + 1
                continue
            hits.append(name)
            at = end
        return hits

    def decide(self, t: str):
        """matching.rs `decide` and `decide_hits`: (a unit, NOTHING or AMBIGUOUS; the hits)."""
        hits = self.scan(t)
        for g, levels in enumerate(ORDER):
            found = [c for c in (self._candidates(hits, k, g, levels) for k in range(len(hits))) if c]
            if not found:
                continue
            first = found[0][0]
            if all(u == first for c in found for u in c):
                return first, hits
            unique = next((c for c in found if len(c) == 1), None)
            return (unique[0] if unique else AMBIGUOUS), hits
        return NOTHING, hits

    def _candidates(self, hits, k, g, levels):
        """matching.rs `candidates`: the units of level group `g` for the `k`th name, given the
        names before it; None when there are none or the context rules the name out."""
        name = hits[k]
        county_level = g not in (3, 5)
        # A name that is both a prefecture and a county followed by a county-level name is the
        # prefecture of that county.
        if g <= 1 and name.prefecture and any(h.county for h in hits[k + 1:]):
            return None
        before = hits[:k]
        named_provinces = {e[2] for h in before for e in h.entries if e[0] == PROVINCE}
        any_province = any(h.province is not None for h in before)
        hard = [e[1] for h in before for e in h.entries if e[0] in (PREF_FULL, OLD_PREF, OLD_PREF_SPLIT)]
        soft = [e[1] for h in before for e in h.entries if e[0] in (PREF_SHORT, OLD_PREF_SHORT)]
        cands = []
        for level, unit, province in name.entries:
            if level not in levels:
                continue
            # A short name that is also a province's names a place of another province only
            # when that province is named before it.
            if (name.province is not None and level in (PREF_SHORT, COUNTY_SHORT)
                    and province != name.province and province not in named_provinces):
                continue
            if unit not in cands:
                cands.append(unit)
        if not cands:
            return None
        if hard:
            kept = [c for c in cands if c in hard]
            for p in hard:
                now = self.history.get((name.text, p))
                if now is not None and now not in kept:
                    kept.append(now)
            if kept:
                cands = kept
            elif county_level or g == 5:
                return None
        if any_province:
            kept = [c for c in cands if self.units[c] // 10_000 in named_provinces]
            if kept:
                cands = kept
            elif g != 3:
                return None
        if g == 2 and not hard and not any_province:
            return None
        if soft:
            kept = [c for c in cands if c in soft]
            if kept:
                cands = kept
        return cands

    def locate_address(self, address: str) -> int:
        """matching.rs `locate_address`: a unit, NOTHING or AMBIGUOUS."""
        return self.decide(strip_postcode(self.normalize(address)))[0]

    # ---- organisation.rs -------------------------------------------------------------------

    def locate_register(self, name: str) -> int:
        """organisation.rs `locate_register`: the register's unit for a name that starts with an
        institution's name (the longest), unless a place named after it says otherwise; else
        NOTHING."""
        if not self.register:
            return NOTHING
        t = strip_postcode(self.normalize(name))
        for n in self.register_lengths:
            unit = self.register.get(t[:n]) if n <= len(t) else None
            if unit is not None:
                rest = t[n:]
                after = self.decide(rest)[0] if rest else NOTHING
                return after if after >= 0 else unit
        return NOTHING

    def locate_name(self, name: str) -> int:
        """organisation.rs `locate_name`: the most specific place the name names; failing that,
        a public institution named after one province only is at its capital."""
        t = strip_postcode(self.normalize(name))
        out, hits = self.decide(t)
        if out == NOTHING and is_public_institution(t):
            provinces = [h.province for h in hits if h.province is not None]
            if provinces and all(p == provinces[0] for p in provinces):
                out = self.capitals.get(provinces[0], NOTHING)
        return out


def is_public_institution(t: str) -> bool:
    """organisation.rs `is_public_institution`."""
    return any(w in t for w in ("大学", "学院", "研究院", "研究所", "科学院", "医院")) and "公司" not in t


def _prune(names: dict) -> None:
    """load.rs `prune`: drops the entries that a name's other entries override."""
    for text, v in names.items():
        if any(e[0] in (PREF_FULL, PROVINCE) for e in v):
            v = [e for e in v if e[0] != OLD_COUNTY]
        if any(e[0] == PREF_SHORT for e in v):
            v = [e for e in v if e[0] != COUNTY_SHORT]
        names[text] = v
