#!/usr/bin/env bash
# Issue 20, goal 5: no-op `repro status` on pipelines of 1,000, 10,000 and 50,000 command stages
# (bench/gen_pipeline.py), to show its cost per stage stays flat (linear in the stages).
#
# Usage: bash bench/status_scale.sh [N ...]        (default: 1000 10000 50000)
# Env:   REPRO (default $CARGO_TARGET_DIR/release/repro), WORKDIR (default /tmp/repro-status-scale;
#        a project already built there is reused: building 50,000 stages takes about half an
#        hour on 2 cores), RUNS (default 10), BASE (a second repro binary timed beside REPRO).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPRO="${REPRO:-${CARGO_TARGET_DIR:-$HERE/../target}/release/repro}"
WORKDIR="${WORKDIR:-/tmp/repro-status-scale}"
RUNS="${RUNS:-10}"
SIZES=("$@")
[ "${#SIZES[@]}" -gt 0 ] || SIZES=(1000 10000 50000)
mkdir -p "$WORKDIR"
load() { cut -d' ' -f1-3 /proc/loadavg; }

echo "# $(date -u +%FT%TZ) $(nproc) cores; repro: $REPRO; load average: $(load)"
for n in "${SIZES[@]}"; do
  dir="$WORKDIR/p$n"
  if [ ! -f "$dir/repro.lock" ]; then
    rm -rf "$dir"
    python3 "$HERE/gen_pipeline.py" "$n" "$dir" >/dev/null
    (cd "$dir" && nice -n 19 "$REPRO" run -j 2 >/dev/null 2>&1)
  fi
  (cd "$dir" && "$REPRO" status | tail -1)
  cmds=("$REPRO status")
  [ -n "${BASE:-}" ] && cmds+=("$BASE status")
  echo "## N = $n (load average before: $(load))"
  (cd "$dir" && hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$WORKDIR/status_$n.json" "${cmds[@]}" 2>&1 |
    grep -E "Time|Range|±")
  python3 - "$WORKDIR/status_$n.json" "$n" <<'PY'
import json, sys
n = int(sys.argv[2])
for r in json.load(open(sys.argv[1]))["results"]:
    cpu = r["user"] + r["system"]
    print(f"{r['command']}: median {r['median'] * 1e3:.1f} ms wall, mean cpu {cpu * 1e3:.1f} ms"
          f" = {cpu / n * 1e6:.1f} us per stage")
PY
  echo "load average after: $(load)"
done
