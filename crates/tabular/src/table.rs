//! Output tables of the data stages: typed columns written as CSV and Parquet.
//!
//! Owns: a small column-oriented table (integers, floats, text, each with missing values), its
//! CSV text (shortest round-trip floats, blank for missing, RFC 4180 quoting) and its Parquet
//! file (through polars), both byte-for-byte deterministic, and reading typed columns back out of
//! a polars DataFrame with clear errors. Deliberately does not own: what the columns mean.

use std::path::Path;

use polars::prelude::*;

use repro_kind::Diagnostic;

#[derive(Debug, Clone)]
pub enum Col {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
}

impl Col {
    fn len(&self) -> usize {
        match self {
            Col::Int(v) => v.len(),
            Col::Float(v) => v.len(),
            Col::Text(v) => v.len(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Table {
    pub names: Vec<String>,
    pub cols: Vec<Col>,
}

impl Table {
    pub fn push(&mut self, name: &str, col: Col) {
        debug_assert!(self.cols.is_empty() || self.cols[0].len() == col.len());
        self.names.push(name.to_string());
        self.cols.push(col);
    }

    pub fn nrows(&self) -> usize {
        self.cols.first().map(Col::len).unwrap_or(0)
    }

    pub fn to_csv(&self) -> String {
        let mut out = String::with_capacity(self.nrows() * self.cols.len() * 8 + 64);
        for (k, n) in self.names.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            push_field(&mut out, n);
        }
        out.push('\n');
        for r in 0..self.nrows() {
            for (k, c) in self.cols.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                match c {
                    Col::Int(v) => {
                        if let Some(x) = v[r] {
                            out.push_str(&x.to_string());
                        }
                    }
                    Col::Float(v) => {
                        if let Some(x) = v[r].filter(|x| x.is_finite()) {
                            out.push_str(&fmt_f(x));
                        }
                    }
                    Col::Text(v) => {
                        if let Some(s) = &v[r] {
                            push_field(&mut out, s);
                        }
                    }
                }
            }
            out.push('\n');
        }
        out
    }

    pub fn to_polars(&self) -> Result<DataFrame, Diagnostic> {
        let columns: Vec<Column> = self
            .names
            .iter()
            .zip(&self.cols)
            .map(|(n, c)| {
                let name: PlSmallStr = n.as_str().into();
                match c {
                    Col::Int(v) => Column::new(name, v.as_slice()),
                    Col::Float(v) => Column::new(
                        name,
                        v.iter()
                            .map(|x| x.filter(|x| x.is_finite()))
                            .collect::<Vec<_>>(),
                    ),
                    Col::Text(v) => Column::new(
                        name,
                        v.iter()
                            .map(|s| s.as_deref())
                            .collect::<Vec<Option<&str>>>(),
                    ),
                }
            })
            .collect();
        DataFrame::new(self.nrows(), columns)
            .map_err(|e| Diagnostic::new("cannot build the output table").cause(e.to_string()))
    }

    /// Writes Parquet atomically (beside the destination, then renamed).
    pub fn write_parquet(&self, root: &Path, rel: &str) -> Result<(), Diagnostic> {
        write_frame_parquet(&mut self.to_polars()?, root, rel)
    }

    pub fn write_csv(&self, root: &Path, rel: &str) -> Result<(), Diagnostic> {
        write(root, rel, self.to_csv().as_bytes())
    }
}

/// Writes a frame as Parquet with the settings every Parquet output uses, atomically.
pub fn write_frame_parquet(df: &mut DataFrame, root: &Path, rel: &str) -> Result<(), Diagnostic> {
    let mut bytes: Vec<u8> = Vec::new();
    ParquetWriter::new(&mut bytes)
        .finish(df)
        .map_err(|e| Diagnostic::new(format!("cannot write `{rel}`")).cause(e.to_string()))?;
    write(root, rel, &bytes)
}

pub fn write(root: &Path, rel: &str, bytes: &[u8]) -> Result<(), Diagnostic> {
    repro_kind::output::write_output(root, rel, bytes)
        .map_err(|e| Diagnostic::new(format!("cannot write `{rel}`")).cause(e.to_string()))
}

/// Appends one CSV field, quoted when it holds a comma, quote or line break (RFC 4180).
pub fn push_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// Shortest round-trip text of a float (`1`, `0.5`, `0.3333333333333333`).
pub fn fmt_f(x: f64) -> String {
    if x.is_finite() && x == x.trunc() && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// The Parquet file written beside a CSV output (`panel.csv` -> `panel.parquet`).
pub fn parquet_twin(csv: &str) -> String {
    format!("{}.parquet", csv.trim_end_matches(".csv"))
}

/// Writes a stage report: pretty JSON, keys in the order built, a final newline.
pub fn write_json(root: &Path, rel: &str, value: &serde_json::Value) -> Result<(), Diagnostic> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Diagnostic::new(format!("cannot write `{rel}`")).cause(e.to_string()))?;
    text.push('\n');
    write(root, rel, text.as_bytes())
}

/// Reads a whole data file (CSV or Parquet).
pub fn read(root: &Path, rel: &str) -> Result<DataFrame, Diagnostic> {
    crate::dataio::read_frame(&root.join(rel))
}

/// Reads only the named columns of a data file.
pub fn read_columns(root: &Path, rel: &str, columns: &[&str]) -> Result<DataFrame, Diagnostic> {
    crate::dataio::read_frame_columns(&root.join(rel), Some(columns))
}

fn col<'a>(df: &'a DataFrame, file: &str, name: &str) -> Result<&'a Column, Diagnostic> {
    df.column(name).map_err(|_| {
        let found: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|n| format!("`{n}`"))
            .collect();
        Diagnostic::new(format!("`{file}` has no column `{name}`"))
            .cause(format!("columns found: {}", found.join(", ")))
    })
}

fn cast_err(file: &str, name: &str, e: PolarsError) -> Diagnostic {
    Diagnostic::new(format!("column `{name}` of `{file}` has the wrong type")).cause(e.to_string())
}

pub fn floats(df: &DataFrame, file: &str, name: &str) -> Result<Vec<Option<f64>>, Diagnostic> {
    let c = col(df, file, name)?
        .cast(&DataType::Float64)
        .map_err(|e| cast_err(file, name, e))?;
    let v = c.f64().map_err(|e| cast_err(file, name, e))?;
    Ok(v.iter().map(|x| x.filter(|x| x.is_finite())).collect())
}

/// A column as 64-bit integers, for callers that convert values as they iterate.
pub fn int_column(df: &DataFrame, file: &str, name: &str) -> Result<Int64Chunked, Diagnostic> {
    let c = col(df, file, name)?
        .cast(&DataType::Int64)
        .map_err(|e| cast_err(file, name, e))?;
    Ok(c.i64().map_err(|e| cast_err(file, name, e))?.clone())
}

pub fn ints(df: &DataFrame, file: &str, name: &str) -> Result<Vec<Option<i64>>, Diagnostic> {
    let c = col(df, file, name)?
        .cast(&DataType::Int64)
        .map_err(|e| cast_err(file, name, e))?;
    let v = c.i64().map_err(|e| cast_err(file, name, e))?;
    let mut out = Vec::with_capacity(v.len());
    for arr in v.downcast_iter() {
        out.extend(arr.iter().map(|x| x.copied()));
    }
    Ok(out)
}

/// The values of a text column, borrowed, in order. Walks each chunk's own iterator: polars'
/// iterator over the whole column took about 80 instructions a value (callgrind, `locate` on
/// 1M rows), which made collecting a 10M-row column a serial step of a good part of a second.
pub fn str_values(ca: &StringChunked) -> Vec<Option<&str>> {
    let mut out = Vec::with_capacity(ca.len());
    for arr in ca.downcast_iter() {
        out.extend(arr.iter());
    }
    out
}

pub fn texts(df: &DataFrame, file: &str, name: &str) -> Result<Vec<Option<String>>, Diagnostic> {
    let c = col(df, file, name)?
        .cast(&DataType::String)
        .map_err(|e| cast_err(file, name, e))?;
    let v = c.str().map_err(|e| cast_err(file, name, e))?;
    Ok(v.iter().map(|s| s.map(str::to_string)).collect())
}

/// The named columns of the table at `rel` as trimmed texts, a blank cell as an empty text (for
/// small reference tables such as the gazetteer's).
pub fn trimmed_texts(
    root: &Path,
    rel: &str,
    names: &[&str],
) -> Result<Vec<Vec<String>>, Diagnostic> {
    let df = read(root, rel)?;
    names
        .iter()
        .map(|c| {
            Ok(texts(&df, rel, c)?
                .into_iter()
                .map(|s| s.unwrap_or_default().trim().to_string())
                .collect())
        })
        .collect()
}
