//! Stage spec files (`stages/*.yaml`) and built-in params: reading them with their places.
//!
//! Owns: deserialising a spec file with file:line:col on errors, the `spec:` param of kinds
//! configured by a spec file, and the path and `.csv` checks every such kind repeats. Deliberately
//! does not own: any kind's fields (each kind's spec type denies unknown fields itself).

use std::path::Path;

use crate::diag::Location;
use crate::paths::normalize_path;
use crate::stage::KindError;

/// A kind's error without a place.
pub fn kind_err(message: impl Into<String>) -> KindError {
    KindError {
        message: message.into(),
        hint: None,
        location: None,
    }
}

/// The `spec:` path of a kind configured by a stage spec file (`params: {spec: stages/x.yaml}`).
pub fn spec_path(params: serde_json::Value) -> Result<String, KindError> {
    let serde_json::Value::Object(mut obj) = params else {
        return Err(kind_err(
            "`params` must be a mapping with `spec: <stage spec file>`",
        ));
    };
    let path = take_path(&mut obj, "spec")?;
    if let Some(extra) = obj.keys().next() {
        return Err(KindError {
            hint: Some(format!(
                "settings of this kind go in the spec file `{path}`"
            )),
            ..kind_err(format!("unknown param `{extra}`"))
        });
    }
    Ok(path)
}

/// Reads and deserialises a stage spec file (`stages/*.yaml`); errors carry the file, line and
/// column. Unknown fields should be denied by `T` so a typo is caught before anything runs.
pub fn load_spec<T: serde::de::DeserializeOwned>(root: &Path, rel: &str) -> Result<T, KindError> {
    let text = std::fs::read_to_string(root.join(rel)).map_err(|e| KindError {
        hint: Some("stage spec paths are relative to the pipeline file".into()),
        ..kind_err(format!("cannot read stage spec `{rel}`: {e}"))
    })?;
    serde_saphyr::from_str_with_options::<T>(&text, yaml_options(&text)).map_err(|e| {
        let location = e.location().map(|l| Location {
            file: rel.into(),
            line: l.line(),
            column: l.column(),
        });
        let full = e.to_string();
        let first = full.lines().next().unwrap_or("invalid yaml").trim();
        let first = first.strip_prefix("error: ").unwrap_or(first);
        let message = match first.split_once(": ") {
            Some((head, rest)) if head.starts_with("line ") && location.is_some() => rest,
            _ => first,
        };
        let message = budget_message(message).unwrap_or_else(|| message.to_string());
        KindError {
            location,
            hint: unknown_field_hint(&message),
            ..kind_err(format!("invalid stage spec `{rel}`: {message}"))
        }
    })
}

/// The YAML reader's options for repro's files: YAML 1.2 core booleans only (`y`, `yes`, `on`
/// stay strings), and a budget that grows with the text.
///
/// serde-saphyr's default budget (250,000 nodes, 1,000,000 events) guards against documents
/// that expand far beyond their size; a legitimately large pipeline (50,000 stages is about 650,000
/// nodes) hit it. Nodes and events of a document without aliases are bounded by its length (at
/// most one node and two events per byte), so allowing that many costs memory linear in a file
/// that is already in memory. What can expand (aliases, anchors, the copies they replay) and
/// the nesting depth keep their default limits.
pub fn yaml_options(text: &str) -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    let mut budget = serde_saphyr::budget::Budget::default();
    budget.max_nodes = budget.max_nodes.max(text.len() + 1024);
    budget.max_events = budget.max_events.max(2 * text.len() + 1024);
    options.budget = Some(budget);
    options
}

/// The YAML reader's "budget breached: Depth { depth: 65 }" in repro's words, with the limit
/// and what to do; `None` for other messages.
pub fn budget_message(message: &str) -> Option<String> {
    let what = message.strip_prefix("budget breached: ")?;
    let limits = serde_saphyr::budget::Budget::default();
    let kind = what.split([' ', '{']).next().unwrap_or(what);
    Some(match kind {
        "Depth" => format!(
            "the YAML nests more than {} levels deep, repro's limit; flatten it",
            limits.max_depth
        ),
        "Aliases" | "Anchors" | "RecordedAnchorEvents" | "RecordedAnchorBytes" => format!(
            "the YAML's aliases (`*name`) expand beyond repro's limit ({} aliases, {} anchors, {} replayed nodes), a guard against alias bombs; write the repeated parts out instead",
            limits.max_aliases, limits.max_anchors, limits.max_recorded_anchor_events
        ),
        _ => format!(
            "the YAML is beyond repro's size limits ({what}); split it into several files"
        ),
    })
}

/// "did you mean" for serde's `unknown field `kep`, expected one of ...` (backticks optional).
fn unknown_field_hint(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field ")?;
    let (field, expected) = rest.split_once(", expected ")?;
    let field = field.trim_matches('`');
    let expected = expected.strip_prefix("one of ").unwrap_or(expected);
    let allowed: Vec<&str> = expected
        .split(", ")
        .flat_map(|w| w.split(" or "))
        .map(|w| w.trim().trim_matches('`'))
        .filter(|w| !w.is_empty())
        .collect();
    crate::suggest::closest(field, &allowed).map(|s| format!("did you mean `{s}`?"))
}

/// An error about what stage spec `spec_path` says.
pub fn spec_err(spec_path: &str, message: impl std::fmt::Display) -> KindError {
    kind_err(format!("invalid stage spec `{spec_path}`: {message}"))
}

/// Checks that every path a stage spec names is a valid project path (relative, no `..`).
pub fn check_spec_paths<'a>(
    spec_path: &str,
    paths: impl IntoIterator<Item = &'a String>,
) -> Result<(), KindError> {
    for p in paths {
        normalize_path(p).map_err(|why| spec_err(spec_path, format!("path `{p}`: {why}")))?;
    }
    Ok(())
}

/// Checks that a spec's `out` is a `.csv` path (stages write its Parquet twin beside it).
pub fn check_csv_out(spec_path: &str, out: &str) -> Result<(), KindError> {
    if out.ends_with(".csv") {
        return Ok(());
    }
    Err(spec_err(
        spec_path,
        format!("`out` must be a `.csv` path, found `{out}`"),
    ))
}

/// Removes `key` from built-in params and returns it as a normal project path.
pub fn take_path(
    obj: &mut serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Result<String, KindError> {
    match obj.remove(key) {
        Some(serde_json::Value::String(s)) => normalize_path(&s)
            .map_err(|why| kind_err(format!("invalid path `{s}` in `{key}`: {why}"))),
        Some(other) => Err(kind_err(format!("`{key}` must be a path, found `{other}`"))),
        None => Err(kind_err(format!("missing param `{key}`"))),
    }
}

#[cfg(test)]
mod hint_tests {
    #[test]
    fn unknown_fields_get_the_closest_allowed_one() {
        let h = super::unknown_field_hint(
            "unknown field `kep`, expected one of title, data, name, keep, notes",
        );
        assert_eq!(h.as_deref(), Some("did you mean `keep`?"));
        let h = super::unknown_field_hint("unknown field `daat`, expected `data` or `name`");
        assert_eq!(h.as_deref(), Some("did you mean `data`?"));
        assert_eq!(
            super::unknown_field_hint("unknown field `zzzzzz`, expected `data`"),
            None
        );
    }
}
