//! Helpers shared by the integration tests: a tiny CSV reader for the reference fixtures.
//!
//! Owns: turning the simple fixture files (header line, comma-separated, no quotes) into a
//! [`Frame`]. A column whose every non-empty cell parses as a number is numeric, any other is
//! text; empty cells and `NA` are missing.
//! Deliberately does not own: general CSV (quotes, escapes, encodings); the CLI reads real data.

#![allow(dead_code)]

use std::path::PathBuf;

use repro_estimators::data::{Column, Frame};

/// Directory of the reference fixtures.
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/estimators")
}

/// Reads a fixture CSV into a frame.
pub fn read_csv(name: &str) -> Frame {
    let path = fixture_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse_csv(&text)
}

/// Parses CSV text (header, comma-separated, no quotes) into a frame.
pub fn parse_csv(text: &str) -> Frame {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .expect("csv has a header")
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let mut cells: Vec<Vec<Option<String>>> = vec![Vec::new(); header.len()];
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), header.len(), "ragged csv line `{line}`");
        for (col, field) in cells.iter_mut().zip(fields) {
            let field = field.trim();
            col.push((!field.is_empty() && field != "NA").then(|| field.to_string()));
        }
    }
    let mut frame = Frame::new();
    for (name, col) in header.into_iter().zip(cells) {
        let numeric: Option<Vec<Option<f64>>> = col
            .iter()
            .map(|c| match c {
                None => Some(None),
                Some(s) => s.parse::<f64>().ok().map(Some),
            })
            .collect();
        let column = match numeric {
            Some(v) => Column::Numeric(v),
            None => Column::Text(col),
        };
        frame.push(name, column).expect("valid fixture column");
    }
    frame
}
