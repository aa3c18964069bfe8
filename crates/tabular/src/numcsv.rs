//! A fast path for plain numeric CSV: the columns a model needs, read straight into `f64`s.
//!
//! Owns: reading a CSV file whose data rows hold no quote, no blank line and, in the requested
//! columns, only numbers or empty fields, in one pass over the bytes, split into fixed pieces
//! parsed in parallel and joined in file order (so the result does not depend on the thread
//! count). Deliberately does not own: anything else. Whenever a file is not plain in this sense
//! it answers `None`, and the caller reads the file with polars (`dataio`), which also owns every
//! error message about malformed files.
//!
//! Why: polars' lazy CSV scan infers each column's type with regular expressions over the first
//! 100,000 rows before parsing, and `repro fit` scanned the file more than once (header, schema,
//! data); on a 19 MB file of numbers that was most of the process's time (docs/benchmarks.md).
//!
//! The values equal polars' for every file this path accepts: a number is accepted only in a
//! form that polars' inference also reads as a number (`-?\d+` with at most 18 digits, or
//! `-?\d*\.\d+`, `-?\d+[eE][-+]?\d+`, `-?\d+\.` with the exponent where polars allows one), it
//! is parsed with the same correctly rounded parser (`fast-float2`), an empty field is missing,
//! and a column of integers gets `0.0` for `-0`, as polars' `i64` column cast to `f64` does.
//! Polars infers types from the first 100,000 rows and fails on a later row that does not fit;
//! here every row is checked, so such a file is read rather than refused.

use std::path::Path;

use rayon::prelude::*;

/// One column read as numbers; `None` is an empty field.
#[derive(Debug, Clone, PartialEq)]
pub struct NumericColumn {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// Pieces of about this many bytes are parsed independently; fixed, so that the split does
/// not depend on the number of threads.
const PIECE_BYTES: usize = 1 << 20;

/// Reads the columns of a plain numeric CSV file, in the file's order: those named in `wanted`
/// that the header has (absent names are the caller's to report), or all when `wanted` is
/// `None`. `None` when the file cannot be read this way (including when it cannot be read at
/// all): the caller then reads it with polars, which says what is wrong.
pub fn read_plain_numeric(path: &Path, wanted: Option<&[String]>) -> Option<Vec<NumericColumn>> {
    let bytes = std::fs::read(path).ok()?;
    let header_end = memchr::memchr(b'\n', &bytes)?;
    let names = header_names(&bytes[..header_end])?;
    let body = &bytes[header_end + 1..];
    if memchr::memchr(b'"', body).is_some() {
        return None;
    }
    let selected: Vec<usize> = (0..names.len())
        .filter(|&i| wanted.is_none_or(|w| w.contains(&names[i])))
        .collect();
    if selected.is_empty() {
        return None;
    }
    let pieces = split_pieces(body);
    let parsed: Vec<Piece> = pieces
        .par_iter()
        .map(|piece| parse_piece(piece, names.len(), &selected))
        .collect::<Option<_>>()?;
    join_pieces(&names, &selected, parsed)
}

/// The header's names; `None` for anything polars would name differently or refuse: a byte
/// order mark, an empty or repeated name, or quotes other than around a whole name.
fn header_names(line: &[u8]) -> Option<Vec<String>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.starts_with(b"\xEF\xBB\xBF") {
        return None;
    }
    let mut names: Vec<String> = Vec::new();
    for raw in line.split(|&b| b == b',') {
        let inner = match raw {
            [b'"', inner @ .., b'"'] => inner,
            _ => raw,
        };
        if inner.is_empty() || inner.contains(&b'"') {
            return None;
        }
        let name = std::str::from_utf8(inner).ok()?.to_string();
        if names.contains(&name) {
            return None;
        }
        names.push(name);
    }
    Some(names)
}

/// Cuts `body` into pieces of whole lines of about `PIECE_BYTES` each.
fn split_pieces(body: &[u8]) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < body.len() {
        let target = (start + PIECE_BYTES).min(body.len());
        let end = match memchr::memchr(b'\n', &body[target..]) {
            Some(i) if target < body.len() => target + i + 1,
            _ => body.len(),
        };
        pieces.push(&body[start..end]);
        start = end;
    }
    pieces
}

/// The selected columns of one piece, and per column whether every value was an integer and
/// whether any was present.
struct Piece {
    columns: Vec<Vec<Option<f64>>>,
    all_integers: Vec<bool>,
    any_present: Vec<bool>,
}

/// The kind of number a field holds, in polars' inference terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumberForm {
    Integer,
    Float,
}

fn parse_piece(piece: &[u8], ncols: usize, selected: &[usize]) -> Option<Piece> {
    let mut out = Piece {
        columns: vec![Vec::new(); selected.len()],
        all_integers: vec![true; selected.len()],
        any_present: vec![false; selected.len()],
    };
    let body = piece.strip_suffix(b"\n").unwrap_or(piece);
    let mut start = 0;
    while start <= body.len() {
        let end = memchr::memchr(b'\n', &body[start..]).map_or(body.len(), |k| start + k);
        let line = &body[start..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None;
        }
        parse_line(line, ncols, selected, &mut out)?;
        start = end + 1;
    }
    Some(out)
}

/// Appends the selected fields of one line to `out`; `None` if the line has not `ncols` fields
/// or a selected field is not a number this module reads.
fn parse_line(line: &[u8], ncols: usize, selected: &[usize], out: &mut Piece) -> Option<()> {
    let mut at = 0;
    let mut want = 0;
    for i in 0..ncols {
        let rest = &line[at..];
        let len = if selected.get(want) == Some(&i) {
            // The number parser finds the field's end; the field must end there.
            let (value, len) = match rest.first() {
                None | Some(b',') => (None, 0),
                Some(_) => {
                    let (v, len) = fast_float2::parse_partial::<f64, _>(rest).ok()?;
                    let form = number_form(&rest[..len])?;
                    out.all_integers[want] &= form == NumberForm::Integer;
                    out.any_present[want] = true;
                    (Some(v), len)
                }
            };
            out.columns[want].push(value);
            want += 1;
            len
        } else {
            memchr::memchr(b',', rest).unwrap_or(rest.len())
        };
        // After the field: a comma before the next one, the end of the line after the last.
        match (line.get(at + len), i + 1 == ncols) {
            (Some(b','), false) => at += len + 1,
            (None, true) => return Some(()),
            _ => return None,
        }
    }
    None
}

/// The form of a field if it is a number in one of the forms polars' inference reads as one
/// (a subset of its `INTEGER_RE` and `FLOAT_RE`: no sign `+`, no `inf` or `NaN`); else `None`.
fn number_form(field: &[u8]) -> Option<NumberForm> {
    let digits = |s: &[u8]| s.iter().take_while(|b| b.is_ascii_digit()).count();
    let s = field.strip_prefix(b"-").unwrap_or(field);
    let int_len = digits(s);
    let rest = &s[int_len..];
    if rest.is_empty() {
        // More than 18 digits may not fit polars' `i64`.
        return (int_len > 0 && int_len <= 18).then_some(NumberForm::Integer);
    }
    let (frac_len, rest) = match rest.strip_prefix(b".") {
        Some(after) => {
            let n = digits(after);
            (Some(n), &after[n..])
        }
        None => (None, rest),
    };
    let exponent_ok = |e: &[u8]| {
        let e = e
            .strip_prefix(b"+")
            .or_else(|| e.strip_prefix(b"-"))
            .unwrap_or(e);
        !e.is_empty() && digits(e) == e.len()
    };
    let ok = match (frac_len, rest.first()) {
        // `\d*\.\d+` with an optional exponent
        (Some(f), None) if f > 0 => true,
        (Some(f), Some(b'e' | b'E')) if f > 0 => exponent_ok(&rest[1..]),
        // `\d+\.` (polars allows no exponent after it)
        (Some(0), None) => int_len > 0,
        // `\d+[eE][-+]?\d+`
        (None, Some(b'e' | b'E')) => int_len > 0 && exponent_ok(&rest[1..]),
        _ => false,
    };
    ok.then_some(NumberForm::Float)
}

fn join_pieces(
    names: &[String],
    selected: &[usize],
    parsed: Vec<Piece>,
) -> Option<Vec<NumericColumn>> {
    let rows: usize = parsed.iter().map(|p| p.columns[0].len()).sum();
    let mut columns: Vec<NumericColumn> = selected
        .iter()
        .map(|&i| NumericColumn {
            name: names[i].clone(),
            values: Vec::with_capacity(rows),
        })
        .collect();
    let mut all_integers = vec![true; selected.len()];
    let mut any_present = vec![false; selected.len()];
    for piece in parsed {
        for (j, values) in piece.columns.into_iter().enumerate() {
            columns[j].values.extend(values);
            all_integers[j] &= piece.all_integers[j];
            any_present[j] |= piece.any_present[j];
        }
    }
    // A column with no value at all is text to polars.
    if any_present.contains(&false) {
        return None;
    }
    for (column, integers) in columns.iter_mut().zip(all_integers) {
        if integers {
            // `-0` read as an integer is `0`; as a float, `-0.0`.
            for v in column.values.iter_mut().flatten() {
                *v += 0.0;
            }
        }
    }
    Some(columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::DataType;
    use proptest::prelude::*;

    /// Columns by name, each as the bits of its values, or `None` when not read as numbers.
    type Bits = Vec<(String, Option<Vec<Option<u64>>>)>;

    /// What polars reads (the reference): each column as `f64`s, or `None` when polars does
    /// not read it as numbers; `None` when polars refuses the file.
    fn polars_columns(path: &Path) -> Option<Bits> {
        let df = crate::dataio::read_frame(path).ok()?;
        let columns = df
            .columns()
            .iter()
            .map(|c| {
                let values = c.dtype().is_primitive_numeric().then(|| {
                    let cast = c.cast(&DataType::Float64).unwrap();
                    cast.f64()
                        .unwrap()
                        .iter()
                        .map(|v| v.map(f64::to_bits))
                        .collect()
                });
                (c.name().to_string(), values)
            })
            .collect();
        Some(columns)
    }

    fn ours(path: &Path) -> Option<Bits> {
        let columns = read_plain_numeric(path, None)?;
        Some(
            columns
                .into_iter()
                .map(|c| {
                    let bits = c.values.iter().map(|v| v.map(f64::to_bits)).collect();
                    (c.name, Some(bits))
                })
                .collect(),
        )
    }

    /// A field as some writer may print it: numbers in polars' and other forms, empty, or text.
    fn field() -> impl Strategy<Value = String> {
        prop_oneof![
            12 => (-1e12f64..1e12).prop_map(|v| v.to_string()),
            1 => any::<f64>().prop_map(|v| v.to_string()),
            4 => (-1e6f64..1e6).prop_map(|v| format!("{v:e}")),
            2 => any::<i64>().prop_map(|v| (v / 10).to_string()),
            2 => (-50i64..50).prop_map(|v| v.to_string()),
            8 => proptest::sample::select(vec![
                "", "-0", "0", "-0.0", ".5", "-.5", "5.", "1e5", "1E-5", "-9.9990e-003",
                "1e400", "4.9e-325", "123456789012345678",
            ])
            .prop_map(str::to_string),
            1 => proptest::sample::select(vec![
                "1234567890123456789", "+1", "inf", "NaN", "5.e3", "abc", "1 ", "true",
            ])
            .prop_map(str::to_string),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Whenever the fast path reads a file, polars reads the same numbers, bit for bit;
        /// and a file polars reads as numbers only, the fast path reads when its fields are
        /// in the forms it knows.
        #[test]
        fn equals_polars(
            rows in proptest::collection::vec(proptest::collection::vec(field(), 3), 1..16),
            crlf in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.csv");
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = format!("a,b,c{eol}");
            for r in &rows {
                text.push_str(&r.join(","));
                text.push_str(eol);
            }
            std::fs::write(&path, &text).unwrap();
            let got = ours(&path);
            // Polars refuses integers beyond `i64`; the fast path leaves those to it too.
            let Some(reference) = polars_columns(&path) else {
                prop_assert!(got.is_none());
                return Ok(());
            };
            match got {
                Some(got) => prop_assert_eq!(got, reference),
                None => {
                    let plain = rows.iter().flatten().all(|f| f.is_empty() || number_form(f.as_bytes()).is_some());
                    let polars_numeric = reference.iter().all(|(_, v)| v.is_some());
                    // Only an all-empty column (text to polars) may send a plain file to polars.
                    prop_assert!(!plain || !polars_numeric, "fast path declined {:?}", text);
                }
            }
        }
    }

    #[test]
    fn selects_columns_and_declines_what_is_not_plain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "\"y\",x,z\n1,2.5,a\n-0,,b\n").unwrap();
        let wanted = ["y".to_string(), "x".to_string(), "w".to_string()];
        let got = read_plain_numeric(&path, Some(&wanted)).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].name.as_str(), got[1].name.as_str()), ("y", "x"));
        assert_eq!(got[0].values[1].unwrap().to_bits(), 0.0f64.to_bits());
        assert_eq!(got[1].values, vec![Some(2.5), None]);
        // `-0` among integers, among floats: as polars reads it.
        for text in ["a,b\n1,1.5\n-0,-0\n", "a,b\n-0,-0\n"] {
            std::fs::write(&path, text).unwrap();
            assert_eq!(ours(&path), polars_columns(&path), "{text:?}");
        }
        for bad in [
            "y,x\n1,\"2\"\n",     // a quote in the data
            "y,x\n1,2\n\n3,4\n",  // a blank line
            "y,x\n1,2,3\n",       // a ragged row
            "y,y\n1,2\n",         // a repeated name
            "\u{feff}y,x\n1,2\n", // a byte order mark
            "y,x\n",              // no rows
        ] {
            std::fs::write(&path, bad).unwrap();
            assert!(read_plain_numeric(&path, None).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn number_forms_follow_polars_inference() {
        use NumberForm::*;
        for (s, want) in [
            ("0", Some(Integer)),
            ("-12", Some(Integer)),
            ("123456789012345678", Some(Integer)),
            ("1234567890123456789", None),
            ("0.1", Some(Float)),
            (".5", Some(Float)),
            ("-.5", Some(Float)),
            ("5.", Some(Float)),
            ("-9.9990e-003", Some(Float)),
            ("2.5E10", Some(Float)),
            ("7e-05", Some(Float)),
            ("5.e3", None),
            ("+7e+05", None),
            ("inf", None),
            ("NaN", None),
            ("1e", None),
            ("e5", None),
            ("-", None),
            (".", None),
            ("1 ", None),
            ("1,5", None),
            ("0x10", None),
            ("true", None),
        ] {
            assert_eq!(number_form(s.as_bytes()), want, "{s:?}");
        }
    }
}
