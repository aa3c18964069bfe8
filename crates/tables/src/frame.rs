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

/// A numeric column as `f64` values, NaN for nulls, in one allocation.
fn dense_f64(col: Column) -> PolarsResult<Vec<f64>> {
    let mut out = Vec::with_capacity(col.len());
    append_dense_f64(&mut out, col)?;
    Ok(out)
}

/// Appends a numeric column's values to `out` as `f64`, NaN for nulls: 64-bit integers (ids,
/// years) are converted chunk by chunk rather than through a cast to a second polars column.
fn append_dense_f64(out: &mut Vec<f64>, col: Column) -> PolarsResult<()> {
    if let Ok(ints) = col.i64() {
        for arr in ints.downcast_iter() {
            match arr.validity() {
                None => out.extend(arr.values().iter().map(|&x| x as f64)),
                Some(_) => out.extend(arr.iter().map(|v| v.map_or(f64::NAN, |&x| x as f64))),
            }
        }
        return Ok(());
    }
    let cast = col.cast(&DataType::Float64)?;
    for arr in cast.f64()?.downcast_iter() {
        match arr.validity() {
            None => out.extend_from_slice(arr.values()),
            Some(_) => out.extend(arr.iter().map(|v| v.map_or(f64::NAN, |&x| x))),
        }
    }
    Ok(())
}

/// A Parquet file whose wanted columns are all numbers, read a batch of row groups at a time
/// straight into the frame's dense columns (the columns of one batch converted in parallel);
/// `None` for any other file. Holding only one batch as polars columns halves the memory a
/// large panel first touches, which on 10M rows was a quarter of `repro fit`'s time (kernel
/// page clearing, issue 20).
fn read_numeric_parquet(
    path: &Path,
    wanted: Option<&[String]>,
) -> Result<Option<Frame>, Diagnostic> {
    use rayon::prelude::*;
    use repro_tabular::dataio::{
        column_types, for_each_parquet_batch, format_of, parquet_batches, Format,
    };
    if format_of(path).ok() != Some(Format::Parquet) {
        return Ok(None);
    }
    let present: Vec<(String, DataType)> = column_types(path)?
        .into_iter()
        .filter(|(n, _)| wanted.is_none_or(|w| w.contains(n)))
        .collect();
    if present
        .iter()
        .any(|(_, t)| !(t.is_primitive_numeric() || t.is_bool()))
    {
        return Ok(None);
    }
    let names: Vec<&str> = present.iter().map(|(n, _)| n.as_str()).collect();
    let batches = parquet_batches(path)?;
    let rows: usize = batches.iter().sum();
    let mut columns: Vec<Vec<f64>> = names.iter().map(|_| Vec::with_capacity(rows)).collect();
    for_each_parquet_batch(path, &names, &batches, |batch| {
        columns
            .par_iter_mut()
            .zip(batch.into_columns())
            .zip(&names)
            .try_for_each(|((out, col), name)| {
                append_dense_f64(out, col).map_err(|e| column_err(name, e))
            })
    })?;
    let mut frame = Frame::new();
    for (name, values) in names.iter().zip(columns) {
        frame
            .push(*name, EColumn::Float(values))
            .map_err(|e| Diagnostic::new(e.to_string()))?;
    }
    Ok(Some(frame))
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
    if let Some(frame) = read_numeric_parquet(path, Some(wanted))? {
        return Ok(frame);
    }
    to_estimator_frame(repro_tabular::dataio::read_frame_present(path, wanted)?)
}

/// Reads a data file straight into the estimators' frame.
pub fn read_estimator_frame(path: &Path) -> Result<Frame, Diagnostic> {
    if let Some(frame) = read_plain_csv(path, None)? {
        return Ok(frame);
    }
    if let Some(frame) = read_numeric_parquet(path, None)? {
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

    /// Several batches of several row groups each, with nulls in integer and float columns:
    /// the batch reader gives exactly what polars' whole-file read and the conversion give.
    #[test]
    fn batched_parquet_read_equals_the_whole_file_read() {
        let n = 2_500_000usize;
        let mut df = df!(
            "id" => (0..n).map(|i| (i % 7 != 3).then_some(i as i64 * 3 - 7)).collect::<Vec<_>>(),
            "x" => (0..n).map(|i| (i % 11 != 5).then_some((i as f64).sqrt() - 40.0)).collect::<Vec<_>>(),
            "flag" => (0..n).map(|i| i % 3 == 0).collect::<Vec<_>>(),
            "small" => (0..n).map(|i| (i % 1000) as i32).collect::<Vec<_>>(),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let file = std::fs::File::create(&path).unwrap();
        ParquetWriter::new(file)
            .with_row_group_size(Some(250_000))
            .finish(&mut df)
            .unwrap();
        assert_eq!(
            repro_tabular::dataio::parquet_batches(&path).unwrap(),
            vec![1_250_000, 1_250_000]
        );
        let whole = to_estimator_frame(read_frame(&path).unwrap()).unwrap();
        let batched = read_numeric_parquet(&path, None).unwrap().unwrap();
        assert_eq!(batched.names(), whole.names());
        for name in whole.names() {
            let (Some(EColumn::Float(a)), Some(EColumn::Float(b))) =
                (batched.column(name), whole.column(name))
            else {
                panic!("`{name}` is not dense");
            };
            let same =
                a.len() == b.len() && a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits());
            assert!(same, "`{name}` differs");
        }
        let wanted = vec!["small".to_string(), "id".to_string()];
        let some = read_estimator_frame_columns(&path, &wanted).unwrap();
        assert_eq!(some.names(), ["id", "small"]);
    }

    #[test]
    fn a_parquet_file_with_text_is_read_whole() {
        let mut df = df!("id" => [1i64, 2], "name" => ["a", "b"]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .finish(&mut df)
            .unwrap();
        assert!(read_numeric_parquet(&path, None).unwrap().is_none());
        let frame = read_estimator_frame(&path).unwrap();
        assert!(matches!(frame.column("name"), Some(EColumn::Text(_))));
    }
}
