//! Whether an output is, or lies below, a symbolic link (which could lead a run to replace or
//! delete what lies outside the project).
//!
//! Owns: looking at the folders on the way to each output and at the output itself, each folder
//! once. A folder holding many outputs (a pipeline of 10,000 stages writing into `out/`) is
//! read once, and its links answer for the outputs in it, instead of one `lstat` per output.
//! Deliberately does not own: what is reported (`parse`).

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::Path;

/// Outputs of one folder looked at one by one before the folder is read whole.
const ONE_BY_ONE: usize = 64;
/// Entries read from one folder at most; a larger folder is looked at output by output.
const MAX_LISTING: usize = 1 << 16;

/// What is known of the folders holding outputs.
#[derive(Default)]
pub(super) struct Links {
    /// Folders found to be real folders, not links.
    plain: HashSet<String>,
    /// By folder: how its outputs are looked at.
    folders: HashMap<String, Folder>,
}

enum Folder {
    /// Looked at output by output so far, this many times.
    Counted(usize),
    /// Read whole: the names of the links in it.
    Read(HashSet<OsString>),
    /// Too large (or unreadable) to be read whole.
    OneByOne,
}

impl Links {
    /// The first part of output `rel` (a folder on the way, or the output itself) that is a
    /// symbolic link, if any; looking stops at the first part that does not exist.
    pub(super) fn on_the_way(&mut self, root: &Path, rel: &str) -> Option<String> {
        let (parent, name) = match rel.rsplit_once('/') {
            Some((parent, name)) => (parent, name),
            None => ("", rel),
        };
        if !parent.is_empty() {
            let parts: Vec<&str> = parent.split('/').collect();
            for end in 1..=parts.len() {
                let prefix = parts[..end].join("/");
                if self.plain.contains(&prefix) {
                    continue;
                }
                match std::fs::symlink_metadata(root.join(&prefix)) {
                    Ok(m) if m.file_type().is_symlink() => return Some(prefix),
                    Ok(_) => {
                        self.plain.insert(prefix);
                    }
                    Err(_) => return None,
                }
            }
        }
        self.is_link(root, parent, name).then(|| rel.to_string())
    }

    /// Whether `name` in the real folder `parent` is a symbolic link (a missing one is not).
    fn is_link(&mut self, root: &Path, parent: &str, name: &str) -> bool {
        let folder = self
            .folders
            .entry(parent.to_string())
            .or_insert(Folder::Counted(0));
        if let Folder::Counted(n) = folder {
            *n += 1;
            if *n > ONE_BY_ONE {
                *folder = read_links(&root.join(parent));
            }
        }
        match folder {
            Folder::Read(links) => links.contains(std::ffi::OsStr::new(name)),
            Folder::Counted(_) | Folder::OneByOne => {
                std::fs::symlink_metadata(root.join(parent).join(name))
                    .is_ok_and(|m| m.file_type().is_symlink())
            }
        }
    }
}

/// The links in folder `dir`, from one listing (the entry types come with it); a folder of more
/// than [`MAX_LISTING`] entries or that cannot be read is left to one look per output.
fn read_links(dir: &Path) -> Folder {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Folder::OneByOne;
    };
    let mut links = HashSet::new();
    for (i, entry) in entries.enumerate() {
        let Ok(entry) = entry else {
            return Folder::OneByOne;
        };
        if i >= MAX_LISTING {
            return Folder::OneByOne;
        }
        match entry.file_type() {
            Ok(t) if t.is_symlink() => {
                links.insert(entry.file_name());
            }
            Ok(_) => {}
            Err(_) => return Folder::OneByOne,
        }
    }
    Folder::Read(links)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// Links among many outputs of one folder are found whether the folder was read whole or
    /// not, and a link as a folder on the way is found too.
    #[test]
    fn links_are_found_before_and_after_a_folder_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("out/sub")).unwrap();
        let n = 3 * ONE_BY_ONE;
        for i in 0..n {
            std::fs::write(root.join(format!("out/f{i}")), "x").unwrap();
        }
        for i in [5, ONE_BY_ONE + 7, 2 * ONE_BY_ONE + 1] {
            let path = root.join(format!("out/f{i}"));
            std::fs::remove_file(&path).unwrap();
            symlink("/etc/hostname", &path).unwrap();
        }
        symlink("/tmp", root.join("out/away")).unwrap();
        let mut links = Links::default();
        let found: Vec<String> = (0..n)
            .filter_map(|i| links.on_the_way(root, &format!("out/f{i}")))
            .collect();
        let expected = [5, ONE_BY_ONE + 7, 2 * ONE_BY_ONE + 1].map(|i| format!("out/f{i}"));
        assert_eq!(found, expected);
        assert!(matches!(links.folders.get("out"), Some(Folder::Read(_))));
        assert_eq!(
            links.on_the_way(root, "out/away/x"),
            Some("out/away".into())
        );
        assert_eq!(links.on_the_way(root, "out/sub/new"), None);
        assert_eq!(links.on_the_way(root, "missing/x"), None);
        assert_eq!(links.on_the_way(root, "out/f6"), None);
        symlink("/tmp", root.join("top")).unwrap();
        assert_eq!(links.on_the_way(root, "top"), Some("top".into()));
    }
}
