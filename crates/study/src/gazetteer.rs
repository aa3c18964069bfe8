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
//!
//! The work is split by responsibility: `model` (the shared types, a leaf), `text`
//! (normalisation and postcodes), `load` (reading the tables, building the indexes), `matching`
//! (the names of an address and the deciding rules) and `organisation` (organisation names). This
//! file only declares them and re-exports the public surface; no child imports from it.

mod load;
mod matching;
mod model;
mod organisation;
mod text;

pub use model::{Gazetteer, Located, Scratch, Sources};
pub use text::{postcode_in, strip_postcode};

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::places::Cities;
    use repro_tabular::table as tabular;

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
