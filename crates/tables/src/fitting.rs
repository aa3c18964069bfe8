//! One model on one data file: shared by `repro fit` and the `fit` built-in stage kind.
//!
//! Owns: turning a fit request (data path, formula, vcov, quantile options) into a validated
//! `ModelSpec`, loading the data, running the estimator, and presenting the result as a readable
//! summary or as JSON. Deliberately does not own: the numerics (`repro-estimators`) or file
//! formats (`dataio`).

use std::fmt::Write as _;
use std::path::Path;

use repro_estimators::error::EstimError;
use repro_estimators::fit::{
    self, FitOptions, ModelSpec, QuantileMethod, QuantileSe, QuantileSpec, SingletonPolicy,
    VcovSpec,
};
use repro_estimators::formula;
use repro_estimators::result::FitResult;

use repro_kind::diag::Diagnostic;

/// A model request as users write it (flags of `repro fit`, params of a `fit` stage).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitRequest {
    pub formula: String,
    #[serde(default = "default_vcov")]
    pub vcov: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantile: Option<f64>,
    /// Quantile standard errors: `iid`, `nid` (default), `ker`, `bootstrap:REPS:SEED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub se: Option<String>,
    /// Quantile method with fixed effects: `pooled` (default), `mmqr`, `canay`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Drop singleton fixed-effect levels iteratively (reghdfe) instead of keeping them (fixest).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drop_singletons: bool,
}

fn default_vcov() -> String {
    "iid".to_string()
}

/// Checks a request without data: formula syntax, vcov, quantile options.
pub fn model_spec(req: &FitRequest) -> Result<ModelSpec, Diagnostic> {
    formula::parse(&req.formula).map_err(estim_diag)?;
    let vcov: VcovSpec = req.vcov.parse().map_err(estim_diag)?;
    let quantile = match req.quantile {
        None => {
            if req.se.is_some() || req.method.is_some() {
                return Err(Diagnostic::new(
                    "`se` and `method` apply to quantile regressions only",
                )
                .hint("add a quantile (`--quantile TAU`), or remove them"));
            }
            None
        }
        Some(tau) => {
            if !(tau > 0.0 && tau < 1.0) {
                return Err(estim_diag(EstimError::TauOutOfRange { tau }));
            }
            let se: QuantileSe = req
                .se
                .as_deref()
                .unwrap_or("nid")
                .parse()
                .map_err(estim_diag)?;
            let method: QuantileMethod = req
                .method
                .as_deref()
                .unwrap_or("pooled")
                .parse()
                .map_err(estim_diag)?;
            Some(QuantileSpec { tau, se, method })
        }
    };
    let options = FitOptions {
        singletons: if req.drop_singletons {
            SingletonPolicy::DropIteratively
        } else {
            SingletonPolicy::Keep
        },
        ..FitOptions::default()
    };
    Ok(ModelSpec {
        formula: req.formula.clone(),
        vcov,
        quantile,
        options,
    })
}

/// The bootstrap seed of a quantile request (`se: bootstrap:REPS:SEED`), if it has one.
pub fn bootstrap_seed(req: &FitRequest) -> Option<u64> {
    req.quantile?;
    match req.se.as_deref()?.parse::<QuantileSe>() {
        Ok(QuantileSe::Bootstrap { seed, .. }) => Some(seed),
        _ => None,
    }
}

/// Loads `data` and estimates the model.
pub fn run(data: &Path, req: &FitRequest) -> Result<FitResult, Diagnostic> {
    let spec = model_spec(req)?;
    let started = std::time::Instant::now();
    // Only the model's columns: another column of a type we cannot convert (a Parquet list) is
    // none of this model's business, and skipping the rest is faster on wide files.
    let frame = crate::frame::read_estimator_frame_columns(data, &spec.columns())?;
    let read = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let rows = frame.nrows();
    // The frame is given up: its number columns become the model's without a copy.
    let result = fit::fit_owned(frame, &spec);
    // Benchmarks read these two lines (`-v`) to separate loading from estimation.
    tracing::info!(seconds = read, rows, "read data");
    tracing::info!(seconds = started.elapsed().as_secs_f64(), "estimated");
    result.map_err(|e| {
        let d = estim_diag(e);
        Diagnostic {
            message: format!("cannot estimate `{}` on `{}`", req.formula, data.display()),
            causes: std::iter::once(d.message).chain(d.causes).collect(),
            ..d
        }
    })
}

/// Maps an estimator error to a diagnostic; formula errors get the formula with a caret.
pub fn estim_diag(e: EstimError) -> Diagnostic {
    let caret = e.caret();
    let hint = match &e {
        EstimError::UnknownColumn { .. } => {
            Some("check the spelling against the data file's header")
        }
        EstimError::SingleCluster { .. } => Some("clustering needs at least two clusters"),
        EstimError::TauOutOfRange { .. } => Some("use a quantile between 0 and 1, e.g. 0.5"),
        EstimError::UnderIdentified { .. } => {
            Some("add excluded instruments after `~` in the IV part")
        }
        _ => None,
    };
    let mut d = Diagnostic::new(e.to_string());
    if let Some(c) = caret {
        d = d.snippet(c);
    }
    if let Some(h) = hint {
        d = d.hint(h);
    }
    d
}

/// [`estim_diag`] for a failed fit of `req`: a column the data lacks that only the vcov names is
/// reported as the vcov's (a misspelt cluster variable), not as a formula's.
pub fn fit_diag(e: EstimError, req: &FitRequest) -> Diagnostic {
    let cluster_var = match &e {
        EstimError::UnknownColumn { name } => req
            .vcov
            .rsplit_once(':')
            .is_some_and(|(_, vars)| vars.split(['+', '^']).any(|v| v.trim() == name))
            .then(|| name.clone()),
        _ => None,
    };
    let d = estim_diag(e);
    match cluster_var {
        Some(name) => Diagnostic {
            message: format!(
                "unknown column `{name}`, the cluster variable of `vcov: {}`",
                req.vcov
            ),
            hint: Some(format!(
                "check the spelling of `{name}` in `vcov` against the data file's header"
            )),
            ..d
        },
        None => d,
    }
}

/// The result as JSON, with the data file first so anyone can re-estimate it elsewhere.
pub fn to_json(data: &str, res: &FitResult) -> serde_json::Value {
    let mut obj = serde_json::Map::new();
    obj.insert("data".into(), serde_json::Value::String(data.to_string()));
    if let Ok(serde_json::Value::Object(rest)) = serde_json::to_value(res) {
        obj.extend(rest);
    }
    serde_json::Value::Object(obj)
}

/// What produced a result, for its JSON: the estimator and method, tau for a quantile fit, the
/// standard errors and vcov as requested, the spec file and the model's id within it.
pub fn producer(req: &FitRequest, spec: &str, model: &str) -> serde_json::Value {
    let parsed = repro_estimators::formula::parse(&req.formula).ok();
    let iv = parsed.as_ref().is_some_and(|f| f.iv.is_some());
    let fe = parsed.as_ref().is_some_and(|f| !f.fixed_effects.is_empty());
    let (estimator, method) = match (req.quantile, iv) {
        (Some(_), _) => (
            "quantile regression",
            req.method.clone().unwrap_or_else(|| "pooled".into()),
        ),
        (None, true) => ("IV-2SLS", "two-stage least squares".to_string()),
        (None, false) if fe => ("OLS", "fixed effects absorbed (within)".to_string()),
        (None, false) => ("OLS", "least squares".to_string()),
    };
    serde_json::json!({
        "estimator": estimator,
        "method": method,
        "tau": req.quantile,
        "se": req.se,
        "vcov": req.vcov,
        "spec": spec,
        "model": model,
    })
}

/// A readable summary, in the spirit of fixest's `summary()`.
pub fn render_summary(data: &str, res: &FitResult) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "model:        {}", res.formula);
    let _ = writeln!(out, "data:         {data}");
    let _ = writeln!(out, "observations: {}", thousands(res.nobs));
    if let Some(k) = res.k {
        // K counts more than the printed coefficients: say what it is made of.
        let coefs = res.coefficients.len();
        let _ = writeln!(
            out,
            "K:            {k} in the small-sample correction ({} + {} fixed-effect levels not nested in a cluster)",
            repro_kind::diag::count(coefs, "coefficient", "coefficients"),
            k.saturating_sub(coefs)
        );
    }
    if res.n_missing_dropped > 0 {
        let _ = writeln!(
            out,
            "dropped:      {} rows with missing values",
            thousands(res.n_missing_dropped)
        );
    }
    if res.n_singletons_dropped > 0 {
        let _ = writeln!(
            out,
            "singletons:   {} removed",
            thousands(res.n_singletons_dropped)
        );
    }
    let mut vcov = res.vcov.clone();
    if let Some(counts) = &res.n_clusters {
        let parts: Vec<String> = counts.0.iter().map(|(v, n)| format!("{n} {v}")).collect();
        let _ = write!(vcov, " ({} clusters)", parts.join(", "));
    }
    let _ = writeln!(out, "vcov:         {vcov}");
    out.push('\n');
    let term_w = res
        .coefficients
        .iter()
        .map(|c| c.term.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let stat = if res.objective.is_some() {
        "z value"
    } else {
        "t value"
    };
    let _ = writeln!(
        out,
        "{:<term_w$}  {:>12}  {:>12}  {:>9}  {:>9}",
        "term", "estimate", "std. error", stat, "p value"
    );
    for c in &res.coefficients {
        let line = format!(
            "{:<term_w$}  {:>12}  {:>12}  {:>9.3}  {:>9}  {}",
            c.term,
            sig(c.estimate),
            sig(c.std_error),
            c.statistic,
            pval(c.p_value),
            stars(c.p_value)
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out.push('\n');
    if let Some(r2) = res.r2 {
        let _ = write!(out, "R2: {r2:.5}");
        if let Some(w) = res.r2_within {
            let _ = write!(out, "   within R2: {w:.5}");
        }
        out.push('\n');
    }
    if let Some(a) = res.adj_r2 {
        let _ = write!(out, "adj. R2: {a:.5}");
        if let Some(w) = res.adj_r2_within {
            let _ = write!(out, "   adj. within R2: {w:.5}");
        }
        out.push('\n');
    }
    if let Some(obj) = res.objective {
        let _ = writeln!(out, "objective (check function): {obj:.6}");
    }
    if let Some(fs) = &res.first_stage {
        for f in &fs.first_stage {
            let _ = writeln!(
                out,
                "first-stage F ({}): {:.3} (p {})",
                f.endogenous,
                f.f_stat,
                pval(f.p_value)
            );
        }
        if let Some(kp) = fs.kleibergen_paap_f {
            let _ = writeln!(out, "Kleibergen-Paap rk Wald F: {kp:.3}");
        }
        let _ = writeln!(out, "Cragg-Donald Wald F: {:.3}", fs.cragg_donald_f);
    }
    for m in &res.messages {
        let _ = writeln!(out, "note: {m}");
    }
    let _ = writeln!(out, "signif. codes: *** p<0.01, ** p<0.05, * p<0.1");
    out
}

fn sig(x: f64) -> String {
    if x != 0.0 && (x.abs() < 1e-4 || x.abs() >= 1e6) {
        format!("{x:.4e}")
    } else {
        format!("{x:.6}")
    }
}

fn pval(p: f64) -> String {
    if p < 1e-4 {
        "<1e-4".to_string()
    } else {
        format!("{p:.4}")
    }
}

pub fn stars(p: f64) -> &'static str {
    if p < 0.01 {
        "***"
    } else if p < 0.05 {
        "**"
    } else if p < 0.1 {
        "*"
    } else {
        ""
    }
}

/// `1234567` -> `1,234,567`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn stars_follow_the_usual_thresholds() {
        assert_eq!(stars(0.009), "***");
        assert_eq!(stars(0.01), "**");
        assert_eq!(stars(0.07), "*");
        assert_eq!(stars(0.1), "");
    }

    #[test]
    fn requests_are_validated_without_data() {
        let req = FitRequest {
            formula: "y ~ x +".into(),
            vcov: "iid".into(),
            quantile: None,
            se: None,
            method: None,
            drop_singletons: false,
        };
        let d = model_spec(&req).unwrap_err();
        assert!(d.snippet.unwrap().contains('^'));
        let req = FitRequest {
            formula: "y ~ x".into(),
            quantile: Some(1.5),
            ..req
        };
        assert!(model_spec(&req)
            .unwrap_err()
            .message
            .contains("outside (0, 1)"));
    }
}
