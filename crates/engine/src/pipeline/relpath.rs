//! Paths relative to a folder of the project (a stage's `wdir`, a nested `dvc.yaml`'s folder,
//! a params file's), with `.` and `..` resolved and kept inside the project.
//!
//! Owns: that resolution only, for `dvc`, `template` and `parse` alike (its own module so that
//! neither `dvc` nor `template` imports the other for it). Deliberately does not own: which
//! paths a stage may name (`parse`) or the project's path rules (`repro_kind::paths`).

/// `base/raw` with `.` and `..` resolved; the result must stay inside the project.
pub fn resolve_path(base: &str, raw: &str) -> Result<String, String> {
    let path = resolve_folder(base, raw)?;
    if path.is_empty() {
        return Err("the path names the project folder itself".into());
    }
    Ok(path)
}

/// Like [`resolve_path`], but the project folder itself (`""`) is allowed: a `wdir` of `..` in
/// a subfolder's `dvc.yaml` runs the command at the root, as DVC does.
pub fn resolve_folder(base: &str, raw: &str) -> Result<String, String> {
    let s = raw.trim().replace('\\', "/");
    if s.is_empty() {
        return Err("the path is empty".into());
    }
    if s.starts_with('/') || (s.len() > 1 && s.as_bytes()[1] == b':') {
        return Err("absolute paths are not allowed".into());
    }
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for part in s.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err("`..` leads outside the project".into());
                }
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}
