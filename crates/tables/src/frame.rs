//! Data files as the estimators' frame: numbers as `f64`, everything else as text.
//!
//! Owns: converting a polars DataFrame into `repro_estimators::data::Frame`. Deliberately does not
//! own: reading files (`repro_tabular::dataio`) or estimating.

use std::path::Path;

use polars::prelude::*;
use repro_estimators::data::{Column as EColumn, Frame};
use repro_kind::Diagnostic;
use repro_tabular::dataio::read_frame;

/// Converts a polars DataFrame into the estimators' frame.
pub fn to_estimator_frame(df: &DataFrame) -> Result<Frame, Diagnostic> {
    let mut frame = Frame::new();
    for col in df.columns() {
        let name = col.name().to_string();
        let dtype = col.dtype();
        let converted = if dtype.is_primitive_numeric() || dtype.is_bool() {
            let cast = col
                .cast(&DataType::Float64)
                .map_err(|e| column_err(&name, e))?;
            let values = cast.f64().map_err(|e| column_err(&name, e))?;
            EColumn::Numeric(values.iter().collect())
        } else {
            let cast = col
                .cast(&DataType::String)
                .map_err(|e| column_err(&name, e))?;
            let values = cast.str().map_err(|e| column_err(&name, e))?;
            EColumn::Text(values.iter().map(|v| v.map(str::to_string)).collect())
        };
        frame
            .push(name, converted)
            .map_err(|e| Diagnostic::new(e.to_string()))?;
    }
    Ok(frame)
}

fn column_err(name: &str, e: PolarsError) -> Diagnostic {
    Diagnostic::new(format!("cannot convert column `{name}`")).cause(e.to_string())
}

/// Reads the named columns of a data file that it has into the estimators' frame; a name the
/// file lacks is left out, for the estimator to report with its place in the formula.
pub fn read_estimator_frame_columns(path: &Path, wanted: &[String]) -> Result<Frame, Diagnostic> {
    if let Some(frame) = read_plain_csv(path, Some(wanted))? {
        return Ok(frame);
    }
    to_estimator_frame(&repro_tabular::dataio::read_frame_present(path, wanted)?)
}

/// Reads a data file straight into the estimators' frame.
pub fn read_estimator_frame(path: &Path) -> Result<Frame, Diagnostic> {
    if let Some(frame) = read_plain_csv(path, None)? {
        return Ok(frame);
    }
    to_estimator_frame(&read_frame(path)?)
}

/// A CSV file of plain numbers without polars (`repro_tabular::numcsv`: the same values, in
/// one pass); `None` for any other file.
fn read_plain_csv(path: &Path, wanted: Option<&[String]>) -> Result<Option<Frame>, Diagnostic> {
    if repro_tabular::dataio::format_of(path).ok() != Some(repro_tabular::dataio::Format::Csv) {
        return Ok(None);
    }
    let Some(columns) = repro_tabular::numcsv::read_plain_numeric(path, wanted) else {
        return Ok(None);
    };
    let mut frame = Frame::new();
    for c in columns {
        frame
            .push(c.name, EColumn::Numeric(c.values))
            .map_err(|e| Diagnostic::new(e.to_string()))?;
    }
    Ok(Some(frame))
}
