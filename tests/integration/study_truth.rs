//! The default pipeline's `locate` against the generator's truth: the share of applicants put
//! in their true city (by the form their address or name was written in), the index within the
//! bound that locate's measured errors allow, and the `index` kind on the true cities equal to
//! the generator's counts exactly. Used by `study`; the truth is `synth`'s, decided before any
//! text was written (docs/dgp.md), never `locate`'s.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use polars::prelude::*;

use crate::Project;

fn parquet(p: &Project, rel: &str) -> DataFrame {
    let file = std::fs::File::open(p.path().join(rel)).unwrap_or_else(|e| panic!("`{rel}`: {e}"));
    ParquetReader::new(file).finish().unwrap()
}

fn texts(df: &DataFrame, name: &str) -> Vec<String> {
    df.column(name)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.unwrap_or("").to_string())
        .collect()
}

fn ints(df: &DataFrame, name: &str) -> Vec<Option<i64>> {
    df.column(name)
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .collect()
}

/// Applicants by form: (with a true city, right, wrong, unresolved, without a true city but
/// located).
type ByForm = BTreeMap<String, [u64; 5]>;

/// What comparing locate's applicants with the truth found.
pub struct Accuracy {
    /// Applicants with a true city; of them right, wrong and unresolved.
    pub with_city: u64,
    pub right: u64,
    pub wrong: u64,
    pub unresolved: u64,
    /// Applicants the process gives no city (foreign, inventors) that locate placed anyway.
    pub located_without_city: u64,
    /// The most an application's errors can move any count of the index, summed over the
    /// applications with an error: its distinct true cities plus its distinct located cities.
    pub index_bound: u64,
    /// The truth's city of each applicant, by (application number, position).
    truth: HashMap<(String, i64), Option<i64>>,
}

/// Compares `output/data/applicants.parquet` with `output/raw/truth_applicants.parquet` and
/// prints the table by form.
pub fn locate_accuracy(p: &Project) -> Accuracy {
    let t = parquet(p, "output/raw/truth_applicants.parquet");
    let l = parquet(p, "output/data/applicants.parquet");
    let (t_app, t_pos, t_code, t_form) = (
        texts(&t, "app_no"),
        ints(&t, "pos"),
        ints(&t, "adcode6"),
        texts(&t, "form"),
    );
    let (l_app, l_pos, l_code) = (texts(&l, "app_no"), ints(&l, "pos"), ints(&l, "adcode6"));
    // Every applicant locate wrote is one the truth knows, and the other way round.
    assert_eq!(
        t_app.len(),
        l_app.len(),
        "applicants in truth and in locate's output"
    );
    let located: HashMap<(&str, i64), Option<i64>> = (0..l_app.len())
        .map(|k| ((l_app[k].as_str(), l_pos[k].unwrap()), l_code[k]))
        .collect();
    let mut by_form = ByForm::new();
    let mut acc = Accuracy {
        with_city: 0,
        right: 0,
        wrong: 0,
        unresolved: 0,
        located_without_city: 0,
        index_bound: 0,
        truth: HashMap::with_capacity(t_app.len()),
    };
    // Rows of one application are consecutive in the truth table.
    let mut start = 0;
    while start < t_app.len() {
        let mut end = start;
        while end < t_app.len() && t_app[end] == t_app[start] {
            end += 1;
        }
        let (mut true_cities, mut found_cities) = (BTreeSet::new(), BTreeSet::new());
        let mut error = false;
        for k in start..end {
            let key = (t_app[k].as_str(), t_pos[k].unwrap());
            let found = *located
                .get(&key)
                .unwrap_or_else(|| panic!("locate has no applicant {key:?}"));
            let want = t_code[k];
            true_cities.extend(want);
            found_cities.extend(found);
            error |= found != want;
            let row = by_form.entry(t_form[k].clone()).or_default();
            let slot = match (want, found) {
                (Some(w), Some(f)) if w == f => 1,
                (Some(_), Some(_)) => 2,
                (Some(_), None) => 3,
                (None, Some(_)) => 4,
                (None, None) => 0,
            };
            row[0] += u64::from(want.is_some());
            if slot > 0 {
                row[slot] += 1;
            }
            acc.truth.insert((t_app[k].clone(), key.1), want);
        }
        if error {
            acc.index_bound += (true_cities.len() + found_cities.len()) as u64;
        }
        start = end;
    }
    println!("locate on the synthetic export, by the form the applicant was written in");
    println!("form                 with city   right%  wrong%  unres%  located w/o city");
    let mut total = [0u64; 5];
    for (form, row) in &by_form {
        let pct = |k: u64| 100.0 * k as f64 / row[0].max(1) as f64;
        println!(
            "{form:20} {:>10} {:>7.2} {:>7.2} {:>7.2} {:>10}",
            row[0],
            pct(row[1]),
            pct(row[2]),
            pct(row[3]),
            row[4]
        );
        for (t, r) in total.iter_mut().zip(row) {
            *t += r;
        }
    }
    [
        acc.with_city,
        acc.right,
        acc.wrong,
        acc.unresolved,
        acc.located_without_city,
    ] = total;
    let pct = |k: u64| 100.0 * k as f64 / acc.with_city as f64;
    println!(
        "{:20} {:>10} {:>7.2} {:>7.2} {:>7.2} {:>10}",
        "all",
        acc.with_city,
        pct(acc.right),
        pct(acc.wrong),
        pct(acc.unresolved),
        acc.located_without_city
    );
    acc
}

/// The integer counts of the index that the generator's truth table has too.
const COUNTS: [&str; 5] = ["apps", "joint", "joint_cc", "joint_cp", "inv_joint_cc"];

/// `(adcode6, year) -> counts` of a city-year CSV.
fn city_year_counts(text: &str) -> BTreeMap<(String, String), Vec<f64>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = |c: &str| header.iter().position(|h| *h == c).unwrap();
    let (code, year) = (at("adcode6"), at("year"));
    let cols: Vec<usize> = COUNTS.iter().map(|c| at(c)).collect();
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            let v = cols.iter().map(|&i| cells[i].parse().unwrap()).collect();
            ((cells[code].to_string(), cells[year].to_string()), v)
        })
        .collect()
}

/// The index differs from the truth's counts by no more than locate's errors allow: for each
/// count, the sum over city-years of |index - truth| is at most `Accuracy::index_bound`.
pub fn index_within_errors(p: &Project, acc: &Accuracy) {
    let truth = city_year_counts(&p.read("output/raw/truth_city_year.csv"));
    let index = city_year_counts(&p.read("output/data/collab_index.csv"));
    assert_eq!(
        truth.keys().collect::<Vec<_>>(),
        index.keys().collect::<Vec<_>>()
    );
    for (k, name) in COUNTS.iter().enumerate() {
        let (mut distance, mut total) = (0.0, 0.0);
        for (key, t) in &truth {
            distance += (index[key][k] - t[k]).abs();
            total += t[k];
        }
        println!(
            "{name}: sum |index - truth| = {distance} ({:.2}% of {total}); bound {}",
            100.0 * distance / total,
            acc.index_bound
        );
        assert!(
            distance <= acc.index_bound as f64,
            "`{name}`: the index is {distance} from the truth, more than locate's errors allow ({})",
            acc.index_bound
        );
    }
}

/// The `index` kind on locate's applicants with every city replaced by the true one equals the
/// generator's counts exactly, city-year by city-year: the counting agrees with the truth's.
pub fn index_on_true_cities_is_the_truth(p: &Project, acc: &Accuracy) {
    let mut l = parquet(p, "output/data/applicants.parquet");
    let (app, pos) = (texts(&l, "app_no"), ints(&l, "pos"));
    let true_codes: Vec<Option<i64>> = app
        .into_iter()
        .zip(pos)
        .map(|(a, q)| acc.truth[&(a, q.unwrap())])
        .collect();
    l.with_column(Column::new("adcode6".into(), true_codes))
        .unwrap();
    std::fs::create_dir_all(p.path().join("output/check")).unwrap();
    let mut file =
        std::fs::File::create(p.path().join("output/check/applicants_true.parquet")).unwrap();
    ParquetWriter::new(&mut file).finish(&mut l).unwrap();
    let spec = p
        .read("stages/index.yaml")
        .replace(
            "output/data/applicants.parquet",
            "output/check/applicants_true.parquet",
        )
        .replace("output/data/", "output/check/")
        .replace("output/reports/", "output/check/");
    p.write("stages/index_truth.yaml", &spec);
    let mut pipeline = p.read("pipeline.yaml");
    pipeline.push_str(
        "\n  index_truth:\n    kind: index\n    params: {spec: stages/index_truth.yaml}\n",
    );
    p.write("pipeline.yaml", &pipeline);
    p.repro(&["run", "index_truth"]).ok();
    let truth = city_year_counts(&p.read("output/raw/truth_city_year.csv"));
    let index = city_year_counts(&p.read("output/check/collab_index.csv"));
    assert!(
        truth == index,
        "the index on the true cities differs from the truth"
    );
}
