//! Project paths: the one normal form every path in a pipeline or stage spec takes.
//!
//! Owns: normalising a user path (relative, forward slashes, no `.` parts) and refusing what would
//! make a key depend on where the project lives (absolute paths, `..`); nesting tests between
//! normal paths. Deliberately does not own: touching the file system.

/// Normalises a user path: forward slashes, no `.` parts, no trailing slash; rejects absolute
/// paths and `..`, which would make keys depend on where the project lives.
pub fn normalize_path(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err("the path is empty".into());
    }
    let s = s.replace('\\', "/");
    if s.starts_with('/') || (s.len() > 1 && s.as_bytes()[1] == b':') {
        return Err("absolute paths are not allowed".into());
    }
    let mut parts = Vec::new();
    for part in s.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("`..` is not allowed".into()),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err("the path names the project folder itself".into());
    }
    Ok(parts.join("/"))
}

/// True when `inner` is `outer` or lies inside the folder `outer`.
pub fn path_within(inner: &str, outer: &str) -> bool {
    inner == outer
        || (inner.len() > outer.len()
            && inner.starts_with(outer)
            && inner.as_bytes()[outer.len()] == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_rejects_paths() {
        assert_eq!(normalize_path("./data//x.csv").unwrap(), "data/x.csv");
        assert!(normalize_path("/etc/passwd").is_err());
        assert!(normalize_path("../x").is_err());
        assert!(path_within("out/a.csv", "out"));
        assert!(!path_within("output", "out"));
    }
}
