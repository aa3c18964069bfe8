//! The variance setup of a linear model, shared by the model and its first stage.
//!
//! Owns: turning a [`VcovSpec`] and a [`Sample`] into cluster ids (with the intersection for
//! two-way clustering), fixest's nesting of fixed effects in clusters, the small-sample count K,
//! and the covariance from a bread, scores and residuals.
//! Deliberately does not own: the formulas themselves (those are [`crate::vcov`]'s), or the
//! variance of quantile regressions.

use faer::{Mat, MatRef};

use super::sample::Sample;
use super::spec::VcovSpec;
use crate::result::ClusterCounts;
use crate::vcov::{
    dof_k, fix_negative_variance, iid_vcov, intersect, is_nested, meat, sandwich, small_sample,
    ClusterIds, SampleKind, SmallSample, VcovKind,
};

pub(super) struct VarianceSetup {
    pub(super) spec: VcovSpec,
    /// Cluster ids; for two-way clustering the intersection is appended as a third entry.
    pub(super) ids: Vec<ClusterIds>,
    pub(super) fe_levels: Vec<usize>,
    pub(super) fe_nested: Vec<bool>,
}

impl VarianceSetup {
    pub(super) fn new(spec: &VcovSpec, sample: &Sample<'_>) -> Self {
        let mut ids = sample.clusters.clone();
        if ids.len() == 2 {
            let both = intersect(&ids[0], &ids[1]);
            ids.push(both);
        }
        // fixest's nesting rule: a fixed effect named like a cluster variable, an interaction
        // containing one, or one whose every level sits in a single cluster.
        let fe_nested = sample
            .fe
            .iter()
            .map(|term| {
                sample.clusters.iter().any(|c| {
                    term.variables.contains(&c.name) || is_nested(&term.codes, term.n_levels, c)
                })
            })
            .collect();
        Self {
            spec: spec.clone(),
            ids,
            fe_levels: sample.fe_levels(),
            fe_nested,
        }
    }

    pub(super) fn kind(&self) -> VcovKind<'_> {
        match self.spec {
            VcovSpec::Iid => VcovKind::Iid,
            VcovSpec::Hc1 => VcovKind::Hetero,
            VcovSpec::Cluster(_) => VcovKind::Cluster(&self.ids),
        }
    }

    pub(super) fn small_sample(&self, n: usize, n_coef: usize) -> SmallSample {
        let counts: Vec<usize> = self.ids.iter().take(2).map(|c| c.n_groups).collect();
        let (kind, nested) = match self.spec {
            VcovSpec::Iid => (SampleKind::Iid, vec![false; self.fe_levels.len()]),
            VcovSpec::Hc1 => (SampleKind::Hetero, vec![false; self.fe_levels.len()]),
            VcovSpec::Cluster(_) => (SampleKind::Cluster(&counts), self.fe_nested.clone()),
        };
        let k = dof_k(n_coef, &self.fe_levels, &nested);
        small_sample(n, k, kind)
    }

    /// Covariance from the bread, the score regressors and the residuals; also reports whether a
    /// negative variance had to be repaired.
    pub(super) fn covariance(
        &self,
        bread: MatRef<'_, f64>,
        score_x: &[&[f64]],
        resid: &[f64],
        ss: &SmallSample,
    ) -> (Mat<f64>, bool) {
        let mut v = match meat(score_x, resid, self.kind()) {
            None => {
                let rss = resid.iter().map(|e| e * e).sum();
                iid_vcov(bread, rss, resid.len(), ss)
            }
            Some(m) => sandwich(bread, m.as_ref(), ss.factor),
        };
        let fixed = fix_negative_variance(&mut v);
        (v, fixed)
    }

    pub(super) fn cluster_counts(&self) -> Option<ClusterCounts> {
        matches!(self.spec, VcovSpec::Cluster(_)).then(|| {
            ClusterCounts(
                self.ids
                    .iter()
                    .take(2)
                    .map(|c| (c.name.clone(), c.n_groups))
                    .collect(),
            )
        })
    }
}
