//! Pure text functions of the `ingest` stage: normalising free text and parsing the fields of a
//! patent export (application numbers, dates, applicant lists, patent types, postcodes).
//!
//! Owns: the rules of docs/data.md for one cell at a time, as functions from `&str` to a value or
//! `None`. Deliberately does not own: files, rows, quarantine reasons or anything parallel (that
//! is `ingest`); every function here is deterministic and allocation-free when its input is
//! already in normal form, because it runs tens of millions of times in a benchmark run.

use std::borrow::Cow;

/// Full-width forms U+FF01..U+FF5E to ASCII, the ideographic space U+3000 to a space, runs of
/// whitespace to one space, trimmed. Borrows when the text is already normal.
pub fn normalize(s: &str) -> Cow<'_, str> {
    if is_normal(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.chars().map(half_width) {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// One character's half-width form (the ideographic space counts as full-width).
pub fn half_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// True when `normalize` would return the text unchanged (checked without allocating).
///
/// Scans bytes: every character that `normalize` changes is ASCII whitespace or starts with one
/// of the lead bytes 0xC2 (U+0085, U+00A0), 0xE1 (U+1680), 0xE2 (U+2000..U+205F), 0xE3 (U+3000)
/// or 0xEF (U+FF01..U+FF5E). Text with such a lead byte, rare in Chinese exports, takes the
/// character-by-character check; the rest (CJK ideographs lead with 0xE4..0xE9) never does.
fn is_normal(s: &str) -> bool {
    if is_plain(s.as_bytes()) {
        return true;
    }
    // Starts as "after a space" so that leading whitespace counts as not normal.
    let mut after_space = true;
    for &b in s.as_bytes() {
        match b {
            b' ' if after_space => return false,
            b' ' => after_space = true,
            b'\t' | b'\n' | 0x0B | 0x0C | b'\r' => return false,
            0xC2 | 0xE1 | 0xE2 | 0xE3 | 0xEF => return is_normal_chars(s),
            _ => after_space = false,
        }
    }
    s.is_empty() || !after_space
}

/// True when no byte is a space, a control character or one of the lead bytes `is_normal` looks
/// into: such text is normal. Sixteen bytes at a time without an early exit, which the compiler
/// vectorises (the byte loop of `is_normal` was 7% of `ingest` on 10M records).
fn is_plain(b: &[u8]) -> bool {
    let bad = |x: u8| x <= b' ' || matches!(x, 0xC2 | 0xE1 | 0xE2 | 0xE3 | 0xEF);
    let mut chunks = b.chunks_exact(16);
    for c in &mut chunks {
        if c.iter().fold(false, |acc, &x| acc | bad(x)) {
            return false;
        }
    }
    !b.is_empty() && !chunks.remainder().iter().any(|&x| bad(x))
}

/// `is_normal` by characters.
fn is_normal_chars(s: &str) -> bool {
    let mut after_space = true;
    for c in s.chars() {
        if matches!(c, '\u{FF01}'..='\u{FF5E}') {
            return false;
        }
        if c.is_whitespace() {
            if after_space || c != ' ' {
                return false;
            }
            after_space = true;
        } else {
            after_space = false;
        }
    }
    s.is_empty() || !after_space
}

/// A valid application number: 4-digit year, type digit, 7-digit serial and check character.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppNumber {
    digits: [u8; 12],
    check: u8,
}

impl AppNumber {
    /// The 12 digits as one integer: a compact, collision-free key for de-duplication (the check
    /// character follows from the digits).
    pub fn key(&self) -> u64 {
        self.digits
            .iter()
            .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'))
    }

    /// The type digit (1, 2, 3, 8 or 9).
    pub fn type_digit(&self) -> u8 {
        self.digits[4] - b'0'
    }

    /// The normalised text: 12 digits, `.`, check character, as ASCII bytes.
    pub fn text(&self) -> [u8; 14] {
        let mut out = [0u8; 14];
        out[..12].copy_from_slice(&self.digits);
        out[12] = b'.';
        out[13] = self.check;
        out
    }
}

/// The check character of 12 digits: weights 2..9,2..5, sum modulo 11, 10 written `X`.
pub fn check_char(digits: &[u8; 12]) -> u8 {
    const WEIGHTS: [u32; 12] = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5];
    let sum: u32 = digits
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    match sum % 11 {
        10 => b'X',
        r => b'0' + r as u8,
    }
}

/// Parses an application number as exports write it: with or without `CN`, full-width or
/// half-width, spaces anywhere, the `.` before the check character optional. `None` when the shape
/// is wrong, the type digit unknown or the check character does not match.
pub fn parse_app_number(raw: &str) -> Option<AppNumber> {
    let mut buf = [0u8; 16];
    let mut len = 0;
    // Most numbers are plain ASCII: skip decoding characters for them.
    if raw.is_ascii() {
        for b in raw.bytes() {
            if b.is_ascii_whitespace() || b == 0x0B {
                continue;
            }
            if len == buf.len() {
                return None;
            }
            buf[len] = b.to_ascii_uppercase();
            len += 1;
        }
        return app_number_of(&buf[..len]);
    }
    for c in raw.chars().map(half_width) {
        if c.is_whitespace() {
            continue;
        }
        if !c.is_ascii() || len == buf.len() {
            return None;
        }
        buf[len] = c.to_ascii_uppercase() as u8;
        len += 1;
    }
    app_number_of(&buf[..len])
}

/// The number in upper-case ASCII without whitespace.
fn app_number_of(s: &[u8]) -> Option<AppNumber> {
    let s = s.strip_prefix(b"CN").unwrap_or(s);
    let (body, check) = match s {
        [body @ .., b'.', check] | [body @ .., check] if body.len() == 12 => (body, *check),
        _ => return None,
    };
    let digits: [u8; 12] = body.try_into().ok()?;
    if !digits.iter().all(u8::is_ascii_digit)
        || !matches!(digits[4], b'1' | b'2' | b'3' | b'8' | b'9')
    {
        return None;
    }
    if check != check_char(&digits) {
        return None;
    }
    Some(AppNumber { digits, check })
}

/// A calendar date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

impl Date {
    /// A real date (month 1-12, day within the month, 4-digit year) or `None`.
    pub fn new(year: i32, month: u32, day: u32) -> Option<Date> {
        let valid = (1000..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month);
        valid.then_some(Date { year, month, day })
    }

    /// `YYYY-MM-DD` as ASCII bytes.
    pub fn iso(&self) -> [u8; 10] {
        let mut out = *b"0000-00-00";
        let put = |out: &mut [u8; 10], at: usize, width: usize, mut v: u32| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(&mut out, 0, 4, self.year as u32);
        put(&mut out, 5, 2, self.month);
        put(&mut out, 8, 2, self.day);
        out
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Parses the date formats of exports: `2010-03-15`, `2010/3/15`, `2010.03.15`, `20100315`,
/// `2010年3月15日` (full-width digits and surrounding spaces allowed). `None` for anything else
/// and for impossible dates such as `2010-02-30`.
pub fn parse_date(raw: &str) -> Option<Date> {
    let s = normalize(raw);
    let s = s.as_ref();
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        return Date::new(
            s[..4].parse().ok()?,
            s[4..6].parse().ok()?,
            s[6..].parse().ok()?,
        );
    }
    let parts: Vec<&str> = if let Some(rest) = s.strip_suffix('日') {
        rest.split(['年', '月']).collect()
    } else {
        let sep = s.chars().find(|c| matches!(c, '-' | '/' | '.'))?;
        s.split(sep).collect()
    };
    let [y, m, d] = parts.as_slice() else {
        return None;
    };
    let number = |t: &str, widths: std::ops::RangeInclusive<usize>| -> Option<u32> {
        let t = t.trim();
        if !widths.contains(&t.len()) || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    Date::new(
        number(y, 4..=4)? as i32,
        number(m, 1..=2)?,
        number(d, 1..=2)?,
    )
}

/// Splits normalised applicant text on `;` (full-width `；` is `;` after normalisation), trims
/// each name and drops empty ones. Returns the names joined by `;` and their number.
pub fn split_applicants(normalized: &str) -> (Cow<'_, str>, usize) {
    if !normalized.contains(';') {
        return (
            Cow::Borrowed(normalized),
            usize::from(!normalized.is_empty()),
        );
    }
    let names: Vec<&str> = normalized
        .split(';')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    (Cow::Owned(names.join(";")), names.len())
}

/// The patent type of a `patent_type` cell: `1`/`发明`, `2`/`实用新型`, `3`/`外观设计` (a trailing
/// `专利` is allowed, as in `发明专利`).
pub fn parse_patent_type(raw: &str) -> Option<i32> {
    let s = normalize(raw);
    let s = s.strip_suffix("专利").unwrap_or(&s);
    match s {
        "1" | "发明" => Some(1),
        "2" | "实用新型" => Some(2),
        "3" | "外观设计" => Some(3),
        _ => None,
    }
}

/// The patent type implied by an application number's type digit (PCT 8/9 are invention/utility
/// model).
pub fn type_from_digit(digit: u8) -> Option<i32> {
    match digit {
        1 | 8 => Some(1),
        2 | 9 => Some(2),
        3 => Some(3),
        _ => None,
    }
}

/// A postcode when the normalised cell is exactly 6 digits, otherwise empty.
pub fn postcode(normalized: &str) -> &str {
    if normalized.len() == 6 && normalized.bytes().all(|b| b.is_ascii_digit()) {
        normalized
    } else {
        ""
    }
}

/// The 6-digit postcode a normalised address starts with (`100871 北京市…`, `100871北京市…`),
/// when a non-digit follows it.
pub fn leading_postcode(normalized: &str) -> Option<&str> {
    let b = normalized.as_bytes();
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    (digits == 6 && b.len() > 6).then(|| &normalized[..6])
}

/// The address after its leading postcode and the separators that follow it.
pub fn after_leading_postcode(normalized: &str) -> &str {
    match leading_postcode(normalized) {
        Some(p) => normalized[p.len()..].trim_start_matches([' ', ',', ';', ':', '-']),
        None => normalized,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalize_full_width_ideographic_space_runs_and_trim() {
        assert_eq!(normalize("ＡＢＣ１２３（北京）"), "ABC123(北京)");
        assert_eq!(normalize("北京\u{3000}\u{3000}海淀"), "北京 海淀");
        assert_eq!(normalize("  a \t\n b  "), "a b");
        assert_eq!(normalize("\u{3000}"), "");
        assert_eq!(normalize("华为；中兴"), "华为;中兴");
        // U+FF5F and beyond, and U+FF00, are not in the full-width ASCII block.
        assert_eq!(normalize("\u{FF5F}\u{FF00}"), "\u{FF5F}\u{FF00}");
    }

    #[test]
    fn normalize_borrows_normal_text() {
        assert!(matches!(normalize("北京市 海淀区"), Cow::Borrowed(_)));
        assert!(matches!(normalize(""), Cow::Borrowed(_)));
        assert!(matches!(normalize("a  b"), Cow::Owned(_)));
        assert!(matches!(normalize("a\tb"), Cow::Owned(_)));
        assert!(matches!(normalize(" a"), Cow::Owned(_)));
        assert!(matches!(normalize("a "), Cow::Owned(_)));
    }

    #[test]
    fn check_characters_by_hand() {
        // 2*2+0*3+1*4+0*5+1*6+0*7+1*8+2*9+3*2+4*3+5*4+6*5 = 108; 108 mod 11 = 9.
        assert_eq!(check_char(b"201010123456"), b'9');
        // 2*2+1*4+1*6+7*5 = 49; 49 mod 11 = 5.
        assert_eq!(check_char(b"201010000007"), b'5');
        // 2*2+1*4+1*5+1*6+8*5 = 59; 59 mod 11 = 4.
        assert_eq!(check_char(b"201110000008"), b'4');
        // 2*2+1*4+1*6+8*5 = 54; 54 mod 11 = 10, written X.
        assert_eq!(check_char(b"201010000008"), b'X');
    }

    #[test]
    fn application_numbers_in_export_spellings() {
        let n = parse_app_number("CN201010123456.9").unwrap();
        assert_eq!(&n.text(), b"201010123456.9");
        assert_eq!(n.key(), 201010123456);
        assert_eq!(n.type_digit(), 1);
        for spelling in [
            "201010123456.9",
            "cn201010123456.9",
            " CN 2010 1012 3456 . 9 ",
            "ＣＮ２０１０１０１２３４５６．９",
            "CN2010101234569",
        ] {
            assert_eq!(parse_app_number(spelling), Some(n), "{spelling}");
        }
        assert_eq!(
            &parse_app_number("CN201010000008.x").unwrap().text(),
            b"201010000008.X"
        );
    }

    #[test]
    fn bad_application_numbers() {
        for bad in [
            "",
            "CN201010123456.8",   // wrong check character
            "CN201040123456.X",   // type digit 4
            "CN20101012345.9",    // 11 digits
            "CN2010101234567.9",  // 13 digits
            "CN20101012345A.9",   // a letter
            "US201010123456.9",   // another office
            "CN201010123456.9.9", // trailing junk
            "申请号201010123456.9",
        ] {
            assert_eq!(parse_app_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates_in_every_export_format() {
        let d = Date::new(2010, 3, 15).unwrap();
        for s in [
            "2010-03-15",
            "2010/3/15",
            "2010.03.15",
            "20100315",
            "2010年3月15日",
            "２０１０－０３－１５",
            " 2010-3-15 ",
        ] {
            assert_eq!(parse_date(s), Some(d), "{s}");
        }
        assert_eq!(&d.iso(), b"2010-03-15");
        assert_eq!(
            parse_date("2012-02-29").map(|d| d.iso()),
            Some(*b"2012-02-29")
        );
        assert_eq!(parse_date("2000-02-29").map(|d| d.day), Some(29));
    }

    #[test]
    fn impossible_and_malformed_dates() {
        for s in [
            "",
            "2010-02-30",
            "2011-02-29",
            "1900-02-29",
            "2010-13-01",
            "2010-00-10",
            "2010-04-31",
            "2010-3/15",
            "10-03-15",
            "2010031",
            "201003150",
            "2010年3月15",
            "2010-03-15 12:00",
            "March 15, 2010",
            "0999-01-01",
        ] {
            assert_eq!(parse_date(s), None, "{s}");
        }
    }

    #[test]
    fn applicants_split_on_either_semicolon() {
        let n = normalize("华为技术有限公司；  清华大学 ; ;");
        assert_eq!(
            split_applicants(&n),
            (Cow::Borrowed("华为技术有限公司;清华大学"), 2)
        );
        assert_eq!(split_applicants("张三"), (Cow::Borrowed("张三"), 1));
        assert_eq!(split_applicants(""), (Cow::Borrowed(""), 0));
        assert_eq!(split_applicants(";"), (Cow::Borrowed(""), 0));
    }

    #[test]
    fn patent_types_from_names_codes_and_digits() {
        assert_eq!(parse_patent_type("发明"), Some(1));
        assert_eq!(parse_patent_type("发明专利"), Some(1));
        assert_eq!(parse_patent_type(" 实用新型 "), Some(2));
        assert_eq!(parse_patent_type("外观设计"), Some(3));
        assert_eq!(parse_patent_type("３"), Some(3));
        for bad in ["", "4", "invention", "专利", "发明 专利"] {
            assert_eq!(parse_patent_type(bad), None, "{bad}");
        }
        assert_eq!(type_from_digit(8), Some(1));
        assert_eq!(type_from_digit(9), Some(2));
        assert_eq!(type_from_digit(4), None);
    }

    #[test]
    fn postcodes_are_six_digits_or_empty() {
        assert_eq!(postcode("100084"), "100084");
        assert_eq!(postcode("10008"), "");
        assert_eq!(postcode("1000845"), "");
        assert_eq!(postcode("10008A"), "");
    }

    proptest! {
        #[test]
        fn normalize_is_idempotent(s in "[ a-zA-Z0-9;；\u{3000}\u{FF01}-\u{FF5E}\u{FF00}\u{FF5F}\t\n\u{A0}北京市]{0,40}") {
            let once = normalize(&s).into_owned();
            let twice = normalize(&once);
            prop_assert_eq!(&once, twice.as_ref());
            prop_assert!(matches!(twice, Cow::Borrowed(_)));
        }

        #[test]
        fn any_text_normalizes_idempotently(s in "\\PC{0,30}") {
            let once = normalize(&s).into_owned();
            let twice = normalize(&once);
            prop_assert_eq!(once.as_str(), twice.as_ref());
        }

        #[test]
        fn byte_scan_agrees_with_char_scan(s in "[ a-z;；\u{3000}\u{FF01}\u{FF5E}\u{FF5F}\u{FEFF}\t\n\u{0B}\u{0C}\r\u{85}\u{A0}\u{A9}\u{1680}\u{2000}-\u{2030}\u{205F}\u{3001}北京·]{0,12}") {
            prop_assert_eq!(is_normal(&s), is_normal_chars(&s));
            prop_assert_eq!(is_normal(&s), normalize(&s).as_ref() == s.as_str());
        }

        #[test]
        fn plain_text_is_normal(s in "[ a-z;\u{3000}\u{FF01}\u{A0}\u{2000}\u{1680}\t北京市号]{0,40}|\\PC{0,60}") {
            if is_plain(s.as_bytes()) {
                prop_assert!(is_normal_chars(&s));
            }
            prop_assert_eq!(is_normal(&s), is_normal_chars(&s));
        }

        #[test]
        fn any_text_byte_scan_agrees(s in "\\PC{0,30}") {
            prop_assert_eq!(is_normal(&s), is_normal_chars(&s));
        }

        #[test]
        fn ascii_numbers_parse_as_by_characters(s in "(CN|cn)?[0-9 ]{10,15}[.]?[0-9Xx \t]{0,2}") {
            let wide: String = s.chars().map(|c| match c {
                '!'..='~' => char::from_u32(c as u32 + 0xFEE0).unwrap(),
                c => c,
            }).collect();
            prop_assert_eq!(parse_app_number(&s), parse_app_number(&wide));
        }

        #[test]
        fn valid_numbers_roundtrip(serial in 0u32..10_000_000, year in 1985u32..2030, t in prop::sample::select(vec![1u8, 2, 3, 8, 9])) {
            let body = format!("{year:04}{t}{serial:07}");
            let digits: [u8; 12] = body.as_bytes().try_into().unwrap();
            let text = format!("CN{body}.{}", check_char(&digits) as char);
            let n = parse_app_number(&text).unwrap();
            prop_assert_eq!(n.key(), body.parse::<u64>().unwrap());
            prop_assert_eq!(&n.text()[..], &text.as_bytes()[2..]);
        }
    }
}
