//! Shell words: user values written into `run.sh` and the README's commands.
//!
//! Owns: quoting a value as one shell word, and file names that no option parser takes for a
//! flag. Deliberately does not own: what the scripts say (`package`, `readme`).

/// A file name as one shell word that no option parser mistakes for a flag.
pub fn file_arg(name: &str) -> String {
    if name.starts_with('-') {
        shell_quote(&format!("./{name}"))
    } else {
        shell_quote(name)
    }
}

/// `s` as one shell word: as is when it holds only characters no shell interprets, else in
/// single quotes (each `'` written `'\''`). Control characters are refused before this.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./+,:@%=-".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
