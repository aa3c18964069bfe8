//! Reading raw exports in batches: CSV (UTF-8 or GBK) as split text, Parquet and xlsx as polars
//! DataFrames whose columns are all text, in file order.
//!
//! Owns: encoding detection and streaming transcoding, cutting CSV at record boundaries (quotes
//! respected) so a 2 GB file never sits in memory at once, reading Parquet in row slices and
//! xlsx through calamine (numbers as text, Excel date serials as ISO dates). Deliberately does not
//! own: splitting a CSV piece into fields (`csvtext`), which columns mean what, or any cleaning
//! (that is `ingest`); a batch is the file's cells as read.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::mpsc;

use calamine::{Data, Reader, Xlsx};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::csvtext::{scan_record, PieceError, Scan, TextBatch};
use crate::textnorm::normalize;
use repro_kind::diag::Diagnostic;

/// CSV text is cut into pieces of about this many bytes (at a record boundary) for parsing.
const CSV_CHUNK_BYTES: usize = 16 << 20;
/// Raw bytes read from a CSV file at a time.
const READ_BYTES: usize = 4 << 20;
/// `encoding: auto` decides on this many bytes from the start of the file.
const DETECT_BYTES: usize = 16 << 20;
/// Rows per batch for Parquet and xlsx inputs.
const BATCH_ROWS: usize = 100_000;

/// How the bytes of a CSV file are to be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encoding {
    /// UTF-8 when the whole file is valid UTF-8 (a BOM decides at once), otherwise GBK.
    #[default]
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "utf-8", alias = "utf8")]
    Utf8,
    #[serde(rename = "gbk")]
    Gbk,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Auto => "auto",
            Encoding::Utf8 => "utf-8",
            Encoding::Gbk => "gbk",
        }
    }
}

/// One batch of a raw export, as read.
pub enum Batch {
    /// Text columns (Parquet, xlsx); the column names are the header.
    Frame(DataFrame),
    /// CSV records. The file's first piece carries the header, its record 0; data records start
    /// at `first`.
    Csv {
        header: Option<Vec<String>>,
        text: TextBatch,
        first: usize,
    },
}

impl Batch {
    /// Data rows in the batch.
    pub fn height(&self) -> usize {
        match self {
            Batch::Frame(df) => df.height(),
            Batch::Csv { text, first, .. } => text.height() - first,
        }
    }
}

/// What a reader does with each batch; an error stops the reading.
pub type Sink<'a> = dyn FnMut(Batch) -> Result<(), Diagnostic> + 'a;

/// The kinds of input file, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
    Xlsx,
    /// A CNKI-style text export (`.txt`): records of `label=value` lines, blank lines between.
    Text,
}

impl Format {
    pub fn of(rel: &str) -> Option<Format> {
        let ext = Path::new(rel)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)?;
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "parquet" | "pq" => Some(Format::Parquet),
            "xlsx" => Some(Format::Xlsx),
            "txt" => Some(Format::Text),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
            Format::Xlsx => "xlsx",
            Format::Text => "text",
        }
    }
}

fn io_err(rel: &str, e: impl std::fmt::Display) -> Diagnostic {
    Diagnostic::new(format!("cannot read `{rel}`")).cause(e.to_string())
}

// ---------------------------------------------------------------------------------------------
// CSV

/// Reads a CSV file in record-aligned pieces and hands each to `sink` split into fields (the
/// first one also carries the header). Returns the encoding actually used.
pub fn read_csv(
    path: &Path,
    rel: &str,
    encoding: Encoding,
    sink: &mut Sink<'_>,
) -> Result<Encoding, Diagnostic> {
    // `auto` chose GBK because of a byte that is not UTF-8 at this offset (for the message
    // when the file is not GBK either).
    let (encoding, not_utf8) = match encoding {
        Encoding::Auto => detect_encoding(path).map_err(|e| io_err(rel, e))?,
        fixed => (fixed, None),
    };
    let (tx, rx) = mpsc::sync_channel::<Result<Piece, Diagnostic>>(2);
    let (ptx, prx) = mpsc::sync_channel::<Result<Batch, Diagnostic>>(1);
    std::thread::scope(|scope| {
        // Three steps overlap: reading and transcoding a piece, splitting the previous one into
        // fields, and cleaning and writing the one before (the Parquet writer is sequential, so
        // splitting the next piece meanwhile keeps both cores busy). Order is kept: each step is
        // one thread fed in order.
        scope.spawn(move || produce_chunks(path, rel, (encoding, not_utf8), &tx));
        scope.spawn(move || {
            let mut header_width: Option<usize> = None;
            let mut rows_before = 0u64;
            for piece in rx {
                let batch = piece.and_then(|piece| {
                    split_piece(piece, (path, rel), &mut header_width, &mut rows_before)
                });
                let failed = batch.is_err();
                if ptx.send(batch).is_err() || failed {
                    return;
                }
            }
        });
        let mut any = false;
        for batch in prx {
            let batch = batch?;
            any = true;
            sink(batch)?;
        }
        // Leaving the loop early drops the receiver, which stops the producer.
        if !any {
            return Err(Diagnostic::new(format!("cannot read `{rel}`"))
                .cause("the file is empty: a header row is required"));
        }
        Ok(encoding)
    })
}

/// One record-aligned piece of CSV text and its records (the header included, in the first).
#[derive(Debug)]
pub struct CsvPiece {
    pub bytes: Vec<u8>,
    pub records: Vec<Vec<String>>,
}

/// UTF-8 CSV text cut and split as `read_csv` cuts and splits a file: fed to the record splitter
/// `feed` bytes at a time, cut into pieces of at least `min_piece` bytes at record boundaries,
/// each piece split into fields and checked against the header's width. Reading a file goes
/// through the same steps; this entry point runs them on text in memory, so that the fuzz target
/// and tests can check the splitter and the field parser against each other.
pub fn split_csv_text(
    text: &[u8],
    min_piece: usize,
    feed: usize,
) -> Result<Vec<CsvPiece>, Diagnostic> {
    let mut splitter = RecordSplitter::new(min_piece.max(1));
    let mut raw = Vec::new();
    for part in text.chunks(feed.max(1)) {
        splitter.pending.extend_from_slice(part);
        raw.extend(splitter.take_pieces());
    }
    raw.extend(splitter.finish());
    let (mut header_width, mut rows_before, mut offset) = (None, 0u64, 0u64);
    let mut pieces = Vec::with_capacity(raw.len());
    for bytes in raw {
        let piece = Piece {
            offset,
            bytes: bytes.clone(),
        };
        offset += bytes.len() as u64;
        let Batch::Csv {
            header,
            text,
            first,
        } = split_piece(
            piece,
            (Path::new("<text>"), "<text>"),
            &mut header_width,
            &mut rows_before,
        )?
        else {
            unreachable!("split_piece makes CSV batches only")
        };
        let records = header
            .into_iter()
            .chain((first..text.height()).map(|r| text.record(r)))
            .collect();
        pieces.push(CsvPiece { bytes, records });
    }
    Ok(pieces)
}

/// A record-aligned piece of a CSV file as UTF-8, and where it starts in the file (for a UTF-8
/// file; a transcoded GBK file is valid UTF-8 by construction).
struct Piece {
    offset: u64,
    bytes: Vec<u8>,
}

/// Splits a piece into fields; the file's first piece gives the header. A record with more
/// fields than the header is an error (a shifted column would put text under the wrong field).
fn split_piece(
    piece: Piece,
    (path, rel): (&Path, &str),
    header_width: &mut Option<usize>,
    rows_before: &mut u64,
) -> Result<Batch, Diagnostic> {
    let text = TextBatch::new(piece.bytes).map_err(|e| match e {
        PieceError::Utf8 { valid_up_to } => {
            bad_bytes((path, rel), "UTF-8", piece.offset + valid_up_to as u64)
        }
        PieceError::TooBig => io_err(rel, "a record is longer than 4 GB"),
    })?;
    let (header, first) = match *header_width {
        Some(_) => (None, 0),
        None if text.height() == 0 => {
            return Err(Diagnostic::new(format!("cannot read `{rel}`"))
                .cause("the file is empty: a header row is required"))
        }
        None => {
            let names = text.record(0);
            *header_width = Some(names.len());
            (Some(names), 1)
        }
    };
    let width = header_width.unwrap_or(0);
    for row in first..text.height() {
        if text.width(row) > width {
            let data_row = *rows_before + (row - first) as u64 + 1;
            return Err(Diagnostic::new(format!("cannot read `{rel}`"))
                .cause(format!(
                    "data row {data_row} has {} fields but the header has {width}",
                    text.width(row)
                ))
                .hint(
                    "quote fields that contain commas; every record needs the header's columns",
                ));
        }
    }
    *rows_before += (text.height() - first) as u64;
    Ok(Batch::Csv {
        header,
        text,
        first,
    })
}

/// UTF-8 if the file starts with a BOM or its first `DETECT_BYTES` are valid UTF-8, otherwise GBK.
/// Looking at the start only keeps a 2 GB file from being read twice; a file that turns invalid
/// later is reported by the UTF-8 reader with the line and a hint to set `encoding: gbk`. For
/// GBK, also the offset of the first byte that is not UTF-8 (the evidence, for messages).
fn detect_encoding(path: &Path) -> std::io::Result<(Encoding, Option<u64>)> {
    let mut head = Vec::new();
    File::open(path)?
        .take(DETECT_BYTES as u64)
        .read_to_end(&mut head)?;
    if head.starts_with(b"\xEF\xBB\xBF") {
        return Ok((Encoding::Utf8, None));
    }
    Ok(match simdutf8::compat::from_utf8(&head) {
        Ok(_) => (Encoding::Utf8, None),
        // A sequence cut by the end of the sample is not evidence against UTF-8.
        Err(e) if e.error_len().is_none() && head.len() == DETECT_BYTES => (Encoding::Utf8, None),
        Err(e) => (Encoding::Gbk, Some(e.valid_up_to() as u64)),
    })
}

/// The producer thread: reads, decodes to UTF-8 and sends pieces that end at a record boundary.
fn produce_chunks(
    path: &Path,
    rel: &str,
    encoding: (Encoding, Option<u64>),
    tx: &mpsc::SyncSender<Result<Piece, Diagnostic>>,
) {
    if let Err(d) = produce_chunks_inner(path, rel, encoding, tx) {
        let _ = tx.send(Err(d));
    }
}

fn produce_chunks_inner(
    path: &Path,
    rel: &str,
    (encoding, not_utf8): (Encoding, Option<u64>),
    tx: &mpsc::SyncSender<Result<Piece, Diagnostic>>,
) -> Result<(), Diagnostic> {
    let mut file = File::open(path).map_err(|e| io_err(rel, e))?;
    let mut decoder =
        (encoding == Encoding::Gbk).then(|| encoding_rs::GBK.new_decoder_without_bom_handling());
    let mut raw = Vec::with_capacity(READ_BYTES);
    let mut splitter = RecordSplitter::new(CSV_CHUNK_BYTES);
    let mut offset: u64 = 0;
    loop {
        let n = match decoder.as_mut() {
            Some(dec) => {
                raw.clear();
                let n = read_some(&mut file, &mut raw).map_err(|e| io_err(rel, e))?;
                decode_gbk(dec, &raw, n == 0, &mut splitter.pending).map_err(
                    |at| match not_utf8 {
                        Some(evidence) => {
                            mixed_encodings((path, rel), evidence, offset + at as u64)
                        }
                        None => bad_bytes((path, rel), "GBK", offset + at as u64),
                    },
                )?;
                n
            }
            // UTF-8 needs no transcoding: read straight into the pending text.
            None => read_some(&mut file, &mut splitter.pending).map_err(|e| io_err(rel, e))?,
        };
        if offset == 0
            && encoding == Encoding::Utf8
            && splitter.pending.starts_with(b"\xEF\xBB\xBF")
        {
            splitter.pending.drain(..3);
            splitter.consumed = 3;
        }
        offset += n as u64;
        let last = n == 0;
        let pieces = if last {
            splitter.finish()
        } else {
            splitter.take_pieces()
        };
        // UTF-8 is checked where pieces are split into fields; `offset` places an error.
        let mut at = splitter.consumed - pieces.iter().map(|p| p.len() as u64).sum::<u64>();
        for bytes in pieces {
            let len = bytes.len() as u64;
            if tx.send(Ok(Piece { offset: at, bytes })).is_err() {
                return Ok(());
            }
            at += len;
        }
        if last {
            return Ok(());
        }
    }
}

/// Appends up to `READ_BYTES` from `file` to `buf` (without zero-filling); 0 at the end.
fn read_some(file: &mut File, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    file.take(READ_BYTES as u64).read_to_end(buf)
}

fn bad_bytes((path, rel): (&Path, &str), encoding: &str, at: u64) -> Diagnostic {
    Diagnostic::new(format!("cannot read `{rel}`"))
        .cause(format!(
            "invalid {encoding} bytes at line {} (byte {at})",
            line_at(path, at)
        ))
        .hint("set `encoding:` (`utf-8` or `gbk`) in the stage spec to the file's real encoding")
}

/// `encoding: auto` read a file as GBK because of a byte that is not UTF-8, and it is not GBK
/// either: name that line (the evidence), not a byte of the valid UTF-8 before it that GBK
/// cannot decode.
fn mixed_encodings((path, rel): (&Path, &str), not_utf8: u64, not_gbk: u64) -> Diagnostic {
    Diagnostic::new(format!("cannot read `{rel}`: it is neither UTF-8 nor GBK"))
        .cause(format!(
            "line {} (byte {not_utf8}) is not UTF-8, so `encoding: auto` read the file as GBK",
            line_at(path, not_utf8)
        ))
        .cause(format!(
            "but line {} (byte {not_gbk}) is not GBK",
            line_at(path, not_gbk)
        ))
        .hint("the file mixes encodings: fix the line that is not UTF-8, or save the whole export in one encoding")
}

/// The 1-based physical line of byte `at` of the file (an error path: reads the file up to it).
fn line_at(path: &Path, at: u64) -> u64 {
    let Ok(file) = File::open(path) else {
        return 0;
    };
    let mut prefix = Vec::new();
    if file.take(at).read_to_end(&mut prefix).is_err() {
        return 0;
    }
    1 + memchr::memchr_iter(b'\n', &prefix).count() as u64
}

/// Decodes GBK bytes onto `out`; on malformed input returns the offset in `src` where it was
/// found.
fn decode_gbk(
    dec: &mut encoding_rs::Decoder,
    mut src: &[u8],
    last: bool,
    out: &mut Vec<u8>,
) -> Result<(), usize> {
    let mut read_total = 0;
    loop {
        let room = dec
            .max_utf8_buffer_length_without_replacement(src.len())
            .unwrap_or(src.len() * 3 + 16)
            .max(16);
        let start = out.len();
        out.resize(start + room, 0);
        let (result, read, written) =
            dec.decode_to_utf8_without_replacement(src, &mut out[start..], last);
        out.truncate(start + written);
        read_total += read;
        src = &src[read..];
        match result {
            encoding_rs::DecoderResult::InputEmpty => return Ok(()),
            encoding_rs::DecoderResult::OutputFull => continue,
            encoding_rs::DecoderResult::Malformed(_, _) => return Err(read_total),
        }
    }
}

/// Cuts a stream of UTF-8 CSV text into pieces that end after an unquoted newline.
struct RecordSplitter {
    /// Pieces are cut at the first record boundary at or after this many bytes.
    min_piece: usize,
    pending: Vec<u8>,
    /// End of the last complete record in `pending` found so far (where the next one starts):
    /// records are found by `csvtext::scan_record`, as the field splitter finds them.
    boundary: usize,
    /// With no complete record in `pending`, look again only once it holds this many bytes, so
    /// that a record that runs long (a quote never closed) is not rescanned at every read.
    rescan_at: usize,
    /// Bytes handed out so far (for error offsets).
    consumed: u64,
}

impl RecordSplitter {
    fn new(min_piece: usize) -> Self {
        RecordSplitter {
            min_piece,
            pending: Vec::new(),
            boundary: 0,
            rescan_at: 0,
            consumed: 0,
        }
    }

    /// Moves `boundary` past the complete records in `pending`, up to a piece's worth; `eof`:
    /// nothing more comes, so every record ends.
    fn scan(&mut self, eof: bool) {
        while self.boundary < self.pending.len() && self.boundary < self.min_piece {
            match scan_record(&self.pending, self.boundary, eof) {
                Scan::Record { next, .. } => self.boundary = next,
                Scan::NeedMore => return,
            }
        }
    }

    /// Hands out `pending` up to `boundary` as a piece.
    fn cut(&mut self) -> Vec<u8> {
        // The rest goes to a buffer of full size, so that filling it does not reallocate (a
        // caller's "one piece" asks for `usize::MAX`: the usual size is enough to start with).
        let full = self.min_piece.min(CSV_CHUNK_BYTES) + READ_BYTES;
        let mut rest = Vec::with_capacity(full);
        rest.extend_from_slice(&self.pending[self.boundary..]);
        let mut piece = std::mem::replace(&mut self.pending, rest);
        piece.truncate(self.boundary);
        self.boundary = 0;
        self.rescan_at = 0;
        self.consumed += piece.len() as u64;
        piece
    }

    /// Complete records, a piece's worth at a time, once at least that much has accumulated.
    fn take_pieces(&mut self) -> Vec<Vec<u8>> {
        let mut pieces = Vec::new();
        while self.pending.len() >= self.min_piece.max(self.rescan_at) {
            self.scan(false);
            if self.boundary == 0 {
                self.rescan_at = 2 * self.pending.len();
                break;
            }
            pieces.push(self.cut());
        }
        pieces
    }

    /// Everything left, in pieces (the last record may lack its line break).
    fn finish(&mut self) -> Vec<Vec<u8>> {
        let mut pieces = Vec::new();
        while !self.pending.is_empty() {
            // At the end of the text every record ends, so each pass cuts at least one.
            self.scan(true);
            pieces.push(self.cut());
        }
        pieces
    }
}

// ---------------------------------------------------------------------------------------------
// Parquet

/// Reads a Parquet file in row slices; every column is converted to text.
pub fn read_parquet(path: &Path, rel: &str, sink: &mut Sink<'_>) -> Result<(), Diagnostic> {
    let name = path.to_string_lossy().to_string();
    let mut offset = 0usize;
    loop {
        let df =
            LazyFrame::scan_parquet(PlRefPath::from(name.as_str()), ScanArgsParquet::default())
                .and_then(|lf| lf.slice(offset as i64, BATCH_ROWS as IdxSize).collect())
                .map_err(|e| io_err(rel, e))?;
        let df = frame_as_text(&df, rel)?;
        let height = df.height();
        sink(Batch::Frame(df))?;
        if height < BATCH_ROWS {
            return Ok(());
        }
        offset += height;
    }
}

/// Every column as text: dates as ISO dates, integral floats without `.0`. A column that has
/// no text form (a list, a struct) is an error naming it and its type.
fn frame_as_text(df: &DataFrame, rel: &str) -> Result<DataFrame, Diagnostic> {
    let mut columns = Vec::with_capacity(df.width());
    for col in df.columns() {
        let text = column_as_text(col).and_then(|t| {
            if t.dtype() == &DataType::String {
                Ok(t)
            } else {
                Err(PolarsError::ComputeError("it has no text form".into()))
            }
        });
        let text = text.map_err(|e| {
            let first = e.to_string();
            let first = first.lines().next().unwrap_or_default().to_string();
            Diagnostic::new(format!("cannot read `{rel}`"))
                .cause(format!(
                    "column `{}` of type `{}` cannot be read as text: {first}",
                    col.name(),
                    col.dtype()
                ))
                .hint("export that column as text, or leave it out of the export")
        })?;
        columns.push(text);
    }
    DataFrame::new(df.height(), columns).map_err(|e| io_err(rel, e))
}

fn column_as_text(col: &Column) -> PolarsResult<Column> {
    Ok(match col.dtype() {
        DataType::String => col.clone(),
        DataType::Datetime(_, _) => col.cast(&DataType::Date)?.cast(&DataType::String)?,
        DataType::Float32 | DataType::Float64 => {
            let f = col.cast(&DataType::Float64)?;
            let values: Vec<Option<String>> = f.f64()?.iter().map(|v| v.map(number_text)).collect();
            Column::new(col.name().clone(), values)
        }
        _ => col.cast(&DataType::String)?,
    })
}

/// A number as a person would type it: `100084`, not `100084.0`.
fn number_text(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        v.to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// xlsx

/// Which sheet to read and which header holds dates (whose plain numbers are Excel serials).
pub struct XlsxConfig<'a> {
    pub sheet: Option<&'a str>,
    pub date_header: &'a str,
}

/// Reads one sheet of an xlsx workbook: the first row is the header, every cell becomes text.
pub fn read_xlsx(
    path: &Path,
    rel: &str,
    cfg: &XlsxConfig<'_>,
    sink: &mut Sink<'_>,
) -> Result<(), Diagnostic> {
    let mut book: Xlsx<_> = calamine::open_workbook(path).map_err(|e| io_err(rel, e))?;
    let names = book.sheet_names();
    let sheet = match cfg.sheet {
        Some(s) if names.iter().any(|n| n == s) => s.to_string(),
        Some(s) => {
            return Err(Diagnostic::new(format!("cannot read `{rel}`"))
                .cause(format!(
                    "no sheet `{s}`; sheets: {}",
                    names
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .hint("set `sheet:` in the stage spec to one of the sheets"))
        }
        None => names
            .first()
            .cloned()
            .ok_or_else(|| io_err(rel, "the workbook has no sheets"))?,
    };
    let range = book.worksheet_range(&sheet).map_err(|e| io_err(rel, e))?;
    let mut rows = range.rows();
    let header: Vec<String> = rows
        .next()
        .ok_or_else(|| {
            io_err(
                rel,
                format!("sheet `{sheet}` is empty: a header row is required"),
            )
        })?
        .iter()
        .map(|c| cell_text(c, false))
        .collect();
    let wanted = normalize(cfg.date_header);
    let date_col = header.iter().position(|h| normalize(h) == wanted);
    let mut columns: Vec<Vec<String>> = vec![Vec::new(); header.len()];
    let mut sent_any = false;
    for row in rows {
        for (i, col) in columns.iter_mut().enumerate() {
            let cell = row.get(i).unwrap_or(&Data::Empty);
            col.push(cell_text(cell, Some(i) == date_col));
        }
        if columns.first().is_some_and(|c| c.len() >= BATCH_ROWS) {
            sink(Batch::Frame(
                text_frame(&header, &mut columns).map_err(|e| io_err(rel, e))?,
            ))?;
            sent_any = true;
        }
    }
    // The last partial batch, or the header alone when the sheet has no data rows.
    if !sent_any || columns.first().is_some_and(|c| !c.is_empty()) {
        sink(Batch::Frame(
            text_frame(&header, &mut columns).map_err(|e| io_err(rel, e))?,
        ))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// CNKI-style text exports

/// Reads a text export of `label=value` records (CNKI's "自定义" and similar exports): records are
/// separated by blank lines, each line is `label=value` (`=` or `＝`, spaces around either side
/// trimmed), a line without `=` continues the previous value, and a label given twice in a record
/// (one `申请人=` line per applicant) joins its values with `;`. Each label is a column, in the
/// order labels first appear; a record without a label has an empty cell. GBK or UTF-8 as
/// `encoding` says (`auto`: UTF-8 when the whole file is, else GBK); a UTF-8 BOM is skipped.
/// Such exports are small (a download is capped at a few thousand records), so the file is
/// decoded at once and handed on in batches of rows.
pub fn read_text_records(
    path: &Path,
    rel: &str,
    encoding: Encoding,
    sink: &mut Sink<'_>,
) -> Result<Encoding, Diagnostic> {
    let bytes = std::fs::read(path).map_err(|e| io_err(rel, e))?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let (text, used): (std::borrow::Cow<'_, str>, Encoding) = match encoding {
        Encoding::Utf8 => match std::str::from_utf8(bytes) {
            Ok(t) => (t.into(), Encoding::Utf8),
            Err(e) => {
                return Err(bad_bytes((path, rel), "utf-8", e.valid_up_to() as u64)
                    .hint("set `encoding: gbk` (or `auto`) if the export is GBK"))
            }
        },
        Encoding::Auto if std::str::from_utf8(bytes).is_ok() => (
            std::str::from_utf8(bytes).unwrap_or_default().into(),
            Encoding::Utf8,
        ),
        Encoding::Auto | Encoding::Gbk => {
            match encoding_rs::GBK.decode_without_bom_handling_and_without_replacement(bytes) {
                Some(t) => (t, Encoding::Gbk),
                None => {
                    return Err(
                        Diagnostic::new(format!("`{rel}` is neither UTF-8 nor GBK text"))
                            .hint("save the export as UTF-8 or GBK"),
                    )
                }
            }
        }
    };
    let records = parse_records(&text);
    let mut header: Vec<String> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = Default::default();
    for r in &records {
        for (label, _) in r {
            if !index.contains_key(label) {
                index.insert(label.clone(), header.len());
                header.push(label.clone());
            }
        }
    }
    for chunk in records.chunks(BATCH_ROWS) {
        let mut columns: Vec<Vec<String>> = vec![Vec::with_capacity(chunk.len()); header.len()];
        for r in chunk {
            let row = columns.first().map_or(0, Vec::len);
            for c in columns.iter_mut() {
                c.push(String::new());
            }
            for (label, value) in r {
                columns[index[label]][row] = value.clone();
            }
        }
        let df = text_frame(&header, &mut columns).map_err(|e| io_err(rel, e))?;
        sink(Batch::Frame(df))?;
    }
    if records.is_empty() {
        let df = text_frame(&header, &mut []).map_err(|e| io_err(rel, e))?;
        sink(Batch::Frame(df))?;
    }
    Ok(used)
}

/// The records of a `label=value` text: one `(label, value)` per label, in first-seen order.
fn parse_records(text: &str) -> Vec<Vec<(String, String)>> {
    let mut records = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !current.is_empty() {
                records.push(std::mem::take(&mut current));
            }
            continue;
        }
        let split = line.find(['=', '＝']).map(|i| {
            let sep = line[i..].chars().next().map_or(1, char::len_utf8);
            (line[..i].trim(), line[i + sep..].trim())
        });
        match split {
            Some((label, value)) if !label.is_empty() => {
                match current.iter_mut().find(|(l, _)| l == label) {
                    Some((_, v)) if v.is_empty() => v.push_str(value),
                    Some((_, v)) if !value.is_empty() => {
                        v.push(';');
                        v.push_str(value);
                    }
                    Some(_) => {}
                    None => current.push((label.to_string(), value.to_string())),
                }
            }
            // A continuation of the previous value (a wrapped abstract or address).
            _ => {
                if let Some((_, v)) = current.last_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
            }
        }
    }
    if !current.is_empty() {
        records.push(current);
    }
    records
}

/// Builds a DataFrame of text columns and empties the buffers. Duplicate or empty header names get
/// a suffix, as polars' CSV reader does, so that building the frame cannot fail on them.
fn text_frame(header: &[String], columns: &mut [Vec<String>]) -> PolarsResult<DataFrame> {
    let mut seen = std::collections::HashSet::new();
    let height = columns.first().map_or(0, Vec::len);
    let cols = header
        .iter()
        .zip(columns.iter_mut())
        .enumerate()
        .map(|(i, (h, values))| {
            let mut name = if h.is_empty() {
                format!("column_{}", i + 1)
            } else {
                h.clone()
            };
            if !seen.insert(name.clone()) {
                name = format!("{name}_duplicated_{i}");
                seen.insert(name.clone());
            }
            Column::new(name.into(), std::mem::take(values))
        })
        .collect();
    DataFrame::new(height, cols)
}

/// A cell as text. In the date column plain numbers in Excel's serial range are dates.
fn cell_text(cell: &Data, is_date_column: bool) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) if is_date_column => serial_or_number(*i as f64),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if is_date_column => serial_or_number(*f),
        Data::Float(f) => number_text(*f),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) if dt.is_datetime() => {
            let (y, m, d, ..) = dt.to_ymd_hms_milli();
            format!("{y:04}-{m:02}-{d:02}")
        }
        Data::DateTime(dt) => number_text(dt.as_f64()),
        // `2010-03-15T00:00:00` keeps its date part.
        Data::DateTimeIso(s) => s.split('T').next().unwrap_or(s).to_string(),
        Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

/// Excel's serial range (1900 system) is 1 to 2958465 (9999-12-31); bigger whole numbers such as
/// `20100315` are dates typed as digits and stay as they are.
fn serial_or_number(v: f64) -> String {
    if !(1.0..2_958_466.0).contains(&v) {
        return number_text(v);
    }
    let dt = calamine::ExcelDateTime::new(v, calamine::ExcelDateTimeType::DateTime, false);
    let (y, m, d, ..) = dt.to_ymd_hms_milli();
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod text_tests {
    use super::parse_records;

    #[test]
    fn records_labels_continuations_and_repeats() {
        let text =
            "申请号=CN1\r\n申请人=甲\n申请人 = 乙\n摘要=一行\n  续行\n\n\n申请号＝CN2\n地址=\n";
        let r = parse_records(text);
        assert_eq!(r.len(), 2);
        let pairs = |i: usize| -> Vec<(&str, &str)> {
            r[i].iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
        };
        assert_eq!(
            pairs(0),
            [
                ("申请号", "CN1"),
                ("申请人", "甲;乙"),
                ("摘要", "一行 续行")
            ]
        );
        assert_eq!(pairs(1), [("申请号", "CN2"), ("地址", "")]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(text: &[u8], feed: usize) -> Vec<Vec<u8>> {
        let mut s = RecordSplitter::new(1);
        let mut out = Vec::new();
        for part in text.chunks(feed) {
            s.pending.extend_from_slice(part);
            out.extend(s.take_pieces());
        }
        out.extend(s.finish());
        out
    }

    #[test]
    fn splitter_cuts_only_at_unquoted_newlines() {
        let text = b"a,b\n1,\"x\ny\"\n2,\"he said \"\"hi\"\"\n\"\n3,z";
        for feed in 1..text.len() {
            let pieces = split_all(text, feed);
            assert_eq!(pieces.concat(), text.to_vec(), "feed {feed}");
            let (last, complete) = pieces.split_last().unwrap();
            for p in complete {
                let quotes = p.iter().filter(|&&b| b == b'"').count();
                assert!(p.ends_with(b"\n") && quotes % 2 == 0, "feed {feed}: {p:?}");
            }
            assert!(last.ends_with(b"3,z"));
        }
        // Fed at once with pieces of at least one byte: one record a piece.
        let pieces = split_all(text, text.len());
        assert_eq!(pieces.len(), 4);
        assert_eq!(pieces[1], b"1,\"x\ny\"\n");
        assert_eq!(pieces[3], b"3,z");
    }

    #[test]
    fn serials_and_numbers_in_the_date_column() {
        // 40252 days after 1899-12-30 is 2010-03-15.
        assert_eq!(serial_or_number(40252.0), "2010-03-15");
        assert_eq!(serial_or_number(20100315.0), "20100315");
        assert_eq!(number_text(100084.0), "100084");
        assert_eq!(number_text(1.5), "1.5");
    }

    #[test]
    fn gbk_decoding_across_read_boundaries_and_malformed_bytes() {
        let (bytes, _, _) = encoding_rs::GBK.encode("申请号,北京\n");
        let mut dec = encoding_rs::GBK.new_decoder_without_bom_handling();
        let mut out = Vec::new();
        // Split inside the two-byte sequence of `申`.
        decode_gbk(&mut dec, &bytes[..1], false, &mut out).unwrap();
        decode_gbk(&mut dec, &bytes[1..], true, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "申请号,北京\n");
        let mut dec = encoding_rs::GBK.new_decoder_without_bom_handling();
        assert!(decode_gbk(&mut dec, b"ab\x81\x20", true, &mut Vec::new()).is_err());
    }
}
