//! Publication tables: one grid model rendered to LaTeX, Markdown, HTML and CSV.
//!
//! Owns: the [`Table`] model (a stub column plus data columns, optional spanning column groups,
//! sections of rows separated by rules, notes), the four renderers with their escaping, and the
//! number formatting every table kind shares (fixed decimals, stars, parentheses). Deliberately
//! does not own: deciding what goes into a table (the `models`, `describe` and `quantiles` kinds
//! build tables) or writing files.

use std::fmt::Write as _;

/// One cell: its text and, for coefficients, significance stars rendered as a superscript.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell {
    pub text: String,
    pub stars: &'static str,
}

impl Cell {
    pub fn text(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            stars: "",
        }
    }

    pub fn empty() -> Cell {
        Cell::default()
    }
}

/// A row: its label in the stub column and one cell per data column.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub label: String,
    pub cells: Vec<Cell>,
}

/// A header spanning `span` consecutive data columns (an empty label spans nothing visible).
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub label: String,
    pub span: usize,
}

/// A header row under the groups: a stub label and labels spanning columns (e.g. the dependent
/// variable, one label over the columns that share it).
#[derive(Debug, Clone, PartialEq)]
pub struct Spanner {
    pub label: String,
    pub groups: Vec<Group>,
}

/// A table. Every row has exactly `columns.len()` cells; groups and spanners, when present, span
/// all columns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub title: String,
    pub groups: Vec<Group>,
    /// Header rows between the groups and the column labels.
    pub spanners: Vec<Spanner>,
    pub columns: Vec<String>,
    /// A row `(1) (2) ...` under the column labels.
    pub numbered: bool,
    /// Blocks of rows; a rule separates consecutive blocks.
    pub sections: Vec<Vec<Row>>,
    pub notes: Vec<String>,
    /// LaTeX `\caption` and `\label`; either makes the `.tex` a `table` float.
    pub caption: Option<String>,
    pub label: Option<String>,
}

/// `x` with `digits` decimals; `-0.000` is printed as `0.000`.
pub fn fixed(x: f64, digits: usize) -> String {
    if !x.is_finite() {
        return String::new();
    }
    let s = format!("{x:.digits$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => s,
    }
}

/// A p-value with `digits` decimals; one that would round to zero prints as `<0.001`.
pub fn p_value(p: f64, digits: usize) -> String {
    let floor = 10f64.powi(-(digits as i32));
    if p.is_finite() && p < floor {
        format!("<{}", fixed(floor, digits))
    } else {
        fixed(p, digits)
    }
}

/// A standard error in parentheses.
pub fn paren(x: f64, digits: usize) -> Cell {
    Cell::text(format!("({})", fixed(x, digits)))
}

impl Table {
    fn visible_sections(&self) -> impl Iterator<Item = &Vec<Row>> {
        self.sections.iter().filter(|s| !s.is_empty())
    }

    fn has_groups(&self) -> bool {
        self.groups.iter().any(|g| !g.label.is_empty())
    }

    /// A Markdown pipe table; group labels join the column headers, notes follow the table.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "**{}**\n", md_escape(&self.title));
        let group_of = self.group_per_column();
        let heads: Vec<String> = self
            .columns
            .iter()
            .zip(&group_of)
            .map(|(c, g)| match g {
                Some(g) if c.is_empty() => md_escape(g),
                Some(g) => md_escape(&format!("{g}: {c}")),
                None => md_escape(c),
            })
            .collect();
        let _ = writeln!(out, "|  | {} |", heads.join(" | "));
        let _ = writeln!(out, "|:--|{}", ":-:|".repeat(self.columns.len()));
        for row in self.header_rows() {
            let cells: Vec<String> = row[1..].iter().map(|c| md_escape(c)).collect();
            let _ = writeln!(out, "| {} | {} |", md_escape(&row[0]), cells.join(" | "));
        }
        for section in self.visible_sections() {
            for row in section {
                let cells: Vec<String> = row
                    .cells
                    .iter()
                    .map(|c| md_escape(&format!("{}{}", c.text, c.stars)))
                    .collect();
                let _ = writeln!(out, "| {} | {} |", md_escape(&row.label), cells.join(" | "));
            }
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for note in &self.notes {
                let _ = writeln!(out, "{}", md_escape(note));
                out.push('\n');
            }
            out.pop();
        }
        out
    }

    /// An HTML `<table>` fragment with a caption; text is escaped.
    pub fn to_html(&self) -> String {
        let mut out = String::new();
        out.push_str("<table class=\"repro-table\">\n");
        let _ = writeln!(out, "<caption>{}</caption>", html_escape(&self.title));
        out.push_str("<thead>\n");
        let spanning = |out: &mut String, stub: &str, groups: &[Group]| {
            let _ = write!(out, "<tr><th>{}</th>", html_escape(stub));
            for g in groups {
                let _ = write!(
                    out,
                    "<th colspan=\"{}\">{}</th>",
                    g.span,
                    html_escape(&g.label)
                );
            }
            out.push_str("</tr>\n");
        };
        if self.has_groups() {
            spanning(&mut out, "", &self.groups);
        }
        for sp in &self.spanners {
            spanning(&mut out, &sp.label, &sp.groups);
        }
        out.push_str("<tr><th></th>");
        for c in &self.columns {
            let _ = write!(out, "<th>{}</th>", html_escape(c));
        }
        out.push_str("</tr>\n");
        if self.numbered {
            out.push_str("<tr><th></th>");
            for k in 1..=self.columns.len() {
                let _ = write!(out, "<th>({k})</th>");
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</thead>\n");
        for section in self.visible_sections() {
            out.push_str("<tbody>\n");
            for row in section {
                let _ = write!(
                    out,
                    "<tr><th scope=\"row\">{}</th>",
                    html_escape(&row.label)
                );
                for c in &row.cells {
                    out.push_str("<td>");
                    out.push_str(&html_escape(&c.text));
                    if !c.stars.is_empty() {
                        let _ = write!(out, "<sup>{}</sup>", c.stars);
                    }
                    out.push_str("</td>");
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</tbody>\n");
        }
        if !self.notes.is_empty() {
            let _ = write!(
                out,
                "<tfoot>\n<tr><td colspan=\"{}\">",
                self.columns.len() + 1
            );
            let notes: Vec<String> = self.notes.iter().map(|n| html_escape(n)).collect();
            out.push_str(&notes.join("<br>"));
            out.push_str("</td></tr>\n</tfoot>\n");
        }
        out.push_str("</table>\n");
        out
    }

    /// The same grid as CSV, one cell per table cell: a group row (when there are groups), the
    /// header row, the body rows, then one row per note.
    pub fn to_csv(&self) -> String {
        let mut grid: Vec<Vec<String>> = Vec::new();
        if self.has_groups() {
            let mut row = vec![String::new()];
            for g in &self.groups {
                // As `header_rows`: a grid repeats a spanning label in each of its columns.
                row.extend(std::iter::repeat_n(g.label.clone(), g.span));
            }
            grid.push(row);
        }
        grid.push(
            std::iter::once(String::new())
                .chain(self.columns.iter().cloned())
                .collect(),
        );
        grid.extend(self.header_rows());
        for row in self.visible_sections().flatten() {
            grid.push(
                std::iter::once(row.label.clone())
                    .chain(row.cells.iter().map(|c| format!("{}{}", c.text, c.stars)))
                    .collect(),
            );
        }
        for note in &self.notes {
            grid.push(vec![note.clone()]);
        }
        let mut out = String::new();
        for row in grid {
            let cells: Vec<String> = row.iter().map(|c| csv_escape(c)).collect();
            let _ = writeln!(out, "{}", cells.join(","));
        }
        out
    }

    /// The spanner rows and the column-number row as plain grid rows (stub first; a spanning
    /// label repeated in every column of its span), for the formats that cannot span.
    fn header_rows(&self) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        for sp in &self.spanners {
            let mut row = vec![sp.label.clone()];
            for g in &sp.groups {
                // Grids (CSV, Markdown) cannot span: each column repeats its header, so a
                // blank never reads as "none".
                row.extend(std::iter::repeat_n(g.label.clone(), g.span));
            }
            rows.push(row);
        }
        if self.numbered {
            rows.push(
                std::iter::once(String::new())
                    .chain((1..=self.columns.len()).map(|k| format!("({k})")))
                    .collect(),
            );
        }
        rows
    }

    /// The group label of each data column (when the table has groups).
    fn group_per_column(&self) -> Vec<Option<String>> {
        if !self.has_groups() {
            return vec![None; self.columns.len()];
        }
        let mut out = Vec::new();
        for g in &self.groups {
            for _ in 0..g.span {
                out.push((!g.label.is_empty()).then(|| g.label.clone()));
            }
        }
        out.resize(self.columns.len(), None);
        out
    }
}

/// Groups consecutive equal labels into spans (columns without a group get an empty label).
pub fn spans(labels: &[Option<String>]) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    for l in labels {
        let label = l.clone().unwrap_or_default();
        match out.last_mut() {
            Some(g) if g.label == label && !label.is_empty() => g.span += 1,
            _ => out.push(Group { label, span: 1 }),
        }
    }
    out
}

pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '|' | '\\' | '*' | '_' | '`' | '<' | '>' | '[' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn csv_escape(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A small table with every special character, for the renderers' tests (this module's and
/// `latex`'s).
#[cfg(test)]
pub(crate) fn sample() -> Table {
    Table {
        title: "A & B_1".into(),
        groups: spans(&[Some("East".into()), Some("East".into()), None]),
        spanners: Vec::new(),
        columns: vec!["(1)".into(), "(2)".into(), "(3)".into()],
        numbered: false,
        caption: None,
        label: None,
        sections: vec![
            vec![
                Row {
                    label: "x_1".into(),
                    cells: vec![
                        Cell {
                            text: "0.500".into(),
                            stars: "***",
                        },
                        Cell::text("1"),
                        Cell::empty(),
                    ],
                },
                Row {
                    label: "".into(),
                    cells: vec![paren(0.1, 3), paren(0.2, 3), Cell::empty()],
                },
            ],
            vec![],
            vec![Row {
                label: "N".into(),
                cells: vec![Cell::text("1,000"), Cell::text("5"), Cell::text("a|b")],
            }],
        ],
        notes: vec!["50% <note>".into()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_drops_negative_zero() {
        assert_eq!(fixed(-0.0004, 3), "0.000");
        assert_eq!(fixed(-0.0006, 3), "-0.001");
        assert_eq!(fixed(f64::NAN, 3), "");
    }

    #[test]
    fn spans_merge_equal_neighbours_only() {
        let g = spans(&[
            Some("a".into()),
            Some("a".into()),
            None,
            None,
            Some("a".into()),
        ]);
        let spans: Vec<usize> = g.iter().map(|g| g.span).collect();
        assert_eq!(spans, vec![2, 1, 1, 1]);
    }

    #[test]
    fn every_format_escapes_its_specials() {
        let t = sample();
        let html = t.to_html();
        assert!(html.contains("<td>0.500<sup>***</sup></td>"));
        assert!(html.contains("50% &lt;note&gt;"));
        assert!(html.contains("<th colspan=\"2\">East</th>"));
        let md = t.to_markdown();
        assert!(md.contains("| x\\_1 | 0.500\\*\\*\\* | 1 |  |"));
        assert!(md.contains("a\\|b"));
        let csv = t.to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], ",East,East,");
        assert_eq!(lines[1], ",(1),(2),(3)");
        assert_eq!(lines[2], "x_1,0.500***,1,");
        assert_eq!(lines[4], "N,\"1,000\",5,a|b");
    }

    fn csv_fields(line: &str) -> usize {
        // Counts fields of one CSV line, honouring quotes.
        let mut n = 1;
        let mut quoted = false;
        for c in line.chars() {
            match c {
                '"' => quoted = !quoted,
                ',' if !quoted => n += 1,
                _ => {}
            }
        }
        n
    }

    proptest::proptest! {
        #[test]
        fn every_csv_row_has_the_grid_width_and_html_cells_are_escaped(
            cells in proptest::collection::vec("[ -~]{0,8}", 6),
            label in "[ -~]{0,12}",
        ) {
            let row = Row { label: label.clone(), cells: cells[..3].iter().map(Cell::text).collect() };
            let row2 = Row { label, cells: cells[3..].iter().map(Cell::text).collect() };
            let t = Table {
                title: cells[0].clone(),
                groups: Vec::new(),
                spanners: Vec::new(),
                columns: vec!["a".into(), "b".into(), "c".into()],
                numbered: false,
                sections: vec![vec![row, row2]],
                notes: Vec::new(),
                caption: None,
                label: None,
            };
            for line in t.to_csv().lines() {
                proptest::prop_assert_eq!(csv_fields(line), 4, "{}", line);
            }
            let html = t.to_html();
            for c in &cells[..] {
                let escaped = format!("<td>{}</td>", html_escape(c));
                proptest::prop_assert!(html.contains(&escaped), "{}", escaped);
                proptest::prop_assert!(!escaped[4..escaped.len() - 5].contains(['<', '>', '"']));
            }
            proptest::prop_assert_eq!(t.to_markdown().lines().filter(|l| l.starts_with("| ")).count(), 3);
        }
    }
}
