#!/bin/sh
# Issue 17, the slow half of "a package that rebuilds with no network": packages the default
# pipeline, unpacks the zip elsewhere and runs `sh run.sh --build` as an archive would years
# later: no network (`unshare -n`), an empty CARGO_HOME, repro built from the vendored source
# (`cargo build --offline --locked`), then every output verified. Not a CI step: the build takes
# about 20 minutes on 2 cores. Prints the package sizes (with and without vendored crates), the
# build's wall time, peak memory and disk; docs/benchmarks.md §"Replication packages" has them.
#
# Usage, from the repository root (as root, or where `unshare -n` is allowed):
#   nice -n 19 sh bench/offline_build.sh [REPRO_BINARY]
# REPRO_BINARY defaults to $CARGO_TARGET_DIR/release/repro (or target/release/repro).
# Set KEEP=1 to keep the work folder (it is printed).
set -eu
root=$(pwd)
repro=${1:-${CARGO_TARGET_DIR:-$root/target}/release/repro}
[ -x "$repro" ] || { echo "no repro binary at $repro (cargo build --release first)" >&2; exit 2; }
unshare -n true 2>/dev/null || { echo "unshare -n is not permitted here: run as root" >&2; exit 2; }
command -v unzip >/dev/null || { echo "needs unzip" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/repro-offline-build.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
echo "work folder: $work"

# The default pipeline, with what it reads, in a project of its own.
mkdir "$work/project"
cp -R pipeline.yaml stages data docs "$work/project/"
cd "$work/project"
"$repro" run -j 2 >/dev/null
"$repro" package --out "$work/package.zip"
# Deterministic with the vendored crates too: a second package is the same bytes.
"$repro" package --out "$work/package-again.zip" >/dev/null
cmp "$work/package.zip" "$work/package-again.zip" && echo "two vendored package zips: identical bytes"
rm "$work/package-again.zip"
"$repro" package --no-vendor --out "$work/package-no-vendor.zip" >/dev/null
"$repro" package --out "$work/package-dir" >/dev/null
"$repro" package --no-vendor --out "$work/package-dir-no-vendor" >/dev/null
size() { du -sb "$1" | cut -f 1; }
echo "package zip:                 $(size "$work/package.zip") bytes"
echo "package zip, --no-vendor:    $(size "$work/package-no-vendor.zip") bytes"
echo "package folder:              $(size "$work/package-dir") bytes"
echo "package folder, --no-vendor: $(size "$work/package-dir-no-vendor") bytes"
rm -rf "$work/package-dir" "$work/package-dir-no-vendor" "$work/project"

# As the archive runs it.
mkdir "$work/unpacked" "$work/cargo-home"
cd "$work/unpacked"
unzip -q "$work/package.zip"
start=$(date +%s)
status=0
CARGO_HOME="$work/cargo-home" unshare -n /usr/bin/time -v -o "$work/time.txt" \
    sh run.sh --build >"$work/run.out" 2>"$work/run.err" || status=$?
end=$(date +%s)
echo "sh run.sh --build: exit $status after $((end - start)) s (build and verify, no network, empty CARGO_HOME)"
grep -E "Maximum resident set size|Elapsed" "$work/time.txt" || true
echo "repro-src/target: $(size repro-src/target) bytes"
echo "cargo home after: $(find "$work/cargo-home" -type f | wc -l) files"
tail -n 3 "$work/run.out"
grep "run.sh:" "$work/run.err" || true
if [ "$status" != 0 ]; then
    tail -n 30 "$work/run.err" >&2
    exit "$status"
fi
