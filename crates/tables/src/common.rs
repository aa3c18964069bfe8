//! What the table kinds (`models`, `describe`, `quantiles`) share: their `spec:` param, spec
//! paths and places, `{set}` expansion, output names, and writing tables and result JSON.
//!
//! Owns: helpers used by more than one table kind, so no kind reaches into another for them.
//! Deliberately does not own: any kind's spec or its run.

use indexmap::IndexMap;
use repro_kind::diag::{Diagnostic, Location};
use repro_kind::range::IntRange;
use repro_kind::{BuiltinCtx, ImpliedIo, KindError};

use crate::table::Table;

/// The `spec` path of a spec-file kind's params (`params: {spec: stages/x.yaml}`), normalised.
pub fn spec_param(params: serde_json::Value) -> Result<String, KindError> {
    let serde_json::Value::Object(mut obj) = params else {
        return Err(repro_kind::kind_err(
            "`params` must be a mapping `{spec: PATH}`",
        ));
    };
    let path = repro_kind::take_path(&mut obj, "spec")?;
    if let Some(extra) = obj.keys().next() {
        return Err(KindError {
            hint: Some("the settings of this kind live in its spec file".into()),
            ..repro_kind::kind_err(format!("unknown param `{extra}`; expected only `spec`"))
        });
    }
    Ok(path)
}

/// A path of a spec file, normalised; absolute paths and `..` are errors.
pub fn spec_path(key: &str, path: &str) -> Result<String, KindError> {
    repro_kind::normalize_path(path)
        .map_err(|why| repro_kind::kind_err(format!("invalid path `{path}` in `{key}`: {why}")))
}

pub fn to_location(file: &str, at: &serde_saphyr::Location) -> Location {
    Location {
        file: file.into(),
        line: at.line(),
        column: at.column(),
    }
}

/// Replaces each `{set}` in `formula` by its variables joined with `+`; returns the sets used.
pub fn expand_sets(
    formula: &str,
    sets: &IndexMap<String, Vec<String>>,
) -> Result<(String, Vec<String>), String> {
    let mut out = String::new();
    let mut used = Vec::new();
    let mut rest = formula;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in formula `{formula}`"))?;
        let name = after[..close].trim();
        let vars = sets.get(name).ok_or_else(|| {
            let known: Vec<String> = sets.keys().map(|k| format!("`{k}`")).collect();
            format!(
                "unknown set `{name}` in formula `{formula}`{}",
                if known.is_empty() {
                    "; the spec declares no `sets`".to_string()
                } else {
                    format!("; sets: {}", known.join(", "))
                }
            )
        })?;
        if vars.is_empty() {
            return Err(format!("set `{name}` is empty"));
        }
        out.push_str(&vars.join(" + "));
        if !used.iter().any(|u| u == name) {
            used.push(name.to_string());
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok((out, used))
}

/// `digits` of a table: beyond 12 decimals a double's digits are noise (and the formatter's own
/// limit is 65,535).
pub const DIGITS: IntRange = IntRange {
    field: "`digits`",
    min: 0,
    max: 12,
};

/// Replications of a permutation test or a bootstrap: one million already pins a p-value or a
/// standard error to about 0.001 of itself; more only costs hours (and 10^14 tried to allocate
/// 800 TB).
pub const REPLICATIONS: IntRange = IntRange {
    field: "`reps`",
    min: 1,
    max: 1_000_000,
};

/// How a table prints its results, recorded in each result JSON (`produced_by.printed`) so that
/// `repro diff` can tell a change that only moves the last printed digit, and a change of stars,
/// without the spec file of the other state.
pub fn printed(digits: usize, stars: &crate::stars::Stars) -> serde_json::Value {
    serde_json::json!({"digits": digits, "stars": stars.levels()})
}

/// The default `digits` of a table.
pub fn default_digits() -> usize {
    3
}

/// `deserialize_with` for `digits`: checked against [`DIGITS`] where the spec file says it.
pub fn digits<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    repro_kind::range::int(d, &DIGITS)
}

/// `deserialize_with` for a quantile `se` (`iid`, `nid`, `ker`, `bootstrap:REPS:SEED`): parsed
/// where the spec file says it, so a bad one (e.g. too many replications) names its line.
pub fn quantile_se<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::de::{Deserialize, Error};
    let s = Option::<String>::deserialize(d)?;
    if let Some(text) = &s {
        text.parse::<repro_estimators::fit::QuantileSe>()
            .map_err(|e| D::Error::custom(e.to_string()))?;
    }
    Ok(s)
}

/// The `name` of a table kind names its output files: letters, digits, `_` and `-` only.
pub fn check_name(name: &str) -> Result<(), KindError> {
    if is_simple_name(name) {
        return Ok(());
    }
    Err(repro_kind::kind_err(format!(
        "`name` `{name}` must be letters, digits, `_` or `-` (it names the output files)"
    )))
}

pub fn is_simple_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// What a table kind reads (its spec file and data) and writes (table `name` in every format,
/// then `extra`).
pub fn table_io(spec: &str, data: &str, name: &str, extra: Vec<String>) -> ImpliedIo {
    let mut outs = table_outputs(name);
    outs.extend(extra);
    ImpliedIo {
        deps: vec![spec.to_string(), data.to_string()],
        outs,
    }
}

/// The files of table `name` in every format.
pub fn table_outputs(name: &str) -> Vec<String> {
    ["tex", "md", "html", "csv"]
        .iter()
        .map(|ext| format!("output/tables/{name}.{ext}"))
        .collect()
}

/// `stage `x` failed`, with the problem as its first cause (location and hint kept).
pub fn stage_failed(ctx: &BuiltinCtx<'_>, d: Diagnostic) -> Diagnostic {
    repro_kind::stage_failed(ctx.stage, d)
}

/// The four renderings of a table, keyed by file extension.
pub fn renderings(table: &Table) -> [(&'static str, String); 4] {
    [
        ("tex", crate::latex::to_latex(table)),
        ("md", table.to_markdown()),
        ("html", table.to_html()),
        ("csv", table.to_csv()),
    ]
}

/// Writes `output/tables/<name>.{tex,md,html,csv}`.
pub fn write_table(ctx: &BuiltinCtx<'_>, name: &str, table: &Table) -> Result<(), Diagnostic> {
    for (ext, text) in renderings(table) {
        let rel = format!("output/tables/{name}.{ext}");
        repro_kind::write_output(ctx.root, &rel, text.as_bytes())
            .map_err(|e| Diagnostic::new(format!("cannot write `{rel}`")).cause(e.to_string()))?;
    }
    Ok(())
}

pub fn write_json(
    ctx: &BuiltinCtx<'_>,
    rel: &str,
    v: &serde_json::Value,
) -> Result<(), Diagnostic> {
    let mut text = serde_json::to_string_pretty(v).unwrap_or_default();
    text.push('\n');
    repro_kind::write_output(ctx.root, rel, text.as_bytes())
        .map_err(|e| Diagnostic::new(format!("cannot write `{rel}`")).cause(e.to_string()))
}
