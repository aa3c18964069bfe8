//! OLS and 2SLS with absorbed fixed effects and fixest's variance conventions.
//!
//! Owns: [`fit_linear`] — building the column buffer, absorbing fixed effects, the collinearity
//! checks on one triangular factor, the OLS or IV solve, the covariance, R² and the IV
//! weak-instrument diagnostics.
//! Deliberately does not own: the numerical kernels (`demean`, `ols`, `iv`, `vcov`), sample
//! selection (`sample`), or quantile regression.

use faer::Mat;
use rayon::prelude::*;
use statrs::distribution::{ContinuousCDF, FisherSnedecor};

use super::sample::{gather, prepare};
use super::spec::{ModelSpec, VcovSpec};
use super::table::{centred_ss, coefficient_table, kept_columns, to_rows, Absorption};
use super::variance::{LinearVcov, VarianceSetup};
use crate::data::numeric_view;
use crate::data::Frame;
use crate::demean::{demean_slices, DemeanOptions, FixedEffects};
use crate::error::EstimError;
use crate::formula::Formula;
use crate::iv;
use crate::ols::{
    independent_columns, residuals, small_gram, solve_from_r, sub_r, tall_r, CollinearityOptions,
    ColumnStatus,
};
use crate::result::{FirstStageF, FirstStageStats, FitResult};
use crate::vcov::dof_k;

/// The data a model is fitted on: lent by the caller, or given up, so that its dense columns
/// become the model's columns without a copy and everything else is freed before the
/// estimation allocates (on 100M rows the frame alone is 4 GB).
pub(super) enum Data<'a> {
    Lent(&'a Frame),
    Given(Frame),
}

impl Data<'_> {
    fn frame(&self) -> &Frame {
        match self {
            Data::Lent(frame) => frame,
            Data::Given(frame) => frame,
        }
    }
}

/// Estimates an OLS or IV model (with absorbed fixed effects) and its fixest-style variance.
pub(super) fn fit_linear(
    data: Data<'_>,
    f: &Formula,
    spec: &ModelSpec,
) -> Result<FitResult, EstimError> {
    let linear_vcov = LinearVcov::of(&spec.vcov)?;
    let cluster_vars = match &spec.vcov {
        VcovSpec::Cluster(vars) => vars.clone(),
        _ => Vec::new(),
    };
    let mut sample = prepare(data.frame(), f, &cluster_vars, &spec.options)?;
    let mut messages = sample.messages.clone();
    let n = sample.n();
    let has_fe = !sample.fe.is_empty();
    let names = Names::of(f);
    // Fewer rows than candidate parameters makes every later collinearity verdict an artefact
    // of the sample size; say so directly.
    let fe_dof = {
        let levels = sample.fe_levels();
        levels.iter().sum::<usize>() - levels.len().saturating_sub(1)
    };
    let k_candidates = names.exog.len() + names.endo.len() + fe_dof;
    if n <= k_candidates {
        return Err(EstimError::TooFewObservations { n, k: k_candidates });
    }
    let variance = VarianceSetup::new(linear_vcov, &mut sample);
    // The group codes go to the fixed effects; the model needs nothing else of them.
    let dims: Vec<(Vec<u32>, usize)> = sample
        .fe
        .iter_mut()
        .map(|t| (std::mem::take(&mut t.codes), t.n_levels))
        .collect();
    let selection = sample.into_selection();
    let (fe, mut columns) = model_columns(data, &selection.rows, dims, f)?;
    if let Some(fe) = fe {
        absorb(
            fe,
            &mut columns.cols,
            &Absorb {
                f,
                names: &names,
                spec,
            },
            &mut messages,
        )?;
    }
    let y = columns.column(0);
    let within_tss = y.iter().map(|v| v * v).sum::<f64>();
    let factor = Factor::new(&columns, &names, has_fe);
    let absorption = Absorption::of(has_fe);
    let exog_kept = kept_columns(
        &factor.status(&factor.exog_idx),
        &names.exog,
        absorption,
        &mut messages,
    );
    let exog: Vec<&[f64]> = exog_kept.iter().map(|&j| factor.ordered[j]).collect();
    let mut coef_names: Vec<String> = exog_kept.iter().map(|&j| names.exog[j].clone()).collect();
    let solved = if f.iv.is_none() {
        if coef_names.is_empty() {
            return Err(EstimError::NoRegressors {
                reason: if names.exog.is_empty() {
                    "the formula has no regressor".to_string()
                } else {
                    "every regressor was dropped".to_string()
                },
            });
        }
        solve_ols(&factor, &exog_kept, &exog, y)?
    } else {
        solve_iv(
            &factor,
            &names,
            &exog_kept,
            &exog,
            y,
            absorption,
            &mut messages,
        )?
    };
    coef_names.extend(solved.endo_used.iter().cloned());

    // Scores: the regressors (for IV the exogenous ones and the fitted endogenous ones) times
    // the residuals.
    let score_x: Vec<&[f64]> = exog
        .iter()
        .copied()
        .chain(solved.fitted_endo.iter().map(Vec::as_slice))
        .collect();
    let ss = variance.small_sample(n, solved.coef.len());
    if n <= ss.k {
        return Err(EstimError::TooFewObservations { n, k: ss.k });
    }
    let (cov, repaired) = variance.covariance(
        solved.bread.as_ref(),
        solved.r.as_ref(),
        &score_x,
        &solved.resid,
        &ss,
    )?;
    if repaired {
        messages.push(
            "variance matrix had negative variances and was repaired (eigenvalues floored, Cameron-Gelbach-Miller)"
                .to_string(),
        );
    }
    let df_t = Some(ss.df_t);
    let coefficients = coefficient_table(&coef_names, &solved.coef, cov.as_ref(), df_t);
    let rss: f64 = solved.resid.iter().map(|e| e * e).sum();
    let r2 = (columns.tss > 0.0).then(|| 1.0 - rss / columns.tss);
    let r2_within = (has_fe && within_tss > 0.0).then(|| 1.0 - rss / within_tss);
    let adjusted = adjusted_r2(
        &Fit {
            n,
            k: solved.coef.len(),
            fe_dof,
            rss,
        },
        columns.tss,
        within_tss,
        has_fe,
    );
    let first_stage = solved.first_stage.map(|(fs, excluded)| {
        iv_diagnostics(&fs, &exog, &excluded, &solved.endo_used, &variance, n)
    });

    Ok(FitResult {
        formula: f.source.clone(),
        nobs: n,
        k: Some(ss.k),
        n_missing_dropped: selection.n_missing,
        n_singletons_dropped: selection.n_singletons,
        coefficients,
        r2,
        r2_within,
        adj_r2: adjusted.0,
        adj_r2_within: adjusted.1,
        objective: None,
        vcov: spec.vcov.to_string(),
        n_clusters: variance.cluster_counts(),
        df_t,
        covariance: to_rows(cov.as_ref()),
        first_stage,
        messages,
        residuals: solved.resid,
        used_rows: selection.rows,
    })
}

/// What the adjusted R²s count: rows, coefficients, fixed-effect parameters and the residual
/// sum of squares.
struct Fit {
    n: usize,
    k: usize,
    /// Fixed-effect levels counted as parameters: every level, one per extra dimension
    /// excepted (0 without fixed effects).
    fe_dof: usize,
    rss: f64,
}

/// The adjusted R² and adjusted within R², as R fixest's `r2(x, "ar2")` / `"war2"` and
/// pyfixest's `adj_r2` / `adj_r2_within` define them: every fixed-effect level counts as a
/// parameter whatever the variance (nesting in clusters only changes the small-sample K), and
/// the R² is centred, so `1 - RSS/TSS * (N - 1) / (N - K - K_fe)` and
/// `1 - RSS/TSS_within * (N - K_fe) / (N - K - K_fe)`.
fn adjusted_r2(fit: &Fit, tss: f64, within_tss: f64, has_fe: bool) -> (Option<f64>, Option<f64>) {
    let n = fit.n as f64;
    let params = (fit.k + fit.fe_dof) as f64;
    if n <= params {
        return (None, None);
    }
    let adj = (tss > 0.0).then(|| 1.0 - fit.rss / tss * ((n - 1.0) / (n - params)));
    let adj_within = (has_fe && within_tss > 0.0)
        .then(|| 1.0 - fit.rss / within_tss * ((n - fit.fe_dof as f64) / (n - params)));
    (adj, adj_within)
}

/// The model's column names by role; `exog` starts with `Intercept` when the model has one.
struct Names {
    exog: Vec<String>,
    endo: Vec<String>,
    inst: Vec<String>,
}

impl Names {
    fn of(f: &Formula) -> Self {
        let mut exog: Vec<String> = Vec::new();
        if f.has_intercept_coefficient() {
            exog.push("Intercept".to_string());
        }
        exog.extend(f.regressors.iter().cloned());
        Self {
            exog,
            endo: f.iv.as_ref().map_or(Vec::new(), |p| p.endogenous.clone()),
            inst: f.iv.as_ref().map_or(Vec::new(), |p| p.instruments.clone()),
        }
    }
}

/// The used rows of every model column:
/// y | exogenous (intercept first) | endogenous | excluded instruments.
struct Columns {
    cols: Vec<Vec<f64>>,
    /// Centred sum of squares of `y` before any absorption.
    tss: f64,
    /// Centred sum of squares of every other column before absorption (the collinearity
    /// reference for absorbed columns).
    reference_ss: Vec<f64>,
}

impl Columns {
    /// From the model's variables' columns (y | regressors | endogenous | instruments), with the
    /// intercept inserted after `y` when the model has one.
    fn new(mut cols: Vec<Vec<f64>>, intercept: bool) -> Self {
        if intercept {
            let n = cols.first().map_or(0, Vec::len);
            cols.insert(1, vec![1.0; n]);
        }
        // One task per column (each sum in row order, so the bits do not depend on threads).
        let mut ss: Vec<f64> = cols.par_iter().map(|c| centred_ss(c)).collect();
        let reference_ss = ss.split_off(1.min(ss.len()));
        Self {
            cols,
            tss: ss.first().copied().unwrap_or(0.0),
            reference_ss,
        }
    }

    fn column(&self, j: usize) -> &[f64] {
        &self.cols[j]
    }
}

/// The model's columns on the selected `rows`, and the fixed effects built from `dims` (none
/// when there are none). A given frame whose rows are all used hands its dense columns over;
/// otherwise they are copied, beside the fixed effects' set-up (a serial pass over the rows).
fn model_columns(
    data: Data<'_>,
    rows: &[usize],
    dims: Vec<(Vec<u32>, usize)>,
    f: &Formula,
) -> Result<(Option<FixedEffects>, Columns), EstimError> {
    let intercept = f.has_intercept_coefficient();
    let (endo, inst) = f.iv.as_ref().map_or((&[][..], &[][..]), |p| {
        (p.endogenous.as_slice(), p.instruments.as_slice())
    });
    let vars: Vec<&str> = std::iter::once(&f.outcome)
        .chain(&f.regressors)
        .chain(endo)
        .chain(inst)
        .map(String::as_str)
        .collect();
    let build_fe = |dims: Vec<(Vec<u32>, usize)>| {
        (!dims.is_empty())
            .then(|| FixedEffects::new(dims, None))
            .transpose()
    };
    let data = match data {
        Data::Given(frame) if rows.len() == frame.nrows() => match frame.into_dense(&vars) {
            Ok(cols) => return Ok((build_fe(dims)?, Columns::new(cols, intercept))),
            Err(frame) => Data::Given(frame),
        },
        data => data,
    };
    let views = vars
        .iter()
        .map(|v| numeric_view(data.frame(), v))
        .collect::<Result<Vec<_>, _>>()?;
    let (fe, cols) = rayon::join(
        || build_fe(dims),
        || views.iter().map(|v| gather(v, rows)).collect(),
    );
    Ok((fe?, Columns::new(cols, intercept)))
}

/// What [`absorb`] names in its message about columns that did not converge.
struct Absorb<'a> {
    f: &'a Formula,
    names: &'a Names,
    spec: &'a ModelSpec,
}

/// Absorbs the fixed effects `fe` from every column of `cols`, with a message naming the
/// columns that did not converge.
fn absorb(
    fe: FixedEffects,
    cols: &mut [Vec<f64>],
    what: &Absorb<'_>,
    messages: &mut Vec<String>,
) -> Result<(), EstimError> {
    let Absorb { f, names, spec } = *what;
    let mut slices: Vec<&mut [f64]> = cols.iter_mut().map(Vec::as_mut_slice).collect();
    let report = demean_slices(
        &fe,
        &mut slices,
        &DemeanOptions {
            tol: spec.options.fixef_tol,
            maxiter: spec.options.fixef_maxiter,
            ..DemeanOptions::default()
        },
    )?;
    if !report.converged {
        let all_names: Vec<&String> = std::iter::once(&f.outcome)
            .chain(&names.exog)
            .chain(&names.endo)
            .chain(&names.inst)
            .collect();
        let cols: Vec<String> = report
            .not_converged
            .iter()
            .map(|&j| format!("`{}`", all_names[j]))
            .collect();
        messages.push(format!(
            "fixed effects of model `{}` did not converge within {} iterations (tolerance {}) for {}",
            f.source,
            spec.options.fixef_maxiter,
            spec.options.fixef_tol,
            cols.join(", ")
        ));
    }
    Ok(())
}

/// One triangular factor of `[exog | instruments | endogenous | y]`: it serves every
/// collinearity check and every solve (sub-factors are re-triangularised from it).
struct Factor<'a> {
    /// The columns in factor order.
    ordered: Vec<&'a [f64]>,
    /// Their pre-absorption sums of squares, same order.
    ordered_ref: Vec<f64>,
    r_all: Mat<f64>,
    g_all: Mat<f64>,
    has_fe: bool,
    exog_idx: Vec<usize>,
    inst_idx: Vec<usize>,
    endo_idx: Vec<usize>,
    y_idx: usize,
}

impl<'a> Factor<'a> {
    fn new(columns: &'a Columns, names: &Names, has_fe: bool) -> Self {
        let (k1, k2, l1) = (names.exog.len(), names.endo.len(), names.inst.len());
        let m = 1 + k1 + k2 + l1;
        let ordered: Vec<&[f64]> = (1..=k1)
            .chain(1 + k1 + k2..m)
            .chain(1 + k1..1 + k1 + k2)
            .chain(std::iter::once(0))
            .map(|j| columns.column(j))
            .collect();
        let ordered_ref: Vec<f64> = (0..k1)
            .chain(k1 + k2..k1 + k2 + l1)
            .chain(k1..k1 + k2)
            .map(|j| columns.reference_ss[j])
            .collect();
        let r_all = tall_r(&ordered);
        let g_all = small_gram(r_all.as_ref());
        Self {
            ordered,
            ordered_ref,
            r_all,
            g_all,
            has_fe,
            exog_idx: (0..k1).collect(),
            inst_idx: (k1..k1 + l1).collect(),
            endo_idx: (k1 + l1..k1 + l1 + k2).collect(),
            y_idx: k1 + l1 + k2,
        }
    }

    /// Which of the columns `idx` (factor positions) are kept, absorbed or collinear.
    fn status(&self, idx: &[usize]) -> Vec<ColumnStatus> {
        let g = Mat::from_fn(idx.len(), idx.len(), |a, b| self.g_all[(idx[a], idx[b])]);
        let refs: Vec<f64> = idx.iter().map(|&j| self.ordered_ref[j]).collect();
        independent_columns(
            g.as_ref(),
            self.has_fe.then_some(refs.as_slice()),
            &CollinearityOptions::default(),
        )
    }
}

/// What a solve hands to the variance and the result.
struct Solved<'a> {
    coef: Vec<f64>,
    resid: Vec<f64>,
    bread: Mat<f64>,
    /// Triangular factor of the score regressors (`R'R = X'X`; for IV `X` holds the fitted
    /// endogenous regressors), for the sandwich variances.
    r: Mat<f64>,
    /// Kept endogenous regressors (their coefficients follow the exogenous ones).
    endo_used: Vec<String>,
    fitted_endo: Vec<Vec<f64>>,
    /// The first stage and its excluded instruments, for the IV diagnostics.
    first_stage: Option<(iv::FirstStage, Vec<&'a [f64]>)>,
}

fn solve_ols<'a>(
    factor: &Factor<'a>,
    exog_kept: &[usize],
    exog: &[&[f64]],
    y: &[f64],
) -> Result<Solved<'a>, EstimError> {
    let mut idx = exog_kept.to_vec();
    idx.push(factor.y_idx);
    let r_aug = sub_r(factor.r_all.as_ref(), &idx);
    let (coef, bread) = solve_from_r(r_aug.as_ref())?;
    let k = exog.len();
    let resid = residuals(exog, y, &coef);
    Ok(Solved {
        coef,
        resid,
        bread,
        r: r_aug.submatrix(0, 0, k, k).to_owned(),
        endo_used: Vec::new(),
        fitted_endo: Vec::new(),
        first_stage: None,
    })
}

fn solve_iv<'a>(
    factor: &Factor<'a>,
    names: &Names,
    exog_kept: &[usize],
    exog: &[&[f64]],
    y: &[f64],
    absorption: Absorption,
    messages: &mut Vec<String>,
) -> Result<Solved<'a>, EstimError> {
    let endo_status = factor.status(&factor.endo_idx);
    let endo_kept = kept_columns(&endo_status, &names.endo, absorption, messages);
    if endo_kept.is_empty() {
        return Err(EstimError::NoRegressors {
            reason: "every endogenous regressor was dropped".to_string(),
        });
    }
    // Excluded instruments must add to the (kept) exogenous regressors.
    let z_idx: Vec<usize> = exog_kept.iter().chain(&factor.inst_idx).copied().collect();
    let z_status = factor.status(&z_idx);
    let inst_kept: Vec<usize> = kept_columns(
        &z_status[exog_kept.len()..],
        &names.inst,
        absorption,
        messages,
    )
    .into_iter()
    .map(|j| factor.inst_idx[j])
    .collect();
    if inst_kept.len() < endo_kept.len() {
        return Err(EstimError::UnderIdentified {
            endogenous: endo_kept.len(),
            instruments: inst_kept.len(),
        });
    }
    let excluded: Vec<&[f64]> = inst_kept.iter().map(|&j| factor.ordered[j]).collect();
    let endo_pos: Vec<usize> = endo_kept.iter().map(|&j| factor.endo_idx[j]).collect();
    let endo: Vec<&[f64]> = endo_pos.iter().map(|&j| factor.ordered[j]).collect();
    let fs_idx: Vec<usize> = exog_kept
        .iter()
        .chain(&inst_kept)
        .chain(&endo_pos)
        .copied()
        .collect();
    let fs = iv::first_stage(
        exog,
        &excluded,
        &endo,
        sub_r(factor.r_all.as_ref(), &fs_idx),
    )?;
    let second = iv::second_stage(y, exog, &endo, &fs)?;
    Ok(Solved {
        coef: second.coef,
        resid: second.resid,
        bread: second.bread,
        r: second.r,
        endo_used: endo_kept.iter().map(|&j| names.endo[j].clone()).collect(),
        fitted_endo: fs.fitted.clone(),
        first_stage: Some((fs, excluded)),
    })
}

fn iv_diagnostics(
    fs: &iv::FirstStage,
    exog: &[&[f64]],
    excluded: &[&[f64]],
    endo_names: &[String],
    variance: &VarianceSetup,
    n: usize,
) -> FirstStageStats {
    let q = fs.n_excluded;
    let k_instruments = fs.n_exog + fs.n_excluded;
    let ss = variance.small_sample(n, k_instruments);
    let df2 = n.saturating_sub(ss.k).max(1);
    let wald = iv::first_stage_wald(fs, exog, excluded, variance.kind(), &ss);
    let f_dist = FisherSnedecor::new(q as f64, df2 as f64).ok();
    let first_stage = endo_names
        .iter()
        .zip(&wald)
        .map(|(name, &stat)| FirstStageF {
            endogenous: name.clone(),
            f_stat: stat,
            p_value: f_dist
                .as_ref()
                .filter(|_| stat.is_finite())
                .map_or(f64::NAN, |d| d.sf(stat)),
            df1: q,
            df2,
        })
        .collect();
    let kleibergen_paap_f = iv::kleibergen_paap_rk_wald(fs, exog, excluded, variance.kind())
        .map(|chi2| chi2 / ss.factor / q as f64);
    // Cragg-Donald is an iid statistic: its degrees of freedom count every fixed-effect level.
    let k_iid = dof_k(
        k_instruments,
        &variance.fe_levels,
        &vec![false; variance.fe_levels.len()],
    );
    let cragg_donald_f = iv::cragg_donald_eigenvalue(fs)
        .map_or(f64::NAN, |ev| ev * (n as f64 - k_iid as f64) / q as f64);
    FirstStageStats {
        first_stage,
        kleibergen_paap_f,
        cragg_donald_f,
    }
}
