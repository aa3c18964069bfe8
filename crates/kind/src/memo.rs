//! A memo a kind may keep between runs: results of parts of its work, by key.
//!
//! Owns: the [`Memo`] trait a running kind is handed (in `BuiltinCtx`) and [`NoMemo`], the memo
//! that keeps nothing. Deliberately does not own: where entries live or how they are checked
//! (the engine's store keeps them under `cache/memo/` and verifies each one it returns), or what
//! a key covers (the kind that asks: its key must cover everything the entry depends on, and
//! the entry must never be the only source of an output's correctness: a miss recomputes).
//!
//! Why: a stage key covers the whole stage, so a stage whose spec gained one model reruns every
//! model. A kind whose work splits into independent parts (the `curve` kind's specifications)
//! keys each part itself and recomputes only the parts it has not seen.

/// Entries by key: `key` is 64 lowercase hex digits (a blake3 hash the kind computed over
/// everything the entry depends on).
pub trait Memo: Sync {
    /// The entry stored under `key`, if there is one whose content checks out; a damaged or
    /// missing entry is `None` (the caller recomputes).
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    /// Stores `bytes` under `key`. A failure is returned for the caller to ignore or report: a
    /// memo is an accelerator, never needed for correctness.
    fn put(&self, key: &str, bytes: &[u8]) -> std::io::Result<()>;
}

/// A memo that keeps nothing (tests, and callers without a project cache).
pub struct NoMemo;

impl Memo for NoMemo {
    fn get(&self, _key: &str) -> Option<Vec<u8>> {
        None
    }

    fn put(&self, _key: &str, _bytes: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
}
