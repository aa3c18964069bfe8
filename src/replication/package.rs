//! `repro package`: a self-contained replication package of an up-to-date pipeline.
//!
//! Owns: choosing what goes into a package (pipeline file, params files, stage specs and scripts,
//! the data that may be shared, every recorded output, `repro.lock`, the embedded repro source),
//! the generated `run.sh`, the checksum manifests (`MANIFEST.sha256`, `sha256sum -c` compatible,
//! and `MANIFEST.blake3`, `b3sum -c` compatible), and writing the package as a folder or as a
//! deterministic zip (sorted entries, fixed 1980-01-01 timestamps, fixed permissions). Also the
//! file helpers `verify` shares (listing files, hashing, manifests). Deliberately does not own:
//! the README's text (`readme`), rebuilding and comparing (`verify`), or what is stale (`status`).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::replication::readme::{self, Facts};
use repro_engine::lock::{self, LockFile};
use repro_engine::pipeline::{path_within, Pipeline};
use repro_engine::store::Store;
use repro_kind::diag::{Diagnostic, Failure};

/// Names the package itself uses at its top level; project files may not take them.
pub const MANIFEST_SHA256: &str = "MANIFEST.sha256";
pub const MANIFEST_BLAKE3: &str = "MANIFEST.blake3";
const RESERVED: &[&str] = &[
    "README.md",
    "run.sh",
    MANIFEST_SHA256,
    MANIFEST_BLAKE3,
    "repro-src",
];

#[derive(Debug, Clone)]
pub struct PackageConfig {
    /// A folder, or a file ending in `.zip`.
    pub out: PathBuf,
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
    require_up_to_date(p)?;
    refuse_to_overwrite_the_project(&p.root, &cfg.out)?;
    let lockfile = lock::read(&p.lock_path())?;
    let (project_files, withheld) = project_files(p, &lockfile)?;
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
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

    let mut sizes = BTreeMap::new();
    for (path, e) in &entries {
        sizes.insert(path.clone(), content_len(&e.content)?);
    }
    let facts = Facts {
        pipeline_file: file_name(&p.file),
        repro_version: env!("CARGO_PKG_VERSION").to_string(),
        rustc_version: crate::replication::srcpack::RUSTC_VERSION.to_string(),
        machine: readme::this_machine(),
        runtimes: last_runtimes(&Store::new(&p.root)),
        sizes,
        withheld,
    };
    let text = readme::render(p, &lockfile, &facts);
    let gaps = readme::problems(&text);
    entries.insert("README.md".into(), generated(text.into_bytes()));
    entries.insert(
        "run.sh".into(),
        Entry {
            content: Content::Mem(run_script(&facts.pipeline_file).into_bytes()),
            executable: true,
        },
    );
    let (sha, b3) = manifests(&entries)?;
    entries.insert(MANIFEST_SHA256.into(), generated(sha.into_bytes()));
    entries.insert(MANIFEST_BLAKE3.into(), generated(b3.into_bytes()));

    let is_zip = cfg
        .out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
    let written = if is_zip {
        write_zip(&cfg.out, &entries)
    } else {
        write_dir(&cfg.out, &entries)
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
    if !facts.withheld.is_empty() {
        summary.push_str(&format!(
            "withheld (sources not provided; see README.md): {}\n",
            facts.withheld.join(", ")
        ));
    }
    for g in &gaps {
        summary.push_str(&format!("README.md is incomplete: {g}\n"));
    }
    if !gaps.is_empty() {
        summary.push_str("run `repro lint` to see where the pipeline lacks these facts\n");
    }
    Ok(summary)
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

/// The project files a package holds (pipeline and lock, params files, the files the stages
/// start from, the data of provided sources, every recorded output), and, apart, the files
/// of sources that are not provided (sorted).
fn project_files(p: &Pipeline, lockfile: &LockFile) -> Result<(Vec<String>, Vec<String>), Failure> {
    let mut files = vec![file_name(&p.file), file_name(&p.lock_path())];
    files.extend(p.params_files.iter().cloned());
    let withheld_roots: Vec<&str> = p
        .sources
        .iter()
        .filter(|s| !s.provided)
        .flat_map(|s| s.files.iter().map(String::as_str))
        .collect();
    let mut inputs: Vec<String> = p.source_deps();
    inputs.extend(
        p.sources
            .iter()
            .filter(|s| s.provided)
            .flat_map(|s| s.files.iter().cloned()),
    );
    let mut withheld = Vec::new();
    for rel in inputs {
        for f in list_files(&p.root, &rel).map_err(|e| read_err(&rel, &e))? {
            if withheld_roots.iter().any(|w| path_within(&f, w)) {
                withheld.push(f);
            } else {
                files.push(f);
            }
        }
    }
    for entry in lockfile.stages.values() {
        for out in entry.outs.keys() {
            files.extend(list_files(&p.root, out).map_err(|e| read_err(out, &e))?);
        }
    }
    withheld.sort();
    withheld.dedup();
    Ok((files, withheld))
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

/// The master script: builds the packaged repro and rebuilds everything from scratch.
fn run_script(pipeline_file: &str) -> String {
    format!(
        "#!/bin/sh\n\
         # Master script of this replication package (written by `repro package`).\n\
         # Builds repro from repro-src/ with the recorded Cargo.lock, rebuilds every stage in a clean\n\
         # temporary folder and compares every output byte for byte with repro.lock.\n\
         set -eu\n\
         cd \"$(dirname \"$0\")\"\n\
         cargo build --release --locked --manifest-path repro-src/Cargo.toml\n\
         cargo run --release --locked --quiet --manifest-path repro-src/Cargo.toml -- -f {pipeline_file} verify .\n"
    )
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

fn write_dir(out: &Path, entries: &BTreeMap<String, Entry>) -> io::Result<()> {
    if out.exists() {
        let empty = fs::read_dir(out)?.next().is_none();
        if !empty && !out.join(MANIFEST_SHA256).is_file() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the folder exists, is not empty and is not a repro package; choose another `--out`",
            ));
        }
        // An earlier package: replace it whole, so no stale file survives.
        fs::remove_dir_all(out)?;
    }
    fs::create_dir_all(out)?;
    for (path, e) in entries {
        let dest = out.join(path);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut f = fs::File::create(&dest)?;
        io::copy(&mut open(&e.content)?, &mut f)?;
        use std::os::unix::fs::PermissionsExt;
        let mode = if e.executable { 0o755 } else { 0o644 };
        fs::set_permissions(&dest, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

fn write_zip(out: &Path, entries: &BTreeMap<String, Entry>) -> io::Result<()> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    let tmp = out.with_extension("zip.tmp");
    {
        let file = fs::File::create(&tmp)?;
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
        w.flush()?;
    }
    fs::rename(&tmp, out)
}

pub fn zip_err(e: zip::result::ZipError) -> io::Error {
    io::Error::other(e.to_string())
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
