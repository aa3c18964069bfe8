//! `repro lint`: what a journal's data editor would flag, found before submission.
//!
//! Owns: the checks and their wording: absolute paths (in commands, params, stage spec and params
//! files, and quoted in the scripts a command stage runs), randomness without a seed (a heuristic
//! over commands and scripts: R `runif/rnorm/sample(...)` without `set.seed`, Python
//! `random.`/`np.random` without a seed, Stata `runiform()` and friends without `set seed`, shell
//! `$RANDOM`/`shuf`), declared seeds a command never passes on, final outputs no exhibit claims,
//! data sources without citation or availability statement, data files in no source, params a
//! command pastes in whose value a shell would interpret (a warning: they are pasted as is), and the
//! README facts the package would lack (no sources, no exhibits, no recorded runtimes). Errors make
//! `repro lint` exit 1; warnings alone exit 0. Deliberately does not own: loading the pipeline
//! (its errors exit 2 before lint runs) or the README's text (`readme`).

use repro_engine::params::Param;
use repro_engine::pipeline::{path_within, Action, Pipeline, Stage};
use repro_engine::yaml::{self, Node, Pos, Value};
use repro_kind::diag::{self, Diagnostic, Location};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub severity: Severity,
    pub diag: Diagnostic,
}

/// Every finding, in the order: pipeline file by position, then other files by path and line.
pub fn lint(p: &Pipeline) -> Vec<Finding> {
    let mut out = Vec::new();
    let produced = |path: &str| {
        p.stages.iter().any(|s| {
            s.outs
                .iter()
                .any(|o| path_within(path, o) || path_within(o, path))
        })
    };
    for s in &p.stages {
        stage_paths(p, s, &mut out);
        let scripts: Vec<&String> = s
            .deps
            .iter()
            .filter(|d| !produced(d) && language(d).is_some())
            .collect();
        for script in &scripts {
            script_paths(p, script, &mut out);
        }
        if let Action::Cmd(cmd) = &s.action {
            randomness(p, s, cmd, &scripts, &mut out);
            shell_params(p, s, cmd, &mut out);
        }
    }
    let mut yaml_files: Vec<String> = p
        .stages
        .iter()
        .flat_map(|s| s.deps.iter())
        .filter(|d| !produced(d) && (d.ends_with(".yaml") || d.ends_with(".yml")))
        .cloned()
        .chain(p.params_files.iter().cloned())
        .collect();
    yaml_files.sort();
    yaml_files.dedup();
    for f in &yaml_files {
        yaml_paths(p, f, &mut out);
    }
    exhibits(p, &mut out);
    sources(p, &mut out);
    out
}

/// The report: each finding, then a count.
pub fn render(findings: &[Finding]) -> String {
    let mut text = String::new();
    for f in findings {
        let label = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        text.push_str(&diag::render_labelled(label, &f.diag));
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    if findings.is_empty() {
        text.push_str("lint: no problems found\n");
    } else {
        text.push_str(&format!("lint: {errors} error(s), {warnings} warning(s)\n"));
    }
    text
}

fn at(p: &Pipeline, pos: Pos) -> Option<Location> {
    Some(Location {
        file: p.file.clone(),
        line: pos.line,
        column: pos.column,
    })
}

fn in_file(file: &str, line: usize, column: usize) -> Option<Location> {
    Some(Location {
        file: file.into(),
        line: line as u64,
        column: column as u64,
    })
}

fn push(out: &mut Vec<Finding>, severity: Severity, diag: Diagnostic) {
    out.push(Finding { severity, diag });
}

const RELATIVE_HINT: &str =
    "use a path relative to the pipeline file's folder; repro runs every command from there";

/// True for text that is an absolute, machine-specific path: `/x/...`, `~/...`, `C:\...`.
fn looks_absolute(s: &str) -> bool {
    let s = s.trim_matches(|c| c == '"' || c == '\'');
    if s.starts_with("~/") {
        return true;
    }
    let b = s.as_bytes();
    if b.len() > 2 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'/' || b[2] == b'\\')
    {
        return true;
    }
    if let Some(rest) = s.strip_prefix('/') {
        // `/dev/null` and friends are the same on every machine.
        let first = rest.split('/').next().unwrap_or("");
        return !first.is_empty()
            && first
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.')
            && !matches!(first, "dev" | "proc");
    }
    false
}

fn stage_paths(p: &Pipeline, s: &Stage, out: &mut Vec<Finding>) {
    if let Action::Cmd(cmd) = &s.action {
        for word in cmd.split(|c: char| c.is_whitespace() || c == '=' || c == ';') {
            if looks_absolute(word) {
                push(
                    out,
                    Severity::Error,
                    Diagnostic::new(format!(
                        "absolute path `{}` in the command of stage `{}`",
                        word.trim_matches(|c| c == '"' || c == '\''),
                        s.name
                    ))
                    .at(at(p, s.pos))
                    .hint(RELATIVE_HINT),
                );
            }
        }
    }
    for (name, value) in &s.params {
        let mut strings = Vec::new();
        param_strings(value, &mut strings);
        for v in strings.into_iter().filter(|v| looks_absolute(v)) {
            push(
                out,
                Severity::Error,
                Diagnostic::new(format!(
                    "absolute path `{v}` in param `{name}` of stage `{}`",
                    s.name
                ))
                .at(at(p, s.pos))
                .hint(RELATIVE_HINT),
            );
        }
    }
}

/// Characters `sh` gives a meaning to wherever they stand in a word.
const SHELL_SPECIAL: &str = "$`;|&<>()'\"\\*?[\n\r";

/// The characters of `value` a shell would interpret, in order of appearance, as shown in a
/// message (`~` and `#` count at the start of a word; spaces, which only split words, do not).
fn shell_characters(value: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut word_start = true;
    for c in value.chars() {
        let special = SHELL_SPECIAL.contains(c) || (word_start && (c == '~' || c == '#'));
        word_start = c == ' ' || c == '\t';
        if !special {
            continue;
        }
        let shown = match c {
            '\n' => "a newline".to_string(),
            '\r' => "a carriage return".to_string(),
            '`' => "a backtick".to_string(),
            c => format!("`{c}`"),
        };
        if !found.contains(&shown) {
            found.push(shown);
        }
    }
    found
}

/// Params a command pastes in (`${params.NAME}`) whose value a shell would interpret: repro
/// substitutes the text as is (as DVC does) and `sh -c` runs the result.
fn shell_params(p: &Pipeline, s: &Stage, cmd: &str, out: &mut Vec<Finding>) {
    let mut seen: Vec<&str> = Vec::new();
    let mut rest = cmd;
    while let Some(start) = rest.find("${params.") {
        let after = &rest[start + "${params.".len()..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        rest = &after[end + 1..];
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        let value = s.params.get(name).or_else(|| {
            let (head, tail) = name.split_once('.')?;
            s.params.get(head)?.lookup(tail)
        });
        let Some(value) = value.map(Param::as_command_text) else {
            continue;
        };
        let chars = shell_characters(&value);
        if chars.is_empty() {
            continue;
        }
        let var = repro_engine::executor::param_var(name);
        push(
            out,
            Severity::Warning,
            Diagnostic::new(format!(
                "param `{name}` of stage `{}` holds characters a shell interprets: {}",
                s.name,
                chars.join(", ")
            ))
            .at(at(p, s.pos))
            .cause(format!(
                "`${{params.{name}}}` pastes `{}` into the command as is, and `sh -c` runs the result",
                value.escape_debug()
            ))
            .hint(format!(
                "if the value is data, not shell code, read it in the script from \"${var}\" (in double quotes), or keep these characters out of it"
            )),
        );
    }
}

fn param_strings<'a>(v: &'a Param, out: &mut Vec<&'a str>) {
    match v {
        Param::Str(s) => out.push(s),
        Param::List(items) => items.iter().for_each(|i| param_strings(i, out)),
        Param::Map(m) => m.values().for_each(|i| param_strings(i, out)),
        _ => {}
    }
}

fn yaml_paths(p: &Pipeline, rel: &str, out: &mut Vec<Finding>) {
    let Ok(text) = std::fs::read_to_string(p.root.join(rel)) else {
        return;
    };
    let Ok(doc) = yaml::parse(&text) else {
        return;
    };
    let mut found = Vec::new();
    yaml_strings(&doc, &mut found);
    for (value, pos) in found.into_iter().filter(|(v, _)| looks_absolute(v)) {
        push(
            out,
            Severity::Error,
            Diagnostic::new(format!("absolute path `{value}` in `{rel}`"))
                .at(in_file(rel, pos.line as usize, pos.column as usize))
                .hint(RELATIVE_HINT),
        );
    }
}

fn yaml_strings(n: &Node, out: &mut Vec<(String, Pos)>) {
    match &n.value {
        Value::Str(s) => out.push((s.clone(), n.pos)),
        Value::Seq(items) => items.iter().for_each(|i| yaml_strings(i, out)),
        Value::Map(entries) => entries.iter().for_each(|(_, v)| yaml_strings(v, out)),
        _ => {}
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lang {
    R,
    Python,
    Stata,
    Shell,
}

fn language(path: &str) -> Option<Lang> {
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    match ext.as_str() {
        "r" | "rmd" | "qmd" => Some(Lang::R),
        "py" => Some(Lang::Python),
        "do" | "ado" => Some(Lang::Stata),
        "sh" | "bash" => Some(Lang::Shell),
        _ => None,
    }
}

/// The code part of a line: comments removed (approximately: a `#` or `//` outside quotes).
fn code_of(line: &str, lang: Lang) -> &str {
    let t = line.trim_start();
    if lang == Lang::Stata && (t.starts_with('*') || t.starts_with("//")) {
        return "";
    }
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') if lang != Lang::Stata => return &line[..i],
            (None, '/') if lang == Lang::Stata && line[i..].starts_with("//") => return &line[..i],
            _ => {}
        }
    }
    line
}

fn script_paths(p: &Pipeline, rel: &str, out: &mut Vec<Finding>) {
    let Some(lang) = language(rel) else { return };
    let Ok(text) = std::fs::read_to_string(p.root.join(rel)) else {
        return;
    };
    for (n, line) in text.lines().enumerate() {
        let code = code_of(line, lang);
        // Quoted literals only: a path in a string is a path the script opens.
        for (i, c) in code.char_indices() {
            if c != '"' && c != '\'' {
                continue;
            }
            let rest = &code[i + 1..];
            let literal = rest.split(c).next().unwrap_or("");
            if literal.len() > 2 && looks_absolute(literal) {
                push(
                    out,
                    Severity::Error,
                    Diagnostic::new(format!("absolute path `{literal}` in `{rel}`"))
                        .at(in_file(rel, n + 1, i + 2))
                        .hint(RELATIVE_HINT),
                );
                break;
            }
        }
    }
}

/// Calls that draw random numbers, and calls that seed them, per language.
fn random_patterns(lang: Lang) -> (&'static [&'static str], &'static [&'static str]) {
    match lang {
        Lang::R => (
            &[
                "runif(",
                "rnorm(",
                "sample(",
                "rbinom(",
                "rpois(",
                "rexp(",
                "rgamma(",
                "rbeta(",
                "sample_n(",
                "slice_sample(",
            ],
            &["set.seed("],
        ),
        Lang::Python => (
            &["random.", "default_rng(", "shuffle("],
            &[
                "seed(",
                "random_state=",
                "default_rng(REPRO",
                "default_rng(int(",
            ],
        ),
        Lang::Stata => (
            &[
                "runiform(",
                "rnormal(",
                "rbinomial(",
                "rpoisson(",
                "sample ",
                "bsample",
                "bootstrap",
                "simulate",
                "permute",
            ],
            &["set seed"],
        ),
        Lang::Shell => (
            &["$RANDOM", "shuf ", "sort -R", "--random-sort"],
            &["--random-source"],
        ),
    }
}

/// Finds `pat` as a call, not inside a longer name (`resample(` is not `sample(`).
fn find_call(code: &str, pat: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = code[from..].find(pat) {
        let at = from + i;
        let before = code[..at].chars().next_back();
        let ident = |c: char| c.is_alphanumeric() || c == '_';
        let starts_ident = pat.chars().next().is_some_and(ident);
        if !(starts_ident && before.is_some_and(ident)) {
            return Some(at);
        }
        from = at + pat.len();
    }
    None
}

fn randomness(p: &Pipeline, s: &Stage, cmd: &str, scripts: &[&String], out: &mut Vec<Finding>) {
    let mut uses_declared =
        cmd.contains(repro_engine::executor::SEED_VAR) || cmd.contains("REPRO_SEED");
    let mut first_random: Option<(String, usize, usize, String)> = None;
    let mut seeded = false;
    let mut texts: Vec<(String, Lang, String)> = vec![("".into(), Lang::Shell, cmd.to_string())];
    for script in scripts {
        if let (Some(lang), Ok(text)) = (
            language(script),
            std::fs::read_to_string(p.root.join(script.as_str())),
        ) {
            texts.push((script.to_string(), lang, text));
        }
    }
    for (file, lang, text) in &texts {
        let (draws, seeds) = random_patterns(*lang);
        for (n, line) in text.lines().enumerate() {
            let code = code_of(line, *lang);
            if code.contains("REPRO_SEED") {
                uses_declared = true;
            }
            if seeds.iter().any(|pat| code.contains(pat)) {
                seeded = true;
            }
            if first_random.is_some() {
                continue;
            }
            if let Some((pat, col)) = draws
                .iter()
                .find_map(|pat| find_call(code, pat).map(|c| (pat, c)))
            {
                first_random = Some((file.clone(), n + 1, col + 1, pat.trim().to_string()));
            }
        }
    }
    let declared = s.seed.is_some();
    match (&first_random, seeded || uses_declared, declared) {
        (Some((file, line, col, call)), false, _) => {
            let loc = if file.is_empty() {
                at(p, s.pos)
            } else {
                in_file(file, *line, *col)
            };
            let hint = if declared {
                "seed the generator from the declared seed (`${seed}` in the command, or `REPRO_SEED` in the script)"
            } else {
                "declare `seed: <integer>` on the stage and seed the generator from it (`${seed}` in the command, or `REPRO_SEED` in the script)"
            };
            push(
                out,
                Severity::Error,
                Diagnostic::new(format!(
                    "stage `{}` uses randomness without a seed",
                    s.name
                ))
                .at(loc)
                .cause(format!("`{call}` draws random numbers and nothing sets a seed"))
                .hint(hint),
            );
        }
        (Some(_), true, false) => push(
            out,
            Severity::Warning,
            Diagnostic::new(format!(
                "stage `{}` seeds its random numbers in code but declares no `seed:`",
                s.name
            ))
            .at(at(p, s.pos))
            .hint("declare `seed: <integer>` and pass it (`${seed}` or `REPRO_SEED`) so the package README lists it"),
        ),
        _ => {}
    }
    if declared && !uses_declared {
        push(
            out,
            Severity::Warning,
            Diagnostic::new(format!(
                "stage `{}` declares a seed that its command never passes on",
                s.name
            ))
            .at(at(p, s.pos))
            .hint("use `${seed}` in the command or read `REPRO_SEED` in the script"),
        );
    }
}

fn exhibits(p: &Pipeline, out: &mut Vec<Finding>) {
    if p.exhibits.is_empty() {
        push(
            out,
            Severity::Error,
            Diagnostic::new("the pipeline declares no `exhibits:`")
                .at(at(p, Pos { line: 1, column: 1 }))
                .cause("the package README's list of tables and figures would be empty")
                .hint("add `exhibits:` mapping each output to its label, e.g. `output/tables/t2.csv: Table 2`"),
        );
        return;
    }
    let consumed = |o: &str| {
        p.stages.iter().any(|t| {
            t.deps
                .iter()
                .any(|d| path_within(d, o) || path_within(o, d))
        })
    };
    let claimed = |o: &str| {
        p.exhibits
            .iter()
            .any(|e| path_within(&e.output, o) || path_within(o, &e.output))
    };
    for s in &p.stages {
        // A stage whose work reaches an exhibit (directly or through a later stage) may write
        // side files: other formats of a table, per-model results, a quarantine, a report.
        if s.outs.iter().any(|o| consumed(o) || claimed(o)) {
            continue;
        }
        for o in &s.outs {
            push(
                out,
                Severity::Warning,
                Diagnostic::new(format!(
                    "output `{o}` of stage `{}` is claimed by no exhibit",
                    s.name
                ))
                .at(at(p, s.pos))
                .hint(format!(
                    "map it in `exhibits:` (e.g. `{o}: Table 1`), or drop it if nothing uses it"
                )),
            );
        }
    }
}

fn sources(p: &Pipeline, out: &mut Vec<Finding>) {
    let mut paper = Vec::new();
    if p.title.is_none() {
        paper.push("`title:`");
    }
    if p.authors.is_empty() {
        paper.push("`authors:`");
    }
    if p.license.is_none() {
        paper.push("`license:`");
    }
    if !paper.is_empty() {
        push(
            out,
            Severity::Warning,
            Diagnostic::new(format!("the pipeline declares no {}", paper.join(", ")))
                .at(at(p, Pos { line: 1, column: 1 }))
                .cause("the package README names the paper, its authors and the licence of the pipeline's code")
                .hint("add them at the top of the pipeline file, e.g. `title: \"...\"`, `authors: [A, B]`, `license: MIT`"),
        );
    }
    if p.sources.is_empty() {
        push(
            out,
            Severity::Error,
            Diagnostic::new("the pipeline declares no `sources:`")
                .at(at(p, Pos { line: 1, column: 1 }))
                .cause("the package README's data availability section would be empty")
                .hint("add `sources:` with each data source's `files`, `citation`, `license`, `access` and `provided`"),
        );
    }
    for src in &p.sources {
        if src.citation.is_none() {
            push(
                out,
                Severity::Error,
                Diagnostic::new(format!("source `{}` has no citation", src.name))
                    .at(at(p, src.pos))
                    .hint("add `citation:` as it should appear in the paper's references"),
            );
        }
        if !src.provided && src.statement.is_none() {
            push(
                out,
                Severity::Error,
                Diagnostic::new(format!(
                    "source `{}` is not provided and has no availability statement",
                    src.name
                ))
                .at(at(p, src.pos))
                .hint("add `statement:` saying why the data cannot be shared and how a replicator gets access"),
            );
        }
        if src.license.is_none() {
            push(
                out,
                Severity::Warning,
                Diagnostic::new(format!("source `{}` states no licence", src.name))
                    .at(at(p, src.pos))
                    .hint("add `license:` (e.g. `CC-BY-4.0`, or the terms of use)"),
            );
        }
        if src.access.is_none() {
            push(
                out,
                Severity::Warning,
                Diagnostic::new(format!(
                    "source `{}` does not say how to obtain it",
                    src.name
                ))
                .at(at(p, src.pos))
                .hint("add `access:` (a URL, an archive and identifier, or whom to ask)"),
            );
        }
        for f in &src.files {
            if !p.root.join(f).exists() && src.provided {
                push(
                    out,
                    Severity::Error,
                    Diagnostic::new(format!(
                        "file `{f}` of source `{}` does not exist",
                        src.name
                    ))
                    .at(at(p, src.pos))
                    .hint("fix the path, or mark the source `provided: false`"),
                );
            }
        }
    }
    for d in p.source_deps() {
        if crate::replication::readme::is_code(&d) {
            continue;
        }
        if p.sources.iter().any(|s| {
            s.files
                .iter()
                .any(|f| path_within(&d, f) || path_within(f, &d))
        }) {
            continue;
        }
        let reader = p
            .stages
            .iter()
            .find(|s| s.deps.contains(&d))
            .map_or(Pos { line: 1, column: 1 }, |s| s.pos);
        push(
            out,
            Severity::Warning,
            Diagnostic::new(format!("data file `{d}` belongs to no source"))
                .at(at(p, reader))
                .hint(
                    "list it in the `files` of a source, so the README states where it comes from",
                ),
        );
    }
    let store = repro_engine::store::Store::new(&p.root);
    if !store.run_log().iter().any(|l| l["outcome"] == "ran") {
        push(
            out,
            Severity::Warning,
            Diagnostic::new("no stage run is recorded in `cache/runs.jsonl`")
                .cause("the package README could not state runtimes")
                .hint("run `repro run` (with `--force` if everything is restored) before `repro package`"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_absolute_paths() {
        for yes in [
            "/home/ana/data.csv",
            "~/x.csv",
            "C:\\Users\\a.dta",
            "C:/data",
            "'/Users/b/c'",
        ] {
            assert!(looks_absolute(yes), "{yes}");
        }
        for no in [
            "data/x.csv",
            "/dev/null",
            "/",
            "a/b",
            "http://x.org/a",
            "s/a/b/",
        ] {
            assert!(!looks_absolute(no), "{no}");
        }
    }

    #[test]
    fn finds_calls_not_longer_names() {
        assert_eq!(find_call("x <- resample(y)", "sample("), None);
        assert_eq!(find_call("x <- sample(y)", "sample("), Some(5));
        assert_eq!(find_call("np.random.rand(3)", "random."), Some(3));
    }

    #[test]
    fn finds_what_a_shell_interprets() {
        assert!(shell_characters("table-1_final.csv 2").is_empty());
        assert_eq!(shell_characters("a; $(b)"), ["`;`", "`$`", "`(`", "`)`"]);
        assert_eq!(shell_characters("~/x #c a#b"), ["`~`", "`#`"]);
        assert_eq!(shell_characters("`x`\n"), ["a backtick", "a newline"]);
        assert_eq!(shell_characters("[1,2]"), ["`[`"]);
    }

    #[test]
    fn strips_comments() {
        assert_eq!(code_of("x <- 1 # runif(3)", Lang::R), "x <- 1 ");
        assert_eq!(code_of("s = '#' + y", Lang::Python), "s = '#' + y");
        assert_eq!(code_of("* gen u = runiform()", Lang::Stata), "");
    }
}
