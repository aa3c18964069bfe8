//! MMQR against published numbers: Table 6 of Machado and Santos Silva (2019), "Quantiles via
//! moments", Journal of Econometrics 213(1), 145-173 (computed with their Stata `xtqreg`), and
//! Rios-Avila's replication of that table with `mmqreg` (three decimals, each variance option).
//!
//! The data are the Persson-Tabellini panel (58 countries, 1,659 rows) in
//! `shared/data/external/mss2019_persson_tabellini.csv` beside the repository (see its README);
//! the project does not commit it. Where it is absent these tests print a message and pass.
//! Every expected number below is typed from a publication, not produced by this code.

use std::path::PathBuf;

use faer::Mat;
use repro_estimators::data::{Column, Frame};
use repro_estimators::fit::{fit, FitOptions, ModelSpec, QuantileMethod, QuantileSe, QuantileSpec};
use repro_estimators::mmqr::{mmqr, MmqrFit, MmqrOptions, MmqrVcov};

const REGRESSORS: [&str; 9] = [
    "polity_gt",
    "lyp",
    "trade",
    "prop1564",
    "prop65",
    "lspl",
    "oil_im",
    "oil_ex",
    "ygap",
];
const TAUS: [f64; 3] = [0.25, 0.5, 0.75];

struct Panel {
    y: Vec<f64>,
    x: Mat<f64>,
    country: Vec<u32>,
}

fn data_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/external/mss2019_persson_tabellini.csv")
}

/// The panel, or `None` (with a message) where the shared data are not checked out.
fn panel() -> Option<Panel> {
    let path = data_path();
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!(
            "skipped: {} is absent (the Persson-Tabellini panel is not part of the repository)",
            path.display()
        );
        return None;
    };
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (iy, ig) = (col("spl"), col("ctrycd"));
    let ix: Vec<usize> = REGRESSORS.iter().map(|r| col(r)).collect();
    let mut y = Vec::new();
    let mut xs: Vec<Vec<f64>> = Vec::new();
    let mut country = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let num = |i: usize| f[i].parse::<f64>().expect("number");
        y.push(num(iy));
        xs.push(ix.iter().map(|&i| num(i)).collect());
        country.push(num(ig) as u32);
    }
    assert_eq!(y.len(), 1659, "the README promises 1,659 rows");
    let x = Mat::from_fn(y.len(), REGRESSORS.len(), |i, j| xs[i][j]);
    Some(Panel { y, x, country })
}

fn fits(p: &Panel, vcov: MmqrVcov) -> Vec<MmqrFit> {
    let opts = MmqrOptions {
        vcov,
        ..MmqrOptions::default()
    };
    mmqr(&p.y, p.x.as_ref(), &p.country, &TAUS, &opts).expect("mmqr fits")
}

/// `value` printed with `digits` decimals equals `published`, e.g. `0.0457` and `0.05`.
fn prints_as(value: f64, published: f64, digits: i32) -> bool {
    let scale = 10f64.powi(digits);
    (value * scale).round() == (published * scale).round()
}

/// Compares a row of nine numbers; returns the mismatches as text.
fn mismatches(what: &str, got: &[f64], published: &[f64], digits: i32) -> Vec<String> {
    got.iter()
        .zip(published)
        .zip(REGRESSORS)
        .filter(|((g, p), _)| !prints_as(**g, **p, digits))
        .map(|((g, p), name)| format!("{what} {name}: published {p}, repro {g:.5}"))
        .collect()
}

// MSS (2019) Table 6, "The determinants of government surpluses", columns POLITY, LYP, TRADE,
// P1564, P65, LSPL, OILIM, OILEX, YGAP: the rows "Location", "Scale" and "MM-QR" tau = .25, .50,
// .75, estimates and the analytical standard errors in parentheses (the bracketed bootstrap ones
// are random and not reproduced).
const T6_LOCATION: [f64; 9] = [0.12, -0.72, 0.03, 0.12, 0.03, 0.69, -0.05, -0.01, 0.01];
const T6_LOCATION_SE: [f64; 9] = [0.05, 0.47, 0.01, 0.03, 0.07, 0.03, 0.01, 0.02, 0.02];
const T6_SCALE: [f64; 9] = [-0.10, -0.62, 0.00, 0.04, 0.09, -0.08, 0.01, 0.02, -0.00];
const T6_SCALE_SE: [f64; 9] = [0.05, 0.81, 0.01, 0.03, 0.07, 0.03, 0.00, 0.01, 0.01];
const T6_COEF: [[f64; 9]; 3] = [
    [0.19, -0.24, 0.03, 0.09, -0.04, 0.76, -0.06, -0.02, 0.01],
    [0.11, -0.76, 0.03, 0.12, 0.03, 0.68, -0.05, -0.00, 0.01],
    [0.03, -1.26, 0.03, 0.15, 0.10, 0.62, -0.04, 0.01, 0.01],
];
const T6_SE: [[f64; 9]; 3] = [
    [0.06, 0.74, 0.01, 0.05, 0.10, 0.05, 0.01, 0.03, 0.04],
    [0.05, 0.53, 0.01, 0.03, 0.07, 0.03, 0.01, 0.02, 0.03],
    [0.06, 0.65, 0.01, 0.04, 0.08, 0.04, 0.01, 0.03, 0.03],
];

#[test]
fn xtqreg_reproduces_mss_2019_table_6() {
    let Some(p) = panel() else { return };
    let fits = fits(&p, MmqrVcov::Xtqreg);
    let mut bad = Vec::new();
    let first = &fits[0];
    assert_eq!((first.nobs, first.n_groups), (1659, 58));
    assert_eq!(first.vcov, "xtqreg");
    bad.extend(mismatches("location", &first.location, &T6_LOCATION, 2));
    bad.extend(mismatches(
        "location se",
        &first.location_se,
        &T6_LOCATION_SE,
        2,
    ));
    bad.extend(mismatches("scale", &first.scale, &T6_SCALE, 2));
    bad.extend(mismatches("scale se", &first.scale_se, &T6_SCALE_SE, 2));
    for (k, f) in fits.iter().enumerate() {
        let tau = TAUS[k];
        // `cargo test -- --nocapture` prints the comparison.
        for (j, name) in REGRESSORS.iter().enumerate() {
            eprintln!(
                "tau {tau} {name:9} published {:5.2} repro {:.4}",
                T6_SE[k][j], f.std_error[j]
            );
        }
        bad.extend(mismatches(&format!("q{tau}"), &f.coef, &T6_COEF[k], 2));
        bad.extend(mismatches(
            &format!("q{tau} se"),
            &f.std_error,
            &T6_SE[k],
            2,
        ));
    }
    assert!(bad.is_empty(), "Table 6 mismatches:\n{}", bad.join("\n"));
}

#[test]
fn the_default_robust_sandwich_is_not_table_6() {
    // The point of naming the conventions: today's default differs from the published errors
    // (13 of the 27 agree at two decimals), so a comparison needs `xtqreg`.
    let Some(p) = panel() else { return };
    let fits = fits(&p, MmqrVcov::Robust);
    let agree: usize = fits
        .iter()
        .zip(&T6_SE)
        .map(|(f, row)| {
            f.std_error
                .iter()
                .zip(row)
                .filter(|(g, p)| prints_as(**g, **p, 2))
                .count()
        })
        .sum();
    assert_eq!(agree, 13, "robust agrees with {agree} of Table 6's 27");
    assert_eq!(fits[0].vcov, "robust");
}

// Rios-Avila's replication of MSS Table 6 with `mmqreg` (github.com/friosavila/mmqreg,
// article/tbl4.tex, produced by simulation2/data_replication.do:
// `mmqreg spl polity_gt lyp trade prop1564 prop65 lspl oil_im oil_ex ygap, q(25 50 75) ls
// cluster(ctrycd) abs(ctrycd)`, then `mmqreg, robust` and `mmqreg, gls`). Rows: coefficient,
// se-gls (the default), se-r (`robust`), se-cl (`cluster(ctrycd)`, no `dfadj`), three decimals.
struct Replication {
    coef: [f64; 9],
    gls: [f64; 9],
    robust: [f64; 9],
    cluster: [f64; 9],
}

const R_LOCATION: Replication = Replication {
    coef: [
        0.116, -0.715, 0.030, 0.121, 0.028, 0.691, -0.047, -0.006, 0.010,
    ],
    gls: [
        0.046, 0.540, 0.008, 0.033, 0.070, 0.035, 0.008, 0.022, 0.028,
    ],
    robust: [
        0.047, 0.597, 0.008, 0.031, 0.070, 0.037, 0.007, 0.017, 0.021,
    ],
    cluster: [
        0.046, 0.465, 0.007, 0.032, 0.071, 0.035, 0.010, 0.020, 0.023,
    ],
};
const R_SCALE: Replication = Replication {
    coef: [
        -0.097, -0.616, 0.003, 0.036, 0.087, -0.085, 0.013, 0.016, -0.004,
    ],
    gls: [
        0.032, 0.371, 0.005, 0.023, 0.048, 0.024, 0.006, 0.015, 0.019,
    ],
    robust: [
        0.031, 0.398, 0.005, 0.020, 0.049, 0.025, 0.005, 0.010, 0.015,
    ],
    cluster: [
        0.048, 0.800, 0.008, 0.031, 0.067, 0.029, 0.004, 0.010, 0.012,
    ],
};
const R_QUANTILES: [Replication; 3] = [
    Replication {
        coef: [
            0.191, -0.239, 0.028, 0.093, -0.039, 0.756, -0.057, -0.018, 0.013,
        ],
        gls: [
            0.059, 0.684, 0.010, 0.042, 0.088, 0.045, 0.010, 0.027, 0.035,
        ],
        robust: [
            0.056, 0.656, 0.008, 0.036, 0.086, 0.040, 0.010, 0.020, 0.025,
        ],
        cluster: [
            0.073, 0.687, 0.006, 0.041, 0.098, 0.023, 0.010, 0.021, 0.029,
        ],
    },
    Replication {
        coef: [
            0.108, -0.765, 0.030, 0.124, 0.035, 0.684, -0.046, -0.005, 0.009,
        ],
        gls: [
            0.046, 0.535, 0.007, 0.033, 0.069, 0.035, 0.008, 0.022, 0.027,
        ],
        robust: [
            0.046, 0.593, 0.008, 0.031, 0.069, 0.036, 0.007, 0.017, 0.021,
        ],
        cluster: [
            0.043, 0.484, 0.008, 0.032, 0.070, 0.036, 0.010, 0.020, 0.023,
        ],
    },
    Replication {
        coef: [
            0.031, -1.258, 0.033, 0.153, 0.104, 0.616, -0.036, 0.008, 0.006,
        ],
        gls: [
            0.048, 0.551, 0.008, 0.034, 0.071, 0.036, 0.008, 0.022, 0.028,
        ],
        robust: [
            0.049, 0.696, 0.009, 0.034, 0.075, 0.043, 0.007, 0.018, 0.023,
        ],
        cluster: [
            0.039, 0.919, 0.012, 0.041, 0.079, 0.055, 0.010, 0.022, 0.020,
        ],
    },
];

#[test]
fn mmqreg_options_reproduce_rios_avila_replication() {
    let Some(p) = panel() else { return };
    let options = [
        ("gls", MmqrVcov::Mmqreg),
        ("robust", MmqrVcov::MmqregRobust),
        (
            "cluster",
            MmqrVcov::MmqregCluster {
                codes: p.country.clone(),
                dfadj: false,
            },
        ),
    ];
    let mut bad = Vec::new();
    for (label, vcov) in options {
        let pick = |r: &Replication| match label {
            "gls" => r.gls,
            "robust" => r.robust,
            _ => r.cluster,
        };
        let fits = fits(&p, vcov);
        let first = &fits[0];
        bad.extend(mismatches("location", &first.location, &R_LOCATION.coef, 3));
        bad.extend(mismatches("scale", &first.scale, &R_SCALE.coef, 3));
        let loc_label = format!("{label} location se");
        bad.extend(mismatches(
            &loc_label,
            &first.location_se,
            &pick(&R_LOCATION),
            3,
        ));
        let scale_label = format!("{label} scale se");
        bad.extend(mismatches(
            &scale_label,
            &first.scale_se,
            &pick(&R_SCALE),
            3,
        ));
        for (k, f) in fits.iter().enumerate() {
            let tau = TAUS[k];
            let r = &R_QUANTILES[k];
            bad.extend(mismatches(&format!("q{tau}"), &f.coef, &r.coef, 3));
            let se_label = format!("{label} q{tau} se");
            bad.extend(mismatches(&se_label, &f.std_error, &pick(r), 3));
        }
    }
    assert!(
        bad.is_empty(),
        "replication mismatches:\n{}",
        bad.join("\n")
    );
}

#[test]
fn table_6_through_fit_names_the_convention() {
    let Some(p) = panel() else { return };
    let n = p.y.len();
    let mut frame = Frame::new();
    let numeric = |v: Vec<f64>| Column::Numeric(v.into_iter().map(Some).collect());
    frame.push("spl", numeric(p.y.clone())).unwrap();
    for (j, name) in REGRESSORS.iter().enumerate() {
        let col = (0..n).map(|i| p.x[(i, j)]).collect();
        frame.push(*name, numeric(col)).unwrap();
    }
    let country = p.country.iter().map(|&c| f64::from(c)).collect();
    frame.push("ctrycd", numeric(country)).unwrap();
    let formula = format!("spl ~ {} | ctrycd", REGRESSORS.join(" + "));
    let spec = |vcov: &str| ModelSpec {
        formula: formula.clone(),
        vcov: vcov.parse().unwrap(),
        quantile: Some(QuantileSpec {
            tau: 0.75,
            se: QuantileSe::Nid,
            method: QuantileMethod::Mmqr,
        }),
        options: FitOptions::default(),
    };
    let res = fit(&frame, &spec("xtqreg")).unwrap();
    assert_eq!(res.vcov, "xtqreg");
    let lyp = res.coefficient("lyp").unwrap();
    assert!(prints_as(lyp.estimate, -1.26, 2) && prints_as(lyp.std_error, 0.65, 2));
    let res = fit(&frame, &spec("mmqreg-cluster:ctrycd")).unwrap();
    assert_eq!(res.vcov, "mmqreg-cluster:ctrycd");
    let lyp = res.coefficient("lyp").unwrap();
    assert!(prints_as(lyp.std_error, 0.919, 3));
    assert_eq!(res.n_clusters.unwrap().0, vec![("ctrycd".to_string(), 58)]);
}
