//! The `ingest` built-in stage: raw patent exports in, one clean Parquet table of applications
//! out, every rejected row in a quarantine CSV with its reason, and a JSON report of the counts.
//!
//! Owns: the stage spec (`stages/ingest.yaml`), mapping a vendor's headers to the fields of
//! docs/data.md, keeping the first occurrence of each number, streaming the kept rows to Parquet
//! in input order, and the promise that rows read = kept + quarantined. Deliberately does not
//! own: the checks of one row and the two row formats (`rows`), the text rules for one cell
//! (`textnorm`), or file formats and encodings (`sources`).

mod claims;
mod csvtext;
mod rows;
mod sources;

pub use sources::{split_csv_text, CsvPiece};

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Deserializer, Serialize};

use crate::textnorm;
use claims::Claims;
use repro_kind::diag::Diagnostic;
use repro_kind::normalize_path;
use repro_kind::{kind_err, BuiltinCtx, ImpliedIo, KindError, ParseCtx};
use repro_tabular::stream::{self, StreamConfig};
use rows::{
    judge_row, kept_frame, text_cells, write_quarantine_row, Cells, Clean, Reason, REASONS,
};
use sources::{Batch, Encoding, Format};

/// An `ingest` stage: the spec file it was configured by and what that file says.
#[derive(Debug, Clone, Serialize)]
pub struct IngestStage {
    pub spec_path: String,
    pub spec: IngestSpec,
}

/// `stages/ingest.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSpec {
    /// Raw exports (`.csv`, `.parquet`, `.xlsx`), read in this order.
    pub inputs: Vec<String>,
    #[serde(default)]
    pub encoding: Encoding,
    /// xlsx: the sheet to read; default the first.
    #[serde(default)]
    pub sheet: Option<String>,
    #[serde(default)]
    pub columns: ColumnsSpec,
    pub out: String,
    pub quarantine: String,
    pub report: String,
}

/// Field name -> header in the user's export; absent fields take the defaults of docs/data.md.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnsSpec {
    #[serde(default)]
    pub application_number: Option<String>,
    #[serde(default)]
    pub application_date: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub ipc: Option<String>,
    #[serde(default)]
    pub applicants: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub postcode: Option<String>,
    #[serde(default)]
    pub province_code: Option<String>,
    /// Absent: the default header if the file has it, else the type comes from the number.
    /// `null`: never read a type column. A header: that column must exist.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub patent_type: Option<Option<String>>,
}

/// Tells a key given as `null` (`Some(None)`) from an absent key (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// The fields of a raw export, in the order of docs/data.md (and of the quarantine columns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RawField {
    ApplicationNumber,
    ApplicationDate,
    Title,
    Ipc,
    Applicants,
    Address,
    Postcode,
    ProvinceCode,
    PatentType,
}

const FIELDS: [RawField; 9] = [
    RawField::ApplicationNumber,
    RawField::ApplicationDate,
    RawField::Title,
    RawField::Ipc,
    RawField::Applicants,
    RawField::Address,
    RawField::Postcode,
    RawField::ProvinceCode,
    RawField::PatentType,
];

impl RawField {
    fn name(self) -> &'static str {
        match self {
            RawField::ApplicationNumber => "application_number",
            RawField::ApplicationDate => "application_date",
            RawField::Title => "title",
            RawField::Ipc => "ipc",
            RawField::Applicants => "applicants",
            RawField::Address => "address",
            RawField::Postcode => "postcode",
            RawField::ProvinceCode => "province_code",
            RawField::PatentType => "patent_type",
        }
    }

    /// Other headers that exports use for the field: CNKI's text export (申请人, 地址), and the
    /// wordings of commercial exports (申请人地址, 邮政编码, 申请日期 ...). Tried in this order
    /// when the spec leaves the field's header at its default.
    fn aliases(self) -> &'static [&'static str] {
        match self {
            RawField::ApplicationNumber => &["申请号码", "专利申请号", "申请号/专利号"],
            RawField::ApplicationDate => &["申请日期"],
            RawField::Title => &["题名", "专利名称", "发明名称", "标题"],
            RawField::Ipc => &["IPC主分类号", "主IPC", "IPC主分类", "分类号"],
            RawField::Applicants => &[
                "申请人",
                "申请(专利权)人(原始)",
                "原始申请(专利权)人",
                "专利权人",
                "申请人名称",
            ],
            RawField::Address => &["申请人地址", "第一申请人地址", "地址(第一申请人)"],
            RawField::Postcode => &["邮政编码", "申请人邮编"],
            RawField::ProvinceCode => &["国省代码(第一申请人)", "申请人国省代码", "省市代码"],
            RawField::PatentType => &["类型"],
        }
    }

    fn default_header(self) -> &'static str {
        match self {
            RawField::ApplicationNumber => "申请号",
            RawField::ApplicationDate => "申请日",
            RawField::Title => "名称",
            RawField::Ipc => "主分类号",
            RawField::Applicants => "申请(专利权)人",
            RawField::Address => "地址",
            RawField::Postcode => "邮编",
            RawField::ProvinceCode => "国省代码",
            RawField::PatentType => "专利类型",
        }
    }
}

/// How a field is looked for in a file's header.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Wanted {
    Required(String),
    /// Used when present (the optional `patent_type` under its default header).
    IfPresent(String),
    Never,
}

impl ColumnsSpec {
    fn wanted(&self, field: RawField) -> Wanted {
        let given = match field {
            RawField::ApplicationNumber => &self.application_number,
            RawField::ApplicationDate => &self.application_date,
            RawField::Title => &self.title,
            RawField::Ipc => &self.ipc,
            RawField::Applicants => &self.applicants,
            RawField::Address => &self.address,
            RawField::Postcode => &self.postcode,
            RawField::ProvinceCode => &self.province_code,
            RawField::PatentType => {
                return match &self.patent_type {
                    None => Wanted::IfPresent(field.default_header().to_string()),
                    Some(None) => Wanted::Never,
                    Some(Some(h)) => Wanted::Required(h.clone()),
                }
            }
        };
        Wanted::Required(
            given
                .clone()
                .unwrap_or_else(|| field.default_header().into()),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The kind seam

pub fn parse(params: serde_json::Value, ctx: &ParseCtx<'_>) -> Result<IngestStage, KindError> {
    let serde_json::Value::Object(mut obj) = params else {
        return Err(kind_err("`params` must be a mapping"));
    };
    let spec_path = repro_kind::take_path(&mut obj, "spec")?;
    if let Some(extra) = obj.keys().next() {
        return Err(KindError {
            hint: Some("an `ingest` stage takes its settings from its spec file".into()),
            ..kind_err(format!("unknown param `{extra}`; expected only `spec`"))
        });
    }
    let mut spec: IngestSpec = repro_kind::load_spec(ctx.root, &spec_path)?;
    let bad_path = |what: &str, raw: &str, why: String| KindError {
        hint: Some("paths in a stage spec are relative to the pipeline file".into()),
        ..kind_err(format!(
            "invalid path `{raw}` in `{what}` of `{spec_path}`: {why}"
        ))
    };
    if spec.inputs.is_empty() {
        return Err(kind_err(format!("`inputs` of `{spec_path}` is empty")));
    }
    for input in &mut spec.inputs {
        *input = normalize_path(input).map_err(|why| bad_path("inputs", input, why))?;
        if Format::of(input).is_none() {
            return Err(KindError {
                hint: Some(
                    "inputs are `.csv` (UTF-8 or GBK), `.parquet`, `.xlsx` or `.txt` (`label=value` \
                     records, UTF-8 or GBK) files"
                        .into(),
                ),
                ..kind_err(format!(
                    "input `{input}` of `{spec_path}` has an unknown file type"
                ))
            });
        }
    }
    for (what, path) in [
        ("out", &mut spec.out),
        ("quarantine", &mut spec.quarantine),
        ("report", &mut spec.report),
    ] {
        *path = normalize_path(path).map_err(|why| bad_path(what, path, why))?;
    }
    Ok(IngestStage { spec_path, spec })
}

pub fn implied_io(stage: &IngestStage) -> ImpliedIo {
    let s = &stage.spec;
    ImpliedIo {
        deps: std::iter::once(stage.spec_path.clone())
            .chain(s.inputs.iter().cloned())
            .collect(),
        outs: vec![s.out.clone(), s.quarantine.clone(), s.report.clone()],
    }
}

// ---------------------------------------------------------------------------------------------
// Running

/// Rows read, kept and quarantined (per reason) for one input or all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Counts {
    rows_read: u64,
    kept: u64,
    quarantined: [u64; REASONS.len()],
}

impl Counts {
    fn quarantined_total(&self) -> u64 {
        self.quarantined.iter().sum()
    }

    fn add(&mut self, other: &Counts) {
        self.rows_read += other.rows_read;
        self.kept += other.kept;
        for (a, b) in self.quarantined.iter_mut().zip(other.quarantined) {
            *a += b;
        }
    }

    /// Keys in sorted order (serde_json keeps insertion order here).
    fn to_json(&self) -> serde_json::Value {
        let reasons: BTreeMap<&str, u64> = REASONS
            .iter()
            .map(|r| (r.name(), self.quarantined[*r as usize]))
            .collect();
        serde_json::json!({
            "kept": self.kept,
            "quarantined": reasons,
            "quarantined_total": self.quarantined_total(),
            "rows_read": self.rows_read,
        })
    }
}

/// One input's share of the report.
struct InputReport {
    file: String,
    format: Format,
    encoding: Option<Encoding>,
    counts: Counts,
}

/// Where the streamed outputs are being written before they are renamed into place.
struct Outputs {
    parquet: stream::StreamWriter<BufWriter<File>>,
    quarantine: BufWriter<File>,
    temps: Vec<(PathBuf, PathBuf)>,
}

pub fn run(ctx: &BuiltinCtx<'_>, stage: &IngestStage) -> Result<(), Diagnostic> {
    let fail = |d: Diagnostic| Diagnostic {
        message: format!("stage `{}` failed", ctx.stage),
        causes: std::iter::once(d.message).chain(d.causes).collect(),
        ..d
    };
    let started = std::time::Instant::now();
    let spec = &stage.spec;
    let mut outputs = open_outputs(ctx.root, spec).map_err(fail)?;
    let result = ingest_all(ctx.root, stage, &mut outputs);
    let reports = match result {
        Ok(reports) => reports,
        Err(d) => {
            discard(&outputs.temps);
            return Err(fail(d));
        }
    };
    let finished = finish_outputs(ctx.root, outputs, spec, &reports);
    finished.map_err(fail)?;
    let mut total = Counts::default();
    for r in &reports {
        total.add(&r.counts);
    }
    tracing::info!(
        stage = ctx.stage,
        rows_read = total.rows_read,
        kept = total.kept,
        quarantined = total.quarantined_total(),
        seconds = started.elapsed().as_secs_f64(),
        "ingested"
    );
    Ok(())
}

fn output_schema() -> Schema {
    let field = |name: &str, dtype: DataType| Field::new(name.into(), dtype);
    Schema::from_iter([
        field("app_no", DataType::String),
        field("year", DataType::Int32),
        field("date", DataType::String),
        field("ptype", DataType::Int32),
        field("ipc", DataType::String),
        field("applicants", DataType::String),
        field("n_applicants", DataType::Int32),
        field("address", DataType::String),
        field("postcode", DataType::String),
        field("province_code", DataType::String),
        field("source_row", DataType::UInt64),
    ])
}

fn cannot_write(rel: &str, e: &dyn std::fmt::Display) -> Diagnostic {
    Diagnostic::new(format!("cannot write `{rel}`")).cause(e.to_string())
}

fn open_outputs(root: &Path, spec: &IngestSpec) -> Result<Outputs, Diagnostic> {
    let (ptmp, pdest, pfile) =
        repro_kind::create_temp_beside(root, &spec.out).map_err(|e| cannot_write(&spec.out, &e))?;
    // Application numbers and addresses are almost all distinct, so a dictionary would not pay;
    // source rows count up, which delta encoding stores in a few bits each.
    let config = StreamConfig {
        plain: &["app_no", "address"],
        delta: &["source_row"],
        coded: &[],
    };
    let parquet = stream::stream_writer(BufWriter::new(pfile), &output_schema(), config)
        .map_err(|e| cannot_write(&spec.out, &e))?;
    let quarantine =
        repro_kind::create_temp_beside(root, &spec.quarantine).and_then(|(qtmp, qdest, qfile)| {
            let mut w = BufWriter::new(qfile);
            let header: Vec<&str> = ["source_file", "source_row", "reason"]
                .into_iter()
                .chain(FIELDS.iter().map(|f| f.name()))
                .collect();
            writeln!(w, "{}", header.join(","))?;
            Ok((qtmp, qdest, w))
        });
    let (qtmp, qdest, quarantine) = quarantine.map_err(|e| {
        discard(&[(ptmp.clone(), pdest.clone())]);
        cannot_write(&spec.quarantine, &e)
    })?;
    Ok(Outputs {
        parquet,
        quarantine,
        temps: vec![(ptmp, pdest), (qtmp, qdest)],
    })
}

fn discard(temps: &[(PathBuf, PathBuf)]) {
    for (tmp, _) in temps {
        let _ = std::fs::remove_file(tmp);
    }
}

/// Closes the Parquet and quarantine files, renames them into place and writes the report.
fn finish_outputs(
    root: &Path,
    outputs: Outputs,
    spec: &IngestSpec,
    reports: &[InputReport],
) -> Result<(), Diagnostic> {
    let Outputs {
        parquet,
        quarantine,
        temps,
    } = outputs;
    let closed = parquet
        .finish()
        .map_err(|e| cannot_write(&spec.out, &e))
        .and_then(|_| {
            quarantine
                .into_inner()
                .map_err(|e| cannot_write(&spec.quarantine, e.error()))
        });
    if let Err(d) = closed {
        discard(&temps);
        return Err(d);
    }
    for (tmp, dest) in &temps {
        if let Err(e) = std::fs::rename(tmp, dest) {
            discard(&temps);
            return Err(cannot_write(&dest.to_string_lossy(), &e));
        }
    }
    let mut text = serde_json::to_string_pretty(&report_json(reports))
        .map_err(|e| cannot_write(&spec.report, &e))?;
    text.push('\n');
    repro_kind::write_output(root, &spec.report, text.as_bytes())
        .map_err(|e| cannot_write(&spec.report, &e))
}

/// `{"inputs": [...], "totals": {...}}` with every object's keys sorted; inputs in listed order.
fn report_json(reports: &[InputReport]) -> serde_json::Value {
    let mut total = Counts::default();
    let inputs: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| {
            total.add(&r.counts);
            let mut obj = match r.counts.to_json() {
                serde_json::Value::Object(o) => o,
                _ => serde_json::Map::new(),
            };
            obj.insert("file".into(), r.file.clone().into());
            obj.insert("format".into(), r.format.name().into());
            if let Some(enc) = r.encoding {
                obj.insert("encoding".into(), enc.name().into());
            }
            let sorted: BTreeMap<String, serde_json::Value> = obj.into_iter().collect();
            serde_json::Value::Object(sorted.into_iter().collect())
        })
        .collect();
    serde_json::json!({ "inputs": inputs, "totals": total.to_json() })
}

/// Where judged batches go: kept rows to the Parquet writer's thread, the rest to quarantine.
struct Sinks<'a> {
    frames: mpsc::SyncSender<DataFrame>,
    quarantine: &'a mut BufWriter<File>,
}

/// Reads every input in order through one de-duplication set, while a second thread writes the
/// kept rows to Parquet: encoding and compressing a batch then overlaps with judging the next
/// (10M records: 17 s -> 14.5 s).
fn ingest_all(
    root: &Path,
    stage: &IngestStage,
    out: &mut Outputs,
) -> Result<Vec<InputReport>, Diagnostic> {
    let Outputs {
        parquet,
        quarantine,
        ..
    } = out;
    stream::with_parquet_thread(
        parquet,
        |e| cannot_write(&stage.spec.out, e),
        |frames| read_inputs(root, stage, &mut Sinks { frames, quarantine }),
    )
}

fn read_inputs(
    root: &Path,
    stage: &IngestStage,
    out: &mut Sinks<'_>,
) -> Result<Vec<InputReport>, Diagnostic> {
    let spec = &stage.spec;
    let mut claims = Claims::default();
    let mut reports = Vec::new();
    for rel in &spec.inputs {
        let path = root.join(rel);
        if !path.is_file() {
            return Err(Diagnostic::new(format!("input `{rel}` does not exist"))
                .hint(format!("check `inputs:` in `{}`", stage.spec_path)));
        }
        let format = Format::of(rel).unwrap_or(Format::Csv);
        let mut st = FileState {
            rel,
            stage,
            columns: None,
            counts: Counts::default(),
            next_row: 1,
        };
        let mut sink = |batch: Batch| ingest_batch(&batch, &mut st, &mut claims, out);
        let encoding = match format {
            Format::Csv => Some(sources::read_csv(&path, rel, spec.encoding, &mut sink)?),
            Format::Parquet => {
                sources::read_parquet(&path, rel, &mut sink)?;
                None
            }
            Format::Text => Some(sources::read_text_records(
                &path,
                rel,
                spec.encoding,
                &mut sink,
            )?),
            Format::Xlsx => {
                let date_header = match spec.columns.wanted(RawField::ApplicationDate) {
                    Wanted::Required(h) | Wanted::IfPresent(h) => h,
                    Wanted::Never => String::new(),
                };
                let cfg = sources::XlsxConfig {
                    sheet: spec.sheet.as_deref(),
                    date_header: &date_header,
                };
                sources::read_xlsx(&path, rel, &cfg, &mut sink)?;
                None
            }
        };
        let counts = st.counts;
        // Nothing is dropped silently: every row read is kept or quarantined.
        if counts.rows_read != counts.kept + counts.quarantined_total() {
            return Err(Diagnostic::new(format!(
                "internal error: `{rel}`: {} rows read but {} kept and {} quarantined",
                counts.rows_read,
                counts.kept,
                counts.quarantined_total()
            )));
        }
        reports.push(InputReport {
            file: rel.clone(),
            format,
            encoding,
            counts,
        });
    }
    Ok(reports)
}

/// Progress through one input file.
struct FileState<'a> {
    rel: &'a str,
    stage: &'a IngestStage,
    /// Column index of each field in this file (found from the first batch's header).
    columns: Option<[Option<usize>; FIELDS.len()]>,
    counts: Counts,
    /// Source row (1-based, header excluded) of the next batch's first row.
    next_row: u64,
}

/// Finds each field's column in a file's header (compared after text normalisation, so that
/// `申请（专利权）人` matches `申请(专利权)人`); all missing headers are reported at once.
fn map_columns(
    names: &[String],
    st: &FileState<'_>,
) -> Result<[Option<usize>; FIELDS.len()], Diagnostic> {
    let normalized: Vec<Cow<'_, str>> = names.iter().map(|n| textnorm::normalize(n)).collect();
    let find = |h: &str| {
        let h = textnorm::normalize(h);
        normalized.iter().position(|n| *n == h)
    };
    let mut found = [None; FIELDS.len()];
    let mut missing = Vec::new();
    for (slot, field) in found.iter_mut().zip(FIELDS) {
        match st.stage.spec.columns.wanted(field) {
            // A header left at its default is also looked for under the names other exports
            // give the field (`申请人`, `申请人地址`, `邮政编码`).
            Wanted::Required(h) => {
                let alias = || {
                    (h == field.default_header())
                        .then(|| field.aliases().iter().find_map(|a| find(a)))
                        .flatten()
                };
                match find(&h).or_else(alias) {
                    Some(i) => *slot = Some(i),
                    None => missing.push((field, h)),
                }
            }
            Wanted::IfPresent(h) => *slot = find(&h),
            Wanted::Never => {}
        }
    }
    if missing.is_empty() {
        return Ok(found);
    }
    let mut d = Diagnostic::new(format!("input `{}` lacks columns the stage needs", st.rel));
    for (field, h) in &missing {
        d = d.cause(format!("no column `{h}` for field `{}`", field.name()));
    }
    // A control character (a NUL) in a header is invisible when printed: the message would say
    // "no column `申请人`" and list `申请人`. Show it escaped, and say so.
    let listed: Vec<String> = names.iter().map(|n| format!("`{}`", visible(n))).collect();
    d = d.cause(format!("columns found: {}", listed.join(", ")));
    if let Some(n) = names.iter().find(|n| n.chars().any(char::is_control)) {
        d = d.cause(format!(
            "header `{}` holds a control character, shown escaped",
            visible(n)
        ));
    }
    let (field, _) = &missing[0];
    Err(d.hint(format!(
        "map each field to the file's header under `columns:` in `{}`, e.g. `{}: <header>`",
        st.stage.spec_path,
        field.name()
    )))
}

/// `s` with control characters escaped (`\0`, `\u{1b}`), so a message shows what is there.
fn visible(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Judges a batch in parallel, then in input order de-duplicates, quarantines and appends the
/// kept rows to the Parquet output.
fn ingest_batch(
    batch: &Batch,
    st: &mut FileState<'_>,
    claims: &mut Claims,
    out: &mut Sinks<'_>,
) -> Result<(), Diagnostic> {
    let index = match st.columns {
        Some(index) => index,
        None => {
            let names: Vec<String> = match batch {
                Batch::Frame(df) => df
                    .get_column_names()
                    .iter()
                    .map(|n| n.to_string())
                    .collect(),
                Batch::Csv { header, .. } => header.clone().unwrap_or_default(),
            };
            let index = map_columns(&names, st)?;
            st.columns = Some(index);
            index
        }
    };
    let cells = match batch {
        Batch::Frame(df) => {
            let read_err = |e: PolarsError| {
                Diagnostic::new(format!("cannot read `{}`", st.rel)).cause(e.to_string())
            };
            let mut cols: [Option<Vec<&str>>; FIELDS.len()] = Default::default();
            cols.par_iter_mut()
                .zip(index)
                .try_for_each(|(slot, i)| -> PolarsResult<()> {
                    if let Some(i) = i {
                        *slot = Some(text_cells(&df.columns()[i])?);
                    }
                    Ok(())
                })
                .map_err(read_err)?;
            Cells::Columns(cols)
        }
        Batch::Csv { text, first, .. } => Cells::Csv {
            batch: text,
            text: text.text(),
            first: *first,
            index,
        },
    };
    let height = batch.height();
    let has_type = index[RawField::PatentType as usize].is_some();
    let verdicts: Vec<Result<Clean<'_>, Reason>> = (0..height)
        .into_par_iter()
        .with_min_len(1024)
        .map(|row| judge_row(&cells, row, has_type))
        .collect();
    // Only rows that pass every other check claim their number.
    let keys: Vec<Option<u64>> = verdicts
        .par_iter()
        .with_min_len(1024)
        .map(|v| v.as_ref().ok().map(|c| c.number.key()))
        .collect();
    let repeats = claims.repeats(&keys);
    // The kept rows are borrowed, not moved: moving each row's cells out of `verdicts` was a
    // serial copy of about 200 bytes a row (14% of a 10M-record profile).
    let mut kept: Vec<(u64, &Clean<'_>)> = Vec::with_capacity(verdicts.len());
    for (row, verdict) in verdicts.iter().enumerate() {
        let source_row = st.next_row + row as u64;
        let reason = match verdict {
            Ok(clean) if !repeats[row] => {
                kept.push((source_row, clean));
                continue;
            }
            Ok(_) => Reason::Duplicate,
            Err(reason) => *reason,
        };
        st.counts.quarantined[reason as usize] += 1;
        write_quarantine_row(out.quarantine, st.rel, source_row, reason, &cells, row)
            .map_err(|e| cannot_write(&st.stage.spec.quarantine, &e))?;
    }
    st.counts.rows_read += height as u64;
    st.counts.kept += kept.len() as u64;
    st.next_row += height as u64;
    if kept.is_empty() {
        return Ok(());
    }
    let frame = kept_frame(&kept).map_err(|e| cannot_write(&st.stage.spec.out, &e))?;
    // A closed channel means the writer failed; `ingest_all` reports why.
    out.frames.send(frame).map_err(|_| stream::writer_gone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patent_type_column_absent_null_or_named() {
        let yaml = |s: &str| serde_saphyr::from_str::<ColumnsSpec>(s).unwrap();
        assert_eq!(
            ColumnsSpec::default().wanted(RawField::PatentType),
            Wanted::IfPresent("专利类型".into())
        );
        assert_eq!(
            yaml("patent_type: null").wanted(RawField::PatentType),
            Wanted::Never
        );
        assert_eq!(
            yaml("patent_type: Type").wanted(RawField::PatentType),
            Wanted::Required("Type".into())
        );
        assert_eq!(
            yaml("ipc: IPC").wanted(RawField::ApplicationNumber),
            Wanted::Required("申请号".into())
        );
    }
}
