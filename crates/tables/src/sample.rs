//! Sample restrictions of the table kinds (`sample: municipality == 0 & capital == 0`) and the
//! frame operations they need.
//!
//! Owns: parsing a restriction (comparisons `var OP number` joined by `&`, OP one of `==`, `!=`,
//! `<`, `<=`, `>`, `>=`), evaluating it on an estimator frame (a row with a missing value in a
//! compared variable is dropped), taking a subset of rows of a frame, and reading a column as
//! numbers. Deliberately does not own: general expressions (`|`, functions, text comparisons):
//! derived flags belong in the data stages.

use std::path::Path;

use repro_estimators::data::{Column, Frame};
use serde_saphyr::Spanned;

use repro_kind::diag::{Diagnostic, Location};
use repro_kind::{kind_err, KindError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
struct Comparison {
    var: String,
    op: Op,
    value: f64,
}

/// A parsed restriction: every comparison must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Restriction {
    parts: Vec<Comparison>,
}

/// Parses `var OP number & var OP number ...`; the message explains what is wrong.
pub fn parse(text: &str) -> Result<Restriction, String> {
    let mut parts = Vec::new();
    for raw in text.split('&') {
        let part = raw.trim();
        if part.is_empty() {
            return Err(format!(
                "empty comparison in sample `{text}`; join comparisons with a single `&`"
            ));
        }
        let (idx, op, len) = find_op(part).ok_or_else(|| {
            format!("`{part}` is not a comparison `VAR OP NUMBER` (OP one of == != < <= > >=)")
        })?;
        let var = part[..idx].trim();
        let value_text = part[idx + len..].trim();
        if var.is_empty()
            || !var
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
        {
            return Err(format!("`{var}` in `{part}` is not a variable name"));
        }
        let value: f64 = value_text
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| format!("`{value_text}` in `{part}` is not a number"))?;
        parts.push(Comparison {
            var: var.to_string(),
            op,
            value,
        });
    }
    Ok(Restriction { parts })
}

fn find_op(s: &str) -> Option<(usize, Op, usize)> {
    let idx = s.find(['=', '!', '<', '>'])?;
    let rest = &s[idx..];
    let (op, len) = if rest.starts_with("==") {
        (Op::Eq, 2)
    } else if rest.starts_with("!=") {
        (Op::Ne, 2)
    } else if rest.starts_with("<=") {
        (Op::Le, 2)
    } else if rest.starts_with(">=") {
        (Op::Ge, 2)
    } else if rest.starts_with('<') {
        (Op::Lt, 1)
    } else if rest.starts_with('>') {
        (Op::Gt, 1)
    } else {
        return None;
    };
    Some((idx, op, len))
}

impl Restriction {
    /// The variables the restriction compares, in order.
    pub fn variables(&self) -> Vec<&str> {
        self.parts.iter().map(|p| p.var.as_str()).collect()
    }

    /// Indices of the rows of `frame` that satisfy every comparison; an unknown or non-numeric
    /// variable is an error naming it.
    pub fn rows(&self, frame: &Frame) -> Result<Vec<usize>, Diagnostic> {
        let mut keep = vec![true; frame.nrows()];
        for p in &self.parts {
            let values = numeric_column(frame, &p.var)?;
            for (k, v) in keep.iter_mut().zip(&values) {
                *k &= v.is_some_and(|x| match p.op {
                    Op::Eq => x == p.value,
                    Op::Ne => x != p.value,
                    Op::Lt => x < p.value,
                    Op::Le => x <= p.value,
                    Op::Gt => x > p.value,
                    Op::Ge => x >= p.value,
                });
            }
        }
        Ok((0..keep.len()).filter(|&i| keep[i]).collect())
    }
}

/// A spec's `sample:` as written, parsed, and where it stands in the spec file.
#[derive(Debug, Clone)]
pub struct SampleSpec {
    pub text: String,
    pub restriction: Restriction,
    pub location: Location,
}

impl SampleSpec {
    /// Parses an optional `sample:` of spec file `file`; errors point at the value.
    pub fn from_spec(
        file: &str,
        value: Option<&Spanned<String>>,
    ) -> Result<Option<SampleSpec>, KindError> {
        let Some(s) = value else { return Ok(None) };
        let location = Location {
            file: file.into(),
            line: s.referenced.line(),
            column: s.referenced.column(),
        };
        let restriction = parse(&s.value).map_err(|m| KindError {
            location: Some(location.clone()),
            ..kind_err(format!("invalid sample `{}`: {m}", s.value))
        })?;
        Ok(Some(SampleSpec {
            text: s.value.clone(),
            restriction,
            location,
        }))
    }

    /// The rows of `frame` in the sample; an unknown variable points at the spec's `sample:`.
    pub fn rows(&self, frame: &Frame) -> Result<Vec<usize>, Diagnostic> {
        self.restriction.rows(frame).map_err(|d| {
            Diagnostic {
                message: format!("cannot apply the sample `{}`: {}", self.text, d.message),
                ..d
            }
            .at(Some(self.location.clone()))
        })
    }
}

/// Reads `data` (relative to `root`) and keeps the rows of `sample`, if any.
pub fn load(root: &Path, data: &str, sample: Option<&SampleSpec>) -> Result<Frame, Diagnostic> {
    let frame = crate::frame::read_estimator_frame(&root.join(data))?;
    match sample {
        None => Ok(frame),
        Some(s) => Ok(subset(&frame, &s.rows(&frame)?)),
    }
}

/// The rows `rows` of every column of `frame`, in that order.
pub fn subset(frame: &Frame, rows: &[usize]) -> Frame {
    let mut out = Frame::new();
    for name in frame.names() {
        let Some(col) = frame.column(name) else {
            continue;
        };
        let picked = match col {
            Column::Numeric(v) => Column::Numeric(rows.iter().map(|&i| v[i]).collect()),
            Column::Float(v) => Column::Float(rows.iter().map(|&i| v[i]).collect()),
            Column::Text(v) => Column::Text(rows.iter().map(|&i| v[i].clone()).collect()),
        };
        // Names are unique and lengths equal by construction, so pushing cannot fail.
        let _ = out.push(name.clone(), picked);
    }
    out
}

/// A column as numbers (`None` = missing or non-finite); text cells must parse as numbers, empty
/// and `NA` cells count as missing.
pub fn numeric_column(frame: &Frame, name: &str) -> Result<Vec<Option<f64>>, Diagnostic> {
    let col = frame.column(name).ok_or_else(|| {
        Diagnostic::new(format!("unknown variable `{name}`"))
            .hint("check the spelling against the data file's columns")
    })?;
    match col {
        Column::Numeric(v) => Ok(v.iter().map(|x| x.filter(|x| x.is_finite())).collect()),
        Column::Float(v) => Ok(v
            .iter()
            .map(|&x| Some(x).filter(|x| x.is_finite()))
            .collect()),
        Column::Text(v) => v
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let Some(text) = cell else { return Ok(None) };
                let t = text.trim();
                if t.is_empty() || t == "NA" {
                    return Ok(None);
                }
                t.parse::<f64>()
                    .map(|x| Some(x).filter(|x| x.is_finite()))
                    .map_err(|_| {
                        Diagnostic::new(format!(
                            "variable `{name}` is not numeric: row {} holds `{text}`",
                            i + 1
                        ))
                    })
            })
            .collect(),
    }
}

/// Labels `0..n` for the values of a column at `rows` (for fixed effects and clusters passed as
/// codes); several columns are combined into one interacted code.
pub fn codes(frame: &Frame, names: &[String], rows: &[usize]) -> Result<Vec<u32>, Diagnostic> {
    let mut map: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for &i in rows {
        let mut key = String::new();
        for name in names {
            let col = frame
                .column(name)
                .ok_or_else(|| Diagnostic::new(format!("unknown variable `{name}`")))?;
            match col {
                Column::Numeric(v) => key.push_str(&format!("{:?}", v[i])),
                Column::Float(v) => key.push_str(&format!("{:?}", v[i])),
                Column::Text(v) => key.push_str(&format!("{:?}", v[i])),
            }
            key.push('\u{1f}');
        }
        let next = map.len() as u32;
        out.push(*map.entry(key).or_insert(next));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Frame {
        let mut f = Frame::new();
        f.push(
            "a",
            Column::Numeric(vec![Some(0.0), Some(1.0), None, Some(2.0)]),
        )
        .unwrap();
        f.push(
            "b",
            Column::Text(vec![
                Some("1".into()),
                Some("x".into()),
                None,
                Some("3".into()),
            ]),
        )
        .unwrap();
        f
    }

    #[test]
    fn parses_and_filters() {
        let r = parse("a >= 1 & a != 2").unwrap();
        assert_eq!(r.rows(&frame()).unwrap(), vec![1]);
        let r = parse("a<1").unwrap();
        assert_eq!(r.rows(&frame()).unwrap(), vec![0]);
    }

    #[test]
    fn rejects_bad_restrictions() {
        assert!(parse("a = 1").unwrap_err().contains("not a comparison"));
        assert!(parse("a == x").unwrap_err().contains("not a number"));
        assert!(parse("a == 1 && b == 2").unwrap_err().contains("empty"));
        assert!(parse("a b == 1").unwrap_err().contains("not a variable"));
    }

    #[test]
    fn unknown_and_text_variables_are_errors() {
        let f = frame();
        let e = parse("zz == 1").unwrap().rows(&f).unwrap_err();
        assert!(e.message.contains("`zz`"));
        let e = parse("b == 1").unwrap().rows(&f).unwrap_err();
        assert!(e.message.contains("row 2"));
    }

    #[test]
    fn subset_and_codes() {
        let f = frame();
        let s = subset(&f, &[3, 0]);
        assert_eq!(
            s.column("a"),
            Some(&Column::Numeric(vec![Some(2.0), Some(0.0)]))
        );
        let c = codes(&f, &["a".to_string()], &[0, 1, 0, 3]).unwrap();
        assert_eq!(c, vec![0, 1, 0, 2]);
    }
}
