//! The `curve` spec file and the specifications it declares.
//!
//! Owns: the spec's fields (the six choice dimensions, `exclude`, the expected sign, the level,
//! the joint test), checking them where the file says them, and enumerating every combination
//! of choices in a fixed order (outcome outermost, vcov innermost) less the excluded ones. Each
//! [`Specification`] knows its formula, vcov and sample, and its canonical text (what enters its
//! memo key: values, not labels, so relabelling a choice recomputes nothing). Deliberately does
//! not own: estimating (`estimate`), drawing (`figure`) or the joint test (`joint`).

use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::common::{default_digits, digits, to_location};
use crate::fitting::{self, FitRequest};
use crate::sample;
use repro_kind::range::{FloatRange, IntRange};
use repro_kind::KindError;

/// At most this many specifications: each is a model fit, and more than this is a typo in a
/// dimension rather than a curve anyone reads.
pub const MAX_SPECIFICATIONS: usize = 200_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurveSpec {
    #[serde(default)]
    pub title: Option<String>,
    pub data: String,
    pub name: String,
    /// Label -> dependent variable.
    pub outcomes: IndexMap<String, Spanned<String>>,
    /// Label -> the regressor whose coefficient the curve shows.
    pub treatments: IndexMap<String, Spanned<String>>,
    /// Label -> control variables (an empty list: no controls).
    #[serde(default = "no_controls")]
    pub controls: IndexMap<String, Spanned<Vec<String>>>,
    /// Label -> sample restriction (`sample:` syntax; empty: every row).
    #[serde(default = "every_row")]
    pub samples: IndexMap<String, Spanned<String>>,
    /// Label -> fixed effects (`city + year`; empty: none, with an intercept).
    #[serde(default = "no_fixed_effects")]
    pub fixed_effects: IndexMap<String, Spanned<String>>,
    /// Label -> variance (`iid`, `hc1`, `cluster:VAR`, ...).
    #[serde(default = "iid")]
    pub vcov: IndexMap<String, Spanned<String>>,
    /// Combinations left out: each entry names a choice label of one or more dimensions; a
    /// specification matching every named choice is excluded.
    #[serde(default)]
    pub exclude: Vec<Spanned<IndexMap<String, String>>>,
    #[serde(default)]
    pub expected_sign: Sign,
    /// Confidence level of the intervals and of "significant".
    #[serde(default = "default_level", deserialize_with = "level")]
    pub level: f64,
    #[serde(default = "default_digits", deserialize_with = "digits")]
    pub digits: usize,
    #[serde(default)]
    pub joint_test: Option<JointTestSpec>,
    #[serde(default)]
    pub caption: Option<String>,
    #[serde(default)]
    pub latex_label: Option<String>,
}

/// The sign the hypothesis expects of the treatment's coefficient.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sign {
    Positive,
    #[default]
    Negative,
}

impl Sign {
    /// True when `x` has this sign (zero has neither).
    pub fn agrees(self, x: f64) -> bool {
        match self {
            Sign::Positive => x > 0.0,
            Sign::Negative => x < 0.0,
        }
    }
}

/// The joint test under the null (Simonsohn, Simmons & Nelson 2020): `reps` resamples of
/// clusters of `cluster` drawn from ChaCha8 streams keyed by `seed`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct JointTestSpec {
    #[serde(deserialize_with = "reps")]
    pub reps: usize,
    pub seed: u64,
    /// The variable whose values are resampled as blocks (e.g. `city`); each row alone without it.
    #[serde(default)]
    pub cluster: Option<String>,
}

const LEVEL: FloatRange = FloatRange {
    field: "`level`",
    min: 0.0,
    max: 1.0,
    min_open: true,
    max_open: true,
};

/// Resamples of the joint test: each refits every specification, so ten thousand is hours.
const REPS: IntRange = IntRange {
    field: "`reps`",
    min: 1,
    max: 10_000,
};

fn level<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    repro_kind::range::float(d, &LEVEL)
}

fn reps<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    repro_kind::range::int(d, &REPS)
}

fn default_level() -> f64 {
    0.95
}

/// A value with no place in the spec file (a default).
pub fn unplaced<T>(value: T) -> Spanned<T> {
    let at = serde_saphyr::Location::UNKNOWN;
    Spanned {
        value,
        referenced: at,
        defined: at,
    }
}

fn no_controls() -> IndexMap<String, Spanned<Vec<String>>> {
    IndexMap::from([("None".to_string(), unplaced(Vec::new()))])
}

fn unspanned(label: &str, value: &str) -> IndexMap<String, Spanned<String>> {
    IndexMap::from([(label.to_string(), unplaced(value.to_string()))])
}

fn every_row() -> IndexMap<String, Spanned<String>> {
    unspanned("All", "")
}

fn no_fixed_effects() -> IndexMap<String, Spanned<String>> {
    unspanned("None", "")
}

fn iid() -> IndexMap<String, Spanned<String>> {
    unspanned("iid", "iid")
}

/// The six dimensions, in enumeration order (the first varies slowest).
pub const DIMENSIONS: [Dimension; 6] = [
    Dimension::Outcome,
    Dimension::Treatment,
    Dimension::Controls,
    Dimension::Sample,
    Dimension::FixedEffects,
    Dimension::Vcov,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    Outcome,
    Treatment,
    Controls,
    Sample,
    FixedEffects,
    Vcov,
}

impl Dimension {
    /// The spec file's key.
    pub fn key(self) -> &'static str {
        match self {
            Dimension::Outcome => "outcomes",
            Dimension::Treatment => "treatments",
            Dimension::Controls => "controls",
            Dimension::Sample => "samples",
            Dimension::FixedEffects => "fixed_effects",
            Dimension::Vcov => "vcov",
        }
    }

    /// The heading in the table and the figure's indicator panel.
    pub fn title(self) -> &'static str {
        match self {
            Dimension::Outcome => "Outcome",
            Dimension::Treatment => "Treatment",
            Dimension::Controls => "Controls",
            Dimension::Sample => "Sample",
            Dimension::FixedEffects => "Fixed effects",
            Dimension::Vcov => "Standard errors",
        }
    }
}

impl CurveSpec {
    /// The choice labels of a dimension, in the spec's order.
    pub fn labels(&self, d: Dimension) -> Vec<&str> {
        let keys: Vec<&String> = match d {
            Dimension::Outcome => self.outcomes.keys().collect(),
            Dimension::Treatment => self.treatments.keys().collect(),
            Dimension::Controls => self.controls.keys().collect(),
            Dimension::Sample => self.samples.keys().collect(),
            Dimension::FixedEffects => self.fixed_effects.keys().collect(),
            Dimension::Vcov => self.vcov.keys().collect(),
        };
        keys.into_iter().map(String::as_str).collect()
    }
}

/// One combination of choices: the index of the chosen label in each dimension
/// (in [`DIMENSIONS`] order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Specification {
    pub pick: [usize; 6],
}

impl Specification {
    pub fn outcome<'s>(&self, s: &'s CurveSpec) -> &'s str {
        &s.outcomes[self.pick[0]].value
    }

    pub fn treatment<'s>(&self, s: &'s CurveSpec) -> &'s str {
        &s.treatments[self.pick[1]].value
    }

    pub fn sample<'s>(&self, s: &'s CurveSpec) -> &'s str {
        s.samples[self.pick[3]].value.trim()
    }

    pub fn vcov<'s>(&self, s: &'s CurveSpec) -> &'s str {
        s.vcov[self.pick[5]].value.trim()
    }

    /// `outcome ~ treatment + controls | fixed effects`.
    pub fn formula(&self, s: &CurveSpec) -> String {
        let mut rhs = vec![self.treatment(s).to_string()];
        rhs.extend(s.controls[self.pick[2]].value.iter().cloned());
        let mut f = format!("{} ~ {}", self.outcome(s), rhs.join(" + "));
        let fe = s.fixed_effects[self.pick[4]].value.trim();
        if !fe.is_empty() {
            f.push_str(" | ");
            f.push_str(fe);
        }
        f
    }

    /// The fit request of this specification.
    pub fn request(&self, s: &CurveSpec) -> FitRequest {
        FitRequest {
            formula: self.formula(s),
            vcov: self.vcov(s).to_string(),
            quantile: None,
            se: None,
            method: None,
            drop_singletons: false,
        }
    }

    /// What the specification's estimate depends on besides the data and the code: the model,
    /// the variance and the sample, as canonical JSON (values, not labels; not the level, which
    /// only the intervals drawn from the entry use).
    pub fn canonical(&self, s: &CurveSpec) -> String {
        serde_json::json!({
            "formula": self.formula(s),
            "vcov": self.vcov(s),
            "sample": self.sample(s),
        })
        .to_string()
    }

    /// The chosen label of every dimension, in [`DIMENSIONS`] order.
    pub fn labels<'s>(&self, s: &'s CurveSpec) -> Vec<&'s str> {
        DIMENSIONS
            .iter()
            .zip(self.pick)
            .map(|(&d, k)| s.labels(d)[k])
            .collect()
    }
}

/// Every combination of choices not excluded, outcome outermost and vcov innermost.
pub fn enumerate(s: &CurveSpec, excluded: &[Vec<(usize, usize)>]) -> Vec<Specification> {
    let sizes: Vec<usize> = DIMENSIONS.iter().map(|&d| s.labels(d).len()).collect();
    let total: usize = sizes.iter().product();
    let mut out = Vec::new();
    for n in 0..total {
        let mut pick = [0usize; 6];
        let mut rest = n;
        for d in (0..6).rev() {
            pick[d] = rest % sizes[d];
            rest /= sizes[d];
        }
        let hit = |rule: &Vec<(usize, usize)>| rule.iter().all(|&(d, k)| pick[d] == k);
        if !excluded.iter().any(hit) {
            out.push(Specification { pick });
        }
    }
    out
}

/// Checks the spec: every dimension has a choice, every sample, fixed-effects part, vcov and
/// formula parses, every `exclude` entry names known choices; returns the exclusions as
/// (dimension, choice) pairs. Errors point at the spec file's line where it has one.
pub fn check(file: &str, s: &CurveSpec) -> Result<Vec<Vec<(usize, usize)>>, KindError> {
    let err = |message: String, at: Option<&serde_saphyr::Location>| KindError {
        message,
        hint: None,
        location: at.filter(|l| l.line() > 0).map(|l| to_location(file, l)),
    };
    let mut total: usize = 1;
    for d in DIMENSIONS {
        let n = s.labels(d).len();
        if n == 0 {
            return Err(err(
                format!("`{}` in `{file}` has no choice", d.key()),
                None,
            ));
        }
        total = total.saturating_mul(n);
    }
    if total > MAX_SPECIFICATIONS {
        return Err(KindError {
            hint: Some("use fewer choices, or split the curve into several stages".into()),
            ..err(
                format!("`{file}` declares {total} specifications; at most {MAX_SPECIFICATIONS}"),
                None,
            )
        });
    }
    for (label, text) in &s.samples {
        if !text.value.trim().is_empty() {
            sample::parse(&text.value).map_err(|m| {
                err(
                    format!("invalid sample `{label}`: {m}"),
                    Some(&text.referenced),
                )
            })?;
        }
    }
    for (label, text) in &s.vcov {
        text.value
            .trim()
            .parse::<repro_estimators::fit::VcovSpec>()
            .map_err(|e| {
                err(
                    format!("invalid vcov `{label}`: {e}"),
                    Some(&text.referenced),
                )
            })?;
    }
    // One formula per (outcome, treatment, controls, fixed effects) pair of choices is enough
    // to check them all; the first choice of the others stands in.
    for (k, (label, fe)) in s.fixed_effects.iter().enumerate() {
        let spec = Specification {
            pick: [0, 0, 0, 0, k, 0],
        };
        fitting::model_spec(&spec.request(s)).map_err(|d| {
            err(
                format!("invalid fixed effects `{label}`: {}", d.message),
                Some(&fe.referenced),
            )
        })?;
    }
    for o in 0..s.outcomes.len() {
        for t in 0..s.treatments.len() {
            for c in 0..s.controls.len() {
                let spec = Specification {
                    pick: [o, t, c, 0, 0, 0],
                };
                fitting::model_spec(&spec.request(s)).map_err(|d| {
                    err(
                        format!("invalid model `{}`: {}", spec.formula(s), d.message),
                        None,
                    )
                })?;
            }
        }
    }
    exclusions(file, s)
}

/// `exclude` as (dimension, choice) pairs per entry.
fn exclusions(file: &str, s: &CurveSpec) -> Result<Vec<Vec<(usize, usize)>>, KindError> {
    let mut out = Vec::new();
    for entry in &s.exclude {
        let at = Some(to_location(file, &entry.referenced)).filter(|l| l.line > 0);
        let located = |message: String, hint: String| KindError {
            message,
            hint: Some(hint),
            location: at.clone(),
        };
        let mut rule = Vec::new();
        for (key, label) in &entry.value {
            let Some(d) = DIMENSIONS.iter().position(|d| d.key() == *key) else {
                let keys: Vec<String> = DIMENSIONS
                    .iter()
                    .map(|d| format!("`{}`", d.key()))
                    .collect();
                return Err(located(
                    format!("unknown dimension `{key}` in `exclude`"),
                    format!("dimensions: {}", keys.join(", ")),
                ));
            };
            let labels = s.labels(DIMENSIONS[d]);
            let Some(k) = labels.iter().position(|l| l == label) else {
                let known: Vec<String> = labels.iter().map(|l| format!("`{l}`")).collect();
                return Err(located(
                    format!("`exclude` names `{label}`, which is not a choice of `{key}`"),
                    format!("choices of `{key}`: {}", known.join(", ")),
                ));
            };
            rule.push((d, k));
        }
        if rule.is_empty() {
            return Err(located(
                "an `exclude` entry names no choice (it would exclude everything)".into(),
                "name one or more choices, e.g. `{outcomes: Economic gap, samples: All}`".into(),
            ));
        }
        out.push(rule);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(sizes: [usize; 6]) -> CurveSpec {
        let names = |n: usize, p: &'static str| (0..n).map(move |k| format!("{p}{k}"));
        let spanned = |n: usize, p: &'static str| -> IndexMap<String, Spanned<String>> {
            names(n, p).map(|l| (l, unplaced(String::new()))).collect()
        };
        CurveSpec {
            title: None,
            data: "d.csv".into(),
            name: "c".into(),
            outcomes: names(sizes[0], "y")
                .map(|l| (l.clone(), unplaced(l)))
                .collect(),
            treatments: names(sizes[1], "x")
                .map(|l| (l.clone(), unplaced(l)))
                .collect(),
            controls: names(sizes[2], "c")
                .map(|l| (l, unplaced(Vec::new())))
                .collect(),
            samples: spanned(sizes[3], "s"),
            fixed_effects: spanned(sizes[4], "f"),
            vcov: spanned(sizes[5], "v"),
            exclude: Vec::new(),
            expected_sign: Sign::Negative,
            level: 0.95,
            digits: 3,
            joint_test: None,
            caption: None,
            latex_label: None,
        }
    }

    proptest::proptest! {
        /// Without exclusions every combination appears once; one rule naming choices of the
        /// dimensions `dims` removes exactly the product of the other dimensions' sizes.
        #[test]
        fn the_count_is_the_product_less_the_excluded(
            sizes in proptest::array::uniform6(1usize..4),
            dims in proptest::collection::btree_set(0usize..6, 1..4),
            pick in proptest::array::uniform6(0usize..3),
        ) {
            let s = spec(sizes);
            let total: usize = sizes.iter().product();
            let all = enumerate(&s, &[]);
            proptest::prop_assert_eq!(all.len(), total);
            let mut distinct: Vec<[usize; 6]> = all.iter().map(|p| p.pick).collect();
            distinct.sort();
            distinct.dedup();
            proptest::prop_assert_eq!(distinct.len(), total);
            let rule: Vec<(usize, usize)> = dims.iter().map(|&d| (d, pick[d] % sizes[d])).collect();
            let named: usize = dims.iter().map(|&d| sizes[d]).product();
            let kept = enumerate(&s, std::slice::from_ref(&rule));
            proptest::prop_assert_eq!(kept.len(), total - total / named);
            proptest::prop_assert!(kept.iter().all(|p| !rule.iter().all(|&(d, k)| p.pick[d] == k)));
        }
    }

    #[test]
    fn formulas_read_as_written() {
        let mut s = spec([1, 1, 1, 1, 1, 1]);
        s.controls[0].value = vec!["a".into(), "b".into()];
        s.fixed_effects[0].value = "city + year".into();
        let p = Specification { pick: [0; 6] };
        assert_eq!(p.formula(&s), "y0 ~ x0 + a + b | city + year");
        s.fixed_effects[0].value = String::new();
        s.controls[0].value.clear();
        assert_eq!(p.formula(&s), "y0 ~ x0");
    }
}
