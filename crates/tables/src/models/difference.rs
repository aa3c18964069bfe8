//! Coefficient-difference tests between two columns of a `models` table (stacked, as Stata's
//! `suest`, or a Fisher permutation test), and their result files.
//!
//! Owns: assembling the two models' rows into the estimators' difference-test input and the
//! result JSON. Deliberately does not own: the tests' statistics (`repro_estimators::difftest`).

use std::collections::BTreeMap;

use repro_estimators::data::Frame;
use repro_estimators::difftest::{self, DiffData, PermutationOptions};
use repro_estimators::fit::VcovSpec;
use repro_kind::diag::Diagnostic;

use super::spec::{DiffMethod, DifferenceEntry, Model};
use crate::fitting;
use crate::sample;

pub(super) struct DiffOutcome {
    pub(super) p_value: f64,
    pub(super) json: serde_json::Value,
}

/// The difference test between the rows used by models `a` and `b` (both fitted already).
pub(super) fn difference(
    frame: &Frame,
    models: &[Model],
    rows_of: &BTreeMap<String, Vec<usize>>,
    d: &DifferenceEntry,
) -> Result<DiffOutcome, Diagnostic> {
    let fail =
        |m: String| Diagnostic::new(format!("difference test `{}` vs `{}`", d.a, d.b)).cause(m);
    let model = models
        .iter()
        .find(|m| m.id == d.a)
        .ok_or_else(|| fail(format!("no model `{}`", d.a)))?;
    let empty = Vec::new();
    let rows_a = rows_of.get(&d.a).unwrap_or(&empty);
    let rows_b = rows_of.get(&d.b).unwrap_or(&empty);
    let rows: Vec<usize> = rows_a.iter().chain(rows_b).copied().collect();
    let in_a: Vec<bool> = (0..rows.len()).map(|i| i < rows_a.len()).collect();
    let pick = |name: &str| -> Result<Vec<f64>, Diagnostic> {
        let col = sample::numeric_column(frame, name)?;
        Ok(rows.iter().map(|&i| col[i].unwrap_or(f64::NAN)).collect())
    };
    let y = pick(&model.parsed.outcome)?;
    let xs: Vec<Vec<f64>> = model
        .parsed
        .regressors
        .iter()
        .map(|r| pick(r))
        .collect::<Result<_, _>>()?;
    let x: Vec<&[f64]> = xs.iter().map(Vec::as_slice).collect();
    let fes: Vec<Vec<u32>> = model
        .parsed
        .fixed_effects
        .iter()
        .map(|t| sample::codes(frame, &t.variables, &rows))
        .collect::<Result<_, _>>()?;
    let fe: Vec<&[u32]> = fes.iter().map(Vec::as_slice).collect();
    let vcov: VcovSpec = model.vcov.parse().map_err(fitting::estim_diag)?;
    let clusters = match &vcov {
        VcovSpec::Cluster(vars) if vars.len() == 1 => {
            // `a^b` clusters on the interaction of `a` and `b`.
            let parts: Vec<String> = vars[0].split('^').map(str::to_string).collect();
            Some(sample::codes(frame, &parts, &rows)?)
        }
        VcovSpec::Cluster(_) => {
            return Err(fail("two-way clustering is not supported".into())
                .hint("cluster the two models by one variable"))
        }
        VcovSpec::Iid | VcovSpec::Hc1 => None,
        VcovSpec::Mmqr(_) => {
            return Err(fail(format!(
                "vcov `{}` is for MM-QR quantile fits, not the linear models a difference test compares",
                model.vcov
            ))
            .hint("use `iid`, `hc1` or `cluster:VAR`"))
        }
    };
    let data = DiffData {
        y: &y,
        x: &x,
        fixed_effects: &fe,
        clusters: clusters.as_deref(),
    };
    let coef = model
        .parsed
        .regressors
        .iter()
        .position(|r| r == &d.coef)
        .ok_or_else(|| fail(format!("`{}` is not a regressor", d.coef)))?;
    let estim = |e| {
        let inner = fitting::estim_diag(e);
        fail(inner.message)
    };
    let (p_value, detail) = match d.method {
        DiffMethod::Stacked => {
            let r = difftest::stacked_difference(&data, &in_a, coef).map_err(estim)?;
            (r.p_value, serde_json::to_value(&r))
        }
        DiffMethod::Permutation => {
            let opts = PermutationOptions {
                reps: d.reps.unwrap_or(0),
                seed: d.seed.unwrap_or(0),
            };
            let r =
                difftest::coefficient_permutation_test(&data, &in_a, coef, &opts).map_err(estim)?;
            (r.p_value, serde_json::to_value(&r))
        }
    };
    let mut obj = serde_json::Map::new();
    obj.insert("a".into(), d.a.clone().into());
    obj.insert("b".into(), d.b.clone().into());
    obj.insert("coef".into(), d.coef.clone().into());
    obj.insert(
        "method".into(),
        serde_json::to_value(d.method).unwrap_or_default(),
    );
    obj.insert("formula".into(), model.formula.clone().into());
    obj.insert("vcov".into(), model.vcov.clone().into());
    obj.insert("result".into(), detail.unwrap_or_default());
    Ok(DiffOutcome {
        p_value,
        json: serde_json::Value::Object(obj),
    })
}
