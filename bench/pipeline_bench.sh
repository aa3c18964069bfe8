#!/usr/bin/env bash
# The default pipeline from nothing (no cache, no outputs) and a no-op rerun, in a scratch copy.
# Usage: bash bench/pipeline_bench.sh [RUNS]   (needs `cargo build --release` first)
# Env:   REPRO (default target/release/repro)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repro="$(realpath "${REPRO:-$here/target/release/repro}")"
runs="${1:-3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
copy() {
  rm -rf "$work/p" && mkdir -p "$work/p/data" "$work/p/docs"
  cp "$here/pipeline.yaml" "$work/p/"
  cp -r "$here/stages" "$work/p/"
  cp "$here"/data/*.csv "$here"/data/*.README.md "$work/p/data/"
  cp "$here/docs/dgp.md" "$work/p/docs/"
}
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "repro: $("$repro" --version)"
echo
echo "| run | from nothing (s) | user + sys CPU (s) | peak RSS (MB) | load before |"
echo "|---|---|---|---|---|"
for i in $(seq "$runs"); do
  copy
  load="$(cut -d' ' -f1 /proc/loadavg)"
  ( cd "$work/p" && /usr/bin/time -f "%e %M %U %S" -o "$work/t" "$repro" run -j 2 >/dev/null 2>"$work/log" ) || { cat "$work/log"; exit 1; }
  read -r secs rss user sys < "$work/t"
  echo "| $i | $secs | $(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}') | $((rss / 1024)) | $load |"
done
echo
echo "stage durations of the last run (seconds):"
python3 - "$work/p/cache/runs.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
last = max(r["run_started"] for r in rows)
for r in rows:
    if r["run_started"] == last and r["outcome"] == "ran":
        print(f"  {r['stage']:<14} {r['seconds']:.2f}")
PY
echo
cd "$work/p"
if command -v hyperfine >/dev/null; then
  hyperfine --warmup 2 --runs 20 -N "$repro run" "$repro status" --export-markdown "$work/noop.md" >/dev/null
  cat "$work/noop.md"
else
  for c in run status; do
    /usr/bin/time -f "no-op $c: %e s" "$repro" $c >/dev/null
  done
fi
