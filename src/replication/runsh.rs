//! `run.sh`, the master script of a replication package.
//!
//! Owns: the script's text. It runs the shipped binary (`repro-bin/repro`) when its sha256 is the
//! one recorded here and it runs on the machine; otherwise, or with `sh run.sh --build`, it builds
//! repro from `repro-src/` (offline, from `repro-src/vendor/`, when the package vendors the
//! crates). Then `repro verify .`. Deliberately does not own: what the package holds (`package`)
//! or quoting (`shell`).

use crate::replication::shell::{file_arg, shell_quote};
use crate::replication::shipped::Shipped;

/// Where the package puts the shipped binary.
pub const BIN_DIR: &str = "repro-bin";
pub const BIN_PATH: &str = "repro-bin/repro";

/// What run.sh is written from.
pub struct RunScript<'a> {
    pub pipeline_file: &'a str,
    pub shipped: &'a Shipped,
    /// Whether `repro-src/vendor/` holds the crates (then the build needs no network).
    pub vendored: bool,
}

/// The script.
pub fn render(s: &RunScript<'_>) -> String {
    let build = if s.vendored {
        "cargo build --release --locked --offline --target-dir target"
    } else {
        "cargo build --release --locked --target-dir target"
    };
    let needs = format!(
        "built for {}, needs {}",
        s.shipped.target,
        s.shipped.libc.describe()
    );
    format!(
        r#"#!/bin/sh
# Master script of this replication package (written by `repro package`).
# Uses the shipped repro ({bin}) when its sha256 matches and it runs on this machine; otherwise,
# or with `sh run.sh --build`, builds repro from repro-src/ with the recorded Cargo.lock{how}.
# Then rebuilds every stage in a clean temporary folder and compares every output byte for byte
# with repro.lock.
set -eu
cd "$(dirname "$0")"
SHA256={sha}
build=no
for arg in "$@"; do
  case "$arg" in
    --build) build=yes ;;
    *) echo "usage: sh run.sh [--build]" >&2; exit 2 ;;
  esac
done
sha256_of() {{
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d ' ' -f 1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d ' ' -f 1
  else echo "no sha256 tool"; fi
}}
repro=
if [ "$build" = no ]; then
  if [ ! -f {bin} ] || [ "$(sha256_of {bin})" != "$SHA256" ]; then
    echo "run.sh: {bin} is absent or its sha256 differs from $SHA256: building from source" >&2
  else
    chmod u+x {bin} 2>/dev/null || true
    if {bin} --version >/dev/null 2>&1; then
      repro={bin}
    else
      echo "run.sh: {bin} does not run on this machine ({needs}): building from source" >&2
    fi
  fi
fi
if [ -z "$repro" ]; then
  echo "run.sh: building repro from repro-src/: {build}" >&2
  (cd repro-src && {build})
  repro=repro-src/target/release/repro
fi
echo "run.sh: verifying with $repro" >&2
exec "$repro" -f {pipeline} verify .
"#,
        bin = BIN_PATH,
        how = if s.vendored {
            ", offline, from the vendored crates in repro-src/vendor/"
        } else {
            " (downloads the crates from crates.io)"
        },
        sha = shell_quote(&s.shipped.sha256),
        needs = needs.replace(['"', '`', '$', '\\'], ""),
        pipeline = file_arg(s.pipeline_file),
    )
}
