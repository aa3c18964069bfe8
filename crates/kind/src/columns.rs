//! Columns known before anything runs, so a misspelt variable is reported when the pipeline
//! loads rather than when its stage runs.
//!
//! Owns: what the engine tells a stage about a data file it reads ([`Known`]: columns declared
//! by the built-in stage that writes it, a source file on disk, or unknown), the variables a
//! stage reads with their places in its spec ([`Read`]), and the error for each variable a
//! known file lacks, with "did you mean". Deliberately does not own: reading a file's header
//! (the kinds do it, with their data readers) or finding which stage writes a file (the engine).

use std::path::Path;

use crate::diag::{Diagnostic, Location};

/// What is known, before anything runs, of the columns of a file a stage reads.
#[derive(Debug, Clone, Copy)]
pub enum Known<'a> {
    /// Written by built-in stage `stage`, whose spec declares these columns.
    Declared {
        stage: &'a str,
        columns: &'a [String],
    },
    /// No stage writes the file: it is a source, and its header on disk is its columns.
    Source,
    /// Written by a command stage or a kind that declares nothing: known once it has run.
    Unknown,
}

/// What `BuiltinStage::check_columns` is handed.
pub struct ColumnsCtx<'a> {
    pub root: &'a Path,
    /// What is known of the columns of a project path.
    pub known: &'a dyn Fn(&str) -> Known<'a>,
}

/// One variable a stage reads from a data file, and where its spec says so.
#[derive(Debug, Clone)]
pub struct Read {
    pub variable: String,
    /// Where it is read, for the message: `the formula of model `a``, `` `vcov` ``.
    pub role: String,
    pub location: Option<Location>,
}

/// One error per read variable that `columns` lacks (each variable and place once), with the
/// closest column as a suggestion. `file` is the data file and `origin` says where its columns
/// come from (`according to its header`).
pub fn check(file: &str, origin: &str, columns: &[String], reads: &[Read]) -> Vec<Diagnostic> {
    let names: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut out: Vec<Diagnostic> = Vec::new();
    let mut seen: Vec<(&str, &Option<Location>)> = Vec::new();
    for r in reads {
        if names.contains(&r.variable.as_str())
            || seen.contains(&(r.variable.as_str(), &r.location))
        {
            continue;
        }
        seen.push((r.variable.as_str(), &r.location));
        let d = Diagnostic::new(format!("unknown variable `{}` in {}", r.variable, r.role))
            .at(r.location.clone())
            .cause(format!("`{file}` has no column `{}`, {origin}", r.variable));
        out.push(match crate::suggest::closest(&r.variable, &names) {
            Some(s) => d.hint(format!("did you mean `{s}`?")),
            None => d.hint(format!("`{file}` has {}", list(&names))),
        });
    }
    out
}

/// The columns, or their count and the first few when there are many.
fn list(names: &[&str]) -> String {
    const SHOWN: usize = 12;
    let shown: Vec<String> = names.iter().take(SHOWN).map(|n| format!("`{n}`")).collect();
    match names.len() {
        0 => "no columns".to_string(),
        n if n <= SHOWN => format!("columns {}", shown.join(", ")),
        n => format!("{n} columns: {}, ...", shown.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(v: &str, line: u64) -> Read {
        Read {
            variable: v.into(),
            role: "the formula of model `a`".into(),
            location: Some(Location {
                file: "s.yaml".into(),
                line,
                column: 14,
            }),
        }
    }

    #[test]
    fn every_unknown_variable_once_with_a_suggestion() {
        let cols: Vec<String> = ["gap", "collab", "city", "year"].map(String::from).to_vec();
        let reads = [
            read("gap", 3),
            read("colab", 3),
            read("colab", 3),
            read("yaer", 4),
            read("zzzzzz", 5),
        ];
        let d = check("panel.parquet", "according to its header", &cols, &reads);
        assert_eq!(d.len(), 3);
        assert_eq!(
            d[0].message,
            "unknown variable `colab` in the formula of model `a`"
        );
        assert_eq!(d[0].hint.as_deref(), Some("did you mean `collab`?"));
        assert_eq!(d[1].hint.as_deref(), Some("did you mean `year`?"));
        assert_eq!(
            d[2].hint.as_deref(),
            Some("`panel.parquet` has columns `gap`, `collab`, `city`, `year`")
        );
    }
}
