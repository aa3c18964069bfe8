#!/usr/bin/env python3
"""Checks the cell-level rules of bench/pandas_index.py and its place matcher
(bench/pandas_gazetteer.py) on the cases of repro's own unit tests (crates/study/src/textnorm.rs
of the ingest stage, places.rs, locate.rs, gazetteer.rs: the issue-13 and plan examples), so that
the benchmark's pandas side is known to implement the same rules beyond what the synthetic export
exercises; and that its copy of the traditional-character table is the Rust one.

With `--repro BIN`, also runs repro's real `locate` stage (the binary BIN) on the 2,488 place
strings of tests/fixtures/places/eval.csv, written by others, and on the rule cases below, and
requires the Python matcher to put every one in the same unit (or leave it unresolved alike).

Usage: pandas_index_check.py [--repro BIN]   (exits 1 on the first failure)
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pandas_gazetteer as G  # noqa: E402
import pandas_index as P  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "data")


def series(values):
    return pd.Series(values, dtype=pd.ArrowDtype(pa.string()))


def expect(what, got, want):
    if got != want:
        print(f"FAIL {what}: got {got!r}, want {want!r}")
        sys.exit(1)


# One address per rule of docs/data.md, "Place matching", with the result the rule gives.
RULE_CASES = [
    # 4. A short name that starts a street or township name, or a county's short name before
    # 新区, is no place; a full name with its suffix is.
    ("上海路5号", None), ("中山路1号", None), ("广东省中山路100号", None), ("广东省中山市中山路100号", 442000),
    ("浙江省长春路8号杭州", 330100), ("河北街道", None), ("浙江省滨江新区", None), ("杭州滨江新区", 330100),
    # 5. Context from the left; a county that contradicts it is dropped.
    ("吉林省吉林", 220200), ("吉林船营区", 220200), ("辽宁省朝阳市双塔区", 211300), ("北京市朝阳区", 110000),
    ("浙江省西湖区", 330100), ("淮安市清河区", 320800),
    # 6. Generic county names only with a province or prefecture before them.
    ("城区", None), ("山西省城区", None),
    # 8. Ambiguity abstains.
    ("朝阳区建国路", None), ("鼓楼区", None), ("南京市鼓楼区", 320100),
    # 10. Old names: in their latest meaning alone, or after their old prefecture.
    ("横县", 450100), ("广西横县", 450100), ("亳州市", 341600), ("阜阳地区亳州市", 341600), ("清河区", 211200),
    # 1. Traditional forms.
    ("濟南市歷下區", 370100),
]


def gazetteer(institutions=True):
    cities = G.load_cities(os.path.join(DATA, "cities.csv"))
    return G.Gazetteer(cities, os.path.join(DATA, "counties.csv"), os.path.join(DATA, "place_history.csv"),
                       os.path.join(DATA, "institutions.csv") if institutions else None)


def code(g, text, org):
    """gazetteer.rs tests' `code`: the adcode an address (or an organisation's name) is in."""
    u = g.locate_register(text) if org else G.NOTHING
    if u < 0:
        u = g.locate_name(text) if org else g.locate_address(text)
    return g.units[u] if u >= 0 else None


def same_as_repro(g, repro):
    """The Python matcher and repro's `locate` stage on eval.csv, row by row (as
    tests/integration/places.rs runs it: an address as the address of a first applicant named
    `张三`, an organisation's name as its only applicant)."""
    ev = pd.read_csv(os.path.join(ROOT, "tests/fixtures/places/eval.csv"), dtype=str, keep_default_na=False)
    ev = pd.concat([ev, pd.DataFrame({"id": "rule", "text": [t for t, _ in RULE_CASES], "form": "full"})])
    org = (ev["form"] == "organisation").to_numpy()
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "data"))
        os.makedirs(os.path.join(d, "in"))
        os.makedirs(os.path.join(d, "stages"))
        for f in ["cities.csv", "counties.csv", "place_history.csv", "institutions.csv"]:
            with open(os.path.join(DATA, f), "rb") as src, open(os.path.join(d, "data", f), "wb") as dst:
                dst.write(src.read())
        pd.DataFrame({"app_no": np.arange(len(ev)), "year": 2015, "ptype": 1,
                      "applicants": np.where(org, ev["text"], "张三"),
                      "address": np.where(org, "", ev["text"]), "postcode": ""}).to_csv(
            os.path.join(d, "in/applications.csv"), index=False)
        with open(os.path.join(d, "stages/locate.yaml"), "w") as f:
            f.write("applications: in/applications.csv\ncounties: data/counties.csv\n"
                    "place_history: data/place_history.csv\ninstitutions: data/institutions.csv\n"
                    "strategy: [address, name, register, place]\nout: out/applicants.parquet\n"
                    "report: out/locate.json\n")
        with open(os.path.join(d, "pipeline.yaml"), "w") as f:
            f.write("stages:\n  locate:\n    kind: locate\n    params: {spec: stages/locate.yaml}\n")
        subprocess.run([repro, "run"], cwd=d, check=True, capture_output=True)
        out = pd.read_parquet(os.path.join(d, "out/applicants.parquet"), columns=["app", "adcode6"])
    theirs = out.set_index("app")["adcode6"].reindex(range(len(ev)))
    individual = P.is_individual(series(list(ev["text"])))
    differ = 0
    for i, (text, is_org) in enumerate(zip(ev["text"], org)):
        mine = None if (is_org and individual[i]) else code(g, text, bool(is_org))
        want = None if pd.isna(theirs.iloc[i]) else int(theirs.iloc[i])
        if mine != want:
            differ += 1
            print(f"DIFF eval row {ev['id'].iloc[i]} {text!r}: python {mine}, repro {want}")
    expect("rows of eval.csv placed differently from repro's locate", differ, 0)
    print(f"eval.csv and the rule cases: all {len(ev)} rows placed as repro's locate places them")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repro", help="a repro binary: compare with its locate stage on eval.csv")
    args = ap.parse_args()

    # Normalisation.
    cases = {"ＡＢＣ１２３（北京）": "ABC123(北京)", "北京\u3000\u3000海淀": "北京 海淀",
             "  a \t\n b  ": "a b", "\u3000": "", "华为；中兴": "华为;中兴",
             "\uff5f\uff00": "\uff5f\uff00"}
    got = P.normalise(series(list(cases))).tolist()
    for (raw, want), g in zip(cases.items(), got):
        expect(f"normalise {raw!r}", g, want)

    # Application numbers.
    good = ["CN201010123456.9", "201010123456.9", "cn201010123456.9", " CN 2010 1012 3456 . 9 ",
            "ＣＮ２０１０１０１２３４５６．９", "CN2010101234569"]
    key, ptype = P.parse_numbers(series(good))
    for raw, k, t in zip(good, key, ptype):
        expect(f"number {raw!r}", (k, t), (201010123456, 1))
    # 2*2+1*4+8*6+1*5 = 61 = 5*11+6: a PCT invention (type digit 8) with check character 6.
    key, ptype = P.parse_numbers(series(["CN201010000008.x", "CN201110000008.4", "CN201080000001.6",
                                         "CN201080000001.3"]))
    expect("number with x / PCT", [k >= 0 for k in key], [True, True, True, False])
    expect("PCT type", int(ptype[2]), 1)
    bad = ["", "CN201010123456.8", "CN201040123456.X", "CN20101012345.9", "CN2010101234567.9",
           "CN20101012345A.9", "US201010123456.9", "CN201010123456.9.9", "申请号201010123456.9"]
    key, _ = P.parse_numbers(series(bad))
    for raw, k in zip(bad, key):
        expect(f"bad number {raw!r}", k, -1)

    # Dates.
    good = ["2010-03-15", "2010/3/15", "2010.03.15", "20100315", "2010年3月15日", "２０１０－０３－１５",
            " 2010-3-15 ", "2012-02-29", "2000-02-29", "2010 年 3 月 15 日"]
    for raw, y in zip(good, P.parse_dates(series(good))):
        expect(f"date {raw!r}", y, 2000 if raw.startswith("2000") else 2012 if raw.startswith("2012") else 2010)
    bad = ["", "NA", "2010-02-30", "2011-02-29", "1900-02-29", "2010-13-01", "2010-00-10", "2010-04-31",
           "2010-3/15", "10-03-15", "2010031", "201003150", "2010年3月15", "2010-03-15 12:00",
           "March 15, 2010", "0999-01-01"]
    for raw, y in zip(bad, P.parse_dates(series(bad))):
        expect(f"bad date {raw!r}", y, 0)

    # Patent types.
    got = P.parse_types(series(["发明", "发明专利", " 实用新型 ", "外观设计", "３", "", "4", "invention", "专利",
                                "发明 专利"])).tolist()
    expect("patent types", got, [1, 1, 2, 3, 3, 0, 0, 0, 0, 0])

    # Applicants.
    got = P.split_applicants(series(["华为技术有限公司；  清华大学 ; ;", "张三", "", ";", "a;;;b"])).tolist()
    expect("applicants", got, ["华为技术有限公司;清华大学", "张三", "", "", "a;b"])

    # Individuals and organisations.
    names = ["张三", "欧阳娜娜", "阿·热", "张", "张三丰四五", "王研究", "张3", "李所"]
    expect("individuals", P.is_individual(series(names)).tolist(),
           [True, True, True, False, False, False, False, False])

    # An address that starts with a postcode (ingest/mod.rs `judge_row`).
    address, postcode = P.leading_postcode(series(["100871 北京市海淀区", "100871", "1008711北京", "100871, 北京",
                                                   "北京 100871"]),
                                           series(["", "", "", "310058", ""]))
    expect("leading postcode: address", address.tolist(), ["北京市海淀区", "100871", "1008711北京", "北京", "北京 100871"])
    expect("leading postcode: postcode", postcode.tolist(), ["100871", "", "", "310058", ""])
    # locate.rs `postcode_in` (gazetteer.rs `postcodes` test).
    got = P.postcode_in(series(["100084 北京市海淀区", "清华大学,100084", "北京市海淀区1000845号", "a,1234567,100085b",
                                "100084"])).fillna("").tolist()
    expect("postcode_in", got, ["100084", "100084", "", "100085", "100084"])
    expect("strip_postcode", [G.strip_postcode("100084北京市"), G.strip_postcode("1000845北京市")],
           ["北京市", "1000845北京市"])

    # Individuals (locate.rs `every_marker_is_found_and_people_are_not_organisations`).
    names = ["张三", "欧阳娜娜", "买买·提", "李厂", "华为技术有限公司", "张"]
    expect("locate individuals", P.is_individual(series(names)).tolist(), [True, True, True, False, False, False])
    for m in P.ORG_MARKERS:
        expect(f"org marker {m}", P.is_individual(series(["张" + m])).tolist(), [False])

    # Short names (places.rs `short_names`).
    expect("short names", [G.city_short(n) for n in ["杭州市", "阿克苏地区", "锡林郭勒盟", "凉山彝族自治州",
                                                     "海西蒙古族藏族自治州", "巴音郭楞蒙古自治州", "伊犁哈萨克自治州",
                                                     "湘西土家族苗族自治州"]],
           ["杭州", "阿克苏", "锡林郭勒", "凉山", "海西", "巴音郭楞", "伊犁", "湘西"])
    expect("province short names", [G.province_short(n) for n in ["广西壮族自治区", "新疆维吾尔自治区", "内蒙古自治区",
                                                                  "北京市", "浙江省"]],
           ["广西", "新疆", "内蒙古", "北京", "浙江"])

    # The traditional-character table is the Rust one (gazetteer/text.rs `TRADITIONAL`).
    rust = open(os.path.join(ROOT, "crates/study/src/gazetteer/text.rs"), encoding="utf-8").read()
    table = re.search(r'TRADITIONAL: &str =\s*"(.*?)";', rust, re.S).group(1).replace("\\\n", "")
    expect("TRADITIONAL copy", G.TRADITIONAL, table)

    # gazetteer.rs `the_issue_examples_and_the_plan_examples`.
    g = gazetteer()
    addresses = [
        ("日照市经济开发区上海路556号", 371100), ("北海市重庆路16号", 450500), ("广州市天河区天河北路28号", 440100),
        ("苏州工业园区星湖街328号", 320500), ("新疆维吾尔自治区伊犁哈萨克自治州塔城地区额敏县", 654200),
        ("100084 北京市海淀区清华园1号", 110000), ("昆山市花桥镇", 320500), ("江苏太仓市城厢镇", 320500),
        ("海淀区中关村东路", 110000), ("浦东新区张江", 310000), ("上海市黄浦区南京东路100号", 310000),
        ("南京市雨花区小行路58号名城世家花园", 320100), ("成都高新区天府大道中段530号", 510100), ("襄樊市", 420600),
        ("湖北省襄樊市樊城区", 420600), ("巢湖市", 340100), ("那曲地区", 540600), ("莱芜市", 370100),
        ("莱芜市钢城区", 370100), ("吉林省四平市公主岭市", 220100), ("河北省邢台市桥东区", 130500),
        ("新疆伊宁市上海城", 654000), ("天门市胡市镇河南新村", 429000), ("海州区河北街道", None),
        ("四川成都高新区北京万商天勤(成都)律师事务所", 510100), ("廣東省廣州市天河區", 440100),
        ("ＳＺ 深圳市 南山区", 440300),
    ]
    for text, want in addresses + RULE_CASES:
        expect(f"address {text}", code(g, text, False), want)
    orgs = [
        ("吉林大学", 220100), ("山西大同大学", 140200), ("中山大学", 440100), ("山东大学威海分校", 371000),
        ("吉林大学第一医院", 220100), ("中国矿业大学（北京）", 110000), ("中国科学院长春光学精密机械与物理研究所", 220100),
        ("江苏恒瑞医药股份有限公司", None), ("山西省农业科学院", 140100), ("杭州华信科技有限公司", 330100),
        ("昆山华信科技有限公司", 320500),
    ]
    for text, want in orgs:
        expect(f"organisation {text}", code(g, text, True), want)
    # Without the register, the city in the name still beats the province.
    expect("山西大同大学 without the register", code(gazetteer(institutions=False), "山西大同大学", True), 140200)
    # Ambiguity abstains (海州区 is in 阜新 and 连云港; 鼓楼区 in several cities).
    expect("ambiguous 鼓楼区中山路1号", g.locate_address("鼓楼区中山路1号"), G.AMBIGUOUS)

    if args.repro:
        same_as_repro(g, args.repro)
    print("pandas_index rules: all checks passed")


if __name__ == "__main__":
    main()
