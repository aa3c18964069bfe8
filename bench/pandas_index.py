#!/usr/bin/env python3
"""Raw patent export -> city-year collaboration index, in pandas.

The comparison side of bench/index_bench.sh: the rules of repro's stages `ingest -> locate ->
index` (docs/data.md; crates/study/src/places.rs, locate.rs, index.rs) written as an analyst would
write them in pandas: one `read_csv` with the pyarrow engine and Arrow-backed strings, vectorised
string methods (RE2 regexes through pyarrow) for normalisation and parsing, `groupby`/`merge` for
the name dictionary and the counts. Place-name matching cannot be vectorised in pandas; it runs in
Python once per distinct string (addresses with digit runs masked, applicant names), the usual
`factorize` trick. No multiprocessing.

Output: the index CSV with the columns of repro's `index` stage (adcode6, year, apps, joint,
joint_cc, joint_cp, frac_cc, inv_joint_cc, inv_frac_cc, degree, strength, collab, collab_cp,
collab_frac, collab_inv). Only what the benchmark runs is implemented: one UTF-8 CSV input with
the default headers of docs/data.md (a `专利类型` column is used when present) and the default
locate strategy (address, postcode, name, place).

Usage: pandas_index.py RAW.csv CITIES.csv POSTCODES.csv YEARBOOK.csv OUT.csv
       [--first-year 2010] [--last-year 2020]
"""

import argparse
import re
import sys
import time

import numpy as np
import pandas as pd
import pyarrow as pa

# Default headers of the raw export (docs/data.md, "Raw patent export").
COL_NUMBER = "申请号"
COL_DATE = "申请日"
COL_APPLICANTS = "申请(专利权)人"
COL_ADDRESS = "地址"
COL_POSTCODE = "邮编"
COL_TYPE = "专利类型"  # optional: when absent, the type comes from the application number

# Rust's char::is_whitespace (the Unicode White_Space property), spelled out so that RE2 (whose
# \s is ASCII only) and Python agree with repro.
WS_CLASS = "[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
FULL_WIDTH = "[\uff01-\uff5e\u3000]"
HALF_WIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: " "}

ORG_MARKERS = ["公司", "大学", "学院", "学校", "研究", "中心", "集团", "医院", "厂", "局", "所",
               "院", "站", "会", "社", "部", "委", "室"]
# A short city name followed by one of these starts a street name, not a city (`中山路`).
STREET_WORDS = ("路", "街", "道", "巷")
ETHNIC_MARKERS = ["朝鲜族", "土家族", "布依族", "哈尼族", "景颇族", "傈僳族", "柯尔克孜", "哈萨克",
                  "蒙古", "彝族", "藏族", "苗族", "侗族", "壮族", "傣族", "白族", "回族"]

STEPS = {}


def step(name):
    """Times a phase (printed to stderr at the end)."""
    now = time.perf_counter()
    STEPS[name] = now
    return now


# --------------------------------------------------------------------------------------------
# Text normalisation and parsing (docs/data.md, "Normalisation of text")

def normalise(s: pd.Series) -> pd.Series:
    """Full-width forms to ASCII, U+3000 to a space, whitespace runs to one space, trimmed."""
    s = s.fillna("")
    wide = s.str.contains(FULL_WIDTH, regex=True)
    if wide.any():
        s = s.copy()
        s[wide] = s[wide].str.translate(HALF_WIDTH)
    s = s.str.replace(WS_CLASS + "+", " ", regex=True)
    return s.str.strip(" ")


def parse_numbers(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Application numbers -> (12-digit key as int64 or -1, patent type 1/2/3 or 0)."""
    s = raw.fillna("")
    wide = s.str.contains(FULL_WIDTH, regex=True)
    if wide.any():
        s = s.copy()
        s[wide] = s[wide].str.translate(HALF_WIDTH)
    s = s.str.replace(WS_CLASS, "", regex=True).str.upper()
    m = s.str.extract(r"^(?:CN)?(?P<digits>[0-9]{12})\.?(?P<check>[0-9X])$")
    ok = m["digits"].notna().to_numpy().copy()
    digits = m["digits"].fillna("000000000000").astype("int64").to_numpy()
    weights = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5]
    total = np.zeros(len(s), dtype=np.int64)
    for k, w in enumerate(weights):
        total += (digits // 10 ** (11 - k)) % 10 * w
    check = m["check"].fillna("-1").replace("X", "10").astype("int64").to_numpy()
    type_digit = (digits // 10 ** 7) % 10
    ptype = np.select([np.isin(type_digit, [1, 8]), np.isin(type_digit, [2, 9]), type_digit == 3],
                      [1, 2, 3], 0)
    ok &= (check == total % 11) & (ptype > 0)
    return pd.Series(np.where(ok, digits, -1), index=raw.index), pd.Series(ptype, index=raw.index)


DATE_RE = (
    r"^(?:(?P<y1>[0-9]{4})(?P<m1>[0-9]{2})(?P<d1>[0-9]{2})"
    r"|(?P<y2>[0-9]{4}) ?[年月] ?(?P<m2>[0-9]{1,2}) ?[年月] ?(?P<d2>[0-9]{1,2}) ?日"
    r"|(?P<y3>[0-9]{4}) ?(?P<s1>[-/.]) ?(?P<m3>[0-9]{1,2}) ?(?P<s2>[-/.]) ?(?P<d3>[0-9]{1,2}))$"
)


def parse_dates(raw: pd.Series) -> pd.Series:
    """Dates in the formats of docs/data.md -> year (int), 0 when bad or impossible."""
    m = normalise(raw).str.extract(DATE_RE)

    def part(*groups):
        # Exactly one alternative participates; the others' groups are empty.
        v = m[groups[0]].fillna("") + m[groups[1]].fillna("") + m[groups[2]].fillna("")
        return v.where(v != "", "0").astype("int64").to_numpy()

    y, mo, d = part("y1", "y2", "y3"), part("m1", "m2", "m3"), part("d1", "d2", "d3")
    # Both separators of `2010-03-15` must be the same character.
    s1, s2 = m["s1"].fillna("").to_numpy(dtype=object), m["s2"].fillna("").to_numpy(dtype=object)
    same_sep = s1 == s2
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    month_len = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(mo, 0, 12)]
    month_len = month_len + ((mo == 2) & leap)
    ok = same_sep & (y >= 1000) & (y <= 9999) & (mo >= 1) & (mo <= 12) & (d >= 1) & (d <= month_len)
    return pd.Series(np.where(ok, y, 0), index=raw.index)


def parse_types(raw: pd.Series) -> np.ndarray:
    """A `专利类型` cell -> 1/2/3 (发明, 实用新型, 外观设计, optionally + 专利, or the digit), else 0."""
    s = normalise(raw).str.replace("专利$", "", regex=True)
    kinds = {"1": 1, "发明": 1, "2": 2, "实用新型": 2, "3": 3, "外观设计": 3}
    return s.map(kinds).fillna(0).astype("int64").to_numpy()


def split_applicants(raw: pd.Series) -> pd.Series:
    """Normalised names joined by `;`, each trimmed, empty names dropped."""
    s = normalise(raw)
    # Spaces are single after normalisation: trim the names around each `;`.
    s = s.str.replace("; ", ";", regex=False).str.replace(" ;", ";", regex=False)
    while s.str.contains(";;", regex=False).any():
        s = s.str.replace(";;", ";", regex=False)
    return s.str.strip(";")


# --------------------------------------------------------------------------------------------
# Place names (crates/study/src/places.rs)

def city_short(name: str) -> str:
    if name.endswith("自治州"):
        stem = name[: -len("自治州")]
        cuts = [stem.find(m) for m in ETHNIC_MARKERS if m in stem]
        return stem[: min(cuts)] if cuts else stem
    for suffix in ["地区", "盟", "市"]:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


def province_short(name: str) -> str:
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


class PlaceIndex:
    """Leftmost-longest matching over every full and short city and province name."""

    def __init__(self, cities: pd.DataFrame):
        self.cities = cities  # sorted by adcode; row position = city index
        self.prov = (cities["adcode6"] // 10000).to_numpy()
        provinces = {}
        for code, pname in zip(self.prov, cities["province"]):
            provinces.setdefault(int(code), (pname, province_short(pname)))
        names = {}
        for code in sorted(provinces):
            full, short = provinces[code]
            names[full] = ("province", code)
            names[short] = ("province", code)
        for i, row in enumerate(cities.itertuples()):
            if not row.municipality:
                names[row.city] = ("full", i)
            short = city_short(row.city)
            entry = names.get(short)
            if entry is not None and entry[0] == "province" and not row.municipality:
                place = ("both", i, entry[1])
            elif entry is not None:
                place = entry
            else:
                place = ("short", i)
            names[short] = place
        assert not any(re.search(r"[0-9#]", n) for n in names), "place names contain digits"
        self.targets = names
        # Longest first: Python's alternation is leftmost-first, which makes it leftmost-longest.
        alternatives = sorted(names, key=lambda n: (-len(n), n))
        self.matcher = re.compile("|".join(map(re.escape, alternatives)))
        self.capitals = {}
        self.municipality = {}
        for i, row in enumerate(cities.itertuples()):
            if row.provincial_capital:
                self.capitals.setdefault(int(self.prov[i]), i)
            if row.municipality:
                self.municipality[int(self.prov[i])] = i

    def places(self, text: str):
        """(end offset, place) of every match, left to right."""
        return [(m.end(), self.targets[m.group(0)]) for m in self.matcher.finditer(text)]

    def address_city(self, address: str) -> int:
        """The province first, then a city of it: a full name anywhere, else a short name that is
        not the province's own token and does not start a street name (`中山路`); a municipality
        is its own city. Without a province only a full city name counts."""
        found = self.places(address)
        token = code = None
        for k, (_, p) in enumerate(found):
            if p[0] in ("province", "both"):
                token, code = k, p[-1]
                break
        if token is None:
            return next((p[1] for _, p in found if p[0] == "full"), -1)
        if code in self.municipality:
            return self.municipality[code]
        for _, p in found:
            if p[0] == "full" and self.prov[p[1]] == code:
                return p[1]
        for k, (end, p) in enumerate(found):
            if (p[0] in ("short", "both") and k != token and self.prov[p[1]] == code
                    and not address[end:].startswith(STREET_WORDS)):
                return p[1]
        return -1

    def name_city(self, name: str) -> int:
        """The leftmost city name; a name shared with a province is the city only inside that
        province (`吉林`), else the province, which stands for its municipality or capital."""
        for _, p in self.places(name):
            if p[0] in ("full", "short"):
                return p[1]
            if p[0] == "both" and self.prov[p[1]] == p[2]:
                return p[1]
            c = self.municipality.get(p[-1], self.capitals.get(p[-1]))
            if c is not None:
                return c
        return -1


def is_individual(names: pd.Series) -> np.ndarray:
    """2-4 Chinese characters (or the middle dot) and no organisation word."""
    person = names.str.fullmatch("[\u4e00-\u9fff\u00b7]{2,4}").fillna(False)
    org_word = names.str.contains("|".join(ORG_MARKERS), regex=True).fillna(False)
    return (person & ~org_word).to_numpy(dtype=bool)


# --------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("raw")
    ap.add_argument("cities")
    ap.add_argument("postcodes")
    ap.add_argument("yearbook")
    ap.add_argument("out")
    ap.add_argument("--first-year", type=int, default=2010)
    ap.add_argument("--last-year", type=int, default=2020)
    args = ap.parse_args()
    t0 = step("start")

    # ---- ingest ----------------------------------------------------------------------------
    header = pd.read_csv(args.raw, nrows=0).columns
    columns = [COL_NUMBER, COL_DATE, COL_APPLICANTS, COL_ADDRESS, COL_POSTCODE]
    raw = pd.read_csv(
        args.raw,
        usecols=columns + ([COL_TYPE] if COL_TYPE in header else []),
        dtype=pd.ArrowDtype(pa.string()),
        keep_default_na=False,
        na_values=[],
        engine="pyarrow",
    )
    step("read_csv")
    n_read = len(raw)
    key, ptype = parse_numbers(raw[COL_NUMBER])
    year = parse_dates(raw[COL_DATE])
    applicants = split_applicants(raw[COL_APPLICANTS])
    bad_number = key.to_numpy() < 0
    bad_date = ~bad_number & (year.to_numpy() == 0)
    missing = ~bad_number & ~bad_date & (applicants == "").to_numpy()
    bad_type = np.zeros(n_read, dtype=bool)
    if COL_TYPE in raw.columns:
        ptype = pd.Series(parse_types(raw[COL_TYPE]), index=raw.index)
        bad_type = ~bad_number & ~bad_date & ~missing & (ptype.to_numpy() == 0)
    valid = ~(bad_number | bad_date | missing | bad_type)
    # Only rows that pass the other checks claim their number; the first occurrence is kept.
    dup = np.zeros(n_read, dtype=bool)
    dup[valid] = key[valid].duplicated(keep="first").to_numpy()
    keep = valid & ~dup
    postcode = normalise(raw.loc[keep, COL_POSTCODE])
    postcode = postcode.where(postcode.str.fullmatch("[0-9]{6}").fillna(False), "")
    apps = pd.DataFrame({
        "year": year[keep].to_numpy(),
        "ptype": ptype[keep].to_numpy(),
        "applicants": applicants[keep].to_numpy(),
        "address": normalise(raw.loc[keep, COL_ADDRESS]).to_numpy(),
        "postcode": postcode.to_numpy(),
    })
    del raw, key, ptype, year, applicants, postcode
    counts = {
        "rows_read": n_read, "kept": int(keep.sum()), "bad_application_number": int(bad_number.sum()),
        "bad_date": int(bad_date.sum()), "missing_applicant": int(missing.sum()),
        "bad_type": int(bad_type.sum()), "duplicate": int(dup.sum()),
    }
    quarantined = bad_number | bad_date | missing | bad_type | dup
    assert keep.sum() + quarantined.sum() == n_read and not (keep & quarantined).any()
    step("ingest")

    # ---- locate ----------------------------------------------------------------------------
    cities = pd.read_csv(args.cities, dtype={"city": str, "province": str}).sort_values("adcode6")
    cities = cities.reset_index(drop=True)
    places = PlaceIndex(cities)
    n_cities = len(cities)
    code_to_city = pd.Series(np.arange(n_cities), index=cities["adcode6"])

    # First applicant, step `address`: match each distinct address once (digit runs, which no
    # place name contains, masked so that house numbers do not multiply the distinct values).
    masked = apps["address"].str.replace("[0-9]+", "#", regex=True)
    codes, uniques = pd.factorize(masked)
    found = np.array([places.address_city(a) for a in uniques], dtype=np.int64)
    first_city = np.where(codes >= 0, found[codes], -1) if len(uniques) else np.full(len(apps), -1)
    # Step `postcode`: the first four digits through the directory.
    directory = pd.read_csv(args.postcodes, dtype={"prefix4": str})
    directory["prefix4"] = directory["prefix4"].str.strip().str.zfill(4)
    prefix_city = pd.Series(code_to_city.loc[directory["adcode6"]].to_numpy(), index=directory["prefix4"])
    prefix_city = prefix_city[~prefix_city.index.duplicated(keep="last")]
    by_post = apps["postcode"].str.slice(0, 4).map(prefix_city).fillna(-1).astype("int64").to_numpy()
    first_city = np.where(first_city >= 0, first_city, by_post)
    step("locate_first")

    # Every applicant: one row per name.
    names = apps["applicants"].str.split(";").explode()
    app_of = names.index.to_numpy()
    names = names.reset_index(drop=True)
    pos = names.groupby(app_of).cumcount().to_numpy()
    name_code, name_uniques = pd.factorize(names)
    individual_u = is_individual(pd.Series(name_uniques, dtype=pd.ArrowDtype(pa.string())))
    individual = individual_u[name_code]
    step("explode")

    # Step `name`: organisations located as first applicants, by their most frequent city (ties
    # to the lower adcode).
    is_first = pos == 0
    fc = first_city[app_of]
    seen = pd.DataFrame({"name": name_code[is_first & (fc >= 0) & ~individual],
                         "city": fc[is_first & (fc >= 0) & ~individual]})
    best = (seen.groupby(["name", "city"]).size().rename("n").reset_index()
            .sort_values(["name", "n", "city"], ascending=[True, False, True])
            .drop_duplicates("name"))
    by_name_u = np.full(len(name_uniques), -1, dtype=np.int64)
    by_name_u[best["name"].to_numpy()] = best["city"].to_numpy()
    # Step `place`: the city named inside an organisation's name (distinct names only).
    need = np.unique(name_code[~individual & ~(is_first & (fc >= 0))])
    by_place_u = np.full(len(name_uniques), -1, dtype=np.int64)
    by_place_u[need] = [places.name_city(name_uniques[k]) for k in need]
    from_name = np.where(by_name_u >= 0, by_name_u, by_place_u)[name_code]
    city = np.where(is_first & (fc >= 0), fc, np.where(individual, -1, from_name))
    step("locate")

    # ---- index -----------------------------------------------------------------------------
    app_year = apps["year"].to_numpy()[app_of]
    n_app = np.bincount(app_of, minlength=len(apps))
    in_range = (app_year >= args.first_year) & (app_year <= args.last_year)
    located = pd.DataFrame({"app": app_of, "city": city})[(city >= 0) & in_range]
    per = located.groupby(["app", "city"], sort=False).size().rename("k").reset_index()
    per["prov"] = places.prov[per["city"].to_numpy()]
    n_cities_app = per.groupby("app")["city"].transform("size").to_numpy()
    n_provs_app = per.groupby("app")["prov"].transform("nunique").to_numpy()
    a = per["app"].to_numpy()
    joint = n_app[a] >= 2
    cc = joint & (n_cities_app >= 2)
    inv = apps["ptype"].to_numpy()[a] == 1
    share = per["k"].to_numpy() / n_app[a]
    per = pd.DataFrame({
        "city": per["city"].to_numpy(),
        "year": apps["year"].to_numpy()[a],
        "apps": 1,
        "joint": joint.astype(np.int64),
        "joint_cc": cc.astype(np.int64),
        "joint_cp": (joint & (n_provs_app >= 2)).astype(np.int64),
        "frac_cc": np.where(cc, share, 0.0),
        "inv_joint_cc": (cc & inv).astype(np.int64),
        "inv_frac_cc": np.where(cc & inv, share, 0.0),
        "app": a,
    })
    sums = per.drop(columns="app").groupby(["city", "year"]).sum()

    # The network: pairs of distinct cities of each cross-city application.
    cross = per.loc[per["joint_cc"] == 1, ["app", "year", "city"]]
    pairs = cross.merge(cross[["app", "city"]], on="app", suffixes=("_a", "_b"))
    pairs = pairs[pairs["city_a"] < pairs["city_b"]]
    edges = pairs.groupby(["year", "city_a", "city_b"]).size().rename("weight").reset_index()
    ends = pd.concat([edges.rename(columns={"city_a": "city"})[["city", "year", "weight"]],
                      edges.rename(columns={"city_b": "city"})[["city", "year", "weight"]]])
    net = ends.groupby(["city", "year"]).agg(degree=("weight", "size"), strength=("weight", "sum"))

    # Every city and year, zeros where nothing was filed; per 10,000 people where pop > 0.
    years = np.arange(args.first_year, args.last_year + 1)
    grid = pd.MultiIndex.from_product([np.arange(n_cities), years], names=["city", "year"])
    out = sums.reindex(grid).join(net.reindex(grid)).fillna(0)
    out = out.reset_index()
    out.insert(0, "adcode6", cities["adcode6"].to_numpy()[out["city"].to_numpy()])
    out = out.drop(columns="city")
    for c in ["apps", "joint", "joint_cc", "joint_cp", "inv_joint_cc", "degree", "strength"]:
        out[c] = out[c].astype(np.int64)
    pop = pd.read_csv(args.yearbook, usecols=["adcode6", "year", "pop"])
    pop = pop.dropna().drop_duplicates(["adcode6", "year"], keep="last")
    out = out.merge(pop, on=["adcode6", "year"], how="left")
    p = out["pop"].where(out["pop"] > 0)
    out["collab"] = out["joint_cc"] / p
    out["collab_cp"] = out["joint_cp"] / p
    out["collab_frac"] = out["frac_cc"] / p
    out["collab_inv"] = out["inv_joint_cc"] / p
    cols = ["adcode6", "year", "apps", "joint", "joint_cc", "joint_cp", "frac_cc", "inv_joint_cc",
            "inv_frac_cc", "degree", "strength", "collab", "collab_cp", "collab_frac", "collab_inv"]
    out[cols].to_csv(args.out, index=False, na_rep="")
    step("index")

    print(f"pandas_index: {counts}, applicants {len(names)}, "
          f"unresolved {int((city < 0).sum())}, edges {len(edges)}", file=sys.stderr)
    prev = t0
    for name, t in STEPS.items():
        if name != "start":
            print(f"  {name:<14} {t - prev:7.1f} s", file=sys.stderr)
            prev = t
    print(f"  {'total':<14} {prev - t0:7.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
