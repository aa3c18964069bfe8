//! What a reader of the outputs sees beyond the numbers: the report's exhibits in `exhibits:`
//! order with their labels and its title block, and `cluster:a^b` clustering on an interaction
//! (the results JSON's `produced_by` is checked in `study`, which runs the default pipeline).

use crate::Project;

/// A small panel: 40 units in 4 regions over 6 years, with `region_year` = region x year coded by
/// hand, so clustering on `region^year` can be compared with clustering on that column.
fn panel() -> String {
    let mut out = String::from("unit,region,year,region_year,x,y\n");
    for unit in 0..40u32 {
        let region = unit % 4;
        for year in 0..6u32 {
            // Deterministic, irregular values (no RNG needed).
            let x = f64::from((unit * 37 + year * 11) % 17) / 3.0;
            let e = f64::from((unit * 13 + year * 29 + region * 7) % 19) / 5.0 - 1.8;
            let y = 1.0 + 0.5 * x + f64::from(region) * 0.3 + e;
            out.push_str(&format!(
                "{unit},{region},{year},{},{x},{y}\n",
                region * 100 + year
            ));
        }
    }
    out
}

fn fit_json(p: &Project, vcov: &str) -> serde_json::Value {
    let out = p.repro(&[
        "fit",
        "--data",
        "panel.csv",
        "--formula",
        "y ~ x | unit",
        "--vcov",
        vcov,
        "--json",
    ]);
    out.ok();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

#[test]
fn cluster_on_an_interaction_equals_cluster_on_its_coded_column() {
    let p = Project::new();
    p.write("panel.csv", &panel());
    let inter = fit_json(&p, "cluster:region^year");
    let coded = fit_json(&p, "cluster:region_year");
    let se = |v: &serde_json::Value| v["coefficients"][0]["std_error"].as_f64().unwrap();
    assert!(se(&inter) > 0.0);
    assert_eq!(se(&inter), se(&coded));
    assert_eq!(inter["n_clusters"]["region^year"], 24);
}

#[test]
fn the_report_lists_exhibits_in_their_order_with_labels_and_a_title_block() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        r#"title: "A study & its tables"
authors: [Ada Lovelace, Charles Babbage]
report: output/report.html
exhibits:
  output/figures/z.svg: Figure 1
  output/tables/b.html: Table 1
  output/tables/a.html: Table 2
stages:
  make:
    cmd: mkdir -p output/tables output/figures && echo '<table><caption>A</caption></table>' > output/tables/a.html && echo '<table><caption>B</caption></table>' > output/tables/b.html && echo '<table><caption>C</caption></table>' > output/tables/c.html && echo '<svg xmlns="http://www.w3.org/2000/svg"><text>Z</text></svg>' > output/figures/z.svg
    outs: [output/tables, output/figures]
"#,
    );
    p.repro(&["run"]).ok();
    let html = p.read("output/report.html");
    let at = |needle: &str| {
        html.find(needle)
            .unwrap_or_else(|| panic!("`{needle}` not in the report"))
    };
    // `exhibits:` order, then what no exhibit names.
    assert!(at("<h3 class=\"exhibit\">Figure 1</h3>") < at("<h3 class=\"exhibit\">Table 1</h3>"));
    assert!(at("<h3 class=\"exhibit\">Table 1</h3>") < at("<caption>B</caption>"));
    assert!(at("<caption>B</caption>") < at("<h3 class=\"exhibit\">Table 2</h3>"));
    assert!(at("<caption>A</caption>") < at("<caption>C</caption>"));
    assert!(html.contains("<h1>A study &amp; its tables</h1>"));
    assert!(html.contains("Ada Lovelace, Charles Babbage"));
    assert!(html.contains("Latest logged run 20"), "the run's date");
    assert!(html.contains("; machine: "));
    // The stage graph scales to the page.
    assert!(html.contains("<svg class=\"dag\" viewBox="));
    // The date and machine are in the report only, never in the lock.
    assert!(!p.read("repro.lock").contains("machine"));
}
