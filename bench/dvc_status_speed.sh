#!/usr/bin/env bash
# No-op `repro status` against no-op `dvc status` on a built DVC project (issue 15: at least
# 50x faster). Usage: bench/dvc_status_speed.sh PROJECT_FOLDER [RUNS]
#   PROJECT_FOLDER holds a dvc.yaml whose stages can run here. It is copied twice, built once by
#   each tool, then each tool's status is timed (hyperfine when installed, else a loop).
set -euo pipefail
project=${1:?usage: bench/dvc_status_speed.sh PROJECT_FOLDER [RUNS]}
runs=${2:-20}
DVC=${DVC:-dvc}
REPRO=${REPRO:-${CARGO_TARGET_DIR:-$HOME/.cache/repro-target}/release/repro}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r "$project" "$scratch/d"; cp -r "$project" "$scratch/r"
export DVC_NO_ANALYTICS=1 SHELL=/bin/sh
(cd "$scratch/d" && "$DVC" init --no-scm -q && "$DVC" repro -q >/dev/null)
(cd "$scratch/r" && "$REPRO" -f dvc.yaml run >/dev/null 2>&1)
if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 2 --runs "$runs" \
        "sh -c 'cd $scratch/d && $DVC status -q; true'" \
        "sh -c 'cd $scratch/r && $REPRO -f dvc.yaml status; true'"
else
    for tool in dvc repro; do
        start=$(date +%s.%N)
        for _ in $(seq "$runs"); do
            # `dvc status -q` exits 1 when a stage is stale (an always-changed one is): not an error here.
            if [ $tool = dvc ]; then (cd "$scratch/d" && "$DVC" status -q >/dev/null) || true; else (cd "$scratch/r" && "$REPRO" -f dvc.yaml status >/dev/null) || true; fi
        done
        end=$(date +%s.%N)
        echo "$tool status: $(echo "($end - $start) * 1000 / $runs" | bc -l | cut -c1-7) ms per call ($runs calls)"
    done
fi
