//! The patent office export: the records written as the messy CSV an office hands out, and
//! the synthetic postcode directory that locates addresses without a city.
//!
//! Owns: application numbers with their check character, serial numbers, the export's five date
//! formats, titles, IPC classes, postcodes, the mess (full-width characters, stray spaces, blank
//! fields, fatal errors on exactly the records marked unclean, re-exported duplicates),
//! `postcodes.csv`, and the true city and form of every applicant of every clean record as it is
//! written (`truth::ApplicantTruth`). Deliberately does not own: which records exist and who
//! applies (`records`) or how an address is worded (`address`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::address::{self, AddressForm, Target};
use super::draw::{pick, stream};
use super::orgs::FOREIGN;
use super::records::{GenCtx, Record};
use super::truth::ApplicantTruth;
use crate::places::Cities;
use repro_tabular::table as tabular;

const TITLE_NOUN: &[&str] = &[
    "数据处理装置",
    "电池极片",
    "复合材料",
    "检测系统",
    "控制电路",
    "传动机构",
    "催化剂",
    "显示面板",
];
const TITLE_HOW: &[&str] = &["制备方法", "控制方法", "及其应用", "装置", "系统及方法"];
const IPC: &[&str] = &[
    "H04L 29/06",
    "G06F 17/30",
    "H01M 4/13",
    "C08L 67/02",
    "G01N 21/01",
    "B65G 47/90",
    "A61K 31/00",
    "F16H 1/28",
    "C02F 9/14",
    "H02J 7/00",
];

/// A synthetic postcode directory: each city gets a 4-digit prefix (province block + city).
pub fn postcode_prefixes(cities: &Cities) -> Vec<u32> {
    let mut next_in_province: BTreeMap<u32, u32> = BTreeMap::new();
    let mut province_block: BTreeMap<u32, u32> = BTreeMap::new();
    cities
        .rows
        .iter()
        .map(|c| {
            let n = province_block.len() as u32;
            let block = *province_block.entry(c.province_code).or_insert(10 + n * 2);
            let k = next_in_province.entry(c.province_code).or_insert(0);
            let prefix = block * 100 + *k;
            *k += 1;
            prefix
        })
        .collect()
}

/// The check character of a 12-digit application number (docs/data.md).
pub fn check_char(digits: &str) -> char {
    const W: [u32; 12] = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5];
    let sum: u32 = digits
        .chars()
        .filter_map(|c| c.to_digit(10))
        .zip(W)
        .map(|(d, w)| d * w)
        .sum();
    match sum % 11 {
        10 => 'X',
        v => char::from_digit(v, 10).unwrap_or('0'),
    }
}

/// The export, `patents.csv`: per year, that year's records (then its anchors), then the
/// duplicates re-exported, in a fixed order; each year draws from its own stream (`export`,
/// year) and numbers its own serials, so years are composed in parallel, taken in year order by
/// whichever thread is free, while a writer thread writes the composed years to `out` in year
/// order (the bytes do not depend on the thread count). The truth of every applicant of the
/// clean records (a part per year, in export order) goes to `then` as soon as the last year is
/// composed, which runs while the writer finishes.
pub fn patents_csv<T: Send>(
    ctx: &GenCtx<'_>,
    per_year: &[Vec<Record>],
    anchors: &[Record],
    years: &[i32],
    prefixes: &[u32],
    out: &mut (dyn std::io::Write + Send),
    then: impl FnOnce(Vec<ApplicantTruth>) -> T + Send,
) -> std::io::Result<T> {
    out.write_all("申请号,申请日,名称,主分类号,申请(专利权)人,地址,邮编,国省代码\n".as_bytes())?;
    let mut anchors_by_year: BTreeMap<i32, Vec<&Record>> = BTreeMap::new();
    for a in anchors {
        anchors_by_year.entry(a.year).or_default().push(a);
    }
    let jobs: Vec<(i32, &[Record], Vec<&Record>)> = per_year
        .iter()
        .zip(years)
        .map(|(recs, &year)| {
            let extra = anchors_by_year.remove(&year).unwrap_or_default();
            (year, recs.as_slice(), extra)
        })
        .collect();
    let next = AtomicUsize::new(0);
    // Years are taken in order, so the writer holds only the few years composed ahead of the
    // one it waits for (the whole export is about 170 bytes a record).
    let (send, receive) = mpsc::sync_channel::<(usize, String)>(1);
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| write_in_order(receive, out));
        let mut parts: Vec<(usize, ApplicantTruth)> = (0..rayon::current_num_threads().max(1))
            .into_par_iter()
            .flat_map_iter(|_| {
                let send = send.clone();
                let mut mine = Vec::new();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some((year, recs, extra)) = jobs.get(k) else {
                        break;
                    };
                    let (text, part) = export_year(ctx, *year, recs, extra, prefixes);
                    mine.push((k, part));
                    // The writer has stopped on an error: it reports it.
                    if send.send((k, text)).is_err() {
                        break;
                    }
                }
                mine
            })
            .collect();
        drop(send);
        parts.sort_by_key(|(k, _)| *k);
        let value = then(parts.into_iter().map(|(_, part)| part).collect());
        writer
            .join()
            .map_err(|_| std::io::Error::other("the export's writer panicked"))??;
        Ok(value)
    })
}

/// Writes the composed years that arrive, in any order, to `out` in year order.
fn write_in_order(
    receive: mpsc::Receiver<(usize, String)>,
    out: &mut (dyn std::io::Write + Send),
) -> std::io::Result<()> {
    let mut waiting: BTreeMap<usize, String> = BTreeMap::new();
    let mut next = 0;
    for (k, text) in receive {
        waiting.insert(k, text);
        while let Some(text) = waiting.remove(&next) {
            out.write_all(text.as_bytes())?;
            next += 1;
        }
    }
    Ok(())
}

/// One year of the export: its records and anchors, then its re-exported duplicates.
fn export_year(
    ctx: &GenCtx<'_>,
    year: i32,
    recs: &[Record],
    extra: &[&Record],
    prefixes: &[u32],
) -> (String, ApplicantTruth) {
    let clean = recs.iter().chain(extra.iter().copied()).filter(|r| r.clean);
    let mut truth = ApplicantTruth::with_capacity(clean.map(|r| r.applicants.len()).sum());
    let mut text = String::with_capacity((recs.len() + extra.len()) * 200);
    let mut serial: BTreeMap<(i32, u8), u32> = BTreeMap::new();
    let mut r = stream(ctx.seed, "export", year as u64);
    let mut dups: Vec<std::ops::Range<usize>> = Vec::new();
    let mut fields = Fields::default();
    let mut app_no = String::new();
    for rec in recs.iter().chain(extra.iter().copied()) {
        let s = serial.entry((rec.year, rec.ptype)).or_insert(100_000);
        *s += 1 + r.random_range(0..3u32);
        let start = text.len();
        let form = export_line(ctx, &mut r, rec, *s, prefixes, &mut fields, &mut text);
        if rec.clean {
            app_no.clear();
            app_no.push_str(&fields.digits);
            app_no.push('.');
            app_no.push(check_char(&fields.digits));
            truth.push_record(ctx.cities, ctx.orgs, rec, &app_no, form);
        }
        if r.random::<f64>() < ctx.mess.duplicates && rec.clean {
            dups.push(start..text.len());
        }
    }
    let mut line = String::new();
    for d in dups {
        // A re-export of the same application, sometimes with different spacing.
        if r.random::<f64>() < 0.5 {
            text.push(' ');
        }
        line.clear();
        line.push_str(&text[d]);
        text.push_str(&line);
    }
    (text, truth)
}

/// The postcode directory, `postcodes.csv`: every city's 4-digit prefix, sorted by prefix.
pub fn postcodes_csv(prefixes: &[u32], cities: &Cities) -> String {
    let mut pc = String::from("prefix4,adcode6\n");
    let mut sorted: Vec<(u32, u32)> = prefixes
        .iter()
        .zip(&cities.rows)
        .map(|(p, c)| (*p, c.adcode))
        .collect();
    sorted.sort();
    for (p, a) in sorted {
        let _ = writeln!(pc, "{p:04},{a}");
    }
    pc
}

/// ASCII to its full-width form (and a space to the ideographic space), as some exports write
/// numbers.
fn to_full_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '!'..='~' => char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c),
            ' ' => '\u{3000}',
            _ => c,
        })
        .collect()
}

/// The text of one record's fields before they are joined into a line: buffers reused from one
/// record to the next, so that a line allocates nothing.
#[derive(Default)]
struct Fields {
    /// The application number's twelve digits (year, type, serial), also the truth's.
    digits: String,
    number: String,
    date: String,
    title: String,
    applicants: String,
    code: String,
    written: address::Written,
    province_code: String,
}

/// One record as an export line appended to `line`, with its share of the mess, drawn from the
/// year's stream; returns the form its first applicant's address was written in.
fn export_line(
    ctx: &GenCtx<'_>,
    r: &mut ChaCha8Rng,
    rec: &Record,
    serial: u32,
    prefixes: &[u32],
    f: &mut Fields,
    line: &mut String,
) -> AddressForm {
    let m = ctx.mess;
    f.digits.clear();
    push_int(&mut f.digits, rec.year, 0);
    push_int(&mut f.digits, rec.ptype, 0);
    push_int(&mut f.digits, serial, 7);
    let mut check = check_char(&f.digits);
    // Fatal mess, chosen so that exactly the records marked unclean are unusable.
    let mut bad_date = false;
    let mut no_applicant = false;
    if !rec.clean {
        let u = r.random::<f64>() * (m.bad_dates + m.missing_applicants + m.bad_numbers);
        if u < m.bad_dates {
            bad_date = true;
        } else if u < m.bad_dates + m.missing_applicants {
            no_applicant = true;
        } else {
            check = if check == '0' { '1' } else { '0' };
        }
    }
    f.number.clear();
    f.number.push_str("CN");
    f.number.push_str(&f.digits);
    f.number.push('.');
    f.number.push(check);
    let day_of_year = r.random_range(0..365u32);
    let (month, day) = month_day(rec.year, day_of_year);
    let form = r.random_range(0..20u32);
    let date = &mut f.date;
    date.clear();
    if bad_date {
        match r.random_range(0..4u32) {
            0 => {
                push_int(date, rec.year, 0);
                date.push_str("-13-");
                push_int(date, day, 2);
            }
            1 => {
                push_int(date, rec.year, 0);
                date.push_str("-02-30");
            }
            2 => date.push_str("NA"),
            _ => {}
        }
    } else {
        push_date(date, rec.year, month, day, form);
    }
    let blank = |r: &mut ChaCha8Rng| r.random::<f64>() < m.blank_fields;
    f.title.clear();
    if !blank(r) {
        f.title.push_str("一种");
        f.title.push_str(pick::<&str>(r, TITLE_NOUN));
        f.title.push('的');
        f.title.push_str(pick::<&str>(r, TITLE_HOW));
    }
    let ipc = if blank(r) { "" } else { *pick(r, IPC) };
    f.applicants.clear();
    if !no_applicant {
        for (k, a) in rec.applicants.iter().enumerate() {
            if k > 0 {
                f.applicants.push(';');
            }
            f.applicants.push_str(a.name(ctx.orgs));
        }
    }
    f.province_code.clear();
    let (address, postcode, province_code, form) = match (rec.foreign, rec.first_city) {
        (Some(foreign), _) => (
            FOREIGN[foreign].1,
            "",
            FOREIGN[foreign].2,
            AddressForm::Blank,
        ),
        (None, None) => ("", "", "", rec.address),
        (None, Some(i)) => {
            let c = &ctx.cities.rows[i];
            f.code.clear();
            push_int(&mut f.code, prefixes[i], 4);
            push_int(&mut f.code, r.random_range(0..100u32), 2);
            let target = Target {
                city: c,
                index: i,
                year: rec.year,
                places: ctx.places,
            };
            let blank_postcode = blank(r);
            let form = address::write(
                r,
                &target,
                rec.address,
                &f.code,
                blank_postcode,
                &mut f.written,
            );
            push_int(&mut f.province_code, c.province_code, 0);
            (
                f.written.address.as_str(),
                f.written.postcode.as_str(),
                f.province_code.as_str(),
                form,
            )
        }
    };
    if r.random::<f64>() < m.full_width {
        f.number = to_full_width(&f.number);
        f.applicants = f
            .applicants
            .replace(';', "；")
            .replace('(', "（")
            .replace(')', "）");
    }
    if r.random::<f64>() < m.stray_spaces {
        f.number = format!(" {} ", f.number);
        f.applicants = f.applicants.replace(';', " ; ");
    }
    for (k, field) in [
        f.number.as_str(),
        &f.date,
        &f.title,
        ipc,
        &f.applicants,
        address,
        postcode,
        province_code,
    ]
    .into_iter()
    .enumerate()
    {
        if k > 0 {
            line.push(',');
        }
        tabular::push_field(line, field);
    }
    line.push('\n');
    form
}

/// Appends a date written in the export's format `form` (0 to 19; the formats' shares are
/// 14, 2, 2, 1 and 1 in twenty).
fn push_date(out: &mut String, year: i32, month: u32, day: u32, form: u32) {
    push_int(out, year, 0);
    match form {
        0..=13 => {
            out.push('-');
            push_int(out, month, 2);
            out.push('-');
            push_int(out, day, 2);
        }
        14 | 15 => {
            out.push('/');
            push_int(out, month, 0);
            out.push('/');
            push_int(out, day, 0);
        }
        16 | 17 => {
            out.push('.');
            push_int(out, month, 2);
            out.push('.');
            push_int(out, day, 2);
        }
        18 => {
            push_int(out, month, 2);
            push_int(out, day, 2);
        }
        _ => {
            out.push('年');
            push_int(out, month, 0);
            out.push('月');
            push_int(out, day, 0);
            out.push('日');
        }
    }
}

/// Appends an integer in decimal with zeros before it up to `width` digits, as `{v:0width$}`
/// writes a non-negative one (without the formatting machinery: a million lines).
fn push_int(out: &mut String, v: impl itoa::Integer, width: usize) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(v);
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(digits);
}

/// The month and day of a 0-based day of the year.
fn month_day(year: i32, day_of_year: u32) -> (u32, u32) {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let lengths = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut d = day_of_year;
    for (m, len) in lengths.iter().enumerate() {
        if d < *len {
            return (m as u32 + 1, d + 1);
        }
        d -= len;
    }
    (12, 31)
}
