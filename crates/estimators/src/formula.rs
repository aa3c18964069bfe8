//! The model formula language (fixest syntax).
//!
//! Owns: parsing `y ~ x1 + x2 | fe1 + fe2^fe3 | endo1 + endo2 ~ z1 + z2` into a [`Formula`], with
//! parse errors that carry the byte position of the problem. The fixed-effects and IV parts are
//! optional and a part containing `~` is the IV part, so `y ~ x | endo ~ z` is an IV model
//! without fixed effects. Intercept tokens: `0` or `-1` remove the intercept, `1` keeps it.
//! Identifiers are column names made of letters, digits, `_` and `.`; any other name can be
//! written between backticks (`` `my var` ``).
//! Deliberately does not own: checking that names exist in a frame, transformations inside the
//! formula (`log(x)`, `i()`, interactions of regressors); those are data preparation.

use crate::error::EstimError;

/// A fixed-effect term: one variable, or several interacted with `^`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedEffectTerm {
    pub variables: Vec<String>,
}

impl FixedEffectTerm {
    /// The term as written, e.g. `firm^year`.
    pub fn name(&self) -> String {
        self.variables.join("^")
    }
}

/// The IV part `endo1 + endo2 ~ z1 + z2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvPart {
    pub endogenous: Vec<String>,
    pub instruments: Vec<String>,
}

/// A parsed formula.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formula {
    /// The text that was parsed.
    pub source: String,
    pub outcome: String,
    /// Exogenous regressors in formula order (without the intercept).
    pub regressors: Vec<String>,
    /// Whether the formula asks for an intercept. Fixed effects absorb it regardless.
    pub intercept: bool,
    pub fixed_effects: Vec<FixedEffectTerm>,
    pub iv: Option<IvPart>,
}

impl Formula {
    /// Whether the fitted model has an explicit `Intercept` coefficient.
    pub fn has_intercept_coefficient(&self) -> bool {
        self.intercept && self.fixed_effects.is_empty()
    }

    /// Every column the formula reads, each once, in order of appearance.
    pub fn variables(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |name: &String| {
            if !out.contains(name) {
                out.push(name.clone());
            }
        };
        add(&self.outcome);
        self.regressors.iter().for_each(&mut add);
        for term in &self.fixed_effects {
            term.variables.iter().for_each(&mut add);
        }
        if let Some(iv) = &self.iv {
            iv.endogenous.iter().for_each(&mut add);
            iv.instruments.iter().for_each(&mut add);
        }
        out
    }
}

/// The formula in one canonical spelling: `y ~ 0 + x1 + x2 | f1 + f2^f3 | e ~ z`, names that
/// would not read back as themselves (spaces, symbols, all digits) between backticks. Parsing it
/// gives the same formula (up to `source`); the fuzz target `formula` checks that.
impl std::fmt::Display for Formula {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |names: &[String]| -> String {
            names
                .iter()
                .map(|n| quoted(n))
                .collect::<Vec<_>>()
                .join(" + ")
        };
        write!(f, "{} ~ ", quoted(&self.outcome))?;
        match (self.intercept, self.regressors.is_empty()) {
            (true, true) => write!(f, "1")?,
            (false, true) => write!(f, "0")?,
            (true, false) => write!(f, "{}", list(&self.regressors))?,
            (false, false) => write!(f, "0 + {}", list(&self.regressors))?,
        }
        if !self.fixed_effects.is_empty() {
            let terms: Vec<String> = self
                .fixed_effects
                .iter()
                .map(|t| {
                    t.variables
                        .iter()
                        .map(|v| quoted(v))
                        .collect::<Vec<_>>()
                        .join("^")
                })
                .collect();
            write!(f, " | {}", terms.join(" + "))?;
        }
        if let Some(iv) = &self.iv {
            write!(f, " | {} ~ {}", list(&iv.endogenous), list(&iv.instruments))?;
        }
        Ok(())
    }
}

/// A name as the tokenizer reads it back: bare when it is one identifier, else in backticks.
fn quoted(name: &str) -> std::borrow::Cow<'_, str> {
    let bare =
        name.chars().all(is_ident_char) && !name.chars().all(|c| c.is_ascii_digit() || c == '.');
    if bare {
        name.into()
    } else {
        format!("`{name}`").into()
    }
}

/// Parses a formula in fixest syntax.
pub fn parse(source: &str) -> Result<Formula, EstimError> {
    let tokens = tokenize(source)?;
    Parser {
        source,
        tokens,
        pos: 0,
        claimed: Vec::new(),
    }
    .formula()
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Number(String),
    Plus,
    Minus,
    Tilde,
    Pipe,
    Caret,
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Number(s) => format!("`{s}`"),
            Tok::Plus => "`+`".into(),
            Tok::Minus => "`-`".into(),
            Tok::Tilde => "`~`".into(),
            Tok::Pipe => "`|`".into(),
            Tok::Caret => "`^`".into(),
            Tok::End => "the end of the formula".into(),
        }
    }
}

fn parse_error(source: &str, position: usize, message: impl Into<String>) -> EstimError {
    EstimError::FormulaParse {
        formula: source.to_string(),
        position,
        message: message.into(),
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '.'
}

fn tokenize(source: &str) -> Result<Vec<(Tok, usize)>, EstimError> {
    let mut out = Vec::new();
    let mut chars = source.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let single = match c {
            '+' => Some(Tok::Plus),
            '-' => Some(Tok::Minus),
            '~' => Some(Tok::Tilde),
            '|' => Some(Tok::Pipe),
            '^' => Some(Tok::Caret),
            _ => None,
        };
        if let Some(tok) = single {
            chars.next();
            out.push((tok, start));
            continue;
        }
        if c == '`' {
            chars.next();
            let mut name = String::new();
            let mut closed = false;
            for (_, ch) in chars.by_ref() {
                if ch == '`' {
                    closed = true;
                    break;
                }
                name.push(ch);
            }
            if !closed {
                return Err(parse_error(source, start, "unclosed backtick"));
            }
            if name.is_empty() {
                return Err(parse_error(source, start, "empty name between backticks"));
            }
            out.push((Tok::Ident(name), start));
            continue;
        }
        if is_ident_char(c) {
            let mut text = String::new();
            while let Some(&(_, ch)) = chars.peek() {
                if !is_ident_char(ch) {
                    break;
                }
                text.push(ch);
                chars.next();
            }
            let tok = if text.chars().all(|ch| ch.is_ascii_digit() || ch == '.') {
                Tok::Number(text)
            } else {
                Tok::Ident(text)
            };
            out.push((tok, start));
            continue;
        }
        return Err(parse_error(
            source,
            start,
            format!("unexpected character `{c}`"),
        ));
    }
    out.push((Tok::End, source.len()));
    Ok(out)
}

struct Parser<'a> {
    source: &'a str,
    tokens: Vec<(Tok, usize)>,
    pos: usize,
    /// Outcome, regressors, endogenous variables and instruments read so far.
    claimed: Vec<String>,
}

/// Whether a term list may contain the intercept tokens `0`, `1` and `-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Terms {
    /// The right-hand side of the main equation.
    WithIntercept,
    /// Endogenous variables or instruments.
    VariablesOnly,
}

/// Outcome of reading a `+`-separated list of regressors with intercept tokens.
struct TermList {
    names: Vec<String>,
    intercept: Option<bool>,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.tokens[self.pos].0
    }

    fn offset(&self) -> usize {
        self.tokens[self.pos].1
    }

    fn bump(&mut self) -> (Tok, usize) {
        let t = self.tokens[self.pos].clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn error(&self, message: impl Into<String>) -> EstimError {
        parse_error(self.source, self.offset(), message)
    }

    fn unexpected(&self, wanted: &str) -> EstimError {
        self.error(format!(
            "expected {wanted}, found {}",
            self.peek().describe()
        ))
    }

    /// Records a variable of the model's equations; a variable that appears twice is an error
    /// (fixest would silently drop one copy, which usually hides a typo).
    fn claim(&mut self, name: &str, at: usize) -> Result<(), EstimError> {
        if self.claimed.iter().any(|c| c == name) {
            return Err(parse_error(
                self.source,
                at,
                format!("variable `{name}` appears more than once"),
            ));
        }
        self.claimed.push(name.to_string());
        Ok(())
    }

    fn formula(mut self) -> Result<Formula, EstimError> {
        let outcome = match self.peek() {
            Tok::Ident(name) => name.clone(),
            _ => return Err(self.unexpected("the outcome variable")),
        };
        let at = self.offset();
        self.claim(&outcome, at)?;
        self.bump();
        if *self.peek() != Tok::Tilde {
            return Err(self.unexpected("`~` after the outcome"));
        }
        self.bump();
        let rhs = self.term_list(Terms::WithIntercept)?;
        let mut fixed_effects = Vec::new();
        let mut iv = None;
        let mut seen_fe = false;
        while *self.peek() == Tok::Pipe {
            self.bump();
            if iv.is_some() {
                return Err(self.error("the IV part `endo ~ inst` must be the last part"));
            }
            if self.part_has_tilde() {
                iv = Some(self.iv_part()?);
                continue;
            }
            if seen_fe {
                return Err(self.error("a second fixed-effects part is not allowed"));
            }
            seen_fe = true;
            fixed_effects = self.fe_part()?;
        }
        if *self.peek() != Tok::End {
            return Err(self.unexpected("`+`, `|` or the end of the formula"));
        }
        let formula = Formula {
            source: self.source.to_string(),
            outcome,
            regressors: rhs.names,
            intercept: rhs.intercept.unwrap_or(true),
            fixed_effects,
            iv,
        };
        Ok(formula)
    }

    /// Whether the tokens up to the next `|` (or the end) contain a `~`.
    fn part_has_tilde(&self) -> bool {
        self.tokens[self.pos..]
            .iter()
            .map(|(t, _)| t)
            .take_while(|t| !matches!(t, Tok::Pipe | Tok::End))
            .any(|t| *t == Tok::Tilde)
    }

    /// `a + b - 1 + 0 ...`; with [`Terms::VariablesOnly`], number tokens are an error.
    fn term_list(&mut self, terms: Terms) -> Result<TermList, EstimError> {
        let mut names = Vec::new();
        let mut intercept = None;
        let mut first = true;
        loop {
            let mut negative = false;
            if !first || *self.peek() == Tok::Minus {
                match self.peek() {
                    Tok::Plus if !first => {}
                    Tok::Minus => negative = true,
                    _ => break,
                }
                self.bump();
            }
            first = false;
            let at = self.offset();
            match self.peek().clone() {
                Tok::Ident(name) => {
                    if negative {
                        return Err(parse_error(
                            self.source,
                            at,
                            format!("removing the variable `{name}` with `-` is not supported"),
                        ));
                    }
                    self.claim(&name, at)?;
                    self.bump();
                    names.push(name);
                }
                Tok::Number(text) if terms == Terms::WithIntercept => {
                    let keep = match (text.as_str(), negative) {
                        ("1", false) => true,
                        ("0", false) | ("1", true) => false,
                        _ => {
                            return Err(parse_error(
                                self.source,
                                at,
                                format!(
                                    "`{text}` is not a term; only `1`, `0` and `-1` are allowed as numbers"
                                ),
                            ))
                        }
                    };
                    self.bump();
                    intercept = Some(keep);
                }
                Tok::Number(text) => {
                    return Err(parse_error(
                        self.source,
                        at,
                        format!("expected a variable name, found `{text}`"),
                    ))
                }
                _ => return Err(self.unexpected("a variable name")),
            }
        }
        Ok(TermList { names, intercept })
    }

    fn fe_part(&mut self) -> Result<Vec<FixedEffectTerm>, EstimError> {
        let mut terms = Vec::new();
        loop {
            let mut variables = Vec::new();
            loop {
                match self.peek().clone() {
                    Tok::Ident(name) => {
                        self.bump();
                        variables.push(name);
                    }
                    _ => return Err(self.unexpected("a fixed-effect variable")),
                }
                if *self.peek() != Tok::Caret {
                    break;
                }
                self.bump();
            }
            terms.push(FixedEffectTerm { variables });
            if *self.peek() != Tok::Plus {
                break;
            }
            self.bump();
        }
        Ok(terms)
    }

    fn iv_part(&mut self) -> Result<IvPart, EstimError> {
        let endogenous = self.term_list(Terms::VariablesOnly)?.names;
        if *self.peek() != Tok::Tilde {
            return Err(self.unexpected("`~` between endogenous variables and instruments"));
        }
        self.bump();
        let instruments = self.term_list(Terms::VariablesOnly)?.names;
        Ok(IvPart {
            endogenous,
            instruments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn full_formula() {
        let f = parse("y ~ x1 + x2 | fe1 + fe2^fe3 | endo1 + endo2 ~ z1 + z2").unwrap();
        assert_eq!(f.outcome, "y");
        assert_eq!(f.regressors, names(&["x1", "x2"]));
        assert_eq!(f.fixed_effects.len(), 2);
        assert_eq!(f.fixed_effects[1].name(), "fe2^fe3");
        let iv = f.iv.unwrap();
        assert_eq!(iv.endogenous, names(&["endo1", "endo2"]));
        assert_eq!(iv.instruments, names(&["z1", "z2"]));
    }

    #[test]
    fn iv_without_fixed_effects() {
        let f = parse("lpacks ~ lrincome | lrprice ~ tdiff + rtax").unwrap();
        assert!(f.fixed_effects.is_empty());
        assert!(f.has_intercept_coefficient());
        let iv = f.iv.unwrap();
        assert_eq!(iv.endogenous, names(&["lrprice"]));
        assert_eq!(iv.instruments, names(&["tdiff", "rtax"]));
    }

    #[test]
    fn intercept_tokens() {
        assert!(!parse("y ~ x - 1").unwrap().intercept);
        assert!(!parse("y ~ 0 + x").unwrap().intercept);
        assert!(parse("y ~ 1 + x").unwrap().intercept);
        let f = parse("y ~ 1").unwrap();
        assert!(f.regressors.is_empty() && f.intercept);
        assert!(parse("y ~ 2 + x").is_err());
    }

    #[test]
    fn dotted_and_quoted_names() {
        let f = parse("log.y ~ x_1 + `my var`").unwrap();
        assert_eq!(f.outcome, "log.y");
        assert_eq!(f.regressors, names(&["x_1", "my var"]));
    }

    #[test]
    fn errors_carry_positions() {
        let err = parse("y ~ x +").unwrap_err();
        let EstimError::FormulaParse { position, .. } = &err else {
            panic!("wrong error {err:?}")
        };
        assert_eq!(*position, 7);
        assert_eq!(err.caret().unwrap(), "y ~ x +\n       ^");

        let err = parse("y x").unwrap_err();
        assert!(matches!(err, EstimError::FormulaParse { position: 2, .. }));

        let err = parse("y ~ x | a ~ b | c").unwrap_err();
        assert!(matches!(err, EstimError::FormulaParse { position: 16, .. }));

        let err = parse("y ~ x $ z").unwrap_err();
        assert!(matches!(err, EstimError::FormulaParse { position: 6, .. }));

        let err = parse("y ~ x + x2 + x").unwrap_err();
        assert!(matches!(err, EstimError::FormulaParse { position: 13, .. }));

        let err = parse("y ~ x | f1 | f2").unwrap_err();
        assert!(matches!(err, EstimError::FormulaParse { .. }));
    }

    #[test]
    fn variables_lists_every_column_once() {
        let f = parse("y ~ x | f^g + x | e ~ z").unwrap();
        assert_eq!(f.variables(), names(&["y", "x", "f", "g", "e", "z"]));
    }
}
