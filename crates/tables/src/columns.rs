//! Checking, when the pipeline loads, the variables a table kind reads against the columns of
//! its data file, where they are known before anything runs.
//!
//! Owns: turning what is known of a data file (`repro_kind::columns::Known`) into its columns
//! (declared by the stage that writes it, or the header of a source file on disk), and the
//! variables one model reads (formula, cluster variables of its `vcov`, its `sample:`), each with
//! its place in the spec, down to the variable's own line and column. Deliberately does not own:
//! the message (`repro_kind::columns::check`) or which variables each kind reads beyond a
//! model's (each kind says).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use repro_estimators::fit::{MmqrVcovSpec, VcovSpec};
use repro_estimators::formula::Formula;
use repro_kind::columns::{self, ColumnsCtx, Known, Read};
use repro_kind::diag::{Diagnostic, Location};

use crate::sample::SampleSpec;

/// The errors for `reads` of `data` that its known columns lack; none when they are unknown
/// (written by a command stage) or the source file is not there (the run reports that).
pub fn check(ctx: &ColumnsCtx<'_>, data: &str, reads: &[Read]) -> Vec<Diagnostic> {
    let reads = &pinpoint(ctx.root, reads);
    match (ctx.known)(data) {
        Known::Declared { stage, columns } => columns::check(
            data,
            &format!("according to stage `{stage}`, which writes it"),
            columns,
            reads,
        ),
        Known::Source => {
            let path = ctx.root.join(data);
            if !path.is_file() {
                return Vec::new();
            }
            // A header that does not read is the run's to report, with its cause.
            match repro_tabular::dataio::column_names(&path) {
                Ok(cols) => columns::check(data, "according to its header", &cols, reads),
                Err(_) => Vec::new(),
            }
        }
        Known::Unknown => Vec::new(),
    }
}

/// Each read moved from the start of the spec value that names it (a formula, a `vcov`, a
/// `sample`) to the variable itself, where the spec file writes it there (not when it comes
/// from a `{set}`). Spec files are read again here: the pipeline loads, and checks, at once.
fn pinpoint(root: &Path, reads: &[Read]) -> Vec<Read> {
    let mut texts: HashMap<PathBuf, Option<String>> = HashMap::new();
    reads
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if let Some(loc) = r.location.as_mut() {
                let text = texts
                    .entry(loc.file.clone())
                    .or_insert_with(|| std::fs::read_to_string(root.join(&loc.file)).ok());
                let at = text.as_deref().and_then(|t| {
                    repro_kind::spot::word_in_scalar(t, loc.line, loc.column, &r.variable)
                });
                if let Some((line, column)) = at {
                    loc.line = line;
                    loc.column = column;
                }
            }
            r
        })
        .collect()
}

/// Where one model's parts stand in its spec file.
pub struct ModelPlaces<'a> {
    /// `model `a``, or empty for a spec of one model.
    pub name: &'a str,
    pub formula: Location,
    pub vcov: Location,
    /// Whether the `vcov` is the model's own (else the spec's, shared by every model).
    pub own_vcov: bool,
}

/// The variables one model reads: its formula's, its clusters' (`vcovs`: each field and its
/// value), its sample's.
pub fn model_reads(
    formula: &Formula,
    vcovs: &[(&str, &str)],
    sample: Option<&SampleSpec>,
    at: &ModelPlaces<'_>,
) -> Vec<Read> {
    let of = |what: &str| match at.name {
        "" => what.to_string(),
        name => format!("{what} of {name}"),
    };
    let mut out: Vec<Read> = formula
        .variables()
        .into_iter()
        .map(|v| Read {
            variable: v,
            role: of("the formula"),
            location: Some(at.formula.clone()),
        })
        .collect();
    for (field, vcov) in vcovs {
        let role = format!("the cluster variables of `{field}`");
        for v in cluster_variables(vcov) {
            out.push(Read {
                variable: v,
                role: match at.own_vcov {
                    true => of(&role),
                    false => role.clone(),
                },
                location: Some(at.vcov.clone()),
            });
        }
    }
    if let Some(s) = sample {
        for v in s.restriction.variables() {
            out.push(Read {
                variable: v.to_string(),
                role: of("`sample`"),
                location: Some(s.location.clone()),
            });
        }
    }
    out
}

/// The columns a `cluster:a+b^c` option names (`a`, `b`, `c`); none for other options or one
/// that does not parse (validation reports it).
pub fn cluster_variables(vcov: &str) -> Vec<String> {
    let clusters = match vcov.parse::<VcovSpec>() {
        Ok(VcovSpec::Cluster(vars)) => vars,
        Ok(VcovSpec::Mmqr(MmqrVcovSpec::MmqregCluster { var, .. })) => vec![var],
        _ => Vec::new(),
    };
    clusters
        .iter()
        .flat_map(|c| c.split('^'))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_variables_of_each_option() {
        assert_eq!(cluster_variables("cluster:city"), ["city"]);
        assert_eq!(cluster_variables("cluster:a^b+c"), ["a", "b", "c"]);
        assert_eq!(cluster_variables("mmqreg-cluster:city"), ["city"]);
        assert!(cluster_variables("hc1").is_empty());
    }
}
