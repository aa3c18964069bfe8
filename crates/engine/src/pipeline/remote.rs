//! The top-level `remote:` block: where the shared cache lives.
//!
//! Owns: [`RemoteSpec`] and validating `remote: {url, endpoint, region}` with places. A remote is
//! metadata: it enters no stage key and no lock. Credentials are refused here on purpose: they
//! come from the standard AWS environment variables or profile, never from the pipeline file.
//! Deliberately does not own: talking to the remote (`repro-remote`) or what is shared
//! (`crate::remote`).

use std::path::PathBuf;

use super::cx::Cx;
use crate::yaml::{Node, Pos, Value};

/// A validated `remote:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSpec {
    pub url: RemoteUrl,
    /// `endpoint:` of an S3-compatible service (e.g. `https://s3.example.edu`); S3 only.
    pub endpoint: Option<String>,
    /// `region:`; S3 only.
    pub region: Option<String>,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteUrl {
    /// `s3://BUCKET/PREFIX`; `prefix` has no leading or trailing `/` (may be empty).
    S3 { bucket: String, prefix: String },
    /// A folder, as written (absolute, or relative to the pipeline file's folder).
    Folder(PathBuf),
}

impl RemoteSpec {
    /// The remote as the user wrote it, for messages (never holds credentials).
    pub fn describe(&self) -> String {
        match &self.url {
            RemoteUrl::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}"),
            RemoteUrl::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
            RemoteUrl::Folder(p) => p.display().to_string(),
        }
    }
}

const REMOTE_KEYS: &[&str] = &["url", "endpoint", "region"];
/// Keys people may try for credentials: refused with a hint instead of "unknown key".
const CREDENTIAL_KEYS: &[&str] = &[
    "access_key_id",
    "secret_access_key",
    "session_token",
    "token",
    "password",
    "secret",
    "key",
    "credentials",
];

impl Cx<'_> {
    /// The optional top-level `remote:`.
    pub(super) fn remote(&mut self, doc: &Node) -> Option<RemoteSpec> {
        let Value::Map(entries) = &doc.value else {
            return None;
        };
        let (key, node) = entries.iter().find(|(k, _)| k.name == "remote")?;
        let Value::Map(fields) = &node.value else {
            self.error(
                node.pos,
                format!(
                    "`remote` must be a mapping with `url:`, found {}",
                    node.value.type_name()
                ),
            )
            .hint = Some("remote:\n  url: s3://BUCKET/PREFIX   # or a folder path".into());
            return None;
        };
        let (mut url, mut endpoint, mut region) = (None, None, None);
        for (k, v) in fields {
            match k.name.as_str() {
                "url" => url = self.remote_string("url", v).map(|s| (s, v.pos)),
                "endpoint" => endpoint = self.remote_endpoint(v),
                "region" => region = self.remote_string("region", v),
                name if CREDENTIAL_KEYS.contains(&name) => {
                    self.error(
                        k.pos,
                        format!("`remote` may not hold credentials (`{name}`)"),
                    )
                    .hint = Some(
                        "remove it and set `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` in the \
                         environment, or `AWS_PROFILE` with `~/.aws/credentials`"
                            .into(),
                    );
                }
                _ => self.unknown_key(k, "in `remote`", REMOTE_KEYS),
            }
        }
        let Some((raw, url_pos)) = url else {
            self.error(key.pos, "`remote` has no `url`".into()).hint =
                Some("add `url: s3://BUCKET/PREFIX` or `url: /path/to/shared/folder`".into());
            return None;
        };
        let url = self.remote_url(&raw, url_pos)?;
        if matches!(url, RemoteUrl::Folder(_)) && (endpoint.is_some() || region.is_some()) {
            self.error(
                node.pos,
                "`endpoint` and `region` apply only to an `s3://` remote".into(),
            );
        }
        Some(RemoteSpec {
            url,
            endpoint,
            region,
            pos: node.pos,
        })
    }

    fn remote_string(&mut self, field: &str, v: &Node) -> Option<String> {
        let s = self.string("`remote`", field, v)?;
        if s.trim().is_empty() {
            self.error(v.pos, format!("`{field}` of `remote` is empty"));
            return None;
        }
        Some(s)
    }

    fn remote_endpoint(&mut self, v: &Node) -> Option<String> {
        let s = self.remote_string("endpoint", v)?;
        let Some((scheme, rest)) = s.split_once("://") else {
            self.error(
                v.pos,
                format!("`endpoint` `{s}` of `remote` must start with `https://` or `http://`"),
            );
            return None;
        };
        if scheme != "https" && scheme != "http" {
            self.error(
                v.pos,
                format!("`endpoint` `{s}` of `remote` must start with `https://` or `http://`"),
            );
            return None;
        }
        // `https://user:secret@host` would put a credential into the pipeline file.
        if rest
            .split('/')
            .next()
            .is_some_and(|host| host.contains('@'))
        {
            self.error(
                v.pos,
                "`endpoint` of `remote` may not hold credentials".into(),
            )
            .hint = Some(
                "write the endpoint without `user:password@`; credentials come from the \
                 environment"
                    .into(),
            );
            return None;
        }
        Some(s.trim_end_matches('/').to_string())
    }

    fn remote_url(&mut self, raw: &str, pos: Pos) -> Option<RemoteUrl> {
        if let Some(rest) = raw.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let prefix = prefix.trim_matches('/');
            if bucket.is_empty() || bucket.contains('@') || bucket.contains(':') {
                self.error(pos, format!("invalid `url` `{raw}` of `remote`"))
                    .hint = Some("write `s3://BUCKET` or `s3://BUCKET/PREFIX`".into());
                return None;
            }
            if prefix
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
            {
                self.error(
                    pos,
                    format!("invalid prefix in `url` `{raw}` of `remote`: empty, `.` or `..` part"),
                );
                return None;
            }
            return Some(RemoteUrl::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            });
        }
        if let Some((scheme, _)) = raw.split_once("://") {
            self.error(
                pos,
                format!("`remote` url scheme `{scheme}://` is not supported"),
            )
            .hint = Some("use `s3://BUCKET/PREFIX` (any S3-compatible service) or a folder".into());
            return None;
        }
        // A folder, wherever the user says (it may be outside the project on purpose).
        let path = PathBuf::from(raw);
        Some(RemoteUrl::Folder(if path.is_absolute() {
            path
        } else {
            self.root.join(path)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use repro_kind::diag::render;
    use std::path::Path;

    fn parse(remote: &str) -> Result<Option<RemoteSpec>, String> {
        let text = format!("{remote}stages:\n  a:\n    cmd: echo > o\n    outs: [o]\n");
        super::super::parse_pipeline(
            Path::new("pipeline.yaml"),
            Path::new("proj"),
            &text,
            &repro_kind::stage::NoKinds,
        )
        .map(|p| p.remote)
        .map_err(|f| render(&f))
    }

    #[test]
    fn reads_s3_and_folder_remotes() {
        let s3 = parse(
            "remote:\n  url: s3://lab/a/b/\n  endpoint: https://s3.example.edu/\n  region: eu\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            s3.url,
            RemoteUrl::S3 {
                bucket: "lab".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(s3.endpoint.as_deref(), Some("https://s3.example.edu"));
        assert_eq!(s3.describe(), "s3://lab/a/b");
        let rel = parse("remote:\n  url: ../shared\n").unwrap().unwrap();
        assert_eq!(rel.url, RemoteUrl::Folder(PathBuf::from("proj/../shared")));
        let abs = parse("remote:\n  url: /nfs/cache\n").unwrap().unwrap();
        assert_eq!(abs.url, RemoteUrl::Folder(PathBuf::from("/nfs/cache")));
        assert_eq!(parse("").unwrap(), None);
    }

    #[test]
    fn refuses_credentials_and_bad_urls_with_places() {
        let err = parse("remote:\n  url: s3://b/p\n  secret_access_key: x\n").unwrap_err();
        assert!(
            err.contains("`remote` may not hold credentials (`secret_access_key`)"),
            "{err}"
        );
        assert!(err.contains("pipeline.yaml:3:3"), "{err}");
        let err = parse("remote:\n  url: s3://b\n  endpoint: https://k:s@host\n").unwrap_err();
        assert!(err.contains("may not hold credentials"), "{err}");
        for (bad, says) in [
            ("url: gs://b", "scheme `gs://` is not supported"),
            ("url: s3://", "invalid `url` `s3://`"),
            ("url: s3://b/x/../y", "empty, `.` or `..` part"),
            ("url: /x\n  region: eu", "apply only to an `s3://` remote"),
            ("endpoint: https://h", "`remote` has no `url`"),
            ("url: 3", "`url` of `remote` must be a string"),
        ] {
            let err = parse(&format!("remote:\n  {bad}\n")).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let err = parse("remote: s3://b\n").unwrap_err();
        assert!(err.contains("`remote` must be a mapping"), "{err}");
    }
}
