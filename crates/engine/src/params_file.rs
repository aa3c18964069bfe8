//! Params files in the formats DVC reads: YAML (`.yaml`, `.yml`, and any other name), JSON,
//! TOML and Python (top-level literal assignments, class attributes and `self.x = ...` in a
//! class's `__init__`, as DVC's `dvc/utils/serialize/_py.py` reads them).
//!
//! Owns: reading one params file into a YAML [`Node`] tree, whatever its format. Deliberately
//! does not own: which keys a stage uses (`pipeline`) or their canonical text (`params`).

use std::path::Path;

use crate::yaml::{self, Key, Node, Pos, Value};

/// Reads params file `rel` (relative to `root`) by its extension.
pub fn read(root: &Path, rel: &str) -> Result<Node, String> {
    let text = std::fs::read_to_string(root.join(rel)).map_err(|e| e.to_string())?;
    parse(rel, &text)
}

/// Parses params text by the file name's extension.
pub fn parse(name: &str, text: &str) -> Result<Node, String> {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("toml") => {
            let table: toml::Table =
                toml::from_str(text).map_err(|e| format!("invalid toml: {}", e.message()))?;
            Ok(from_toml(&toml::Value::Table(table)))
        }
        Some("py") => python::parse(text),
        // JSON is read by the YAML parser (YAML 1.2 is a superset of JSON).
        _ => yaml::parse(text).map_err(|e| {
            let at = e
                .pos
                .map(|p| format!(" (line {}, column {})", p.line, p.column))
                .unwrap_or_default();
            format!(
                "invalid {}{at}: {}",
                if ext.as_deref() == Some("json") {
                    "json"
                } else {
                    "yaml"
                },
                e.message
            )
        }),
    }
}

fn node(value: Value) -> Node {
    Node {
        value,
        pos: Pos { line: 1, column: 1 },
    }
}

fn map(entries: Vec<(String, Node)>) -> Node {
    node(Value::Map(
        entries
            .into_iter()
            .map(|(name, v)| (Key { name, pos: v.pos }, v))
            .collect(),
    ))
}

fn from_toml(v: &toml::Value) -> Node {
    match v {
        toml::Value::String(s) => node(Value::Str(s.clone())),
        toml::Value::Integer(i) => node(Value::Int(*i)),
        toml::Value::Float(f) => node(Value::Float(*f)),
        toml::Value::Boolean(b) => node(Value::Bool(*b)),
        toml::Value::Datetime(d) => node(Value::Str(d.to_string())),
        toml::Value::Array(items) => node(Value::Seq(items.iter().map(from_toml).collect())),
        toml::Value::Table(t) => map(t.iter().map(|(k, v)| (k.clone(), from_toml(v))).collect()),
    }
}

/// Python params files: the literal values DVC's `ast`-based reader takes, nothing evaluated.
mod python {
    use super::{map, node, Node, Value};

    /// Logical lines (brackets and triple quotes joined) with their indentation.
    fn statements(text: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut indent = 0;
        let mut depth = 0i32;
        let mut in_triple: Option<&str> = None;
        for line in text.lines() {
            if cur.is_empty() {
                let trimmed = line.trim_start();
                if trimmed.is_empty() || trimmed.starts_with('#') {
                    continue;
                }
                indent = line.len() - trimmed.len();
            }
            let mut chars = line.char_indices().peekable();
            let mut in_str: Option<char> = None;
            while let Some((i, c)) = chars.next() {
                if let Some(q) = in_triple {
                    if line[i..].starts_with(q) {
                        in_triple = None;
                        chars.nth(1);
                    }
                    continue;
                }
                if let Some(q) = in_str {
                    if c == '\\' {
                        chars.next();
                    } else if c == q {
                        in_str = None;
                    }
                    continue;
                }
                match c {
                    '#' => break,
                    '"' | '\'' => {
                        let triple = if c == '"' { "\"\"\"" } else { "'''" };
                        if line[i..].starts_with(triple) {
                            in_triple = Some(triple);
                            chars.nth(1);
                        } else {
                            in_str = Some(c);
                        }
                    }
                    '(' | '[' | '{' => depth += 1,
                    ')' | ']' | '}' => depth -= 1,
                    _ => {}
                }
            }
            cur.push_str(line);
            cur.push('\n');
            let continued = line.trim_end().ends_with('\\');
            if depth <= 0 && in_triple.is_none() && !continued {
                out.push((indent, std::mem::take(&mut cur)));
                depth = 0;
            }
        }
        if !cur.is_empty() {
            out.push((indent, cur));
        }
        out
    }

    pub(super) fn parse(text: &str) -> Result<Node, String> {
        let stmts = statements(text);
        let mut top = Vec::new();
        let mut i = 0;
        while i < stmts.len() {
            let (indent, s) = &stmts[i];
            i += 1;
            if *indent > 0 {
                continue;
            }
            if let Some(rest) = s.strip_prefix("class ") {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let (body, next) = block(&stmts, i, 0);
                i = next;
                top.push((name, map(class_body(&body))));
                continue;
            }
            if let Some((name, value)) = assignment(s, false) {
                top.retain(|(k, _)| *k != name);
                top.push((name, value));
            }
        }
        Ok(map(top))
    }

    /// The statements indented deeper than `indent` from `start`, and where the block ends.
    fn block(
        stmts: &[(usize, String)],
        start: usize,
        indent: usize,
    ) -> (Vec<(usize, String)>, usize) {
        let mut end = start;
        while end < stmts.len() && stmts[end].0 > indent {
            end += 1;
        }
        (stmts[start..end].to_vec(), end)
    }

    fn class_body(body: &[(usize, String)]) -> Vec<(String, Node)> {
        let Some(level) = body.first().map(|(i, _)| *i) else {
            return Vec::new();
        };
        let mut out: Vec<(String, Node)> = Vec::new();
        let mut i = 0;
        while i < body.len() {
            let (indent, s) = &body[i];
            let s = s.trim_start();
            i += 1;
            if *indent != level {
                continue;
            }
            let found = if s.starts_with("def __init__") {
                let (inner, next) = block(body, i, level);
                i = next;
                inner
                    .iter()
                    .filter_map(|(_, s)| assignment(s, true))
                    .collect()
            } else if let Some(rest) = s.strip_prefix("class ") {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let (inner, next) = block(body, i, level);
                i = next;
                vec![(name, map(class_body(&inner)))]
            } else {
                assignment(s, false).into_iter().collect()
            };
            for (k, v) in found {
                out.retain(|(n, _)| *n != k);
                out.push((k, v));
            }
        }
        out
    }

    /// `NAME = literal`, `NAME: type = literal` (or `self.NAME = ...` inside `__init__`).
    fn assignment(s: &str, self_only: bool) -> Option<(String, Node)> {
        let s = s.trim();
        let (target, value) = split_assign(s)?;
        let target = target.split(':').next()?.trim();
        let name = if self_only {
            target.strip_prefix("self.")?
        } else {
            target
        };
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return None;
        }
        let mut p = Parser {
            s: value.as_bytes(),
            i: 0,
        };
        let v = p.literal()?;
        p.ws();
        (p.i == p.s.len()).then(|| (name.to_string(), v))
    }

    /// Splits at the first `=` that is not part of `==`, `<=`, `>=`, `!=` and not in brackets.
    fn split_assign(s: &str) -> Option<(&str, &str)> {
        let b = s.as_bytes();
        for (i, &c) in b.iter().enumerate() {
            match c {
                b'(' | b'[' | b'{' | b'"' | b'\'' => return None,
                b'=' => {
                    let prev = if i > 0 { b[i - 1] } else { b' ' };
                    let next = b.get(i + 1).copied().unwrap_or(b' ');
                    if next == b'=' || b"<>!=+-*/%&|^".contains(&prev) {
                        return None;
                    }
                    return Some((&s[..i], s[i + 1..].trim()));
                }
                _ => {}
            }
        }
        None
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        fn ws(&mut self) {
            while self.i < self.s.len() {
                match self.s[self.i] {
                    b' ' | b'\t' | b'\n' | b'\r' => self.i += 1,
                    b'\\' if self.s.get(self.i + 1) == Some(&b'\n') => self.i += 2,
                    b'#' => {
                        while self.i < self.s.len() && self.s[self.i] != b'\n' {
                            self.i += 1;
                        }
                    }
                    _ => break,
                }
            }
        }

        fn eat(&mut self, c: u8) -> bool {
            self.ws();
            if self.s.get(self.i) == Some(&c) {
                self.i += 1;
                true
            } else {
                false
            }
        }

        fn literal(&mut self) -> Option<Node> {
            self.ws();
            let c = *self.s.get(self.i)?;
            match c {
                b'[' | b'(' | b'{' => self.collection(c),
                b'"' | b'\'' => self.string().map(|s| node(Value::Str(s))),
                b'r' | b'u' | b'R' | b'U'
                    if matches!(self.s.get(self.i + 1), Some(b'"' | b'\'')) =>
                {
                    self.i += 1;
                    self.string().map(|s| node(Value::Str(s)))
                }
                _ => self.atom(),
            }
        }

        fn collection(&mut self, open: u8) -> Option<Node> {
            self.i += 1;
            let close = match open {
                b'[' => b']',
                b'(' => b')',
                _ => b'}',
            };
            let mut items = Vec::new();
            let mut entries = Vec::new();
            let mut is_dict = false;
            loop {
                if self.eat(close) {
                    break;
                }
                let v = self.literal()?;
                if open == b'{' && self.eat(b':') {
                    is_dict = true;
                    let val = self.literal()?;
                    let key = match v.value {
                        Value::Str(s) => s,
                        Value::Int(i) => i.to_string(),
                        Value::Float(f) => f.to_string(),
                        Value::Bool(b) => if b { "True" } else { "False" }.to_string(),
                        _ => return None,
                    };
                    entries.push((key, val));
                } else {
                    items.push(v);
                }
                if !self.eat(b',') {
                    if self.eat(close) {
                        break;
                    }
                    return None;
                }
            }
            if is_dict || (open == b'{' && items.is_empty()) {
                Some(map(entries))
            } else {
                Some(node(Value::Seq(items)))
            }
        }

        fn string(&mut self) -> Option<String> {
            let q = self.s[self.i];
            let triple = self.s[self.i..].starts_with(&[q, q, q]);
            self.i += if triple { 3 } else { 1 };
            let mut out = Vec::new();
            loop {
                let c = *self.s.get(self.i)?;
                if triple && self.s[self.i..].starts_with(&[q, q, q]) {
                    self.i += 3;
                    break;
                }
                if !triple && c == q {
                    self.i += 1;
                    break;
                }
                self.i += 1;
                if c == b'\\' {
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'\\' | b'\'' | b'"' => out.push(e),
                        b'\n' => {}
                        other => out.extend([b'\\', other]),
                    }
                } else {
                    out.push(c);
                }
            }
            let s = String::from_utf8(out).ok()?;
            // Adjacent literals concatenate, as in Python.
            self.ws();
            if matches!(self.s.get(self.i), Some(b'"' | b'\'')) {
                return Some(s + &self.string()?);
            }
            Some(s)
        }

        fn atom(&mut self) -> Option<Node> {
            let start = self.i;
            while self.i < self.s.len()
                && (self.s[self.i].is_ascii_alphanumeric() || b"._+-".contains(&self.s[self.i]))
            {
                // A sign only at the start or after an exponent.
                let c = self.s[self.i];
                if (c == b'+' || c == b'-')
                    && self.i > start
                    && !matches!(self.s[self.i - 1], b'e' | b'E')
                {
                    break;
                }
                self.i += 1;
            }
            let word = std::str::from_utf8(&self.s[start..self.i]).ok()?;
            match word {
                "True" => return Some(node(Value::Bool(true))),
                "False" => return Some(node(Value::Bool(false))),
                "None" => return Some(node(Value::Null)),
                _ => {}
            }
            let digits = word.replace('_', "");
            if let Ok(i) = digits.parse::<i64>() {
                return Some(node(Value::Int(i)));
            }
            if digits.chars().any(|c| c.is_ascii_digit()) {
                if let Ok(f) = digits.parse::<f64>() {
                    return Some(node(Value::Float(f)));
                }
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Param;

    fn canon(name: &str, text: &str) -> String {
        Param::from_node(&parse(name, text).unwrap()).canonical()
    }

    #[test]
    fn toml_json_and_yaml_agree() {
        let yaml = canon("p.yaml", "train:\n  lr: 0.1\n  epochs: 3\n  tags: [a, b]\n");
        let json = canon(
            "p.json",
            r#"{"train": {"lr": 0.1, "epochs": 3, "tags": ["a", "b"]}}"#,
        );
        let toml = canon(
            "p.toml",
            "[train]\nlr = 0.1\nepochs = 3\ntags = [\"a\", \"b\"]\n",
        );
        let py = canon(
            "p.py",
            "import os\n\nclass train:\n    lr = 0.1\n    epochs = 3\n    tags = ['a', \"b\"]\n",
        );
        assert_eq!(yaml, json);
        assert_eq!(yaml, toml);
        assert_eq!(yaml, py);
    }

    #[test]
    fn python_reads_only_literals() {
        let text = "# params\nSEED = 42\nLR: float = 1e-3\nNAME = 'a' 'b'\nPATH = os.path.join('a')\nDICT = {\n  'x': [1, 2.5, None],\n  'y': (True, False),\n}\nclass Model:\n    def __init__(self):\n        self.depth = 3\n        other = 4\n";
        assert_eq!(
            canon("p.py", text),
            r#"{"DICT":{"x":[1,2.5,null],"y":[true,false]},"LR":0.001,"Model":{"depth":3},"NAME":"ab","SEED":42}"#
        );
    }
}
