//! Judging one row of an export: kept (normalised, borrowing from the batch where it can) or
//! quarantined with the first reason that applies; the kept rows as a frame of the output
//! schema, and a quarantined row as a line of the quarantine CSV.
//!
//! Owns: the checks of one row and their order (`Reason`), and the two row formats ingest writes.
//! Deliberately does not own: the text rules for one cell (`textnorm`), duplicate numbers across
//! rows (`claims`), or reading files (`sources`, `csvtext`).

use std::borrow::Cow;
use std::io::Write;

use polars::prelude::*;
use rayon::prelude::*;

use super::csvtext::TextBatch;
use super::{output_schema, RawField, FIELDS};
use crate::textnorm::{self, AppNumber};

/// Why a row was not kept. Checked in this order; a row gets the first reason that applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Reason {
    /// A CSV record that breaks RFC 4180's quoting (`csvtext::Malformed`): its fields are unknown.
    MalformedRecord,
    BadApplicationNumber,
    BadDate,
    MissingApplicant,
    BadType,
    Duplicate,
}

pub(super) const REASONS: [Reason; 6] = [
    Reason::MalformedRecord,
    Reason::BadApplicationNumber,
    Reason::BadDate,
    Reason::MissingApplicant,
    Reason::BadType,
    Reason::Duplicate,
];

impl Reason {
    pub(super) fn name(self) -> &'static str {
        match self {
            Reason::MalformedRecord => "malformed_record",
            Reason::BadApplicationNumber => "bad_application_number",
            Reason::BadDate => "bad_date",
            Reason::MissingApplicant => "missing_applicant",
            Reason::BadType => "bad_type",
            Reason::Duplicate => "duplicate",
        }
    }
}

/// The cells of one batch, by field; nulls read as empty text.
pub(super) enum Cells<'a> {
    /// Columns collected from a DataFrame (Parquet, xlsx).
    Columns([Option<Vec<&'a str>>; FIELDS.len()]),
    /// CSV records: each field's column in the record, and the batch's text.
    Csv {
        batch: &'a TextBatch,
        text: &'a str,
        first: usize,
        index: [Option<usize>; FIELDS.len()],
    },
}

impl<'a> Cells<'a> {
    /// Whether CSV record `row` breaks RFC 4180 (then `line` holds its text).
    fn malformed(&self, row: usize) -> bool {
        match self {
            Cells::Columns(_) => false,
            Cells::Csv { batch, first, .. } => batch.malformed(first + row).is_some(),
        }
    }

    /// The physical line of a malformed CSV record.
    fn line(&self, row: usize) -> &'a str {
        match self {
            Cells::Columns(_) => "",
            Cells::Csv {
                batch, text, first, ..
            } => batch.cell(text, first + row, 0),
        }
    }

    fn get(&self, field: RawField, row: usize) -> &'a str {
        match self {
            Cells::Columns(cols) => cols[field as usize]
                .as_ref()
                .and_then(|c| c.get(row).copied())
                .unwrap_or(""),
            Cells::Csv {
                batch,
                text,
                first,
                index,
            } => match index[field as usize] {
                Some(col) => batch.cell(text, first + row, col),
                None => "",
            },
        }
    }
}

/// A row that passed every check, normalised, borrowing from the batch where it can.
pub(super) struct Clean<'a> {
    pub(super) number: AppNumber,
    date: textnorm::Date,
    ptype: i32,
    ipc: Cow<'a, str>,
    applicants: Cow<'a, str>,
    n_applicants: i32,
    address: Cow<'a, str>,
    postcode: Cow<'a, str>,
    province_code: Cow<'a, str>,
}

/// Applies `f` (which returns a part of its input) without copying borrowed text.
pub(super) fn narrow<'a>(c: Cow<'a, str>, f: impl Fn(&str) -> &str) -> Cow<'a, str> {
    match c {
        Cow::Borrowed(s) => Cow::Borrowed(f(s)),
        Cow::Owned(s) => Cow::Owned(f(&s).to_string()),
    }
}

/// Judges one row: the first failing check gives the reason (the duplicate check comes later, in
/// input order).
pub(super) fn judge_row<'a>(
    cells: &Cells<'a>,
    row: usize,
    has_type: bool,
) -> Result<Clean<'a>, Reason> {
    if cells.malformed(row) {
        return Err(Reason::MalformedRecord);
    }
    let cell = |f: RawField| cells.get(f, row);
    let number = textnorm::parse_app_number(cell(RawField::ApplicationNumber))
        .ok_or(Reason::BadApplicationNumber)?;
    let date = textnorm::parse_date(cell(RawField::ApplicationDate)).ok_or(Reason::BadDate)?;
    let (applicants, n_applicants) = match textnorm::normalize(cell(RawField::Applicants)) {
        Cow::Borrowed(s) => textnorm::split_applicants(s),
        Cow::Owned(s) => {
            let (joined, n) = textnorm::split_applicants(&s);
            (Cow::Owned(joined.into_owned()), n)
        }
    };
    if n_applicants == 0 {
        return Err(Reason::MissingApplicant);
    }
    let ptype = if has_type {
        textnorm::parse_patent_type(cell(RawField::PatentType))
    } else {
        textnorm::type_from_digit(number.type_digit())
    }
    .ok_or(Reason::BadType)?;
    let mut address = textnorm::normalize(cell(RawField::Address));
    let mut postcode = narrow(
        textnorm::normalize(cell(RawField::Postcode)),
        textnorm::postcode,
    );
    // An address that starts with the postcode (`100871 北京市海淀区…`, as CNKI writes 地址) gives
    // the postcode when the export has none, and loses it either way.
    if let Some(code) = textnorm::leading_postcode(&address) {
        if postcode.is_empty() {
            postcode = Cow::Owned(code.to_string());
        }
        address = narrow(address, textnorm::after_leading_postcode);
    }
    Ok(Clean {
        number,
        date,
        ptype,
        ipc: textnorm::normalize(cell(RawField::Ipc)),
        applicants,
        n_applicants: i32::try_from(n_applicants).unwrap_or(i32::MAX),
        address,
        postcode,
        province_code: textnorm::normalize(cell(RawField::ProvinceCode)),
    })
}

/// A text column's cells, a null as an empty text; chunk by chunk, as `table::str_values` says.
pub(super) fn text_cells(col: &Column) -> PolarsResult<Vec<&str>> {
    let ca = col.str()?;
    let mut out = Vec::with_capacity(ca.len());
    for arr in ca.downcast_iter() {
        out.extend(arr.iter().map(|v| v.unwrap_or("")));
    }
    Ok(out)
}

/// The kept rows as a DataFrame of the output schema (docs/data.md).
pub(super) fn kept_frame(kept: &[(u64, &Clean<'_>)]) -> PolarsResult<DataFrame> {
    let numbers: Vec<[u8; 14]> = kept.iter().map(|(_, c)| c.number.text()).collect();
    let dates: Vec<[u8; 10]> = kept.iter().map(|(_, c)| c.date.iso()).collect();
    // Both are ASCII by construction, so the conversion cannot fail.
    fn ascii(b: &[u8]) -> &str {
        std::str::from_utf8(b).unwrap_or_default()
    }
    let build = |i: usize| -> Column {
        match i {
            0 => Column::new(
                "app_no".into(),
                numbers.iter().map(|b| ascii(b)).collect::<Vec<&str>>(),
            ),
            1 => Column::new(
                "year".into(),
                kept.iter().map(|(_, c)| c.date.year).collect::<Vec<i32>>(),
            ),
            2 => Column::new(
                "date".into(),
                dates.iter().map(|b| ascii(b)).collect::<Vec<&str>>(),
            ),
            3 => Column::new(
                "ptype".into(),
                kept.iter().map(|(_, c)| c.ptype).collect::<Vec<i32>>(),
            ),
            4 => Column::new(
                "ipc".into(),
                kept.iter()
                    .map(|(_, c)| c.ipc.as_ref())
                    .collect::<Vec<&str>>(),
            ),
            5 => Column::new(
                "applicants".into(),
                kept.iter()
                    .map(|(_, c)| c.applicants.as_ref())
                    .collect::<Vec<&str>>(),
            ),
            6 => Column::new(
                "n_applicants".into(),
                kept.iter()
                    .map(|(_, c)| c.n_applicants)
                    .collect::<Vec<i32>>(),
            ),
            7 => Column::new(
                "address".into(),
                kept.iter()
                    .map(|(_, c)| c.address.as_ref())
                    .collect::<Vec<&str>>(),
            ),
            8 => Column::new(
                "postcode".into(),
                kept.iter()
                    .map(|(_, c)| c.postcode.as_ref())
                    .collect::<Vec<&str>>(),
            ),
            9 => Column::new(
                "province_code".into(),
                kept.iter()
                    .map(|(_, c)| c.province_code.as_ref())
                    .collect::<Vec<&str>>(),
            ),
            _ => Column::new(
                "source_row".into(),
                kept.iter().map(|(r, _)| *r).collect::<Vec<u64>>(),
            ),
        }
    };
    // Columns are built in parallel; the order of the vector is the schema's order.
    let columns: Vec<Column> = (0..output_schema().len())
        .into_par_iter()
        .map(build)
        .collect();
    DataFrame::new(kept.len(), columns)
}

/// One quarantine line: where the row came from, why, and its raw cells as read.
pub(super) fn write_quarantine_row(
    w: &mut impl Write,
    rel: &str,
    source_row: u64,
    reason: Reason,
    cells: &Cells<'_>,
    row: usize,
) -> std::io::Result<()> {
    write_csv_field(w, rel)?;
    write!(w, ",{source_row},{}", reason.name())?;
    // A malformed record's fields are unknown: its line goes under the first field, whole.
    let malformed = reason == Reason::MalformedRecord;
    for (k, field) in FIELDS.into_iter().enumerate() {
        w.write_all(b",")?;
        let text = match (malformed, k) {
            (false, _) => cells.get(field, row),
            (true, 0) => cells.line(row),
            (true, _) => "",
        };
        write_csv_field(w, text)?;
    }
    w.write_all(b"\n")
}

/// RFC 4180 quoting: fields with a comma, quote or line break are quoted, quotes doubled.
pub(super) fn write_csv_field(w: &mut impl Write, s: &str) -> std::io::Result<()> {
    if !s.contains([',', '"', '\n', '\r']) {
        return w.write_all(s.as_bytes());
    }
    w.write_all(b"\"")?;
    w.write_all(s.replace('"', "\"\"").as_bytes())?;
    w.write_all(b"\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        let mut out = Vec::new();
        for s in ["plain", "a,b", "say \"hi\"", "two\nlines", "北京"] {
            write_csv_field(&mut out, s).unwrap();
            out.push(b'|');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"|北京|"
        );
    }
}
