//! The source of this very repro, embedded at build time (see `build.rs`), for replication
//! packages: a replicator builds the same version with the same `Cargo.lock`.
//!
//! Owns: reading the embedded archive into (path, mode, bytes) entries. Deliberately does not
//! own: choosing which files are packed (`build.rs`) or writing them anywhere (`package`).

/// The archive `build.rs` wrote: per file `F <length> <mode> <path>\n` and the bytes.
static ARCHIVE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/repro-src.pack"));

/// The `rustc --version` that compiled this binary.
pub const RUSTC_VERSION: &str = env!("REPRO_RUSTC_VERSION");

/// One file of the embedded source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrcFile {
    pub path: String,
    pub executable: bool,
    pub bytes: &'static [u8],
}

/// The embedded source files, sorted by path.
pub fn files() -> Result<Vec<SrcFile>, String> {
    parse(ARCHIVE)
}

fn parse(mut rest: &'static [u8]) -> Result<Vec<SrcFile>, String> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("embedded source archive: header without end of line")?;
        let header = std::str::from_utf8(&rest[..nl])
            .map_err(|_| "embedded source archive: header is not utf-8")?;
        let mut parts = header.splitn(4, ' ');
        let (Some("F"), Some(len), Some(mode), Some(path)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("embedded source archive: bad header `{header}`"));
        };
        let len: usize = len
            .parse()
            .map_err(|_| format!("embedded source archive: bad length in `{header}`"))?;
        let body = &rest[nl + 1..];
        if body.len() < len {
            return Err(format!("embedded source archive: `{path}` is truncated"));
        }
        out.push(SrcFile {
            path: path.to_string(),
            executable: mode == "755",
            bytes: &body[..len],
        });
        rest = &body[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_source_builds_repro() {
        let files = files().unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        for needed in ["Cargo.toml", "Cargo.lock", "build.rs", "src/main.rs"] {
            assert!(paths.contains(&needed), "{needed} missing from {paths:?}");
        }
        assert!(paths
            .iter()
            .any(|p| p.starts_with("crates/estimators/src/")));
        assert!(!paths
            .iter()
            .any(|p| p.starts_with("target/") || p.contains("/tests/")));
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted, "entries are sorted");
    }

    #[test]
    fn rejects_a_truncated_archive() {
        assert!(parse(b"F 10 644 a.txt\nshort").is_err());
        assert!(parse(b"X 1 644 a\nz").is_err());
        let ok = parse(b"F 1 755 a\nzF 0 644 b\n").unwrap();
        assert_eq!(ok.len(), 2);
        assert!(ok[0].executable);
        assert_eq!(ok[1].bytes, b"");
    }
}
