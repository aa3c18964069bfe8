//! Packages that never lose, overwrite or leak anything (issue 12): `--out` safety, only the
//! pipeline's files inside the project, verify's handling of unlisted and unsafe entries, shell
//! quoting of the pipeline file name, lint of shell-interpreted params, interrupted verifies.

use std::path::{Path, PathBuf};

use crate::package::{fixtures, repro_in, small_project, DRAWS_SH, SMALL};
use crate::Project;

/// A run small project in `ROOT/proj` (so `../` from the project stays in a folder the test owns).
fn nested_small_project() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let proj = root.path().join("proj");
    std::fs::create_dir_all(proj.join("stages")).unwrap();
    std::fs::create_dir_all(proj.join("data")).unwrap();
    std::fs::write(proj.join("pipeline.yaml"), SMALL).unwrap();
    std::fs::write(proj.join("stages/draws.sh"), DRAWS_SH).unwrap();
    std::fs::copy(fixtures().join("engel.csv"), proj.join("data/engel.csv")).unwrap();
    repro_in(&proj, &["run"], &[]).ok();
    (root, proj)
}

#[test]
fn package_never_deletes_or_overwrites_what_repro_did_not_write() {
    let p = small_project();
    p.repro(&["run"]).ok();
    let outside = tempfile::tempdir().unwrap();

    // A folder of raw data that happens to hold a `MANIFEST.sha256`.
    let raw = outside.path().join("raw");
    std::fs::create_dir_all(&raw).unwrap();
    std::fs::write(raw.join("MANIFEST.sha256"), "abc  survey.csv\n").unwrap();
    std::fs::write(raw.join("survey.csv"), "a,b\n1,2\n").unwrap();
    let refused = p.repro(&["package", "--no-vendor", "--out", raw.to_str().unwrap()]);
    assert_eq!(refused.code, 2, "{}", refused.snapshot());
    assert!(
        refused.stderr.contains(&format!(
            "error: cannot write the package to `{}`",
            raw.display()
        )),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("hint: "), "{}", refused.stderr);
    assert_eq!(
        std::fs::read_to_string(raw.join("survey.csv")).unwrap(),
        "a,b\n1,2\n"
    );
    assert!(raw.join("MANIFEST.sha256").is_file());

    // A package repro wrote is replaced; once someone adds or edits a file in it, it is not.
    let pkg = outside.path().join("pkg");
    p.repro(&["package", "--no-vendor", "--out", pkg.to_str().unwrap()])
        .ok();
    p.repro(&["package", "--no-vendor", "--out", pkg.to_str().unwrap()])
        .ok();
    std::fs::write(pkg.join("notes.txt"), "my notes").unwrap();
    let refused = p.repro(&["package", "--no-vendor", "--out", pkg.to_str().unwrap()]);
    assert_eq!(refused.code, 2, "{}", refused.snapshot());
    assert!(refused.stderr.contains("`notes.txt`"), "{}", refused.stderr);
    assert_eq!(
        std::fs::read_to_string(pkg.join("notes.txt")).unwrap(),
        "my notes"
    );
    std::fs::remove_file(pkg.join("notes.txt")).unwrap();
    std::fs::write(pkg.join("README.md"), "edited by hand").unwrap();
    let refused = p.repro(&["package", "--no-vendor", "--out", pkg.to_str().unwrap()]);
    assert_eq!(refused.code, 2, "{}", refused.snapshot());
    assert!(refused.stderr.contains("`README.md`"), "{}", refused.stderr);
    assert_eq!(
        std::fs::read_to_string(pkg.join("README.md")).unwrap(),
        "edited by hand"
    );

    // A zip repro did not write is left alone; one it wrote is replaced.
    let foreign = outside.path().join("data.zip");
    std::fs::write(&foreign, b"PK\x03\x04 not a package").unwrap();
    let refused = p.repro(&["package", "--no-vendor", "--out", foreign.to_str().unwrap()]);
    assert_eq!(refused.code, 2, "{}", refused.snapshot());
    assert!(
        refused.stderr.contains(&format!(
            "error: cannot write the package to `{}`",
            foreign.display()
        )),
        "{}",
        refused.stderr
    );
    assert_eq!(
        std::fs::read(&foreign).unwrap(),
        b"PK\x03\x04 not a package"
    );
    let ours = outside.path().join("ours.zip");
    p.repro(&["package", "--no-vendor", "--out", ours.to_str().unwrap()])
        .ok();
    p.repro(&["package", "--no-vendor", "--out", ours.to_str().unwrap()])
        .ok();
    // Nothing but the named outputs was left next to them.
    let mut left: Vec<String> = std::fs::read_dir(outside.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["data.zip", "ours.zip", "pkg", "raw"]);
}

#[test]
fn package_holds_only_the_pipelines_files_and_nothing_outside_the_project() {
    // A stage that is no longer in the pipeline: its output stays out, and the package verifies.
    let (root, proj) = nested_small_project();
    let with_old = SMALL.replace(
        "stages:\n",
        "stages:\n  old:\n    cmd: mkdir -p output && echo old > output/old.txt\n    outs: [output/old.txt]\n",
    );
    std::fs::write(proj.join("pipeline.yaml"), &with_old).unwrap();
    repro_in(&proj, &["run"], &[]).ok();
    std::fs::write(proj.join("pipeline.yaml"), SMALL).unwrap();
    let pkg = root.path().join("pkg");
    let out = repro_in(
        &proj,
        &["package", "--no-vendor", "--out", pkg.to_str().unwrap()],
        &[],
    );
    out.ok();
    assert!(
        out.stdout.contains("packaged 2 stages, 2 outputs"),
        "{}",
        out.stdout
    );
    assert!(!pkg.join("output/old.txt").exists());
    let lock = std::fs::read_to_string(pkg.join("repro.lock")).unwrap();
    assert!(!lock.contains("\"old\""), "{lock}");
    repro_in(&pkg, &["verify"], &[]).ok();

    // Lock entries naming paths outside the project are errors, and nothing is copied or touched.
    let secret = root.path().join("secret.txt");
    std::fs::write(&secret, "secret").unwrap();
    let abs = root.path().join("abs.txt");
    std::fs::write(&abs, "absolute").unwrap();
    let lock_path = proj.join("repro.lock");
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&lock_path).unwrap()).unwrap();
    for bad in [
        "../secret.txt".to_string(),
        abs.to_str().unwrap().to_string(),
    ] {
        for stage in ["draws", "gone"] {
            let mut lock = original.clone();
            let mut entry = lock["stages"]["draws"].clone();
            entry["outs"][&bad] = serde_json::json!({"hash": "00"});
            lock["stages"][stage] = entry;
            std::fs::write(&lock_path, serde_json::to_string_pretty(&lock).unwrap()).unwrap();
            let bad_pkg = root.path().join(format!("bad-{stage}"));
            let out = repro_in(
                &proj,
                &["package", "--no-vendor", "--out", bad_pkg.to_str().unwrap()],
                &[],
            );
            assert_ne!(out.code, 0, "{}", out.snapshot());
            assert!(
                out.stderr.contains("error: ") && out.stderr.contains(&format!("`{bad}`")),
                "{}",
                out.snapshot()
            );
            assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret");
            assert_eq!(std::fs::read_to_string(&abs).unwrap(), "absolute");
            assert!(!bad_pkg.exists(), "{}", out.snapshot());
        }
    }
    std::fs::write(&lock_path, serde_json::to_string_pretty(&original).unwrap()).unwrap();

    // A data file that is a symlink to a file outside the project is refused, not copied.
    let elsewhere = root.path().join("engel-elsewhere.csv");
    std::fs::rename(proj.join("data/engel.csv"), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, proj.join("data/engel.csv")).unwrap();
    let linked = root.path().join("linked");
    let out = repro_in(
        &proj,
        &["package", "--no-vendor", "--out", linked.to_str().unwrap()],
        &[],
    );
    assert_ne!(out.code, 0, "{}", out.snapshot());
    assert!(
        out.stderr.contains("`data/engel.csv`") && out.stderr.contains("outside the project"),
        "{}",
        out.snapshot()
    );
    assert!(!linked.exists());
}

/// The entries of a zip, name -> bytes.
fn zip_entries(path: &Path) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut f = archive.by_index(i).unwrap();
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).unwrap();
            (f.name().unwrap().to_string(), bytes)
        })
        .collect()
}

/// A copy of a zip with `extra` added: (name, Some(bytes)) for a file, (name, None) for a
/// symlink to `README.md`.
fn zip_with(from: &Path, to: &Path, extra: &[(&str, Option<&[u8]>)]) {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(to).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    for (name, bytes) in zip_entries(from) {
        zip.start_file(name, options).unwrap();
        zip.write_all(&bytes).unwrap();
    }
    for (name, bytes) in extra {
        match bytes {
            Some(b) => {
                zip.start_file(*name, options).unwrap();
                zip.write_all(b).unwrap();
            }
            None => zip.add_symlink(*name, "README.md", options).unwrap(),
        }
    }
    zip.finish().unwrap();
}

#[test]
fn verify_reports_unlisted_files_and_refuses_unsafe_zip_entries() {
    let p = small_project();
    p.repro(&["run"]).ok();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pkg");
    p.repro(&["package", "--no-vendor", "--out", dir.to_str().unwrap()])
        .ok();

    // A folder package with a file its manifest does not list.
    std::fs::write(dir.join("stages/extra.sh"), "echo hi\n").unwrap();
    let out = repro_in(&dir, &["verify"], &[]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(
        out.stdout
            .contains("UNLISTED `stages/extra.sh`: in the package but not in MANIFEST.sha256"),
        "{}",
        out.stdout
    );
    std::fs::remove_file(dir.join("stages/extra.sh")).unwrap();
    repro_in(&dir, &["verify"], &[]).ok();

    // The same in a zip.
    let good = tmp.path().join("good.zip");
    p.repro(&["package", "--no-vendor", "--out", good.to_str().unwrap()])
        .ok();
    let extra = tmp.path().join("extra.zip");
    zip_with(&good, &extra, &[("notes/extra.txt", Some(b"x"))]);
    let out = repro_in(tmp.path(), &["verify", extra.to_str().unwrap()], &[]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(
        out.stdout.contains("UNLISTED `notes/extra.txt`"),
        "{}",
        out.stdout
    );

    // Entries that would land outside the folder, or symlinks, are refused before anything runs.
    for (name, bytes) in [
        ("../escaped.txt", Some(&b"x"[..])),
        ("output/../../escaped.txt", Some(&b"x"[..])),
        ("/tmp/escaped-by-repro-test.txt", Some(&b"x"[..])),
        ("link.md", None),
    ] {
        let bad = tmp.path().join("bad.zip");
        zip_with(&good, &bad, &[(name, bytes)]);
        let out = repro_in(tmp.path(), &["verify", bad.to_str().unwrap()], &[]);
        assert_ne!(out.code, 0, "{name}: {}", out.snapshot());
        assert!(
            out.stderr
                .contains(&format!("cannot unpack `{}`", bad.display()))
                && out.stderr.contains(&format!("`{name}`")),
            "{name}: {}",
            out.snapshot()
        );
        assert!(!out.stdout.contains("rebuilding"), "{}", out.stdout);
        assert!(!tmp.path().join("escaped.txt").exists());
    }
}

/// A pipeline file name a shell would otherwise split and run: quotes, `;`, `$( )`, spaces.
const CRAFTED: &str = "my pipe;touch PWNED;$(touch PWNED2)'q'.yaml";

#[test]
fn run_sh_and_the_readme_quote_the_pipeline_file_name() {
    let p = Project::new();
    p.write(
        CRAFTED,
        "stages:\n  s:\n    cmd: echo hi > out.txt\n    outs: [out.txt]\n",
    );
    p.repro(&["-f", CRAFTED, "run"]).ok();
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("pkg");
    p.repro(&[
        "-f",
        CRAFTED,
        "package",
        "--no-vendor",
        "--out",
        pkg.to_str().unwrap(),
    ])
    .ok();

    // Stand-ins for cargo and the built repro that record their arguments, one per line.
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let args_file = tmp.path().join("args.txt");
    let recorder = format!(
        "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> '{}'; done\n",
        args_file.display()
    );
    let cargo = bin.join("cargo");
    std::fs::write(&cargo, &recorder).unwrap();
    let fake_repro = pkg.join("repro-src/target/release/repro");
    std::fs::create_dir_all(fake_repro.parent().unwrap()).unwrap();
    std::fs::write(&fake_repro, &recorder).unwrap();
    for f in [&cargo, &fake_repro] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    // `--build`: the path through the stand-ins (the shipped binary would run otherwise).
    let status = std::process::Command::new("sh")
        .args(["run.sh", "--build"])
        .current_dir(&pkg)
        .env("PATH", &path)
        .status()
        .unwrap();
    assert!(status.success());
    let args = std::fs::read_to_string(&args_file).unwrap();
    assert!(
        args.contains(&format!("\n{CRAFTED}\nverify\n.\n")),
        "{args}"
    );

    // The README's command to rerun in place, as a replicator would paste it.
    let readme = std::fs::read_to_string(pkg.join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.contains("run --force"))
        .unwrap_or_else(|| panic!("{readme}"));
    let cmd = line
        .split('`')
        .find(|part| part.contains("run --force"))
        .unwrap_or_else(|| panic!("{line}"));
    std::fs::remove_file(&args_file).unwrap();
    // The README's command runs the shipped binary: a stand-in records what it is given.
    let shipped = pkg.join("repro-bin/repro");
    std::fs::write(&shipped, &recorder).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&shipped, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let status = std::process::Command::new("sh")
        .args(["-c", cmd])
        .current_dir(&pkg)
        .status()
        .unwrap();
    assert!(status.success(), "{cmd}");
    let args = std::fs::read_to_string(&args_file).unwrap();
    assert_eq!(args, format!("-f\n{CRAFTED}\nrun\n--force\n"), "{cmd}");
    for dir in [p.path(), pkg.as_path()] {
        assert!(!dir.join("PWNED").exists() && !dir.join("PWNED2").exists());
    }
}

#[test]
fn lint_flags_params_a_shell_would_interpret() {
    let p = small_project();
    let pipeline = SMALL.replace(
        "    seed: 42\n",
        "    seed: 42\n  label:\n    cmd: echo ${params.title} ${params.plain} > output/label.txt\n    outs: [output/label.txt]\n    deps: [output/draws.csv]\n    params:\n      title: \"Table 1; $(date)\"\n      plain: table-1_final\n      unused: \"a|b\"\n",
    );
    let pipeline = pipeline.replace(
        "  output/draws.csv: Table 1\n",
        "  output/draws.csv: Table 1\n  output/label.txt: Label\n",
    );
    p.write("pipeline.yaml", &pipeline);
    let out = p.repro(&["lint"]);
    assert!(
        out.stdout.contains(
            "warning: param `title` of stage `label` holds characters a shell interprets"
        ),
        "{}",
        out.snapshot()
    );
    assert!(
        out.stdout.contains("`;`") && out.stdout.contains("`$`"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("hint: "), "{}", out.stdout);
    assert!(!out.stdout.contains("`plain`"), "{}", out.stdout);
    assert!(!out.stdout.contains("`unused`"), "{}", out.stdout);
    // The value is still pasted as is (as DVC does): this is a warning, not an error.
    assert_eq!(out.code, 0, "{}", out.snapshot());
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn an_interrupted_verify_removes_its_temporary_folder_and_stops_the_command() {
    for signal in ["INT", "TERM"] {
        let p = Project::new();
        // Slow only when verify rebuilds it (SLOW is set for verify, not for the first run); the
        // command records the pid of its `sleep`.
        p.write(
            "pipeline.yaml",
            "stages:\n  s:\n    cmd: if [ -n \"$SLOW\" ]; then sleep 60 & echo $! > \"$SLOW\"; wait; fi; echo hi > out.txt\n    outs: [out.txt]\n",
        );
        p.repro(&["run"]).ok();
        let scratch = tempfile::tempdir().unwrap();
        let tmpdir = scratch.path().join("tmp");
        std::fs::create_dir_all(&tmpdir).unwrap();
        let pid_file = scratch.path().join("pid");
        let mut child = p
            .command(&["verify"])
            .env("TMPDIR", &tmpdir)
            .env("SLOW", &pid_file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let cmd_pid: u32 = loop {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                break pid;
            }
            assert!(
                started.elapsed().as_secs() < 60,
                "the command never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        assert!(
            std::fs::read_dir(&tmpdir).unwrap().next().is_some(),
            "verify works in TMPDIR"
        );
        let killed = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if started.elapsed().as_secs() > 30 {
                let _ = child.kill();
                panic!("verify did not stop on SIG{signal}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        assert!(!status.success());
        let left: Vec<_> = std::fs::read_dir(&tmpdir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(left.is_empty(), "SIG{signal} left {left:?}");
        let started = std::time::Instant::now();
        while alive(cmd_pid) && started.elapsed().as_secs() < 10 {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(!alive(cmd_pid), "SIG{signal} left the command running");
        assert!(
            !p.exists("cache/tmp")
                || std::fs::read_dir(p.path().join("cache/tmp"))
                    .unwrap()
                    .next()
                    .is_none()
        );
    }
}

#[test]
fn verify_never_reads_a_manifest_path_outside_the_package() {
    use sha2::Digest;
    let p = small_project();
    p.repro(&["run"]).ok();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pkg");
    p.repro(&["package", "--out", dir.to_str().unwrap()]).ok();
    // A file beside the package, listed by a crafted manifest line with its true checksum: a
    // verify that opened it would count it as matching and pass.
    std::fs::write(tmp.path().join("outside.txt"), "secret\n").unwrap();
    let sha: String = sha2::Sha256::digest(b"secret\n")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    for listed in [
        "../outside.txt",
        &format!("{}/outside.txt", tmp.path().display()),
    ] {
        let manifest = dir.join("MANIFEST.sha256");
        let original = std::fs::read_to_string(&manifest).unwrap();
        std::fs::write(&manifest, format!("{original}{sha}  {listed}\n")).unwrap();
        let out = repro_in(&dir, &["verify"], &[]);
        assert_eq!(out.code, 1, "{listed}: {}", out.snapshot());
        assert!(
            out.stdout.contains(&format!(
                "UNSAFE `{listed}`: listed in MANIFEST.sha256 but not a path inside the package"
            )),
            "{}",
            out.stdout
        );
        std::fs::write(&manifest, original).unwrap();
    }
    repro_in(&dir, &["verify"], &[]).ok();
}
