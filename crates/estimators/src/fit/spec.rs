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

/// The variance of a model's coefficients, as written after `--vcov`.
///
/// OLS and IV take `iid`, `hc1`, `cluster:V` or `cluster:V1+V2` (fixest's conventions). Pooled
/// and Canay quantile regressions take `iid`, or `cluster:V` with `se` = bootstrap. MMQR takes
/// `robust` (its default), `cluster:V` and the published conventions of [`MmqrVcovSpec`]; see
/// [`MMQR_VCOV_OPTIONS`]. Each estimator rejects the others with an error naming what it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VcovSpec {
    Iid,
    Hc1,
    /// One variable, or two for two-way clustering.
    Cluster(Vec<String>),
    /// A variance convention of MMQR (`method` = `mmqr`) besides `cluster:V`.
    Mmqr(MmqrVcovSpec),
}

/// The MMQR variance conventions other than `cluster:V`, each named after what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MmqrVcovSpec {
    /// `robust`: the heteroskedasticity-robust sandwich of repro's influence functions.
    Robust,
    /// `xtqreg`: Theorem 3 of Machado and Santos Silva (2019) as their Stata `xtqreg` computes it
    /// (uncentred `V`, no small-sample factor); reproduces the paper's Table 6.
    Xtqreg,
    /// `mmqreg`: Theorem 3 with the centred `V`, Rios-Avila's `mmqreg` default.
    Mmqreg,
    /// `mmqreg-robust`: `mmqreg, robust`.
    MmqregRobust,
    /// `mmqreg-cluster:V` (`mmqreg, cluster(V)`) or, with `dfadj`, `mmqreg-cluster-dfadj:V`
    /// (`mmqreg, cluster(V) dfadj`).
    MmqregCluster { var: String, dfadj: bool },
}

/// The variance options MMQR accepts, for error messages and help.
pub const MMQR_VCOV_OPTIONS: &str = "`robust` (default), `cluster:VAR`, `xtqreg`, `mmqreg`, `mmqreg-robust`, `mmqreg-cluster:VAR` or `mmqreg-cluster-dfadj:VAR`";

/// The variance options of OLS and IV, for error messages.
pub const LINEAR_VCOV_OPTIONS: &str = "`iid`, `hc1`, `cluster:VAR` or `cluster:VAR1+VAR2`";

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
            "robust" => return Ok(VcovSpec::Mmqr(MmqrVcovSpec::Robust)),
            "xtqreg" => return Ok(VcovSpec::Mmqr(MmqrVcovSpec::Xtqreg)),
            "mmqreg" => return Ok(VcovSpec::Mmqr(MmqrVcovSpec::Mmqreg)),
            "mmqreg-robust" => return Ok(VcovSpec::Mmqr(MmqrVcovSpec::MmqregRobust)),
            _ => {}
        }
        for (prefix, dfadj) in [("mmqreg-cluster:", false), ("mmqreg-cluster-dfadj:", true)] {
            if let Some(var) = text.strip_prefix(prefix) {
                let var = var.trim();
                if var.is_empty() {
                    return Err(invalid("a cluster variable name is empty"));
                }
                if var.contains('+') {
                    return Err(invalid("mmqreg clusters by one variable"));
                }
                return Ok(VcovSpec::Mmqr(MmqrVcovSpec::MmqregCluster {
                    var: var.to_string(),
                    dfadj,
                }));
            }
        }
        let Some(vars) = text.strip_prefix("cluster:") else {
            return Err(invalid(&format!(
                "expected {LINEAR_VCOV_OPTIONS} (OLS, IV and quantile regressions), or for mmqr {MMQR_VCOV_OPTIONS}"
            )));
        };
        let vars: Vec<String> = vars
            .split('+')
            .map(|v| v.split('^').map(str::trim).collect::<Vec<_>>().join("^"))
            .collect();
        if vars.iter().any(|v| v.split('^').any(str::is_empty)) {
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
            VcovSpec::Mmqr(m) => write!(f, "{m}"),
        }
    }
}

impl fmt::Display for MmqrVcovSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MmqrVcovSpec::Robust => write!(f, "robust"),
            MmqrVcovSpec::Xtqreg => write!(f, "xtqreg"),
            MmqrVcovSpec::Mmqreg => write!(f, "mmqreg"),
            MmqrVcovSpec::MmqregRobust => write!(f, "mmqreg-robust"),
            MmqrVcovSpec::MmqregCluster { var, dfadj: false } => write!(f, "mmqreg-cluster:{var}"),
            MmqrVcovSpec::MmqregCluster { var, dfadj: true } => {
                write!(f, "mmqreg-cluster-dfadj:{var}")
            }
        }
    }
}

impl VcovSpec {
    /// How the variance reads in a table note, e.g. `clustered by state` or `MM-QR Theorem 3 as
    /// xtqreg (Machado and Santos Silva 2019)`.
    pub fn describe(&self) -> String {
        match self {
            VcovSpec::Iid => "iid".to_string(),
            VcovSpec::Hc1 => "heteroskedasticity-robust (HC1)".to_string(),
            VcovSpec::Cluster(vars) => format!("clustered by {}", vars.join(" and ")),
            VcovSpec::Mmqr(MmqrVcovSpec::Robust) => {
                "heteroskedasticity-robust (MM-QR influence functions)".to_string()
            }
            VcovSpec::Mmqr(MmqrVcovSpec::Xtqreg) => {
                "MM-QR Theorem 3 as xtqreg (Machado and Santos Silva 2019)".to_string()
            }
            VcovSpec::Mmqr(MmqrVcovSpec::Mmqreg) => {
                "MM-QR Theorem 3 with centred V, as mmqreg (Rios-Avila)".to_string()
            }
            VcovSpec::Mmqr(MmqrVcovSpec::MmqregRobust) => "robust, as mmqreg".to_string(),
            VcovSpec::Mmqr(MmqrVcovSpec::MmqregCluster { var, dfadj }) => format!(
                "clustered by {var}, as mmqreg{}",
                if *dfadj { " with dfadj" } else { "" }
            ),
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

/// The most bootstrap replications: one million pins a standard error to about 0.001 of itself;
/// more only costs hours (and 10^14 tried to allocate 800 TB).
pub const MAX_BOOTSTRAP_REPS: usize = 1_000_000;

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
                if !(1..=MAX_BOOTSTRAP_REPS).contains(&reps) {
                    return Err(EstimError::InvalidOption {
                        message: format!(
                            "quantile standard errors `{s}`: {reps} replications, outside its range: it takes 1 to 1,000,000"
                        ),
                    });
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

impl QuantileMethod {
    /// The variance a quantile regression with this method gets when the user names none:
    /// `iid` for pooled and Canay, `robust` for MMQR (which does not take `iid`).
    pub fn default_vcov(&self) -> VcovSpec {
        match self {
            QuantileMethod::Pooled | QuantileMethod::Canay => VcovSpec::Iid,
            QuantileMethod::Mmqr => VcovSpec::Mmqr(MmqrVcovSpec::Robust),
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

impl ModelSpec {
    /// Every column the model reads (the formula's, then the cluster variables), each once; a
    /// formula that does not parse reads none (fitting reports it).
    pub fn columns(&self) -> Vec<String> {
        let mut out = crate::formula::parse(&self.formula)
            .map(|f| f.variables())
            .unwrap_or_default();
        let clusters: &[String] = match &self.vcov {
            VcovSpec::Cluster(vars) => vars,
            VcovSpec::Mmqr(MmqrVcovSpec::MmqregCluster { var, .. }) => std::slice::from_ref(var),
            _ => &[],
        };
        // An interaction `a^b` clusters on the columns it names.
        for c in clusters.iter().flat_map(|c| c.split('^')) {
            if !out.iter().any(|o| o == c) {
                out.push(c.to_string());
            }
        }
        out
    }
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
        // fixest's `~a^b`: one cluster on the interaction.
        assert_eq!(
            "cluster:a ^ b".parse::<VcovSpec>().unwrap(),
            VcovSpec::Cluster(vec!["a^b".into()])
        );
        assert_eq!(
            "cluster:a^b".parse::<VcovSpec>().unwrap().to_string(),
            "cluster:a^b"
        );
        assert!("cluster:a^".parse::<VcovSpec>().is_err());
        assert!("cluster:a+b+c".parse::<VcovSpec>().is_err());
        assert!("robust-ish".parse::<VcovSpec>().is_err());
        for text in [
            "robust",
            "xtqreg",
            "mmqreg",
            "mmqreg-robust",
            "mmqreg-cluster:id",
            "mmqreg-cluster-dfadj:id",
        ] {
            let spec: VcovSpec = text.parse().unwrap();
            assert!(matches!(spec, VcovSpec::Mmqr(_)), "{text}");
            assert_eq!(spec.to_string(), text);
        }
        assert!("mmqreg-cluster:".parse::<VcovSpec>().is_err());
        assert!("mmqreg-cluster:a+b".parse::<VcovSpec>().is_err());
        assert_eq!(QuantileMethod::Mmqr.default_vcov().to_string(), "robust");
    }

    #[test]
    fn quantile_se_and_method_parse() {
        assert_eq!(
            "bootstrap:200:7".parse::<QuantileSe>().unwrap(),
            QuantileSe::Bootstrap { reps: 200, seed: 7 }
        );
        assert_eq!(QuantileSe::Ker.to_string(), "ker");
        assert!("bootstrap:x".parse::<QuantileSe>().is_err());
        assert!("bootstrap:0:1".parse::<QuantileSe>().is_err());
        assert!("bootstrap:1000001:1".parse::<QuantileSe>().is_err());
        assert!("bootstrap:100000000000000:1".parse::<QuantileSe>().is_err());
        assert!("bootstrap:1000000:1".parse::<QuantileSe>().is_ok());
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
