//! The crate's code fingerprint (`REPRO_CODE_FINGERPRINT`): enters the key of every built-in
//! stage this crate implements (docs/caching.md).
fn main() {
    repro_fingerprint::emit();
}
