//! Reading tabular data files: CSV and Parquet, whole, some columns, or a slice of rows.
//!
//! Owns: loading CSV and Parquet through polars' lazy engine with errors that name the file.
//! Deliberately does not own: converting columns for the estimators (`repro-tables`), or writing
//! files (`table`).

use std::path::Path;

use polars::prelude::*;

use repro_kind::Diagnostic;

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

/// Reads those of `wanted` that the file has (in the file's order), skipping every other column;
/// absent names are the caller's to report.
pub fn read_frame_present(path: &Path, wanted: &[String]) -> Result<DataFrame, Diagnostic> {
    let names = column_names(path)?;
    let present: Vec<&str> = names
        .iter()
        .filter(|n| wanted.contains(n))
        .map(String::as_str)
        .collect();
    read_frame_part(path, Some(&present), None)
}

/// The header of a data file.
pub fn column_names(path: &Path) -> Result<Vec<String>, Diagnostic> {
    let mut lf = scan(path)?;
    let schema = lf.collect_schema().map_err(|e| cannot_read(path, e))?;
    Ok(schema.iter_names().map(|n| n.to_string()).collect())
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
    let cannot = |e: PolarsError| cannot_read(path, e);
    let mut lf = scan(path)?;
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

/// Rows per batch when a Parquet file is read a batch of row groups at a time: large enough that
/// the per-read overhead (a scan of the footer) is small, small enough that the batch's polars
/// columns are a fraction of the finished table.
const ROW_GROUP_BATCH_ROWS: usize = 1 << 20;

/// The row counts of a Parquet file's row groups, gathered into consecutive batches of at least
/// [`ROW_GROUP_BATCH_ROWS`] rows (the last may be smaller): each batch starts on a row-group
/// boundary, so reading it decodes no row group twice.
pub fn parquet_batches(path: &Path) -> Result<Vec<usize>, Diagnostic> {
    parquet_batches_of(path, ROW_GROUP_BATCH_ROWS)
}

/// [`parquet_batches`] with batches of at least `min_rows` rows.
pub fn parquet_batches_of(path: &Path, min_rows: usize) -> Result<Vec<usize>, Diagnostic> {
    let file = std::fs::File::open(path).map_err(|e| {
        Diagnostic::new(format!("cannot read data file `{}`", path.display())).cause(e.to_string())
    })?;
    let mut reader = ParquetReader::new(file);
    let metadata = reader.get_metadata().map_err(|e| cannot_read(path, e))?;
    let mut batches = Vec::new();
    let mut open = 0;
    for group in &metadata.row_groups {
        open += group.num_rows();
        if open >= min_rows.max(1) {
            batches.push(std::mem::take(&mut open));
        }
    }
    if open > 0 {
        batches.push(open);
    }
    Ok(batches)
}

/// Reads the named columns of a Parquet file batch by batch (`batches`, the file's
/// [`parquet_batches`], read once by the caller), handing each
/// batch to `each` in file order, so that a large table is never held whole as polars columns
/// while the caller converts it. The next batch is decoded while `each` runs on the current one
/// (two batches in memory at most). The columns must exist (see [`read_frame_present`]).
pub fn for_each_parquet_batch(
    path: &Path,
    columns: &[&str],
    batches: &[usize],
    mut each: impl FnMut(DataFrame) -> Result<(), Diagnostic>,
) -> Result<(), Diagnostic> {
    let mut spans = Vec::new();
    let mut offset = 0;
    for &len in batches {
        spans.push((offset, len));
        offset += len;
    }
    let read = |(offset, len): (usize, usize)| read_frame_slice(path, columns, offset, len);
    std::thread::scope(|scope| {
        let mut spans = spans.into_iter();
        let mut pending = spans.next().map(|span| scope.spawn(move || read(span)));
        while let Some(reading) = pending.take() {
            let batch = reading.join().map_err(|_| {
                Diagnostic::new(format!("cannot read data file `{}`", path.display()))
                    .cause("the Parquet reader panicked")
            })??;
            pending = spans.next().map(|span| scope.spawn(move || read(span)));
            each(batch)?;
        }
        Ok(())
    })
}

/// Reads the named columns of a data file in batches of at least `min_rows` rows, handing each
/// to `each` with the row it starts at; the number of rows read. A Parquet file is read batch by
/// batch as in [`for_each_parquet_batch`] (row-group boundaries, the next batch decoded while
/// `each` runs); any other file is one batch.
pub fn for_each_batch(
    path: &Path,
    columns: &[&str],
    min_rows: usize,
    mut each: impl FnMut(usize, DataFrame) -> Result<(), Diagnostic>,
) -> Result<usize, Diagnostic> {
    let mut offset = 0;
    if format_of(path)? == Format::Parquet {
        let batches = parquet_batches_of(path, min_rows)?;
        for_each_parquet_batch(path, columns, &batches, |df| {
            let height = df.height();
            each(offset, df)?;
            offset += height;
            Ok(())
        })?;
    } else {
        let df = read_frame_columns(path, Some(columns))?;
        offset = df.height();
        each(0, df)?;
    }
    Ok(offset)
}

/// The column types of a data file, in the file's order (from the header; CSV types inferred).
pub fn column_types(path: &Path) -> Result<Vec<(String, DataType)>, Diagnostic> {
    let mut lf = scan(path)?;
    let schema = lf.collect_schema().map_err(|e| cannot_read(path, e))?;
    Ok(schema
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect())
}

/// The number of rows of a data file read as `format` whatever its name (a cache object has
/// none): Parquet from its metadata, CSV by a scan that keeps no column.
pub fn row_count(path: &Path, format: Format) -> Result<usize, Diagnostic> {
    let df = scan_as(path, format)?
        .select([len()])
        .collect()
        .map_err(|e| cannot_read(path, e))?;
    let n = df
        .columns()
        .first()
        .and_then(|c| c.get(0).ok())
        .and_then(|v| v.extract::<u64>());
    n.map(|n| n as usize)
        .ok_or_else(|| Diagnostic::new(format!("cannot count the rows of `{}`", path.display())))
}

/// A lazy scan of a data file; a path that is missing or a folder is an error naming it.
fn scan(path: &Path) -> Result<LazyFrame, Diagnostic> {
    scan_as(path, format_of(path)?)
}

fn scan_as(path: &Path, format: Format) -> Result<LazyFrame, Diagnostic> {
    if path.is_dir() {
        return Err(Diagnostic::new(format!(
            "cannot read data file `{}`: it is a folder, not a file",
            path.display()
        ))
        .hint("name a `.csv` or `.parquet` file inside it"));
    }
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
    lf.map_err(|e| cannot_read(path, e))
}

/// `cannot read data file `F``, caused by polars' error in repro's words: polars' own advice
/// (`Consider setting 'truncate_ragged_lines=true'`) names options of its Python API that repro
/// users cannot set, so only its first line is kept, with a hint of ours where we know one.
fn cannot_read(path: &Path, e: PolarsError) -> Diagnostic {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default().trim().to_string();
    let d = Diagnostic::new(format!("cannot read data file `{}`", path.display()));
    if first.contains("found more fields than defined in 'Schema'") {
        return d
            .cause("a row has more fields than the header")
            .hint("check the file for an unquoted comma or a missing header column");
    }
    d.cause(first)
}
