//! Field-by-field views of structured values, so `repro status` can say which field changed.
//!
//! Owns: flattening a JSON value into dotted paths (`models[1].formula`), reading a built-in
//! stage's spec file (YAML) into that flat view for the lock, comparing two flat views, and
//! showing a value briefly (long values shortened in the middle). Deliberately does not own:
//! deciding that something is stale (`planner`) or what a kind's spec means (the kinds).

use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

/// A spec file with more fields than this is not recorded field by field: status then says only
/// that the file changed (a spec is a small hand-written file; a huge one is data).
pub const MAX_FIELDS: usize = 2_000;

/// Values longer than this (as shown) are shortened with an ellipsis in the middle.
const SHOW_CHARS: usize = 60;

/// One field whose value differs: absent on one side when it was added or removed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// `value` as dotted paths to its leaves, in document order. Scalars, empty lists and empty
/// mappings are leaves; a key that is not a plain word is written `["key"]`.
pub fn flatten(value: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    walk(value, String::new(), &mut out);
    out
}

fn walk(value: &Value, path: String, out: &mut Map<String, Value>) {
    match value {
        Value::Object(o) if !o.is_empty() => {
            for (k, v) in o {
                let plain = !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '^'));
                let step = match (plain, path.is_empty()) {
                    (true, true) => k.clone(),
                    (true, false) => format!("{path}.{k}"),
                    (false, _) => format!("{path}[{}]", Value::String(k.clone())),
                };
                walk(v, step, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                walk(v, format!("{path}[{i}]"), out);
            }
        }
        leaf => {
            out.insert(path, leaf.clone());
        }
    }
}

/// The flat view of spec file `rel`, or None when it cannot be read as YAML with string keys or
/// has more than [`MAX_FIELDS`] fields (its kind has already parsed it, so this is rare).
pub fn read_spec(root: &Path, rel: &str) -> Option<Map<String, Value>> {
    let text = std::fs::read_to_string(root.join(rel)).ok()?;
    let options = repro_kind::spec::yaml_options(&text);
    let value: Value = serde_saphyr::from_str_with_options(&text, options).ok()?;
    let flat = flatten(&value);
    (flat.len() <= MAX_FIELDS).then_some(flat)
}

/// The fields that differ between `old` and `new`: changed and added ones in `new`'s order,
/// then removed ones in `old`'s order. A whole entry added or removed (a model, a mapping) is one
/// change whose value is the entry.
pub fn diff(old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<FieldChange> {
    let added = grouped(field_diff(old, new), old, new);
    // Removed fields group the other way round.
    let swap = |c: FieldChange| FieldChange {
        field: c.field,
        old: c.new,
        new: c.old,
    };
    let removed: Vec<FieldChange> = added.into_iter().map(swap).collect();
    grouped(removed, new, old).into_iter().map(swap).collect()
}

/// The differing fields one by one.
fn field_diff(old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<FieldChange> {
    let mut out = Vec::new();
    for (k, v) in new {
        match old.get(k) {
            Some(o) if o == v => {}
            o => out.push(FieldChange {
                field: k.clone(),
                old: o.cloned(),
                new: Some(v.clone()),
            }),
        }
    }
    for (k, v) in old {
        if !new.contains_key(k) {
            out.push(FieldChange {
                field: k.clone(),
                old: Some(v.clone()),
                new: None,
            });
        }
    }
    out
}

/// Fields added under an entry that `old` does not have at all, as one change of that entry
/// (the outermost such); other changes as they are. A path that does not read back (a lock
/// edited by hand) is left alone.
fn grouped(
    changes: Vec<FieldChange>,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> Vec<FieldChange> {
    let mut out: Vec<FieldChange> = Vec::new();
    for c in changes {
        let entry = match (&c.old, &c.new) {
            (None, Some(_)) => outermost_new_entry(&c.field, old),
            _ => None,
        };
        let Some(entry) = entry else {
            out.push(c);
            continue;
        };
        if out.iter().any(|o| o.field == entry) {
            continue;
        }
        let members = new.iter().filter(|(k, _)| within(k, entry)).map(|(k, v)| {
            let rest = &k[entry.len()..];
            (rest.strip_prefix('.').unwrap_or(rest), v)
        });
        match unflatten(members) {
            Some(value) => out.push(FieldChange {
                field: entry.to_string(),
                old: None,
                new: Some(value),
            }),
            None => out.push(c),
        }
    }
    out
}

/// The outermost entry above `field` (not `field` itself) of which `old` has nothing.
fn outermost_new_entry<'a>(field: &'a str, old: &Map<String, Value>) -> Option<&'a str> {
    let ends = steps(field)?;
    ends.iter()
        .take(ends.len().saturating_sub(1))
        .map(|(_, end)| &field[..*end])
        .find(|entry| !old.keys().any(|k| within(k, entry)))
}

/// Whether path `key` is `entry` or lies under it.
fn within(key: &str, entry: &str) -> bool {
    key == entry
        || (key.len() > entry.len()
            && key.starts_with(entry)
            && matches!(key.as_bytes()[entry.len()], b'.' | b'['))
}

/// One step of a path: a mapping key or a list index.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// A path read back into its steps, each with the byte offset where it ends: `key`, `.key`,
/// `[3]`, `["any key"]`. None for text [`flatten`] does not write.
fn steps(path: &str) -> Option<Vec<(Step, usize)>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < path.len() {
        let rest = &path[at..];
        let (step, len) = if rest.starts_with("[\"") {
            let mut de = serde_json::Deserializer::from_str(&rest[1..]).into_iter::<String>();
            let key = de.next()?.ok()?;
            let len = 1 + de.byte_offset();
            rest[len..].starts_with(']').then_some(())?;
            (Step::Key(key), len + 1)
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            (Step::Index(r[..end].parse().ok()?), end + 2)
        } else {
            let skip = usize::from(at > 0);
            (at == 0 || rest.starts_with('.')).then_some(())?;
            let r = &rest[skip..];
            let end = r.find(['.', '[']).unwrap_or(r.len());
            (Step::Key(r[..end].to_string()), skip + end)
        };
        at += len;
        out.push((step, at));
    }
    Some(out)
}

/// The value whose flat view is `fields` (paths relative to it); None when a path does not read
/// back or two paths disagree on what lies above them.
fn unflatten<'a>(fields: impl IntoIterator<Item = (&'a str, &'a Value)>) -> Option<Value> {
    let mut root = Value::Null;
    for (path, leaf) in fields {
        let mut at = &mut root;
        for (step, _) in steps(path)? {
            at = match step {
                Step::Key(k) => {
                    if at.is_null() {
                        *at = Value::Object(Map::new());
                    }
                    at.as_object_mut()?.entry(k).or_insert(Value::Null)
                }
                Step::Index(i) => {
                    if at.is_null() {
                        *at = Value::Array(Vec::new());
                    }
                    let a = at.as_array_mut()?;
                    if a.len() <= i {
                        a.resize(i + 1, Value::Null);
                    }
                    &mut a[i]
                }
            };
        }
        *at = leaf.clone();
    }
    Some(root)
}

/// The fields that differ between two canonical definitions, when both are JSON; None otherwise.
pub fn diff_json(old: &str, new: &str) -> Option<Vec<FieldChange>> {
    let old: Value = serde_json::from_str(old).ok()?;
    let new: Value = serde_json::from_str(new).ok()?;
    Some(diff(&flatten(&old), &flatten(&new)))
}

/// A value as a user reads it: text and entries (as compact JSON) in backticks, numbers, `true`,
/// `false` and `null` bare; long ones shortened in the middle.
pub fn show(value: &Value) -> String {
    match value {
        Value::String(s) => format!("`{}`", shorten(s)),
        Value::Array(_) | Value::Object(_) => format!("`{}`", shorten(&value.to_string())),
        other => shorten(&other.to_string()),
    }
}

/// `text` cut to about [`SHOW_CHARS`] characters with `…` in the middle.
pub fn shorten(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= SHOW_CHARS {
        return text.to_string();
    }
    let half = (SHOW_CHARS - 1) / 2;
    let head: String = chars[..half].iter().collect();
    let tail: String = chars[chars.len() - half..].iter().collect();
    format!("{head}…{tail}")
}

/// One change as a user reads it: `` `field`: old -> new ``, or added / removed.
pub fn show_change(c: &FieldChange) -> String {
    let name = if c.field.is_empty() {
        "the value".to_string()
    } else {
        format!("`{}`", c.field)
    };
    match (&c.old, &c.new) {
        (Some(o), Some(n)) => format!("{name}: {} -> {}", show(o), show(n)),
        (None, Some(n)) => format!("{name} added: {}", show(n)),
        (Some(o), None) => format!("{name} removed (was {})", show(o)),
        (None, None) => name,
    }
}

/// Every change, joined with `; `.
pub fn show_changes(changes: &[FieldChange]) -> String {
    let parts: Vec<String> = changes.iter().map(show_change).collect();
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn flattens_to_dotted_paths_in_order() {
        let v = json!({"digits": 3, "models": [{"id": "a", "formula": "y ~ x"}],
                       "fe_labels": {"province^year": "P x Y", "a.b": 1}, "keep": []});
        let flat = flatten(&v);
        let keys: Vec<&str> = flat.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "digits",
                "models[0].id",
                "models[0].formula",
                "fe_labels.province^year",
                "fe_labels[\"a.b\"]",
                "keep"
            ]
        );
        assert_eq!(flat["keep"], json!([]));
    }

    #[test]
    fn diffs_changed_added_and_removed_fields() {
        let old = flatten(&json!({"digits": 3, "models": [{"formula": "y ~ x"}], "notes": "n"}));
        let new =
            flatten(&json!({"digits": 4, "models": [{"formula": "y ~ x"}, {"formula": "y ~ z"}]}));
        let shown = show_changes(&diff(&old, &new));
        assert_eq!(
            shown,
            "`digits`: 3 -> 4; `models[1]` added: `{\"formula\":\"y ~ z\"}`; `notes` removed (was `n`)"
        );
        assert!(diff(&new, &new).is_empty());
        // A removed mapping is one change; a list that was empty gets its items one by one.
        let old =
            flatten(&json!({"fe_labels": {"city": "City FE", "year": "Year FE"}, "keep": []}));
        let new = flatten(&json!({"keep": ["x"]}));
        assert_eq!(
            show_changes(&diff(&old, &new)),
            "`keep[0]` added: `x`; `fe_labels` removed (was `{\"city\":\"City FE\",\"year\":\"Year FE\"}`); \
             `keep` removed (was `[]`)"
        );
    }

    #[test]
    fn long_values_are_shortened_in_the_middle() {
        let long = "x".repeat(30) + &"y".repeat(100);
        let s = shorten(&long);
        assert_eq!(s.chars().count(), 59);
        assert!(s.starts_with("xxxx") && s.ends_with("yyyy") && s.contains('…'));
        assert_eq!(shorten("short"), "short");
    }

    #[test]
    fn definitions_that_are_not_json_are_not_diffed() {
        assert!(diff_json("not json", "{}").is_none());
        let d = diff_json(
            r#"{"kind":"synth","spec":{"seed":1}}"#,
            r#"{"kind":"synth","spec":{"seed":2}}"#,
        )
        .unwrap();
        assert_eq!(show_changes(&d), "`spec.seed`: 1 -> 2");
    }

    /// JSON values over a few keys chosen to collide if paths were ambiguous: dots, brackets,
    /// quotes, digits, the empty key.
    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (0i64..3).prop_map(Value::from),
            prop::sample::select(vec!["", "a", "0", "[]"]).prop_map(Value::from),
        ];
        let keys = vec!["a", "b", "a.b", "0", "", "a[0]", "\"a\"", "[\"a\"]", "^"];
        leaf.prop_recursive(4, 40, 4, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(keys.clone()), inner), 0..3).prop_map(
                    |kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                ),
            ]
        })
    }

    proptest! {
        /// Every path reads back to the keys and indices it came from, so two different values
        /// never flatten alike and status never calls a change "no field changed" (keys with
        /// dots, brackets or quotes, empty keys, empty lists and maps).
        #[test]
        fn flat_views_read_back_to_the_value(a in json()) {
            let flat = flatten(&a);
            prop_assert_eq!(unflatten(flat.iter().map(|(k, v)| (k.as_str(), v))), Some(a));
        }

        /// The changes listed turn the old fields into the new ones, and nothing else differs.
        #[test]
        fn the_changes_are_exactly_the_difference(a in json(), b in json()) {
            let (old, new) = (flatten(&a), flatten(&b));
            let mut applied = old.clone();
            for c in diff(&old, &new) {
                // A whole entry stands for every field under it.
                let (mut was, mut now) = (Map::new(), Map::new());
                c.old.iter().for_each(|v| walk(v, c.field.clone(), &mut was));
                c.new.iter().for_each(|v| walk(v, c.field.clone(), &mut now));
                prop_assert_ne!(&was, &now);
                for (k, v) in &was {
                    prop_assert_eq!(old.get(k), Some(v));
                    applied.remove(k);
                }
                for (k, v) in now {
                    prop_assert_eq!(new.get(&k), Some(&v));
                    applied.insert(k, v);
                }
            }
            // Maps compare as sets of fields, whatever their order.
            prop_assert_eq!(applied, new);
        }
    }
}
