//! The curve's joint test under the null (Simonsohn, Simmons & Nelson 2020, section "Inference"):
//! is the curve, taken as a whole, more extreme than curves of data in which the effect is zero?
//!
//! Owns: imposing the null in each specification (its outcome minus its own estimated effect,
//! `y - b x`, on every row of its sample), drawing resamples (blocks of the `cluster` variable, or
//! rows, with replacement; a block drawn twice enters as two blocks, so its copies are separate
//! clusters and fixed-effect levels), refitting every specification on each resample, and the
//! p-values: the share of resamples whose statistic is at least as extreme as the observed one
//! in the expected direction. Draws come from one ChaCha8 stream per resample, seeded from the
//! declared seed, so the result is the same whatever the thread count. Deliberately does not
//! own: the statistics themselves (`super::stats`) or the estimators.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use repro_estimators::data::{Column, Frame};
use repro_estimators::fit;
use repro_kind::diag::Diagnostic;

use super::estimate::Estimate;
use super::spec::{CurveSpec, JointTestSpec, Sign, Specification};
use super::{stats, Stats};
use crate::fitting;

/// Runs the test; the JSON of the summary's `joint_test`.
pub fn run(
    s: &CurveSpec,
    specs: &[Specification],
    frames: &[Frame],
    est: &[Estimate],
    j: &JointTestSpec,
    observed: Stats,
) -> Result<serde_json::Value, Diagnostic> {
    let blocks = frames
        .iter()
        .map(|f| block_keys(f, j.cluster.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    // The blocks of every sample, so one draw resamples all samples alike.
    let mut universe: Vec<String> = blocks.iter().flatten().cloned().collect();
    universe.sort();
    universe.dedup();
    let mut master = ChaCha8Rng::seed_from_u64(j.seed);
    let seeds: Vec<u64> = (0..j.reps).map(|_| master.random()).collect();
    let draws: Vec<Stats> = seeds
        .par_iter()
        .map(|&seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut count = std::collections::HashMap::<&str, u32>::new();
            for _ in 0..universe.len() {
                *count
                    .entry(&universe[rng.random_range(0..universe.len())])
                    .or_default() += 1;
            }
            let resampled: Vec<Frame> = frames
                .iter()
                .zip(&blocks)
                .map(|(f, keys)| resample(f, keys, &count, j.cluster.as_deref()))
                .collect();
            let pairs = specs
                .iter()
                .zip(est)
                .map(|(spec, e)| null_fit(s, spec, &resampled[spec.pick[3]], e.estimate))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(stats(&pairs, s.expected_sign, s.level))
        })
        .collect::<Result<Vec<_>, Diagnostic>>()?;
    let reps = draws.len() as f64;
    let share =
        |pred: &dyn Fn(&Stats) -> bool| draws.iter().filter(|d| pred(d)).count() as f64 / reps;
    let sign = s.expected_sign;
    let p_median = share(&|d| match sign {
        Sign::Negative => d.median_estimate <= observed.median_estimate,
        Sign::Positive => d.median_estimate >= observed.median_estimate,
    });
    let p_sign = share(&|d| d.share_expected_sign >= observed.share_expected_sign);
    let p_signif =
        share(&|d| d.share_significant_expected_sign >= observed.share_significant_expected_sign);
    let mean = |f: &dyn Fn(&Stats) -> f64| draws.iter().map(f).sum::<f64>() / reps;
    Ok(serde_json::json!({
        "null": "each specification's outcome minus its estimated effect (y - b x)",
        "resampling": match &j.cluster {
            Some(c) => format!("blocks of `{c}` with replacement"),
            None => "rows with replacement".to_string(),
        },
        "reps": j.reps,
        "seed": j.seed,
        "p_median_estimate": p_median,
        "p_share_expected_sign": p_sign,
        "p_share_significant_expected_sign": p_signif,
        "null_mean": {
            "median_estimate": mean(&|d| d.median_estimate),
            "share_expected_sign": mean(&|d| d.share_expected_sign),
            "share_significant_expected_sign": mean(&|d| d.share_significant_expected_sign),
        },
    }))
}

/// The block of every row: its `cluster` value as text, or the row's own number.
fn block_keys(frame: &Frame, cluster: Option<&str>) -> Result<Vec<String>, Diagnostic> {
    let Some(c) = cluster else {
        return Ok((0..frame.nrows()).map(|i| format!("row {i}")).collect());
    };
    let col = frame.column(c).ok_or_else(|| {
        Diagnostic::new(format!("unknown variable `{c}` in `joint_test.cluster`"))
            .hint("check the spelling against the data file's columns")
    })?;
    Ok(match col {
        Column::Numeric(v) => v.iter().map(|x| format!("{x:?}")).collect(),
        // The same keys as `Numeric` gives: a missing (non-finite) value is `None`.
        Column::Float(v) => v
            .iter()
            .map(|x| format!("{:?}", x.is_finite().then_some(*x)))
            .collect(),
        Column::Text(v) => v.iter().map(|x| format!("{x:?}")).collect(),
    })
}

/// The rows of `frame` whose block was drawn, each as often as it was drawn; the copies of a
/// block get distinct `cluster` values (`VALUE#COPY`).
fn resample(
    frame: &Frame,
    keys: &[String],
    count: &std::collections::HashMap<&str, u32>,
    cluster: Option<&str>,
) -> Frame {
    let mut rows = Vec::new();
    let mut copy = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        for c in 0..count.get(k.as_str()).copied().unwrap_or(0) {
            rows.push(i);
            copy.push(c);
        }
    }
    let mut out = crate::sample::subset(frame, &rows);
    if let Some(c) = cluster {
        let relabelled: Vec<Option<String>> = rows
            .iter()
            .zip(&copy)
            .map(|(&i, n)| Some(format!("{}#{n}", keys[i])))
            .collect();
        out = replace(&out, c, Column::Text(relabelled));
    }
    out
}

/// `frame` with column `name` replaced.
fn replace(frame: &Frame, name: &str, col: Column) -> Frame {
    let mut out = Frame::new();
    let mut new = Some(col);
    for n in frame.names() {
        let c = if n == name {
            new.take()
        } else {
            frame.column(n).cloned()
        };
        if let Some(c) = c {
            // Names are unique and lengths equal by construction.
            let _ = out.push(n.clone(), c);
        }
    }
    out
}

/// The specification refitted on `frame` with the null imposed; (estimate, p-value).
fn null_fit(
    s: &CurveSpec,
    spec: &Specification,
    frame: &Frame,
    effect: f64,
) -> Result<(f64, f64), Diagnostic> {
    let (y, x) = (spec.outcome(s), spec.treatment(s));
    let num = |name: &str| match frame.column(name) {
        Some(Column::Numeric(v)) => Ok(v.clone()),
        Some(Column::Float(v)) => Ok(v.iter().map(|x| x.is_finite().then_some(*x)).collect()),
        _ => Err(Diagnostic::new(format!(
            "the joint test needs `{name}` as a numeric column"
        ))),
    };
    let (yv, xv) = (num(y)?, num(x)?);
    let nulled: Vec<Option<f64>> = yv
        .iter()
        .zip(&xv)
        .map(|(a, b)| Some((*a)? - effect * (*b)?))
        .collect();
    let frame = replace(frame, y, Column::Numeric(nulled));
    let req = spec.request(s);
    let model = fitting::model_spec(&req)?;
    let res = fit::fit(&frame, &model).map_err(|e| {
        Diagnostic::new(format!(
            "the joint test cannot refit `{}` on a resample",
            req.formula
        ))
        .cause(fitting::fit_diag(e, &req).message)
        .hint("resample larger blocks, or leave the specification out with `exclude:`")
    })?;
    let c = res
        .coefficient(x)
        .ok_or_else(|| Diagnostic::new(format!("`{x}` has no estimate on a resample")))?;
    Ok((c.estimate, c.p_value))
}
