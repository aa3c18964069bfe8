//! The variables a `models` stage reads, checked against its data file's known columns when the
//! pipeline loads.
//!
//! Owns: listing each model's variables (formula, cluster variables, sample) with the place in
//! the spec file that names them. Deliberately does not own: knowing the columns or the message
//! (`crate::columns`).

use repro_kind::columns::ColumnsCtx;
use repro_kind::diag::Diagnostic;

use super::ModelsStage;
use crate::columns::{check, model_reads, ModelPlaces};
use crate::common::to_location;

impl ModelsStage {
    /// Every variable of every model that the data file's known columns lack.
    pub fn check_columns(&self, ctx: &ColumnsCtx<'_>) -> Vec<Diagnostic> {
        let mut reads = Vec::new();
        // `validate` made one model per spec entry, in order.
        for (m, entry) in self.models.iter().zip(&self.parsed.models) {
            let vcov = entry.vcov.as_ref().unwrap_or(&self.parsed.vcov);
            let vcov_at = match vcov.referenced == serde_saphyr::Location::UNKNOWN {
                true => &entry.formula.referenced,
                false => &vcov.referenced,
            };
            let name = format!("model `{}`", m.id);
            let places = ModelPlaces {
                name: &name,
                formula: to_location(&self.spec, &entry.formula.referenced),
                vcov: to_location(&self.spec, vcov_at),
                own_vcov: entry.vcov.is_some(),
            };
            let mut model =
                model_reads(&m.parsed, &[("vcov", &m.vcov)], m.sample.as_ref(), &places);
            // A variable the formula has from a `{set}` is named with its set, at its place in
            // `sets`.
            for r in model
                .iter_mut()
                .filter(|r| r.role.starts_with("the formula"))
            {
                let written = entry
                    .formula
                    .value
                    .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
                    .any(|w| w == r.variable);
                let member = m.sets_used.iter().find_map(|s| {
                    let vars = self.parsed.sets.get(s)?;
                    let v = vars.iter().find(|v| v.value == r.variable)?;
                    Some((s, v))
                });
                if let (false, Some((set, v))) = (written, member) {
                    r.role = format!("set `{set}`, in the formula of model `{}`", m.id);
                    r.location = Some(to_location(&self.spec, &v.referenced));
                }
            }
            reads.extend(model);
        }
        check(ctx, &self.parsed.data, &reads)
    }
}
