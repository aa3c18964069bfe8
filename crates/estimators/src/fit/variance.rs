//! The variance setup of a linear model, shared by the model and its first stage.
//!
//! Owns: turning a [`VcovSpec`] and a [`Sample`] into cluster ids (with the intersection for
//! two-way clustering), fixest's nesting of fixed effects in clusters, the small-sample count K,
//! and the covariance from a bread (or the triangular factor of the scores), scores and residuals.
//! Deliberately does not own: the formulas themselves (those are [`crate::vcov`]'s), or the
//! variance of quantile regressions.

use faer::{Mat, MatRef};

use super::sample::Sample;
use super::spec::{VcovSpec, LINEAR_VCOV_OPTIONS};
use crate::error::EstimError;
use crate::result::ClusterCounts;
use crate::vcov::{
    dof_k, fix_negative_variance, iid_vcov, intersect, is_nested, sandwich_from_r, small_sample,
    ClusterIds, SampleKind, SmallSample, VcovKind,
};

/// The variance types of a linear model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LinearVcov {
    Iid,
    Hc1,
    Cluster,
}

impl LinearVcov {
    /// The linear variance type of `spec`; the MMQR conventions are an error naming the
    /// options OLS and IV take.
    pub(super) fn of(spec: &VcovSpec) -> Result<Self, EstimError> {
        match spec {
            VcovSpec::Iid => Ok(LinearVcov::Iid),
            VcovSpec::Hc1 => Ok(LinearVcov::Hc1),
            VcovSpec::Cluster(_) => Ok(LinearVcov::Cluster),
            VcovSpec::Mmqr(m) => Err(EstimError::InvalidVcov {
                spec: m.to_string(),
                message: format!(
                    "`{m}` is a variance of mmqr quantile regressions; OLS and IV take {LINEAR_VCOV_OPTIONS} (`hc1` is the heteroskedasticity-robust one)"
                ),
            }),
        }
    }
}

pub(super) struct VarianceSetup {
    pub(super) spec: LinearVcov,
    /// Cluster ids; for two-way clustering the intersection is appended as a third entry.
    pub(super) ids: Vec<ClusterIds>,
    pub(super) fe_levels: Vec<usize>,
    pub(super) fe_nested: Vec<bool>,
}

impl VarianceSetup {
    /// Takes the sample's cluster ids (the model needs them only here; on 10M rows a copy of
    /// each is 40 MB of fresh memory).
    pub(super) fn new(spec: LinearVcov, sample: &mut Sample<'_>) -> Self {
        let mut ids = std::mem::take(&mut sample.clusters);
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
                ids.iter().take(2).any(|c| {
                    term.variables.contains(&c.name) || is_nested(&term.codes, term.n_levels, c)
                })
            })
            .collect();
        Self {
            spec,
            ids,
            fe_levels: sample.fe_levels(),
            fe_nested,
        }
    }

    pub(super) fn kind(&self) -> VcovKind<'_> {
        match self.spec {
            LinearVcov::Iid => VcovKind::Iid,
            LinearVcov::Hc1 => VcovKind::Hetero,
            LinearVcov::Cluster => VcovKind::Cluster(&self.ids),
        }
    }

    pub(super) fn small_sample(&self, n: usize, n_coef: usize) -> SmallSample {
        let counts: Vec<usize> = self.ids.iter().take(2).map(|c| c.n_groups).collect();
        let (kind, nested) = match self.spec {
            LinearVcov::Iid => (SampleKind::Iid, vec![false; self.fe_levels.len()]),
            LinearVcov::Hc1 => (SampleKind::Hetero, vec![false; self.fe_levels.len()]),
            LinearVcov::Cluster => (SampleKind::Cluster(&counts), self.fe_nested.clone()),
        };
        let k = dof_k(n_coef, &self.fe_levels, &nested);
        small_sample(n, k, kind)
    }

    /// Covariance from the bread `(X'X)^-1`, the triangular factor `r` of the score regressors
    /// (`R'R = X'X`, used by the sandwiches, see [`crate::vcov::sandwich_from_r`]), the score
    /// regressors and the residuals; also reports whether a negative variance had to be
    /// repaired.
    pub(super) fn covariance(
        &self,
        bread: MatRef<'_, f64>,
        r: MatRef<'_, f64>,
        score_x: &[&[f64]],
        resid: &[f64],
        ss: &SmallSample,
    ) -> Result<(Mat<f64>, bool), EstimError> {
        let mut v = match sandwich_from_r(r, score_x, resid, self.kind(), ss.factor)? {
            None => {
                let rss = resid.iter().map(|e| e * e).sum();
                iid_vcov(bread, rss, resid.len(), ss)
            }
            Some(v) => v,
        };
        let fixed = fix_negative_variance(&mut v);
        Ok((v, fixed))
    }

    pub(super) fn cluster_counts(&self) -> Option<ClusterCounts> {
        (self.spec == LinearVcov::Cluster).then(|| {
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
