//! The one error type of the estimators crate.
//!
//! Owns: every failure a caller can trigger with bad data, a bad formula or bad options, each
//! variant carrying what a user needs to fix it (the column, the row, the position in the formula).
//! Deliberately does not own: warnings that do not stop an estimation (collinear variables
//! dropped, non-convergence); those travel as messages in [`crate::result::FitResult`].

use thiserror::Error;

/// Everything that can make an estimation fail.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EstimError {
    /// A formula, cluster or option names a column the frame does not have.
    #[error("unknown column `{name}`")]
    UnknownColumn { name: String },

    /// A text column is used where numbers are needed (outcome, regressor, instrument).
    /// `row` counts data rows from 1.
    #[error("column `{name}` is not numeric: row {row} holds `{value}`")]
    NonNumericColumn {
        name: String,
        row: usize,
        value: String,
    },

    /// The formula does not follow the grammar; `position` is a byte offset into `formula`.
    #[error("cannot parse formula at byte {position}: {message}")]
    FormulaParse {
        formula: String,
        position: usize,
        message: String,
    },

    /// Fewer usable observations than parameters to estimate.
    #[error("too few observations: {n} for {k} parameters")]
    TooFewObservations { n: usize, k: usize },

    /// Clustering needs at least two clusters.
    #[error("cluster variable `{name}` has a single level in the estimation sample")]
    SingleCluster { name: String },

    /// A quantile must lie strictly between 0 and 1.
    #[error("quantile `{tau}` is outside (0, 1)")]
    TauOutOfRange { tau: f64 },

    /// An IV model needs at least as many excluded instruments as endogenous regressors.
    #[error(
        "under-identified IV model: {endogenous} endogenous regressor(s) but only {instruments} usable excluded instrument(s)"
    )]
    UnderIdentified {
        endogenous: usize,
        instruments: usize,
    },

    /// Nothing is left to estimate on.
    #[error("no observations left: {reason}")]
    NoObservations { reason: String },

    /// Every regressor was dropped (collinear or absorbed by the fixed effects).
    #[error("no regressor left to estimate: {reason}")]
    NoRegressors { reason: String },

    /// A column pushed into a frame has a different length from the others.
    #[error("column `{name}` has {found} rows but the frame has {expected}")]
    ColumnLength {
        name: String,
        expected: usize,
        found: usize,
    },

    /// Two columns of a frame share a name.
    #[error("duplicate column `{name}`")]
    DuplicateColumn { name: String },

    /// A variance specification that cannot be understood, e.g. `cluster:` without a variable.
    #[error("invalid vcov `{spec}`: {message}")]
    InvalidVcov { spec: String, message: String },

    /// An option or argument outside its domain (the message names it and its value).
    #[error("invalid option: {message}")]
    InvalidOption { message: String },

    /// A numerical routine failed (singular system, failed decomposition).
    #[error("numerical failure: {message}")]
    Numerical { message: String },
}

impl EstimError {
    /// For a formula parse error, the formula with a caret under the offending byte, e.g.
    ///
    /// ```text
    /// y ~ x +
    ///        ^
    /// ```
    ///
    /// `None` for every other variant.
    pub fn caret(&self) -> Option<String> {
        let EstimError::FormulaParse {
            formula, position, ..
        } = self
        else {
            return None;
        };
        // Count characters, not bytes, so the caret lines up under multi-byte text.
        let column = formula
            .char_indices()
            .take_while(|(i, _)| i < position)
            .count();
        Some(format!("{formula}\n{}^", " ".repeat(column)))
    }
}
