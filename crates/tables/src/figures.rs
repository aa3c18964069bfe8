//! Figures drawn with plotters into SVG, PNG and PDF (`pdf`), with a bundled font and no system
//! libraries.
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
use repro_kind::diag::Diagnostic;
use repro_kind::BuiltinCtx;
use serde::Serialize;

/// The family name figures use; registered once per process from the bundled file.
pub const FONT: &str = "repro-sans";
pub(crate) static FONT_BYTES: &[u8] = include_bytes!("../assets/fonts/repro-sans.ttf");
static REGISTER: Once = Once::new();

pub(crate) fn register_font() {
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
    /// The legend entry of the coefficient's line (the spec's label of the coefficient).
    pub series_label: String,
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
/// The PNG's resolution: drawn at 300/96 of the SVG's CSS-pixel size and tagged 300 dpi.
pub const PNG_DPI: u32 = 300;

/// Decimals that tell ticks about a tenth of `span` apart from each other, the same for every
/// tick of an axis.
pub(crate) fn tick_decimals(span: f64) -> usize {
    if !(span.is_finite() && span > 0.0) {
        return 0;
    }
    (-(span / 10.0).log10().floor()).clamp(0.0, 6.0) as usize
}

/// A tick value with `decimals` decimals and a true minus sign (U+2212, in the bundled font);
/// a zero computed as -1e-17 reads `0`.
pub(crate) fn tick(v: f64, decimals: usize) -> String {
    let text = crate::table::fixed(v, decimals);
    match text.strip_prefix('-') {
        Some(rest) => format!("\u{2212}{rest}"),
        None => text,
    }
}

fn draw<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    fig: &QuantileFigure,
    scale: f64,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let px = |v: f64| (v * scale).round() as u32;
    let pi = |v: f64| (v * scale).round() as i32;
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    area.fill(&WHITE).map_err(err)?;
    let area = area.titled(&fig.title, (FONT, 20.0 * scale)).map_err(err)?;
    let panels = area.split_evenly((1, fig.panels.len().max(1)));
    let [x0, x1] = fig.x_range;
    let [y0, y1] = fig.y_range;
    let (x_dec, y_dec) = (tick_decimals(x1 - x0), tick_decimals(y1 - y0));
    let band = RGBColor(31, 119, 180);
    let ols = RGBColor(214, 39, 40);
    let legend_line = move |color: RGBColor, width: u32| {
        move |(x, y): (i32, i32)| {
            PathElement::new(vec![(x, y), (x + pi(18.0), y)], color.stroke_width(width))
        }
    };
    for (cell, panel) in panels.iter().zip(&fig.panels) {
        let mut chart = ChartBuilder::on(cell)
            .caption(&panel.title, (FONT, 16.0 * scale))
            .margin(px(12.0))
            .x_label_area_size(px(40.0))
            .y_label_area_size(px(60.0))
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("Quantile (τ)")
            .y_desc(fig.y_label.as_str())
            .x_label_formatter(&|v: &f64| tick(*v, x_dec))
            .y_label_formatter(&|v: &f64| tick(*v, y_dec))
            .label_style((FONT, 12.0 * scale))
            .axis_desc_style((FONT, 13.0 * scale))
            .axis_style(BLACK.stroke_width(px(1.0)))
            .bold_line_style(BLACK.mix(0.1).stroke_width(px(1.0)))
            .light_line_style(WHITE)
            .set_all_tick_mark_size(px(5.0))
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
                Rectangle::new(
                    [(x, y - pi(5.0)), (x + pi(18.0), y + pi(5.0))],
                    band.mix(0.2).filled(),
                )
            });
        chart
            .draw_series(LineSeries::new(
                panel.series.iter().map(|s| (s.tau, s.coef)),
                band.stroke_width(px(2.0)),
            ))
            .map_err(err)?
            .label(fig.series_label.as_str())
            .legend(legend_line(band, px(2.0)));
        chart
            .draw_series(
                panel
                    .series
                    .iter()
                    .map(|s| Circle::new((s.tau, s.coef), px(3.0), band.filled())),
            )
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                [(x0, fig.ols.coef), (x1, fig.ols.coef)],
                ols.stroke_width(px(2.0)),
            ))
            .map_err(err)?
            .label(fig.ols.label.as_str())
            .legend(legend_line(ols, px(2.0)));
        for (k, v) in [fig.ols.lo, fig.ols.hi].into_iter().enumerate() {
            let lines = chart
                .draw_series(LineSeries::new(
                    [(x0, v), (x1, v)],
                    ols.mix(0.6).stroke_width(px(1.0)),
                ))
                .map_err(err)?;
            if k == 0 {
                // One legend entry for the reference band's two lines.
                lines
                    .label(format!(
                        "{:.0}% band of {}",
                        fig.level * 100.0,
                        fig.ols.label
                    ))
                    .legend(legend_line(ols, px(1.0)));
            }
        }
        if y0 < 0.0 && y1 > 0.0 {
            chart
                .draw_series(LineSeries::new(
                    [(x0, 0.0), (x1, 0.0)],
                    BLACK.mix(0.4).stroke_width(px(1.0)),
                ))
                .map_err(err)?;
        }
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
    }
    area.present().map_err(err)
}

fn size(fig: &QuantileFigure, scale: f64) -> (u32, u32) {
    let w = f64::from(WIDTH_PER_PANEL * fig.panels.len().max(1) as u32);
    (
        (w * scale).round() as u32,
        (f64::from(HEIGHT) * scale).round() as u32,
    )
}

impl Drawing for QuantileFigure {
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

/// A figure drawn alike on every backend, so its SVG, PDF and 300-dpi PNG are one drawing.
pub(crate) trait Drawing: Serialize {
    /// The size in pixels at `scale` (1.0: the SVG's CSS pixels).
    fn size(&self, scale: f64) -> (u32, u32);
    fn draw<DB: DrawingBackend>(
        &self,
        area: DrawingArea<DB, plotters::coord::Shift>,
        scale: f64,
    ) -> Result<(), String>
    where
        DB::ErrorType: 'static;
}

/// The figure as SVG text, with the bundled font embedded (`@font-face` with a data URL), so a
/// browser draws the same letters as the PNG whatever fonts it has.
pub(crate) fn svg_of(fig: &impl Drawing) -> Result<String, String> {
    register_font();
    let mut svg = String::new();
    {
        let backend = SVGBackend::with_string(&mut svg, fig.size(1.0));
        fig.draw(backend.into_drawing_area(), 1.0)?;
    }
    Ok(embed_font(&svg))
}

/// The figure as a one-page vector PDF of the SVG's size, text drawn as the font's outlines.
pub(crate) fn pdf_of(fig: &impl Drawing) -> Result<Vec<u8>, String> {
    let mut pdf = Vec::new();
    {
        let backend = crate::pdf::PdfBackend::new(&mut pdf, fig.size(1.0), FONT_BYTES)?;
        fig.draw(backend.into_drawing_area(), 1.0)?;
    }
    Ok(pdf)
}

/// `svg` with a `<style>` declaring the bundled font right after its opening tag.
pub(crate) fn embed_font(svg: &str) -> String {
    use base64::Engine as _;
    let Some(open) = svg
        .find("<svg")
        .and_then(|i| svg[i..].find('>').map(|j| i + j + 1))
    else {
        return svg.to_string();
    };
    let data = base64::engine::general_purpose::STANDARD.encode(FONT_BYTES);
    format!(
        "{}\n<defs><style>@font-face{{font-family:\"{FONT}\";src:url(data:font/ttf;base64,{data}) format(\"truetype\");}}</style></defs>{}",
        &svg[..open],
        &svg[open..]
    )
}

/// Writes the figure as a 300-dpi PNG to `path` (the extension must be `.png`).
pub(crate) fn png_to(fig: &impl Drawing, path: &Path) -> Result<(), String> {
    register_font();
    let scale = f64::from(PNG_DPI) / 96.0;
    {
        let backend = BitMapBackend::new(path, fig.size(scale));
        fig.draw(backend.into_drawing_area(), scale)?;
    }
    let png = std::fs::read(path).map_err(|e| e.to_string())?;
    std::fs::write(path, with_dpi(&png, PNG_DPI)?).map_err(|e| e.to_string())
}

/// Writes `<base>.svg` (font embedded), `.pdf`, `.json` (what the figure shows) and a 300-dpi
/// `.png` as outputs of the running stage; `what` names the figure in an error.
pub(crate) fn write_figure(
    ctx: &BuiltinCtx<'_>,
    base: &str,
    fig: &impl Drawing,
    what: &str,
) -> Result<(), Diagnostic> {
    let draw_err = |e: String| Diagnostic::new(format!("cannot draw {what}")).cause(e);
    let write = |rel: String, bytes: &[u8]| {
        repro_kind::write_output(ctx.root, &rel, bytes)
            .map_err(|e| Diagnostic::new(format!("cannot write `{rel}`")).cause(e.to_string()))
    };
    write(
        format!("{base}.svg"),
        svg_of(fig).map_err(draw_err)?.as_bytes(),
    )?;
    write(format!("{base}.pdf"), &pdf_of(fig).map_err(draw_err)?)?;
    let mut json = serde_json::to_string_pretty(fig).unwrap_or_default();
    json.push('\n');
    write(format!("{base}.json"), json.as_bytes())?;
    // The PNG encoder writes to a path: draw beside the target, then rename into place.
    let cannot = |e: std::io::Error| {
        Diagnostic::new(format!("cannot write `{base}.png`")).cause(e.to_string())
    };
    let (tmp, dest) = repro_kind::temp_beside(ctx.root, &format!("{base}.png")).map_err(cannot)?;
    let tmp = tmp.with_extension("png");
    png_to(fig, &tmp).map_err(draw_err)?;
    std::fs::rename(&tmp, &dest).map_err(cannot)
}

/// `png` with a `pHYs` chunk saying `dpi` (inserted after `IHDR`, the first chunk).
pub(crate) fn with_dpi(png: &[u8], dpi: u32) -> Result<Vec<u8>, String> {
    const IHDR_END: usize = 8 + 4 + 4 + 13 + 4;
    if png.len() < IHDR_END || &png[12..16] != b"IHDR" {
        return Err("the PNG encoder wrote no IHDR chunk first".into());
    }
    // Pixels per metre, rounded as PNG readers expect (300 dpi -> 11811).
    let ppm = (f64::from(dpi) / 0.0254).round() as u32;
    let mut body = Vec::with_capacity(13);
    body.extend_from_slice(b"pHYs");
    body.extend_from_slice(&ppm.to_be_bytes());
    body.extend_from_slice(&ppm.to_be_bytes());
    body.push(1);
    let mut out = Vec::with_capacity(png.len() + 21);
    out.extend_from_slice(&png[..IHDR_END]);
    out.extend_from_slice(&9u32.to_be_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    out.extend_from_slice(&png[IHDR_END..]);
    Ok(out)
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
            series_label: "Coefficient".into(),
            level: 0.95,
            panels,
            ols,
            x_range,
            y_range,
        }
    }

    #[test]
    fn ticks_share_their_precision_and_use_true_minus_signs() {
        assert_eq!(tick_decimals(0.6), 2);
        assert_eq!(tick_decimals(2.0), 1);
        assert_eq!(tick_decimals(40.0), 0);
        assert_eq!(tick(-0.05, 2), "\u{2212}0.05");
        assert_eq!(tick(0.1, 2), "0.10");
        assert_eq!(tick(-1e-17, 2), "0.00");
    }

    #[test]
    fn svg_embeds_the_font_and_png_says_300_dpi() {
        let f = figure();
        let svg = svg_of(&f).unwrap();
        assert!(svg.contains("@font-face{font-family:\"repro-sans\""));
        assert!(
            svg.contains("FE OLS")
                && svg.contains("Coefficient")
                && svg.contains("95% band of FE OLS")
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.png");
        png_to(&f, &p).unwrap();
        let png = std::fs::read(&p).unwrap();
        // IHDR width: 520 CSS px at 300/96.
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 1625);
        assert_eq!(&png[37..41], b"pHYs");
        assert_eq!(u32::from_be_bytes(png[41..45].try_into().unwrap()), 11811);
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
        let a = svg_of(&f).unwrap();
        let b = svg_of(&f).unwrap();
        assert_eq!(a, b);
        assert!(a.contains("北京市"));
        let dir = tempfile::tempdir().unwrap();
        let p1 = dir.path().join("a.png");
        let p2 = dir.path().join("b.png");
        png_to(&f, &p1).unwrap();
        png_to(&f, &p2).unwrap();
        assert_eq!(std::fs::read(p1).unwrap(), std::fs::read(p2).unwrap());
        let pdf = pdf_of(&f).unwrap();
        assert_eq!(pdf, pdf_of(&f).unwrap());
        assert!(pdf.starts_with(b"%PDF-1.4"));
    }
}
