//! What each fuzz target checks on one input: the parser must not panic, and where a property
//! exists (a round trip, an invariant of its output) it must hold. A violated property panics.
//!
//! Owns: one function per target, shared by the libFuzzer binaries (`fuzz_targets/*.rs`) and
//! the corpus replay in the ordinary test suite (`tests/integration/fuzz_corpus.rs`), which
//! compiles this file with `#[path]` so CI replays every committed input without the fuzzer.
//! Deliberately does not own: the parsers themselves, or any fixing of what they return. The
//! unzip check expects a sibling module `archive` (`src/replication/archive.rs`).

use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::Path;

use repro_engine::pipeline;
use repro_kind::normalize_path;
use repro_study::textnorm;

/// A scratch folder for one input (under `/dev/shm` when there is one: much faster than disk).
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new()
            .prefix("repro-fuzz-")
            .tempdir_in(shm)
        {
            return dir;
        }
    }
    tempfile::Builder::new()
        .prefix("repro-fuzz-")
        .tempdir()
        .expect("a temporary folder")
}

/// A path that a validated pipeline or spec may hold: normalised, relative, no `..`.
fn assert_project_path(p: &str, what: &str) {
    assert_eq!(
        normalize_path(p).as_deref(),
        Ok(p),
        "{what} `{p}` is not a normalised project path"
    );
    assert!(
        !p.starts_with('/') && !p.split('/').any(|c| c == ".."),
        "{what} `{p}` escapes"
    );
}

/// `pipeline.yaml`, then (after the first 0xFF byte, which UTF-8 text never holds) `params.yaml`,
/// loaded through the public `pipeline::load`. A loaded pipeline keeps its paths inside the
/// project, never outputs repro's own files, lists stages after their upstream stages, and loads
/// to the same keys twice.
pub fn pipeline(data: &[u8]) {
    let (text, params) = match data.iter().position(|&b| b == 0xFF) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let dir = scratch();
    let file = dir.path().join("pipeline.yaml");
    std::fs::write(&file, text).expect("write pipeline.yaml");
    if let Some(params) = params {
        std::fs::write(dir.path().join("params.yaml"), params).expect("write params.yaml");
    }
    let kinds = repro_kind::stage::NoKinds;
    let loaded = match pipeline::load(&file, &kinds) {
        Ok(p) => p,
        Err(failure) => {
            assert!(!repro_kind::diag::render(&failure).is_empty());
            return;
        }
    };
    let keys = |p: &pipeline::Pipeline| -> Vec<String> {
        let none = Default::default();
        p.stages
            .iter()
            .map(|s| repro_engine::key::stage_key(s, &none))
            .collect()
    };
    for (i, stage) in loaded.stages.iter().enumerate() {
        for p in stage.deps.iter() {
            assert_project_path(p, "dep");
        }
        for p in stage.outs.iter() {
            assert_project_path(p, "output");
            let own = p == "pipeline.yaml"
                || p == "repro.lock"
                || p == "params.yaml"
                || p == "cache"
                || p.starts_with("cache/");
            assert!(!own, "stage `{}` outputs repro's own `{p}`", stage.name);
        }
        assert!(
            stage.upstream.iter().all(|&u| u < i),
            "stage `{}` comes before a stage it depends on",
            stage.name
        );
    }
    for p in loaded.params_files.iter().chain(loaded.report.iter()) {
        assert_project_path(p, "params file or report");
    }
    let again = pipeline::load(&file, &kinds).expect("a pipeline that loaded loads again");
    assert_eq!(keys(&loaded), keys(&again), "keys differ between two loads");
}

/// The kinds whose stage spec files the `spec` target feeds (the first byte chooses).
const SPEC_KINDS: [&str; 8] = [
    "ingest",
    "describe",
    "models",
    "quantiles",
    "synth",
    "locate",
    "index",
    "panel",
];

/// A stage spec file (`stages/s.yaml`) loaded by the kind the first byte names, through the
/// kind's public `parse`. A spec error that points into the file points at one of its lines; an
/// accepted `ingest` spec names project paths only.
pub fn spec(data: &[u8]) {
    let Some((&which, text)) = data.split_first() else {
        return;
    };
    let kind = SPEC_KINDS[usize::from(which) % SPEC_KINDS.len()];
    let dir = scratch();
    let root = dir.path();
    std::fs::create_dir(root.join("stages")).expect("mkdir stages");
    std::fs::write(root.join("stages/s.yaml"), text).expect("write the spec");
    let rel = "stages/s.yaml";
    let params = serde_json::json!({ "spec": rel });
    let result: Result<Vec<String>, repro_kind::KindError> = match kind {
        "ingest" => {
            let ctx = repro_kind::ParseCtx {
                root,
                param_at: &|_, _| None,
            };
            repro_study::ingest::parse(params, &ctx).map(|stage| {
                let io = repro_study::ingest::implied_io(&stage);
                io.deps.into_iter().chain(io.outs).collect()
            })
        }
        "describe" => repro_tables::describe::parse(params, root).map(|_| Vec::new()),
        "models" => repro_tables::models::parse(params, root).map(|_| Vec::new()),
        "quantiles" => repro_tables::quantiles::parse(params, root).map(|_| Vec::new()),
        "synth" => repro_study::synth::parse(rel, root).map(|_| Vec::new()),
        "locate" => repro_study::locate::parse(rel, root).map(|_| Vec::new()),
        "index" => repro_study::index::parse(rel, root).map(|_| Vec::new()),
        _ => repro_study::panel::parse(rel, root).map(|_| Vec::new()),
    };
    match result {
        Ok(paths) => {
            for p in &paths {
                assert_project_path(p, "spec path");
            }
        }
        Err(e) => {
            assert!(!e.message.is_empty());
            if let Some(at) = e.location {
                // YAML's line breaks: `\r\n`, `\n` and a lone `\r` (old Mac files).
                let text = String::from_utf8_lossy(text).replace("\r\n", "\n");
                let lines = text.split(['\n', '\r']).count() as u64;
                assert!(
                    at.line >= 1 && at.line <= lines + 1,
                    "error at line {} of a {lines}-line spec: {}",
                    at.line,
                    e.message
                );
            }
        }
    }
}

/// A model formula. An accepted one prints (`Display`) to text that parses to the same formula
/// and prints the same again; every variable is listed once; an error's position is a character
/// boundary of the text.
pub fn formula(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    use repro_estimators::formula::parse;
    match parse(text) {
        Ok(f) => {
            let shown = f.to_string();
            let back = parse(&shown)
                .unwrap_or_else(|e| panic!("`{shown}` (printed from `{text}`) fails: {e}"));
            let strip = |mut g: repro_estimators::formula::Formula| {
                g.source.clear();
                g
            };
            assert_eq!(
                strip(back.clone()),
                strip(f.clone()),
                "`{text}` -> `{shown}`"
            );
            assert_eq!(back.to_string(), shown);
            let vars = f.variables();
            let unique: BTreeSet<&String> = vars.iter().collect();
            assert_eq!(
                unique.len(),
                vars.len(),
                "a variable listed twice: {vars:?}"
            );
        }
        Err(e) => {
            if let repro_estimators::error::EstimError::FormulaParse { position, .. } = &e {
                assert!(
                    text.is_char_boundary(*position),
                    "position {position} of `{text}`"
                );
            }
            let _ = e.caret();
            assert!(!e.to_string().is_empty());
        }
    }
}

/// A field as an RFC 4180 writer writes it (written here, not taken from the code under test).
fn rfc4180_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// CSV text, split as `ingest` reads a file. Pieces put back together are the input, each piece
/// but the last ends a record, cutting into small pieces (the first byte sets how the text is
/// fed) gives the same records as one piece, and records written back with RFC 4180 quoting read
/// back the same.
pub fn csv(data: &[u8]) {
    use repro_study::ingest::split_csv_text;
    let Some((&knob, text)) = data.split_first() else {
        return;
    };
    let feed = 1 + usize::from(knob % 16);
    let min_piece = 1 + usize::from(knob / 16);
    let whole = split_csv_text(text, usize::MAX, text.len().max(1));
    let small = split_csv_text(text, min_piece, feed);
    let (whole, small) = match (whole, small) {
        (Ok(w), Ok(s)) => (w, s),
        (Err(_), Err(_)) => return,
        (w, s) => panic!(
            "one piece and small pieces disagree: {:?} vs {:?}",
            w.map(|_| ()),
            s.map(|_| ())
        ),
    };
    for pieces in [&whole, &small] {
        let joined: Vec<u8> = pieces.iter().flat_map(|p| p.bytes.clone()).collect();
        assert_eq!(joined, text, "pieces do not put back together to the input");
        if let Some((_, complete)) = pieces.split_last() {
            for p in complete {
                assert!(p.bytes.ends_with(b"\n"), "a piece ends inside a record");
            }
        }
    }
    let records = |pieces: &[repro_study::ingest::CsvPiece]| -> Vec<Vec<String>> {
        pieces.iter().flat_map(|p| p.records.clone()).collect()
    };
    let read = records(&whole);
    assert_eq!(
        records(&small),
        read,
        "small pieces read other records than one piece"
    );
    let mut written = String::new();
    for record in &read {
        for (i, field) in record.iter().enumerate() {
            if i > 0 {
                written.push(',');
            }
            rfc4180_field(&mut written, field);
        }
        written.push('\n');
    }
    let again = split_csv_text(written.as_bytes(), usize::MAX, written.len().max(1))
        .expect("records written back read back");
    assert_eq!(records(&again), read, "written back: {written:?}");
}

/// One export cell through the text rules of `ingest`: normalising is idempotent and borrows
/// exactly when nothing changes; a parsed date or application number prints to text that parses
/// to the same value; applicant lists count their names.
pub fn textnorm(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let n = textnorm::normalize(s);
    assert_eq!(
        matches!(n, std::borrow::Cow::Borrowed(_)),
        n == s,
        "normalize borrows iff unchanged: {s:?}"
    );
    assert_eq!(
        textnorm::normalize(&n),
        n,
        "normalize is not idempotent on {s:?}"
    );
    if let Some(d) = textnorm::parse_date(s) {
        let iso = String::from_utf8(d.iso().to_vec()).expect("ASCII");
        assert_eq!(textnorm::parse_date(&iso), Some(d), "{s:?} -> {iso}");
        assert_eq!(textnorm::Date::new(d.year, d.month, d.day), Some(d));
    }
    if let Some(a) = textnorm::parse_app_number(s) {
        let text = String::from_utf8(a.text().to_vec()).expect("ASCII");
        assert_eq!(
            textnorm::parse_app_number(&text),
            Some(a),
            "{s:?} -> {text}"
        );
        assert!(a.key() < 1_000_000_000_000);
        assert!(textnorm::type_from_digit(a.type_digit()).is_some());
    }
    if let Some(t) = textnorm::parse_patent_type(s) {
        assert!((1..=3).contains(&t));
    }
    let (joined, count) = textnorm::split_applicants(&n);
    let names = joined.split(';').filter(|x| !x.trim().is_empty()).count();
    assert_eq!(names, count, "{n:?} -> {joined:?}");
    let code = textnorm::postcode(&n);
    assert!(code.is_empty() || code.len() == 6);
    if let Some(p) = textnorm::leading_postcode(&n) {
        assert!(n.starts_with(p) && p.len() == 6);
    }
    assert!(n.ends_with(textnorm::after_leading_postcode(&n)));
}

/// A package zip unpacked as `repro verify` unpacks one, into an empty folder. Whatever the
/// bytes, nothing is written beside that folder and it holds no symbolic link; an accepted zip's
/// files are exactly the regular files in the folder, each at a normalised relative path.
pub fn unzip(data: &[u8]) {
    use super::archive;
    let dir = scratch();
    let dest = dir.path().join("dest");
    std::fs::create_dir(&dest).expect("mkdir dest");
    let result = archive::unzip_from(Cursor::new(data), &dest);
    let beside: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read the scratch folder")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(beside, ["dest"], "unzip wrote beside its folder");
    let mut found = Vec::new();
    walk(&dest, "", &mut found);
    if let Ok(files) = result {
        for f in &files {
            assert_eq!(archive::check_relative(f), Ok(()), "accepted `{f}`");
        }
        let mut sorted = files.clone();
        sorted.dedup();
        assert_eq!(sorted, files, "files listed twice or unsorted");
        assert_eq!(found, files, "the folder holds other files than the zip's");
    }
}

/// Regular files under `dir`, sorted; a symbolic link or special file fails the check.
fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
    let mut names: Vec<String> = std::fs::read_dir(dir.join(rel))
        .expect("read a folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let meta = std::fs::symlink_metadata(dir.join(&path)).expect("stat");
        if meta.is_dir() {
            walk(dir, &path, out);
        } else {
            assert!(meta.is_file(), "`{path}` is not a regular file");
            out.push(path);
        }
    }
    out.sort();
}
