//! Where S3 credentials come from: the standard AWS environment variables, else the AWS profile.
//!
//! Owns: reading the `[profile]` section of the shared credentials file
//! (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`) for `AWS_PROFILE` (default
//! `default`), as the AWS CLI does. `object_store` reads the environment itself but not profile
//! files; the file format is three `key = value` lines under a `[name]` header, so a few lines
//! here are simpler than a configuration crate. Deliberately does not own: holding or printing
//! credentials (they go straight into the S3 client and appear in no message).

use std::path::PathBuf;

/// Keys and optional session token from a profile.
pub struct ProfileKeys {
    pub key_id: String,
    pub secret: String,
    pub token: Option<String>,
    /// Which profile and file, for messages.
    pub source: String,
}

/// True when the environment names credentials `object_store` reads by itself (static keys,
/// web identity, or a container credentials endpoint).
pub fn in_environment() -> bool {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    set("AWS_ACCESS_KEY_ID")
        || set("AWS_WEB_IDENTITY_TOKEN_FILE")
        || set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
}

/// The profile's keys, if the credentials file has them.
pub fn from_profile() -> Option<ProfileKeys> {
    let file = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws/credentials")))?;
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let text = std::fs::read_to_string(&file).ok()?;
    let (mut key_id, mut secret, mut token) = (None, None, None);
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == profile;
            continue;
        }
        let Some((k, v)) = line.split_once('=').filter(|_| inside) else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim() {
            "aws_access_key_id" => key_id = Some(v),
            "aws_secret_access_key" => secret = Some(v),
            "aws_session_token" => token = Some(v),
            _ => {}
        }
    }
    Some(ProfileKeys {
        key_id: key_id?,
        secret: secret?,
        token,
        source: format!("profile `{profile}` in `{}`", file.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_named_profile_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(
            &file,
            "[default]\naws_access_key_id = A\naws_secret_access_key = B\n\n[work]\n# comment\naws_access_key_id=C\naws_secret_access_key = D\naws_session_token = E\n",
        )
        .unwrap();
        // The only test in this binary that touches these variables.
        std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", &file);
        std::env::set_var("AWS_PROFILE", "work");
        let k = from_profile().unwrap();
        assert_eq!((k.key_id.as_str(), k.secret.as_str()), ("C", "D"));
        assert_eq!(k.token.as_deref(), Some("E"));
        std::env::set_var("AWS_PROFILE", "default");
        let k = from_profile().unwrap();
        assert_eq!((k.key_id.as_str(), k.token), ("A", None));
        std::env::set_var("AWS_PROFILE", "missing");
        assert!(from_profile().is_none());
    }
}
