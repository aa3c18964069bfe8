//! `repro verify [PACKAGE | DIR | FILE.zip]`: does the package reproduce?
//!
//! Owns: checking a package's checksum manifests, copying what a rebuild starts from (pipeline
//! file, params files, specs, scripts, data; never outputs or `cache/`) into a fresh temporary
//! folder, rebuilding every stage there with the ordinary runner, and comparing each output
//! recorded in `repro.lock` with the rebuilt bytes; for a difference it names the file and, for a
//! CSV table, the first differing cell (for other text, the first differing line). Deliberately
//! Also: every file of a package must be listed in its manifest; a zip is unpacked here, entry
//! by entry, refusing absolute paths, `..` and symlinks; and the first `repro verify` supervises
//! a second in its own process group, so an interrupt stops every command and removes every
//! temporary file ([`supervise`]). Deliberately
//! does not own: running stages (`runner`) or writing packages (`package`).

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::replication::archive;
use crate::replication::files;
use crate::replication::interrupt::TempDir;
use crate::replication::package::{self, file_name, MANIFEST_BLAKE3, MANIFEST_SHA256};
use crate::ui::{Ui, UiConfig};
use repro_engine::fsstate::{self, StatCache};
use repro_engine::lock;
use repro_engine::pipeline::{path_within, Pipeline};
use repro_engine::runner::{self, RunConfig};
use repro_kind::diag::{Diagnostic, Failure};

#[derive(Debug, Clone)]
pub struct VerifyConfig {
    /// A package folder, a project folder, or a package zip.
    pub target: PathBuf,
    /// The pipeline file's name inside the target.
    pub pipeline_file: PathBuf,
    pub jobs: usize,
    /// The folder the temporary folders go in (the supervising `repro verify` made it and
    /// removes it, also when interrupted); `None`: the system's temporary folder.
    pub scratch: Option<PathBuf>,
}

/// The environment variable by which the supervising `repro verify` hands its scratch folder to
/// the `repro verify` it runs (see [`supervise`]).
pub const SCRATCH_ENV: &str = "REPRO_VERIFY_SCRATCH";
const SCRATCH_PREFIX: &str = "repro-verify-";

/// Runs this `repro verify` again as a child in its own process group, with a scratch folder
/// (under the system's temporary folder) for every temporary file, and waits for it. On SIGINT,
/// SIGTERM or SIGHUP it stops the child's whole process group (the rebuild and every command it
/// started) and removes the scratch folder, then exits with 128 + the signal. Returns the
/// child's exit code; `None` when the child cannot be started (then verify runs in this process,
/// still removing its scratch folder when interrupted, but unable to stop running commands).
pub fn supervise() -> Option<i32> {
    use std::os::unix::process::CommandExt;
    sweep_scratch();
    let exe = std::env::current_exe().ok()?;
    let scratch = TempDir::new(None, "verify").ok()?;
    let _undo = crate::replication::interrupt::remove_on_signal(&scratch.0);
    let mut child = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(SCRATCH_ENV, &scratch.0)
        .process_group(0)
        .spawn()
        .ok()?;
    let _stop = crate::replication::interrupt::stop_group_on_signal(child.id());
    let status = child.wait().ok()?;
    // Commands the rebuild left running in the background go too.
    crate::replication::interrupt::signal_group(child.id(), "KILL");
    Some(status.code().unwrap_or(1))
}

/// Removes scratch folders of `repro verify` processes that no longer exist (killed with
/// SIGKILL, which no handler sees). Only folders named by this code, whose process is gone.
fn sweep_scratch() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    if !Path::new("/proc/self").exists() {
        return;
    }
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(SCRATCH_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let ours = e.file_type().is_ok_and(|t| t.is_dir())
            && fs::metadata(e.path()).is_ok_and(|m| {
                use std::os::unix::fs::MetadataExt;
                m.uid()
                    == fs::metadata("/proc/self")
                        .map(|s| s.uid())
                        .unwrap_or(u32::MAX)
            });
        if ours && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// What verification found: the report for stdout, and the failure when anything did not
/// reproduce (exit code 1).
pub struct Verified {
    pub report: String,
    pub failure: Option<Failure>,
}

/// Verifies the target. `Err` is for problems before any comparison (bad target, bad pipeline).
pub fn verify(cfg: &VerifyConfig) -> Result<Verified, Failure> {
    let mut report = String::new();
    let mut differences = 0usize;
    let (pkg_root, unzipped) = package_root(cfg)?;

    let p = crate::kinds::load_pipeline(&pkg_root.join(&cfg.pipeline_file))?;

    // 1. The package's own integrity: every file listed, every listed file unchanged. The data
    // of sources that are not provided are the replicator's to add.
    let files: Vec<String> = match &unzipped {
        Some((_, entries)) => entries.clone(),
        None => folder_files(&pkg_root),
    }
    .into_iter()
    .filter(|f| {
        !p.sources
            .iter()
            .filter(|s| !s.provided)
            .any(|s| s.files.iter().any(|w| path_within(f, w)))
    })
    .collect();
    differences += check_manifests(&pkg_root, &files, &mut report)?;

    // 2. Rebuild from scratch.
    let lockfile = lock::read(&p.lock_path())?;
    let recorded: Vec<(String, String, bool)> = lockfile
        .stages
        .iter()
        .filter(|(name, _)| p.stages.iter().any(|s| s.name == **name))
        .map(|(_, e)| e)
        .flat_map(|e| {
            e.outs
                .iter()
                .map(|(k, o)| (k.clone(), o.hash.clone(), o.dir))
        })
        .collect();
    if recorded.is_empty() {
        return Err(Failure::stage(
            Diagnostic::new(format!(
                "`{}` records no outputs to compare with",
                p.lock_path().display()
            ))
            .hint("run `repro run` (and `repro package`) first"),
        ));
    }
    let build = TempDir::new(cfg.scratch.as_deref(), "build")
        .map_err(|e| Failure::io("cannot make a temporary folder", &e))?;
    let missing = copy_inputs(&p, &build.0)?;
    if !missing.is_empty() {
        for (file, why) in &missing {
            let _ = writeln!(report, "missing input `{file}`: {why}");
        }
        let failure = Failure::stage(
            Diagnostic::new(format!(
                "cannot rebuild: {} input file(s) are not in `{}`",
                missing.len(),
                cfg.target.display()
            ))
            .hint("obtain the data that are not provided (see README.md) and place them at the paths listed"),
        );
        return Ok(Verified {
            report,
            failure: Some(failure),
        });
    }
    let _ = writeln!(
        report,
        "rebuilding {} stages from scratch in a temporary folder",
        p.stages.len()
    );
    let rebuilt_pipeline = crate::kinds::load_pipeline(&build.0.join(file_name(&p.file)))?;
    let all: Vec<usize> = (0..rebuilt_pipeline.stages.len()).collect();
    let run_cfg = RunConfig {
        jobs: cfg.jobs.max(1),
        force: false,
        keep_going: true,
        wait: false,
        // The rebuild is in a local temporary folder: every stage runs here.
        executor: Some(repro_engine::pipeline::ExecutorKind::Local),
        node_command: Vec::new(),
        // A verification rebuilds everything itself: it never takes results from a remote.
        remote: None,
    };
    let mut ui = Ui::new(UiConfig {
        verbose: false,
        plain: true,
    });
    if let Err(f) = runner::run(&rebuilt_pipeline, &all, &run_cfg, &mut ui) {
        for d in &f.diagnostics {
            differences += 1;
            let _ = writeln!(report, "FAILED {}", d.message);
            for c in &d.causes {
                let _ = writeln!(report, "  {c}");
            }
        }
    }

    // 3. Compare every recorded output with the rebuilt bytes (and with the package's copy).
    differences += compare_outputs(&recorded, &pkg_root, &build.0, &mut report)?;
    let failure = (differences > 0).then(|| {
        Failure::stage(
            Diagnostic::new(format!(
                "verification failed: {differences} difference(s) in `{}`",
                cfg.target.display()
            ))
            .hint("each difference is listed above"),
        )
    });
    Ok(Verified { report, failure })
}

/// The folder of the package to verify: the target folder, or a zip unpacked into a temporary
/// folder (returned too, with the zip's files, so it lives as long as the verification).
#[allow(clippy::type_complexity)]
fn package_root(cfg: &VerifyConfig) -> Result<(PathBuf, Option<(TempDir, Vec<String>)>), Failure> {
    let is_zip = cfg.target.is_file()
        && cfg
            .target
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
    if is_zip {
        let dir = TempDir::new(cfg.scratch.as_deref(), "unzip")
            .map_err(|e| Failure::io("cannot make a temporary folder", &e))?;
        let files = archive::unzip(&cfg.target, &dir.0).map_err(|e| {
            Failure::stage(
                Diagnostic::new(format!("cannot unpack `{}`", cfg.target.display()))
                    .cause(e.to_string())
                    .hint("a package zip holds regular files at relative paths inside it only; get the zip `repro package` wrote"),
            )
        })?;
        let root = dir.0.clone();
        return Ok((root, Some((dir, files))));
    }
    if cfg.target.is_dir() {
        return Ok((cfg.target.clone(), None));
    }
    Err(Failure::usage(
        Diagnostic::new(format!(
            "`{}` is neither a folder nor a `.zip` package",
            cfg.target.display()
        ))
        .hint("pass the package folder or zip that `repro package` wrote, or `.`"),
    ))
}

/// What using a package folder adds to it, which its manifest cannot list: `cache/` (repro's
/// store, from `repro run` in the folder) and `repro-src/target/` (cargo's build, from `run.sh`).
const MADE_BY_USE: &[&str] = &["cache", "repro-src/target"];

/// Every file in a package folder (symlinks included, not followed), sorted, except those
/// under [`MADE_BY_USE`].
fn folder_files(root: &Path) -> Vec<String> {
    fn walk(root: &Path, rel: &str, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        }) else {
            return;
        };
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if MADE_BY_USE.contains(&path.as_str()) {
                continue;
            }
            match fs::symlink_metadata(root.join(&path)) {
                Ok(m) if m.is_dir() => walk(root, &path, out),
                Ok(_) => out.push(path),
                Err(_) => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(root, "", &mut out);
    out
}

/// Compares every recorded output (path, hash, folder) with the rebuilt bytes in `build` and
/// with the package's copy; reports each difference and returns how many there were.
fn compare_outputs(
    recorded: &[(String, String, bool)],
    pkg_root: &Path,
    build: &Path,
    report: &mut String,
) -> Result<usize, Failure> {
    let mut differences = 0usize;
    let stat = StatCache::default();
    let mut ok = 0usize;
    for (path, hash, _) in recorded {
        let rebuilt = fsstate::hash_path(build, path, &stat)
            .map_err(|e| Failure::io(format!("cannot read rebuilt `{path}`"), &e))?;
        let shipped = fsstate::hash_path(pkg_root, path, &stat)
            .map_err(|e| Failure::io(format!("cannot read `{path}`"), &e))?;
        let rebuilt_matches = rebuilt.hash() == Some(hash.as_str());
        // A package must ship what its lock records; a project folder may lack outputs.
        let shipped_matches = shipped.hash().is_none_or(|h| h == hash);
        if rebuilt_matches && shipped_matches {
            ok += 1;
            continue;
        }
        differences += 1;
        let (what, detail) = if rebuilt.hash().is_none() {
            ("was not rebuilt".to_string(), None)
        } else if !rebuilt_matches {
            (
                "differs from repro.lock when rebuilt".to_string(),
                first_difference(&pkg_root.join(path), &build.join(path)),
            )
        } else {
            (
                "in the package differs from repro.lock (the rebuild matches the lock)".to_string(),
                first_difference(&pkg_root.join(path), &build.join(path)),
            )
        };
        let _ = writeln!(report, "DIFFERS `{path}`: {what}");
        if let Some(d) = detail {
            let _ = writeln!(report, "  {d}");
        }
    }
    let _ = writeln!(
        report,
        "{ok} of {} outputs reproduce byte for byte",
        recorded.len()
    );
    Ok(differences)
}

/// Checks `MANIFEST.sha256` and `MANIFEST.blake3` if present; returns the number of problems.
/// Every file of the package (`files`) must be listed: each one that is not counts as a problem.
fn check_manifests(root: &Path, files: &[String], report: &mut String) -> Result<usize, Failure> {
    let sha_path = root.join(MANIFEST_SHA256);
    if !sha_path.is_file() {
        let _ = writeln!(
            report,
            "no `{MANIFEST_SHA256}`: not a package; comparing the rebuild with repro.lock only"
        );
        return Ok(0);
    }
    let read = |p: &Path| {
        fs::read_to_string(p).map_err(|e| Failure::io(format!("cannot read `{}`", p.display()), &e))
    };
    let sha = package::parse_manifest(&read(&sha_path)?);
    let b3 = match root.join(MANIFEST_BLAKE3) {
        p if p.is_file() => package::parse_manifest(&read(&p)?),
        _ => Default::default(),
    };
    let mut problems = 0;
    for (path, expected) in &sha {
        // The manifest is as untrusted as the rest of the package: a listed path outside it is
        // never opened (it would have verify read, and vouch for, a file it was not given).
        if let Err(why) = archive::check_relative(path) {
            problems += 1;
            let _ = writeln!(
                report,
                "UNSAFE `{path}`: listed in {MANIFEST_SHA256} but not a path inside the package: {why}"
            );
            continue;
        }
        let full = root.join(path);
        let got = fs::File::open(&full).and_then(files::digests);
        let line = match got {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                format!("MISSING `{path}`: listed in {MANIFEST_SHA256} but not in the package")
            }
            Err(e) => format!("UNREADABLE `{path}`: {e}"),
            Ok((s, b)) => {
                let b3_ok = b3.get(path).is_none_or(|want| *want == b);
                if s == *expected && b3_ok {
                    continue;
                }
                format!("DIFFERS `{path}`: its checksum does not match {MANIFEST_SHA256}")
            }
        };
        problems += 1;
        let _ = writeln!(report, "{line}");
    }
    let listed = problems;
    for f in files {
        if f == MANIFEST_SHA256 || f == MANIFEST_BLAKE3 || sha.contains_key(f) {
            continue;
        }
        problems += 1;
        let _ = writeln!(
            report,
            "UNLISTED `{f}`: in the package but not in {MANIFEST_SHA256}"
        );
    }
    let _ = writeln!(
        report,
        "manifest: {} of {} files match {MANIFEST_SHA256}",
        sha.len() - listed,
        sha.len()
    );
    Ok(problems)
}

/// Copies what a rebuild starts from into `dest`; returns the inputs that are absent, each with
/// what the pipeline says about obtaining it.
fn copy_inputs(p: &Pipeline, dest: &Path) -> Result<Vec<(String, String)>, Failure> {
    let mut wanted = vec![file_name(&p.file)];
    wanted.extend(p.params_files.iter().cloned());
    wanted.extend(p.source_deps());
    let mut missing = Vec::new();
    let root = fs::canonicalize(&p.root)
        .map_err(|e| Failure::io(format!("cannot read `{}`", p.root.display()), &e))?;
    for rel in wanted {
        // Nothing outside the package is copied in, even through a symlink.
        let files = package::inside_files(&root, &rel)?;
        if files.is_empty() {
            let source = p.sources.iter().find(|s| {
                s.files
                    .iter()
                    .any(|f| path_within(&rel, f) || path_within(f, &rel))
            });
            let why = match source {
                Some(s) if !s.provided => format!(
                    "source `{}` is not provided; {}",
                    s.name,
                    s.access
                        .as_deref()
                        .or(s.statement.as_deref())
                        .unwrap_or("its entry in the pipeline says nothing on how to obtain it")
                ),
                Some(s) => format!("part of source `{}`, which should be provided", s.name),
                None => "no stage produces it".to_string(),
            };
            missing.push((rel, why));
            continue;
        }
        for f in files {
            let to = dest.join(&f);
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent).map_err(|e| Failure::io("cannot copy inputs", &e))?;
            }
            fs::copy(p.root.join(&f), &to)
                .map_err(|e| Failure::io(format!("cannot copy `{f}`"), &e))?;
        }
    }
    Ok(missing)
}

/// Where the package's copy of an output and the rebuilt one first differ, in words: for CSV the
/// first differing cell, for text the first differing line, else the first differing byte.
pub fn first_difference(shipped: &Path, rebuilt: &Path) -> Option<String> {
    if shipped.is_dir() || rebuilt.is_dir() {
        let root_a = shipped.parent()?;
        let root_b = rebuilt.parent()?;
        let name = file_name(shipped);
        let a = files::list_files(root_a, &name).ok()?;
        let b = files::list_files(root_b, &name).ok()?;
        if let Some(only) = a.iter().find(|f| !b.contains(f)) {
            return Some(format!("`{only}` was not rebuilt"));
        }
        if let Some(only) = b.iter().find(|f| !a.contains(f)) {
            return Some(format!("`{only}` is new in the rebuild"));
        }
        for f in &a {
            let x = fs::read(root_a.join(f)).ok()?;
            let y = fs::read(root_b.join(f)).ok()?;
            if x != y {
                let inner = first_difference(&root_a.join(f), &root_b.join(f))?;
                return Some(format!("`{f}`: {inner}"));
            }
        }
        return None;
    }
    let a = fs::read(shipped).ok()?;
    let b = fs::read(rebuilt).ok()?;
    if a == b {
        return None;
    }
    let is_csv = shipped
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    match (std::str::from_utf8(&a), std::str::from_utf8(&b)) {
        (Ok(x), Ok(y)) if is_csv => Some(csv_difference(x, y)),
        (Ok(x), Ok(y)) => Some(line_difference(x, y)),
        _ => {
            let at = a
                .iter()
                .zip(&b)
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            Some(format!(
                "first differing byte at offset {at} (package {} bytes, rebuilt {} bytes)",
                a.len(),
                b.len()
            ))
        }
    }
}

/// The first differing cell of two CSV texts, naming the row (1 = first data row) and column.
pub fn csv_difference(shipped: &str, rebuilt: &str) -> String {
    let a = parse_csv(shipped);
    let b = parse_csv(rebuilt);
    let header = a.first().cloned().unwrap_or_default();
    for (i, (ra, rb)) in a.iter().zip(&b).enumerate() {
        for c in 0..ra.len().max(rb.len()) {
            let (x, y) = (ra.get(c), rb.get(c));
            if x == y {
                continue;
            }
            let column = header
                .get(c)
                .map_or_else(|| format!("{}", c + 1), |h| h.clone());
            let show =
                |v: Option<&String>| v.map_or("(none)".to_string(), |v| format!("`{}`", short(v)));
            let row = if i == 0 {
                "header".to_string()
            } else {
                format!("row {i}")
            };
            return format!(
                "{row}, column `{column}`: package {}, rebuilt {}",
                show(x),
                show(y)
            );
        }
    }
    format!(
        "the package has {} data rows, the rebuild {}",
        a.len().saturating_sub(1),
        b.len().saturating_sub(1)
    )
}

fn line_difference(shipped: &str, rebuilt: &str) -> String {
    let mut a = shipped.lines();
    let mut b = rebuilt.lines();
    let mut n = 0;
    loop {
        n += 1;
        match (a.next(), b.next()) {
            (Some(x), Some(y)) if x == y => continue,
            (None, None) => return "the files differ only in line endings".to_string(),
            (x, y) => {
                let show = |v: Option<&str>| {
                    v.map_or("(end of file)".to_string(), |v| {
                        format!("`{}`", short(v.trim()))
                    })
                };
                return format!("line {n}: package {}, rebuilt {}", show(x), show(y));
            }
        }
    }
}

fn short(s: &str) -> String {
    if s.chars().count() <= 80 {
        return s.to_string();
    }
    let cut: String = s.chars().take(77).collect();
    format!("{cut}...")
}

/// RFC 4180 records: quoted fields may hold commas, doubled quotes and newlines.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            _ => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_first_differing_cell() {
        let a = "region,cities\neast,87\nwest,\"1,2\"\n";
        let b = "region,cities\neast,87\nwest,\"1,3\"\n";
        assert_eq!(
            csv_difference(a, b),
            "row 2, column `cities`: package `1,2`, rebuilt `1,3`"
        );
        assert_eq!(
            csv_difference(a, "region,cities\neast,87\n"),
            "the package has 2 data rows, the rebuild 1"
        );
    }

    #[test]
    fn names_the_first_differing_line() {
        assert_eq!(
            line_difference("a\nb\n", "a\nc\n"),
            "line 2: package `b`, rebuilt `c`"
        );
        assert_eq!(
            line_difference("a\n", "a\nb\n"),
            "line 2: package (end of file), rebuilt `b`"
        );
    }

    fn write_csv(rows: &[Vec<String>]) -> String {
        let mut out = String::new();
        for row in rows {
            let fields: Vec<String> = row
                .iter()
                .map(|f| {
                    if f.contains([',', '"', '\n']) {
                        format!("\"{}\"", f.replace('"', "\"\""))
                    } else {
                        f.clone()
                    }
                })
                .collect();
            out.push_str(&fields.join(","));
            out.push('\n');
        }
        out
    }

    proptest::proptest! {
        /// Any table written as RFC 4180 CSV parses back to itself, and changing one cell is
        /// reported at that cell.
        #[test]
        fn finds_the_changed_cell(
            table in proptest::collection::vec(
                proptest::collection::vec("[a-c,\"\n ]{1,4}", 3), 2..6),
            row in 1usize..6,
            col in 0usize..3,
        ) {
            let row = row % table.len();
            proptest::prop_assume!(row > 0);
            proptest::prop_assert_eq!(parse_csv(&write_csv(&table)), table.clone());
            let mut changed = table.clone();
            changed[row][col].push('z');
            let diff = csv_difference(&write_csv(&table), &write_csv(&changed));
            let expected = format!("row {row}, column `{}`:", table[0][col]);
            proptest::prop_assert!(diff.starts_with(&expected), "{} vs {}", diff, expected);
        }
    }

    #[test]
    fn parses_quoted_newlines() {
        let rows = parse_csv("a,b\n\"x\ny\",\"q\"\"\"\n");
        assert_eq!(rows[1], vec!["x\ny".to_string(), "q\"".to_string()]);
    }
}
