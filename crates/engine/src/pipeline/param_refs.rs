//! Params a stage names from files (`params: [key, file: [keys], file:]`), kept as references so
//! that they can be read again just before the stage runs: a params file that another stage
//! writes changes during a run, and DVC reads params when the stage runs, not when it loads.
//!
//! Owns: [`ParamRef`], reading a stage's references into named values, and the naming rule for a
//! key two files share. Deliberately does not own: parsing the `params` field or placing its
//! errors (`parse`), linking a params file to the stage that writes it (`graph`), or deciding
//! when to read again (the runner).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::params::Param;

/// One reference from a stage's `params` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamRef {
    /// The file as the pipeline writes it: the name a shared key is prefixed with.
    pub file: String,
    /// The file relative to the project root.
    pub path: String,
    /// The dotted key, or `None` for every top-level key of the file.
    pub key: Option<String>,
}

/// Reads every reference from the files as they are now, named as at load.
pub fn read(root: &Path, refs: &[ParamRef]) -> Result<BTreeMap<String, Param>, String> {
    let mut docs: HashMap<&str, Param> = HashMap::new();
    let mut found = Vec::new();
    for r in refs {
        if !docs.contains_key(r.path.as_str()) {
            let node = crate::params_file::read(root, &r.path)
                .map_err(|why| format!("cannot read params file `{}`: {why}", r.path))?;
            docs.insert(&r.path, Param::from_node(&node));
        }
        let doc = &docs[r.path.as_str()];
        match &r.key {
            None => {
                if let Param::Map(all) = doc {
                    found.extend(
                        all.iter()
                            .map(|(k, v)| (r.file.clone(), k.clone(), v.clone())),
                    );
                }
            }
            Some(key) => match doc.lookup(key) {
                Some(v) => found.push((r.file.clone(), key.clone(), v.clone())),
                None => return Err(format!("`{}` does not define param `{key}`", r.path)),
            },
        }
    }
    Ok(name_params(found))
}

/// Names params read from files: a key by itself, unless two files give the same key, which
/// then each go by `file:key` (DVC keeps params per file; one file must not hide another's).
pub(super) fn name_params(found: Vec<(String, String, Param)>) -> BTreeMap<String, Param> {
    let mut files_of: HashMap<&str, Vec<&str>> = HashMap::new();
    for (file, key, _) in &found {
        let files = files_of.entry(key.as_str()).or_default();
        if !files.contains(&file.as_str()) {
            files.push(file.as_str());
        }
    }
    let clash: Vec<String> = files_of
        .iter()
        .filter(|(_, files)| files.len() > 1)
        .map(|(k, _)| k.to_string())
        .collect();
    found
        .into_iter()
        .map(|(file, key, v)| {
            if clash.contains(&key) {
                (format!("{file}:{key}"), v)
            } else {
                (key, v)
            }
        })
        .collect()
}
