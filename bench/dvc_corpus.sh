#!/usr/bin/env bash
# Which real dvc.yaml files repro reads, compared with DVC (issue 15).
#
# Usage: bench/dvc_corpus.sh FOLDER
#   FOLDER holds one subfolder per project (the folder DVC's `.dvc/` belongs in), each with its
#   dvc.yaml files (at the root and/or in subfolders) and the params files they name, as taken
#   from a repository. Nothing is run: each project is
#   copied to a scratch folder and loaded by `dvc dag` and by `repro -f dvc.yaml dag`.
# Environment: DVC (default: dvc on the PATH), REPRO (default: the release build).
set -euo pipefail
folder=${1:?usage: bench/dvc_corpus.sh FOLDER}
DVC=${DVC:-dvc}
REPRO=${REPRO:-${CARGO_TARGET_DIR:-$HOME/.cache/repro-target}/release/repro}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
total=0; dvc_ok=0; repro_ok=0; both=0
printf '%-45s %-6s %-6s %s\n' project dvc repro "repro's first error"
for project in "$folder"/*/; do
    name=$(basename "$project")
    # A project's pipelines may all live in subfolders (DVC collects them from the root).
    [ -n "$(find "$project" -name dvc.yaml -print -quit)" ] || continue
    total=$((total + 1))
    work="$scratch/$name"
    cp -r "$project" "$work"
    (cd "$work" && DVC_NO_ANALYTICS=1 "$DVC" init --no-scm -q >/dev/null 2>&1 || true)
    if (cd "$work" && DVC_NO_ANALYTICS=1 "$DVC" dag >/dev/null 2>&1); then d=yes; dvc_ok=$((dvc_ok + 1)); else d=no; fi
    if err=$(cd "$work" && "$REPRO" -f dvc.yaml dag 2>&1 >/dev/null); then r=yes; repro_ok=$((repro_ok + 1)); err=""; else r=no; fi
    [ "$d" = yes ] && [ "$r" = yes ] && both=$((both + 1))
    printf '%-45s %-6s %-6s %s\n' "$name" "$d" "$r" "$(printf '%s' "$err" | head -n 1)"
done
echo "projects: $total; dvc accepts: $dvc_ok; repro accepts: $repro_ok; both: $both"
