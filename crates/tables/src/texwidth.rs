//! How wide table cells set, estimated before LaTeX sets them, so a table's padding can be
//! chosen to fit the text block.
//!
//! Owns: upper estimates, in ems of the table's font, of plain text and of an siunitx number
//! column (`table-format` plus the text reserved before and after), from Computer Modern's
//! widths at the small sizes tables use (`\scriptsize` fonts are relatively wider than 10 pt
//! ones; measured with pdflatex, see `latex`). Deliberately does not own: the LaTeX itself
//! (`latex`).

/// What a column of numbers holds, as its siunitx `table-format` needs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NumberFormat {
    /// Most integer and fraction digits.
    pub int: usize,
    pub frac: usize,
    /// Some number is negative.
    pub neg: bool,
    /// Some number is in parentheses.
    pub paren: bool,
    /// Some number in parentheses is negative (t statistics), so the `(` cannot sit in the
    /// space kept for the sign.
    pub paren_neg: bool,
    /// Most significance stars after a number.
    pub stars: usize,
}

// Widths in ems, rounded up from cmr8 at 8 pt (pdflatex, `\scriptsize` in a 12 pt article:
// digit 0.531, minus 0.826, `(` 0.413, `.` 0.295, superscript `*` 0.479, `agglomeration` 6.55).
const DIGIT: f64 = 0.54;
const MINUS: f64 = 0.85;
const PAREN: f64 = 0.42;
const POINT: f64 = 0.3;
const STAR: f64 = 0.5;

impl NumberFormat {
    /// Whether the `(` needs space of its own before the number: it sits in the sign's space
    /// when the column's only negative numbers are outside parentheses.
    pub fn reserve_paren(&self) -> bool {
        self.paren && (!self.neg || self.paren_neg)
    }

    /// The column's width in ems: sign, digits, decimal point, and the text reserved around.
    pub fn width_em(&self) -> f64 {
        let mut w = self.int as f64 * DIGIT;
        if self.neg {
            w += MINUS;
        }
        if self.frac > 0 {
            w += POINT + self.frac as f64 * DIGIT;
        }
        if self.reserve_paren() {
            w += PAREN;
        }
        let after = if self.stars > 0 {
            self.stars as f64 * STAR
        } else if self.paren {
            PAREN
        } else {
            0.0
        };
        w + after
    }
}

/// The width of `text` (as written, before escaping) in ems: an upper estimate by classes of
/// characters, wide enough for Computer Modern at table sizes.
pub fn text_em(text: &str) -> f64 {
    text.chars()
        .map(|c| match c {
            'm' | 'w' | 'M' | 'W' => 0.95,
            'A'..='Z' => 0.8,
            'i' | 'j' | 'l' | 't' | 'f' | 'r' | '.' | ',' | ';' | ':' | '\'' | '(' | ')' | '['
            | ']' | '/' | '-' | '!' | '|' => 0.42,
            ' ' => 0.35,
            '0'..='9' => DIGIT,
            _ => 0.56,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_bound_what_pdflatex_measured() {
        // pdflatex, `\scriptsize` (8 pt) in a 12 pt article: `-12.100***` over `(0.200)`
        // without space kept for the `(` is 41.72 pt; `agglomeration` 52.42 pt; `123,456`
        // 27.86 pt.
        let two = NumberFormat {
            int: 2,
            frac: 3,
            neg: true,
            paren: true,
            paren_neg: false,
            stars: 3,
        };
        assert!(!two.reserve_paren());
        assert!(two.width_em() * 8.0 >= 41.72, "{}", two.width_em() * 8.0);
        assert!(text_em("agglomeration") * 8.0 >= 52.42);
        assert!(text_em("123,456") * 8.0 >= 27.86);
        // Within 10% of the measurement: an estimate too generous would shrink the padding
        // for nothing.
        assert!(two.width_em() * 8.0 <= 41.72 * 1.1);
        let t_stats = NumberFormat {
            paren_neg: true,
            ..two
        };
        assert!(t_stats.reserve_paren());
    }
}
