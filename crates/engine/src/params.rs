//! Parameter values in canonical form.
//!
//! Owns: the [`Param`] value type and its canonical text, which is what enters stage keys and the
//! lock file. Canonical means: mapping keys sorted, `1` and `1.0` the same number, strings
//! JSON-escaped. Deliberately does not own: where params come from (inline or a params file,
//! see `spec`) or how commands see them (see `executor`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::yaml::{Node, Value};

#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    Null,
    Bool(bool),
    Number(f64),
    Str(String),
    List(Vec<Param>),
    Map(BTreeMap<String, Param>),
}

impl Param {
    pub fn from_node(node: &Node) -> Param {
        match &node.value {
            Value::Null => Param::Null,
            Value::Bool(b) => Param::Bool(*b),
            Value::Int(i) => Param::Number(*i as f64),
            Value::Float(f) => Param::Number(*f),
            Value::Str(s) => Param::Str(s.clone()),
            Value::Seq(items) => Param::List(items.iter().map(Param::from_node).collect()),
            Value::Map(entries) => Param::Map(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), Param::from_node(v)))
                    .collect(),
            ),
        }
    }

    /// The canonical text of the value: equal values give equal text, and only they do.
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        self.write_canonical(&mut out);
        out
    }

    fn write_canonical(&self, out: &mut String) {
        match self {
            Param::Null => out.push_str("null"),
            Param::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Param::Number(x) => out.push_str(&canonical_number(*x)),
            Param::Str(s) => write_json_string(out, s),
            Param::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_canonical(out);
                }
                out.push(']');
            }
            Param::Map(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_string(out, k);
                    out.push(':');
                    v.write_canonical(out);
                }
                out.push('}');
            }
        }
    }

    /// The text a command sees for `${params.NAME}` and `REPRO_PARAM_NAME`: strings raw,
    /// everything else canonical.
    pub fn as_command_text(&self) -> String {
        match self {
            Param::Str(s) => s.clone(),
            other => other.canonical(),
        }
    }

    /// Looks up a dotted path (`a.b.c`) inside mappings.
    pub fn lookup(&self, path: &str) -> Option<&Param> {
        let mut cur = self;
        for part in path.split('.') {
            match cur {
                Param::Map(m) => cur = m.get(part)?,
                _ => return None,
            }
        }
        Some(cur)
    }
}

/// Integral values print without a fraction, so `1` and `1.0` agree; others print in Rust's
/// shortest round-trip form, which is deterministic across platforms.
pub fn canonical_number(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if x == x.trunc() && x.abs() < 9.007_199_254_740_992e15 {
        // Normalise -0 to 0.
        return format!("{}", x as i64);
    }
    format!("{x:?}")
}

fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    fn p(text: &str) -> Param {
        Param::from_node(&parse(text).unwrap())
    }

    #[test]
    fn key_order_and_integer_floats_do_not_matter() {
        assert_eq!(
            p("{a: 1, b: 2.0}").canonical(),
            p("{b: 2, a: 1.0}").canonical()
        );
        assert_eq!(p("{a: 1}").canonical(), r#"{"a":1}"#);
    }

    #[test]
    fn a_removed_key_does_matter() {
        assert_ne!(p("{a: 1, b: 2}").canonical(), p("{a: 1}").canonical());
    }

    #[test]
    fn numbers_are_canonical() {
        assert_eq!(canonical_number(0.1), "0.1");
        assert_eq!(canonical_number(-0.0), "0");
        assert_eq!(canonical_number(1e300), "1e300");
        assert_eq!(canonical_number(2.5), "2.5");
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(Param::Str("a\"b\n".into()).canonical(), r#""a\"b\n""#);
    }
}
