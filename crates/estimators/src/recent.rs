//! The last few results of a costly computation that depends only on a large numeric input,
//! kept by the input's exact bits.
//!
//! Owns: [`Recent`], which the quantile code uses where every quantile of one pooled regression
//! repeats the same work on the same design (the collinearity check of its columns, `(X'X)^-1`
//! of its `iid` standard errors).
//! Deliberately does not own: what is computed, or any estimator; the caller decides which
//! inputs are worth keeping (a kept input is copied).

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Up to [`Recent::KEEP`] inputs with their results (computed once, however many threads ask
/// at the same time). An input matches only bit for bit, so `-0.0` and `0.0` differ.
pub(crate) struct Recent<T> {
    entries: Mutex<Vec<Arc<Entry<T>>>>,
}

struct Entry<T> {
    /// The number of parts, the length of each, then every value's bits.
    key: Vec<u64>,
    value: OnceLock<T>,
}

impl<T: Clone> Recent<T> {
    /// Inputs kept at once: a pooled regression's quantiles run side by side on one design.
    const KEEP: usize = 2;

    pub(crate) const fn new() -> Self {
        Self {
            entries: Mutex::new(Vec::new()),
        }
    }

    /// The result of `compute` for the input made of `parts`, from an earlier call with the
    /// same input when one is kept.
    pub(crate) fn get_or_compute(&self, parts: &[&[f64]], compute: impl FnOnce() -> T) -> T {
        let same = |e: &Entry<T>| {
            let mut key = e.key.iter();
            key.next() == Some(&(parts.len() as u64))
                && parts.iter().all(|p| key.next() == Some(&(p.len() as u64)))
                && parts
                    .iter()
                    .flat_map(|p| p.iter())
                    .all(|v| key.next() == Some(&v.to_bits()))
                && key.next().is_none()
        };
        let entry = {
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = match entries.iter().position(|e| same(e)) {
                Some(at) => entries.remove(at),
                None => Arc::new(Entry {
                    key: std::iter::once(parts.len() as u64)
                        .chain(parts.iter().map(|p| p.len() as u64))
                        .chain(parts.iter().flat_map(|p| p.iter().map(|v| v.to_bits())))
                        .collect(),
                    value: OnceLock::new(),
                }),
            };
            entries.push(Arc::clone(&entry));
            if entries.len() > Self::KEEP {
                entries.remove(0);
            }
            entry
        };
        entry.value.get_or_init(compute).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn computes_once_per_input_and_tells_zeros_apart() {
        let recent = Recent::<usize>::new();
        let calls = AtomicUsize::new(0);
        let count = || calls.fetch_add(1, Ordering::SeqCst);
        let (a, b) = ([1.0, 0.0], [1.0, -0.0]);
        assert_eq!(recent.get_or_compute(&[&a], count), 0);
        assert_eq!(recent.get_or_compute(&[&a], count), 0);
        assert_eq!(recent.get_or_compute(&[&b], count), 1);
        // The same values cut into other parts are another input.
        assert_eq!(recent.get_or_compute(&[&a[..1], &a[1..]], count), 2);
        // Only the last two are kept.
        assert_eq!(recent.get_or_compute(&[&a], count), 3);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }
}
