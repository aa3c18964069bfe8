//! Writing a built-in stage's outputs: atomically, and failures in one wording.
//!
//! Owns: the temp-file-beside-and-rename pattern every kind uses, so a failed stage leaves no half
//! file under an output's real name, and `stage `x` failed` as every kind reports a failure.
//! Deliberately does not own: moving outputs aside before a run or restoring them (the engine's
//! runner and store).

use std::path::{Path, PathBuf};

use crate::diag::Diagnostic;

/// `stage `x` failed`, with the problem as its first cause (location and hint kept): how every
/// built-in kind reports a failure.
pub fn stage_failed(stage: &str, d: Diagnostic) -> Diagnostic {
    Diagnostic {
        message: format!("stage `{stage}` failed"),
        causes: std::iter::once(d.message).chain(d.causes).collect(),
        ..d
    }
}

/// The temp file beside output `rel` (`.NAME.repro-tmp`) and the output's path, with the folder
/// created: outputs are written there and renamed into place, so a failed stage leaves no half
/// file under the real name.
pub fn temp_beside(root: &Path, rel: &str) -> std::io::Result<(PathBuf, PathBuf)> {
    let dest = root.join(rel);
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = dest.with_file_name(format!(
        ".{}.repro-tmp",
        dest.file_name().and_then(|n| n.to_str()).unwrap_or("out")
    ));
    Ok((tmp, dest))
}

/// `temp_beside` with the temp file created, for outputs streamed in batches (they cannot go
/// through `write_output`'s one buffer) and renamed into place at the end.
pub fn create_temp_beside(
    root: &Path,
    rel: &str,
) -> std::io::Result<(PathBuf, PathBuf, std::fs::File)> {
    let (tmp, dest) = temp_beside(root, rel)?;
    let file = std::fs::File::create(&tmp)?;
    Ok((tmp, dest, file))
}

/// Writes an output beside its final path and renames it into place.
pub fn write_output(root: &Path, rel: &str, bytes: &[u8]) -> std::io::Result<()> {
    let (tmp, dest) = temp_beside(root, rel)?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &dest)
}
