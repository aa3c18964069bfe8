//! Which rows repeat an application number that an earlier row already claimed, over a whole
//! ingest (every input, in order), decided in parallel.
//!
//! Owns: the set of claimed numbers and the first-occurrence rule. Deliberately does not own
//! which rows may claim a number (only rows that pass every other check do; `ingest` decides).
//!
//! One set of 10M numbers made its inserts the serial bottleneck of a 10M-record ingest (a cache
//! miss each): the numbers are split into partitions by a hash, each with its own set, and the
//! partitions are worked on in parallel. Within a partition rows keep their input order, so the
//! first occurrence of every number is the one kept, whatever the thread count.

use polars::prelude::PlHashSet;
use rayon::prelude::*;

/// Partitions of the claimed numbers (a power of two).
const PARTS: usize = 64;

/// The numbers claimed so far.
pub struct Claims {
    parts: Vec<PlHashSet<u64>>,
}

impl Default for Claims {
    fn default() -> Self {
        Claims {
            parts: (0..PARTS).map(|_| PlHashSet::default()).collect(),
        }
    }
}

fn part_of(key: u64) -> usize {
    // Fibonacci hashing: the top bits of the product mix every digit of the number.
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - PARTS.trailing_zeros())) as usize
}

impl Claims {
    /// `keys[row]` is the number row `row` claims (`None`: the row claims nothing). Returns, for
    /// each row, whether its number was claimed before: by an earlier call or an earlier row.
    pub fn repeats(&mut self, keys: &[Option<u64>]) -> Vec<bool> {
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); PARTS];
        for (row, key) in keys.iter().enumerate() {
            if let Some(key) = key {
                rows[part_of(*key)].push(row as u32);
            }
        }
        let repeated: Vec<Vec<u32>> = self
            .parts
            .par_iter_mut()
            .zip(rows)
            .map(|(set, rows)| {
                rows.into_iter()
                    .filter(|&row| !set.insert(keys[row as usize].unwrap_or_default()))
                    .collect()
            })
            .collect();
        let mut out = vec![false; keys.len()];
        for row in repeated.into_iter().flatten() {
            out[row as usize] = true;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    proptest! {
        /// The same verdicts as one plain set visited row by row, across batches.
        #[test]
        fn repeats_equal_a_sequential_set(
            batches in prop::collection::vec(
                prop::collection::vec(prop::option::of(0u64..400), 0..300), 1..5)
        ) {
            let mut claims = Claims::default();
            let mut plain = HashSet::new();
            for keys in &batches {
                let expected: Vec<bool> = keys
                    .iter()
                    .map(|k| k.is_some_and(|k| !plain.insert(k)))
                    .collect();
                prop_assert_eq!(claims.repeats(keys), expected);
            }
        }
    }

    #[test]
    fn numbers_spread_over_the_partitions() {
        let used: HashSet<usize> = (0..10_000u64)
            .map(|k| part_of(2_010_100_000_000 + k))
            .collect();
        assert_eq!(used.len(), PARTS);
    }
}
