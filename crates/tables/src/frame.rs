//! Data files as the estimators' frame: numbers as `f64`, everything else as text.
//!
//! Owns: converting a polars DataFrame into `repro_estimators::data::Frame` (numbers as dense
//! `f64` columns). Deliberately does not
//! own: reading files (`repro_tabular::dataio`) or estimating.

use std::path::Path;

use polars::prelude::*;
use repro_estimators::data::{Column as EColumn, Frame};
use repro_kind::Diagnostic;
use repro_tabular::dataio::read_frame;

/// Converts a polars DataFrame into the estimators' frame. Numbers become dense `f64` columns
/// (a null becomes NaN, which the estimators treat as missing). Each polars column is dropped as
/// soon as it is converted, so a large table is never held twice over.
pub fn to_estimator_frame(df: DataFrame) -> Result<Frame, Diagnostic> {
    let mut frame = Frame::new();
    for col in df.into_columns() {
        let name = col.name().to_string();
        let dtype = col.dtype();
        let converted = if dtype.is_primitive_numeric() || dtype.is_bool() {
            EColumn::Float(dense_f64(col).map_err(|e| column_err(&name, e))?)
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

/// A numeric column as `f64` values, NaN for nulls, in one allocation: 64-bit integers (ids,
/// years) are converted chunk by chunk rather than through a cast to a second polars column.
fn dense_f64(col: Column) -> PolarsResult<Vec<f64>> {
    let mut out = Vec::with_capacity(col.len());
    if let Ok(ints) = col.i64() {
        for arr in ints.downcast_iter() {
            match arr.validity() {
                None => out.extend(arr.values().iter().map(|&x| x as f64)),
                Some(_) => out.extend(arr.iter().map(|v| v.map_or(f64::NAN, |&x| x as f64))),
            }
        }
        return Ok(out);
    }
    let cast = col.cast(&DataType::Float64)?;
    for arr in cast.f64()?.downcast_iter() {
        match arr.validity() {
            None => out.extend_from_slice(arr.values()),
            Some(_) => out.extend(arr.iter().map(|v| v.map_or(f64::NAN, |&x| x))),
        }
    }
    Ok(out)
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
    to_estimator_frame(repro_tabular::dataio::read_frame_present(path, wanted)?)
}

/// Reads a data file straight into the estimators' frame.
pub fn read_estimator_frame(path: &Path) -> Result<Frame, Diagnostic> {
    if let Some(frame) = read_plain_csv(path, None)? {
        return Ok(frame);
    }
    to_estimator_frame(read_frame(path)?)
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
        // Dense, as `to_estimator_frame` gives a file's numbers: NaN marks a missing cell.
        let dense = c
            .values
            .into_iter()
            .map(|v| v.unwrap_or(f64::NAN))
            .collect();
        frame
            .push(c.name, EColumn::Float(dense))
            .map_err(|e| Diagnostic::new(e.to_string()))?;
    }
    Ok(Some(frame))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_become_dense_with_nulls_as_missing() {
        let df = df!(
            "id" => [Some(3i64), None, Some(-1)],
            "x" => [Some(0.5f64), Some(f64::INFINITY), None],
            "small" => [1i32, 2, 3],
            "name" => ["a", "b", "c"],
        )
        .unwrap();
        let frame = to_estimator_frame(df).unwrap();
        let Some(EColumn::Float(id)) = frame.column("id") else {
            panic!("id is not dense")
        };
        assert_eq!((id[0], id[2]), (3.0, -1.0));
        assert!(id[1].is_nan());
        let x = frame.column("x").unwrap();
        assert!(!x.is_missing(0) && x.is_missing(1) && x.is_missing(2));
        assert_eq!(
            frame.column("small"),
            Some(&EColumn::Float(vec![1.0, 2.0, 3.0]))
        );
        assert!(matches!(frame.column("name"), Some(EColumn::Text(_))));
    }
}
