//! Significance stars: the levels a table spec asks for (`stars: none` or a list of p-value
//! thresholds), the marks they give a p-value, and the note that explains them.
//!
//! Owns: the `stars` spec field of the table kinds and its check. Deliberately does not own: where
//! marks are printed (`table`, `latex`) or the p-values themselves (the estimators).

use repro_kind::KindError;
use serde::Deserialize;

/// The `stars` field as written: `none` or a list of thresholds such as `[0.1, 0.05, 0.01]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum StarsSpec {
    Word(String),
    Levels(Vec<f64>),
}

/// Checked star levels, largest threshold first (one star), at most [`MAX_LEVELS`].
#[derive(Debug, Clone, PartialEq)]
pub struct Stars {
    levels: Vec<f64>,
}

/// The most levels a table can mark (`****`).
pub const MAX_LEVELS: usize = 4;

const MARKS: [&str; MAX_LEVELS + 1] = ["", "*", "**", "***", "****"];

impl Default for Stars {
    /// The economics convention: `* p<0.1, ** p<0.05, *** p<0.01`.
    fn default() -> Self {
        Stars {
            levels: vec![0.1, 0.05, 0.01],
        }
    }
}

impl Stars {
    /// The levels of a spec's `stars` field (absent: the default levels).
    pub fn from_spec(file: &str, spec: Option<&StarsSpec>) -> Result<Stars, KindError> {
        let bad = |what: String| {
            KindError {
            hint: Some(
                "write `stars: none` or thresholds between 0 and 1, e.g. `stars: [0.1, 0.05, 0.01]`"
                    .into(),
            ),
            ..repro_kind::kind_err(format!("invalid stage spec `{file}`: `stars` {what}"))
        }
        };
        match spec {
            None => Ok(Stars::default()),
            Some(StarsSpec::Word(w)) if w == "none" => Ok(Stars { levels: Vec::new() }),
            Some(StarsSpec::Word(w)) => Err(bad(format!("is `{w}`"))),
            Some(StarsSpec::Levels(l)) => {
                if l.len() > MAX_LEVELS {
                    return Err(bad(format!(
                        "has {} levels (at most {MAX_LEVELS})",
                        l.len()
                    )));
                }
                if let Some(x) = l.iter().find(|x| !(**x > 0.0 && **x < 1.0)) {
                    return Err(bad(format!("has the level `{x}`")));
                }
                let mut levels = l.clone();
                levels.sort_by(|a, b| b.total_cmp(a));
                if levels.windows(2).any(|w| w[0] == w[1]) {
                    return Err(bad("repeats a level".into()));
                }
                Ok(Stars { levels })
            }
        }
    }

    /// The thresholds, largest first (empty for `stars: none`).
    pub fn levels(&self) -> &[f64] {
        &self.levels
    }

    /// The stars of a p-value: one per level it is below.
    pub fn mark(&self, p: f64) -> &'static str {
        MARKS[self.levels.iter().filter(|&&l| p < l).count()]
    }

    /// `* p<0.1, ** p<0.05, *** p<0.01`; `None` when no stars are printed.
    pub fn note(&self) -> Option<String> {
        if self.levels.is_empty() {
            return None;
        }
        let parts: Vec<String> = self
            .levels
            .iter()
            .enumerate()
            .map(|(k, l)| format!("{} p<{l}", MARKS[k + 1]))
            .collect();
        Some(parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> Result<Stars, KindError> {
        let s: StarsSpec = serde_saphyr::from_str(yaml).unwrap();
        Stars::from_spec("t.yaml", Some(&s))
    }

    #[test]
    fn default_levels_match_the_economics_convention() {
        let s = Stars::default();
        assert_eq!(s.mark(0.009), "***");
        assert_eq!(s.mark(0.01), "**");
        assert_eq!(s.mark(0.07), "*");
        assert_eq!(s.mark(0.1), "");
        assert_eq!(s.note().unwrap(), "* p<0.1, ** p<0.05, *** p<0.01");
    }

    #[test]
    fn none_and_custom_levels() {
        let none = spec("none").unwrap();
        assert_eq!(none.mark(1e-9), "");
        assert_eq!(none.note(), None);
        let two = spec("[0.01, 0.05]").unwrap();
        assert_eq!(two.mark(0.03), "*");
        assert_eq!(two.mark(0.001), "**");
        assert_eq!(two.note().unwrap(), "* p<0.05, ** p<0.01");
        for bad in [
            "some",
            "[0.1, 1.5]",
            "[0.1, 0.1]",
            "[0.2, 0.1, 0.05, 0.01, 0.001]",
        ] {
            assert!(spec(bad).is_err(), "{bad}");
        }
    }
}
