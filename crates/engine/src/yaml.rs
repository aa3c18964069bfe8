//! A YAML document as a tree of nodes that remember where they stand in the file.
//!
//! Owns: parsing YAML text (through serde-saphyr, which reports line and column) into [`Node`]s
//! with positions, so that validation can report every problem with its place, not only the first.
//! Plain documents take a quicker way to the same tree (`events`).
//! Deliberately does not own: what the keys mean (see `spec`).

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

mod events;

/// Keys of a mapping checked for duplicates by scanning; larger mappings use a set.
const SCAN_KEYS: usize = 32;

/// Line and column, 1-based.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A mapping key with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

/// A YAML syntax error with its position.
#[derive(Debug)]
pub struct SyntaxError {
    pub message: String,
    pub pos: Option<Pos>,
}

/// Parses one YAML document. An empty document is `Null`.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    if text.trim().is_empty() {
        return Ok(Node {
            value: Value::Null,
            pos: Pos { line: 1, column: 1 },
        });
    }
    // YAML 1.2 core booleans only: `y`, `yes`, `on` stay strings (a command named `y` is a command).
    let options = repro_kind::spec::yaml_options(text);
    if let Some(node) = events::parse(text, &options) {
        return Ok(node);
    }
    serde_saphyr::from_str_with_options::<Node>(text, options).map_err(|e| {
        let pos = e.location().map(|l| Pos {
            line: l.line(),
            column: l.column(),
        });
        // serde-saphyr's Display appends its own snippet; keep only the first line, the
        // position is rendered by our diagnostics.
        let full = e.to_string();
        let first = full.lines().next().unwrap_or("invalid yaml").trim();
        let first = first.strip_prefix("error: ").unwrap_or(first);
        // The position is rendered by our diagnostics; drop serde-saphyr's copy of it.
        let message = match (first.split_once(": "), pos) {
            (Some((head, rest)), Some(_)) if head.starts_with("line ") => rest.to_string(),
            _ => first.to_string(),
        };
        let message = repro_kind::spec::budget_message(&message).unwrap_or(message);
        SyntaxError { message, pos }
    })
}

impl Value {
    /// A short name of the value's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// Converts into JSON, for typed deserialisation of built-in stage parameters.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Seq(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_json).collect())
            }
            Value::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

fn pos_of<T>(s: &Spanned<T>) -> Pos {
    Pos {
        line: s.referenced.line(),
        column: s.referenced.column(),
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        Ok(Node {
            pos: pos_of(&spanned),
            value: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any yaml value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        match i64::try_from(v) {
            Ok(i) => Ok(Value::Int(i)),
            Err(_) => Ok(Value::Float(v as f64)),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries: Vec<(Key, Node)> = Vec::new();
        // Duplicate keys: a scan of the entries for small maps, a set once a map is large (a
        // pipeline's `stages:` with thousands of entries would otherwise cost n^2 / 2 compares).
        let mut seen: Option<HashSet<String>> = None;
        while let Some(key) = map.next_key::<Node>()? {
            let name = match key.value {
                Value::Str(s) => s,
                Value::Int(i) => i.to_string(),
                Value::Float(f) => f.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => "null".to_string(),
                Value::Seq(_) | Value::Map(_) => {
                    return Err(de::Error::custom(format!(
                        "a mapping key must be a plain scalar (line {}, column {})",
                        key.pos.line, key.pos.column
                    )))
                }
            };
            let value = map.next_value::<Node>()?;
            if seen.is_none() && entries.len() >= SCAN_KEYS {
                seen = Some(entries.iter().map(|(k, _)| k.name.clone()).collect());
            }
            let duplicate = match &mut seen {
                Some(set) => !set.insert(name.clone()),
                None => entries.iter().any(|(k, _)| k.name == name),
            };
            if duplicate {
                return Err(de::Error::custom(format!(
                    "duplicate key `{name}` (line {}, column {})",
                    key.pos.line, key.pos.column
                )));
            }
            entries.push((Key { name, pos: key.pos }, value));
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_keep_their_positions() {
        let n = parse("stages:\n  a:\n    cmd: echo hi\n").unwrap();
        let Value::Map(top) = &n.value else {
            panic!("not a map")
        };
        assert_eq!(top[0].0.name, "stages");
        let Value::Map(stages) = &top[0].1.value else {
            panic!("not a map")
        };
        assert_eq!(stages[0].0.pos, Pos { line: 2, column: 3 });
        let Value::Map(a) = &stages[0].1.value else {
            panic!("not a map")
        };
        assert_eq!(a[0].0.name, "cmd");
        assert_eq!(a[0].0.pos.line, 3);
        assert_eq!(a[0].1.value, Value::Str("echo hi".into()));
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let e = parse("stages:\n  a: [1, 2\n").unwrap_err();
        assert!(e.pos.is_some(), "{e:?}");
    }

    #[test]
    fn duplicate_keys_are_found_in_small_and_large_maps() {
        // Below and above SCAN_KEYS: the scan and the set must give the same verdict and place.
        for n in [3, SCAN_KEYS, 5 * SCAN_KEYS] {
            let mut text: String = (0..n).map(|i| format!("k{i}: {i}\n")).collect();
            assert!(parse(&text).is_ok(), "{n} distinct keys");
            text.push_str("k1: again\n");
            let e = parse(&text).unwrap_err();
            let line = e.pos.map(|p| p.line).or_else(|| {
                let (_, rest) = e.message.split_once("(line ")?;
                rest.split(',').next()?.parse().ok()
            });
            assert!(e.message.contains("duplicate"), "{n}: {e:?}");
            assert_eq!(line, Some(n as u64 + 1), "{n}: {e:?}");
        }
    }

    #[test]
    fn numbers_and_nulls() {
        let n = parse("a: 1\nb: 1.5\nc: ~\nd: true\ne: yes\n").unwrap();
        let Value::Map(m) = n.value else { panic!() };
        assert_eq!(m[0].1.value, Value::Int(1));
        assert_eq!(m[1].1.value, Value::Float(1.5));
        assert_eq!(m[2].1.value, Value::Null);
        assert_eq!(m[3].1.value, Value::Bool(true));
        assert_eq!(m[4].1.value, Value::Str("yes".into()));
    }
}
