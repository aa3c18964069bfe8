//! Each MMQR variance convention pinned on generated data by a second, literal transcription of
//! its published code (`xtqreg` 1.5 of Machado and Santos Silva; `mmqreg` 3 of Rios-Avila),
//! written the way the Stata code computes it rather than the way `mmqr` does: `xtqreg`'s scale
//! from the regression of `V` (not `|R|`) with its `xtreg` intercepts, `mmqreg`'s regressors
//! demeaned plus their means with a constant column, Kronecker products for its default
//! variance. Plus: no variance option is silently replaced.

use faer::linalg::solvers::Solve;
use faer::Mat;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use repro_estimators::data::{Column, Frame};
use repro_estimators::error::EstimError;
use repro_estimators::fit::{fit, FitOptions, ModelSpec, QuantileMethod, QuantileSe, QuantileSpec};
use repro_estimators::mmqr::{mmqr, MmqrFit, MmqrOptions, MmqrVcov};
use repro_estimators::quantile::{bandwidth, Bandwidth};

const TAU: f64 = 0.3;

struct Panel {
    y: Vec<f64>,
    x: Vec<[f64; 2]>,
    g: Vec<u32>,
    c: Vec<u32>,
}

/// 15 groups of 6 to 10 rows, two regressors, scale depending on `x1`; clusters pair the groups.
fn panel() -> Panel {
    let mut rng = ChaCha8Rng::seed_from_u64(19);
    let mut p = Panel {
        y: Vec::new(),
        x: Vec::new(),
        g: Vec::new(),
        c: Vec::new(),
    };
    for group in 0..15u32 {
        let a: f64 = rng.random::<f64>() * 2.0;
        let t = 6 + (group as usize % 5);
        for _ in 0..t {
            let x1: f64 = rng.random::<f64>() * 3.0 + a;
            let x2: f64 = rng.random::<f64>() - 0.5;
            let u: f64 = rng.random::<f64>() + rng.random::<f64>() - 1.0;
            p.y.push(a + x1 - 0.5 * x2 + (1.0 + 0.4 * x1) * u);
            p.x.push([x1, x2]);
            p.g.push(group);
            p.c.push(group / 2);
        }
    }
    p
}

fn run(p: &Panel, vcov: MmqrVcov) -> MmqrFit {
    let x = Mat::from_fn(p.y.len(), 2, |i, j| p.x[i][j]);
    let opts = MmqrOptions {
        vcov,
        ..MmqrOptions::default()
    };
    mmqr(&p.y, x.as_ref(), &p.g, &[TAU], &opts)
        .unwrap()
        .remove(0)
}

fn mat(rows: usize, cols: usize, f: impl Fn(usize, usize) -> f64) -> Mat<f64> {
    Mat::from_fn(rows, cols, f)
}

fn inv(m: &Mat<f64>) -> Mat<f64> {
    let n = m.nrows();
    let lu = m.partial_piv_lu();
    lu.solve(Mat::<f64>::identity(n, n))
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn group_means(v: &[f64], g: &[u32]) -> Vec<f64> {
    let k = *g.iter().max().unwrap() as usize + 1;
    let (mut s, mut c) = (vec![0.0; k], vec![0.0; k]);
    for (x, &gi) in v.iter().zip(g) {
        s[gi as usize] += x;
        c[gi as usize] += 1.0;
    }
    g.iter()
        .map(|&gi| s[gi as usize] / c[gi as usize])
        .collect()
}

/// `xtreg v x, fe`: slopes, `_cons` and the fitted `xb + u_i`.
fn xtreg_fe(v: &[f64], x: &[[f64; 2]], g: &[u32]) -> ([f64; 2], Vec<f64>) {
    let n = v.len();
    let cols: Vec<Vec<f64>> = (0..2)
        .map(|j| {
            let col: Vec<f64> = x.iter().map(|r| r[j]).collect();
            let m = group_means(&col, g);
            (0..n).map(|i| col[i] - m[i]).collect()
        })
        .collect();
    let xd: Vec<[f64; 2]> = (0..n).map(|i| [cols[0][i], cols[1][i]]).collect();
    let xx = mat(2, 2, |a, b| (0..n).map(|i| xd[i][a] * xd[i][b]).sum());
    let xv = mat(2, 1, |a, _| (0..n).map(|i| xd[i][a] * v[i]).sum());
    let b = inv(&xx) * xv;
    let slope = [b[(0, 0)], b[(1, 0)]];
    let vm = group_means(v, g);
    let x_means: Vec<Vec<f64>> = (0..2)
        .map(|j| group_means(&x.iter().map(|r| r[j]).collect::<Vec<_>>(), g))
        .collect();
    // xb + u_i = x'b + (mean_i(v) - mean_i(x)'b): the cons cancels.
    let fitted = (0..n)
        .map(|i| {
            vm[i]
                + (0..2)
                    .map(|j| (x[i][j] - x_means[j][i]) * slope[j])
                    .sum::<f64>()
        })
        .collect();
    (slope, fitted)
}

/// The density of `qreg u, q(tau) vce(iid)` for a constant-only model and its quantile.
fn qreg_constant(u: &[f64], tau: f64) -> (f64, f64) {
    let mut s = u.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let at = |t: f64| s[((n as f64 * t).ceil() as usize).clamp(1, n) - 1];
    let mut h = bandwidth(tau, n, Bandwidth::HallSheather);
    while tau - h < 0.0 || tau + h > 1.0 {
        h /= 2.0;
    }
    (at(tau), 2.0 * h / (at(tau + h) - at(tau - h)))
}

struct Common {
    n: usize,
    xd: Mat<f64>,
    iqxx: Mat<f64>,
    u: Vec<f64>,
    gamma: [f64; 2],
}

fn common(p: &Panel) -> Common {
    let n = p.y.len();
    let (_, fitted) = xtreg_fe(&p.y, &p.x, &p.g);
    let u: Vec<f64> = (0..n).map(|i| p.y[i] - fitted[i]).collect();
    let xd = mat(n, 2, |i, j| {
        let col: Vec<f64> = p.x.iter().map(|r| r[j]).collect();
        col[i] - group_means(&col, &p.g)[i]
    });
    let iqxx = inv(&(xd.transpose() * &xd));
    let absu: Vec<f64> = u.iter().map(|v| v.abs()).collect();
    let (gamma, _) = xtreg_fe(&absu, &p.x, &p.g);
    Common {
        n,
        xd,
        iqxx,
        u,
        gamma,
    }
}

/// `xtqreg` 1.5, line by line.
fn xtqreg_reference(p: &Panel) -> Mat<f64> {
    let c = common(p);
    let n = c.n;
    let share = mean(
        &c.u.iter()
            .map(|v| f64::from(u8::from(*v >= 0.0)))
            .collect::<Vec<_>>(),
    );
    let au: Vec<f64> =
        c.u.iter()
            .map(|v| 2.0 * v * (f64::from(u8::from(*v >= 0.0)) - share))
            .collect();
    let (g, auhat) = xtreg_fe(&au, &p.x, &p.g);
    // deltas + [mean(x), 1] (g, _cons): xtreg's u_i + _cons + mean(x)'g.
    let xm = [0, 1].map(|j| mean(&p.x.iter().map(|r| r[j]).collect::<Vec<_>>()));
    let au_m = group_means(&au, &p.g);
    let x_m: Vec<Vec<f64>> = (0..2)
        .map(|j| group_means(&p.x.iter().map(|r| r[j]).collect::<Vec<_>>(), &p.g))
        .collect();
    let si: Vec<f64> = (0..n)
        .map(|i| au_m[i] - x_m[0][i] * g[0] - x_m[1][i] * g[1] + xm[0] * g[0] + xm[1] * g[1])
        .collect();
    let us: Vec<f64> = (0..n).map(|i| c.u[i] / auhat[i]).collect();
    let qxx = c.xd.transpose() * &c.xd;
    let pxx = mat(2, 2, |a, b| {
        (0..n)
            .map(|i| c.xd[(i, a)] * c.xd[(i, b)] * auhat[i].abs().powi(2))
            .sum()
    });
    let px = mat(1, 2, |_, b| {
        (0..n).map(|i| auhat[i].powi(2) * c.xd[(i, b)]).sum()
    });
    let vp = mean(
        &us.iter()
            .map(|v| f64::from(u8::from(*v >= 0.0)))
            .collect::<Vec<_>>(),
    );
    let av: Vec<f64> = us
        .iter()
        .map(|v| v * (f64::from(u8::from(*v >= 0.0)) - vp) * 2.0)
        .collect();
    let (q, fuq) = qreg_constant(&us, TAU);
    let w: Vec<f64> = (0..n)
        .map(|i| (TAU - f64::from(u8::from(us[i] <= q))) / fuq - us[i] - q * av[i])
        .collect();
    let m = |f: &dyn Fn(usize) -> f64| (0..n).map(f).sum::<f64>() / n as f64;
    let sum_si: f64 = si.iter().sum();
    let msi2 = m(&|i| si[i] * si[i]);
    let mut o = Mat::<f64>::zeros(5, 5);
    let blocks = [
        (0, 0, m(&|i| us[i] * us[i])),
        (0, 2, m(&|i| us[i] * av[i])),
        (2, 0, m(&|i| us[i] * av[i])),
        (2, 2, m(&|i| av[i] * av[i])),
    ];
    for (r, cc, v) in blocks {
        for a in 0..2 {
            for b in 0..2 {
                o[(r + a, cc + b)] = v * pxx[(a, b)];
            }
        }
    }
    let (uw, avw) = (m(&|i| us[i] * w[i]), m(&|i| av[i] * w[i]));
    for b in 0..2 {
        o[(4, b)] = uw * px[(0, b)];
        o[(b, 4)] = uw * px[(0, b)];
        o[(4, 2 + b)] = avw * px[(0, b)];
        o[(2 + b, 4)] = avw * px[(0, b)];
    }
    o[(4, 4)] = w.iter().map(|v| v * v).sum::<f64>() * msi2;
    let a = inv(&qxx);
    let xi = mat(2, 5, |r, cc| match cc {
        0 | 1 => a[(r, cc)],
        2 | 3 => a[(r, cc - 2)] * q,
        _ => g[r] / sum_si,
    });
    &xi * &o * xi.transpose()
}

/// `mmqreg` 3 (`mmqregx` and its Mata class): returns the slope blocks of `vcv0`, `vcv1`, `vcv2`
/// and `vcv2b`, and the location and scale standard errors of each.
fn mmqreg_reference(p: &Panel) -> [(Mat<f64>, Vec<f64>, Vec<f64>); 4] {
    let c = common(p);
    let n = c.n;
    let nf = n as f64;
    let xm = [0, 1].map(|j| mean(&p.x.iter().map(|r| r[j]).collect::<Vec<_>>()));
    // xvar = (demeaned x + mean(x), 1).
    let xvar = mat(n, 3, |i, j| if j < 2 { c.xd[(i, j)] + xm[j] } else { 1.0 });
    let iqxx = inv(&(xvar.transpose() * &xvar));
    let absu: Vec<f64> = c.u.iter().map(|v| v.abs()).collect();
    let (_, s) = xtreg_fe(&absu, &p.x, &p.g);
    let share = mean(
        &c.u.iter()
            .map(|v| f64::from(u8::from(*v >= 0.0)))
            .collect::<Vec<_>>(),
    );
    let vvar: Vec<f64> =
        c.u.iter()
            .map(|v| 2.0 * v * (f64::from(u8::from(*v >= 0.0)) - share))
            .collect();
    let sbar = mean(&s);
    let st: Vec<f64> = (0..n).map(|i| c.u[i] / s[i]).collect();
    let (q, f) = qreg_constant(&st, TAU);
    let xiq = |e: &dyn Fn(usize) -> f64| {
        let xe = mat(n, 3, |i, j| xvar[(i, j)] * e(i));
        (xe * &iqxx) * nf
    };
    let if1 = xiq(&|i| c.u[i]);
    let if2 = xiq(&|i| vvar[i] - s[i]);
    let if3: Vec<f64> = (0..n)
        .map(|i| {
            (TAU - f64::from(u8::from(q * s[i] - c.u[i] >= 0.0))) / f
                - c.u[i] / sbar
                - q * (vvar[i] - s[i]) / sbar
        })
        .collect();
    let iff = mat(n, 7, |i, j| match j {
        0..=2 => if1[(i, j)],
        3..=5 => if2[(i, j - 3)],
        _ => if3[i],
    });
    let vce1 = iff.transpose() * &iff * (1.0 / (nf * nf));
    let g = p.c.iter().map(|&v| v as usize).max().unwrap() + 1;
    let sums = mat(g, 7, |cl, j| {
        (0..n)
            .filter(|&i| p.c[i] as usize == cl)
            .map(|i| iff[(i, j)])
            .sum()
    });
    let vce2 = sums.transpose() * &sums * (1.0 / (nf * nf));
    // vce0: Kronecker form of the centred Theorem 3.
    let zs = mat(n, 3, |i, j| {
        [c.u[i] / s[i], vvar[i] / s[i] - 1.0, if3[i] / s[i]][j]
    });
    let omgs = zs.transpose() * &zs * (1.0 / nf);
    let qx = mat(n, 3, |i, j| if1[(i, j)] / (c.u[i] / s[i]));
    let qxx = qx.transpose() * &qx;
    let pxx = mat(3, 1, |a, _| (0..n).map(|i| qx[(i, a)] * s[i]).sum());
    let us2: f64 = s.iter().map(|v| v * v).sum();
    let mut vce0 = Mat::<f64>::zeros(7, 7);
    for r in 0..2 {
        for cc in 0..2 {
            for a in 0..3 {
                for b in 0..3 {
                    vce0[(3 * r + a, 3 * cc + b)] = omgs[(r, cc)] * qxx[(a, b)];
                }
            }
        }
        for a in 0..3 {
            vce0[(3 * r + a, 6)] = omgs[(r, 2)] * pxx[(a, 0)];
            vce0[(6, 3 * r + a)] = omgs[(2, r)] * pxx[(a, 0)];
        }
    }
    vce0[(6, 6)] = omgs[(2, 2)] * us2;
    let vce0 = vce0 * (1.0 / (nf * nf));
    // gamma with its constant: the scale regression of |R| on xvar.
    let gcons = mean(&absu) - xm[0] * c.gamma[0] - xm[1] * c.gamma[1];
    let gam = [c.gamma[0], c.gamma[1], gcons];
    let xi2 = mat(3, 7, |r, cc| match cc {
        0..=2 => f64::from(u8::from(r == cc)),
        3..=5 => q * f64::from(u8::from(r == cc - 3)),
        _ => gam[r],
    });
    let groups = *p.g.iter().max().unwrap() as f64 + 1.0;
    let nn = nf - 3.0 - groups;
    let gc = g as f64;
    let dfadj = (nf - 1.0) / nn * gc / (gc - 1.0);
    let pick = |vce: &Mat<f64>, factor: f64| {
        let v = &xi2 * vce * xi2.transpose() * factor;
        let se = |j: usize| (vce[(j, j)] * factor).sqrt();
        (
            mat(2, 2, |a, b| v[(a, b)]),
            vec![se(0), se(1)],
            vec![se(3), se(4)],
        )
    };
    [
        pick(&vce0, 1.0),
        pick(&vce1, 1.0),
        pick(&vce2, 1.0),
        pick(&vce2, dfadj),
    ]
}

fn assert_close(what: &str, a: f64, b: f64) {
    assert!(
        (a - b).abs() <= 1e-9 * b.abs().max(1e-12),
        "{what}: mmqr {a:e}, reference {b:e}"
    );
}

#[test]
fn xtqreg_convention_matches_its_stata_code() {
    let p = panel();
    let fit = run(&p, MmqrVcov::Xtqreg);
    let reference = xtqreg_reference(&p);
    for a in 0..2 {
        for b in 0..2 {
            assert_close("xtqreg covariance", fit.covariance[a][b], reference[(a, b)]);
        }
    }
    assert_eq!(fit.vcov, "xtqreg");
    // Location errors are xtreg, fe robust: clustered by group with (N-1)/(N-p-1) G/(G-1).
    let c = common(&p);
    let n = c.n as f64;
    let groups = 15.0;
    let factor = (n - 1.0) / (n - 3.0) * groups / (groups - 1.0);
    let sums = mat(15, 2, |gr, j| {
        (0..c.n)
            .filter(|&i| p.g[i] as usize == gr)
            .map(|i| c.xd[(i, j)] * c.u[i])
            .sum()
    });
    let v = &c.iqxx * (sums.transpose() * &sums) * &c.iqxx;
    for j in 0..2 {
        assert_close(
            "xtreg location se",
            fit.location_se[j],
            (factor * v[(j, j)]).sqrt(),
        );
    }
}

#[test]
fn mmqreg_conventions_match_its_stata_code() {
    let p = panel();
    let [gls, robust, cluster, dfadj] = mmqreg_reference(&p);
    let cases = [
        (MmqrVcov::Mmqreg, gls, "mmqreg"),
        (MmqrVcov::MmqregRobust, robust, "mmqreg-robust"),
        (
            MmqrVcov::MmqregCluster {
                codes: p.c.clone(),
                dfadj: false,
            },
            cluster,
            "mmqreg-cluster",
        ),
        (
            MmqrVcov::MmqregCluster {
                codes: p.c.clone(),
                dfadj: true,
            },
            dfadj,
            "mmqreg-cluster-dfadj",
        ),
    ];
    for (vcov, (cov, loc, scale), name) in cases {
        let fit = run(&p, vcov);
        assert_eq!(fit.vcov, name);
        for a in 0..2 {
            for b in 0..2 {
                assert_close(name, fit.covariance[a][b], cov[(a, b)]);
            }
            assert_close(name, fit.location_se[a], loc[a]);
            assert_close(name, fit.scale_se[a], scale[a]);
        }
        let n = p.y.len();
        let expect_df = (name == "mmqreg-cluster-dfadj").then_some(n - 3 - 15);
        assert_eq!(fit.df_t, expect_df);
    }
}

#[test]
fn conventions_share_the_estimates_and_differ_in_errors() {
    let p = panel();
    let robust = run(&p, MmqrVcov::Robust);
    for vcov in [MmqrVcov::Xtqreg, MmqrVcov::Mmqreg, MmqrVcov::MmqregRobust] {
        let other = run(&p, vcov);
        assert_eq!(other.coef, robust.coef);
        assert_ne!(other.std_error, robust.std_error);
    }
}

fn frame(p: &Panel) -> Frame {
    let mut f = Frame::new();
    let num = |v: Vec<f64>| Column::Numeric(v.into_iter().map(Some).collect());
    f.push("y", num(p.y.clone())).unwrap();
    f.push("x1", num(p.x.iter().map(|r| r[0]).collect()))
        .unwrap();
    f.push("x2", num(p.x.iter().map(|r| r[1]).collect()))
        .unwrap();
    f.push("g", num(p.g.iter().map(|&v| f64::from(v)).collect()))
        .unwrap();
    f.push("c", num(p.c.iter().map(|&v| f64::from(v)).collect()))
        .unwrap();
    f
}

fn spec(vcov: &str, se: QuantileSe, method: QuantileMethod) -> ModelSpec {
    ModelSpec {
        formula: "y ~ x1 + x2 | g".to_string(),
        vcov: vcov.parse().unwrap(),
        quantile: Some(QuantileSpec {
            tau: TAU,
            se,
            method,
        }),
        options: FitOptions::default(),
    }
}

#[test]
fn mmqr_never_replaces_a_requested_variance() {
    let p = panel();
    let f = frame(&p);
    for vcov in ["iid", "hc1", "cluster:g+c"] {
        let err = fit(&f, &spec(vcov, QuantileSe::Nid, QuantileMethod::Mmqr)).unwrap_err();
        let EstimError::InvalidVcov { message, .. } = &err else {
            panic!("{vcov}: {err:?}");
        };
        for option in ["`robust`", "`xtqreg`", "`mmqreg`", "`mmqreg-cluster:VAR`"] {
            assert!(message.contains(option), "{vcov}: {message}");
        }
    }
    for se in [QuantileSe::Iid, QuantileSe::Ker] {
        let err = fit(&f, &spec("robust", se, QuantileMethod::Mmqr)).unwrap_err();
        assert!(matches!(err, EstimError::InvalidOption { .. }), "{err:?}");
    }
    // The MMQR conventions are not OLS or pooled ones.
    let mut ols = spec("xtqreg", QuantileSe::Nid, QuantileMethod::Mmqr);
    ols.quantile = None;
    let err = fit(&f, &ols).unwrap_err();
    assert!(matches!(&err, EstimError::InvalidVcov { message, .. } if message.contains("`hc1`")));
    let err = fit(&f, &spec("mmqreg", QuantileSe::Iid, QuantileMethod::Pooled)).unwrap_err();
    assert!(matches!(err, EstimError::InvalidVcov { .. }), "{err:?}");
    // Every named convention is reported as asked.
    for vcov in [
        "robust",
        "cluster:c",
        "xtqreg",
        "mmqreg",
        "mmqreg-robust",
        "mmqreg-cluster:c",
        "mmqreg-cluster-dfadj:c",
    ] {
        let res = fit(&f, &spec(vcov, QuantileSe::Nid, QuantileMethod::Mmqr)).unwrap();
        assert_eq!(res.vcov, vcov);
        assert_eq!(res.n_clusters.is_some(), vcov.contains("cluster"), "{vcov}");
        assert_eq!(res.df_t.is_some(), vcov.contains("dfadj"), "{vcov}");
    }
}
