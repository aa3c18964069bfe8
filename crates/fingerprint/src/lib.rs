//! The code fingerprint of one package of the workspace: everything that can change what its
//! code computes.
//!
//! Owns: finding a package's dependency closure in `Cargo.lock` (normal and build dependencies;
//! dev-dependencies of workspace packages do not count, since they never reach the library),
//! hashing the files of every workspace package in that closure (its `Cargo.toml`, `build.rs`,
//! `src/` and `assets/`: see [`PACKAGE_PARTS`]), the name, version and checksum of every registry package in it, and the compiler's
//! version. Used by the build scripts of the crates that implement built-in kinds (`emit`), and
//! by tests that ask what a source edit would invalidate (`fingerprint`). Deliberately does not
//! own: the stage key (the engine adds the fingerprint to it) or which crate implements which
//! kind (the binary's `kinds.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// A package's fingerprint and the files and folders it read, for `cargo:rerun-if-changed`.
#[derive(Debug, Clone)]
pub struct Fingerprint {
    /// blake3 of the inputs, hex.
    pub hex: String,
    /// The workspace packages in the closure, sorted (the package itself included).
    pub workspace_packages: Vec<String>,
    /// What was read: `Cargo.lock` and each hashed package folder.
    pub watched: Vec<PathBuf>,
}

/// Computes the fingerprint of workspace package `package` of the workspace at `root`
/// (the folder of `Cargo.lock`), compiled by `rustc_version`.
pub fn fingerprint(root: &Path, package: &str, rustc_version: &str) -> Result<Fingerprint, String> {
    let lock_path = root.join("Cargo.lock");
    let lock = read_lock(&lock_path)?;
    let members = workspace_members(root)?;
    let closure = closure(&lock, &members, package)?;

    let mut h = blake3::Hasher::new();
    field(&mut h, b"repro-code-fingerprint 1");
    field(&mut h, rustc_version.as_bytes());
    let mut watched = vec![lock_path];
    let mut workspace_packages = Vec::new();
    for name in &closure {
        let pkg = &lock[name];
        match members.get(name) {
            Some(member) => {
                workspace_packages.push(name.clone());
                field(&mut h, b"workspace");
                field(&mut h, name.as_bytes());
                let files = package_files(&member.dir)?;
                field(&mut h, &(files.len() as u64).to_le_bytes());
                for rel in &files {
                    let bytes = fs::read(member.dir.join(rel)).map_err(|e| {
                        format!("cannot read `{}`: {e}", member.dir.join(rel).display())
                    })?;
                    field(&mut h, rel.as_bytes());
                    field(&mut h, &bytes);
                }
                watched.extend(
                    PACKAGE_PARTS
                        .iter()
                        .map(|p| member.dir.join(p))
                        .filter(|p| p.exists()),
                );
            }
            None => {
                field(&mut h, b"registry");
                field(&mut h, name.as_bytes());
                field(&mut h, pkg.version.as_bytes());
                field(&mut h, pkg.checksum.as_deref().unwrap_or("").as_bytes());
            }
        }
    }
    Ok(Fingerprint {
        hex: h.finalize().to_hex().to_string(),
        workspace_packages,
        watched,
    })
}

/// For a build script: computes the fingerprint of the package being built and makes it the
/// compile-time variable `REPRO_CODE_FINGERPRINT`, rerunning whenever an input changes.
pub fn emit() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let package = std::env::var("CARGO_PKG_NAME").expect("set by cargo");
    let root = manifest_dir
        .ancestors()
        .find(|d| d.join("Cargo.lock").is_file())
        .unwrap_or_else(|| panic!("no Cargo.lock above `{}`", manifest_dir.display()))
        .to_path_buf();
    let fp = fingerprint(&root, &package, &rustc_version()).unwrap_or_else(|e| panic!("{e}"));
    for w in &fp.watched {
        println!("cargo:rerun-if-changed={}", w.display());
    }
    println!("cargo:rerun-if-env-changed=RUSTC");
    println!("cargo:rustc-env=REPRO_CODE_FINGERPRINT={}", fp.hex);
}

/// `rustc --version` of the compiler cargo runs (`RUSTC`), for build scripts; `unknown` if it
/// cannot be run.
pub fn rustc_version() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// One `[[package]]` of `Cargo.lock`.
#[derive(Debug)]
struct LockedPackage {
    version: String,
    checksum: Option<String>,
    /// Names of the packages it depends on (any kind of dependency).
    dependencies: Vec<String>,
}

/// A workspace package: its folder and the names of its dev-only dependencies.
#[derive(Debug)]
struct Member {
    dir: PathBuf,
    dev_only: BTreeSet<String>,
}

fn read_lock(path: &Path) -> Result<BTreeMap<String, LockedPackage>, String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let doc: toml::Table = text
        .parse()
        .map_err(|e| format!("cannot parse `{}`: {e}", path.display()))?;
    let mut out = BTreeMap::new();
    let packages = doc.get("package").and_then(|p| p.as_array());
    for p in packages.into_iter().flatten() {
        let get = |k: &str| p.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let Some(name) = get("name") else { continue };
        let dependencies = p
            .get("dependencies")
            .and_then(|d| d.as_array())
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_str())
            // "name", "name version" or "name version (source)": the name comes first.
            .filter_map(|d| d.split_whitespace().next().map(str::to_string))
            .collect();
        out.insert(
            name,
            LockedPackage {
                version: get("version").unwrap_or_default(),
                checksum: get("checksum"),
                dependencies,
            },
        );
    }
    Ok(out)
}

/// The workspace's packages by name: the root manifest's package and every `crates/*` package.
fn workspace_members(root: &Path) -> Result<BTreeMap<String, Member>, String> {
    let mut dirs = vec![root.to_path_buf()];
    if let Ok(entries) = fs::read_dir(root.join("crates")) {
        for e in entries.flatten() {
            if e.path().join("Cargo.toml").is_file() {
                dirs.push(e.path());
            }
        }
    }
    let mut out = BTreeMap::new();
    for dir in dirs {
        let manifest = dir.join("Cargo.toml");
        let text = fs::read_to_string(&manifest)
            .map_err(|e| format!("cannot read `{}`: {e}", manifest.display()))?;
        let doc: toml::Table = text
            .parse()
            .map_err(|e| format!("cannot parse `{}`: {e}", manifest.display()))?;
        let Some(name) = doc
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
        else {
            continue;
        };
        let names = |section: &str| -> BTreeSet<String> {
            doc.get(section)
                .and_then(|t| t.as_table())
                .map(|t| t.keys().cloned().collect())
                .unwrap_or_default()
        };
        let used = &names("dependencies") | &names("build-dependencies");
        let dev_only = &names("dev-dependencies") - &used;
        out.insert(name.to_string(), Member { dir, dev_only });
    }
    Ok(out)
}

/// `package` and everything it depends on, sorted; dev-only dependencies of workspace packages
/// are left out.
fn closure(
    lock: &BTreeMap<String, LockedPackage>,
    members: &BTreeMap<String, Member>,
    package: &str,
) -> Result<BTreeSet<String>, String> {
    if !lock.contains_key(package) {
        return Err(format!("package `{package}` is not in Cargo.lock"));
    }
    let mut seen = BTreeSet::new();
    let mut todo = vec![package.to_string()];
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(p) = lock.get(&name) else { continue };
        let dev_only = members.get(&name).map(|m| &m.dev_only);
        for d in &p.dependencies {
            // Crate names in manifests may use `-` where the lock does too; compare as written.
            if dev_only.is_some_and(|dev| dev.contains(d)) {
                continue;
            }
            todo.push(d.clone());
        }
    }
    Ok(seen)
}

/// The parts of a package that can reach its compiled library: `Cargo.toml`, `build.rs`, and
/// the trees `src/` and `assets/` (files a crate embeds with `include_bytes!` live there).
pub const PACKAGE_PARTS: &[&str] = &["Cargo.toml", "build.rs", "src", "assets"];

/// Every file of [`PACKAGE_PARTS`] in package folder `base`, relative and with `/`.
fn package_files(base: &Path) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for part in PACKAGE_PARTS {
        let path = base.join(part);
        if path.is_file() {
            out.push((*part).to_string());
        } else if path.is_dir() {
            list_tree(base, &path, &mut out)?;
        }
    }
    out.sort();
    Ok(out)
}

fn list_tree(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list `{}`: {e}", dir.display()))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        let path = e.path();
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            list_tree(base, &path, out)?;
        } else {
            let rel = path
                .strip_prefix(base)
                .map_err(|_| format!("`{}` is outside `{}`", path.display(), base.display()))?;
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// Length-prefixed, so no two different input lists encode to the same bytes.
fn field(h: &mut blake3::Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace of three packages: `app` (root) depends on `a` and `b`, `b` depends on `a`
    /// and the registry package `reg`; `a` has the dev-dependency `devtool`.
    fn workspace() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let w = |rel: &str, text: &str| {
            let p = dir.path().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        };
        w(
            "Cargo.toml",
            "[package]\nname = \"app\"\n[dependencies]\na = {}\nb = {}\n",
        );
        w("src/main.rs", "fn main() {}");
        w(
            "crates/a/Cargo.toml",
            "[package]\nname = \"a\"\n[dev-dependencies]\ndevtool = \"1\"\n",
        );
        w("crates/a/src/lib.rs", "pub fn a() {}");
        w("crates/a/tests/t.rs", "#[test] fn t() {}");
        w(
            "crates/b/Cargo.toml",
            "[package]\nname = \"b\"\n[dependencies]\na = {}\nreg = \"1\"\n",
        );
        w("crates/b/src/lib.rs", "pub fn b() {}");
        w("crates/b/assets/font.ttf", "glyphs");
        w(
            "Cargo.lock",
            r#"version = 4

[[package]]
name = "a"
version = "0.1.0"
dependencies = ["devtool"]

[[package]]
name = "app"
version = "0.1.0"
dependencies = ["a", "b"]

[[package]]
name = "b"
version = "0.1.0"
dependencies = ["a", "reg 1.0.0 (registry+https://github.com/rust-lang/crates.io-index)"]

[[package]]
name = "devtool"
version = "1.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "aaaa"

[[package]]
name = "reg"
version = "1.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "bbbb"
"#,
        );
        dir
    }

    fn fp(dir: &Path, package: &str) -> String {
        fingerprint(dir, package, "rustc 1.0").unwrap().hex
    }

    fn edit(dir: &Path, rel: &str, from: &str, to: &str) {
        let p = dir.join(rel);
        let text = fs::read_to_string(&p).unwrap().replace(from, to);
        fs::write(p, text).unwrap();
    }

    #[test]
    fn an_edit_counts_only_for_packages_that_depend_on_it() {
        let ws = workspace();
        let (a, b) = (fp(ws.path(), "a"), fp(ws.path(), "b"));
        fs::write(ws.path().join("src/main.rs"), "fn main() { println!(); }").unwrap();
        assert_eq!(
            (fp(ws.path(), "a"), fp(ws.path(), "b")),
            (a.clone(), b.clone())
        );
        fs::write(ws.path().join("crates/b/src/lib.rs"), "pub fn b() { }").unwrap();
        assert_eq!(fp(ws.path(), "a"), a);
        assert_ne!(fp(ws.path(), "b"), b);
        let b = fp(ws.path(), "b");
        fs::write(ws.path().join("crates/a/src/lib.rs"), "pub fn a() { }").unwrap();
        assert_ne!(fp(ws.path(), "a"), a);
        assert_ne!(fp(ws.path(), "b"), b);
    }

    #[test]
    fn assets_count_and_tests_do_not() {
        let ws = workspace();
        let (a, b) = (fp(ws.path(), "a"), fp(ws.path(), "b"));
        fs::write(ws.path().join("crates/a/tests/t.rs"), "// changed").unwrap();
        assert_eq!(fp(ws.path(), "a"), a);
        fs::write(ws.path().join("crates/b/assets/font.ttf"), "other glyphs").unwrap();
        assert_ne!(fp(ws.path(), "b"), b);
    }

    #[test]
    fn locked_versions_count_except_dev_only_ones() {
        let ws = workspace();
        let (a, b) = (fp(ws.path(), "a"), fp(ws.path(), "b"));
        edit(
            ws.path(),
            "Cargo.lock",
            "checksum = \"aaaa\"",
            "checksum = \"cccc\"",
        );
        assert_eq!(
            (fp(ws.path(), "a"), fp(ws.path(), "b")),
            (a.clone(), b.clone())
        );
        edit(
            ws.path(),
            "Cargo.lock",
            "checksum = \"bbbb\"",
            "checksum = \"dddd\"",
        );
        assert_eq!(fp(ws.path(), "a"), a);
        assert_ne!(fp(ws.path(), "b"), b);
    }

    #[test]
    fn the_compiler_counts() {
        let ws = workspace();
        let one = fingerprint(ws.path(), "a", "rustc 1.0").unwrap().hex;
        let two = fingerprint(ws.path(), "a", "rustc 1.1").unwrap().hex;
        assert_ne!(one, two);
    }

    #[test]
    fn the_closure_lists_workspace_packages() {
        let ws = workspace();
        let f = fingerprint(ws.path(), "b", "rustc 1.0").unwrap();
        assert_eq!(f.workspace_packages, ["a", "b"]);
        assert!(fingerprint(ws.path(), "nope", "rustc 1.0").is_err());
    }
}
