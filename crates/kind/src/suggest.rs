//! "Did you mean": the closest allowed word to a misspelt one.
//!
//! Owns: the edit distance and the threshold for a plausible typo. Deliberately does not own: the
//! lists of allowed words (each parser passes its own).

/// The allowed word closest to `word`, when it is a plausible typo.
pub fn closest<'a>(word: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (edit_distance(word, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn suggests_only_plausible_typos() {
        assert_eq!(closest("stags", &["stages", "sources"]), Some("stages"));
        assert_eq!(closest("zzzzzz", &["stages", "sources"]), None);
    }
}
