//! Checking a `models` spec before anything runs: names, formulas, vcov, samples, differences.
//!
//! Owns: turning each spec entry into a [`Model`] (sets expanded, formula parsed, restriction
//! parsed) with errors at the spec file's line. Deliberately does not own: the spec's fields
//! (`spec`) or estimating anything.

use repro_estimators::fit::VcovSpec;
use repro_estimators::formula;
use repro_kind::KindError;

use super::spec::{diff_file_stem, DiffMethod, Model, ModelsSpec};
use crate::common::{check_name, expand_sets, is_simple_name, to_location};
use crate::fitting::{self, FitRequest};
use crate::sample::SampleSpec;

/// A spec error at `at` in the spec file.
fn located(file: &str, at: &serde_saphyr::Location, message: String) -> KindError {
    KindError {
        location: Some(to_location(file, at)),
        ..repro_kind::kind_err(message)
    }
}

/// Checks the whole spec without data: names, formulas, vcov, samples, differences.
pub(super) fn validate(file: &str, spec: &ModelsSpec) -> Result<Vec<Model>, KindError> {
    check_name(&spec.name)?;
    if spec.models.is_empty() {
        return Err(repro_kind::kind_err(format!(
            "`{file}` declares no `models`"
        )));
    }
    let mut models: Vec<Model> = Vec::new();
    let sets = spec.plain_sets();
    for entry in &spec.models {
        let at = &entry.formula.referenced;
        if !is_simple_name(&entry.id) {
            return Err(located(
                file,
                at,
                format!(
                    "model id `{}` must be letters, digits, `_` or `-` (it names a result file)",
                    entry.id
                ),
            ));
        }
        if models.iter().any(|m| m.id == entry.id) {
            return Err(located(
                file,
                at,
                format!("model id `{}` is used twice", entry.id),
            ));
        }
        let (expanded, sets_used) = expand_sets(&entry.formula.value, &sets)
            .map_err(|m| located(file, at, format!("model `{}`: {m}", entry.id)))?;
        let vcov_at = entry.vcov.as_ref().unwrap_or(&spec.vcov);
        let vcov = vcov_at.value.clone();
        // A bad vcov is reported at its own line (the model's or the spec's) and by its field.
        if let Err(e) = vcov.parse::<VcovSpec>() {
            let why = match e {
                repro_estimators::error::EstimError::InvalidVcov { message, .. } => message,
                other => other.to_string(),
            };
            let at = match vcov_at.referenced == serde_saphyr::Location::UNKNOWN {
                true => at,
                false => &vcov_at.referenced,
            };
            return Err(located(
                file,
                at,
                format!("model `{}`: invalid `vcov` `{vcov}`: {why}", entry.id),
            ));
        }
        let req = FitRequest {
            formula: expanded.clone(),
            vcov: vcov.clone(),
            quantile: None,
            se: None,
            method: None,
            drop_singletons: false,
        };
        fitting::model_spec(&req).map_err(|d| KindError {
            message: match d.snippet {
                Some(s) => format!("model `{}`: {}\n{s}", entry.id, d.message),
                None => format!("model `{}`: {}", entry.id, d.message),
            },
            hint: d.hint,
            location: Some(to_location(file, at)),
        })?;
        let parsed = formula::parse(&expanded).map_err(|e| repro_kind::kind_err(e.to_string()))?;
        if entry.first_stage && parsed.iv.is_none() {
            return Err(KindError {
                hint: Some("write the IV part as `| endogenous ~ instruments`".into()),
                ..located(
                    file,
                    at,
                    format!(
                        "model `{}` asks for `first_stage` but its formula has no IV part",
                        entry.id
                    ),
                )
            });
        }
        let sample = SampleSpec::from_spec(file, entry.sample.as_ref())?;
        models.push(Model {
            id: entry.id.clone(),
            label: entry.label.clone(),
            group: entry.group.clone(),
            formula: expanded,
            parsed,
            vcov,
            sample,
            sets_used,
            first_stage: entry.first_stage,
        });
    }
    for (k, d) in spec.differences.iter().enumerate() {
        if spec.differences[..k]
            .iter()
            .any(|e| diff_file_stem(e) == diff_file_stem(d))
        {
            return Err(repro_kind::kind_err(format!(
                "the difference test `{}` vs `{}` of `{}` is declared twice with the same method",
                d.a, d.b, d.coef
            )));
        }
        for side in [&d.a, &d.b] {
            if !models.iter().any(|m| &m.id == side) {
                return Err(repro_kind::kind_err(format!(
                    "difference test names model `{side}`, which `{file}` does not declare"
                )));
            }
        }
        let ma = models.iter().find(|m| m.id == d.a);
        let mb = models.iter().find(|m| m.id == d.b);
        if let (Some(ma), Some(mb)) = (ma, mb) {
            if ma.formula != mb.formula || ma.vcov != mb.vcov {
                return Err(repro_kind::kind_err(format!(
                    "difference test `{}` vs `{}`: both models must have the same formula and vcov (they differ by sample only)",
                    d.a, d.b
                )));
            }
            if ma.parsed.iv.is_some() {
                return Err(repro_kind::kind_err(format!(
                    "difference test `{}` vs `{}`: IV models are not supported",
                    d.a, d.b
                )));
            }
            if !ma.parsed.regressors.contains(&d.coef) {
                return Err(repro_kind::kind_err(format!(
                    "difference test `{}` vs `{}`: `{}` is not a regressor of `{}`",
                    d.a, d.b, d.coef, ma.formula
                )));
            }
        }
        match (d.method, d.reps, d.seed) {
            (DiffMethod::Permutation, Some(r), Some(_)) if r > 0 => {}
            (DiffMethod::Permutation, _, _) => {
                return Err(repro_kind::kind_err(format!(
                    "the permutation test `{}` vs `{}` needs `reps` (at least 1) and `seed`",
                    d.a, d.b
                )))
            }
            (DiffMethod::Stacked, None, None) => {}
            (DiffMethod::Stacked, _, _) => {
                return Err(repro_kind::kind_err(format!(
                    "`reps` and `seed` apply to `method: permutation` only (test `{}` vs `{}`)",
                    d.a, d.b
                )))
            }
        }
    }
    Ok(models)
}
