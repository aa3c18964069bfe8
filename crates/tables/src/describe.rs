//! The `describe` built-in kind: a table of descriptive statistics.
//!
//! Owns: its spec (`title`, `data`, `name`, `variables` (ordered variable -> label), `sample`,
//! `digits`) and the statistics per variable over its non-missing values: N, mean, standard
//! deviation (n - 1 denominator), minimum, median, maximum. Deliberately does not own: rendering
//! (`tables`), sample parsing (`sample`) or reading files (`dataio`).

use indexmap::IndexMap;
use repro_kind::columns::Read;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::common::{
    check_name, default_digits, digits, spec_param, spec_path, stage_failed, table_io, write_table,
};
use crate::sample::{self, SampleSpec};
use crate::table::{self as tables, Cell, Row, Table};
use repro_kind::diag::Diagnostic;
use repro_kind::{BuiltinCtx, ImpliedIo, KindError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DescribeSpec {
    #[serde(default)]
    pub title: Option<String>,
    pub data: String,
    pub name: String,
    /// Variable (with its place, for messages) -> label.
    pub variables: IndexMap<Spanned<String>, String>,
    #[serde(default)]
    pub sample: Option<Spanned<String>>,
    #[serde(default = "default_digits", deserialize_with = "digits")]
    pub digits: usize,
    /// LaTeX `\caption`; with it (or `latex_label`) the `.tex` is a `table` float.
    #[serde(default)]
    pub caption: Option<String>,
    /// LaTeX `\label` key.
    #[serde(default)]
    pub latex_label: Option<String>,
}

/// A validated `describe` stage; only the spec path enters the definition (the spec file is a
/// dependency).
#[derive(Debug, Clone, Serialize)]
pub struct DescribeStage {
    pub spec: String,
    #[serde(skip)]
    pub parsed: DescribeSpec,
    #[serde(skip)]
    pub sample: Option<SampleSpec>,
}

pub fn parse(
    params: serde_json::Value,
    root: &std::path::Path,
) -> Result<DescribeStage, KindError> {
    let spec = spec_param(params)?;
    let mut parsed: DescribeSpec = repro_kind::load_spec(root, &spec)?;
    parsed.data = spec_path("data", &parsed.data)?;
    check_name(&parsed.name)?;
    if parsed.variables.is_empty() {
        return Err(repro_kind::kind_err(format!(
            "`{spec}` lists no `variables`"
        )));
    }
    let sample = SampleSpec::from_spec(&spec, parsed.sample.as_ref())?;
    Ok(DescribeStage {
        spec,
        parsed,
        sample,
    })
}

/// Summary statistics of one variable.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    pub sd: f64,
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

/// Statistics of the non-missing values (`None` when there are none).
pub fn summarize(values: &[Option<f64>]) -> Option<Summary> {
    let mut v: Vec<f64> = values.iter().flatten().copied().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let mean = v.iter().sum::<f64>() / n as f64;
    let sd = if n > 1 {
        (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        f64::NAN
    };
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Summary {
        n,
        mean,
        sd,
        min: v[0],
        median,
        max: v[n - 1],
    })
}

impl DescribeStage {
    pub fn implied_io(&self) -> ImpliedIo {
        table_io(&self.spec, &self.parsed.data, &self.parsed.name, Vec::new())
    }

    pub fn run(&self, ctx: &BuiltinCtx<'_>) -> Result<(), Diagnostic> {
        self.run_inner(ctx).map_err(|d| stage_failed(ctx, d))
    }

    /// The `variables` and `sample` variables that the data file's known columns lack
    /// (`crate::columns`).
    pub fn check_columns(&self, ctx: &repro_kind::columns::ColumnsCtx<'_>) -> Vec<Diagnostic> {
        let role = format!("`variables` of `{}`", self.spec);
        let mut reads: Vec<Read> = (self.parsed.variables.keys())
            .map(|v| Read {
                variable: v.value.clone(),
                role: role.clone(),
                location: Some(crate::common::to_location(&self.spec, &v.referenced)),
            })
            .collect();
        if let Some(s) = &self.sample {
            reads.extend(s.restriction.variables().into_iter().map(|v| Read {
                variable: v.to_string(),
                role: "`sample`".into(),
                location: Some(s.location.clone()),
            }));
        }
        crate::columns::check(ctx, &self.parsed.data, &reads)
    }

    fn run_inner(&self, ctx: &BuiltinCtx<'_>) -> Result<(), Diagnostic> {
        let spec = &self.parsed;
        let frame = sample::load(ctx.root, &spec.data, self.sample.as_ref())?;
        let d = spec.digits;
        let mut rows = Vec::new();
        for (var, label) in &spec.variables {
            let values = sample::numeric_column(&frame, &var.value)?;
            let cells = match summarize(&values) {
                None => {
                    let mut c = vec![Cell::text("0")];
                    c.extend(std::iter::repeat_n(Cell::empty(), 5));
                    c
                }
                Some(s) => vec![
                    Cell::text(crate::fitting::thousands(s.n)),
                    Cell::text(tables::fixed(s.mean, d)),
                    Cell::text(tables::fixed(s.sd, d)),
                    Cell::text(tables::fixed(s.min, d)),
                    Cell::text(tables::fixed(s.median, d)),
                    Cell::text(tables::fixed(s.max, d)),
                ],
            };
            rows.push(Row {
                label: label.clone(),
                cells,
            });
        }
        let mut notes = vec!["N counts non-missing values; SD uses n - 1.".to_string()];
        if let Some(s) = &self.sample {
            notes.push(format!("Sample: {}.", s.text));
        }
        let table = Table {
            title: spec
                .title
                .clone()
                .unwrap_or_else(|| "Descriptive statistics".into()),
            groups: Vec::new(),
            columns: ["N", "Mean", "SD", "Min", "Median", "Max"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            sections: vec![rows],
            notes,
            caption: spec.caption.clone(),
            label: spec.latex_label.clone(),
            ..Table::default()
        };
        write_table(ctx, &spec.name, &table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_skips_missing_values() {
        let s = summarize(&[Some(3.0), None, Some(1.0), Some(2.0), Some(10.0)]).unwrap();
        assert_eq!(s.n, 4);
        assert_eq!(s.mean, 4.0);
        assert_eq!(s.min, 1.0);
        assert_eq!(s.max, 10.0);
        assert_eq!(s.median, 2.5);
        assert!((s.sd - (50.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(summarize(&[None]), None);
    }
}
