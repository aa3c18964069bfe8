#!/usr/bin/env python3
"""Raw patent export -> city-year collaboration index, in pandas.

The comparison side of bench/index_bench.sh: the rules of repro's stages `ingest -> locate ->
index` (docs/data.md; crates/study/src/textnorm.rs and ingest/, locate.rs, gazetteer/, index.rs)
written as an analyst would write them in pandas: one `read_csv` with the pyarrow engine and
Arrow-backed strings, vectorised string methods (RE2 regexes through pyarrow) for normalisation,
parsing and postcodes, `groupby`/`merge` for the name dictionary and the counts. Place-name
matching (the gazetteer: county-level names, old names, the institution register, street and
township words, context from the left; bench/pandas_gazetteer.py, a port of the Rust rules)
cannot be vectorised in pandas; it runs in Python once per distinct string (addresses with digit
runs masked, organisation names), the usual `factorize` trick. No multiprocessing.

Output: the index CSV with the columns of repro's `index` stage (adcode6, year, apps, joint,
joint_cc, joint_cp, frac_cc, inv_joint_cc, inv_frac_cc, degree, strength, collab, collab_cp,
collab_frac, collab_inv). Only what the benchmark runs is implemented: one UTF-8 CSV input with
the default headers of docs/data.md (a `专利类型` column is used when present; no header aliases,
no malformed-record handling) and locate's default strategy (address, postcode, name, register,
place) with all three gazetteer tables.

Usage: pandas_index.py RAW.csv CITIES.csv COUNTIES.csv PLACE_HISTORY.csv INSTITUTIONS.csv
                       POSTCODES.csv YEARBOOK.csv OUT.csv [--first-year 2010] [--last-year 2020]
"""

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pandas_gazetteer import NOTHING, Gazetteer, load_cities  # noqa: E402

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


def leading_postcode(address: pd.Series, postcode: pd.Series) -> tuple[pd.Series, pd.Series]:
    """ingest/mod.rs `judge_row` with textnorm.rs `leading_postcode`: a normalised address that
    starts with a 6-digit postcode and more (`100871 北京市海淀区…`) gives the postcode when the
    cell has none, and loses it and the separators after it either way
    (`after_leading_postcode`)."""
    lead = address.str.extract(r"^([0-9]{6})([^0-9].*)$")
    has_lead = lead[0].notna()
    if has_lead.any():
        postcode = postcode.where(~(has_lead & (postcode == "")), lead[0])
        address = address.where(~has_lead, lead[1].str.lstrip(" ,;:-"))
    return address, postcode


# --------------------------------------------------------------------------------------------
# Applicants (crates/study/src/locate.rs)

def is_individual(names: pd.Series) -> np.ndarray:
    """locate.rs `is_individual`: 2-4 Chinese characters (or the middle dot) and no
    organisation word (`has_org_marker`)."""
    person = names.str.fullmatch("[\u4e00-\u9fff\u00b7]{2,4}").fillna(False)
    org_word = names.str.contains("|".join(ORG_MARKERS), regex=True).fillna(False)
    return (person & ~org_word).to_numpy(dtype=bool)


def postcode_in(address: pd.Series) -> pd.Series:
    """gazetteer/text.rs `postcode_in`: a 6-digit postcode at the start of the address or after
    a comma (`清华大学,100084`), the first such; else missing."""
    return address.str.extract(r"(?:^|[,，]) ?([0-9]{6})(?:[^0-9]|$)")[0]


def explode_applicants(applicants: pd.Series) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """One row per applicant, in application and position order: (application row, position,
    name). Names are already trimmed and non-empty (`split_applicants`)."""
    lists = applicants.str.split(";")
    n = lists.list.len().to_numpy()
    app_of = np.repeat(np.arange(len(applicants)), n)
    starts = np.repeat(np.cumsum(n) - n, n)
    pos = np.arange(len(app_of)) - starts
    return app_of, pos, lists.list.flatten().reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# The three stages

def ingest(path: str) -> tuple[pd.DataFrame, dict]:
    """ingest/mod.rs `judge_row` and `ingest_batch`: the clean applications (year, ptype,
    applicants, address, postcode) in input order, and the counts of the stage report."""
    header = pd.read_csv(path, nrows=0).columns
    columns = [COL_NUMBER, COL_DATE, COL_APPLICANTS, COL_ADDRESS, COL_POSTCODE]
    raw = pd.read_csv(
        path,
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
    address, postcode = leading_postcode(normalise(raw.loc[keep, COL_ADDRESS]), postcode)
    apps = pd.DataFrame({
        "year": year[keep].to_numpy(),
        "ptype": ptype[keep].to_numpy(),
        "applicants": applicants[keep].reset_index(drop=True),
        "address": address.reset_index(drop=True),
        "postcode": postcode.reset_index(drop=True),
    })
    counts = {
        "rows_read": n_read, "kept": int(keep.sum()), "bad_application_number": int(bad_number.sum()),
        "bad_date": int(bad_date.sum()), "missing_applicant": int(missing.sum()),
        "bad_type": int(bad_type.sum()), "duplicate": int(dup.sum()),
    }
    quarantined = bad_number | bad_date | missing | bad_type | dup
    assert keep.sum() + quarantined.sum() == n_read and not (keep & quarantined).any()
    return apps, counts


def locate(apps: pd.DataFrame, gaz: Gazetteer, postcodes_path: str) -> pd.DataFrame:
    """locate.rs `run` with the default strategy [address, postcode, name, register, place]: one
    row per applicant (app, pos, unit: index into `gaz.units`, -1 when unresolved)."""
    # ---- pass 1 (`first_pass`, `locate_first`): the first applicant's address, then postcode.
    # Step `address`: the matcher once per distinct address, digit runs masked (no place name
    # contains a digit, so house numbers need not multiply the distinct values).
    masked = apps["address"].str.replace("[0-9]+", "#", regex=True)
    codes, uniques = pd.factorize(masked)
    found = np.array([gaz.locate_address(a) for a in uniques] + [NOTHING], dtype=np.int64)
    first = found[codes]  # code -1 (a missing address) takes the appended NOTHING
    first[first < 0] = -1  # ambiguous or nothing: the next step
    # Step `postcode`: the first four digits through the directory (`load_postcodes`); a blank
    # cell takes a postcode written in the address.
    directory = pd.read_csv(postcodes_path, dtype={"prefix4": str})
    directory["prefix4"] = directory["prefix4"].str.strip().str.zfill(4)
    prefix_unit = pd.Series([gaz.unit_of[c] for c in directory["adcode6"]], index=directory["prefix4"])
    prefix_unit = prefix_unit[~prefix_unit.index.duplicated(keep="last")]
    post = apps["postcode"].where(apps["postcode"].str.strip() != "", postcode_in(apps["address"]))
    by_post = post.str.slice(0, 4).map(prefix_unit).fillna(-1).astype("int64").to_numpy()
    first = np.where(first >= 0, first, by_post)
    step("locate_first")

    # ---- pass 2 (`second_pass`, `slice_entries`): every applicant, one row each.
    app_of, pos, names = explode_applicants(apps["applicants"])
    name_code, name_uniques = pd.factorize(names)
    name_uniques = pd.Series(name_uniques, dtype=pd.ArrowDtype(pa.string()))
    individual_u = is_individual(name_uniques)
    individual = individual_u[name_code]
    step("explode")

    # Step `name` (`count_first_names`, `name_dictionary`): organisations located as first
    # applicants, at their most frequent unit, ties to the lower unit.
    first_of = first[app_of]
    is_first_found = (pos == 0) & (first_of >= 0)
    seen = pd.DataFrame({"name": name_code[is_first_found & ~individual],
                         "unit": first_of[is_first_found & ~individual]})
    best = (seen.groupby(["name", "unit"]).size().rename("n").reset_index()
            .sort_values(["name", "n", "unit"], ascending=[True, False, True])
            .drop_duplicates("name"))
    unit_u = np.full(len(name_uniques), -1, dtype=np.int64)
    unit_u[best["name"].to_numpy()] = best["unit"].to_numpy()
    # Steps `register` then `place`, once per distinct organisation name that is still
    # unresolved where it appears.
    need = np.unique(name_code[~individual & ~is_first_found])
    need = need[unit_u[need] < 0]
    for k, name in zip(need, name_uniques.iloc[need]):
        u = gaz.locate_register(name)
        if u < 0:
            u = gaz.locate_name(name)
        unit_u[k] = u if u >= 0 else -1
    unit = np.where(is_first_found, first_of, np.where(individual, -1, unit_u[name_code]))
    step("locate")
    return pd.DataFrame({"app": app_of, "pos": pos, "unit": unit})


def index(apps: pd.DataFrame, applicants: pd.DataFrame, cities: pd.DataFrame, yearbook: str,
          first_year: int, last_year: int) -> tuple[pd.DataFrame, int]:
    """index.rs `count_block` and `index_table`: the city-year index, and the number of edges.
    Units outside the city table (province-administered groups) count as unresolved."""
    n_cities = len(cities)
    app_of = applicants["app"].to_numpy()
    unit = applicants["unit"].to_numpy()
    city = np.where(unit < n_cities, unit, -1)
    prov = cities["adcode6"].to_numpy() // 10_000
    app_year = apps["year"].to_numpy()[app_of]
    n_app = np.bincount(app_of, minlength=len(apps))
    in_range = (app_year >= first_year) & (app_year <= last_year)
    located = pd.DataFrame({"app": app_of, "city": city})[(city >= 0) & in_range]
    per = located.groupby(["app", "city"], sort=False).size().rename("k").reset_index()
    per["prov"] = prov[per["city"].to_numpy()]
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
    years = np.arange(first_year, last_year + 1)
    grid = pd.MultiIndex.from_product([np.arange(n_cities), years], names=["city", "year"])
    out = sums.reindex(grid).join(net.reindex(grid)).fillna(0)
    out = out.reset_index()
    out.insert(0, "adcode6", cities["adcode6"].to_numpy()[out["city"].to_numpy()])
    out = out.drop(columns="city")
    for c in ["apps", "joint", "joint_cc", "joint_cp", "inv_joint_cc", "degree", "strength"]:
        out[c] = out[c].astype(np.int64)
    pop = pd.read_csv(yearbook, usecols=["adcode6", "year", "pop"])
    pop = pop.dropna().drop_duplicates(["adcode6", "year"], keep="last")
    out = out.merge(pop, on=["adcode6", "year"], how="left")
    p = out["pop"].where(out["pop"] > 0)
    out["collab"] = out["joint_cc"] / p
    out["collab_cp"] = out["joint_cp"] / p
    out["collab_frac"] = out["frac_cc"] / p
    out["collab_inv"] = out["inv_joint_cc"] / p
    cols = ["adcode6", "year", "apps", "joint", "joint_cc", "joint_cp", "frac_cc", "inv_joint_cc",
            "inv_frac_cc", "degree", "strength", "collab", "collab_cp", "collab_frac", "collab_inv"]
    return out[cols], len(edges)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ["raw", "cities", "counties", "place_history", "institutions", "postcodes", "yearbook", "out"]:
        ap.add_argument(name)
    ap.add_argument("--first-year", type=int, default=2010)
    ap.add_argument("--last-year", type=int, default=2020)
    args = ap.parse_args()
    t0 = step("start")

    apps, counts = ingest(args.raw)
    step("ingest")
    cities = load_cities(args.cities)
    gaz = Gazetteer(cities, args.counties, args.place_history, args.institutions)
    step("gazetteer")
    applicants = locate(apps, gaz, args.postcodes)
    out, n_edges = index(apps, applicants, cities, args.yearbook, args.first_year, args.last_year)
    out.to_csv(args.out, index=False, na_rep="")
    step("index")

    unresolved = int((applicants["unit"] < 0).sum())
    print(f"pandas_index: {counts}, applicants {len(applicants)}, unresolved {unresolved}, "
          f"edges {n_edges}", file=sys.stderr)
    prev = t0
    for name, t in STEPS.items():
        if name != "start":
            print(f"  {name:<14} {t - prev:7.1f} s", file=sys.stderr)
            prev = t
    print(f"  {'total':<14} {prev - t0:7.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
