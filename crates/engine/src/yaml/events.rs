//! The quick way to a [`Node`] tree: straight from the YAML parser's events, for the plain
//! documents pipelines are.
//!
//! Owns: building nodes with their positions from `granit-parser` events (the parser
//! serde-saphyr itself runs, with the options it gives it), for documents of block and flow
//! mappings, sequences and untagged scalars. Going through serde's visitors with a position
//! wrapper per value costs about three times the parse itself, and `repro status` reads the
//! whole pipeline file every time.
//! Deliberately does not own: anything unusual. An anchor, alias, tag, merge key, duplicate key,
//! non-string key, directive, a second document, a number it does not read itself, or any
//! error gives `None`, and the caller parses the text the full way (serde-saphyr), which also
//! words every error. So where this answers, it answers what serde-saphyr would; the tests
//! compare the two on every YAML file of the repository and on generated documents.

use std::borrow::Cow;
use std::collections::HashSet;

use serde_saphyr::budget::Budget;
use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Span};

use super::{Key, Node, Pos, Value};

/// Mappings of more keys than this check duplicates with a set rather than by scanning.
const SCAN_KEYS: usize = 32;

/// The tree of `text`, or `None` when the full parser must decide (see the module doc).
pub(super) fn parse(text: &str, options: &serde_saphyr::Options) -> Option<Node> {
    let budget = options.budget.clone().unwrap_or_default();
    let mut events = Parser::new_from_str_with_options(text, parser_options(options, &budget));
    let mut b = Builder {
        events: &mut events,
        // Well inside serde-saphyr's budget, so that nothing it would refuse is accepted here
        // (its counting differs in details; these limits do not depend on them).
        max_depth: budget.max_depth / 2,
        events_left: budget.max_events / 2,
        nodes_left: budget.max_nodes / 2,
        scalar_bytes_left: budget.max_total_scalar_bytes / 2,
    };
    if !matches!(b.next()?.0, Event::StreamStart) {
        return None;
    }
    // One document without a `%YAML` directive.
    if !matches!(b.next()?.0, Event::DocumentStart(_, None)) {
        return None;
    }
    let (first, span) = b.next()?;
    let root = b.node(first, span, 0)?;
    if !matches!(b.next()?.0, Event::DocumentEnd) || !matches!(b.next()?.0, Event::StreamEnd) {
        return None;
    }
    b.events.next_event().is_none().then_some(root)
}

/// The parser options serde-saphyr derives from its own (`Options::parser_options`, which it
/// keeps private): the same limits, so that the same texts fail to parse.
fn parser_options(
    options: &serde_saphyr::Options,
    budget: &Budget,
) -> serde_saphyr::granit_parser::Options {
    let mut p = serde_saphyr::granit_parser::Options::default();
    p.simple_key_max_lookahead = budget.simple_key_max_lookahead;
    p.flow_nesting_limit = budget.flow_nesting_limit;
    p.block_nesting_limit = p
        .block_nesting_limit
        .max(budget.max_depth.saturating_add(1));
    p.emit_comments = false;
    p.strict_indentation = options.strict_indentation;
    p.bom_inside_document_as_content = options.bom_inside_document_as_content;
    p
}

struct Builder<'a, 't> {
    events: &'a mut Parser<'t, serde_saphyr::granit_parser::StrInput<'t>>,
    max_depth: usize,
    events_left: usize,
    nodes_left: usize,
    scalar_bytes_left: usize,
}

impl<'t> Builder<'_, 't> {
    /// The next event; `None` on a parse error or past a limit.
    fn next(&mut self) -> Option<(Event<'t>, Span)> {
        self.events_left = self.events_left.checked_sub(1)?;
        self.events.next_event()?.ok()
    }

    fn node(&mut self, event: Event<'t>, span: Span, depth: usize) -> Option<Node> {
        self.nodes_left = self.nodes_left.checked_sub(1)?;
        let pos = pos_of(&span);
        let value = match event {
            Event::Scalar(text, style, 0, None) => self.scalar(text, style)?,
            Event::SequenceStart(_, 0, None) if depth < self.max_depth => {
                let mut items = Vec::new();
                loop {
                    match self.next()? {
                        (Event::SequenceEnd, _) => break,
                        (event, span) => items.push(self.node(event, span, depth + 1)?),
                    }
                }
                Value::Seq(items)
            }
            Event::MappingStart(_, 0, None) if depth < self.max_depth => self.mapping(depth)?,
            _ => return None,
        };
        Some(Node { value, pos })
    }

    fn mapping(&mut self, depth: usize) -> Option<Value> {
        let mut entries: Vec<(Key, Node)> = Vec::new();
        let mut seen: Option<HashSet<String>> = None;
        loop {
            let (event, span) = self.next()?;
            let name = match event {
                Event::MappingEnd => break,
                // A key is a string here; other keys (numbers, booleans, null) and the merge key
                // `<<` are left to the full parser.
                Event::Scalar(text, style, 0, None) => match self.scalar(text, style)? {
                    Value::Str(s) if !(s == "<<" && style == ScalarStyle::Plain) => s,
                    _ => return None,
                },
                _ => return None,
            };
            self.nodes_left = self.nodes_left.checked_sub(1)?;
            let key = Key {
                name,
                pos: pos_of(&span),
            };
            let (event, span) = self.next()?;
            let value = self.node(event, span, depth + 1)?;
            if seen.is_none() && entries.len() >= SCAN_KEYS {
                seen = Some(entries.iter().map(|(k, _)| k.name.clone()).collect());
            }
            let duplicate = match &mut seen {
                Some(set) => !set.insert(key.name.clone()),
                None => entries.iter().any(|(k, _)| k.name == key.name),
            };
            if duplicate {
                return None;
            }
            entries.push((key, value));
        }
        Some(Value::Map(entries))
    }

    /// An untagged scalar as serde-saphyr types it (YAML 1.2 core schema, strict booleans).
    fn scalar(&mut self, text: Cow<'t, str>, style: ScalarStyle) -> Option<Value> {
        self.scalar_bytes_left = self.scalar_bytes_left.checked_sub(text.len())?;
        if style != ScalarStyle::Plain {
            return Some(Value::Str(text.into_owned()));
        }
        Some(match &*text {
            "" | "~" | "null" | "Null" | "NULL" => Value::Null,
            "true" | "True" | "TRUE" => Value::Bool(true),
            "false" | "False" | "FALSE" => Value::Bool(false),
            t if t.trim_matches([' ', '\t', '\r', '\n']).len() != t.len() => return None,
            t => {
                // Every number starts with a digit or `.` after an optional sign.
                let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
                match unsigned.bytes().next() {
                    Some(b'0'..=b'9' | b'.') => number(t)?,
                    _ => Value::Str(text.into_owned()),
                }
            }
        })
    }
}

/// A plain scalar that may be a number: plain decimal integers read here, any other spelling
/// (`0x1F`, `1e-5`, `.inf`, `1_000`, `007`, `1.5`...) by serde-saphyr on its own, which reads
/// it as it would in place as long as it is one word of number characters; else `None`.
fn number(t: &str) -> Option<Value> {
    let digits = t.strip_prefix('-').unwrap_or(t);
    let plain_decimal = (1..=18).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if plain_decimal {
        return t.parse().ok().map(Value::Int);
    }
    let one_word = t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'));
    if !one_word || t.starts_with("...") || t.starts_with("---") {
        return None;
    }
    let alone =
        serde_saphyr::from_str_with_options::<Node>(t, repro_kind::spec::yaml_options(t)).ok()?;
    match alone.value {
        v @ (Value::Int(_) | Value::Float(_) | Value::Str(_)) => Some(v),
        _ => None,
    }
}

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: span.start.line() as u64,
        column: span.start.col() as u64 + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// serde-saphyr's tree (the full way) and this module's, when it gives one.
    fn both(text: &str) -> (Result<Node, String>, Option<Node>) {
        let options = repro_kind::spec::yaml_options(text);
        let quick = parse(text, &options);
        let full = serde_saphyr::from_str_with_options::<Node>(text, options);
        (full.map_err(|e| e.to_string()), quick)
    }

    /// Where the quick way answers, it answers what serde-saphyr does (NaN aside: no NaN is
    /// equal to itself, so a `.nan` is compared by its text).
    fn agrees(text: &str) -> bool {
        let (full, quick) = both(text);
        let Some(quick) = quick else { return false };
        let full = full.unwrap_or_else(|e| panic!("only the quick way read {text:?}: {e}"));
        assert_eq!(format!("{quick:?}"), format!("{full:?}"), "{text:?}");
        true
    }

    #[test]
    fn pipelines_take_the_quick_way_to_the_same_tree() {
        let text = "# a pipeline\nvars:\n  - models: [lin, tree]\nstages:\n  prepare:\n    cmd: python prep.py --n 3 > out/a.csv\n    deps:\n      - raw/in.csv\n    outs:\n      - out/a.csv:\n          cache: false\n    params:\n      seed: 42\n      lr: 1e-5\n      alpha: 0.5\n      big: 123456789012345678901\n      neg: -7\n      hex: 0x1F\n      flag: true\n      off: no\n      none: ~\n      empty:\n      quoted: \"3\"\n      single: 'a: b'\n      list: [1, two, 3.0, {k: v}]\n  fit:\n    kind: fit\n    params: {data: out/a.csv, formula: 'y ~ x1 + x2 | id', out: r.json}\n    desc: >\n      folded\n      text\n    meta: |\n      literal\n        text\n";
        assert!(agrees(text));
        let generated: String = (0..200)
            .map(|i| format!("  s{i:04}:\n    cmd: echo s{i} | cat - out/a.txt | md5sum > out/s{i}.txt\n    deps:\n      - out/a.txt\n    outs:\n      - out/s{i}.txt\n"))
            .collect();
        assert!(agrees(&format!("stages:\n{generated}")));
    }

    #[test]
    fn every_yaml_file_of_the_repository_reads_the_same() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = Vec::new();
        collect_yaml(&root, &mut files);
        let mut quick = 0;
        let mut read = 0;
        for f in &files {
            let text = match std::fs::read_to_string(f) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                text => text.unwrap(),
            };
            read += 1;
            quick += usize::from(agrees(&text));
        }
        assert!(read >= 10, "{files:?}");
        assert_eq!(quick, read, "every file of the repository is plain");
    }

    use std::path::{Path, PathBuf};

    fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) {
        // A folder that goes away while the tree is walked (scratch space of a process running
        // beside the tests) held no file of the repository; any other error fails the test.
        let entries = match std::fs::read_dir(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            entries => entries.unwrap(),
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy();
            if name.starts_with('.') || name == "target" {
                continue;
            }
            if path.is_dir() {
                collect_yaml(&path, out);
            } else if name.ends_with(".yaml") || name.ends_with(".yml") {
                out.push(path);
            }
        }
    }

    #[test]
    fn unusual_documents_are_left_to_serde_saphyr() {
        for text in [
            "a: &x 1\nb: *x\n",
            "base: &b {k: 1}\nc:\n  <<: *b\n",
            "a: !!str 1\n",
            "a: !custom x\n",
            "%YAML 1.2\n---\na: 1\n",
            "a: 1\n---\nb: 2\n",
            "a: 1\na: 2\n",
            "1: one\n",
            "true: yes\n",
            "? [a, b]\n: c\n",
            "a: 1e999\n",
            "a: 7 dwarfs\n",
            "# only a comment\n",
            "a: [1, 2\n",
            "a:\n  - b\n - c\n",
        ] {
            let (full, quick) = both(text);
            assert!(quick.is_none(), "{text:?}: {quick:?} (full: {full:?})");
        }
    }

    #[test]
    fn numbers_and_words_type_as_serde_saphyr_types_them() {
        for word in [
            "0",
            "-0",
            "7",
            "-7",
            "+7",
            "007",
            "-007",
            "1_000",
            "0x1F",
            "0X1F",
            "0o17",
            "0b101",
            "1.5",
            "-1.5",
            "1.",
            ".5",
            "1e5",
            "1E-5",
            "-1e+5",
            ".inf",
            "-.inf",
            "+.inf",
            ".Inf",
            ".nan",
            ".NaN",
            "-.nan",
            "inf",
            "nan",
            "infinity",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "18446744073709551615",
            "18446744073709551616",
            "123456789012345678",
            "1234567890123456789",
            "1.2.3",
            "1-2",
            "3rd",
            "0.5x",
            "-",
            "+",
            "--1",
            "..5",
            "true",
            "True",
            "TRUE",
            "tRue",
            "yes",
            "no",
            "on",
            "off",
            "y",
            "n",
            "null",
            "Null",
            "NULL",
            "~",
            "nULL",
            "0.",
            "-.",
            ".",
            "1__0",
            "0x",
            "0o8",
            "1e",
            "e5",
        ] {
            let text = format!("v: {word}\nl: [{word}]\n");
            let (full, quick) = both(&text);
            match (full, quick) {
                (Ok(full), Some(quick)) => {
                    assert_eq!(format!("{quick:?}"), format!("{full:?}"), "{word}")
                }
                (Err(_), None) => {}
                (Ok(_), None) => panic!("`{word}` was left to serde-saphyr"),
                (Err(e), Some(quick)) => panic!("`{word}`: quick {quick:?}, full error {e}"),
            }
        }
    }

    /// A scalar as it may be written in a document: plain words, numbers, keywords, quoted.
    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z][a-z0-9_./-]{0,8}",
            "-?[0-9]{1,20}",
            "[+-]?[0-9]{0,3}\\.[0-9]{0,3}(e[+-]?[0-9]{1,3})?",
            "0[xob][0-9a-fA-F]{1,4}",
            prop::sample::select(vec![
                "~",
                "null",
                "true",
                "False",
                "yes",
                ".inf",
                "-.nan",
                "'quoted: x'",
                "\"a\\tb\"",
                "''",
                "\"\"",
                "a b c",
                "x #not a comment",
                "é",
                "\"1\"",
                "'007'",
            ])
            .prop_map(str::to_string),
        ]
    }

    /// A document of block mappings and sequences with flow collections inside.
    fn block(depth: u32) -> BoxedStrategy<Vec<String>> {
        let flow =
            prop::collection::vec(scalar(), 0..4).prop_map(|v| vec![format!("[{}]", v.join(", "))]);
        let leaf = prop_oneof![scalar().prop_map(|s| vec![s]), flow];
        if depth == 0 {
            return leaf.boxed();
        }
        let entry = ("[a-z]{1,3}|\"[a-z ]{1,3}\"", block(depth - 1));
        let map = prop::collection::vec(entry, 1..4).prop_map(|entries| {
            let mut lines = Vec::new();
            for (k, v) in entries {
                if v.len() == 1 && !v[0].starts_with("- ") && !v[0].contains(": ") {
                    lines.push(format!("{k}: {}", v[0]));
                } else {
                    lines.push(format!("{k}:"));
                    lines.extend(v.into_iter().map(|l| format!("  {l}")));
                }
            }
            lines
        });
        let seq = prop::collection::vec(block(depth - 1), 1..4).prop_map(|items| {
            let mut lines = Vec::new();
            for item in items {
                let mut it = item.into_iter();
                lines.push(format!("- {}", it.next().unwrap_or_default()));
                lines.extend(it.map(|l| format!("  {l}")));
            }
            lines
        });
        prop_oneof![leaf, map, seq].boxed()
    }

    proptest! {
        /// Generated documents (block and flow collections, numbers, keywords, quoted scalars,
        /// duplicate keys): the quick tree is serde-saphyr's whenever there is one, and the
        /// quick way gives up where serde-saphyr fails.
        #[test]
        fn generated_documents_read_the_same(lines in block(3)) {
            let text = format!("{}\n", lines.join("\n"));
            let (full, quick) = both(&text);
            if let Some(quick) = quick {
                let full = full.map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
                prop_assert_eq!(format!("{quick:?}"), format!("{full:?}"), "{:?}", text);
            }
        }
    }
}
