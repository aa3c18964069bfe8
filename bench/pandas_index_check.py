#!/usr/bin/env python3
"""Checks the cell-level rules of bench/pandas_index.py on the cases of repro's own unit tests
(crates/study/src/textnorm.rs of the ingest stage, crates/study/src/places.rs), so that the benchmark's pandas side is known
to implement the same rules beyond what the synthetic export exercises.

Usage: pandas_index_check.py [data/cities.csv]   (exits 1 on the first failure)
"""

import os
import sys

import pandas as pd
import pyarrow as pa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pandas_index as P  # noqa: E402


def series(values):
    return pd.Series(values, dtype=pd.ArrowDtype(pa.string()))


def expect(what, got, want):
    if got != want:
        print(f"FAIL {what}: got {got!r}, want {want!r}")
        sys.exit(1)


def main() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cities_csv = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "data", "cities.csv")

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

    # Places (crates/study/src/places.rs tests).
    cities = pd.read_csv(cities_csv, dtype={"city": str, "province": str}).sort_values("adcode6")
    cities = cities.reset_index(drop=True)
    places = P.PlaceIndex(cities)

    def by(name):
        hit = cities.index[cities["city"] == name]
        return int(hit[0]) if len(hit) else -1

    for address, city in [("吉林省吉林市船营区", "吉林市"), ("浙江省杭州市西湖区文三路90号", "杭州市"),
                          ("浙江杭州西湖区", "杭州市"), ("北京市朝阳区", "北京市"), ("辽宁省朝阳市双塔区", "朝阳市"),
                          ("朝阳区建国路", None), ("浙江省西湖区", None),
                          ("四川省凉山彝族自治州西昌市", "凉山彝族自治州"),
                          # Street names are not cities; a full city name anywhere counts.
                          ("广东省中山路100号", None), ("广东省中山市中山路100号", "中山市"),
                          ("浙江省长春路8号杭州", "杭州市"), ("吉林省吉林", "吉林市"), ("吉林船营区", None)]:
        expect(f"address {address}", places.address_city(address), by(city) if city else -1)
    for name, city in [("杭州华信科技有限公司", "杭州市"), ("浙江大学", "杭州市"), ("上海交通大学", "上海市"),
                       ("华信恒达科技有限公司", None),
                       # A name shared by a city and a province: the city only inside that province.
                       ("吉林某某有限公司", "吉林市"), ("海南大学", "海口市")]:
        expect(f"name {name}", places.name_city(name), by(city) if city else -1)
    expect("short names", [P.city_short(n) for n in ["杭州市", "阿克苏地区", "锡林郭勒盟", "凉山彝族自治州",
                                                     "海西蒙古族藏族自治州", "巴音郭楞蒙古自治州", "伊犁哈萨克自治州",
                                                     "湘西土家族苗族自治州"]],
           ["杭州", "阿克苏", "锡林郭勒", "凉山", "海西", "巴音郭楞", "伊犁", "湘西"])
    expect("province short names", [P.province_short(n) for n in ["广西壮族自治区", "新疆维吾尔自治区", "内蒙古自治区",
                                                                  "北京市", "浙江省"]],
           ["广西", "新疆", "内蒙古", "北京", "浙江"])
    print("pandas_index rules: all checks passed")


if __name__ == "__main__":
    main()
