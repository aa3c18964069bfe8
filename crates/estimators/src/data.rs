//! The in-memory table the estimators read.
//!
//! Owns: [`Frame`], a set of equally long, uniquely named [`Column`]s of numbers (with missing
//! values as `None`, or dense with non-finite values as missing) or text with missing values, and the lookups the estimators need (numeric view of a column, factorisation
//! of a column into group codes).
//! Deliberately does not own: reading or writing files, type inference from text, or any
//! transformation of the data; callers (the CLI) build frames from whatever source they read.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::error::EstimError;

/// 2^52: from here on every `f64` is a whole number.
const TWO_52: f64 = 4_503_599_627_370_496.0;

/// Rows per parallel task when scanning a column for its bounds.
const FACTORIZE_BLOCK: usize = 65_536;

/// One column of data; `None` marks a missing value.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Numeric(Vec<Option<f64>>),
    /// Dense numbers: a non-finite value (NaN for a missing cell) is missing. Half the memory of
    /// `Numeric`, which is what readers of large files produce.
    Float(Vec<f64>),
    Text(Vec<Option<String>>),
}

impl Column {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Column::Numeric(v) => v.len(),
            Column::Float(v) => v.len(),
            Column::Text(v) => v.len(),
        }
    }

    /// True when the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when row `i` holds no usable value. A non-finite number counts as missing, as in
    /// fixest, because it cannot enter a regression.
    pub fn is_missing(&self, i: usize) -> bool {
        match self {
            Column::Numeric(v) => !v[i].is_some_and(f64::is_finite),
            Column::Float(v) => !v[i].is_finite(),
            Column::Text(v) => v[i].is_none(),
        }
    }
}

impl Column {
    /// Clears `keep[o]` where row `start + o` is missing (see [`Column::is_missing`]); one
    /// match per block rather than per row, so the dense loop vectorises.
    pub(crate) fn and_present(&self, start: usize, keep: &mut [bool]) {
        let rows = start..start + keep.len();
        match self {
            Column::Numeric(v) => and_all(keep, &v[rows], |x| x.is_some_and(f64::is_finite)),
            Column::Float(v) => and_all(keep, &v[rows], |x| x.is_finite()),
            Column::Text(v) => and_all(keep, &v[rows], Option::is_some),
        }
    }
}

fn and_all<T>(keep: &mut [bool], values: &[T], present: impl Fn(&T) -> bool) {
    for (k, x) in keep.iter_mut().zip(values) {
        *k &= present(x);
    }
}

/// A table of named columns, all of the same length.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    names: Vec<String>,
    columns: Vec<Column>,
    index: HashMap<String, usize>,
}

impl Frame {
    /// An empty frame.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a column; fails on a duplicate name or a length that differs from the columns
    /// already present.
    pub fn push(&mut self, name: impl Into<String>, col: Column) -> Result<(), EstimError> {
        let name = name.into();
        if self.index.contains_key(&name) {
            return Err(EstimError::DuplicateColumn { name });
        }
        if let Some(first) = self.columns.first() {
            if first.len() != col.len() {
                return Err(EstimError::ColumnLength {
                    name,
                    expected: first.len(),
                    found: col.len(),
                });
            }
        }
        self.index.insert(name.clone(), self.columns.len());
        self.names.push(name);
        self.columns.push(col);
        Ok(())
    }

    /// Number of rows (0 for a frame without columns).
    pub fn nrows(&self) -> usize {
        self.columns.first().map_or(0, Column::len)
    }

    /// Number of columns.
    pub fn ncols(&self) -> usize {
        self.columns.len()
    }

    /// The column called `name`, if any.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.index.get(name).map(|&i| &self.columns[i])
    }

    /// Column names in insertion order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The dense columns `names`, in that order, moved out of the frame, which is dropped with
    /// everything else it holds; the frame back unless every name is a distinct dense column.
    pub(crate) fn into_dense(self, names: &[&str]) -> Result<Vec<Vec<f64>>, Frame> {
        let mut picked: Vec<usize> = Vec::with_capacity(names.len());
        for name in names {
            match self.index.get(*name) {
                Some(&i) if matches!(self.columns[i], Column::Float(_)) && !picked.contains(&i) => {
                    picked.push(i)
                }
                _ => return Err(self),
            }
        }
        let mut dense: Vec<Option<Vec<f64>>> = self
            .columns
            .into_iter()
            .map(|c| match c {
                Column::Float(v) => Some(v),
                _ => None,
            })
            .collect();
        Ok(picked
            .iter()
            .map(|&i| dense[i].take().unwrap_or_default())
            .collect())
    }

    /// The column called `name`, or an unknown-column error.
    pub fn require(&self, name: &str) -> Result<&Column, EstimError> {
        self.column(name).ok_or_else(|| EstimError::UnknownColumn {
            name: name.to_string(),
        })
    }
}

/// A numeric view of a column for use as an outcome, regressor or instrument.
///
/// Text columns whose every non-missing value parses as a number are accepted (empty cells and
/// `NA` count as missing); otherwise the first row that does not parse is reported.
pub(crate) enum NumericView<'a> {
    Borrowed(&'a [Option<f64>]),
    Dense(&'a [f64]),
    Parsed(Vec<Option<f64>>),
}

impl NumericView<'_> {
    pub(crate) fn get(&self, i: usize) -> Option<f64> {
        match self {
            NumericView::Borrowed(v) => v[i],
            NumericView::Dense(v) => Some(v[i]),
            NumericView::Parsed(v) => v[i],
        }
        .filter(|x| x.is_finite())
    }
}

impl NumericView<'_> {
    /// Clears `keep[o]` where row `start + o` has no finite value (see [`NumericView::get`]).
    pub(crate) fn and_present(&self, start: usize, keep: &mut [bool]) {
        let rows = start..start + keep.len();
        match self {
            NumericView::Borrowed(v) => and_all(keep, &v[rows], |x| x.is_some_and(f64::is_finite)),
            NumericView::Dense(v) => and_all(keep, &v[rows], |x| x.is_finite()),
            NumericView::Parsed(v) => and_all(keep, &v[rows], |x| x.is_some_and(f64::is_finite)),
        }
    }
}

/// Numeric view of column `name`; a text column is parsed cell by cell.
pub(crate) fn numeric_view<'a>(
    frame: &'a Frame,
    name: &str,
) -> Result<NumericView<'a>, EstimError> {
    match frame.require(name)? {
        Column::Numeric(v) => Ok(NumericView::Borrowed(v)),
        Column::Float(v) => Ok(NumericView::Dense(v)),
        Column::Text(v) => {
            let mut out = Vec::with_capacity(v.len());
            for (i, cell) in v.iter().enumerate() {
                let Some(text) = cell else {
                    out.push(None);
                    continue;
                };
                let trimmed = text.trim();
                if trimmed.is_empty() || trimmed == "NA" {
                    out.push(None);
                    continue;
                }
                match trimmed.parse::<f64>() {
                    Ok(x) => out.push(Some(x)),
                    Err(_) => {
                        return Err(EstimError::NonNumericColumn {
                            name: name.to_string(),
                            row: i + 1,
                            value: text.clone(),
                        })
                    }
                }
            }
            Ok(NumericView::Parsed(out))
        }
    }
}

/// Group codes `0..n_levels` for the selected rows of a column, levels numbered in order of
/// first appearance among those rows. Missing values must have been filtered out by the caller.
pub(crate) fn factorize(col: &Column, rows: &[usize]) -> (Vec<u32>, usize) {
    match col {
        Column::Numeric(v) => factorize_numeric(|i| v[i].unwrap_or(0.0), rows),
        Column::Float(v) => factorize_numeric(|i| v[i], rows),
        Column::Text(v) => {
            let mut map: HashMap<&str, u32> = HashMap::new();
            let codes = rows
                .iter()
                .map(|&i| {
                    let key = v[i].as_deref().unwrap_or("");
                    let next = map.len() as u32;
                    *map.entry(key).or_insert(next)
                })
                .collect();
            (codes, map.len())
        }
    }
}

/// Factorises the numbers `value(i)` of the selected rows (finite: missing rows are filtered out).
fn factorize_numeric(value: impl Fn(usize) -> f64 + Sync, rows: &[usize]) -> (Vec<u32>, usize) {
    // Fast path: small non-negative integers (ids, years) index a lookup table directly, which
    // avoids hashing on the large panels this crate is built for. The bounds are a min, a max
    // and an "and" over blocks, so they do not depend on how rayon splits the rows.
    let (lo, hi, all_int) = rows
        .par_chunks(FACTORIZE_BLOCK)
        .map(|block| {
            let mut lo = f64::INFINITY;
            let mut hi = f64::NEG_INFINITY;
            let mut all_int = true;
            for &i in block {
                let x = value(i);
                // Adding and taking away 2^52 rounds `|x| < 2^52` to an integer, so this is true
                // exactly for whole numbers there (no libm call and no saturating cast, so the
                // loop vectorises). Larger numbers may come out false: they then take the hashed
                // path below, which numbers levels in the same order.
                let a = x.abs();
                all_int &= (a + TWO_52) - TWO_52 == a;
                // The values are finite (missing rows are filtered out), so plain comparisons.
                lo = if x < lo { x } else { lo };
                hi = if x > hi { x } else { hi };
            }
            (lo, hi, all_int)
        })
        .reduce(
            || (f64::INFINITY, f64::NEG_INFINITY, true),
            |a, b| (a.0.min(b.0), a.1.max(b.1), a.2 && b.2),
        );
    let span_ok = all_int && !rows.is_empty() && (hi - lo) <= (4.0 * rows.len() as f64).max(1e6);
    if span_ok {
        let mut table = vec![u32::MAX; (hi - lo) as usize + 1];
        let mut n_levels = 0u32;
        let codes = rows
            .iter()
            .map(|&i| {
                let slot = &mut table[(value(i) - lo) as usize];
                if *slot == u32::MAX {
                    *slot = n_levels;
                    n_levels += 1;
                }
                *slot
            })
            .collect();
        return (codes, n_levels as usize);
    }
    let mut map: HashMap<u64, u32> = HashMap::new();
    let codes = rows
        .iter()
        .map(|&i| {
            // +0.0 folds -0.0 into 0.0 so both land in one level.
            let key = (value(i) + 0.0).to_bits();
            let next = map.len() as u32;
            *map.entry(key).or_insert(next)
        })
        .collect();
    (codes, map.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_rejects_length_mismatch_and_duplicates() {
        let mut f = Frame::new();
        f.push("a", Column::Numeric(vec![Some(1.0), None])).unwrap();
        let err = f.push("b", Column::Numeric(vec![Some(1.0)])).unwrap_err();
        assert!(matches!(
            err,
            EstimError::ColumnLength {
                expected: 2,
                found: 1,
                ..
            }
        ));
        let err = f
            .push("a", Column::Text(vec![None, Some("x".into())]))
            .unwrap_err();
        assert_eq!(err, EstimError::DuplicateColumn { name: "a".into() });
        assert_eq!(f.nrows(), 2);
        assert_eq!(f.names(), &["a".to_string()]);
    }

    #[test]
    fn factorize_numeric_fast_and_hashed_paths_agree() {
        let v: Vec<Option<f64>> = [3.0, 1.0, 3.0, 2.0, 1.0].iter().map(|&x| Some(x)).collect();
        let rows: Vec<usize> = (0..5).collect();
        let (codes, n) = factorize_numeric(|i| v[i].unwrap_or(0.0), &rows);
        assert_eq!(n, 3);
        assert_eq!(codes, vec![0, 1, 0, 2, 1]);
        let w: Vec<Option<f64>> = [0.5, 1e12, 0.5, -0.0, 0.0]
            .iter()
            .map(|&x| Some(x))
            .collect();
        let (codes, n) = factorize_numeric(|i| w[i].unwrap_or(0.0), &rows);
        assert_eq!(n, 3);
        assert_eq!(codes, vec![0, 1, 0, 2, 2]);
        // Whole numbers beyond 2^52 and negative ones: levels in order of first appearance.
        let big = [
            2f64.powi(60),
            -7.0,
            2f64.powi(60),
            2f64.powi(53) + 2.0,
            -7.0,
        ];
        let (codes, n) = factorize_numeric(|i| big[i], &rows);
        assert_eq!((codes, n), (vec![0, 1, 0, 2, 1], 3));
        let small = [-3.0, 4.0, -3.0, 0.0, 4.0];
        let (codes, n) = factorize_numeric(|i| small[i], &rows);
        assert_eq!((codes, n), (vec![0, 1, 0, 2, 1], 3));
    }

    #[test]
    fn text_column_with_numbers_is_accepted_and_bad_cell_reported() {
        let mut f = Frame::new();
        f.push(
            "t",
            Column::Text(vec![Some("1.5".into()), None, Some("2".into())]),
        )
        .unwrap();
        f.push(
            "u",
            Column::Text(vec![Some("1".into()), Some("abc".into()), None]),
        )
        .unwrap();
        let view = numeric_view(&f, "t").unwrap();
        assert_eq!(view.get(0), Some(1.5));
        assert_eq!(view.get(1), None);
        let Err(err) = numeric_view(&f, "u") else {
            panic!("expected an error")
        };
        assert_eq!(
            err,
            EstimError::NonNumericColumn {
                name: "u".into(),
                row: 2,
                value: "abc".into()
            }
        );
    }
}
