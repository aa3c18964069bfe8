//! The LaTeX rendering of a [`Table`]: a `threeparttable` with a wrapping stub column, siunitx
//! `S` columns aligned on the decimal point, booktabs rules and notes that wrap.
//!
//! Owns: the shape that makes a table fit an A4 text block by construction (the stub width, the
//! font size and column padding chosen from the number of data columns, header labels broken
//! into short lines), the per-column `table-format`, and escaping text for LaTeX (formulas in
//! notes included; minus signs as true minus signs). Deliberately does not own: the table's
//! content (the kinds build it) or the other formats (`table`).
//!
//! Widths follow from the column count and the widest cells: up to 4 data columns at the
//! document's size, 5 to 6 at `\small`, 7 and more at `\scriptsize` with the stub column taking
//! whatever width the data columns leave (`tabularx`). The column padding is the shape's,
//! narrowed (down to 1 pt) when the estimated widths of the cells (`texwidth`) would not leave
//! the stub its minimum in an A4 text block with 2.5 cm margins at the largest size the shape
//! takes (12 pt documents). The integration test `latex::` compiles every table of the default
//! pipeline and 8-column tables with pdflatex in an A4 article with 2.5 cm margins and fails on
//! any overfull box.

use std::fmt::Write as _;

use crate::table::{Cell, Group, Table};
use crate::texwidth::{text_em, NumberFormat};

/// The packages every rendered table needs, as its header comment names them (with `tabularx`
/// for tables of 7 and more columns).
pub const PACKAGES: &str = "booktabs,siunitx,threeparttable,array";

/// The size of the table, from its number of data columns.
struct Shape {
    /// Size command applied to the whole table (empty: the document's size).
    size: &'static str,
    /// The largest size that command sets in a 10-12 pt article (pt): the widths are
    /// budgeted at it.
    font_pt: f64,
    /// Column padding when the cells leave room for it (pt).
    tabcolsep_pt: f64,
    /// Width of the stub column, or its minimum when it takes what the data columns leave.
    stub_cm: f64,
    /// The stub column takes the width the data columns leave (`tabularx`'s `X`).
    stretch_stub: bool,
    /// Longest line of a column header before it is broken (characters).
    header_chars: usize,
}

fn shape(n: usize) -> Shape {
    match n {
        0..=4 => Shape {
            size: "",
            font_pt: 12.0,
            tabcolsep_pt: 6.0,
            stub_cm: 4.2,
            stretch_stub: false,
            header_chars: 18,
        },
        5..=6 => Shape {
            size: "\\small",
            font_pt: 10.95,
            tabcolsep_pt: 4.0,
            stub_cm: 3.0,
            stretch_stub: false,
            header_chars: 12,
        },
        // Measured with pdflatex: with the fixed padding of 2.5 pt and a 2.2 cm stub, 8 columns
        // of `-12.345***` overflowed by 15 pt at 11-12 pt.
        _ => Shape {
            size: "\\scriptsize",
            font_pt: 8.0,
            tabcolsep_pt: 2.5,
            stub_cm: 2.2,
            stretch_stub: true,
            header_chars: 10,
        },
    }
}

/// The text block the tables must fit: A4 (210 mm) with 2.5 cm margins, in TeX points.
const TEXT_BLOCK_PT: f64 = 160.0 / 25.4 * 72.27;
/// The narrowest column padding used to make room (pt).
const MIN_TABCOLSEP_PT: f64 = 1.0;

/// The column padding (pt, one decimal): the shape's, or less when the data columns' estimated
/// widths and the stub's minimum would not fit the text block with it.
fn tabcolsep(sh: &Shape, data_em: f64, n: usize) -> f64 {
    let stub_pt = sh.stub_cm / 2.54 * 72.27;
    let slack_pt = TEXT_BLOCK_PT - stub_pt - data_em * sh.font_pt;
    // `@{}` at both ends: the stub and each data column have padding on their inner sides.
    let per_side = slack_pt / (2 * n.max(1)) as f64;
    let sep = per_side.clamp(MIN_TABCOLSEP_PT, sh.tabcolsep_pt);
    (sep * 10.0).floor() / 10.0
}

/// A cell's text as siunitx reads it: an optional `(`, a signed decimal, an optional `)`.
fn numeric_parts(text: &str) -> Option<(bool, usize, usize)> {
    let (paren, inner) = match text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        Some(inner) => (true, inner),
        None => (false, text),
    };
    let digits = inner.strip_prefix('-').unwrap_or(inner);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let ok = !int.is_empty()
        && int.chars().all(|c| c.is_ascii_digit())
        && frac.chars().all(|c| c.is_ascii_digit())
        && !(digits.contains('.') && frac.is_empty());
    ok.then_some((paren, int.len(), frac.len()))
}

/// What the numbers of data column `k` need; `None` when it holds no number.
fn number_format(table: &Table, k: usize) -> Option<NumberFormat> {
    let mut f = NumberFormat::default();
    let mut any = false;
    for row in table.sections.iter().flatten() {
        let Some(cell) = row.cells.get(k) else {
            continue;
        };
        if let Some((p, i, fr)) = numeric_parts(&cell.text) {
            any = true;
            let neg = cell.text.contains('-');
            f.int = f.int.max(i);
            f.frac = f.frac.max(fr);
            f.neg |= neg;
            f.paren |= p;
            f.paren_neg |= p && neg;
            f.stars = f.stars.max(cell.stars.len());
        }
    }
    any.then_some(f)
}

/// The column type for a number format: `S` with a `table-format` wide enough for its
/// numbers, or `c` when the column holds no number.
fn column_type(format: Option<NumberFormat>) -> String {
    let Some(f) = format else {
        return "c".into();
    };
    let mut out = format!(
        "table-format={}{}{}",
        if f.neg { "-" } else { "" },
        f.int,
        if f.frac > 0 {
            format!(".{}", f.frac)
        } else {
            String::new()
        }
    );
    // A `(` before non-negative numbers sits in the space kept for other rows' minus signs.
    if f.reserve_paren() {
        out.push_str(",table-space-text-pre={(}");
    }
    if f.stars > 0 {
        let _ = write!(
            out,
            ",table-space-text-post={{\\textsuperscript{{{}}}}}",
            "*".repeat(f.stars)
        );
    } else if f.paren {
        out.push_str(",table-space-text-post={)}");
    }
    format!("S[{out}]")
}

/// The estimated width of data column `k` in ems: its numbers, its other cells, its header
/// lines and its number `(k)`.
fn column_em(table: &Table, k: usize, format: Option<NumberFormat>, header_chars: usize) -> f64 {
    let numbers = format.map_or(0.0, |f| f.width_em());
    let texts = table
        .sections
        .iter()
        .flatten()
        .filter_map(|row| row.cells.get(k))
        .filter(|c| numeric_parts(&c.text).is_none())
        .map(|c| text_em(&c.text) + c.stars.len() as f64 * 0.5)
        .fold(0.0, f64::max);
    let header = table.columns.get(k).map_or(0.0, |h| {
        header_lines(h, header_chars)
            .iter()
            .map(|l| text_em(l))
            .fold(0.0, f64::max)
    });
    let number = text_em(&format!("({})", k + 1));
    numbers.max(texts).max(header).max(number)
}

/// One data cell: a number as siunitx reads it, anything else braced (set as text, centred).
fn data_cell(cell: &Cell) -> String {
    if cell.text.is_empty() {
        return "{}".into();
    }
    let mut s = match numeric_parts(&cell.text) {
        Some(_) => cell.text.clone(),
        None => format!("{{{}}}", latex_escape(&cell.text)),
    };
    if !cell.stars.is_empty() {
        let _ = write!(s, "\\textsuperscript{{{}}}", cell.stars);
    }
    s
}

/// `text` broken at spaces, `/` and `-` into lines of at most `width` characters where possible.
fn header_lines(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in split_keeping_breaks(text) {
        if !line.is_empty()
            && line.trim_end().chars().count() + word.trim_end().chars().count() > width
        {
            lines.push(line.trim_end().to_string());
            line.clear();
        }
        line.push_str(&word);
    }
    if !line.trim().is_empty() {
        lines.push(line.trim_end().to_string());
    }
    lines
}

/// `text` broken into lines as [`header_lines`] does, as a one-column tabular when it takes
/// more than one line.
fn stacked(text: &str, width: usize) -> String {
    let lines = header_lines(text, width);
    match lines.len() {
        0 => String::new(),
        1 => latex_escape(&lines[0]),
        _ => {
            let escaped: Vec<String> = lines.iter().map(|l| latex_escape(l)).collect();
            format!(
                "\\begin{{tabular}}[b]{{@{{}}c@{{}}}}{}\\end{{tabular}}",
                escaped.join("\\\\")
            )
        }
    }
}

/// Words of `text`, each keeping its trailing break character (space, `/` or `-`).
fn split_keeping_breaks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        cur.push(c);
        if matches!(c, ' ' | '/' | '-') {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A header row of spanning labels with `\cmidrule`s under the non-empty ones.
fn spanning_row(out: &mut String, stub: &str, groups: &[Group], width: usize) {
    let mut cells = vec![latex_escape(stub)];
    let mut rules = Vec::new();
    let mut col = 2;
    for g in groups {
        let text = stacked(&g.label, width * g.span);
        cells.push(format!("\\multicolumn{{{}}}{{c}}{{{text}}}", g.span));
        if !g.label.is_empty() {
            rules.push(format!("\\cmidrule(lr){{{}-{}}}", col, col + g.span - 1));
        }
        col += g.span;
    }
    let _ = writeln!(out, "{} \\\\", cells.join(" & "));
    if !rules.is_empty() {
        let _ = writeln!(out, "{}", rules.join(" "));
    }
}

/// The table as a LaTeX fragment; a `table` float when it has a caption or label.
pub fn to_latex(table: &Table) -> String {
    let n = table.columns.len();
    let sh = shape(n);
    let float = table.caption.is_some() || table.label.is_some();
    let mut out = String::new();
    let _ = writeln!(out, "% {}", one_line(&table.title));
    let _ = writeln!(
        out,
        "% Needs: \\usepackage{{{PACKAGES}{}}} (siunitx 3 or later)",
        if sh.stretch_stub { ",tabularx" } else { "" }
    );
    if float {
        out.push_str("\\begin{table}[htbp]\n\\centering\n");
    }
    out.push_str("\\begingroup\n");
    if !sh.size.is_empty() {
        let _ = writeln!(out, "{}", sh.size);
    }
    let formats: Vec<Option<NumberFormat>> = (0..n).map(|k| number_format(table, k)).collect();
    let data_em: f64 = (0..n)
        .map(|k| column_em(table, k, formats[k], sh.header_chars))
        .sum();
    let _ = writeln!(
        out,
        "\\setlength{{\\tabcolsep}}{{{}pt}}",
        tabcolsep(&sh, data_em, n)
    );
    out.push_str("\\sisetup{input-open-uncertainty=,input-close-uncertainty=,table-align-text-pre=false,table-align-text-after=false}\n");
    out.push_str("\\begin{threeparttable}\n");
    if let Some(c) = &table.caption {
        let _ = writeln!(out, "\\caption{{{}}}", latex_escape(c));
    }
    if let Some(l) = &table.label {
        let _ = writeln!(out, "\\label{{{}}}", label_text(l));
    }
    let cols: Vec<String> = formats.iter().map(|f| column_type(*f)).collect();
    let (env, stub) = match sh.stretch_stub {
        true => ("tabularx}{\\linewidth", "X".to_string()),
        false => ("tabular", format!("p{{{:.1}cm}}", sh.stub_cm)),
    };
    let _ = writeln!(
        out,
        "\\begin{{{env}}}{{@{{}}>{{\\raggedright\\arraybackslash}}{stub}{}@{{}}}}",
        cols.join("")
    );
    out.push_str("\\toprule\n");
    if table.groups.iter().any(|g| !g.label.is_empty()) {
        spanning_row(&mut out, "", &table.groups, sh.header_chars);
    }
    for s in &table.spanners {
        spanning_row(&mut out, &s.label, &s.groups, sh.header_chars);
    }
    let heads: Vec<String> = table
        .columns
        .iter()
        .map(|c| format!("{{{}}}", stacked(c, sh.header_chars)))
        .collect();
    let _ = writeln!(out, " & {} \\\\", heads.join(" & "));
    if table.numbered {
        let nums: Vec<String> = (1..=n).map(|k| format!("{{({k})}}")).collect();
        let _ = writeln!(out, " & {} \\\\", nums.join(" & "));
    }
    for section in table.sections.iter().filter(|s| !s.is_empty()) {
        out.push_str("\\midrule\n");
        for row in section {
            let cells: Vec<String> = row.cells.iter().map(data_cell).collect();
            let _ = writeln!(
                out,
                "{} & {} \\\\",
                latex_escape(&row.label),
                cells.join(" & ")
            );
        }
    }
    let _ = writeln!(
        out,
        "\\bottomrule\n\\end{{{}}}",
        if sh.stretch_stub {
            "tabularx"
        } else {
            "tabular"
        }
    );
    if !table.notes.is_empty() {
        out.push_str("\\begin{tablenotes}[flushleft]\n\\footnotesize\n");
        for note in &table.notes {
            let _ = writeln!(out, "\\item[] {}", latex_escape(note));
        }
        out.push_str("\\end{tablenotes}\n");
    }
    out.push_str("\\end{threeparttable}\n\\endgroup\n");
    if float {
        out.push_str("\\end{table}\n");
    }
    out
}

/// A comment line: newlines would end the comment.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// A `\label` key: characters LaTeX keys cannot hold become `-`.
fn label_text(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '.' | '/') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Text for LaTeX's text mode in any font encoding: every special character escaped, the
/// characters OT1 lacks (`<`, `>`, `|`, `~`) set in math, and a minus before a digit as a true
/// minus sign.
pub fn latex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\ensuremath{\\sim}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '<' => out.push_str("\\ensuremath{<}"),
            '>' => out.push_str("\\ensuremath{>}"),
            '|' => out.push_str("\\ensuremath{\\vert}"),
            '-' if next.is_some_and(|n| n.is_ascii_digit() || n == '.')
                && !prev.is_some_and(|p| p.is_alphanumeric()) =>
            {
                out.push_str("\\ensuremath{-}")
            }
            _ => out.push(c),
        }
        prev = Some(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latex_escapes_its_specials() {
        let t = crate::table::sample();
        let tex = to_latex(&t);
        // The title is a comment line; as a caption it is escaped.
        assert!(tex.starts_with("% A & B_1\n"), "{tex}");
        assert!(tex.contains("x\\_1 & 0.500\\textsuperscript{***} & 1 & {} \\\\"));
        assert!(tex.contains("\\multicolumn{2}{c}{East}"));
        assert!(tex.contains("\\cmidrule(lr){2-3}"));
        assert!(tex.contains("{a\\ensuremath{\\vert}b}"));
        assert!(tex.contains("50\\% \\ensuremath{<}note\\ensuremath{>}"));
        let captioned = Table {
            caption: Some(t.title.clone()),
            ..crate::table::sample()
        };
        assert!(to_latex(&captioned).contains("\\caption{A \\& B\\_1}"));
    }

    #[test]
    fn empty_sections_draw_no_rule() {
        let tex = to_latex(&crate::table::sample());
        assert_eq!(tex.matches("\\midrule").count(), 2);
    }

    #[test]
    fn numbers_are_recognised_as_siunitx_reads_them() {
        assert_eq!(numeric_parts("-0.123"), Some((false, 1, 3)));
        assert_eq!(numeric_parts("(12.50)"), Some((true, 2, 2)));
        assert_eq!(numeric_parts("7"), Some((false, 1, 0)));
        assert_eq!(numeric_parts("1,234"), None);
        assert_eq!(numeric_parts("Yes"), None);
        assert_eq!(numeric_parts("<0.001"), None);
        assert_eq!(numeric_parts("3."), None);
        assert_eq!(numeric_parts(""), None);
    }

    #[test]
    fn every_special_character_is_escaped() {
        let s = latex_escape(r"gap ~ a + b^c | d_e 50% & #1 $x$ {y} \z <1> -0.5 non-linear");
        assert_eq!(
            s,
            "gap \\ensuremath{\\sim} a + b\\textasciicircum{}c \\ensuremath{\\vert} d\\_e 50\\% \\& \\#1 \\$x\\$ \\{y\\} \\textbackslash{}z \\ensuremath{<}1\\ensuremath{>} \\ensuremath{-}0.5 non-linear"
        );
    }

    #[test]
    fn long_headers_break_into_short_lines() {
        assert_eq!(stacked("Coastal", 10), "Coastal");
        assert_eq!(
            stacked("Tertiary-dominated", 10),
            "\\begin{tabular}[b]{@{}c@{}}Tertiary-\\\\dominated\\end{tabular}"
        );
        assert_eq!(
            stacked("In agglomeration", 10),
            "\\begin{tabular}[b]{@{}c@{}}In\\\\agglomeration\\end{tabular}"
        );
    }
}
