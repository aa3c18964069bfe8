//! Package files that every part of packaging shares: the marker by which repro recognises a
//! package it wrote, listing a folder's files in order, and the digests of a file.
//!
//! Owns: those three. Deliberately does not own: what a package holds (`package`) or how it is
//! checked (`verify`).

use std::fs;
use std::io::{self, Read};
use std::path::Path;

/// The file by which repro recognises a package it wrote (with its manifest listing exactly the
/// package's files, each with its content): only such a folder or zip may be replaced.
pub const MARKER: &str = ".repro-package";

/// The files at `rel` under `root` (itself, or every file in the folder), sorted; none if absent.
pub fn list_files(root: &Path, rel: &str) -> io::Result<Vec<String>> {
    let full = root.join(rel);
    let meta = match fs::metadata(&full) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return Ok(vec![rel.to_string()]);
    }
    let mut out = Vec::new();
    let mut names: Vec<String> = fs::read_dir(&full)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        out.extend(list_files(root, &format!("{rel}/{name}"))?);
    }
    Ok(out)
}

/// The sha256 and blake3 hex digests of a stream.
pub fn digests(mut r: impl Read) -> io::Result<(String, String)> {
    use sha2::Digest;
    let mut sha = sha2::Sha256::new();
    let mut b3 = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        b3.update(&buf[..n]);
    }
    let sha_hex: String = sha.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((sha_hex, b3.finalize().to_hex().to_string()))
}
