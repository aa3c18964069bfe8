//! The collector of pipeline problems: every check reports here, with its place, so that one
//! load reports every problem at once.
//!
//! Owns: [`Cx`] (the file, the root, the registry of kinds, the params files read so far, the
//! diagnostics) and its primitives for placing and wording an error. Deliberately does not own:
//! what is checked (`parse`, `graph`).

use std::collections::HashMap;
use std::path::PathBuf;

use repro_kind::diag::{Diagnostic, Location};
use repro_kind::suggest::closest;
use repro_kind::KindRegistry;

use crate::params::Param;
use crate::yaml::{Key, Pos};

pub(super) struct Cx<'k> {
    pub(super) file: PathBuf,
    /// The text of `file`, to place words within its values (`repro_kind::spot`).
    pub(super) text: String,
    pub(super) root: PathBuf,
    pub(super) kinds: &'k dyn KindRegistry,
    pub(super) diags: Vec<Diagnostic>,
    pub(super) params_files: HashMap<String, Option<Param>>,
    /// The folder (relative to the root) the stage being read resolves its paths from: its
    /// `wdir`, or the folder of a nested `dvc.yaml` (`dvc`).
    pub(super) base: String,
    /// Generated stage name -> the `foreach`/`matrix` stage it came from (`template`).
    pub(super) groups: HashMap<String, String>,
    /// Stages left out of the graph because their definition has errors (already reported);
    /// what they would output is unknown, so no exhibit is reported as unproduced.
    pub(super) dropped_stages: usize,
    /// Params files named but not there (project-relative path, where first named): an error
    /// once every stage is read, unless a stage writes the file.
    pub(super) missing_params: Vec<(String, Location)>,
    /// What is known of the folders holding outputs, for the symbolic-link check (`links`).
    pub(super) links: super::links::Links,
}

impl Cx<'_> {
    pub(super) fn loc(&self, pos: Pos) -> Location {
        Location {
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
        }
    }

    pub(super) fn error(&mut self, pos: Pos, message: String) -> &mut Diagnostic {
        let d = Diagnostic::new(message).at(Some(self.loc(pos)));
        self.diags.push(d);
        self.diags.last_mut().expect("just pushed")
    }

    pub(super) fn unknown_key(&mut self, key: &Key, context: &str, allowed: &[&str]) {
        let list: Vec<String> = allowed.iter().map(|k| format!("`{k}`")).collect();
        let suggestion = closest(&key.name, allowed);
        let d = self
            .error(key.pos, format!("unknown key `{}` {context}", key.name))
            .clone()
            .cause(format!("expected one of {}", list.join(", ")));
        let d = match suggestion {
            Some(s) => d.hint(format!("did you mean `{s}`?")),
            None => d,
        };
        *self.diags.last_mut().expect("just pushed") = d;
    }
}
