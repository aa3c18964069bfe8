//! The report's exhibits: the tables of `output/tables/` and figures of `output/figures/` in the
//! order and with the labels of the pipeline's `exhibits:`, then any others by name.
//!
//! Owns: matching an exhibit (`output/tables/baseline.tex: Table 2`) to the HTML table or SVG
//! figure the page shows (the file of the same stem), and rendering one exhibit's section.
//! Deliberately does not own: the page around it (`report`) or the tables and figures.

use std::fmt::Write as _;

use repro_engine::pipeline::Pipeline;
use repro_tables::table::html_escape;

/// One exhibit on the page: the file shown (relative to the project) and its label.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Shown {
    pub(super) rel: String,
    pub(super) label: Option<String>,
    pub(super) figure: bool,
}

/// `dir/stem.*` -> `(dir, stem)`.
fn dir_stem(path: &str) -> (&str, &str) {
    let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
    (dir, file.rsplit_once('.').map_or(file, |(s, _)| s))
}

/// The exhibits in `exhibits:` order (each table or figure once, with the first label that
/// names it), then the tables and figures no exhibit names, tables first, by file name.
pub(super) fn ordered(p: &Pipeline, tables: &[String], figures: &[String]) -> Vec<Shown> {
    let mut all: Vec<Shown> = tables
        .iter()
        .map(|t| Shown {
            rel: format!("output/tables/{t}"),
            label: None,
            figure: false,
        })
        .chain(figures.iter().map(|f| Shown {
            rel: format!("output/figures/{f}"),
            label: None,
            figure: true,
        }))
        .collect();
    let mut out = Vec::new();
    for e in &p.exhibits {
        let want = dir_stem(&e.output);
        if let Some(i) = all.iter().position(|s| dir_stem(&s.rel) == want) {
            let mut s = all.remove(i);
            s.label = Some(e.label.clone());
            out.push(s);
        }
    }
    out.extend(all);
    out
}

/// One exhibit's section: its label as a heading, the file, the table or the inlined figure.
pub(super) fn render(p: &Pipeline, s: &Shown) -> String {
    let text = std::fs::read_to_string(p.root.join(&s.rel)).unwrap_or_default();
    let (_, stem) = dir_stem(&s.rel);
    let kind = if s.figure { "figure" } else { "table" };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<section class=\"exhibit\" id=\"{kind}-{}\">",
        html_escape(stem)
    );
    if let Some(l) = &s.label {
        let _ = writeln!(out, "<h3 class=\"exhibit\">{}</h3>", html_escape(l));
    }
    let _ = writeln!(out, "<p class=\"file\">{}</p>", html_escape(&s.rel));
    if s.figure {
        let _ = writeln!(
            out,
            "<figure>\n{}\n</figure>",
            super::strip_xml_prolog(&text)
        );
    } else {
        out.push_str(&text);
    }
    out.push_str("</section>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_match_across_formats() {
        assert_eq!(
            dir_stem("output/tables/baseline.tex"),
            ("output/tables", "baseline")
        );
        assert_eq!(
            dir_stem("output/tables/baseline.html"),
            ("output/tables", "baseline")
        );
        assert_eq!(dir_stem("x.svg"), ("", "x"));
    }
}
