//! A vector PDF drawing backend for plotters, so every figure can go into a paper through
//! `\includegraphics` as it is.
//!
//! Owns: turning plotters' drawing calls (lines, rectangles, paths, circles, polygons, text) into
//! one PDF page of vector operators, with text drawn as the outlines of the bundled font's glyphs
//! (so the PDF needs no font and shows exactly the letters of the SVG and PNG), and writing the
//! PDF file structure. Placement of text follows plotters' SVG backend (anchor, baseline offset,
//! rotation, `size / 1.24` as the em), so the three renderings agree. Deliberately does not own:
//! what a figure shows (`figures`).
//!
//! One CSS pixel is 0.75 pt (96 per inch), so the page has the SVG's physical size. Output is
//! deterministic: numbers are printed with two decimals and nothing depends on time.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use ab_glyph::{Font, FontRef, OutlineCurve};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
    FontTransform,
};

/// The error type of the PDF backend (drawing into memory cannot fail; the font must parse).
#[derive(Debug)]
pub struct PdfError(String);

impl std::fmt::Display for PdfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PdfError {}

/// Draws into a page `width` x `height` CSS pixels; `present` writes the file into `target`.
pub struct PdfBackend<'f> {
    target: &'f mut Vec<u8>,
    width: u32,
    height: u32,
    font: FontRef<'f>,
    ops: String,
    /// Opacities used (in percent), each an `ExtGState` resource.
    alphas: BTreeSet<u32>,
}

type Result<T> = std::result::Result<T, DrawingErrorKind<PdfError>>;

fn num(v: f64) -> String {
    let s = format!("{v:.2}");
    match s.trim_end_matches('0').trim_end_matches('.') {
        "-0" | "" => "0".into(),
        t => t.to_string(),
    }
}

impl<'f> PdfBackend<'f> {
    pub fn new(
        target: &'f mut Vec<u8>,
        (width, height): (u32, u32),
        font_bytes: &'f [u8],
    ) -> std::result::Result<Self, String> {
        let font = FontRef::try_from_slice(font_bytes).map_err(|e| e.to_string())?;
        Ok(PdfBackend {
            target,
            width,
            height,
            font,
            ops: String::new(),
            alphas: BTreeSet::new(),
        })
    }

    /// Colour and opacity for filling (`fill`) or stroking; false when nothing would show.
    fn paint(&mut self, c: BackendColor, fill: bool) -> bool {
        if c.alpha <= 0.0 {
            return false;
        }
        let (r, g, b) = c.rgb;
        let op = if fill { "rg" } else { "RG" };
        let _ = writeln!(
            self.ops,
            "{} {} {} {op}",
            num(f64::from(r) / 255.0),
            num(f64::from(g) / 255.0),
            num(f64::from(b) / 255.0)
        );
        let pct = (c.alpha.clamp(0.0, 1.0) * 100.0).round() as u32;
        self.alphas.insert(pct);
        let _ = writeln!(self.ops, "/A{pct} gs");
        true
    }

    fn stroke_width(&mut self, w: u32) {
        let _ = writeln!(self.ops, "{} w", num(f64::from(w.max(1))));
    }

    fn path(&mut self, points: &[(f64, f64)], close: bool) {
        for (k, (x, y)) in points.iter().enumerate() {
            let op = if k == 0 { "m" } else { "l" };
            let _ = writeln!(self.ops, "{} {} {op}", num(*x), num(*y));
        }
        if close {
            self.ops.push_str("h\n");
        }
    }

    /// The PDF file: one page, the operators in y-down CSS pixels under a flipping matrix.
    fn finish(&self) -> Vec<u8> {
        let (w, h) = (f64::from(self.width) * 0.75, f64::from(self.height) * 0.75);
        let content = format!("0.75 0 0 -0.75 0 {} cm\n1 J 1 j\n{}", num(h), self.ops);
        let gstates: Vec<String> = self
            .alphas
            .iter()
            .map(|a| format!("/A{a} << /ca {0} /CA {0} >>", num(f64::from(*a) / 100.0)))
            .collect();
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {} {}] /Contents 4 0 R /Resources << /ExtGState << {} >> >> >>",
                num(w),
                num(h),
                gstates.join(" ")
            ),
            format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len() + 1),
        ];
        let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
        let mut offsets = Vec::new();
        for (k, body) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", k + 1).as_bytes());
        }
        let xref = out.len();
        let mut tail = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
        for o in offsets {
            let _ = writeln!(tail, "{o:010} 00000 n ");
        }
        let _ = write!(
            tail,
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        );
        out.extend_from_slice(tail.as_bytes());
        out
    }
}

fn to_f64(points: impl IntoIterator<Item = BackendCoord>) -> Vec<(f64, f64)> {
    points
        .into_iter()
        .map(|(x, y)| (f64::from(x), f64::from(y)))
        .collect()
}

impl DrawingBackend for PdfBackend<'_> {
    type ErrorType = PdfError;

    fn get_size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn ensure_prepared(&mut self) -> Result<()> {
        Ok(())
    }

    fn present(&mut self) -> Result<()> {
        *self.target = self.finish();
        Ok(())
    }

    fn draw_pixel(&mut self, (x, y): BackendCoord, color: BackendColor) -> Result<()> {
        if self.paint(color, true) {
            let _ = writeln!(self.ops, "{x} {y} 1 1 re f");
        }
        Ok(())
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<()> {
        self.draw_path([from, to], style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        (x0, y0): BackendCoord,
        (x1, y1): BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<()> {
        if !self.paint(style.color(), fill) {
            return Ok(());
        }
        if !fill {
            self.stroke_width(style.stroke_width());
        }
        let _ = writeln!(
            self.ops,
            "{x0} {y0} {} {} re {}",
            x1 - x0,
            y1 - y0,
            if fill { "f" } else { "S" }
        );
        Ok(())
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<()> {
        let points = to_f64(path);
        if points.len() < 2 || !self.paint(style.color(), false) {
            return Ok(());
        }
        self.stroke_width(style.stroke_width());
        self.path(&points, false);
        self.ops.push_str("S\n");
        Ok(())
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        (cx, cy): BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<()> {
        if !self.paint(style.color(), fill) {
            return Ok(());
        }
        if !fill {
            self.stroke_width(style.stroke_width());
        }
        // Four cubic arcs; 0.5523 is the usual control-point factor of a quarter circle.
        let (x, y, r) = (f64::from(cx), f64::from(cy), f64::from(radius));
        let k = 0.5523 * r;
        let _ = writeln!(self.ops, "{} {} m", num(x + r), num(y));
        for (a, b, c, d, e, f) in [
            (x + r, y + k, x + k, y + r, x, y + r),
            (x - k, y + r, x - r, y + k, x - r, y),
            (x - r, y - k, x - k, y - r, x, y - r),
            (x + k, y - r, x + r, y - k, x + r, y),
        ] {
            let _ = writeln!(
                self.ops,
                "{} {} {} {} {} {} c",
                num(a),
                num(b),
                num(c),
                num(d),
                num(e),
                num(f)
            );
        }
        self.ops.push_str(if fill { "f\n" } else { "S\n" });
        Ok(())
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<()> {
        let points = to_f64(vert);
        if points.len() < 3 || !self.paint(style.color(), true) {
            return Ok(());
        }
        self.path(&points, true);
        self.ops.push_str("f\n");
        Ok(())
    }

    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> Result<()> {
        if !self.paint(style.color(), true) {
            return Ok(());
        }
        let em = style.size() / 1.24;
        let upem = f64::from(self.font.units_per_em().unwrap_or(1000.0));
        let scale = em / upem;
        let glyphs: Vec<_> = text.chars().map(|c| self.font.glyph_id(c)).collect();
        let advance: f64 = glyphs
            .iter()
            .map(|g| f64::from(self.font.h_advance_unscaled(*g)) * scale)
            .sum();
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -advance / 2.0,
            HPos::Right => -advance,
        };
        // As the SVG backend's `dy`: 0.76em, 0.5ex and -0.5ex (an ex taken as half an em).
        let dy = match anchor.v_pos {
            VPos::Top => 0.76 * em,
            VPos::Center => 0.25 * em,
            VPos::Bottom => -0.25 * em,
        };
        let angle: f64 = match style.transform() {
            FontTransform::Rotate90 => 90.0,
            FontTransform::Rotate180 => 180.0,
            FontTransform::Rotate270 => 270.0,
            _ => 0.0,
        };
        let (sin, cos) = angle.to_radians().sin_cos();
        let (x0, y0) = (f64::from(pos.0), f64::from(pos.1));
        // A point of the text's own frame (x right, y down from the anchor) on the page.
        let place = |x: f64, y: f64| (x0 + x * cos - y * sin, y0 + x * sin + y * cos);
        let mut pen = dx;
        let mut ops = String::new();
        for g in &glyphs {
            if let Some(outline) = self.font.outline(*g) {
                let to = |p: ab_glyph::Point| {
                    place(pen + f64::from(p.x) * scale, dy - f64::from(p.y) * scale)
                };
                let mut last: Option<ab_glyph::Point> = None;
                for curve in &outline.curves {
                    let (start, end) = match curve {
                        OutlineCurve::Line(a, b)
                        | OutlineCurve::Quad(a, _, b)
                        | OutlineCurve::Cubic(a, _, _, b) => (*a, *b),
                    };
                    if last != Some(start) {
                        let (x, y) = to(start);
                        let _ = writeln!(ops, "{} {} m", num(x), num(y));
                    }
                    match curve {
                        OutlineCurve::Line(_, b) => {
                            let (x, y) = to(*b);
                            let _ = writeln!(ops, "{} {} l", num(x), num(y));
                        }
                        OutlineCurve::Quad(a, c, b) => {
                            // The quadratic as a cubic: controls 2/3 of the way to `c`.
                            let c1 = ab_glyph::point(
                                a.x + 2.0 / 3.0 * (c.x - a.x),
                                a.y + 2.0 / 3.0 * (c.y - a.y),
                            );
                            let c2 = ab_glyph::point(
                                b.x + 2.0 / 3.0 * (c.x - b.x),
                                b.y + 2.0 / 3.0 * (c.y - b.y),
                            );
                            let (p1, p2, p3) = (to(c1), to(c2), to(*b));
                            let _ = writeln!(
                                ops,
                                "{} {} {} {} {} {} c",
                                num(p1.0),
                                num(p1.1),
                                num(p2.0),
                                num(p2.1),
                                num(p3.0),
                                num(p3.1)
                            );
                        }
                        OutlineCurve::Cubic(_, c1, c2, b) => {
                            let (p1, p2, p3) = (to(*c1), to(*c2), to(*b));
                            let _ = writeln!(
                                ops,
                                "{} {} {} {} {} {} c",
                                num(p1.0),
                                num(p1.1),
                                num(p2.0),
                                num(p2.1),
                                num(p3.0),
                                num(p3.1)
                            );
                        }
                    }
                    last = Some(end);
                }
            }
            pen += f64::from(self.font.h_advance_unscaled(*g)) * scale;
        }
        if !ops.is_empty() {
            self.ops.push_str(&ops);
            // Glyph outlines wind as TrueType prescribes: non-zero fill.
            self.ops.push_str("f\n");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short_and_never_negative_zero() {
        assert_eq!(num(1.0), "1");
        assert_eq!(num(0.25), "0.25");
        assert_eq!(num(-0.001), "0");
        assert_eq!(num(12.5), "12.5");
    }

    #[test]
    fn the_file_has_a_valid_cross_reference_table() {
        let font = include_bytes!("../assets/fonts/repro-sans.ttf");
        let mut pdf = Vec::new();
        {
            let mut b = PdfBackend::new(&mut pdf, (100, 50), font).unwrap();
            b.draw_text(
                "A\u{3c4}",
                &plotters::style::TextStyle::from(("repro-sans", 12.0)),
                (10, 10),
            )
            .unwrap();
            b.present().unwrap();
        }
        let find = |needle: &[u8]| pdf.windows(needle.len()).rposition(|w| w == needle);
        let at = find(b"startxref\n").unwrap() + 10;
        let start: usize = std::str::from_utf8(&pdf[at..])
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let table = std::str::from_utf8(&pdf[start..]).unwrap();
        assert!(table.starts_with("xref\n0 5\n"));
        // Every object starts where the table says.
        for (k, line) in table.lines().skip(3).take(4).enumerate() {
            let off: usize = line[..10].parse().unwrap();
            assert!(
                pdf[off..].starts_with(format!("{} 0 obj", k + 1).as_bytes()),
                "{line}"
            );
        }
        assert!(find(b"/MediaBox [0 0 75 37.5]").is_some());
        assert!(find(b" c\n").is_some(), "glyph outlines as curves");
    }
}
