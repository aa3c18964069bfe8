//! The data stages on small hand-written files: city assignment and the collaboration index
//! against counts worked out by hand, and the synthetic generator's own checks.

use std::collections::BTreeMap;

use crate::Project;

/// Twelve applications, each chosen to exercise one rule (see the comments of `expected`).
const APPLICATIONS: &str = "\
app_no,year,ptype,applicants,address,postcode
201510000001.X,2015,1,杭州甲科技有限公司;宁波乙材料有限公司,浙江省杭州市西湖区文三路1号,310012
201520000002.X,2015,2,华信恒达电子有限公司,江苏省南京市玄武区1号,
201520000003.X,2015,2,上海丙有限公司;华信恒达电子有限公司;王伟,上海市浦东新区1号,
201510000004.X,2015,1,丁戊研究所;浙江大学,浙江省西湖区文三路2号,310013
201610000005.X,2016,1,SIEMENS AKTIENGESELLSCHAFT;苏州己有限公司,德国慕尼黑,
201620000006.X,2016,2,张三;李四,,
201530000007.X,2015,3,华信恒达电子有限公司;杭州甲科技有限公司,江苏省南京市玄武区2号,
201620000008.X,2016,2,乙丙公司,湖北省武汉市洪山区1号,
201620000009.X,2016,2,乙丙公司,湖北省武汉市洪山区2号,
201620000010.X,2016,2,乙丙公司,湖南省长沙市岳麓区1号,
201610000011.X,2016,1,杭州甲科技有限公司;乙丙公司,浙江省杭州市西湖区3号,
201610000012.X,2016,1,杭州甲科技有限公司;杭州庚有限公司;武汉辛有限公司,浙江省杭州市西湖区4号,
";

const POPULATION: &str = "\
adcode6,year,pop
330100,2015,1000
330100,2016,1000
320100,2015,800
";

/// Copies the project's city table and gazetteer tables into `p`.
pub(crate) fn copy_gazetteer(p: &Project) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for rel in [
        "data/cities.csv",
        "data/counties.csv",
        "data/place_history.csv",
        "data/institutions.csv",
    ] {
        p.write(rel, &std::fs::read_to_string(root.join(rel)).unwrap());
    }
}

fn project(strategy: &str) -> Project {
    let p = Project::new();
    copy_gazetteer(&p);
    p.write("in/applications.csv", APPLICATIONS)
        .write("in/postcodes.csv", "prefix4,adcode6\n3100,330100\n")
        .write("in/pop.csv", POPULATION)
        .write(
            "stages/locate.yaml",
            &format!(
                "applications: in/applications.csv\npostcodes: in/postcodes.csv\n\
                 strategy: {strategy}\nout: out/applicants.parquet\nreport: out/locate.json\n"
            ),
        )
        .write(
            "stages/index.yaml",
            "applicants: out/applicants.parquet\npopulation: in/pop.csv\nfirst_year: 2015\n\
             last_year: 2016\nout: out/index.csv\nedges: out/edges.csv\nreport: out/index.json\n",
        )
        .write(
            "pipeline.yaml",
            "stages:\n  locate:\n    kind: locate\n    params: {spec: stages/locate.yaml}\n  \
             index:\n    kind: index\n    params: {spec: stages/index.yaml}\n",
        );
    p
}

/// The index as `(adcode, year) -> column -> value`, for the rows with any application.
fn index(p: &Project) -> BTreeMap<(u32, i32), BTreeMap<String, f64>> {
    let text = p.read("out/index.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut out = BTreeMap::new();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let row: BTreeMap<String, f64> = header
            .iter()
            .zip(&cells)
            .filter(|(_, v)| !v.is_empty())
            .map(|(h, v)| (h.to_string(), v.parse().unwrap()))
            .collect();
        if row["apps"] > 0.0 {
            out.insert((row["adcode6"] as u32, row["year"] as i32), row);
        }
    }
    out
}

#[track_caller]
fn check(
    index: &BTreeMap<(u32, i32), BTreeMap<String, f64>>,
    key: (u32, i32),
    want: &[(&str, f64)],
) {
    let row = index
        .get(&key)
        .unwrap_or_else(|| panic!("no index row for {key:?}"));
    for (col, v) in want {
        let got = row[*col];
        assert!(
            (got - v).abs() < 1e-12,
            "{key:?} `{col}`: expected {v}, found {got}"
        );
    }
}

const HANGZHOU: u32 = 330100;
const NINGBO: u32 = 330200;
const NANJING: u32 = 320100;
const SHANGHAI: u32 = 310000;
const SUZHOU: u32 = 320500;
const WUHAN: u32 = 420100;
const CHANGSHA: u32 = 430100;

#[test]
fn locate_and_index_follow_the_rules_worked_out_by_hand() {
    let p = project("[address, postcode, name, place]");
    p.repro(&["run"]).ok();
    let ix = index(&p);
    // Exactly these city-years have applications.
    let keys: Vec<(u32, i32)> = ix.keys().copied().collect();
    let mut want_keys = vec![
        (HANGZHOU, 2015),
        (NINGBO, 2015),
        (NANJING, 2015),
        (SHANGHAI, 2015),
        (SUZHOU, 2016),
        (WUHAN, 2016),
        (CHANGSHA, 2016),
        (HANGZHOU, 2016),
    ];
    want_keys.sort();
    assert_eq!(keys, want_keys);
    // Hangzhou 2015: #1 (with Ningbo, found by the place name in its name; same province),
    // #4 (first applicant by postcode, 浙江大学 at the provincial capital: joint, same city), #7
    // (Nanjing firm first; 杭州甲 found by name). Fractions: 1/2 + 1/2. Invention: #1 only.
    check(
        &ix,
        (HANGZHOU, 2015),
        &[
            ("apps", 3.0),
            ("joint", 3.0),
            ("joint_cc", 2.0),
            ("joint_cp", 1.0),
            ("frac_cc", 1.0),
            ("inv_joint_cc", 1.0),
            ("inv_frac_cc", 0.5),
            ("degree", 2.0),
            ("strength", 2.0),
            ("collab", 2.0 / 1000.0),
            ("collab_cp", 1.0 / 1000.0),
            ("collab_frac", 1.0 / 1000.0),
            ("collab_inv", 1.0 / 1000.0),
        ],
    );
    check(
        &ix,
        (NINGBO, 2015),
        &[
            ("apps", 1.0),
            ("joint", 1.0),
            ("joint_cc", 1.0),
            ("joint_cp", 0.0),
            ("frac_cc", 0.5),
            ("inv_joint_cc", 1.0),
            ("degree", 1.0),
        ],
    );
    // Nanjing 2015: #2 (single), #3 (Shanghai first, 华信恒达 found by name, an individual left
    // unresolved but counted among the applicants: 1/3), #7 (1/2).
    check(
        &ix,
        (NANJING, 2015),
        &[
            ("apps", 3.0),
            ("joint", 2.0),
            ("joint_cc", 2.0),
            ("joint_cp", 2.0),
            ("frac_cc", 1.0 / 3.0 + 0.5),
            ("inv_joint_cc", 0.0),
            ("degree", 2.0),
            ("collab", 2.0 / 800.0),
        ],
    );
    check(
        &ix,
        (SHANGHAI, 2015),
        &[
            ("apps", 1.0),
            ("joint_cc", 1.0),
            ("joint_cp", 1.0),
            ("frac_cc", 1.0 / 3.0),
        ],
    );
    // #5: a foreign first applicant is not located; 苏州己 is, alone: joint but not cross-city.
    check(
        &ix,
        (SUZHOU, 2016),
        &[("apps", 1.0), ("joint", 1.0), ("joint_cc", 0.0)],
    );
    // 乙丙公司 is a first applicant twice in Wuhan and once in Changsha: the name step takes
    // Wuhan for #11. #12: two Hangzhou applicants of three (2/3), Wuhan 1/3.
    check(
        &ix,
        (WUHAN, 2016),
        &[
            ("apps", 4.0),
            ("joint", 2.0),
            ("joint_cc", 2.0),
            ("joint_cp", 2.0),
            ("frac_cc", 0.5 + 1.0 / 3.0),
            ("inv_joint_cc", 2.0),
            ("inv_frac_cc", 0.5 + 1.0 / 3.0),
            ("degree", 1.0),
            ("strength", 2.0),
        ],
    );
    check(&ix, (CHANGSHA, 2016), &[("apps", 1.0), ("joint", 0.0)]);
    check(
        &ix,
        (HANGZHOU, 2016),
        &[
            ("apps", 2.0),
            ("joint_cc", 2.0),
            ("frac_cc", 0.5 + 2.0 / 3.0),
            ("degree", 1.0),
            ("strength", 2.0),
        ],
    );
    // No population for Ningbo: the per-10,000 measures are blank, the counts are not.
    assert!(!ix[&(NINGBO, 2015)].contains_key("collab"));

    let edges = p.read("out/edges.csv");
    assert_eq!(
        edges,
        "year,city_a,city_b,weight\n2015,310000,320100,1\n2015,320100,330100,1\n\
         2015,330100,330200,1\n2016,330100,420100,2\n"
    );

    // The report: 22 applicants; 4 unresolved (王伟, the foreign firm, 张三, 李四).
    let report: serde_json::Value = serde_json::from_str(&p.read("out/locate.json")).unwrap();
    assert_eq!(report["applicants"], 22);
    assert_eq!(report["unresolved"], 4);
    let m = &report["by_role_and_method"];
    assert_eq!(m["first"]["address"], 9);
    assert_eq!(m["first"]["postcode"], 1);
    assert_eq!(m["first"]["unresolved"], 2);
    assert_eq!(m["co"]["name"], 3);
    assert_eq!(m["co"]["place"], 5);
    assert_eq!(m["co"]["unresolved"], 2);
    assert_eq!(report["by_kind"]["individual"]["applicants"], 3);
}

#[test]
fn the_strategy_is_a_parameter() {
    // Without `postcode` and `name`: #4's first applicant, 华信恒达 in #3 and 乙丙公司 in #11
    // stay unresolved, so #3 and #11 are no longer cross-city; #7 still is (杭州甲 carries its
    // city's name).
    let p = project("[address, place]");
    p.repro(&["run"]).ok();
    let ix = index(&p);
    check(
        &ix,
        (SHANGHAI, 2015),
        &[("apps", 1.0), ("joint", 1.0), ("joint_cc", 0.0)],
    );
    check(&ix, (NANJING, 2015), &[("apps", 2.0), ("joint_cc", 1.0)]);
    // #4 still counts for Hangzhou through 浙江大学 (the provincial capital).
    check(
        &ix,
        (HANGZHOU, 2015),
        &[("apps", 3.0), ("joint", 3.0), ("joint_cc", 2.0)],
    );
    let report: serde_json::Value = serde_json::from_str(&p.read("out/locate.json")).unwrap();
    assert_eq!(report["unresolved"], 7);
    check(
        &ix,
        (WUHAN, 2016),
        &[("apps", 3.0), ("joint", 1.0), ("joint_cc", 1.0)],
    );

    // A `postcode` step without a directory is a spec error, caught before anything runs.
    p.write(
        "stages/locate.yaml",
        "applications: in/applications.csv\nstrategy: [postcode]\nout: out/a.parquet\nreport: out/r.json\n",
    );
    let out = p.repro(&["run"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    assert!(out
        .stderr
        .contains("the `postcode` step needs a postcode directory"));
}

#[test]
fn a_typo_in_a_stage_spec_points_at_its_line() {
    let p = project("[address]");
    p.write(
        "stages/index.yaml",
        "applicants: out/applicants.parquet\npopulation: in/pop.csv\nfirst_year: 2015\n\
         last_yaer: 2016\nout: out/index.csv\nedges: out/edges.csv\nreport: out/index.json\n",
    );
    let out = p.repro(&["run"]);
    assert_eq!(out.code, 2);
    crate::snapshot_settings().bind(|| {
        insta::assert_snapshot!("index_spec_typo", out.snapshot());
    });
}

/// A small synthetic data set: generator, then the panel on the generator's exact counts.
fn small_synthetic() -> Project {
    let p = Project::new();
    copy_gazetteer(&p);
    p.write(
            "stages/synth.yaml",
            "seed: 7\nrecords: 60000\ncollab_first: 0.01\ncollab_last: 0.03\nout_dir: raw\n",
        )
        .write(
            "stages/panel.yaml",
            "yearbook: raw/yearbook.csv\nrd_province: raw/rd_province.csv\nindex: raw/truth_city_year.csv\n\
             first_year: 2010\nlast_year: 2020\nlags: [collab, gap]\nwinsorize: 0.05\n\
             out: out/panel.csv\ncodebook: out/codebook.md\nreport: out/panel.json\n",
        )
        .write(
            "pipeline.yaml",
            "stages:\n  synth:\n    kind: synth\n    params: {spec: stages/synth.yaml}\n  \
             truth_index:\n    cmd: >-\n      awk -F, 'BEGIN{OFS=\",\"} NR==1{print $0,\"collab_cp\",\"collab_inv\",\"collab_frac\"; next}\n      {print $0,$7/$3,$9/$3,$8/$3}' raw/truth_city_year.csv > raw/index.csv\n    \
             deps: [raw/truth_city_year.csv]\n    outs: [raw/index.csv]\n  \
             panel:\n    kind: panel\n    params: {spec: stages/panel.yaml}\n",
        );
    p
}

fn csv_rows(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

#[test]
fn the_panel_recomputes_from_the_yearbook() {
    let p = small_synthetic();
    let panel_spec = p
        .read("stages/panel.yaml")
        .replace("raw/truth_city_year.csv", "raw/index.csv");
    p.write("stages/panel.yaml", &panel_spec);
    p.repro(&["run"]).ok();
    let (yh, yrows) = csv_rows(&p.read("raw/yearbook.csv"));
    let (ph, prows) = csv_rows(&p.read("out/panel.csv"));
    let yc = |n: &str| yh.iter().position(|h| h == n).unwrap();
    let pc = |n: &str| ph.iter().position(|h| h == n).unwrap();
    let num = |s: &str| s.parse::<f64>().unwrap();
    // Per-capita GDP of every city-year with data, and its yearly mean.
    let mut pcgdp: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut ter_sec: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
    for r in &yrows {
        if !r[yc("pcgdp")].is_empty() {
            pcgdp.insert(
                (r[yc("adcode6")].clone(), r[yc("year")].clone()),
                num(&r[yc("pcgdp")]),
            );
        }
        ter_sec.insert(
            (r[yc("adcode6")].clone(), r[yc("year")].clone()),
            (num(&r[yc("ter_share")]), num(&r[yc("sec_share")])),
        );
    }
    let mut mean: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for ((_, y), v) in &pcgdp {
        let e = mean.entry(y.clone()).or_insert((0.0, 0.0));
        e.0 += v;
        e.1 += 1.0;
    }
    assert!(!prows.is_empty());
    let mut previous: BTreeMap<String, f64> = BTreeMap::new();
    for r in &prows {
        let key = (r[pc("city")].clone(), r[pc("year")].clone());
        let (s, k) = mean[&key.1];
        let want = (pcgdp[&key].ln() - (s / k).ln()).abs();
        let got = num(&r[pc("gap")]);
        assert!(
            (got - want).abs() < 1e-12,
            "gap of {key:?}: {got} vs {want}"
        );
        assert_eq!(r[pc("gap")], r[pc("gap_mean")]);
        let (ter, sec) = ter_sec[&key];
        assert!((num(&r[pc("indstr")]) - ter / sec).abs() < 1e-12);
        // Tertiary-dominated: in the first year.
        let (t0, s0) = ter_sec[&(key.0.clone(), "2010".to_string())];
        assert_eq!(r[pc("tertiary")], if t0 > s0 { "1" } else { "0" });
        assert_eq!(num(&r[pc("central_west")]) + num(&r[pc("east")]), 1.0);
        // The lag is last year's value of the same city (blank in 2010).
        let collab = num(&r[pc("collab")]);
        if key.1 == "2010" {
            assert!(r[pc("collab_l1")].is_empty());
        } else if let Some(prev) = previous.get(&key.0) {
            assert_eq!(num(&r[pc("collab_l1")]), *prev);
        }
        previous.insert(key.0.clone(), collab);
    }
    // Winsorising clamps into the range of the unwinsorised values and leaves the middle alone.
    let gaps: Vec<f64> = prows.iter().map(|r| num(&r[pc("gap")])).collect();
    let wins: Vec<f64> = prows.iter().map(|r| num(&r[pc("gap_w")])).collect();
    let (lo, hi) = wins
        .iter()
        .fold((f64::MAX, f64::MIN), |a, &w| (a.0.min(w), a.1.max(w)));
    let clamped = gaps.iter().filter(|&&g| g < lo || g > hi).count();
    assert!(
        clamped > 0 && clamped <= gaps.len() / 5,
        "{clamped} of {}",
        gaps.len()
    );
    for (g, w) in gaps.iter().zip(&wins) {
        assert_eq!(*w, g.clamp(lo, hi));
    }
    // The codebook defines every column.
    let codebook = p.read("out/codebook.md");
    for h in &ph {
        assert!(codebook.contains(&format!("`{h}`")), "codebook lacks `{h}`");
    }
}

#[test]
fn synthetic_data_are_identical_across_thread_counts_and_folders() {
    let a = small_synthetic();
    let b = small_synthetic();
    a.command(&["run", "synth"])
        .env("RAYON_NUM_THREADS", "1")
        .status()
        .unwrap();
    b.command(&["run", "synth"])
        .env("RAYON_NUM_THREADS", "2")
        .status()
        .unwrap();
    for f in [
        "patents.csv",
        "yearbook.csv",
        "rd_province.csv",
        "postcodes.csv",
        "truth.json",
        "truth_city_year.csv",
    ] {
        let (x, y) = (a.read(&format!("raw/{f}")), b.read(&format!("raw/{f}")));
        assert!(x == y, "`raw/{f}` differs");
    }
    let bytes = |p: &Project| std::fs::read(p.path().join("raw/truth_applicants.parquet")).unwrap();
    assert!(
        bytes(&a) == bytes(&b),
        "`raw/truth_applicants.parquet` differs"
    );
    // The export is as messy as documented: full-width digits, several date formats, quoted
    // foreign names with commas.
    let raw = a.read("raw/patents.csv");
    assert!(raw.starts_with("申请号,申请日,名称,主分类号,申请(专利权)人,地址,邮编,国省代码\n"));
    assert!(raw.contains("ＣＮ"));
    assert!(raw.contains('年') && raw.contains('/'));
    assert!(raw.contains("\"SAMSUNG ELECTRONICS CO., LTD.\""));
}

/// The same twelve applications as a raw office export (Chinese headers, mixed date formats,
/// full-width separators), plus three unusable rows: a full-width re-export of #1, a 30 February
/// and a wrong check character. Check characters worked out with the rule of docs/data.md.
const RAW_EXPORT: &str = "\
申请号,申请日,名称,主分类号,申请(专利权)人,地址,邮编,国省代码
CN201510000001.0,2015-03-01,一种装置,H04L 29/06,杭州甲科技有限公司;宁波乙材料有限公司,浙江省杭州市西湖区文三路1号,310012,33
CN201520000002.0,2015/4/2,一种装置,,华信恒达电子有限公司,江苏省南京市玄武区1号,,32
CN201520000003.5,2015.05.03,一种装置,,上海丙有限公司；华信恒达电子有限公司；王伟,上海市浦东新区1号,,31
CN201510000004.4,20150604,一种方法,,丁戊研究所;浙江大学,浙江省西湖区文三路2号,310013,33
CN201610000005.3,2016年7月5日,一种方法,,\"SIEMENS AKTIENGESELLSCHAFT;苏州己有限公司\",德国慕尼黑,,DE
CN201620000006.3,2016-08-06,一种方法,,张三;李四,,,
 CN201530000007.9 ,2015-09-07,一种外观,,华信恒达电子有限公司; 杭州甲科技有限公司,江苏省南京市玄武区2号,,32
CN201620000008.2,2016-10-08,一种装置,,乙丙公司,湖北省武汉市洪山区1号,,42
CN201620000009.7,2016-11-09,一种装置,,乙丙公司,湖北省武汉市洪山区2号,,42
CN201620000010.X,2016-12-10,一种装置,,乙丙公司,湖南省长沙市岳麓区1号,,43
CN201610000011.9,2016-01-11,一种方法,,杭州甲科技有限公司;乙丙公司,浙江省杭州市西湖区3号,,33
CN201610000012.3,2016-02-12,一种方法,,杭州甲科技有限公司;杭州庚有限公司;武汉辛有限公司,浙江省杭州市西湖区4号,,33
ＣＮ２０１５１００００００１．０,2015-03-01,一种装置,H04L 29/06,杭州甲科技有限公司;宁波乙材料有限公司,浙江省杭州市西湖区文三路1号,310012,33
CN201510000013.3,2015-02-30,一种装置,,杭州甲科技有限公司;南京壬有限公司,浙江省杭州市西湖区5号,,33
CN201510000014.0,2015-03-03,一种装置,,杭州甲科技有限公司;南京癸有限公司,浙江省杭州市西湖区6号,,33
";

#[test]
fn raw_exports_in_utf8_and_gbk_give_the_index_worked_out_by_hand() {
    for encoding in ["utf-8", "gbk"] {
        let p = project("[address, postcode, name, place]");
        let bytes: Vec<u8> = if encoding == "gbk" {
            let (b, _, bad) = encoding_rs::GBK.encode(RAW_EXPORT);
            assert!(!bad);
            b.into_owned()
        } else {
            RAW_EXPORT.as_bytes().to_vec()
        };
        std::fs::create_dir_all(p.path().join("in")).unwrap();
        std::fs::write(p.path().join("in/export.csv"), bytes).unwrap();
        p.write(
            "stages/ingest.yaml",
            "inputs: [in/export.csv]\nout: out/applications.parquet\n\
             quarantine: out/quarantine.csv\nreport: out/ingest.json\n",
        );
        let locate = p
            .read("stages/locate.yaml")
            .replace("in/applications.csv", "out/applications.parquet");
        p.write("stages/locate.yaml", &locate);
        let pipeline = p.read("pipeline.yaml").replace(
            "stages:\n",
            "stages:\n  ingest:\n    kind: ingest\n    params: {spec: stages/ingest.yaml}\n",
        );
        p.write("pipeline.yaml", &pipeline);
        p.repro(&["run"]).ok();

        let report: serde_json::Value = serde_json::from_str(&p.read("out/ingest.json")).unwrap();
        let t = &report["totals"];
        assert_eq!(t["rows_read"], 15, "{encoding}");
        assert_eq!(t["kept"], 12, "{encoding}");
        assert_eq!(t["quarantined"]["duplicate"], 1, "{encoding}");
        assert_eq!(t["quarantined"]["bad_date"], 1, "{encoding}");
        assert_eq!(t["quarantined"]["bad_application_number"], 1, "{encoding}");

        // The quarantined rows add nothing: the index is the one worked out by hand above.
        let ix = index(&p);
        check(
            &ix,
            (HANGZHOU, 2015),
            &[
                ("apps", 3.0),
                ("joint", 3.0),
                ("joint_cc", 2.0),
                ("frac_cc", 1.0),
            ],
        );
        check(
            &ix,
            (NANJING, 2015),
            &[
                ("apps", 3.0),
                ("joint_cc", 2.0),
                ("frac_cc", 1.0 / 3.0 + 0.5),
            ],
        );
        check(
            &ix,
            (WUHAN, 2016),
            &[("apps", 4.0), ("frac_cc", 0.5 + 1.0 / 3.0)],
        );
        check(&ix, (SUZHOU, 2016), &[("joint", 1.0), ("joint_cc", 0.0)]);
        let located: serde_json::Value = serde_json::from_str(&p.read("out/locate.json")).unwrap();
        assert_eq!(located["applicants"], 22, "{encoding}");
        assert_eq!(located["unresolved"], 4, "{encoding}");
    }
}
