//! User-facing errors and how they are rendered: the one place that formats what a user reads
//! when something goes wrong.
//!
//! Owns: the [`Diagnostic`] type (message, location, causes, hint), the [`Failure`] that carries one
//! or more of them with an exit code, and the text layout (`error:`, `  --> file:line:col`,
//! `caused by:`, `hint:`). Deliberately does not own: deciding what is an error (the modules that
//! detect problems build diagnostics) or printing progress.

use std::fmt::Write as _;
use std::path::PathBuf;

/// Process exit codes, as documented in the README.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    StageFailed = 1,
    Usage = 2,
}

/// A position in a source file, 1-based.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
}

/// One problem, as the user should read it.
#[derive(Clone, Debug, Default)]
pub struct Diagnostic {
    pub message: String,
    pub location: Option<Location>,
    /// Extra text shown verbatim under the location (a source excerpt with a caret).
    pub snippet: Option<String>,
    pub causes: Vec<String>,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            ..Diagnostic::default()
        }
    }

    pub fn at(mut self, location: Option<Location>) -> Self {
        self.location = location;
        self
    }

    pub fn cause(mut self, cause: impl Into<String>) -> Self {
        self.causes.push(cause.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn snippet(mut self, snippet: impl Into<String>) -> Self {
        self.snippet = Some(snippet.into());
        self
    }
}

/// The error type of every command: what went wrong and which exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub diagnostics: Vec<Diagnostic>,
}

impl Failure {
    /// A usage, pipeline or input error (exit code 2).
    pub fn usage(d: Diagnostic) -> Self {
        Failure {
            exit: Exit::Usage,
            diagnostics: vec![d],
        }
    }

    /// Several usage or pipeline errors reported together (exit code 2).
    pub fn usage_many(diagnostics: Vec<Diagnostic>) -> Self {
        Failure {
            exit: Exit::Usage,
            diagnostics,
        }
    }

    /// A stage or the environment failed while doing its work (exit code 1).
    pub fn stage(d: Diagnostic) -> Self {
        Failure {
            exit: Exit::StageFailed,
            diagnostics: vec![d],
        }
    }

    /// An IO problem outside any stage: reported with its cause, exit code 1.
    pub fn io(what: impl Into<String>, err: &std::io::Error) -> Self {
        Failure::stage(Diagnostic::new(what).cause(err.to_string()))
    }
}

impl From<Diagnostic> for Failure {
    fn from(d: Diagnostic) -> Self {
        Failure::usage(d)
    }
}

/// Renders diagnostics in the project's message style. Paths in locations are shown as given
/// (they are relative to the folder the user ran repro in whenever possible).
pub fn render(failure: &Failure) -> String {
    let mut out = String::new();
    for d in &failure.diagnostics {
        render_one(&mut out, d);
    }
    if failure.diagnostics.len() > 1 {
        let _ = writeln!(out, "error: {} problems found", failure.diagnostics.len());
    }
    out
}

/// Renders one diagnostic under another label (`warning`), for reports such as `repro lint`.
pub fn render_labelled(label: &str, d: &Diagnostic) -> String {
    let mut out = String::new();
    render_with(&mut out, label, d);
    out
}

fn render_one(out: &mut String, d: &Diagnostic) {
    render_with(out, "error", d);
}

fn render_with(out: &mut String, label: &str, d: &Diagnostic) {
    let _ = writeln!(out, "{label}: {}", d.message);
    if let Some(loc) = &d.location {
        let _ = writeln!(
            out,
            "  --> {}:{}:{}",
            loc.file.display(),
            loc.line,
            loc.column
        );
    }
    if let Some(snippet) = &d.snippet {
        for line in snippet.lines() {
            let _ = writeln!(out, "   | {line}");
        }
    }
    for c in &d.causes {
        let mut lines = c.lines();
        if let Some(first) = lines.next() {
            let _ = writeln!(out, "caused by: {first}");
        }
        for rest in lines {
            let _ = writeln!(out, "  {rest}");
        }
    }
    if let Some(h) = &d.hint {
        let _ = writeln!(out, "hint: {h}");
    }
}

/// `1 stage`, `2 stages`: a count with the word in the number it needs.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_error_location_cause_and_hint_in_order() {
        let d = Diagnostic::new("unknown key `cmdd` in stage `a`")
            .at(Some(Location {
                file: "pipeline.yaml".into(),
                line: 3,
                column: 5,
            }))
            .cause("expected one of `cmd`, `deps`")
            .hint("did you mean `cmd`?");
        let text = render(&Failure::usage(d));
        assert_eq!(
            text,
            "error: unknown key `cmdd` in stage `a`\n  --> pipeline.yaml:3:5\ncaused by: expected one of `cmd`, `deps`\nhint: did you mean `cmd`?\n"
        );
    }
}
