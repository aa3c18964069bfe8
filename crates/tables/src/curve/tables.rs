//! The curve's two publication tables: the summary by choice (`output/tables/NAME.*`, one page:
//! the exhibit) and every specification (`output/results/NAME/specifications.{tex,md,html}`,
//! hundreds of rows: a listing beside the full-precision CSV).
//!
//! Owns: what each table shows and its notes. Deliberately does not own: rendering (`table`) or
//! the statistics (`super::stats`).

use super::spec::{CurveSpec, Sign, DIMENSIONS};
use super::{stats, Point, Stats};
use crate::stars::Stars;
use crate::table::{self as tables, Cell, Row, Table};

fn percent(share: f64) -> String {
    format!("{}%", tables::fixed(share * 100.0, 1))
}

fn sign_text(s: &CurveSpec) -> &'static str {
    match s.expected_sign {
        Sign::Positive => "positive",
        Sign::Negative => "negative",
    }
}

/// The summary's sentence for the notes.
fn summary_note(s: &CurveSpec, n: usize, observed: &Stats) -> String {
    format!(
        "{n} specifications. Median estimate {}; {} with the expected ({}) sign, {} significant at the {}% level with it.",
        tables::fixed(observed.median_estimate, s.digits),
        percent(observed.share_expected_sign),
        sign_text(s),
        percent(observed.share_significant_expected_sign),
        tables::fixed(s.level * 100.0, 0),
    )
}

fn title(s: &CurveSpec) -> String {
    s.title
        .clone()
        .unwrap_or_else(|| "Specification curve".to_string())
}

/// One row per choice of every dimension with more than one choice (a section per dimension),
/// after a row for all specifications: how many specifications make the choice, their median
/// estimate and the shares with the expected sign and significant with it.
pub fn by_choice(s: &CurveSpec, points: &[Point]) -> Table {
    let row = |label: String, of: &[&Point]| {
        let pairs: Vec<(f64, f64)> = of.iter().map(|p| (p.estimate, p.p_value)).collect();
        let st = stats(&pairs, s.expected_sign, s.level);
        Row {
            label,
            cells: vec![
                Cell::text(crate::fitting::thousands(of.len())),
                Cell::text(tables::fixed(st.median_estimate, s.digits)),
                Cell::text(percent(st.share_expected_sign)),
                Cell::text(percent(st.share_significant_expected_sign)),
            ],
        }
    };
    let all: Vec<&Point> = points.iter().collect();
    let mut sections = vec![vec![row("All specifications".to_string(), &all)]];
    for (k, d) in DIMENSIONS.iter().enumerate() {
        let labels = s.labels(*d);
        if labels.len() < 2 {
            continue;
        }
        sections.push(
            labels
                .iter()
                .map(|l| {
                    let of: Vec<&Point> = points.iter().filter(|p| p.choices[k] == *l).collect();
                    row(format!("{}: {l}", d.title()), &of)
                })
                .collect(),
        );
    }
    let fixed: Vec<String> = DIMENSIONS
        .iter()
        .filter(|d| s.labels(**d).len() == 1)
        .map(|d| format!("{}: {}", d.title(), s.labels(*d)[0]))
        .collect();
    Table {
        title: title(s),
        columns: ["Specifications", "Median estimate", "Expected sign", "Significant"]
            .map(String::from)
            .to_vec(),
        sections,
        // One note: the "All specifications" row is the summary, and the table must fit an A4
        // page at 12 pt with the study's 20 choices.
        notes: [format!(
            "Rows: the specifications making each choice; their median estimate and shares with the expected ({}) sign and significant with it at the {}% level.",
            sign_text(s),
            tables::fixed(s.level * 100.0, 0)
        )]
        .into_iter()
        .chain((!fixed.is_empty()).then(|| format!("In every specification: {}.", fixed.join("; "))))
        .collect(),
        caption: s.caption.clone(),
        label: s.latex_label.clone(),
        ..Table::default()
    }
}

/// One row per specification (in specification order) with its choices, estimate, standard
/// error, rank and N.
pub fn specifications(s: &CurveSpec, points: &[Point], observed: &Stats) -> Table {
    let d = s.digits;
    let stars = Stars::default();
    let rows: Vec<Row> = points
        .iter()
        .map(|p| {
            let mut cells: Vec<Cell> = p.choices.iter().map(Cell::text).collect();
            cells.push(Cell {
                text: tables::fixed(p.estimate, d),
                stars: stars.mark(p.p_value),
            });
            cells.push(tables::paren(p.std_error, d));
            cells.push(Cell::text(p.rank.to_string()));
            cells.push(Cell::text(crate::fitting::thousands(p.nobs)));
            Row {
                label: p.spec.to_string(),
                cells,
            }
        })
        .collect();
    let mut columns: Vec<String> = DIMENSIONS.iter().map(|d| d.title().to_string()).collect();
    columns.extend(["Estimate", "SE", "Rank", "N"].map(String::from));
    Table {
        title: format!("{}: every specification", title(s)),
        columns,
        sections: vec![rows],
        notes: [
            summary_note(s, points.len(), observed),
            "Rank: position in the curve, 1 the smallest estimate.".to_string(),
        ]
        .into_iter()
        .chain(stars.note())
        .collect(),
        ..Table::default()
    }
}
