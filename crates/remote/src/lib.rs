//! repro's shared cache: the engine's [`Remote`] over S3-compatible storage or a shared folder.
//!
//! Owns: opening the remote a pipeline's `remote:` names ([`open`]): an `s3://` URL through the
//! `object_store` crate (`s3`), with a small tokio runtime inside so the engine and the binary
//! stay synchronous, or a folder on a shared filesystem (`folder`). Credentials come only from
//! the standard AWS environment variables or profile (`credentials`). Deliberately does not own:
//! what is shared, in what order, or verification (`repro_engine::remote` and `share`).

// Diagnostics travel on the cold path only; keeping them unboxed keeps the code plain.
#![allow(clippy::result_large_err)]

mod credentials;
mod folder;
mod s3;

use std::sync::Arc;

use repro_engine::pipeline::{RemoteSpec, RemoteUrl};
use repro_engine::remote::Remote;
use repro_kind::diag::Diagnostic;

/// Opens the remote `spec` names. Nothing is contacted yet beyond checking that a folder
/// exists; a missing credential or folder is an error here.
pub fn open(spec: &RemoteSpec) -> Result<Arc<dyn Remote>, Diagnostic> {
    match &spec.url {
        RemoteUrl::Folder(path) => Ok(Arc::new(folder::Folder::open(path, spec.describe())?)),
        RemoteUrl::S3 { bucket, prefix } => Ok(Arc::new(s3::S3::open(
            bucket,
            prefix,
            spec.endpoint.as_deref(),
            spec.region.as_deref(),
            spec.describe(),
        )?)),
    }
}
