//! Seeded random draws: the ChaCha8 stream of one component and the few ways the generator
//! samples from it.
//!
//! Owns: deriving a stream from the seed, a tag and an index, and the sampling helpers (normal,
//! uniform pick, draw from a cumulative table). Deliberately does not own: which component
//! uses which tag (each caller names its own), or any distribution of the data-generating
//! process.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// A ChaCha8 stream for one component of the draw: the seed, a tag naming the component and an
/// index (a year, a city), hashed, so adding a component never shifts another's numbers.
pub fn stream(seed: u64, tag: &str, index: u64) -> ChaCha8Rng {
    let mut h = blake3::Hasher::new();
    h.update(&seed.to_le_bytes());
    h.update(tag.as_bytes());
    h.update(&index.to_le_bytes());
    let bytes = h.finalize();
    let mut s = [0u8; 32];
    s.copy_from_slice(bytes.as_bytes());
    ChaCha8Rng::from_seed(s)
}

/// A standard normal draw.
pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

/// One of `items`, uniformly.
pub fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// Draws an index with probability proportional to `cum` increments (a cumulative table).
pub fn draw_cum(rng: &mut ChaCha8Rng, cum: &[f64]) -> usize {
    let total = *cum.last().unwrap_or(&0.0);
    let u = rng.random::<f64>() * total;
    cum.partition_point(|&c| c <= u)
        .min(cum.len().saturating_sub(1))
}

/// The cumulative table of `weights` (negative weights count as zero), for [`draw_cum`].
pub fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut acc = 0.0;
    weights
        .map(|w| {
            acc += w.max(0.0);
            acc
        })
        .collect()
}
