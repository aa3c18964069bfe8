//! Figures drawn with plotters into SVG and PNG, with a bundled font and no system libraries.
//!
//! Owns: the bundled font (`assets/fonts/repro-sans.ttf`, a subset of WenQuanYi Micro Hei that
//! covers ASCII, Latin-1, Greek and the Chinese city names; see `assets/fonts/subset.py`) and its
//! registration with plotters' ab_glyph text renderer, and the quantile-process figure: one panel
//! per method with the coefficient across quantiles, its shaded confidence band, and the
//! fixed-effects OLS estimate and band as horizontal lines. Deliberately does not own: estimating
//! anything or choosing what to plot (the `quantiles` kind computes the series) or writing files
//! other than through the caller's paths.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use serde::Serialize;

/// The family name figures use; registered once per process from the bundled file.
pub const FONT: &str = "repro-sans";
static FONT_BYTES: &[u8] = include_bytes!("../assets/fonts/repro-sans.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            // The font is compiled in and known to parse (unit test below), so this cannot fail.
            let _ = plotters::style::register_font(FONT, style, FONT_BYTES);
        }
    });
}

/// One point of a coefficient process.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessPoint {
    pub tau: f64,
    pub coef: f64,
    pub se: f64,
    pub lo: f64,
    pub hi: f64,
}

/// One panel: a method's coefficient across quantiles.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Panel {
    pub method: String,
    pub title: String,
    pub series: Vec<ProcessPoint>,
}

/// A horizontal reference estimate with its band.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reference {
    pub label: String,
    pub coef: f64,
    pub se: f64,
    pub lo: f64,
    pub hi: f64,
}

/// Everything the quantile-process figure shows (also written as JSON beside the images).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuantileFigure {
    pub title: String,
    pub y_label: String,
    pub level: f64,
    pub panels: Vec<Panel>,
    pub ols: Reference,
    pub x_range: [f64; 2],
    pub y_range: [f64; 2],
}

/// Axis ranges that hold every band: taus padded by 0.05, values padded by 8% of their span.
pub fn axis_ranges(panels: &[Panel], ols: &Reference) -> ([f64; 2], [f64; 2]) {
    let taus = panels.iter().flat_map(|p| p.series.iter().map(|s| s.tau));
    let (t0, t1) = taus.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), t| {
        (a.min(t), b.max(t))
    });
    let values = panels
        .iter()
        .flat_map(|p| p.series.iter().flat_map(|s| [s.lo, s.hi, s.coef]))
        .chain([ols.lo, ols.hi, ols.coef])
        .filter(|v| v.is_finite());
    let (v0, v1) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (t0, t1) = if t0.is_finite() { (t0, t1) } else { (0.0, 1.0) };
    let (v0, v1) = if v0.is_finite() {
        (v0, v1)
    } else {
        (-1.0, 1.0)
    };
    let pad = ((v1 - v0) * 0.08).max(1e-9);
    let round = |x: f64| (x * 1e9).round() / 1e9;
    (
        [round(t0 - 0.05), round(t1 + 0.05)],
        [round(v0 - pad), round(v1 + pad)],
    )
}

const WIDTH_PER_PANEL: u32 = 520;
const HEIGHT: u32 = 420;

fn draw<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    fig: &QuantileFigure,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    area.fill(&WHITE).map_err(err)?;
    let area = area.titled(&fig.title, (FONT, 20)).map_err(err)?;
    let panels = area.split_evenly((1, fig.panels.len().max(1)));
    let [x0, x1] = fig.x_range;
    let [y0, y1] = fig.y_range;
    let band = RGBColor(31, 119, 180);
    let ols = RGBColor(214, 39, 40);
    for (cell, panel) in panels.iter().zip(&fig.panels) {
        let mut chart = ChartBuilder::on(cell)
            .caption(&panel.title, (FONT, 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("Quantile (τ)")
            .y_desc(fig.y_label.as_str())
            // Tick values print with plotters' shortest form, except that a tick at zero
            // computed as -1e-17 must not read `-0.0`.
            .y_label_formatter(&|v: &f64| {
                let v = if v.abs() < 1e-12 { 0.0 } else { *v };
                format!("{}", (v * 1e6).round() / 1e6)
            })
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .light_line_style(WHITE)
            .draw()
            .map_err(err)?;
        let mut outline: Vec<(f64, f64)> = panel.series.iter().map(|s| (s.tau, s.lo)).collect();
        outline.extend(panel.series.iter().rev().map(|s| (s.tau, s.hi)));
        chart
            .draw_series(std::iter::once(Polygon::new(
                outline,
                band.mix(0.2).filled(),
            )))
            .map_err(err)?
            .label(format!("{:.0}% band", fig.level * 100.0))
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 18, y + 5)], band.mix(0.2).filled())
            });
        chart
            .draw_series(LineSeries::new(
                panel.series.iter().map(|s| (s.tau, s.coef)),
                band.stroke_width(2),
            ))
            .map_err(err)?
            .label(panel.method.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], band.stroke_width(2))
            });
        chart
            .draw_series(
                panel
                    .series
                    .iter()
                    .map(|s| Circle::new((s.tau, s.coef), 3, band.filled())),
            )
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                [(x0, fig.ols.coef), (x1, fig.ols.coef)],
                ols.stroke_width(2),
            ))
            .map_err(err)?
            .label(fig.ols.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], ols.stroke_width(2)));
        for v in [fig.ols.lo, fig.ols.hi] {
            chart
                .draw_series(LineSeries::new(
                    [(x0, v), (x1, v)],
                    ols.mix(0.6).stroke_width(1),
                ))
                .map_err(err)?;
        }
        if y0 < 0.0 && y1 > 0.0 {
            chart
                .draw_series(LineSeries::new([(x0, 0.0), (x1, 0.0)], BLACK.mix(0.4)))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FONT, 12))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.5))
            .draw()
            .map_err(err)?;
    }
    area.present().map_err(err)
}

fn size(fig: &QuantileFigure) -> (u32, u32) {
    (WIDTH_PER_PANEL * fig.panels.len().max(1) as u32, HEIGHT)
}

/// The figure as SVG text.
pub fn quantile_svg(fig: &QuantileFigure) -> Result<String, String> {
    register_font();
    let mut svg = String::new();
    {
        let backend = SVGBackend::with_string(&mut svg, size(fig));
        draw(backend.into_drawing_area(), fig)?;
    }
    Ok(svg)
}

/// Writes the figure as PNG to `path` (the extension must be `.png`).
pub fn quantile_png(fig: &QuantileFigure, path: &Path) -> Result<(), String> {
    register_font();
    let backend = BitMapBackend::new(path, size(fig));
    draw(backend.into_drawing_area(), fig)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure() -> QuantileFigure {
        let series: Vec<ProcessPoint> = [0.25, 0.5, 0.75]
            .iter()
            .map(|&t| ProcessPoint {
                tau: t,
                coef: t,
                se: 0.1,
                lo: t - 0.2,
                hi: t + 0.2,
            })
            .collect();
        let panels = vec![Panel {
            method: "pooled".into(),
            title: "Pooled QR 北京市".into(),
            series,
        }];
        let ols = Reference {
            label: "FE OLS".into(),
            coef: 0.4,
            se: 0.05,
            lo: 0.3,
            hi: 0.5,
        };
        let (x_range, y_range) = axis_ranges(&panels, &ols);
        QuantileFigure {
            title: "Test".into(),
            y_label: "x".into(),
            level: 0.95,
            panels,
            ols,
            x_range,
            y_range,
        }
    }

    #[test]
    fn bundled_font_parses() {
        assert!(plotters::style::register_font("test-font", FontStyle::Normal, FONT_BYTES).is_ok());
    }

    #[test]
    fn ranges_hold_every_band() {
        let f = figure();
        assert_eq!(f.x_range, [0.2, 0.8]);
        assert!(f.y_range[0] < 0.05 && f.y_range[1] > 0.95);
    }

    #[test]
    fn svg_and_png_are_deterministic() {
        let f = figure();
        let a = quantile_svg(&f).unwrap();
        let b = quantile_svg(&f).unwrap();
        assert_eq!(a, b);
        assert!(a.contains("北京市"));
        let dir = tempfile::tempdir().unwrap();
        let p1 = dir.path().join("a.png");
        let p2 = dir.path().join("b.png");
        quantile_png(&f, &p1).unwrap();
        quantile_png(&f, &p2).unwrap();
        assert_eq!(std::fs::read(p1).unwrap(), std::fs::read(p2).unwrap());
    }
}
