//! Package archives: which paths a package may hold, and unpacking a package zip safely.
//!
//! Owns: the rule for a path inside a package (normalised, relative, no `..`, no control
//! character), and reading a zip entry by entry into an empty folder, refusing anything that
//! could land outside it. Deliberately does not own: writing packages (`package`) or checking
//! their manifests (`verify`). Depends on `std` and `zip` only, so the fuzz target `unzip`
//! compiles this very file (`fuzz/fuzz_targets/unzip.rs`).

use std::fs;
use std::io;
use std::path::Path;

/// Ok for a normalised relative path (`a/b.csv`); else why not.
pub fn check_relative(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the path is empty".into());
    }
    if path.starts_with('/') || Path::new(path).is_absolute() {
        return Err("the path is absolute; packages hold paths inside the project only".into());
    }
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return Err("the path holds a control character or a backslash".into());
    }
    for part in path.split('/') {
        match part {
            "" | "." => return Err("the path is not normalised (`//` or `.`)".into()),
            ".." => return Err(
                "the path leaves the project (`..`); packages hold paths inside the project only"
                    .into(),
            ),
            _ => {}
        }
    }
    Ok(())
}

/// A zip error as an I/O error.
pub fn zip_err(e: zip::result::ZipError) -> io::Error {
    io::Error::other(e.to_string())
}

/// Unpacks a package zip into the empty folder `dest`; returns the files it held. Refuses,
/// naming the entry, anything but regular files and folders at normalised relative paths
/// (no absolute path, `..`, symlink or duplicate), before anything is read from a refused entry.
pub fn unzip(zip_path: &Path, dest: &Path) -> io::Result<Vec<String>> {
    unzip_from(fs::File::open(zip_path)?, dest)
}

/// [`unzip`] of a zip read from `reader` (the fuzz target `unzip` feeds it bytes in memory).
pub fn unzip_from(reader: impl io::Read + io::Seek, dest: &Path) -> io::Result<Vec<String>> {
    use std::os::unix::fs::PermissionsExt;
    let bad = |name: &str, why: &str| io::Error::other(format!("entry `{name}` {why}"));
    let mut archive = zip::ZipArchive::new(reader).map_err(zip_err)?;
    let mut files = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(zip_err)?;
        let name = entry.name().map_err(zip_err)?.to_string();
        if entry.is_symlink() {
            return Err(bad(&name, "is a symbolic link"));
        }
        let is_dir = entry.is_dir();
        let path = if is_dir {
            name.trim_end_matches('/')
        } else {
            name.as_str()
        };
        if let Err(why) = check_relative(path) {
            return Err(bad(&name, &format!("is refused: {why}")));
        }
        if entry.enclosed_name().as_deref() != Some(Path::new(path)) {
            return Err(bad(&name, "would be written outside the folder"));
        }
        let to = dest.join(path);
        if is_dir {
            fs::create_dir_all(&to)?;
            continue;
        }
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut out = match fs::File::create_new(&to) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(bad(&name, "appears twice"))
            }
            other => other?,
        };
        io::copy(&mut entry, &mut out)?;
        let mode = if entry.unix_mode().is_some_and(|m| m & 0o111 != 0) {
            0o755
        } else {
            0o644
        };
        fs::set_permissions(&to, fs::Permissions::from_mode(mode))?;
        files.push(path.to_string());
    }
    files.sort();
    Ok(files)
}
