//! Timing of `quantile::rq` on the headline quantile-regression benchmark (`tau = 0.5`, `nid`
//! standard errors, intercept + the `x*` columns), broken down into its parts:
//!
//! ```sh
//! cargo run -p repro-estimators --release --example rq_bench -- [CSV] [RUNS] [METHOD] [ROWS]
//! ```
//!
//! `CSV` defaults to `bench/data/qr_100k.csv` (first column the response, the others regressors),
//! `RUNS` to 3 (medians are printed), `METHOD` to `auto` (`br`, `fn`, `pfn`, `auto`); `ROWS`
//! keeps only the first rows of the file (default all), to compare the methods across sizes.
//! The parts are timed as separate calls of the public API: the main fit and the two `nid` refits
//! at `tau ± h` (each `rq` with `se = None`), and the complete `rq(se = Nid)`, whose excess over
//! the three fits is the covariance step. The printed coefficients and objective allow checking
//! that a speed-up left the solution unchanged.

use std::time::Instant;

use faer::Mat;
use repro_estimators::quantile::{bandwidth, rq, Bandwidth, RqMethod, RqOptions, RqSe};

fn load(path: &str, rows: usize) -> (Vec<f64>, Mat<f64>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let mut lines = text.lines();
    let header = lines.next().expect("empty CSV");
    let k = header.split(',').count(); // response + regressors = intercept + regressors
    let mut y = Vec::new();
    let mut cols: Vec<f64> = Vec::new();
    for line in lines.filter(|l| !l.is_empty()).take(rows) {
        let mut fields = line.split(',').map(|f| {
            f.parse::<f64>()
                .unwrap_or_else(|e| panic!("bad number {f:?}: {e}"))
        });
        y.push(fields.next().expect("missing response"));
        cols.push(1.0);
        cols.extend(fields);
        assert_eq!(cols.len(), y.len() * k, "ragged row {}", y.len());
    }
    let n = y.len();
    let x = Mat::from_fn(n, k, |i, j| cols[i * k + j]);
    (y, x)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).map_or("bench/data/qr_100k.csv", String::as_str);
    let runs: usize = args.get(2).map_or(3, |r| r.parse().expect("RUNS"));
    let method = match args.get(3).map_or("auto", String::as_str) {
        "br" => RqMethod::Br,
        "fn" => RqMethod::Fn,
        "pfn" => RqMethod::Pfn,
        "auto" => RqMethod::Auto,
        other => panic!("unknown method {other}"),
    };
    let rows: usize = args.get(4).map_or(usize::MAX, |r| r.parse().expect("ROWS"));
    let (y, x) = load(path, rows);
    let n = y.len();
    let tau = 0.5;
    let h = bandwidth(tau, n, Bandwidth::HallSheather);
    let opts = |tau: f64, se: RqSe| RqOptions {
        tau,
        method,
        se,
        bandwidth: Bandwidth::HallSheather,
    };
    let time = |o: &RqOptions| {
        let t = Instant::now();
        let fit = rq(x.as_ref(), &y, o).expect("rq failed");
        (t.elapsed().as_secs_f64(), fit)
    };
    let mut parts: [Vec<f64>; 4] = Default::default();
    let mut last = None;
    for _ in 0..runs {
        parts[0].push(time(&opts(tau, RqSe::None)).0);
        parts[1].push(time(&opts(tau + h, RqSe::None)).0);
        parts[2].push(time(&opts(tau - h, RqSe::None)).0);
        let (t, fit) = time(&opts(tau, RqSe::Nid));
        parts[3].push(t);
        last = Some(fit);
    }
    let fit = last.expect("at least one run");
    let [main_fit, hi, lo, total] = parts.map(median);
    println!(
        "n = {n}, k = {}, method {:?}, {runs} runs (medians, seconds)",
        x.ncols(),
        fit.method
    );
    println!("  fit at tau        {main_fit:.4}");
    println!("  refit at tau + h  {hi:.4}");
    println!("  refit at tau - h  {lo:.4}");
    println!("  covariance (rest) {:.4}", total - main_fit - hi - lo);
    println!("  rq(se = nid)      {total:.4}");
    println!("iterations {}, messages {:?}", fit.iterations, fit.messages);
    println!("objective {:.17e}", fit.objective);
    println!("coef {:?}", fit.coef);
    println!("se   {:?}", fit.std_error);
}
