//! The estimation sample: which rows a model uses and the categorical structure on them.
//!
//! Owns: dropping rows with a missing value in a used column, factorising fixed effects
//! (interactions included) and cluster variables on the kept rows, and the iterative removal of
//! fixed-effect singletons on request; [`Sample`] holds the result and copies columns out of it.
//! Deliberately does not own: estimation, variance choices, or reading data.

use rayon::prelude::*;

use super::spec::{FitOptions, SingletonPolicy};
use crate::data::{factorize, numeric_view, Column, Frame, NumericView};
use crate::demean::singleton_keep_mask;
use crate::error::EstimError;
use crate::formula::Formula;
use crate::vcov::ClusterIds;

/// Rows per parallel task when selecting and copying data.
const GATHER_BLOCK: usize = 65_536;

/// A fixed-effect term factorised on the estimation sample.
pub(super) struct FeTerm {
    pub(super) name: String,
    pub(super) variables: Vec<String>,
    pub(super) codes: Vec<u32>,
    pub(super) n_levels: usize,
}

/// The rows used by a model and the categorical structure on them.
pub(super) struct Sample<'a> {
    pub(super) rows: Vec<usize>,
    pub(super) n_missing: usize,
    pub(super) n_singletons: usize,
    pub(super) fe: Vec<FeTerm>,
    pub(super) clusters: Vec<ClusterIds>,
    pub(super) y: NumericView<'a>,
    pub(super) x: Vec<NumericView<'a>>,
    pub(super) messages: Vec<String>,
}

/// What a linear model keeps of its [`Sample`] once the columns are out of the frame.
pub(super) struct Selection {
    pub(super) rows: Vec<usize>,
    pub(super) n_missing: usize,
    pub(super) n_singletons: usize,
}

impl Sample<'_> {
    pub(super) fn n(&self) -> usize {
        self.rows.len()
    }

    /// The rows and counts, without the views that borrow the frame.
    pub(super) fn into_selection(self) -> Selection {
        Selection {
            rows: self.rows,
            n_missing: self.n_missing,
            n_singletons: self.n_singletons,
        }
    }

    /// Appends the used rows of a numeric column to `out` (see [`gather`]).
    pub(super) fn gather(&self, view: &NumericView<'_>, out: &mut Vec<f64>) {
        out.par_extend(gathered(view, &self.rows));
    }

    pub(super) fn fe_levels(&self) -> Vec<usize> {
        self.fe.iter().map(|t| t.n_levels).collect()
    }
}

/// The used `rows` of a numeric column, copied in parallel: on large panels this copy is a
/// visible share of the time, and `par_extend` writes into the reserved capacity directly, so
/// the fresh memory is first touched by the parallel copy, not by a serial zero fill.
pub(super) fn gather(view: &NumericView<'_>, rows: &[usize]) -> Vec<f64> {
    let mut out = Vec::with_capacity(rows.len());
    out.par_extend(gathered(view, rows));
    out
}

fn gathered<'a>(
    view: &'a NumericView<'_>,
    rows: &'a [usize],
) -> impl IndexedParallelIterator<Item = f64> + 'a {
    // Rows were filtered on non-missing values of every used column.
    rows.par_iter()
        .with_min_len(GATHER_BLOCK)
        .map(|&i| view.get(i).unwrap_or(f64::NAN))
}

/// Selects the rows of model `f` (complete in every used column, and without fixed-effect
/// singletons on request) and factorises its fixed effects and `cluster_vars` on them.
pub(super) fn prepare<'a>(
    frame: &'a Frame,
    f: &Formula,
    cluster_vars: &[String],
    opts: &FitOptions,
) -> Result<Sample<'a>, EstimError> {
    let views = |names: &[String]| -> Result<Vec<NumericView<'a>>, EstimError> {
        names.iter().map(|n| numeric_view(frame, n)).collect()
    };
    let y = numeric_view(frame, &f.outcome)?;
    let x = views(&f.regressors)?;
    let (endo, inst) = match &f.iv {
        Some(part) => (views(&part.endogenous)?, views(&part.instruments)?),
        None => (Vec::new(), Vec::new()),
    };
    let fe_cols: Vec<Vec<&Column>> = f
        .fixed_effects
        .iter()
        .map(|t| t.variables.iter().map(|v| frame.require(v)).collect())
        .collect::<Result<_, _>>()?;
    // `a^b` clusters on the interaction of `a` and `b`, as fixest's `~a^b`.
    let cluster_cols: Vec<Vec<&Column>> = cluster_vars
        .iter()
        .map(|v| v.split('^').map(|part| frame.require(part)).collect())
        .collect::<Result<_, _>>()?;

    let numeric: Vec<&NumericView<'_>> = std::iter::once(&y)
        .chain(&x)
        .chain(&endo)
        .chain(&inst)
        .collect();
    let categorical: Vec<&Column> = fe_cols
        .iter()
        .flatten()
        .chain(cluster_cols.iter().flatten())
        .copied()
        .collect();
    let mut messages = Vec::new();
    let mut rows = complete_rows(frame.nrows(), &numeric, &categorical)?;
    let n_missing = frame.nrows() - rows.len();
    if n_missing > 0 {
        messages.push(format!(
            "{n_missing} row(s) dropped because of missing values"
        ));
    }

    // One task per term: each factorisation is a serial pass over the rows.
    let mut fe: Vec<FeTerm> = f
        .fixed_effects
        .par_iter()
        .zip(&fe_cols)
        .map(|(term, cols)| {
            let (codes, n_levels) = interacted_codes(cols, &rows);
            FeTerm {
                name: term.name(),
                variables: term.variables.clone(),
                codes,
                n_levels,
            }
        })
        .collect();

    let mut n_singletons = 0;
    if opts.singletons == SingletonPolicy::DropIteratively && !fe.is_empty() {
        n_singletons = drop_singletons(&mut rows, &mut fe);
        if n_singletons > 0 {
            messages.push(format!("{n_singletons} singleton observation(s) dropped"));
        }
        if rows.is_empty() {
            return Err(EstimError::NoObservations {
                reason: "every observation is a fixed-effect singleton".to_string(),
            });
        }
    }

    let clusters = cluster_ids(cluster_vars, &cluster_cols, &fe, &rows)?;
    Ok(Sample {
        rows,
        n_missing,
        n_singletons,
        fe,
        clusters,
        y,
        x,
        messages,
    })
}

/// The rows without a missing value in any of the used columns, ascending; an error when none is
/// left.
fn complete_rows(
    nrows: usize,
    numeric: &[&NumericView<'_>],
    categorical: &[&Column],
) -> Result<Vec<usize>, EstimError> {
    let mut keep = vec![true; nrows];
    keep.par_chunks_mut(GATHER_BLOCK)
        .enumerate()
        .for_each(|(block, chunk)| {
            let start = block * GATHER_BLOCK;
            for v in numeric {
                v.and_present(start, chunk);
            }
            for c in categorical {
                c.and_present(start, chunk);
            }
        });
    let kept = keep.par_iter().filter(|&&k| k).count();
    // Sized up front: a growing list of 10M rows is copied at every doubling.
    let rows: Vec<usize> = if kept == nrows {
        (0..nrows).into_par_iter().collect()
    } else {
        let mut rows = Vec::with_capacity(kept);
        rows.extend((0..nrows).filter(|&i| keep[i]));
        rows
    };
    if rows.is_empty() {
        let reason = if nrows == 0 {
            "the data has no rows".to_string()
        } else {
            format!("each of the {nrows} rows has a missing value in a used column")
        };
        return Err(EstimError::NoObservations { reason });
    }
    Ok(rows)
}

/// Removes fixed-effect singletons iteratively (reghdfe) from `rows` and the codes of `fe`,
/// renumbering the levels that remain; returns how many observations were removed.
fn drop_singletons(rows: &mut Vec<usize>, fe: &mut [FeTerm]) -> usize {
    let dims: Vec<(&[u32], usize)> = fe
        .iter()
        .map(|t| (t.codes.as_slice(), t.n_levels))
        .collect();
    let mask = singleton_keep_mask(&dims);
    let n_singletons = mask.iter().filter(|&&k| !k).count();
    if n_singletons == 0 {
        return 0;
    }
    *rows = rows
        .iter()
        .zip(&mask)
        .filter(|(_, &k)| k)
        .map(|(&r, _)| r)
        .collect();
    for term in fe {
        let kept: Vec<u32> = term
            .codes
            .iter()
            .zip(&mask)
            .filter(|(_, &k)| k)
            .map(|(&c, _)| c)
            .collect();
        let (codes, n_levels) = compact_codes(&kept, term.n_levels);
        term.codes = codes;
        term.n_levels = n_levels;
    }
    n_singletons
}

/// Cluster ids of each cluster variable on `rows`; a variable with a single level is an error.
fn cluster_ids(
    cluster_vars: &[String],
    cluster_cols: &[Vec<&Column>],
    fe: &[FeTerm],
    rows: &[usize],
) -> Result<Vec<ClusterIds>, EstimError> {
    cluster_vars
        .iter()
        .zip(cluster_cols)
        .map(|(name, cols)| {
            // A cluster variable (or interaction) that is also a fixed effect is already
            // factorised.
            let parts: Vec<&str> = name.split('^').collect();
            let same_fe = fe.iter().find(|t| t.variables == parts);
            let (codes, n_groups) = match same_fe {
                Some(t) => (t.codes.clone(), t.n_levels),
                None => interacted_codes(cols, rows),
            };
            if n_groups < 2 {
                return Err(EstimError::SingleCluster { name: name.clone() });
            }
            Ok(ClusterIds {
                name: name.clone(),
                codes,
                n_groups,
            })
        })
        .collect()
}

/// Group codes of an interaction of categorical columns on the selected rows.
fn interacted_codes(cols: &[&Column], rows: &[usize]) -> (Vec<u32>, usize) {
    let (mut codes, mut n_levels) = factorize(cols[0], rows);
    for col in &cols[1..] {
        let (other, n_other) = factorize(col, rows);
        let combined: Vec<u64> = codes
            .iter()
            .zip(&other)
            .map(|(&a, &b)| u64::from(a) * n_other as u64 + u64::from(b))
            .collect();
        let mut map = std::collections::HashMap::new();
        codes = combined
            .iter()
            .map(|&key| {
                let next = map.len() as u32;
                *map.entry(key).or_insert(next)
            })
            .collect();
        n_levels = map.len();
    }
    (codes, n_levels)
}

/// Renumbers codes so that only levels that occur remain, in order of first appearance.
fn compact_codes(codes: &[u32], n_levels: usize) -> (Vec<u32>, usize) {
    let mut table = vec![u32::MAX; n_levels];
    let mut next = 0u32;
    let out = codes
        .iter()
        .map(|&c| {
            let slot = &mut table[c as usize];
            if *slot == u32::MAX {
                *slot = next;
                next += 1;
            }
            *slot
        })
        .collect();
    (out, next as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_codes_renumbers() {
        assert_eq!(compact_codes(&[4, 2, 4, 0], 5), (vec![0, 1, 0, 2], 3));
    }
}
