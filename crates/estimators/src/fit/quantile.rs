//! Quantile regressions from a frame: pooled (fixed effects as dummies), MMQR and Canay.
//!
//! Owns: which variance and standard-error options each quantile method accepts, the sample of
//! a quantile model, and turning the kernels' results into a [`FitResult`].
//! Deliberately does not own: the solvers and estimators themselves ([`crate::quantile`],
//! [`crate::mmqr`]).

use faer::Mat;

use super::sample::{prepare, Sample};
use super::spec::{
    MmqrVcovSpec, ModelSpec, QuantileMethod, QuantileSe, QuantileSpec, VcovSpec, MMQR_VCOV_OPTIONS,
};
use super::table::{coefficient_table, kept_columns, to_rows, Absorption};
use crate::data::Frame;
use crate::error::EstimError;
use crate::formula::Formula;
use crate::mmqr::MmqrVcov;
use crate::ols::{independent_columns, small_gram, tall_r, CollinearityOptions, ColumnStatus};
use crate::quantile;
use crate::recent::Recent;
use crate::result::{ClusterCounts, FitResult};
use crate::vcov::ClusterIds;

pub(super) fn fit_quantile(
    frame: &Frame,
    f: &Formula,
    spec: &ModelSpec,
    q: &QuantileSpec,
) -> Result<FitResult, EstimError> {
    if !(q.tau > 0.0 && q.tau < 1.0) {
        return Err(EstimError::TauOutOfRange { tau: q.tau });
    }
    if f.iv.is_some() {
        return Err(EstimError::InvalidOption {
            message: format!(
                "quantile regression does not take an IV part (formula `{}`)",
                f.source
            ),
        });
    }
    match q.method {
        QuantileMethod::Pooled => {
            let cluster_vars = pooled_clusters(&spec.vcov, q.se)?;
            let sample = prepare(frame, f, &cluster_vars, &spec.options)?;
            fit_quantile_pooled(f, q, sample)
        }
        QuantileMethod::Mmqr => {
            check_mmqr_se(q.se)?;
            let vcov = MmqrConvention::of(&spec.vcov)?;
            one_way_only(f, "mmqr")?;
            let cluster_vars: Vec<String> = vcov.cluster_var().into_iter().collect();
            let sample = prepare(frame, f, &cluster_vars, &spec.options)?;
            fit_mmqr(f, q, &spec.vcov, vcov, sample)
        }
        QuantileMethod::Canay => {
            one_way_only(f, "canay")?;
            let Some(fe) = f.fixed_effects.first() else {
                return Err(EstimError::InvalidOption {
                    message: format!(
                        "canay needs one fixed effect (`y ~ x | id`); formula `{}` has none",
                        f.source
                    ),
                });
            };
            match (&spec.vcov, q.se) {
                (VcovSpec::Iid, _) => {}
                // Canay's bootstrap resamples whole fixed-effect groups: a cluster bootstrap by
                // the fixed effect (reported in `n_clusters`).
                (VcovSpec::Cluster(vars), QuantileSe::Bootstrap { .. })
                    if vars.len() == 1 && vars[0] == fe.name() => {}
                _ => {
                    return Err(EstimError::InvalidVcov {
                        spec: spec.vcov.to_string(),
                        message: format!(
                            "canay takes `iid` (second-step standard errors) or `cluster:{}` with `se` = bootstrap (whole groups resampled)",
                            fe.name()
                        ),
                    })
                }
            }
            let sample = prepare(frame, f, &[], &spec.options)?;
            fit_canay(f, q, sample)
        }
    }
}

/// Cluster variables allowed for a pooled quantile regression: none, or one with the bootstrap.
fn pooled_clusters(vcov: &VcovSpec, se: QuantileSe) -> Result<Vec<String>, EstimError> {
    let invalid = |message: &str| EstimError::InvalidVcov {
        spec: vcov.to_string(),
        message: message.to_string(),
    };
    match (vcov, se) {
        (VcovSpec::Iid, _) => Ok(Vec::new()),
        (VcovSpec::Cluster(vars), QuantileSe::Bootstrap { .. }) if vars.len() == 1 => {
            Ok(vars.clone())
        }
        (VcovSpec::Cluster(_), QuantileSe::Bootstrap { .. }) => {
            Err(invalid("the quantile bootstrap resamples one cluster variable"))
        }
        (VcovSpec::Cluster(_), _) => Err(invalid(
            "clustered quantile standard errors need `se` = bootstrap",
        )),
        (VcovSpec::Hc1, _) => Err(invalid(
            "quantile regression takes `iid` or a cluster variable with the bootstrap; robustness comes from `se`",
        )),
        (VcovSpec::Mmqr(m), _) => Err(invalid(&format!(
            "`{m}` is a variance of mmqr; pooled quantile regression takes `iid`, or `cluster:VAR` with `se` = bootstrap"
        ))),
    }
}

/// MMQR and Canay handle one fixed-effect dimension.
fn one_way_only(f: &Formula, method: &str) -> Result<(), EstimError> {
    if f.fixed_effects.len() > 1 {
        return Err(EstimError::InvalidOption {
            message: format!(
                "{method} takes one fixed effect; formula `{}` has {}",
                f.source,
                f.fixed_effects.len()
            ),
        });
    }
    Ok(())
}

/// The regressors of a quantile model as an n x k matrix (no intercept).
fn regressor_matrix(sample: &Sample<'_>) -> Mat<f64> {
    let n = sample.n();
    let cols: Vec<Vec<f64>> = sample
        .x
        .iter()
        .map(|view| {
            let mut col = Vec::with_capacity(n);
            sample.gather(view, &mut col);
            col
        })
        .collect();
    Mat::from_fn(n, cols.len(), |i, j| cols[j][i])
}

/// MMQR's standard errors follow `vcov`; of the `se` options only the default applies.
fn check_mmqr_se(se: QuantileSe) -> Result<(), EstimError> {
    let name = match se {
        QuantileSe::Nid => return Ok(()),
        QuantileSe::Bootstrap { .. } => "bootstrap",
        QuantileSe::Iid => "iid",
        QuantileSe::Ker => "ker",
    };
    Err(EstimError::InvalidOption {
        message: format!(
            "mmqr standard errors come from its influence functions and follow `vcov` ({MMQR_VCOV_OPTIONS}); `se` = `{name}` is not available for it: leave `se` unset"
        ),
    })
}

/// The MMQR variance convention a [`VcovSpec`] asks for; variances MMQR does not have are an
/// error listing the ones it does.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MmqrConvention {
    Robust,
    Cluster(String),
    Xtqreg,
    Mmqreg,
    MmqregRobust,
    MmqregCluster { var: String, dfadj: bool },
}

impl MmqrConvention {
    fn of(spec: &VcovSpec) -> Result<Self, EstimError> {
        let unsupported = |why: &str| EstimError::InvalidVcov {
            spec: spec.to_string(),
            message: format!("{why}; mmqr takes {MMQR_VCOV_OPTIONS}"),
        };
        Ok(match spec {
            VcovSpec::Iid => {
                return Err(unsupported(
                    "mmqr has no iid variance (the model-based one is Theorem 3, `xtqreg` or `mmqreg`)",
                ))
            }
            VcovSpec::Hc1 => {
                return Err(unsupported(
                    "hc1 is a least-squares variance (the heteroskedasticity-robust one of mmqr is `robust`)",
                ))
            }
            VcovSpec::Cluster(vars) if vars.len() == 1 => MmqrConvention::Cluster(vars[0].clone()),
            VcovSpec::Cluster(_) => return Err(unsupported("mmqr clusters by one variable")),
            VcovSpec::Mmqr(MmqrVcovSpec::Robust) => MmqrConvention::Robust,
            VcovSpec::Mmqr(MmqrVcovSpec::Xtqreg) => MmqrConvention::Xtqreg,
            VcovSpec::Mmqr(MmqrVcovSpec::Mmqreg) => MmqrConvention::Mmqreg,
            VcovSpec::Mmqr(MmqrVcovSpec::MmqregRobust) => MmqrConvention::MmqregRobust,
            VcovSpec::Mmqr(MmqrVcovSpec::MmqregCluster { var, dfadj }) => {
                MmqrConvention::MmqregCluster {
                    var: var.clone(),
                    dfadj: *dfadj,
                }
            }
        })
    }

    fn cluster_var(&self) -> Option<String> {
        match self {
            MmqrConvention::Cluster(var) | MmqrConvention::MmqregCluster { var, .. } => {
                Some(var.clone())
            }
            _ => None,
        }
    }

    /// The kernel's option, with the cluster codes of the sample.
    fn kernel(&self, cluster: Option<&ClusterIds>) -> MmqrVcov {
        let codes = || cluster.map(|c| c.codes.clone()).unwrap_or_default();
        match self {
            MmqrConvention::Robust => MmqrVcov::Robust,
            MmqrConvention::Cluster(_) => MmqrVcov::Cluster(codes()),
            MmqrConvention::Xtqreg => MmqrVcov::Xtqreg,
            MmqrConvention::Mmqreg => MmqrVcov::Mmqreg,
            MmqrConvention::MmqregRobust => MmqrVcov::MmqregRobust,
            MmqrConvention::MmqregCluster { dfadj, .. } => MmqrVcov::MmqregCluster {
                codes: codes(),
                dfadj: *dfadj,
            },
        }
    }
}

/// Machado-Santos Silva MMQR with the (at most one) fixed effect as groups.
fn fit_mmqr(
    f: &Formula,
    q: &QuantileSpec,
    spec_vcov: &VcovSpec,
    convention: MmqrConvention,
    sample: Sample<'_>,
) -> Result<FitResult, EstimError> {
    let mut messages = sample.messages.clone();
    let n = sample.n();
    let mut y = Vec::with_capacity(n);
    sample.gather(&sample.y, &mut y);
    let x = regressor_matrix(&sample);
    // Without fixed effects every row is in one group, which gives the model an intercept.
    let groups = sample
        .fe
        .first()
        .map_or_else(|| vec![0u32; n], |t| t.codes.clone());
    let cluster = sample.clusters.first();
    let opts = crate::mmqr::MmqrOptions {
        vcov: convention.kernel(cluster),
        ..Default::default()
    };
    let fits = crate::mmqr::mmqr(&y, x.as_ref(), &groups, &[q.tau], &opts)?;
    let fit = fits
        .into_iter()
        .next()
        .ok_or_else(|| EstimError::Numerical {
            message: "mmqr returned no estimate".to_string(),
        })?;
    messages.extend(fit.messages.iter().cloned());
    let k = fit.coef.len();
    let cov = Mat::from_fn(k, k, |a, b| fit.covariance[a][b]);
    // MMQR's inference is asymptotic: normal p-values, as xtqreg reports z statistics (t with
    // N - K degrees of freedom for `mmqreg-cluster-dfadj`, as mmqreg's dfadj).
    let coefficients = coefficient_table(&f.regressors, &fit.coef, cov.as_ref(), fit.df_t);
    Ok(FitResult {
        formula: f.source.clone(),
        nobs: fit.nobs,
        k: None,
        n_missing_dropped: sample.n_missing,
        n_singletons_dropped: sample.n_singletons + fit.n_singletons_dropped,
        coefficients,
        r2: None,
        r2_within: None,
        adj_r2: None,
        adj_r2_within: None,
        objective: None,
        vcov: spec_vcov.to_string(),
        n_clusters: cluster.map(|c| ClusterCounts(vec![(c.name.clone(), c.n_groups)])),
        df_t: fit.df_t,
        covariance: to_rows(cov.as_ref()),
        first_stage: None,
        messages,
        residuals: Vec::new(),
        used_rows: fit.used_rows.iter().map(|&i| sample.rows[i]).collect(),
    })
}

/// Canay's two-step estimator with the fixed effect as groups.
fn fit_canay(f: &Formula, q: &QuantileSpec, sample: Sample<'_>) -> Result<FitResult, EstimError> {
    let mut messages = sample.messages.clone();
    let n = sample.n();
    let mut y = Vec::with_capacity(n);
    sample.gather(&sample.y, &mut y);
    let x = regressor_matrix(&sample);
    let term = &sample.fe[0];
    let se = match q.se {
        QuantileSe::Iid => crate::mmqr::CanaySe::SecondStep(quantile::RqSe::Iid),
        QuantileSe::Nid => crate::mmqr::CanaySe::SecondStep(quantile::RqSe::Nid),
        QuantileSe::Ker => crate::mmqr::CanaySe::SecondStep(quantile::RqSe::Ker),
        QuantileSe::Bootstrap { reps, seed } => crate::mmqr::CanaySe::GroupBootstrap { reps, seed },
    };
    let opts = crate::mmqr::CanayOptions {
        tau: q.tau,
        se,
        ..Default::default()
    };
    let fit = crate::mmqr::canay(&y, x.as_ref(), &term.codes, &opts)?;
    messages.extend(fit.messages.iter().cloned());
    messages.extend(fit.rq.messages.iter().cloned());
    // Report the regressors (coefficients 1..); the intercept is not separately identified
    // from the fixed effects.
    let k = f.regressors.len();
    let cov = Mat::from_fn(k, k, |a, b| {
        fit.rq
            .covariance
            .get(a + 1)
            .and_then(|row| row.get(b + 1))
            .copied()
            .unwrap_or(f64::NAN)
    });
    let coef: Vec<f64> = fit.rq.coef[1..].to_vec();
    let df = n.checked_sub(k + 1).filter(|&d| d > 0);
    let coefficients = coefficient_table(&f.regressors, &coef, cov.as_ref(), df);
    let bootstrap = matches!(q.se, QuantileSe::Bootstrap { .. });
    Ok(FitResult {
        formula: f.source.clone(),
        nobs: n,
        k: None,
        n_missing_dropped: sample.n_missing,
        n_singletons_dropped: sample.n_singletons,
        coefficients,
        r2: None,
        r2_within: None,
        adj_r2: None,
        adj_r2_within: None,
        objective: Some(fit.rq.objective),
        vcov: q.se.to_string(),
        n_clusters: bootstrap.then(|| ClusterCounts(vec![(term.name.clone(), fit.n_groups)])),
        df_t: df,
        covariance: to_rows(cov.as_ref()),
        first_stage: None,
        messages,
        residuals: fit.rq.residuals,
        used_rows: sample.rows,
    })
}

/// One quantile regression with the fixed effects as dummy columns (one level dropped per
/// fixed effect, the intercept kept).
fn fit_quantile_pooled(
    f: &Formula,
    q: &QuantileSpec,
    sample: Sample<'_>,
) -> Result<FitResult, EstimError> {
    let mut messages = sample.messages.clone();
    let n = sample.n();
    let has_fe = !sample.fe.is_empty();
    let intercept = f.intercept || has_fe;
    let mut names: Vec<String> = Vec::new();
    let mut cols: Vec<Vec<f64>> = Vec::new();
    if intercept {
        names.push("Intercept".to_string());
        cols.push(vec![1.0; n]);
    }
    for (name, view) in f.regressors.iter().zip(&sample.x) {
        let mut col = Vec::with_capacity(n);
        sample.gather(view, &mut col);
        names.push(name.clone());
        cols.push(col);
    }
    let n_reported = names.len();
    for term in &sample.fe {
        for level in 1..term.n_levels {
            let col = term
                .codes
                .iter()
                .map(|&c| if c as usize == level { 1.0 } else { 0.0 })
                .collect();
            names.push(format!("{}::{level}", term.name));
            cols.push(col);
        }
    }
    // As for OLS: with no more observations than candidate parameters the fit interpolates and
    // its standard errors do not exist; say so instead of "singular matrix".
    if n <= names.len() {
        return Err(EstimError::TooFewObservations { n, k: names.len() });
    }
    let slices: Vec<&[f64]> = cols.iter().map(Vec::as_slice).collect();
    let check = || {
        let gram = small_gram(tall_r(&slices).as_ref());
        independent_columns(gram.as_ref(), None, &CollinearityOptions::default())
    };
    // Every quantile of a pooled regression checks the same columns: with a few hundred dummies
    // the QR behind the check is worth keeping (see `quantile::shared_gram_inverse`).
    static CHECKED: Recent<Vec<ColumnStatus>> = Recent::new();
    let status =
        if names.len() >= quantile::SHARED_MIN_K && n * names.len() <= quantile::SHARED_MAX_CELLS {
            CHECKED.get_or_compute(&slices, check)
        } else {
            check()
        };
    let kept = kept_columns(&status, &names, Absorption::Nothing, &mut Vec::new());
    for (j, s) in status.iter().enumerate().take(n_reported) {
        if *s != ColumnStatus::Kept {
            let why = if has_fe {
                "collinear with the other regressors or the fixed effects"
            } else {
                "collinear with the other regressors"
            };
            messages.push(format!("variable `{}` dropped: {why}", names[j]));
        }
    }
    let design = Mat::from_fn(n, kept.len(), |i, j| cols[kept[j]][i]);
    drop(cols);
    let mut y = Vec::with_capacity(n);
    sample.gather(&sample.y, &mut y);

    let se = match q.se {
        QuantileSe::Iid => quantile::RqSe::Iid,
        QuantileSe::Nid => quantile::RqSe::Nid,
        QuantileSe::Ker => quantile::RqSe::Ker,
        QuantileSe::Bootstrap { reps, seed } => quantile::RqSe::Bootstrap {
            reps,
            seed,
            clusters: sample.clusters.first().map(|c| c.codes.clone()),
        },
    };
    let opts = quantile::RqOptions {
        tau: q.tau,
        se,
        ..quantile::RqOptions::default()
    };
    let rq = quantile::rq(design.as_ref(), &y, &opts)?;
    messages.extend(rq.messages.iter().cloned());
    if !rq.converged {
        messages.push(format!(
            "quantile regression of model `{}` did not reach a verified optimum",
            f.source
        ));
    }

    // Report the intercept (without fixed effects) and the regressors, not the dummies.
    let report: Vec<usize> = kept
        .iter()
        .enumerate()
        .filter(|(_, &j)| j < n_reported && !(has_fe && j == 0 && intercept))
        .map(|(pos, _)| pos)
        .collect();
    let df = n.checked_sub(kept.len()).filter(|&d| d > 0);
    let cov = Mat::from_fn(report.len(), report.len(), |a, b| {
        rq.covariance
            .get(report[a])
            .and_then(|row| row.get(report[b]))
            .copied()
            .unwrap_or(f64::NAN)
    });
    let coef_names: Vec<String> = report.iter().map(|&p| names[kept[p]].clone()).collect();
    let coef: Vec<f64> = report.iter().map(|&p| rq.coef[p]).collect();
    let coefficients = coefficient_table(&coef_names, &coef, cov.as_ref(), df);
    Ok(FitResult {
        formula: f.source.clone(),
        nobs: n,
        k: None,
        n_missing_dropped: sample.n_missing,
        n_singletons_dropped: sample.n_singletons,
        coefficients,
        r2: None,
        r2_within: None,
        adj_r2: None,
        adj_r2_within: None,
        objective: Some(rq.objective),
        vcov: q.se.to_string(),
        n_clusters: sample
            .clusters
            .first()
            .map(|c| ClusterCounts(vec![(c.name.clone(), c.n_groups)])),
        df_t: df,
        covariance: to_rows(cov.as_ref()),
        first_stage: None,
        messages,
        residuals: rq.residuals,
        used_rows: sample.rows,
    })
}
