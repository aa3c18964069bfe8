//! The specification-curve figure: the estimates sorted, each with its confidence interval,
//! above an indicator panel that marks each specification's choices (Simonsohn, Simmons & Nelson
//! 2020, Figure 2), as SVG, PDF and a 300-dpi PNG with the bundled font, plus the plotted data
//! as JSON.
//!
//! Owns: the figure's data ([`Curve`]), its layout and drawing. Deliberately does not own: the
//! font, ticks and file conventions (`crate::figures`), or what is estimated.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use repro_kind::diag::Diagnostic;
use repro_kind::BuiltinCtx;
use serde::Serialize;

use super::spec::{CurveSpec, DIMENSIONS};
use super::Point;
use crate::figures::{self, FONT};

/// One plotted specification, in rank order.
#[derive(Debug, Clone, Serialize)]
pub struct Plotted {
    pub rank: usize,
    pub spec: usize,
    pub estimate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub significance: &'static str,
    /// The indicator row of each of its choices.
    pub rows: Vec<usize>,
}

/// Everything the figure shows (also written as JSON beside the images).
#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    pub title: String,
    pub level: f64,
    /// Indicator rows top to bottom: `Dimension: choice`.
    pub rows: Vec<String>,
    pub points: Vec<Plotted>,
    pub y_range: [f64; 2],
}

impl Curve {
    pub fn new(s: &CurveSpec, points: &[Point]) -> Curve {
        let mut rows = Vec::new();
        let mut first_row = Vec::new();
        for d in DIMENSIONS {
            first_row.push(rows.len());
            let labels = s.labels(d);
            // A dimension with one choice varies nothing: it gets no row.
            if labels.len() > 1 {
                rows.extend(labels.iter().map(|l| format!("{}: {l}", d.title())));
            }
        }
        let mut sorted: Vec<&Point> = points.iter().collect();
        sorted.sort_by_key(|p| p.rank);
        let plotted: Vec<Plotted> = sorted
            .iter()
            .map(|p| Plotted {
                rank: p.rank,
                spec: p.spec,
                estimate: p.estimate,
                ci_low: p.ci_low,
                ci_high: p.ci_high,
                significance: p.significance,
                rows: DIMENSIONS
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| s.labels(**d).len() > 1)
                    .map(|(k, d)| {
                        let label = &p.choices[k];
                        first_row[k] + s.labels(*d).iter().position(|l| l == label).unwrap_or(0)
                    })
                    .collect(),
            })
            .collect();
        let values = plotted
            .iter()
            .flat_map(|p| [p.ci_low, p.ci_high, 0.0])
            .filter(|v| v.is_finite());
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        let pad = ((hi - lo) * 0.06).max(1e-9);
        let round = |x: f64| (x * 1e9).round() / 1e9;
        Curve {
            title: s
                .title
                .clone()
                .unwrap_or_else(|| "Specification curve".to_string()),
            level: s.level,
            rows,
            points: plotted,
            y_range: [round(lo - pad), round(hi + pad)],
        }
    }
}

const WIDTH: u32 = 960;
const CURVE_HEIGHT: u32 = 340;
const ROW_HEIGHT: u32 = 15;
const LABEL_WIDTH: u32 = 300;

fn size(c: &Curve, scale: f64) -> (u32, u32) {
    let h = CURVE_HEIGHT + 60 + ROW_HEIGHT * c.rows.len().max(1) as u32;
    (
        (f64::from(WIDTH) * scale).round() as u32,
        (f64::from(h) * scale).round() as u32,
    )
}

/// Colours of significant with the expected sign, not significant, significant against it.
fn colour(significance: &str) -> RGBColor {
    match significance {
        "expected" => RGBColor(31, 119, 180),
        "opposite" => RGBColor(214, 39, 40),
        _ => RGBColor(140, 140, 140),
    }
}

fn draw<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    c: &Curve,
    scale: f64,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let px = |v: f64| (v * scale).round() as u32;
    let pi = |v: f64| (v * scale).round() as i32;
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    area.fill(&WHITE).map_err(err)?;
    // A top margin, so the title's ascenders are inside the image.
    let area = area.margin(px(8.0), 0, 0, 0);
    let area = area.titled(&c.title, (FONT, 20.0 * scale)).map_err(err)?;
    let (top, bottom) = area.split_vertically(px(f64::from(CURVE_HEIGHT)));
    let n = c.points.len().max(1) as f64;
    let x_range = 0.5..n + 0.5;
    let [y0, y1] = c.y_range;
    let y_dec = figures::tick_decimals(y1 - y0);
    let mut chart = ChartBuilder::on(&top)
        .margin(px(10.0))
        .x_label_area_size(px(30.0))
        .y_label_area_size(px(f64::from(LABEL_WIDTH)))
        .build_cartesian_2d(x_range.clone(), y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("Specification (ranked by estimate)")
        .x_label_formatter(&|v: &f64| format!("{v:.0}"))
        .y_label_formatter(&|v: &f64| figures::tick(*v, y_dec))
        .label_style((FONT, 12.0 * scale))
        .axis_desc_style((FONT, 13.0 * scale))
        .axis_style(BLACK.stroke_width(px(1.0)))
        .bold_line_style(BLACK.mix(0.1).stroke_width(px(1.0)))
        .light_line_style(WHITE)
        .set_all_tick_mark_size(px(5.0))
        .draw()
        .map_err(err)?;
    if y0 < 0.0 && y1 > 0.0 {
        chart
            .draw_series(LineSeries::new(
                [(0.5, 0.0), (n + 0.5, 0.0)],
                BLACK.mix(0.5).stroke_width(px(1.0)),
            ))
            .map_err(err)?;
    }
    chart
        .draw_series(c.points.iter().map(|p| {
            let x = p.rank as f64;
            PathElement::new(
                vec![(x, p.ci_low), (x, p.ci_high)],
                colour(p.significance).mix(0.35).stroke_width(px(1.0)),
            )
        }))
        .map_err(err)?
        .label(format!("{:.0}% confidence interval", c.level * 100.0))
        .legend(move |(x, y)| {
            PathElement::new(
                vec![(x + pi(9.0), y - pi(6.0)), (x + pi(9.0), y + pi(6.0))],
                BLACK.mix(0.35).stroke_width(px(1.0)),
            )
        });
    for (kind, text) in [
        ("expected", "Significant, expected sign"),
        ("none", "Not significant"),
        ("opposite", "Significant, opposite sign"),
    ] {
        let col = colour(kind);
        let dots: Vec<&super::figure::Plotted> =
            c.points.iter().filter(|p| p.significance == kind).collect();
        if dots.is_empty() {
            continue;
        }
        chart
            .draw_series(
                dots.iter()
                    .map(|p| Circle::new((p.rank as f64, p.estimate), px(2.0), col.filled())),
            )
            .map_err(err)?
            .label(text)
            .legend(move |(x, y)| Circle::new((x + pi(9.0), y), px(3.0), col.filled()));
    }
    // The y axis's name beside its ticks: the label area is as wide as the indicator panel's
    // labels (so the two panels share their x axis), and plotters would put it at the far edge.
    let (x, y) = chart.backend_coord(&(0.5, (y0 + y1) / 2.0));
    let base = top.get_base_pixel();
    top.draw(&Text::new(
        "Estimate",
        (x - base.0 - pi(62.0), y - base.1),
        TextStyle::from((FONT, 13.0 * scale))
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Center, VPos::Center))
            .color(&BLACK),
    ))
    .map_err(err)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 12.0 * scale))
        .margin(px(5.0))
        .legend_area_size(px(22.0))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.5))
        .draw()
        .map_err(err)?;
    draw_indicators(&bottom, c, scale, x_range)?;
    area.present().map_err(err)
}

/// The indicator panel: one row per choice, a mark under each specification that makes it.
fn draw_indicators<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    c: &Curve,
    scale: f64,
    x_range: std::ops::Range<f64>,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let px = |v: f64| (v * scale).round() as u32;
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let rows = c.rows.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .margin_left(px(10.0))
        .margin_right(px(10.0))
        .margin_bottom(px(10.0))
        .y_label_area_size(px(f64::from(LABEL_WIDTH)))
        .build_cartesian_2d(x_range, -rows..0.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(0)
        .axis_style(BLACK.stroke_width(px(1.0)))
        .draw()
        .map_err(err)?;
    for k in 0..c.rows.len() {
        if k % 2 == 1 {
            let y = -(k as f64);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(chart.x_range().start, y - 1.0), (chart.x_range().end, y)],
                    BLACK.mix(0.04).filled(),
                )))
                .map_err(err)?;
        }
    }
    chart
        .draw_series(c.points.iter().flat_map(|p| {
            let col = colour(p.significance);
            p.rows.iter().map(move |&r| {
                let x = p.rank as f64;
                let y = -(r as f64) - 0.5;
                PathElement::new(vec![(x, y - 0.3), (x, y + 0.3)], col.stroke_width(px(1.5)))
            })
        }))
        .map_err(err)?;
    let base = area.get_base_pixel();
    let style = TextStyle::from((FONT, 11.0 * scale))
        .pos(Pos::new(HPos::Right, VPos::Center))
        .color(&BLACK);
    for (k, label) in c.rows.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(chart.x_range().start, -(k as f64) - 0.5));
        area.draw(&Text::new(
            label.clone(),
            (x - base.0 - (6.0 * scale) as i32, y - base.1),
            style.clone(),
        ))
        .map_err(err)?;
    }
    Ok(())
}

impl figures::Drawing for Curve {
    fn size(&self, scale: f64) -> (u32, u32) {
        size(self, scale)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        area: DrawingArea<DB, plotters::coord::Shift>,
        scale: f64,
    ) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        draw(area, self, scale)
    }
}

/// Writes `<base>.svg`, `.pdf`, `.png` (300 dpi) and `.json`.
pub fn write(ctx: &BuiltinCtx<'_>, base: &str, c: &Curve) -> Result<(), Diagnostic> {
    figures::write_figure(ctx, base, c, "the specification curve")
}
