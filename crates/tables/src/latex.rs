//! The LaTeX rendering of a [`Table`]: a `threeparttable` with a wrapping stub column, siunitx
//! `S` columns aligned on the decimal point, booktabs rules and notes that wrap.
//!
//! Owns: the shape that makes a table fit an A4 text block by construction (the stub width, the
//! font size and column padding chosen from the number of data columns, header labels broken
//! into short lines), the per-column `table-format`, and escaping text for LaTeX (formulas in
//! notes included; minus signs as true minus signs). Deliberately does not own: the table's
//! content (the kinds build it) or the other formats (`table`).
//!
//! Widths follow from the column count: up to 4 data columns at the document's size, 5 to 6 at
//! `\small`, 7 and more at `\scriptsize` with narrower padding. The integration test
//! `latex::` compiles every table of the default pipeline and an 8-column table with pdflatex in
//! an A4 article with 2.5 cm margins and fails on any overfull box.

use std::fmt::Write as _;

use crate::table::{Cell, Group, Table};

/// The packages a rendered table needs, as its header comment names them.
pub const PACKAGES: &str = "booktabs,siunitx,threeparttable,array";

/// The size of the table, from its number of data columns.
struct Shape {
    /// Size command applied to the whole table (empty: the document's size).
    size: &'static str,
    tabcolsep_pt: &'static str,
    stub_cm: &'static str,
    /// Longest line of a column header before it is broken (characters).
    header_chars: usize,
}

fn shape(n: usize) -> Shape {
    match n {
        0..=4 => Shape {
            size: "",
            tabcolsep_pt: "6",
            stub_cm: "4.2",
            header_chars: 18,
        },
        5..=6 => Shape {
            size: "\\small",
            tabcolsep_pt: "4",
            stub_cm: "3.0",
            header_chars: 12,
        },
        // Measured with pdflatex: 8 columns of `-0.123***` fit at 10-12 pt; 8 columns with two
        // integer digits (`-12.345***`) still overflow by about 15 pt at 11-12 pt.
        _ => Shape {
            size: "\\scriptsize",
            tabcolsep_pt: "2.5",
            stub_cm: "2.2",
            header_chars: 10,
        },
    }
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

/// The column type of data column `k`: `S` with a `table-format` wide enough for its numbers,
/// or `c` when it holds no number.
fn column_type(table: &Table, k: usize) -> String {
    let (mut int, mut frac, mut neg, mut paren, mut stars) = (0, 0, false, false, 0);
    let mut any = false;
    for row in table.sections.iter().flatten() {
        let Some(cell) = row.cells.get(k) else {
            continue;
        };
        if let Some((p, i, f)) = numeric_parts(&cell.text) {
            any = true;
            int = int.max(i);
            frac = frac.max(f);
            neg |= cell.text.contains('-');
            paren |= p;
            stars = stars.max(cell.stars.len());
        }
    }
    if !any {
        return "c".into();
    }
    let mut format = format!(
        "table-format={}{int}{}",
        if neg { "-" } else { "" },
        if frac > 0 {
            format!(".{frac}")
        } else {
            String::new()
        }
    );
    if paren {
        format.push_str(",table-space-text-pre={(}");
    }
    if stars > 0 {
        let _ = write!(
            format,
            ",table-space-text-post={{\\textsuperscript{{{}}}}}",
            "*".repeat(stars)
        );
    } else if paren {
        format.push_str(",table-space-text-post={)}");
    }
    format!("S[{format}]")
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

/// `text` broken at spaces, `/` and `-` into lines of at most `width` characters where possible,
/// as a one-column tabular when it takes more than one line.
fn stacked(text: &str, width: usize) -> String {
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
        "% Needs: \\usepackage{{{PACKAGES}}} (siunitx 3 or later)"
    );
    if float {
        out.push_str("\\begin{table}[htbp]\n\\centering\n");
    }
    out.push_str("\\begingroup\n");
    if !sh.size.is_empty() {
        let _ = writeln!(out, "{}", sh.size);
    }
    let _ = writeln!(out, "\\setlength{{\\tabcolsep}}{{{}pt}}", sh.tabcolsep_pt);
    out.push_str("\\sisetup{input-open-uncertainty=,input-close-uncertainty=,table-align-text-pre=false,table-align-text-after=false}\n");
    out.push_str("\\begin{threeparttable}\n");
    if let Some(c) = &table.caption {
        let _ = writeln!(out, "\\caption{{{}}}", latex_escape(c));
    }
    if let Some(l) = &table.label {
        let _ = writeln!(out, "\\label{{{}}}", label_text(l));
    }
    let cols: Vec<String> = (0..n).map(|k| column_type(table, k)).collect();
    let _ = writeln!(
        out,
        "\\begin{{tabular}}{{@{{}}>{{\\raggedright\\arraybackslash}}p{{{}cm}}{}@{{}}}}",
        sh.stub_cm,
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
    out.push_str("\\bottomrule\n\\end{tabular}\n");
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
