//! A remote in S3-compatible object storage (AWS S3, MinIO, Ceph, SeaweedFS...), through the
//! `object_store` crate.
//!
//! Owns: the client (endpoint, region, path-style requests, timeouts and a short retry budget so
//! an offline machine is told quickly), the tokio runtime it runs on, and mapping operations
//! onto requests: objects and records are written with `PutMode::Create` (`If-None-Match: *`),
//! so an existing key answers 412 (or 409) and is never replaced; "already exists" is success
//! once the existing object's size matches. Deliberately does not own: verification (the engine
//! hashes every download) or where credentials are read (`credentials`).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig,
};
use repro_engine::remote::{object_key, Put, Remote, RemoteError};
use repro_kind::diag::Diagnostic;

use crate::credentials;

pub struct S3 {
    store: AmazonS3,
    prefix: String,
    name: String,
    rt: tokio::runtime::Runtime,
}

impl S3 {
    pub fn open(
        bucket: &str,
        prefix: &str,
        endpoint: Option<&str>,
        region: Option<&str>,
        name: String,
    ) -> Result<S3, Diagnostic> {
        let fail = |why: String| Diagnostic::new(format!("cannot open remote `{name}`")).cause(why);
        let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if !credentials::in_environment() {
            let Some(keys) = credentials::from_profile() else {
                return Err(
                    fail("no AWS credentials in the environment or profile".into()).hint(
                        "set `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, or `AWS_PROFILE` \
                         with a section in `~/.aws/credentials`; the pipeline never holds them",
                    ),
                );
            };
            tracing::debug!("S3 credentials from {}", keys.source);
            b = b
                .with_access_key_id(keys.key_id)
                .with_secret_access_key(keys.secret);
            if let Some(t) = keys.token {
                b = b.with_token(t);
            }
        }
        let env_endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
        let http = endpoint
            .or(env_endpoint.as_deref())
            .is_some_and(|e| e.starts_with("http://"))
            || std::env::var("AWS_ALLOW_HTTP").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
        if let Some(e) = endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(r) = region {
            b = b.with_region(r);
        }
        let store = b
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(600)),
            )
            .with_allow_http(http)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
            })
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("repro-s3")
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start the S3 client: {e}")))?;
        Ok(S3 {
            store,
            prefix: prefix.to_string(),
            name,
            rt,
        })
    }

    fn key(&self, rel: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(rel)
        } else {
            Key::from(format!("{}/{rel}", self.prefix))
        }
    }

    fn put_create(&self, key: &Key, payload: PutPayload) -> Result<Put, RemoteError> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self.rt.block_on(self.store.put_opts(key, payload, opts)) {
            Ok(_) => Ok(Put::Created),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Put::Existed),
            Err(e) => Err(error("cannot write", key, &e)),
        }
    }
}

/// The error with its chain of causes (object_store's text names the key and the HTTP status,
/// never the credentials).
fn error(what: &str, key: &Key, e: &object_store::Error) -> RemoteError {
    let mut text = format!("{what} `{key}`: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    RemoteError(text)
}

impl Remote for S3 {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn get_record(&self, key: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        let k = self.key(&format!("stages/{key}"));
        self.rt.block_on(async {
            match self.store.get(&k).await {
                Ok(r) => r
                    .bytes()
                    .await
                    .map(|b| Some(b.to_vec()))
                    .map_err(|e| error("cannot read", &k, &e)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(error("cannot read", &k, &e)),
            }
        })
    }

    fn put_record(&self, key: &str, bytes: &[u8]) -> Result<Put, RemoteError> {
        self.put_create(&self.key(&format!("stages/{key}")), bytes.to_vec().into())
    }

    fn has_object(&self, hash: &str) -> Result<bool, RemoteError> {
        let k = self.key(&object_key(hash));
        match self.rt.block_on(self.store.head(&k)) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(error("cannot look up", &k, &e)),
        }
    }

    fn get_object(
        &self,
        hash: &str,
        dest: &Path,
        progress: &dyn Fn(u64),
    ) -> Result<bool, RemoteError> {
        let k = self.key(&object_key(hash));
        self.rt.block_on(async {
            let mut stream = match self.store.get(&k).await {
                Ok(r) => r.into_stream(),
                Err(object_store::Error::NotFound { .. }) => return Ok(false),
                Err(e) => return Err(error("cannot read", &k, &e)),
            };
            let local =
                |e: std::io::Error| RemoteError(format!("cannot write `{}`: {e}", dest.display()));
            let mut out = std::fs::File::create(dest).map_err(local)?;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| error("cannot read", &k, &e))?;
                out.write_all(&chunk).map_err(local)?;
                progress(chunk.len() as u64);
            }
            out.flush().map_err(local)?;
            Ok(true)
        })
    }

    fn put_object(&self, hash: &str, src: &Path) -> Result<Put, RemoteError> {
        let k = self.key(&object_key(hash));
        let bytes = std::fs::read(src)
            .map_err(|e| RemoteError(format!("cannot read `{}`: {e}", src.display())))?;
        let size = bytes.len() as u64;
        match self.put_create(&k, bytes.into())? {
            Put::Created => Ok(Put::Created),
            Put::Existed => {
                // Created by someone else meanwhile: the same content has the same size.
                let meta = self
                    .rt
                    .block_on(self.store.head(&k))
                    .map_err(|e| error("cannot look up", &k, &e))?;
                if meta.size != size {
                    return Err(RemoteError(format!(
                        "`{k}` already exists with {} bytes instead of {size}: it is damaged",
                        meta.size
                    )));
                }
                Ok(Put::Existed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Against the S3 service the environment names (`.ci/run` starts SeaweedFS and exports
    /// it); the integration tests in `tests/integration/remote.rs` also start one themselves.
    fn service() -> Option<S3> {
        let Ok(bucket) = std::env::var("S3_BUCKET") else {
            assert!(
                std::env::var("REPRO_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "REPRO_REQUIRE_SERVICES=1 but no S3 service in the environment (S3_BUCKET)"
            );
            eprintln!("SKIPPED: no S3 service in the environment (see tests/services/README.md)");
            return None;
        };
        let prefix = format!("unit-{}-{}", std::process::id(), rand_suffix());
        Some(
            S3::open(
                &bucket,
                &prefix,
                None,
                None,
                format!("s3://{bucket}/{prefix}"),
            )
            .unwrap(),
        )
    }

    fn rand_suffix() -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    }

    #[test]
    fn writes_are_create_only_on_a_real_server() {
        let Some(s3) = service() else { return };
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::write(&src, b"payload").unwrap();
        let hash = "ef".repeat(32);
        assert!(!s3.has_object(&hash).unwrap());
        let results: Vec<Put> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|_| s.spawn(|| s3.put_object(&hash, &src).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|&&p| p == Put::Created).count(), 1);
        assert!(s3.has_object(&hash).unwrap());
        // "Already exists" (412) with another size is damage; the stored bytes stay.
        std::fs::write(&src, b"a longer payload").unwrap();
        let err = s3.put_object(&hash, &src).unwrap_err();
        assert!(err.0.contains("it is damaged"), "{err}");
        let got = dir.path().join("got");
        let seen = AtomicU64::new(0);
        let found = s3
            .get_object(&hash, &got, &|n| {
                seen.fetch_add(n, Ordering::Relaxed);
            })
            .unwrap();
        assert!(found);
        assert_eq!(std::fs::read(&got).unwrap(), b"payload");
        assert_eq!(seen.load(Ordering::Relaxed), 7);
        assert!(!s3.get_object(&"00".repeat(32), &got, &|_| {}).unwrap());
        assert_eq!(s3.put_record("k", b"one").unwrap(), Put::Created);
        assert_eq!(s3.put_record("k", b"two").unwrap(), Put::Existed);
        assert_eq!(s3.get_record("k").unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(s3.get_record("missing").unwrap(), None);
    }
}
