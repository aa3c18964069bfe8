//! What a caller asks [`super::fit`] for: the model specification and its text forms.
//!
//! Owns: [`ModelSpec`], [`VcovSpec`], [`QuantileSpec`] (with [`QuantileSe`] and
//! [`QuantileMethod`]), [`SingletonPolicy`] and [`FitOptions`], each with the parser and printer
//! of the strings users write (`cluster:state`, `bootstrap:200:7`, ...).
//! Deliberately does not own: checking a specification against data, or which variance a given
//! estimator accepts (the estimators decide that).

use std::fmt;
use std::str::FromStr;

use crate::error::EstimError;

/// Variance of OLS/IV coefficients: `iid`, `hc1`, `cluster:V` or `cluster:V1+V2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VcovSpec {
    Iid,
    Hc1,
    /// One variable, or two for two-way clustering.
    Cluster(Vec<String>),
}

impl FromStr for VcovSpec {
    type Err = EstimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |message: &str| EstimError::InvalidVcov {
            spec: s.to_string(),
            message: message.to_string(),
        };
        let text = s.trim();
        match text {
            "iid" => return Ok(VcovSpec::Iid),
            "hc1" => return Ok(VcovSpec::Hc1),
            _ => {}
        }
        let Some(vars) = text.strip_prefix("cluster:") else {
            return Err(invalid(
                "expected `iid`, `hc1`, `cluster:VAR` or `cluster:VAR1+VAR2`",
            ));
        };
        let vars: Vec<String> = vars.split('+').map(|v| v.trim().to_string()).collect();
        if vars.iter().any(String::is_empty) {
            return Err(invalid("a cluster variable name is empty"));
        }
        if vars.len() > 2 {
            return Err(invalid("at most two cluster variables are supported"));
        }
        if vars.len() == 2 && vars[0] == vars[1] {
            return Err(invalid("the two cluster variables are the same"));
        }
        Ok(VcovSpec::Cluster(vars))
    }
}

impl fmt::Display for VcovSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VcovSpec::Iid => write!(f, "iid"),
            VcovSpec::Hc1 => write!(f, "hc1"),
            VcovSpec::Cluster(vars) => write!(f, "cluster:{}", vars.join("+")),
        }
    }
}

/// Standard errors of a quantile regression (R quantreg's `summary.rq` types; the bootstrap
/// resamples whole clusters when the model's vcov names a cluster variable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantileSe {
    Iid,
    Nid,
    Ker,
    Bootstrap { reps: usize, seed: u64 },
}

impl FromStr for QuantileSe {
    type Err = EstimError;

    /// `iid`, `nid`, `ker`, or `bootstrap:REPS:SEED`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            EstimError::InvalidOption {
            message: format!(
                "quantile standard errors `{s}`: expected `iid`, `nid`, `ker` or `bootstrap:REPS:SEED`"
            ),
        }
        };
        match s.trim() {
            "iid" => Ok(QuantileSe::Iid),
            "nid" => Ok(QuantileSe::Nid),
            "ker" => Ok(QuantileSe::Ker),
            other => {
                let mut parts = other.split(':');
                if parts.next() != Some("bootstrap") {
                    return Err(invalid());
                }
                let reps = parts
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(invalid)?;
                let seed = parts
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(invalid)?;
                if parts.next().is_some() {
                    return Err(invalid());
                }
                Ok(QuantileSe::Bootstrap { reps, seed })
            }
        }
    }
}

impl fmt::Display for QuantileSe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuantileSe::Iid => write!(f, "iid"),
            QuantileSe::Nid => write!(f, "nid"),
            QuantileSe::Ker => write!(f, "ker"),
            QuantileSe::Bootstrap { reps, seed } => write!(f, "bootstrap:{reps}:{seed}"),
        }
    }
}

/// How fixed effects enter a quantile regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantileMethod {
    /// Fixed effects as dummy columns of one pooled quantile regression.
    Pooled,
    /// Machado-Santos Silva method of moments quantile regression.
    Mmqr,
    /// Canay's two-step estimator.
    Canay,
}

impl FromStr for QuantileMethod {
    type Err = EstimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "pooled" => Ok(QuantileMethod::Pooled),
            "mmqr" => Ok(QuantileMethod::Mmqr),
            "canay" => Ok(QuantileMethod::Canay),
            other => Err(EstimError::InvalidOption {
                message: format!("quantile method `{other}`: expected `pooled`, `mmqr` or `canay`"),
            }),
        }
    }
}

impl fmt::Display for QuantileMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuantileMethod::Pooled => "pooled",
            QuantileMethod::Mmqr => "mmqr",
            QuantileMethod::Canay => "canay",
        })
    }
}

/// A quantile regression request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantileSpec {
    /// The quantile, strictly between 0 and 1.
    pub tau: f64,
    pub se: QuantileSe,
    pub method: QuantileMethod,
}

/// Treatment of observations whose fixed-effect level occurs once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SingletonPolicy {
    /// Keep them (fixest's default).
    #[default]
    Keep,
    /// Remove them, repeating until none is left (reghdfe).
    DropIteratively,
}

impl FromStr for SingletonPolicy {
    type Err = EstimError;

    /// `keep` or `drop`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "keep" => Ok(SingletonPolicy::Keep),
            "drop" => Ok(SingletonPolicy::DropIteratively),
            other => Err(EstimError::InvalidOption {
                message: format!("singleton policy `{other}`: expected `keep` or `drop`"),
            }),
        }
    }
}

impl fmt::Display for SingletonPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SingletonPolicy::Keep => "keep",
            SingletonPolicy::DropIteratively => "drop",
        })
    }
}

/// Numerical options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// Tolerance of the fixed-effect absorption (fixest's `fixef.tol`).
    pub fixef_tol: f64,
    /// Iteration limit of the fixed-effect absorption (fixest's `fixef.iter`).
    pub fixef_maxiter: usize,
    pub singletons: SingletonPolicy,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            fixef_tol: 1e-8,
            fixef_maxiter: 10_000,
            singletons: SingletonPolicy::Keep,
        }
    }
}

/// Everything [`fit`] needs besides the data.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    pub formula: String,
    pub vcov: VcovSpec,
    pub quantile: Option<QuantileSpec>,
    pub options: FitOptions,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vcov_spec_round_trips() {
        for text in ["iid", "hc1", "cluster:state", "cluster:state+year"] {
            let spec: VcovSpec = text.parse().unwrap();
            assert_eq!(spec.to_string(), text);
        }
        assert_eq!(
            "cluster:a + b".parse::<VcovSpec>().unwrap(),
            VcovSpec::Cluster(vec!["a".into(), "b".into()])
        );
        assert!("cluster:".parse::<VcovSpec>().is_err());
        assert!("cluster:a+b+c".parse::<VcovSpec>().is_err());
        assert!("robust".parse::<VcovSpec>().is_err());
    }

    #[test]
    fn quantile_se_and_method_parse() {
        assert_eq!(
            "bootstrap:200:7".parse::<QuantileSe>().unwrap(),
            QuantileSe::Bootstrap { reps: 200, seed: 7 }
        );
        assert_eq!(QuantileSe::Ker.to_string(), "ker");
        assert!("bootstrap:x".parse::<QuantileSe>().is_err());
        assert_eq!(
            "mmqr".parse::<QuantileMethod>().unwrap(),
            QuantileMethod::Mmqr
        );
        assert_eq!(
            "drop".parse::<SingletonPolicy>().unwrap(),
            SingletonPolicy::DropIteratively
        );
        assert_eq!(SingletonPolicy::Keep.to_string(), "keep");
    }
}
