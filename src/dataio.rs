//! Reading tabular data files into the estimators' plain columns.
//!
//! Owns: loading CSV and Parquet through polars' lazy engine and converting the columns into
//! `repro_estimators::data::Frame` (numbers as `f64`, everything else as text). Deliberately does
//! not own: any estimation, or writing files.

use std::path::Path;

use polars::prelude::*;
use repro_estimators::data::{Column as EColumn, Frame};

use crate::diag::Diagnostic;

/// The formats we read, by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
}

pub fn format_of(path: &Path) -> Result<Format, Diagnostic> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "csv" => Ok(Format::Csv),
        "parquet" | "pq" => Ok(Format::Parquet),
        _ => Err(Diagnostic::new(format!(
            "cannot read `{}`: unknown file type `{ext}`",
            path.display()
        ))
        .hint("use a `.csv` or `.parquet` file")),
    }
}

/// Reads the whole file (all columns) into a polars DataFrame.
pub fn read_frame(path: &Path) -> Result<DataFrame, Diagnostic> {
    read_frame_columns(path, None)
}

/// Reads the named columns only (all when `None`): the scan skips the others, which matters for
/// wide files of millions of rows. A missing column is reported with the columns found.
pub fn read_frame_columns(path: &Path, columns: Option<&[&str]>) -> Result<DataFrame, Diagnostic> {
    read_frame_part(path, columns, None)
}

/// `read_frame_columns` for `len` rows from row `offset` (fewer at the end of the file). A
/// Parquet scan reads only the row groups it needs; a CSV scan reads from the start each time,
/// so slices of large tables should be Parquet.
pub fn read_frame_slice(
    path: &Path,
    columns: &[&str],
    offset: usize,
    len: usize,
) -> Result<DataFrame, Diagnostic> {
    read_frame_part(path, Some(columns), Some((offset, len)))
}

fn read_frame_part(
    path: &Path,
    columns: Option<&[&str]>,
    slice: Option<(usize, usize)>,
) -> Result<DataFrame, Diagnostic> {
    let format = format_of(path)?;
    if !path.exists() {
        return Err(Diagnostic::new(format!(
            "data file `{}` does not exist",
            path.display()
        )));
    }
    let name = path.to_string_lossy().to_string();
    let lf = match format {
        Format::Csv => LazyCsvReader::new(PlRefPath::from(name.as_str()))
            .with_infer_schema_length(Some(100_000))
            .with_has_header(true)
            .finish(),
        Format::Parquet => {
            LazyFrame::scan_parquet(PlRefPath::from(name.as_str()), ScanArgsParquet::default())
        }
    };
    let cannot = |e: PolarsError| {
        Diagnostic::new(format!("cannot read data file `{}`", path.display())).cause(e.to_string())
    };
    let mut lf = lf.map_err(cannot)?;
    if let Some(cols) = columns {
        let schema = lf.collect_schema().map_err(cannot)?;
        if let Some(missing) = cols.iter().find(|c| schema.get(c).is_none()) {
            let found: Vec<String> = schema.iter_names().map(|n| format!("`{n}`")).collect();
            return Err(
                Diagnostic::new(format!("`{}` has no column `{missing}`", path.display()))
                    .cause(format!("columns found: {}", found.join(", "))),
            );
        }
        lf = lf.select(cols.iter().map(|c| col(*c)).collect::<Vec<_>>());
    }
    if let Some((offset, len)) = slice {
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        lf = lf.slice(offset, IdxSize::try_from(len).unwrap_or(IdxSize::MAX));
    }
    lf.collect().map_err(cannot)
}

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

/// Reads a data file straight into the estimators' frame.
pub fn read_estimator_frame(path: &Path) -> Result<Frame, Diagnostic> {
    to_estimator_frame(&read_frame(path)?)
}
