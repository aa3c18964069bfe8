//! OLS paths of `fit::fit` against brute-force computations written out in the test (dense
//! normal equations and explicit sums), the singleton rule, and the JSON shape of a result.

use repro_estimators::data::{Column, Frame};
use repro_estimators::fit::{fit, FitOptions, ModelSpec, SingletonPolicy};
use repro_estimators::result::FitResult;

fn num(v: &[f64]) -> Column {
    Column::Numeric(v.iter().map(|&x| Some(x)).collect())
}

fn run(frame: &Frame, formula: &str, vcov: &str, options: FitOptions) -> FitResult {
    fit(
        frame,
        &ModelSpec {
            formula: formula.to_string(),
            vcov: vcov.parse().unwrap(),
            quantile: None,
            options,
        },
    )
    .unwrap()
}

/// Deterministic pseudo-random numbers in [0, 1).
fn lcg(seed: &mut u64) -> f64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*seed >> 11) as f64) / ((1u64 << 53) as f64)
}

/// Solves a small dense system by Gauss-Jordan elimination with partial pivoting.
fn inverse(a: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let k = a.len();
    let mut m: Vec<Vec<f64>> = a
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut r = row.clone();
            r.extend((0..k).map(|j| f64::from(u8::from(i == j))));
            r
        })
        .collect();
    for c in 0..k {
        let p = (c..k)
            .max_by(|&x, &y| m[x][c].abs().total_cmp(&m[y][c].abs()))
            .unwrap();
        m.swap(c, p);
        let pivot = m[c][c];
        m[c].iter_mut().for_each(|v| *v /= pivot);
        for r in 0..k {
            if r != c {
                let f = m[r][c];
                let row_c = m[c].clone();
                m[r].iter_mut().zip(&row_c).for_each(|(v, w)| *v -= f * w);
            }
        }
    }
    m.into_iter().map(|r| r[k..].to_vec()).collect()
}

struct Ols {
    coef: Vec<f64>,
    resid: Vec<f64>,
    bread: Vec<Vec<f64>>,
}

fn dense_ols(x: &[Vec<f64>], y: &[f64]) -> Ols {
    let (n, k) = (y.len(), x[0].len());
    let xtx: Vec<Vec<f64>> = (0..k)
        .map(|a| {
            (0..k)
                .map(|b| (0..n).map(|i| x[i][a] * x[i][b]).sum())
                .collect()
        })
        .collect();
    let xty: Vec<f64> = (0..k)
        .map(|a| (0..n).map(|i| x[i][a] * y[i]).sum())
        .collect();
    let bread = inverse(&xtx);
    let coef: Vec<f64> = (0..k)
        .map(|a| (0..k).map(|b| bread[a][b] * xty[b]).sum())
        .collect();
    let resid = (0..n)
        .map(|i| y[i] - (0..k).map(|a| x[i][a] * coef[a]).sum::<f64>())
        .collect();
    Ols { coef, resid, bread }
}

fn cluster_meat(x: &[Vec<f64>], e: &[f64], groups: &[usize]) -> Vec<Vec<f64>> {
    let k = x[0].len();
    let g_max = groups.iter().max().unwrap() + 1;
    let mut sums = vec![vec![0.0; k]; g_max];
    for i in 0..e.len() {
        for a in 0..k {
            sums[groups[i]][a] += x[i][a] * e[i];
        }
    }
    (0..k)
        .map(|a| {
            (0..k)
                .map(|b| sums.iter().map(|s| s[a] * s[b]).sum())
                .collect()
        })
        .collect()
}

fn sandwich_se(bread: &[Vec<f64>], meat: &[Vec<f64>], factor: f64) -> Vec<f64> {
    let k = bread.len();
    (0..k)
        .map(|j| {
            let mut v = 0.0;
            for a in 0..k {
                for b in 0..k {
                    v += bread[j][a] * meat[a][b] * bread[b][j];
                }
            }
            (factor * v).sqrt()
        })
        .collect()
}

struct Data {
    frame: Frame,
    x: Vec<Vec<f64>>,
    y: Vec<f64>,
    g1: Vec<usize>,
    g2: Vec<usize>,
}

fn data(n: usize) -> Data {
    let mut seed = 99;
    let mut x = Vec::new();
    let mut y = Vec::new();
    let mut g1 = Vec::new();
    let mut g2 = Vec::new();
    for i in 0..n {
        let a = lcg(&mut seed) * 2.0;
        let b = lcg(&mut seed) - 0.5;
        let g = i % 9;
        let h = (i / 3) % 5;
        let e = (lcg(&mut seed) - 0.5) * (1.0 + a) + 0.3 * (g as f64 - 4.0) / 4.0;
        x.push(vec![1.0, a, b]);
        y.push(0.5 + 1.5 * a - 2.0 * b + e);
        g1.push(g);
        g2.push(h);
    }
    let mut frame = Frame::new();
    frame.push("y", num(&y)).unwrap();
    frame
        .push("a", num(&x.iter().map(|r| r[1]).collect::<Vec<_>>()))
        .unwrap();
    frame
        .push("b", num(&x.iter().map(|r| r[2]).collect::<Vec<_>>()))
        .unwrap();
    frame
        .push(
            "g1",
            Column::Text(g1.iter().map(|g| Some(format!("c{g}"))).collect()),
        )
        .unwrap();
    frame
        .push("g2", num(&g2.iter().map(|&g| g as f64).collect::<Vec<_>>()))
        .unwrap();
    Data {
        frame,
        x,
        y,
        g1,
        g2,
    }
}

fn assert_close(got: f64, want: f64, rel: f64, what: &str) {
    assert!(
        ((got - want) / want).abs() <= rel,
        "{what}: {got} vs {want}"
    );
}

#[test]
fn hc1_and_clustered_errors_match_brute_force() {
    let d = data(90);
    let n = 90.0;
    let k = 3.0;
    let ols = dense_ols(&d.x, &d.y);
    let names = ["Intercept", "a", "b"];

    let hc1 = run(&d.frame, "y ~ a + b", "hc1", FitOptions::default());
    let ones: Vec<usize> = (0..d.y.len()).collect();
    let meat = cluster_meat(&d.x, &ols.resid, &ones);
    let se = sandwich_se(&ols.bread, &meat, n / (n - k));
    for (j, name) in names.iter().enumerate() {
        let c = hc1.coefficient(name).unwrap();
        assert_close(c.estimate, ols.coef[j], 1e-10, name);
        assert_close(c.std_error, se[j], 1e-10, name);
    }

    let one_way = run(&d.frame, "y ~ a + b", "cluster:g1", FitOptions::default());
    let meat = cluster_meat(&d.x, &ols.resid, &d.g1);
    let se = sandwich_se(&ols.bread, &meat, (n - 1.0) / (n - k) * 9.0 / 8.0);
    for (j, name) in names.iter().enumerate() {
        assert_close(
            one_way.coefficient(name).unwrap().std_error,
            se[j],
            1e-10,
            name,
        );
    }
    assert_eq!(one_way.df_t, Some(8));

    // Two-way: V1 + V2 - V12, every term scaled with min(G) = 5.
    let two_way = run(
        &d.frame,
        "y ~ a + b",
        "cluster:g1+g2",
        FitOptions::default(),
    );
    let inter: Vec<usize> = d.g1.iter().zip(&d.g2).map(|(&a, &b)| a * 5 + b).collect();
    let m1 = cluster_meat(&d.x, &ols.resid, &d.g1);
    let m2 = cluster_meat(&d.x, &ols.resid, &d.g2);
    let m12 = cluster_meat(&d.x, &ols.resid, &inter);
    let meat: Vec<Vec<f64>> = (0..3)
        .map(|a| (0..3).map(|b| m1[a][b] + m2[a][b] - m12[a][b]).collect())
        .collect();
    let se = sandwich_se(&ols.bread, &meat, (n - 1.0) / (n - k) * 5.0 / 4.0);
    for (j, name) in names.iter().enumerate() {
        assert_close(
            two_way.coefficient(name).unwrap().std_error,
            se[j],
            1e-10,
            name,
        );
    }
    assert_eq!(two_way.df_t, Some(4));
    let counts = two_way.n_clusters.as_ref().unwrap();
    assert_eq!(counts.0, vec![("g1".to_string(), 9), ("g2".to_string(), 5)]);
}

#[test]
fn clustering_on_a_fixed_effect_uses_the_nested_rule() {
    let d = data(90);
    // y ~ a + b | g1 clustered by g1: K = 2 + 1 (g1 nested), factor (N-1)/(N-3) * 9/8.
    let fe = run(
        &d.frame,
        "y ~ a + b | g1",
        "cluster:g1",
        FitOptions::default(),
    );
    let iid = run(&d.frame, "y ~ a + b | g1", "iid", FitOptions::default());
    // Same point estimates; iid uses K = 2 + 9.
    assert_close(
        fe.coefficient("a").unwrap().estimate,
        iid.coefficient("a").unwrap().estimate,
        1e-12,
        "a",
    );
    assert_eq!(iid.df_t, Some(90 - 11));
    assert_eq!(fe.df_t, Some(8));
}

#[test]
fn singletons_are_dropped_only_on_request() {
    let mut f = Frame::new();
    f.push("y", num(&[1.0, 2.0, 3.5, 3.0, 5.5, 6.0, 8.0, 7.5, 9.0]))
        .unwrap();
    f.push("x", num(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.5]))
        .unwrap();
    // Level 3 occurs once.
    f.push("g", num(&[0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 0.0, 1.0, 3.0]))
        .unwrap();
    let keep = run(&f, "y ~ x | g", "iid", FitOptions::default());
    assert_eq!((keep.nobs, keep.n_singletons_dropped), (9, 0));
    let drop = run(
        &f,
        "y ~ x | g",
        "iid",
        FitOptions {
            singletons: SingletonPolicy::DropIteratively,
            ..FitOptions::default()
        },
    );
    assert_eq!((drop.nobs, drop.n_singletons_dropped), (8, 1));
    assert!(!drop.used_rows.contains(&8));
    // A singleton's residual is zero, so it does not move the slope.
    assert_close(
        keep.coefficient("x").unwrap().estimate,
        drop.coefficient("x").unwrap().estimate,
        1e-10,
        "x",
    );
    assert!(drop.messages.iter().any(|m| m.contains("singleton")));
}

#[test]
fn fit_result_serialises_with_stable_fields() {
    let d = data(40);
    let res = run(
        &d.frame,
        "y ~ a + b | g2",
        "cluster:g1",
        FitOptions::default(),
    );
    let json = serde_json::to_string(&res).unwrap();
    let order = [
        "\"formula\"",
        "\"nobs\"",
        "\"k\"",
        "\"n_missing_dropped\"",
        "\"n_singletons_dropped\"",
        "\"coefficients\"",
        "\"r2\"",
        "\"r2_within\"",
        "\"objective\"",
        "\"vcov\"",
        "\"n_clusters\"",
        "\"df_t\"",
        "\"covariance\"",
        "\"first_stage\"",
        "\"messages\"",
    ];
    let positions: Vec<usize> = order.iter().map(|k| json.find(k).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{json}");
    assert!(json.contains("\"n_clusters\":{\"g1\":9}"), "{json}");
    assert!(json.contains("\"vcov\":\"cluster:g1\""));
    assert!(!json.contains("residuals"));
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["covariance"].as_array().unwrap().len(), 2);
    assert_eq!(value["coefficients"][0]["term"], "a");
}
