//! `repro package`: a self-contained replication package of an up-to-date pipeline.
//!
//! Owns: choosing what goes into a package (pipeline file, params files, stage specs and scripts,
//! the data that may be shared, every recorded output, `repro.lock`, the embedded repro source),
//! the generated `run.sh`, the checksum manifests (`MANIFEST.sha256`, `sha256sum -c` compatible,
//! and `MANIFEST.blake3`, `b3sum -c` compatible), and writing the package as a folder or as a
//! deterministic zip (sorted entries, fixed 1980-01-01 timestamps, fixed permissions). Also the
//! file helpers `verify` shares (listing files, hashing, manifests, keeping paths inside the
//! project), and refusing an `--out` that is not an unchanged package repro wrote (its marker
//! `.repro-package` and a manifest listing exactly its files; `docs/reliability.md`). Only the
//! pipeline's current stages are packaged, and only paths inside the project. Deliberately does not own:
//! the README's text (`readme`), rebuilding and comparing (`verify`), or what is stale (`status`).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::replication::archive::{check_relative, zip_err};
use crate::replication::files::{digests, list_files, MARKER};
use crate::replication::readme;
use crate::replication::readme_inputs::{self, Facts};
use repro_engine::lock::{self, LockFile};
use repro_engine::pipeline::{path_within, Pipeline};
use repro_engine::store::Store;
use repro_kind::diag::{Diagnostic, Failure};

/// Names the package itself uses at its top level; project files may not take them.
pub const MANIFEST_SHA256: &str = "MANIFEST.sha256";
pub const MANIFEST_BLAKE3: &str = "MANIFEST.blake3";
const MARKER_TEXT: &str = "This folder is a replication package written by `repro package`.\n\
    `repro package` replaces it only while MANIFEST.sha256 lists exactly its files, each unchanged.\n";
const RESERVED: &[&str] = &[
    MARKER,
    "README.md",
    "run.sh",
    MANIFEST_SHA256,
    MANIFEST_BLAKE3,
    "repro-src",
    crate::replication::runsh::BIN_DIR,
];

#[derive(Debug, Clone)]
pub struct PackageConfig {
    /// A folder, or a file ending in `.zip`.
    pub out: PathBuf,
    /// Vendor the registry crates into `repro-src/vendor/` (`cargo vendor`), so the source builds
    /// with no network; false (`--no-vendor`) keeps the package small and the build needs
    /// crates.io.
    pub vendor: bool,
}

/// What a package holds at one path.
enum Content {
    Disk(PathBuf),
    Mem(Vec<u8>),
    Static(&'static [u8]),
}

struct Entry {
    content: Content,
    executable: bool,
}

/// Packages the pipeline; returns the summary printed on success.
pub fn package(p: &Pipeline, cfg: &PackageConfig) -> Result<String, Failure> {
    refuse_to_overwrite_the_project(&p.root, &cfg.out)?;
    let pipeline_file = quotable_file_name(&p.file)?;
    // The lock is checked before anything else reads it: a path it names is opened below.
    let lockfile = current_lock(p, lock::read(&p.lock_path())?)?;
    require_up_to_date(p)?;
    let is_zip = cfg
        .out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
    let existing = check_target(&cfg.out, is_zip)?;
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    let withheld = add_project_files(p, &lockfile, &mut entries)?;
    let shipped = crate::replication::shipped::this_binary()?;
    // Kept alive until the package is written: the vendored files are read from it.
    let vendored = if cfg.vendor {
        Some(crate::replication::vendor::vendor()?)
    } else {
        None
    };
    add_source(&mut entries, &shipped, vendored.as_ref())?;

    let mut sizes = BTreeMap::new();
    for (path, e) in &entries {
        sizes.insert(path.clone(), content_len(&e.content)?);
    }
    let facts = Facts {
        pipeline_file,
        repro_version: env!("CARGO_PKG_VERSION").to_string(),
        rustc_version: crate::replication::srcpack::RUSTC_VERSION.to_string(),
        machine: readme_inputs::this_machine(),
        runtimes: last_runtimes(&Store::new(&p.root)),
        memory: last_memory(&Store::new(&p.root)),
        sizes,
        withheld,
        shipped: shipped.clone(),
        vendored: vendored.is_some(),
    };
    let text = readme::render(p, &lockfile, &facts);
    let gaps = readme::problems(&text);
    entries.insert("README.md".into(), generated(text.into_bytes()));
    entries.insert(
        "run.sh".into(),
        Entry {
            content: Content::Mem(
                crate::replication::runsh::render(&crate::replication::runsh::RunScript {
                    pipeline_file: &facts.pipeline_file,
                    shipped: &shipped,
                    vendored: vendored.is_some(),
                })
                .into_bytes(),
            ),
            executable: true,
        },
    );
    let (sha, b3) = manifests(&entries)?;
    entries.insert(MANIFEST_SHA256.into(), generated(sha.into_bytes()));
    entries.insert(MANIFEST_BLAKE3.into(), generated(b3.into_bytes()));

    let written = if is_zip {
        write_zip(&cfg.out, &entries)
    } else {
        write_dir(&cfg.out, existing, &entries)
    };
    written.map_err(|e| {
        Failure::io(
            format!("cannot write the package `{}`", cfg.out.display()),
            &e,
        )
    })?;
    let outputs: usize = lockfile.stages.values().map(|e| e.outs.len()).sum();
    let mut summary = format!(
        "packaged {} stages, {} outputs and {} files in `{}`\n",
        p.stages.len(),
        outputs,
        entries.len(),
        cfg.out.display()
    );
    summary.push_str(&summary_notes(vendored.as_ref(), &facts.withheld, &gaps));
    Ok(summary)
}

/// The pipeline file's name, which run.sh and the README quote in shell commands.
fn quotable_file_name(file: &Path) -> Result<String, Failure> {
    let name = file_name(file);
    if name.chars().any(char::is_control) {
        return Err(Failure::usage(
            Diagnostic::new(format!(
                "cannot package `{}`: the pipeline file's name holds a control character",
                name.escape_debug()
            ))
            .hint("rename the pipeline file; run.sh and the README quote it in shell commands"),
        ));
    }
    Ok(name)
}

/// The project's files the package holds, the package's lock and its marker; returns the
/// sources withheld.
fn add_project_files(
    p: &Pipeline,
    lockfile: &lock::LockFile,
    entries: &mut BTreeMap<String, Entry>,
) -> Result<Vec<String>, Failure> {
    let (project_files, withheld) = project_files(p, lockfile)?;
    for rel in project_files {
        if let Some(r) = RESERVED.iter().find(|r| path_within(&rel, r)) {
            return Err(Failure::usage(
                Diagnostic::new(format!("cannot package `{rel}`"))
                    .cause(format!("the package itself uses `{r}`"))
                    .hint("rename the project file"),
            ));
        }
        let full = p.root.join(&rel);
        let executable = is_executable(&full);
        entries.insert(
            rel,
            Entry {
                content: Content::Disk(full),
                executable,
            },
        );
    }
    // The package's lock records the stages of this pipeline only.
    entries.insert(
        file_name(&p.lock_path()),
        generated(lock::render(lockfile).into_bytes()),
    );
    entries.insert(MARKER.into(), generated(MARKER_TEXT.as_bytes().to_vec()));
    Ok(withheld)
}

/// repro's own source (embedded in the binary), the binary itself, and the vendored crates when
/// there are any.
fn add_source(
    entries: &mut BTreeMap<String, Entry>,
    shipped: &crate::replication::shipped::Shipped,
    vendored: Option<&crate::replication::vendor::Vendored>,
) -> Result<(), Failure> {
    let src = crate::replication::srcpack::files().map_err(|e| {
        Failure::stage(Diagnostic::new("cannot read the embedded repro source").cause(e))
    })?;
    for f in src {
        entries.insert(
            format!("repro-src/{}", f.path),
            Entry {
                content: Content::Static(f.bytes),
                executable: f.executable,
            },
        );
    }
    entries.insert(
        crate::replication::runsh::BIN_PATH.into(),
        Entry {
            content: Content::Disk(shipped.path.clone()),
            executable: true,
        },
    );
    if let Some(v) = vendored {
        for rel in &v.files {
            let full = v.dir.0.join(rel);
            let executable = is_executable(&full);
            entries.insert(
                format!("repro-src/{rel}"),
                Entry {
                    content: Content::Disk(full),
                    executable,
                },
            );
        }
        entries.insert(
            "repro-src/.cargo/config.toml".into(),
            generated(v.config.clone().into_bytes()),
        );
    }
    Ok(())
}

/// The lines of the summary after the first: where the vendored crates came from, what was
/// withheld, and what the README lacks.
fn summary_notes(
    vendored: Option<&crate::replication::vendor::Vendored>,
    withheld: &[String],
    gaps: &[String],
) -> String {
    let mut notes = String::new();
    if let Some(v) = vendored {
        notes.push_str(&format!(
            "vendored the crates of `Cargo.lock` into `repro-src/vendor/`{}\n",
            if v.downloaded {
                " (fetched from crates.io what cargo's cache lacked)"
            } else {
                " (from cargo's cache)"
            }
        ));
    }
    if !withheld.is_empty() {
        notes.push_str(&format!(
            "withheld (sources not provided; see README.md): {}\n",
            withheld.join(", ")
        ));
    }
    for g in gaps {
        notes.push_str(&format!("README.md is incomplete: {g}\n"));
    }
    if !gaps.is_empty() {
        notes.push_str("run `repro lint` to see where the pipeline lacks these facts\n");
    }
    notes
}

fn require_up_to_date(p: &Pipeline) -> Result<(), Failure> {
    let all: Vec<usize> = (0..p.stages.len()).collect();
    let stale: Vec<String> = repro_engine::status::compute(p, &all)?
        .into_iter()
        .filter(|s| s.stale)
        .map(|s| format!("`{}`", s.name))
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    Err(Failure::stage(
        Diagnostic::new("cannot package a pipeline that is not up to date")
            .cause(format!("stale stages: {}", stale.join(", ")))
            .hint("run `repro run` first, so the package holds the outputs its lock records"),
    ))
}

/// The project files a package holds (pipeline file, params files, the files the stages start
/// from, the data of provided sources, every output the lock records for the pipeline's stages),
/// and, apart, the files of sources that are not provided (sorted). Every path must stay inside
/// the project, also through symlinks.
fn project_files(p: &Pipeline, lockfile: &LockFile) -> Result<(Vec<String>, Vec<String>), Failure> {
    let root =
        fs::canonicalize(&p.root).map_err(|e| read_err(&p.root.display().to_string(), &e))?;
    let mut files = vec![file_name(&p.file)];
    let withheld_roots: Vec<&str> = p
        .sources
        .iter()
        .filter(|s| !s.provided)
        .flat_map(|s| s.files.iter().map(String::as_str))
        .collect();
    let mut inputs: Vec<String> = p.params_files.clone();
    inputs.extend(p.source_deps());
    inputs.extend(
        p.sources
            .iter()
            .filter(|s| s.provided)
            .flat_map(|s| s.files.iter().cloned()),
    );
    let mut withheld = Vec::new();
    for rel in inputs {
        if withheld_roots.iter().any(|w| path_within(&rel, w)) {
            // Not provided: listed, never opened.
            withheld.extend(list_files(&p.root, &rel).map_err(|e| read_err(&rel, &e))?);
            continue;
        }
        for f in inside_files(&root, &rel)? {
            if withheld_roots.iter().any(|w| path_within(&f, w)) {
                withheld.push(f);
            } else {
                files.push(f);
            }
        }
    }
    for entry in lockfile.stages.values() {
        for out in entry.outs.keys() {
            files.extend(inside_files(&root, out)?);
        }
    }
    withheld.sort();
    withheld.dedup();
    Ok((files, withheld))
}

/// `repro.lock` cut to the stages of this pipeline, after checking that every path it records
/// (for any stage) is a normalised relative path: a lock naming `../x` or `/x` was edited or is
/// corrupt, and packaging it would copy (or write) outside the project.
fn current_lock(p: &Pipeline, mut lockfile: LockFile) -> Result<LockFile, Failure> {
    let lock_name = file_name(&p.lock_path());
    for (stage, entry) in &lockfile.stages {
        for path in entry.outs.keys().chain(entry.deps.keys()) {
            if let Err(why) = check_relative(path) {
                return Err(Failure::usage(
                    Diagnostic::new(format!(
                        "`{lock_name}` records the path `{path}` for stage `{stage}`"
                    ))
                    .cause(why)
                    .hint(format!(
                        "`{lock_name}` was edited or is corrupt: remove it and run `repro run`"
                    )),
                ));
            }
        }
    }
    lockfile
        .stages
        .retain(|name, _| p.stages.iter().any(|s| s.name == *name));
    Ok(lockfile)
}

/// The files at `rel` (itself, or every file in the folder), sorted; none if absent. Each must
/// resolve, through any symlink, to a path inside `root` (canonical); a folder is entered once.
pub fn inside_files(root: &Path, rel: &str) -> Result<Vec<String>, Failure> {
    check_relative(rel).map_err(|why| {
        Failure::usage(Diagnostic::new(format!("cannot package `{rel}`")).cause(why))
    })?;
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    walk_inside(root, rel, &mut seen, &mut out)?;
    Ok(out)
}

fn walk_inside(
    root: &Path,
    rel: &str,
    seen: &mut std::collections::BTreeSet<PathBuf>,
    out: &mut Vec<String>,
) -> Result<(), Failure> {
    let full = root.join(rel);
    let real = match fs::canonicalize(&full) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Absent (or a dangling symlink): nothing to package; a link is still refused.
            if fs::symlink_metadata(&full).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Failure::usage(
                    Diagnostic::new(format!("cannot package `{rel}`"))
                        .cause("it is a symlink to nothing")
                        .hint("remove the symlink, or put the file it stands for in its place"),
                ));
            }
            return Ok(());
        }
        Err(e) => return Err(read_err(rel, &e)),
    };
    if !real.starts_with(root) {
        return Err(outside(rel, &format!("`{}`", real.display())));
    }
    let meta = fs::metadata(&real).map_err(|e| read_err(rel, &e))?;
    if !meta.is_dir() {
        out.push(rel.to_string());
        return Ok(());
    }
    if !seen.insert(real.clone()) {
        return Err(Failure::usage(
            Diagnostic::new(format!("cannot package `{rel}`"))
                .cause("a symlink leads back to a folder already packaged")
                .hint("replace the symlink with the files it stands for"),
        ));
    }
    let mut names: Vec<String> = fs::read_dir(&real)
        .and_then(|d| {
            d.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect::<Result<_, _>>()
        })
        .map_err(|e| read_err(rel, &e))?;
    names.sort();
    for name in names {
        walk_inside(root, &format!("{rel}/{name}"), seen, out)?;
    }
    Ok(())
}

fn outside(rel: &str, target: &str) -> Failure {
    Failure::usage(
        Diagnostic::new(format!("cannot package `{rel}`"))
            .cause(format!("it resolves to {target}, outside the project"))
            .hint("copy the file into the project instead of linking to it"),
    )
}

/// Replacing an earlier package removes its folder: never let that folder hold the project.
fn refuse_to_overwrite_the_project(root: &Path, out: &Path) -> Result<(), Failure> {
    let (Ok(root), Ok(out)) = (fs::canonicalize(root), absolute_lexical(out)) else {
        return Ok(());
    };
    if root.starts_with(&out) {
        return Err(Failure::usage(
            Diagnostic::new(format!("cannot write the package to `{}`", out.display()))
                .cause("that folder holds the project itself")
                .hint("pass a new folder or a `.zip` file to `--out`"),
        ));
    }
    Ok(())
}

/// `path` made absolute against the current folder, with `.` and `..` resolved as far as the
/// folders exist (the package folder itself may not exist yet).
fn absolute_lexical(path: &Path) -> io::Result<PathBuf> {
    let abs = std::path::absolute(path)?;
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) if parent.exists() => Ok(fs::canonicalize(parent)?.join(name)),
        _ => fs::canonicalize(&abs).or(Ok(abs)),
    }
}

/// The seconds of each stage's last real run, from the run log (`cache/runs.jsonl`).
fn last_runtimes(store: &Store) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in store.run_log() {
        if line["outcome"] != "ran" {
            continue;
        }
        if let (Some(stage), Some(seconds)) = (line["stage"].as_str(), line["seconds"].as_f64()) {
            out.insert(stage.to_string(), seconds);
        }
    }
    out
}

/// The peak memory of each stage's last real run and what it measured (`command` or
/// `process`), from the run log; stages logged before repro recorded it are absent.
fn last_memory(store: &Store) -> BTreeMap<String, (u64, String)> {
    let mut out = BTreeMap::new();
    for line in store.run_log() {
        if line["outcome"] != "ran" {
            continue;
        }
        let Some(stage) = line["stage"].as_str() else {
            continue;
        };
        match (line["max_rss_bytes"].as_u64(), line["max_rss_of"].as_str()) {
            (Some(bytes), Some(of)) => out.insert(stage.to_string(), (bytes, of.to_string())),
            _ => out.remove(stage),
        };
    }
    out
}

/// A file the package writes itself (not executable).
fn generated(bytes: Vec<u8>) -> Entry {
    Entry {
        content: Content::Mem(bytes),
        executable: false,
    }
}

/// The last part of a path, as text.
pub fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn read_err(rel: &str, e: &io::Error) -> Failure {
    Failure::io(format!("cannot read `{rel}`"), e)
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p)
        .map(|m| m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn content_len(c: &Content) -> Result<u64, Failure> {
    match c {
        Content::Disk(p) => fs::metadata(p)
            .map(|m| m.len())
            .map_err(|e| Failure::io(format!("cannot read `{}`", p.display()), &e)),
        Content::Mem(b) => Ok(b.len() as u64),
        Content::Static(b) => Ok(b.len() as u64),
    }
}

fn open(c: &Content) -> io::Result<Box<dyn Read + '_>> {
    Ok(match c {
        Content::Disk(p) => Box::new(fs::File::open(p)?),
        Content::Mem(b) => Box::new(b.as_slice()),
        Content::Static(b) => Box::new(*b),
    })
}

/// `MANIFEST.sha256` and `MANIFEST.blake3`: one `HASH  PATH` line per file, sorted by path.
fn manifests(entries: &BTreeMap<String, Entry>) -> Result<(String, String), Failure> {
    let mut sha = String::new();
    let mut b3 = String::new();
    for (path, e) in entries {
        if path.contains('\n') || path.contains('\\') {
            return Err(Failure::usage(Diagnostic::new(format!(
                "cannot package `{}`: a file name with a newline or backslash cannot be listed in a checksum manifest",
                path.escape_debug()
            ))));
        }
        let (s, b) = open(&e.content)
            .and_then(digests)
            .map_err(|err| Failure::io(format!("cannot read `{path}`"), &err))?;
        sha.push_str(&format!("{s}  {path}\n"));
        b3.push_str(&format!("{b}  {path}\n"));
    }
    Ok((sha, b3))
}

/// Reads a `HASH  PATH` manifest into path -> hash.
pub fn parse_manifest(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(h, p)| (p.trim_start_matches('*').to_string(), h.to_string()))
        .collect()
}

/// What is at `--out` before writing.
pub enum Existing {
    /// Nothing, or an empty folder.
    Nothing,
    /// A package repro wrote (folder), with every file it holds.
    OurFolder(Vec<String>),
    /// A package zip repro wrote.
    OurZip,
}

/// Refuses an `--out` that holds anything repro did not write: a folder or zip is replaced only
/// when it is a package repro wrote, unchanged (its marker, and a manifest listing exactly its
/// files, each with its content).
fn check_target(out: &Path, is_zip: bool) -> Result<Existing, Failure> {
    let meta = match fs::symlink_metadata(out) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if is_zip {
                let tmp = zip_tmp(out);
                if fs::symlink_metadata(&tmp).is_ok() {
                    return Err(refuse(
                        out,
                        format!(
                            "`{}` exists and repro writes the zip there first",
                            tmp.display()
                        ),
                        "remove that file if it is a leftover, or pass another `--out`",
                    ));
                }
            }
            return Ok(Existing::Nothing);
        }
        Err(e) => return Err(Failure::io(format!("cannot read `{}`", out.display()), &e)),
    };
    let foreign = "pass a new folder or `.zip` file to `--out`, or remove that one yourself if you no longer need what it holds";
    if meta.file_type().is_symlink() {
        return Err(refuse(out, "it is a symbolic link".into(), foreign));
    }
    if is_zip {
        if !meta.is_file() {
            return Err(refuse(out, "it exists and is not a file".into(), foreign));
        }
        return match our_zip(out) {
            Ok(()) => check_target_tmp(out).map(|()| Existing::OurZip),
            Err(why) => Err(refuse(
                out,
                format!("it exists and is not a package zip written by repro: {why}"),
                foreign,
            )),
        };
    }
    if !meta.is_dir() {
        return Err(refuse(out, "it exists and is not a folder".into(), foreign));
    }
    let empty = fs::read_dir(out)
        .map_err(|e| Failure::io(format!("cannot read `{}`", out.display()), &e))?
        .next()
        .is_none();
    if empty {
        return Ok(Existing::Nothing);
    }
    match our_folder(out) {
        Ok(files) => Ok(Existing::OurFolder(files)),
        Err(why) => Err(refuse(
            out,
            format!(
                "the folder is not empty and is not an unchanged package written by repro: {why}"
            ),
            foreign,
        )),
    }
}

fn check_target_tmp(out: &Path) -> Result<(), Failure> {
    let tmp = zip_tmp(out);
    if fs::symlink_metadata(&tmp).is_ok() {
        return Err(refuse(
            out,
            format!(
                "`{}` exists and repro writes the zip there first",
                tmp.display()
            ),
            "remove that file if it is a leftover, or pass another `--out`",
        ));
    }
    Ok(())
}

fn refuse(out: &Path, why: String, hint: &str) -> Failure {
    Failure::usage(
        Diagnostic::new(format!("cannot write the package to `{}`", out.display()))
            .cause(why)
            .hint(hint),
    )
}

/// Every file under `dir` (relative paths, sorted); a symlink or other special file is an error
/// naming it.
fn regular_files(dir: &Path, rel: &str, out: &mut Vec<String>) -> Result<(), String> {
    let full = if rel.is_empty() {
        dir.to_path_buf()
    } else {
        dir.join(rel)
    };
    let mut names: Vec<String> = fs::read_dir(&full)
        .and_then(|d| {
            d.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect::<Result<_, _>>()
        })
        .map_err(|e| format!("cannot read `{rel}`: {e}"))?;
    names.sort();
    for name in names {
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let meta = fs::symlink_metadata(dir.join(&path)).map_err(|e| format!("`{path}`: {e}"))?;
        if meta.is_dir() {
            regular_files(dir, &path, out)?;
        } else if meta.is_file() {
            out.push(path);
        } else {
            return Err(format!("`{path}` is not a regular file"));
        }
    }
    Ok(())
}

/// Ok with its files when `dir` is a package repro wrote and nobody changed since.
fn our_folder(dir: &Path) -> Result<Vec<String>, String> {
    let mut files = Vec::new();
    regular_files(dir, "", &mut files)?;
    let read = |name: &str| fs::read(dir.join(name)).ok();
    let listed = check_listing(&files, read)?;
    for (path, want) in &listed {
        let got = fs::File::open(dir.join(path))
            .and_then(digests)
            .map_err(|e| format!("cannot read `{path}`: {e}"))?;
        if got.0 != *want {
            return Err(format!("`{path}` differs from its `{MANIFEST_SHA256}`"));
        }
    }
    Ok(files)
}

/// Ok when the zip at `path` is a package repro wrote and nobody changed since.
fn our_zip(path: &Path) -> Result<(), String> {
    let file = fs::File::open(path).map_err(|e| e.to_string())?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| e.to_string())?;
    let mut contents: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).map_err(|e| e.to_string())?;
        let name = f.name().map_err(|e| e.to_string())?.to_string();
        if !f.is_file() {
            return Err(format!("`{name}` is not a regular file"));
        }
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        contents.insert(name, bytes);
    }
    let names: Vec<String> = contents.keys().cloned().collect();
    let listed = check_listing(&names, |n| contents.get(n).cloned())?;
    for (name, want) in &listed {
        let got = digests(contents[name].as_slice()).map_err(|e| e.to_string())?;
        if got.0 != *want {
            return Err(format!("`{name}` differs from its `{MANIFEST_SHA256}`"));
        }
    }
    Ok(())
}

/// Checks the marker and that the manifest lists exactly `files` (besides the manifests);
/// returns the manifest (path -> sha256).
fn check_listing(
    files: &[String],
    read: impl Fn(&str) -> Option<Vec<u8>>,
) -> Result<BTreeMap<String, String>, String> {
    if read(MARKER).as_deref() != Some(MARKER_TEXT.as_bytes()) {
        return Err(format!("it has no `{MARKER}` written by repro"));
    }
    let manifest = read(MANIFEST_SHA256)
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| format!("it has no `{MANIFEST_SHA256}`"))?;
    let listed = parse_manifest(&manifest);
    for f in files {
        if f != MANIFEST_SHA256 && f != MANIFEST_BLAKE3 && !listed.contains_key(f) {
            return Err(format!("`{f}` is not listed in its `{MANIFEST_SHA256}`"));
        }
    }
    if let Some(missing) = listed.keys().find(|k| !files.contains(k)) {
        return Err(format!(
            "`{missing}` is listed in its `{MANIFEST_SHA256}` but absent"
        ));
    }
    Ok(listed)
}

fn write_dir(out: &Path, existing: Existing, entries: &BTreeMap<String, Entry>) -> io::Result<()> {
    let created = fs::symlink_metadata(out).is_err();
    if let Existing::OurFolder(files) = existing {
        // An earlier package, unchanged: remove exactly its files and the folders they leave
        // empty, so no stale file survives and nothing else is touched.
        for f in &files {
            fs::remove_file(out.join(f))?;
        }
        let mut dirs: Vec<&Path> = files
            .iter()
            .flat_map(|f| Path::new(f).ancestors().skip(1))
            .filter(|d| !d.as_os_str().is_empty())
            .collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        dirs.dedup();
        for d in dirs {
            match fs::remove_dir(out.join(d)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    fs::create_dir_all(out)?;
    // Interrupted, the half-written package goes: all of it if repro made the folder, else
    // what is inside it (repro wrote all of that).
    let _undo = if created {
        crate::replication::interrupt::remove_on_signal(out)
    } else {
        crate::replication::interrupt::empty_on_signal(out)
    };
    for (path, e) in entries {
        let dest = out.join(path);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut f = fs::File::create_new(&dest)?;
        io::copy(&mut open(&e.content)?, &mut f)?;
        use std::os::unix::fs::PermissionsExt;
        let mode = if e.executable { 0o755 } else { 0o644 };
        fs::set_permissions(&dest, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

fn zip_tmp(out: &Path) -> PathBuf {
    out.with_extension("zip.tmp")
}

fn write_zip(out: &Path, entries: &BTreeMap<String, Entry>) -> io::Result<()> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    let tmp = zip_tmp(out);
    // Never truncate a file repro did not make; interrupted, the partial zip goes.
    let file = fs::File::create_new(&tmp)?;
    let _undo = crate::replication::interrupt::remove_on_signal(&tmp);
    let written = (|| {
        let mut zip = zip::ZipWriter::new(io::BufWriter::new(file));
        for (path, e) in entries {
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .last_modified_time(zip::DateTime::DEFAULT)
                .system(zip::System::Unix)
                .unix_permissions(if e.executable { 0o755 } else { 0o644 })
                .large_file(content_len(&e.content).unwrap_or(0) >= u32::MAX as u64);
            zip.start_file(path.as_str(), options).map_err(zip_err)?;
            io::copy(&mut open(&e.content)?, &mut zip)?;
        }
        let mut w = zip.finish().map_err(zip_err)?;
        w.flush()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_known_values() {
        let (sha, b3) = digests(&b"abc"[..]).unwrap();
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(b3, blake3::hash(b"abc").to_hex().to_string());
    }

    #[test]
    fn manifest_lines_round_trip() {
        let text = "aa  output/x.csv\nbb *bin/y\n";
        let m = parse_manifest(text);
        assert_eq!(m.get("output/x.csv").map(String::as_str), Some("aa"));
        // `HASH *PATH` (binary mode) has one space: not our format, ignored.
        assert_eq!(m.len(), 1);
    }
}
