//! Splitting one piece of CSV text into fields (RFC 4180: `,` between fields, `"` around fields
//! with commas, quotes or line breaks, `""` for a quote inside, `\n` or `\r\n` after a record).
//!
//! Owns: the field boundaries of a piece, kept as offsets into the piece itself, so an unquoted
//! field (nearly every field of an export) is never copied; only a quoted field with `""` inside
//! gets its own unescaped copy. Deliberately does not own: cutting a file into pieces at record
//! boundaries, encodings (`sources`) or what the fields mean (`ingest`).
//!
//! Written for ingestion instead of going through polars' CSV reader: that reader counts lines,
//! parses and builds nine text columns per piece, only for ingestion to read them back cell by
//! cell, and took about a quarter of the stage's time on 10M records.

use memchr::{memchr, memchr2};

/// Where one field's text is: a range of the piece, or of the unescaped copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
    unescaped: bool,
}

/// A piece of CSV text split into records and fields.
#[derive(Debug)]
pub struct TextBatch {
    /// The piece as read: valid UTF-8 (checked by `new`).
    bytes: Vec<u8>,
    /// Contents of quoted fields that held `""` or text after the closing quote.
    unescaped: String,
    /// Every field, record after record.
    spans: Vec<Span>,
    /// Index into `spans` of each record's first field, then the end.
    rows: Vec<u32>,
}

/// A piece that is not valid UTF-8 (offset of the first bad byte) or too big to index.
#[derive(Debug, PartialEq, Eq)]
pub enum PieceError {
    Utf8 { valid_up_to: usize },
    TooBig,
}

impl TextBatch {
    /// Splits `bytes`; a last record without a line break counts. A blank line is a record of
    /// one empty field, as polars' reader reads it (so it is quarantined, not lost).
    pub fn new(bytes: Vec<u8>) -> Result<TextBatch, PieceError> {
        if let Err(e) = simdutf8::compat::from_utf8(&bytes) {
            return Err(PieceError::Utf8 {
                valid_up_to: e.valid_up_to(),
            });
        }
        if u32::try_from(bytes.len()).is_err() {
            return Err(PieceError::TooBig);
        }
        let mut batch = TextBatch {
            bytes,
            unescaped: String::new(),
            spans: Vec::new(),
            rows: vec![0],
        };
        batch.split();
        Ok(batch)
    }

    fn split(&mut self) {
        let b = &self.bytes;
        let n = b.len();
        let mut spans = Vec::with_capacity(n / 12);
        let mut rows = Vec::with_capacity(n / 120);
        rows.push(0u32);
        let mut unescaped = String::new();
        let mut i = 0;
        while i < n {
            loop {
                let (span, next) = if b[i..].first() == Some(&b'"') {
                    quoted_field(b, i, &mut unescaped)
                } else {
                    let end = memchr2(b',', b'\n', &b[i..]).map_or(n, |k| i + k);
                    (plain(i, trim_cr(b, i, end)), end)
                };
                spans.push(span);
                i = next;
                if i < n && b[i] == b',' {
                    i += 1;
                    continue;
                }
                // At a line break (skipped) or the end of the piece: the record is complete.
                i = (i + 1).min(n);
                break;
            }
            rows.push(spans.len() as u32);
        }
        self.spans = spans;
        self.rows = rows;
        self.unescaped = unescaped;
    }

    /// Number of records (the header, when the piece starts the file, included).
    pub fn height(&self) -> usize {
        self.rows.len() - 1
    }

    /// Number of fields of record `row`.
    pub fn width(&self, row: usize) -> usize {
        (self.rows[row + 1] - self.rows[row]) as usize
    }

    /// The piece as text; callers slice it with `cell`. Checked again here so that no unchecked
    /// conversion is needed (simdutf8 makes the second check cheap).
    pub fn text(&self) -> &str {
        simdutf8::basic::from_utf8(&self.bytes).unwrap_or("")
    }

    /// Field `col` of record `row` (empty when the record is shorter), given `text()`.
    pub fn cell<'a>(&'a self, text: &'a str, row: usize, col: usize) -> &'a str {
        if col >= self.width(row) {
            return "";
        }
        let span = self.spans[self.rows[row] as usize + col];
        let source = if span.unescaped {
            self.unescaped.as_str()
        } else {
            text
        };
        // Spans start and end at ASCII delimiters, so they are character boundaries.
        source
            .get(span.start as usize..span.end as usize)
            .unwrap_or("")
    }

    /// The fields of record `row` as owned strings (the header).
    pub fn record(&self, row: usize) -> Vec<String> {
        let text = self.text();
        (0..self.width(row))
            .map(|c| self.cell(text, row, c).to_string())
            .collect()
    }
}

fn plain(start: usize, end: usize) -> Span {
    Span {
        start: start as u32,
        end: end as u32,
        unescaped: false,
    }
}

/// `end` without a `\r` just before it when the field ends its record (`\r\n` line breaks).
fn trim_cr(b: &[u8], start: usize, end: usize) -> usize {
    let at_line_end = end == b.len() || b[end] == b'\n';
    if at_line_end && end > start && b[end - 1] == b'\r' {
        end - 1
    } else {
        end
    }
}

/// A field that starts with `"` at `at`: its span and the offset just after it (at the `,`, the
/// line break or the end). Text between the closing quote and the delimiter is kept, appended;
/// an unclosed quote runs to the end of the piece.
fn quoted_field(b: &[u8], at: usize, unescaped: &mut String) -> (Span, usize) {
    let n = b.len();
    let mut j = at + 1;
    let mut doubled = false;
    let close = loop {
        match memchr(b'"', &b[j..]) {
            None => break None,
            Some(k) if j + k + 1 < n && b[j + k + 1] == b'"' => {
                doubled = true;
                j += k + 2;
            }
            Some(k) => break Some(j + k),
        }
    };
    let Some(close) = close else {
        return (copy_unescaped(b, at + 1, n, "", unescaped), n);
    };
    let after = close + 1;
    let next = memchr2(b',', b'\n', &b[after..]).map_or(n, |k| after + k);
    let tail_end = trim_cr(b, after, next);
    if !doubled && tail_end == after {
        return (plain(at + 1, close), next);
    }
    let tail = std::str::from_utf8(&b[after..tail_end]).unwrap_or("");
    (copy_unescaped(b, at + 1, close, tail, unescaped), next)
}

/// Copies `b[start..end]` with `""` read as `"`, then `tail`, to the unescaped text.
fn copy_unescaped(b: &[u8], start: usize, end: usize, tail: &str, out: &mut String) -> Span {
    let from = out.len();
    let body = String::from_utf8_lossy(&b[start..end]).replace("\"\"", "\"");
    out.push_str(&body);
    out.push_str(tail);
    Span {
        start: from as u32,
        end: out.len() as u32,
        unescaped: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn records(text: &str) -> Vec<Vec<String>> {
        let batch = TextBatch::new(text.as_bytes().to_vec()).unwrap();
        (0..batch.height()).map(|r| batch.record(r)).collect()
    }

    #[test]
    fn fields_quotes_and_line_breaks() {
        assert_eq!(
            records("a,b,c\n1,\"x,y\",\"he said \"\"hi\"\"\"\n\"two\nlines\",,z\r\n"),
            vec![
                vec!["a", "b", "c"],
                vec!["1", "x,y", "he said \"hi\""],
                vec!["two\nlines", "", "z"],
            ]
        );
    }

    #[test]
    fn blank_lines_short_records_and_no_final_newline() {
        assert_eq!(
            records("a,b\n\n1\n2,3"),
            vec![vec!["a", "b"], vec![""], vec!["1"], vec!["2", "3"]]
        );
        let batch = TextBatch::new(b"a,b\n1\n".to_vec()).unwrap();
        assert_eq!(batch.cell(batch.text(), 1, 1), "");
        assert_eq!(records("x,\n"), vec![vec!["x", ""]]);
        assert!(records("").is_empty());
    }

    #[test]
    fn text_after_a_closing_quote_and_unclosed_quotes_are_kept() {
        assert_eq!(records("\"ab\"c,d\n"), vec![vec!["abc", "d"]]);
        assert_eq!(records("a,\"open\nstill"), vec![vec!["a", "open\nstill"]]);
        assert_eq!(records("\"q\"\r\n"), vec![vec!["q"]]);
    }

    #[test]
    fn invalid_utf8_is_reported_with_its_offset() {
        assert_eq!(
            TextBatch::new(b"ab,\xff\n".to_vec()).unwrap_err(),
            PieceError::Utf8 { valid_up_to: 3 }
        );
    }

    /// Rows written with the project's RFC 4180 field writer.
    fn write_csv(rows: &[Vec<String>]) -> String {
        let mut out = String::new();
        for row in rows {
            for (i, f) in row.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                repro_tabular::table::push_field(&mut out, f);
            }
            out.push('\n');
        }
        out
    }

    proptest! {
        #[test]
        fn reads_back_what_a_writer_wrote(
            rows in prop::collection::vec(prop::collection::vec("[a-z北京,\" \\n\\r]{0,6}", 1..5), 0..8),
            crlf in any::<bool>(),
        ) {
            let mut text = write_csv(&rows);
            if crlf {
                // Every \n becomes \r\n, those inside quoted fields too (they are data).
                text = text.replace("\n", "\r\n");
            }
            let expected: Vec<Vec<String>> = if crlf {
                rows.iter()
                    .map(|r| r.iter().map(|f| f.replace('\n', "\r\n")).collect())
                    .collect()
            } else {
                rows.clone()
            };
            prop_assert_eq!(records(&text), expected);
        }
    }
}
