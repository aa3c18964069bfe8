//! Where a word stands inside a YAML scalar as the file writes it, so a message about one
//! variable of a formula points at that variable rather than at the formula's start.
//!
//! Owns: finding the extent of a scalar from its first character (plain, single- or
//! double-quoted, literal `|` or folded `>` block, in block or flow context) and the first
//! whole-word occurrence of a word in it, as a 1-based line and character column. Deliberately
//! does not own: parsing YAML (serde-saphyr) or deciding which word to look for (the kinds).

/// The line and column (1-based, in characters) of the first whole-word `word` written in the
/// scalar that starts at `line`:`column` of `text` (where serde-saphyr places it: its opening
/// quote, a plain scalar's first character, a block scalar's first content character); `None` when the word is not written there
/// (it came from elsewhere, e.g. a set, or is spelt with escapes).
pub fn word_in_scalar(text: &str, line: u64, column: u64, word: &str) -> Option<(u64, u64)> {
    if word.is_empty() || line == 0 || column == 0 {
        return None;
    }
    let lines: Vec<Vec<char>> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l).chars().collect())
        .collect();
    let first = (line - 1) as usize;
    let start = (column - 1) as usize;
    let head = lines.get(first)?;
    if start >= head.len() {
        return None;
    }
    let word: Vec<char> = word.chars().collect();
    segments(&lines, first, start)
        .into_iter()
        .find_map(|(l, from, to)| {
            find_word(&lines[l][from..to], &word).map(|at| (l as u64 + 1, (from + at) as u64 + 1))
        })
}

/// The parts of the scalar, as (line index, first char, end char) ranges.
fn segments(lines: &[Vec<char>], first: usize, start: usize) -> Vec<(usize, usize, usize)> {
    let head = &lines[first];
    let parent = key_indent(head);
    let more_indented = |l: &Vec<char>| {
        let indent = l.iter().take_while(|c| **c == ' ').count();
        indent < l.len() && indent > parent
    };
    if after_block_indicator(lines, first, start) {
        // serde-saphyr places a block scalar at its first content line; the content goes on
        // while lines are blank or indented at least as far.
        let mut out = Vec::new();
        for (i, l) in lines.iter().enumerate().skip(first) {
            let blank = l.iter().all(|c| c.is_whitespace());
            if !blank && l.iter().take_while(|c| **c == ' ').count() < start {
                break;
            }
            out.push((i, 0, l.len()));
        }
        return out;
    }
    match head[start] {
        '"' | '\'' => quoted(lines, first, start),
        _ => {
            let flow = head[..start].iter().any(|c| matches!(c, '{' | '['));
            let end_of = |l: &[char], from: usize| -> usize {
                (from..l.len())
                    .find(|&i| {
                        (flow && matches!(l[i], ',' | '}' | ']'))
                            || (l[i] == '#' && i > 0 && l[i - 1] == ' ')
                    })
                    .unwrap_or(l.len())
            };
            let mut out = vec![(first, start, end_of(head, start))];
            if !flow {
                // A plain scalar continues on more indented lines (folded into one line).
                for (i, l) in lines.iter().enumerate().skip(first + 1) {
                    if !more_indented(l) || l.iter().find(|c| **c != ' ') == Some(&'#') {
                        break;
                    }
                    out.push((i, 0, end_of(l, 0)));
                }
            }
            out
        }
    }
}

/// Whether `start` is the first content of a block scalar: the first non-blank of its line,
/// with the line before (comments aside) ending in a block indicator (`|`, `>-`, `|2`...).
fn after_block_indicator(lines: &[Vec<char>], first: usize, start: usize) -> bool {
    let indent = lines[first].iter().take_while(|c| **c == ' ').count();
    if indent != start {
        return false;
    }
    let Some(prev) = lines[..first]
        .iter()
        .rev()
        .find(|l| l.iter().any(|c| !c.is_whitespace()))
    else {
        return false;
    };
    let text: String = prev.iter().collect();
    let text = match text.find(" #") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    let last = text.trim_end().rsplit([' ', ':']).next().unwrap_or("");
    last.starts_with(['|', '>'])
        && last[1..]
            .chars()
            .all(|c| matches!(c, '-' | '+') || c.is_ascii_digit())
}

/// The ranges of a quoted scalar, from its opening quote to its closing one.
fn quoted(lines: &[Vec<char>], first: usize, start: usize) -> Vec<(usize, usize, usize)> {
    let quote = lines[first][start];
    let mut out = Vec::new();
    let mut from = start + 1;
    for (i, l) in lines.iter().enumerate().skip(first) {
        let mut j = if i == first { from } else { 0 };
        from = j;
        while j < l.len() {
            match l[j] {
                '\\' if quote == '"' => j += 2,
                '\'' if quote == '\'' && l.get(j + 1) == Some(&'\'') => j += 2,
                c if c == quote => {
                    out.push((i, from, j));
                    return out;
                }
                _ => j += 1,
            }
        }
        out.push((i, from, l.len()));
    }
    out
}

/// The column where the mapping key of a line starts (after indentation and `- ` markers).
fn key_indent(line: &[char]) -> usize {
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            ' ' => i += 1,
            '-' if line.get(i + 1) == Some(&' ') => i += 2,
            _ => break,
        }
    }
    i
}

/// The first index where `word` stands in `hay` not preceded or followed by a word character.
fn find_word(hay: &[char], word: &[char]) -> Option<usize> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    (0..hay.len().saturating_sub(word.len() - 1)).find(|&i| {
        hay[i..].starts_with(word)
            && (i == 0 || !is_word(hay[i - 1]))
            && hay.get(i + word.len()).is_none_or(|c| !is_word(*c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalar_in_a_list() {
        let t = "models:\n  - id: a\n    formula: gap ~ colab + gov | city\n    vcov: hc1\n";
        assert_eq!(word_in_scalar(t, 3, 14, "colab"), Some((3, 20)));
        assert_eq!(word_in_scalar(t, 3, 14, "city"), Some((3, 34)));
        // Whole words only; a word written elsewhere in the file is not in this scalar.
        assert_eq!(word_in_scalar(t, 3, 14, "col"), None);
        assert_eq!(word_in_scalar(t, 3, 14, "hc1"), None);
    }

    #[test]
    fn quoted_scalars() {
        let t = "formula: \"gap ~ x\\\"y + colab\"\nother: colab\n";
        assert_eq!(word_in_scalar(t, 1, 10, "colab"), Some((1, 24)));
        let t = "formula: 'it''s ~ colab'\n";
        assert_eq!(word_in_scalar(t, 1, 10, "colab"), Some((1, 19)));
        let t = "formula: \"gap ~ a +\n  colab\"\nnext: colab\n";
        assert_eq!(word_in_scalar(t, 1, 10, "colab"), Some((2, 3)));
    }

    #[test]
    fn block_scalars_end_where_the_indentation_does() {
        let t = "  - formula: >-\n      gap ~ a\n\n      + colab | city\n    vcov: colab\n";
        assert_eq!(word_in_scalar(t, 2, 7, "colab"), Some((4, 9)));
        assert_eq!(word_in_scalar(t, 2, 7, "zz"), None);
        let t = "formula: |2 # comment\n  gap ~ a\nvcov: cluster:colab\n";
        assert_eq!(word_in_scalar(t, 2, 3, "colab"), None);
        assert_eq!(word_in_scalar(t, 2, 3, "a"), Some((2, 9)));
    }

    #[test]
    fn flow_mappings_and_comments_end_a_plain_scalar() {
        let t = "params: {formula: gap ~ colab, data: colab.csv} # colab\n";
        assert_eq!(word_in_scalar(t, 1, 19, "colab"), Some((1, 25)));
        let t = "params: {formula: gap ~ x, data: colab}\n";
        assert_eq!(word_in_scalar(t, 1, 19, "colab"), None);
        let t = "formula: gap ~ x # colab\n";
        assert_eq!(word_in_scalar(t, 1, 10, "colab"), None);
        let t = "formula: gap ~ x\n  + colab\nnext: 1\n";
        assert_eq!(word_in_scalar(t, 1, 10, "colab"), Some((2, 5)));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let t = "formula: \"é ~ colab\"\n";
        assert_eq!(word_in_scalar(t, 1, 10, "colab"), Some((1, 15)));
    }
}

#[cfg(test)]
mod saphyr {
    //! The start serde-saphyr reports for each style is the scalar's first character.
    use super::word_in_scalar;
    use serde_saphyr::Spanned;

    fn at(text: &str) -> (u64, u64) {
        #[derive(serde::Deserialize)]
        struct Doc {
            f: Spanned<String>,
        }
        let d: Doc = serde_saphyr::from_str(text).unwrap();
        (d.f.referenced.line(), d.f.referenced.column())
    }

    #[test]
    fn every_style_finds_the_word() {
        for (text, want) in [
            ("f: gap ~ colab\n", (1, 10)),
            ("f: \"gap ~ colab\"\n", (1, 11)),
            ("f: 'gap ~ colab'\n", (1, 11)),
            ("f: >-\n  gap ~ a\n  + colab\n", (3, 5)),
            ("f: |\n  gap ~ colab\n", (2, 9)),
        ] {
            let (line, column) = at(text);
            assert_eq!(
                word_in_scalar(text, line, column, "colab"),
                Some(want),
                "{text:?} starts at {line}:{column}"
            );
        }
    }
}
