//! Splitting one piece of CSV text into fields (RFC 4180: `,` between fields, `"` around fields
//! with commas, quotes or line breaks, `""` for a quote inside, `\n` or `\r\n` after a record).
//!
//! Owns: the one decision of where a record ends and whether it is well formed
//! ([`scan_record`]; the piece cutter in `sources` and the field splitter here both call it, so
//! they cannot disagree), and the field boundaries of a piece, kept as offsets into the piece
//! itself, so an unquoted field (nearly every field of an export) is never copied; only a quoted
//! field with `""` inside gets its own unescaped copy. Deliberately does not own: cutting a file
//! into pieces, encodings (`sources`) or what the fields mean (`ingest`).
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
    /// The piece as read.
    text: String,
    /// Contents of quoted fields that held `""` or text after the closing quote.
    unescaped: String,
    /// Every field, record after record.
    spans: Vec<Span>,
    /// Index into `spans` of each record's first field, then the end.
    rows: Vec<u32>,
    /// Records that break RFC 4180 (ascending), each kept as one field: its physical line.
    malformed: Vec<(usize, Malformed)>,
}

/// Why a record does not follow RFC 4180.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// A quoted field's closing quote is followed by text instead of `,` or a line break: most
    /// often a stray `"` that opened a field which then swallowed the line break.
    TextAfterQuote,
    /// A quoted field is still open at the end of the file.
    Unclosed,
}

/// Where the record that starts at some offset ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// The record ends at `end` (its line break, or the end of the text) and the next starts at
    /// `next`. A malformed record is its physical line.
    Record {
        end: usize,
        next: usize,
        malformed: Option<Malformed>,
    },
    /// The text ends before the record does; more is needed (only when `eof` is false).
    NeedMore,
}

/// Finds the end of the record that starts at `at` in `b`; `eof` says that `b` ends the file.
///
/// RFC 4180, read as widely used readers read it: a `"` opens a quoted field only at the start
/// of a field; inside one, `""` is a quote and a lone `"` closes it, and must be followed by
/// `,`, a line break or the end. A `"` inside an unquoted field (`12"`) is text, as Python's and
/// the csv crate's readers take it. A record that breaks the rule ends at the end of the
/// physical line it starts on: a stray quote costs its own line, and the records after it are
/// read as they are instead of being merged into it.
pub fn scan_record(b: &[u8], at: usize, eof: bool) -> Scan {
    let n = b.len();
    let mut i = at;
    loop {
        let Some(k) = memchr2(b'"', b'\n', &b[i..]) else {
            return match eof {
                true => Scan::Record {
                    end: n,
                    next: n,
                    malformed: None,
                },
                false => Scan::NeedMore,
            };
        };
        let j = i + k;
        if b[j] == b'\n' {
            return Scan::Record {
                end: j,
                next: j + 1,
                malformed: None,
            };
        }
        if j > at && b[j - 1] != b',' {
            i = j + 1;
            continue;
        }
        // A quoted field: find its closing quote.
        let mut q = j + 1;
        i = loop {
            let Some(k) = memchr(b'"', &b[q..]) else {
                // Still open: later text may close it; at the end of the file it never will.
                return match eof {
                    true => line_of(b, at, eof, Malformed::Unclosed),
                    false => Scan::NeedMore,
                };
            };
            let close = q + k;
            match (b.get(close + 1), b.get(close + 2)) {
                (Some(b'"'), _) => q = close + 2,
                (Some(b',' | b'\n'), _) | (Some(b'\r'), Some(b'\n')) => break close + 1,
                // At the end of the text: the end of the record, or more text decides.
                (None, _) | (Some(b'\r'), None) if !eof => return Scan::NeedMore,
                (None, _) | (Some(b'\r'), None) => {
                    return Scan::Record {
                        end: n,
                        next: n,
                        malformed: None,
                    }
                }
                _ => return line_of(b, at, eof, Malformed::TextAfterQuote),
            }
        };
    }
}

/// The malformed record that starts at `at`: its physical line.
fn line_of(b: &[u8], at: usize, eof: bool, why: Malformed) -> Scan {
    match memchr(b'\n', &b[at..]) {
        Some(k) => Scan::Record {
            end: at + k,
            next: at + k + 1,
            malformed: Some(why),
        },
        None if eof => Scan::Record {
            end: b.len(),
            next: b.len(),
            malformed: Some(why),
        },
        None => Scan::NeedMore,
    }
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
        // SAFETY: simdutf8 has just checked that `bytes` is valid UTF-8. A second, safe check
        // (std's, or simdutf8's on every `text()`) was a serial 0.3 s on 1.5 GB of input.
        let text = unsafe { String::from_utf8_unchecked(bytes) };
        let mut batch = TextBatch {
            text,
            unescaped: String::new(),
            spans: Vec::new(),
            rows: vec![0],
            malformed: Vec::new(),
        };
        batch.split();
        Ok(batch)
    }

    fn split(&mut self) {
        let b = self.text.as_bytes();
        let n = b.len();
        let mut spans = Vec::with_capacity(n / 12);
        let mut rows = Vec::with_capacity(n / 120);
        rows.push(0u32);
        let mut unescaped = String::new();
        let mut malformed = Vec::new();
        let mut i = 0;
        while i < n {
            let Scan::Record {
                end,
                next,
                malformed: bad,
            } = scan_record(b, i, true)
            else {
                unreachable!("at the end of the text every record ends")
            };
            match bad {
                Some(why) => {
                    malformed.push((rows.len() - 1, why));
                    spans.push(plain(i, trim_cr(&b[..end], i, end)));
                }
                None => split_fields(&b[..end], i, &mut spans, &mut unescaped),
            }
            rows.push(spans.len() as u32);
            i = next;
        }
        self.spans = spans;
        self.rows = rows;
        self.unescaped = unescaped;
        self.malformed = malformed;
    }

    /// Why record `row` breaks RFC 4180, if it does; such a record has one field, its line.
    pub fn malformed(&self, row: usize) -> Option<Malformed> {
        self.malformed
            .binary_search_by_key(&row, |&(r, _)| r)
            .ok()
            .map(|k| self.malformed[k].1)
    }

    /// Number of records (the header, when the piece starts the file, included).
    pub fn height(&self) -> usize {
        self.rows.len() - 1
    }

    /// Number of fields of record `row`.
    pub fn width(&self, row: usize) -> usize {
        (self.rows[row + 1] - self.rows[row]) as usize
    }

    /// The piece as text; callers slice it with `cell`.
    pub fn text(&self) -> &str {
        &self.text
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

/// Splits the well-formed record `b[at..]` (`b` ends where the record does) into fields.
fn split_fields(b: &[u8], at: usize, spans: &mut Vec<Span>, unescaped: &mut String) {
    let n = b.len();
    let mut i = at;
    loop {
        let (span, next) = if b.get(i) == Some(&b'"') {
            quoted_field(b, i, unescaped)
        } else {
            let end = memchr(b',', &b[i..]).map_or(n, |k| i + k);
            (plain(i, trim_cr(b, i, end)), end)
        };
        spans.push(span);
        if next < n {
            i = next + 1;
        } else {
            return;
        }
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

/// A field that starts with `"` at `at` in a well-formed record (`b` ends where the record does):
/// its span and the offset just after it (at the `,` or the end). Text between the closing quote
/// and the delimiter (only a `\r` in a well-formed record) is kept, appended.
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

    /// The records with, for each, why it is malformed (`None`: well formed).
    fn checked(text: &str) -> Vec<(Vec<String>, Option<Malformed>)> {
        let batch = TextBatch::new(text.as_bytes().to_vec()).unwrap();
        (0..batch.height())
            .map(|r| (batch.record(r), batch.malformed(r)))
            .collect()
    }

    #[test]
    fn a_stray_quote_costs_its_own_line_and_no_other_record() {
        // Record 2 opens a quote it never closes; read naively, it swallows the line break and
        // merges with record 3, whose own quote then "closes" it.
        let text = "h1,h2,h3\nA,\"abc,D\nE,\"北京\",G\nH,I,J\n";
        assert_eq!(
            checked(text),
            vec![
                (vec!["h1".into(), "h2".into(), "h3".into()], None),
                (vec!["A,\"abc,D".into()], Some(Malformed::TextAfterQuote)),
                (vec!["E".into(), "北京".into(), "G".into()], None),
                (vec!["H".into(), "I".into(), "J".into()], None),
            ]
        );
        // Never closed before the end of the file: the line, then every later record as it is.
        assert_eq!(
            checked("a,\"open\nb,c\r\nd"),
            vec![
                (vec!["a,\"open".into()], Some(Malformed::Unclosed)),
                (vec!["b".into(), "c".into()], None),
                (vec!["d".into()], None),
            ]
        );
        assert_eq!(
            checked("\"ab\"c,d\n"),
            vec![(vec!["\"ab\"c,d".into()], Some(Malformed::TextAfterQuote))]
        );
    }

    #[test]
    fn quotes_inside_unquoted_fields_are_text_and_crlf_ends_quoted_fields() {
        assert_eq!(records("12\",a\"b\n"), vec![vec!["12\"", "a\"b"]]);
        assert_eq!(records("\"q\"\r\n"), vec![vec!["q"]]);
        assert_eq!(records("\"q\"\r"), vec![vec!["q"]]);
    }

    #[test]
    fn the_scanner_waits_for_text_that_decides() {
        assert_eq!(scan_record(b"a,\"b", 0, false), Scan::NeedMore);
        // A line break inside an open quote decides nothing yet.
        assert_eq!(scan_record(b"\"two\nli", 0, false), Scan::NeedMore);
        assert_eq!(scan_record(b"a,\"b\"", 0, false), Scan::NeedMore);
        assert_eq!(
            scan_record(b"a,\"b\"\n", 0, false),
            Scan::Record {
                end: 5,
                next: 6,
                malformed: None
            }
        );
        // Text after the closing quote decides at once; the line's end is still needed.
        assert_eq!(scan_record(b"\"b\"x", 0, false), Scan::NeedMore);
        assert_eq!(
            scan_record(b"\"b\"x\ny", 0, false),
            Scan::Record {
                end: 4,
                next: 5,
                malformed: Some(Malformed::TextAfterQuote)
            }
        );
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

        /// The csv crate (BurntSushi's, RFC 4180 with the same leniency for a quote inside an
        /// unquoted field) as the reference: on any text that this reader finds well formed,
        /// both read the same records. The csv crate skips blank lines, which are records here.
        #[test]
        fn well_formed_text_reads_as_the_csv_crate_reads_it(text in "[a,\"\n北]{0,40}") {
            let batch = TextBatch::new(text.as_bytes().to_vec()).unwrap();
            prop_assume!((0..batch.height()).all(|r| batch.malformed(r).is_none()));
            // Blank lines (records with no text at all) are left out, as the csv crate skips them.
            let mut blank = Vec::new();
            let mut at = 0;
            while at < text.len() {
                let Scan::Record { end, next, .. } = scan_record(text.as_bytes(), at, true) else {
                    unreachable!()
                };
                blank.push(end == at);
                at = next;
            }
            prop_assert_eq!(blank.len(), batch.height());
            let ours: Vec<Vec<String>> = (0..batch.height())
                .filter(|&r| !blank[r])
                .map(|r| batch.record(r))
                .collect();
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .terminator(csv::Terminator::Any(b'\n'))
                .from_reader(text.as_bytes());
            let theirs: Vec<Vec<String>> = reader
                .records()
                .map(|r| r.unwrap().iter().map(str::to_string).collect())
                .collect();
            prop_assert_eq!(ours, theirs, "{:?}", text);
        }
    }
}
