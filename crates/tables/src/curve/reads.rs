//! The variables a curve reads, checked against what is known of its data file's columns before
//! anything runs (`crate::columns`), each with the line of the choice that names it.
//!
//! Owns: listing the variables of every choice (outcomes, treatments, controls, fixed effects,
//! cluster variables of the vcov choices, sample restrictions, the joint test's cluster).
//! Deliberately does not own: the check itself or its messages (`crate::columns`).

use repro_kind::columns::{ColumnsCtx, Read};
use repro_kind::diag::Diagnostic;
use serde_saphyr::Spanned;

use super::spec::CurveSpec;
use crate::common::to_location;

/// Every problem with the variables `s` (spec file `file`) reads.
pub fn check(ctx: &ColumnsCtx<'_>, file: &str, s: &CurveSpec) -> Vec<Diagnostic> {
    let mut reads = Vec::new();
    let mut add = |vars: Vec<String>, role: String, at: &serde_saphyr::Location| {
        let location = (at.line() > 0).then(|| to_location(file, at));
        for v in vars.into_iter().filter(|v| !v.is_empty()) {
            reads.push(Read {
                variable: v,
                role: role.clone(),
                location: location.clone(),
            });
        }
    };
    let one = |v: &Spanned<String>| vec![v.value.trim().to_string()];
    for (label, v) in &s.outcomes {
        add(one(v), format!("outcome `{label}`"), &v.referenced);
    }
    for (label, v) in &s.treatments {
        add(one(v), format!("treatment `{label}`"), &v.referenced);
    }
    for (label, v) in &s.controls {
        add(
            v.value.clone(),
            format!("controls `{label}`"),
            &v.referenced,
        );
    }
    for (label, v) in &s.fixed_effects {
        let vars = v
            .value
            .split(['+', '^'])
            .map(|x| x.trim().to_string())
            .collect();
        add(vars, format!("fixed effects `{label}`"), &v.referenced);
    }
    for (label, v) in &s.vcov {
        let vars = crate::columns::cluster_variables(v.value.trim());
        add(
            vars,
            format!("the cluster variables of vcov `{label}`"),
            &v.referenced,
        );
    }
    for (label, v) in &s.samples {
        if let Ok(r) = crate::sample::parse(&v.value) {
            let vars = r.variables().into_iter().map(String::from).collect();
            add(vars, format!("sample `{label}`"), &v.referenced);
        }
    }
    if let Some(c) = s.joint_test.as_ref().and_then(|j| j.cluster.clone()) {
        add(
            vec![c],
            "`joint_test.cluster`".to_string(),
            &serde_saphyr::Location::UNKNOWN,
        );
    }
    crate::columns::check(ctx, &s.data, &reads)
}
