//! The `curve` built-in kind: a specification curve (Simonsohn, Simmons & Nelson 2020, "Specification
//! curve analysis", Nature Human Behaviour 4): one coefficient estimated over every combination of
//! declared choices, as a figure, a table and a summary.
//!
//! Owns: the stage (its spec path, checks, implied outputs), reading the data once, ranking the
//! estimates, the summary (shares with the expected sign and significant, the median) and
//! writing `output/results/<name>/{specifications.{csv,tex,md,html},summary.json}`, the table
//! `output/tables/<name>.*` and the figure `output/figures/<name>.{svg,pdf,png,json}`.
//! Module map: `spec` the spec file and the enumeration; `estimate` fitting with the
//! per-specification memo; `figure` the drawing; `tables` the two tables; `joint` the test
//! under the null; `reads` the variables checked before anything runs.
//! Deliberately does not own: the estimators, the memo's storage (the engine's store, through
//! `repro_kind::Memo`) or table rendering (`table`).

mod estimate;
mod figure;
mod joint;
mod reads;
pub mod spec;
mod tables;

use repro_kind::diag::Diagnostic;
use repro_kind::{BuiltinCtx, ImpliedIo, KindError};
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use crate::common::{check_name, spec_param, spec_path, stage_failed, write_json, write_table};
use estimate::Estimate;
use spec::{CurveSpec, Specification, DIMENSIONS};

pub use estimate::memo_key;

/// A validated `curve` stage; only the spec path enters the definition (the spec file is a
/// dependency).
#[derive(Debug, Clone, Serialize)]
pub struct CurveStage {
    pub spec: String,
    #[serde(skip)]
    pub parsed: CurveSpec,
    #[serde(skip)]
    pub specs: Vec<Specification>,
}

pub fn parse(params: serde_json::Value, root: &std::path::Path) -> Result<CurveStage, KindError> {
    let spec = spec_param(params)?;
    let mut parsed: CurveSpec = repro_kind::load_spec(root, &spec)?;
    parsed.data = spec_path("data", &parsed.data)?;
    check_name(&parsed.name)?;
    let excluded = spec::check(&spec, &parsed)?;
    let specs = spec::enumerate(&parsed, &excluded);
    if specs.is_empty() {
        return Err(repro_kind::kind_err(format!(
            "`exclude` in `{spec}` leaves no specification"
        )));
    }
    Ok(CurveStage {
        spec,
        parsed,
        specs,
    })
}

/// One row of the curve: a specification, its estimate and interval, and its rank (1 = the
/// smallest estimate).
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub spec: usize,
    pub rank: usize,
    pub choices: Vec<String>,
    pub estimate: f64,
    pub std_error: f64,
    pub p_value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub nobs: usize,
    /// `expected` (significant with the expected sign), `opposite`, or `none`.
    pub significance: &'static str,
}

/// The curve's summary statistics (also what the joint test recomputes on each resample).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stats {
    pub median_estimate: f64,
    pub share_expected_sign: f64,
    pub share_significant_expected_sign: f64,
}

/// The statistics of estimates with p-values, for expected sign `sign` at `level`.
pub fn stats(est: &[(f64, f64)], sign: spec::Sign, level: f64) -> Stats {
    let n = est.len().max(1) as f64;
    let mut sorted: Vec<f64> = est.iter().map(|e| e.0).collect();
    sorted.sort_by(f64::total_cmp);
    let m = sorted.len();
    let median_estimate = match m {
        0 => f64::NAN,
        _ if m % 2 == 1 => sorted[m / 2],
        _ => (sorted[m / 2 - 1] + sorted[m / 2]) / 2.0,
    };
    let expected = est.iter().filter(|e| sign.agrees(e.0)).count() as f64;
    let significant = est
        .iter()
        .filter(|e| sign.agrees(e.0) && e.1 < 1.0 - level)
        .count() as f64;
    Stats {
        median_estimate,
        share_expected_sign: expected / n,
        share_significant_expected_sign: significant / n,
    }
}

/// The two-sided critical value at `level` of a t distribution with `df` degrees of freedom
/// (normal without).
fn critical(level: f64, df: Option<usize>) -> f64 {
    let q = (1.0 + level) / 2.0;
    match df.and_then(|d| StudentsT::new(0.0, 1.0, d as f64).ok()) {
        Some(t) => t.inverse_cdf(q),
        None => Normal::standard().inverse_cdf(q),
    }
}

impl CurveStage {
    fn results_dir(&self) -> String {
        format!("output/results/{}", self.parsed.name)
    }

    fn figure_base(&self) -> String {
        format!("output/figures/{}", self.parsed.name)
    }

    pub fn implied_io(&self) -> ImpliedIo {
        let dir = self.results_dir();
        let mut extra = vec![
            format!("{dir}/specifications.csv"),
            format!("{dir}/specifications.tex"),
            format!("{dir}/specifications.md"),
            format!("{dir}/specifications.html"),
            format!("{dir}/summary.json"),
        ];
        for ext in ["svg", "pdf", "png", "json"] {
            extra.push(format!("{}.{ext}", self.figure_base()));
        }
        crate::common::table_io(&self.spec, &self.parsed.data, &self.parsed.name, extra)
    }

    /// The variables of every choice that the data file's known columns lack.
    pub fn check_columns(&self, ctx: &repro_kind::columns::ColumnsCtx<'_>) -> Vec<Diagnostic> {
        reads::check(ctx, &self.spec, &self.parsed)
    }

    pub fn seeds(&self) -> Vec<u64> {
        self.parsed.joint_test.iter().map(|j| j.seed).collect()
    }

    pub fn run(&self, ctx: &BuiltinCtx<'_>) -> Result<(), Diagnostic> {
        self.run_inner(ctx).map_err(|d| stage_failed(ctx, d))
    }

    fn run_inner(&self, ctx: &BuiltinCtx<'_>) -> Result<(), Diagnostic> {
        let s = &self.parsed;
        let path = ctx.root.join(&s.data);
        let bytes = std::fs::read(&path).map_err(|e| {
            Diagnostic::new(format!("cannot read `{}`", s.data)).cause(e.to_string())
        })?;
        let data_hash = blake3::hash(&bytes).to_hex().to_string();
        drop(bytes);
        let frame = crate::frame::read_estimator_frame(&path)?;
        let frames = estimate::sample_frames(&frame, s)?;
        let done = estimate::estimate_all(s, &self.specs, &frames, &data_hash, ctx.memo)?;
        // Read by tests and benchmarks (`-v`): how much of the curve the memo saved.
        tracing::info!(
            specifications = self.specs.len(),
            computed = self.specs.len() - done.restored,
            restored = done.restored,
            "specification curve"
        );
        let points = self.points(&done.estimates);
        let pairs: Vec<(f64, f64)> = done
            .estimates
            .iter()
            .map(|e| (e.estimate, e.p_value))
            .collect();
        let observed = stats(&pairs, s.expected_sign, s.level);
        let joint = match &s.joint_test {
            Some(j) => Some(joint::run(
                s,
                &self.specs,
                &frames,
                &done.estimates,
                j,
                observed,
            )?),
            None => None,
        };
        let dir = self.results_dir();
        let summary = serde_json::json!({
            "specifications": self.specs.len(),
            "expected_sign": s.expected_sign,
            "level": s.level,
            "median_estimate": observed.median_estimate,
            "share_expected_sign": observed.share_expected_sign,
            "share_significant_expected_sign": observed.share_significant_expected_sign,
            "joint_test": joint,
        });
        write_json(ctx, &format!("{dir}/summary.json"), &summary)?;
        write_out(
            ctx,
            &format!("{dir}/specifications.csv"),
            &self.csv(&points),
        )?;
        let listing = tables::specifications(s, &points, &observed);
        for (ext, text) in crate::common::renderings(&listing) {
            // The CSV of record is the full-precision one written above.
            if ext != "csv" {
                write_out(ctx, &format!("{dir}/specifications.{ext}"), &text)?;
            }
        }
        figure::write(ctx, &self.figure_base(), &figure::Curve::new(s, &points))?;
        write_table(ctx, &s.name, &tables::by_choice(s, &points))
    }

    /// The curve's points in specification order, each with its rank.
    fn points(&self, est: &[Estimate]) -> Vec<Point> {
        let s = &self.parsed;
        let mut order: Vec<usize> = (0..est.len()).collect();
        // Ties broken by specification order, so ranks are the same on every run.
        order.sort_by(|&a, &b| est[a].estimate.total_cmp(&est[b].estimate).then(a.cmp(&b)));
        let mut rank = vec![0; est.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i] = r + 1;
        }
        self.specs
            .iter()
            .zip(est)
            .enumerate()
            .map(|(i, (spec, e))| {
                let half = critical(s.level, e.df_t) * e.std_error;
                let significant = e.p_value < 1.0 - s.level;
                Point {
                    spec: i + 1,
                    rank: rank[i],
                    choices: spec.labels(s).into_iter().map(String::from).collect(),
                    estimate: e.estimate,
                    std_error: e.std_error,
                    p_value: e.p_value,
                    ci_low: e.estimate - half,
                    ci_high: e.estimate + half,
                    nobs: e.nobs,
                    significance: match (significant, s.expected_sign.agrees(e.estimate)) {
                        (false, _) => "none",
                        (true, true) => "expected",
                        (true, false) => "opposite",
                    },
                }
            })
            .collect()
    }

    /// Every specification at full precision (shortest text that reads back as the same
    /// number), for other tools and the reference tests.
    fn csv(&self, points: &[Point]) -> String {
        let s = &self.parsed;
        let mut head: Vec<String> = vec!["spec".into(), "rank".into()];
        head.extend(DIMENSIONS.iter().map(|d| d.key().to_string()));
        head.extend(
            [
                "formula",
                "vcov_spec",
                "sample_restriction",
                "estimate",
                "std_error",
                "p_value",
                "ci_low",
                "ci_high",
                "nobs",
            ]
            .map(String::from),
        );
        let mut out = head.join(",");
        out.push('\n');
        for (p, spec) in points.iter().zip(&self.specs) {
            let mut cells: Vec<String> = vec![p.spec.to_string(), p.rank.to_string()];
            cells.extend(p.choices.iter().cloned());
            cells.push(spec.formula(s));
            cells.push(spec.vcov(s).to_string());
            cells.push(spec.sample(s).to_string());
            for v in [p.estimate, p.std_error, p.p_value, p.ci_low, p.ci_high] {
                cells.push(format!("{v:?}"));
            }
            cells.push(p.nobs.to_string());
            let escaped: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
            out.push_str(&escaped.join(","));
            out.push('\n');
        }
        out
    }
}

fn csv_cell(c: &str) -> String {
    if c.contains([',', '"', '\n']) {
        format!("\"{}\"", c.replace('"', "\"\""))
    } else {
        c.to_string()
    }
}

fn write_out(ctx: &BuiltinCtx<'_>, rel: &str, text: &str) -> Result<(), Diagnostic> {
    repro_kind::write_output(ctx.root, rel, text.as_bytes())
        .map_err(|e| Diagnostic::new(format!("cannot write `{rel}`")).cause(e.to_string()))
}
