//! Bookkeeping shared by every estimator: dropped columns, the coefficient table, p-values.
//!
//! Owns: the messages for dropped (absorbed or collinear) columns, t or normal p-values, the
//! [`Coefficient`] rows from estimates and a covariance, and small conversions.
//! Deliberately does not own: estimation or the choice of variance.

use faer::MatRef;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use crate::ols::ColumnStatus;
use crate::result::Coefficient;

pub(super) fn centred_ss(v: &[f64]) -> f64 {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    v.iter().map(|x| (x - mean) * (x - mean)).sum()
}

/// Whether the model absorbs fixed effects, which decides how a column without variation is
/// described.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Absorption {
    FixedEffects,
    Nothing,
}

impl Absorption {
    pub(super) fn of(has_fe: bool) -> Self {
        if has_fe {
            Absorption::FixedEffects
        } else {
            Absorption::Nothing
        }
    }
}

/// Indices of kept columns, with a message for each dropped one.
pub(super) fn kept_columns(
    status: &[ColumnStatus],
    names: &[String],
    absorption: Absorption,
    messages: &mut Vec<String>,
) -> Vec<usize> {
    let mut kept = Vec::new();
    for (j, s) in status.iter().enumerate() {
        match s {
            ColumnStatus::Kept => kept.push(j),
            ColumnStatus::Absorbed if absorption == Absorption::FixedEffects => {
                messages.push(format!(
                    "variable `{}` dropped: absorbed by the fixed effects",
                    names[j]
                ))
            }
            ColumnStatus::Absorbed => messages.push(format!(
                "variable `{}` dropped: it has no variation",
                names[j]
            )),
            ColumnStatus::Collinear => messages.push(format!(
                "variable `{}` dropped: collinear with the other regressors",
                names[j]
            )),
            ColumnStatus::Overflow => messages.push(format!(
                "variable `{}` dropped: its values are too large (their squares overflow a double); rescale it",
                names[j]
            )),
        }
    }
    kept
}

/// Student t (or normal when `df` is `None`) two-sided p-value.
fn p_value(stat: f64, df: Option<usize>) -> f64 {
    if !stat.is_finite() {
        return f64::NAN;
    }
    match df {
        None => 2.0 * Normal::standard().sf(stat.abs()),
        Some(0) => f64::NAN,
        Some(d) => StudentsT::new(0.0, 1.0, d as f64)
            .map(|t| 2.0 * t.sf(stat.abs()))
            .unwrap_or(f64::NAN),
    }
}

pub(super) fn coefficient_table(
    names: &[String],
    coef: &[f64],
    cov: MatRef<'_, f64>,
    df: Option<usize>,
) -> Vec<Coefficient> {
    names
        .iter()
        .zip(coef)
        .enumerate()
        .map(|(j, (name, &estimate))| {
            let std_error = cov[(j, j)].max(0.0).sqrt();
            let statistic = estimate / std_error;
            Coefficient {
                term: name.clone(),
                estimate,
                std_error,
                statistic,
                p_value: p_value(statistic, df),
            }
        })
        .collect()
}

pub(super) fn to_rows(m: MatRef<'_, f64>) -> Vec<Vec<f64>> {
    (0..m.nrows())
        .map(|i| (0..m.ncols()).map(|j| m[(i, j)]).collect())
        .collect()
}
