#!/usr/bin/env bash
# Workflow-engine benchmark: repro vs DVC on a generated N-stage pipeline.
#
# Usage:
#   bash bench/engine_bench.sh [N]             (N defaults to 1000)
#
# Environment:
#   REPRO             repro binary (default /work/main/target/release/repro); if it is not an
#                     executable file, repro's rows are skipped (and the script says so)
#   REPRO_BENCH_VENV  venv made by bench/setup.sh, for `dvc` (default ~/.cache/repro-bench-venv)
#   TOOLS             which tools to run, default "dvc repro"
#   SCRATCH_RUNS      timed from-scratch DVC runs (default 1: one takes over an hour at N=1000).
#                     0 = do not time it; reuse $WORKDIR/dvc if an earlier run built it with the
#                     same pipeline, else build it untimed
#   REPRO_SCRATCH_RUNS  timed from-scratch repro runs (default max(3, SCRATCH_RUNS))
#   NOOP_RUNS         timed no-op runs (default 5)
#   WARMUP            untimed warm-up runs before the no-op timings (default 2)
#   WORKDIR           where the projects are built (default: a new mktemp -d folder, kept)
#   RESULTS           where hyperfine JSON + summary go (default $WORKDIR/results)
#   NICE              prefix for timed commands, e.g. "nice -n 10" (default empty)
#   NO_HYPERFINE=1    force the date +%s.%N loop even if hyperfine is installed
#
# What it does:
#   1. bench/gen_pipeline.py N  ->  $WORKDIR/pristine   (dvc.yaml == pipeline.yaml, raw/, out/)
#   2. $WORKDIR/pristine-dvc   = copy + `git init` + `dvc init` (analytics and update check off)
#      $WORKDIR/pristine-repro = plain copy
#   3. per tool, with hyperfine (or a date +%s.%N loop if hyperfine is missing):
#        scratch      the pristine copy is re-copied before each run (untimed, --prepare), then
#                     `dvc repro` / `$REPRO run` (and `$REPRO run -j 1`, sequential like DVC)
#        noop-status  `dvc status` / `$REPRO status` on the fully built project
#        noop-run     `dvc repro` / `$REPRO run` on the fully built project
#   4. checks: after the no-op runs every output is byte-identical to before; and when both
#      tools ran, DVC's and repro's out/*.txt are identical.
#   5. prints a Markdown table (also $RESULTS/summary.md) and JSON lines ($RESULTS/summary.jsonl).
set -euo pipefail

N="${1:-${N:-1000}}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPRO="${REPRO:-/work/main/target/release/repro}"
VENV="${REPRO_BENCH_VENV:-$HOME/.cache/repro-bench-venv}"
TOOLS="${TOOLS:-dvc repro}"
SCRATCH_RUNS="${SCRATCH_RUNS:-1}"
NOOP_RUNS="${NOOP_RUNS:-5}"
WARMUP="${WARMUP:-2}"
NICE="${NICE:-}"
WORKDIR="${WORKDIR:-$(mktemp -d /tmp/engine-bench.XXXXXX)}"
RESULTS="${RESULTS:-$WORKDIR/results}"

export DVC_NO_ANALYTICS=1
export PATH="$VENV/bin:$PATH"

log() { echo "[engine_bench] $*" >&2; }

mkdir -p "$WORKDIR" "$RESULTS"
WORKDIR="$(cd "$WORKDIR" && pwd)"
log "N=$N workdir=$WORKDIR results=$RESULTS"

# ---------------------------------------------------------------- projects
rm -rf "$WORKDIR/pristine" "$WORKDIR/pristine-dvc" "$WORKDIR/pristine-repro"   # $WORKDIR/dvc is kept
python3 "$HERE/gen_pipeline.py" "$N" "$WORKDIR/pristine"

run_dvc=0; run_repro=0
for t in $TOOLS; do
  case "$t" in
    dvc) run_dvc=1 ;;
    repro) run_repro=1 ;;
    *) log "unknown tool '$t' in TOOLS"; exit 2 ;;
  esac
done

if [ "$run_dvc" = 1 ]; then
  command -v dvc >/dev/null || { log "dvc not found (run bench/setup.sh)"; exit 1; }
  cp -a "$WORKDIR/pristine" "$WORKDIR/pristine-dvc"
  (
    cd "$WORKDIR/pristine-dvc"
    git init -q
    dvc init -q
    dvc config core.analytics false
    dvc config core.check_update false
  )
fi
if [ "$run_repro" = 1 ]; then
  if [ -x "$REPRO" ] && [ -f "$REPRO" ]; then
    cp -a "$WORKDIR/pristine" "$WORKDIR/pristine-repro"
  else
    log "SKIPPING repro: no executable at REPRO=$REPRO (build it with cargo build --release, or set REPRO)"
    run_repro=0
  fi
fi

# ---------------------------------------------------------------- timing
HAVE_HYPERFINE=0
command -v hyperfine >/dev/null && [ "${NO_HYPERFINE:-0}" != 1 ] && HAVE_HYPERFINE=1
[ "$HAVE_HYPERFINE" = 1 ] || log "hyperfine not found: using a date +%s.%N loop (no shell-overhead correction)"

# timeit ID WARMUP RUNS PREPARE CMD   -> $RESULTS/ID.json (hyperfine's export format)
timeit() {
  local id="$1" warm="$2" runs="$3" prep="$4" cmd="$5"
  log "$id: $cmd  (warmup $warm, runs $runs)"
  if [ "$HAVE_HYPERFINE" = 1 ]; then
    local args=(--warmup "$warm" --runs "$runs" --export-json "$RESULTS/$id.json" --command-name "$id" --style basic)
    [ -n "$prep" ] && args+=(--prepare "$prep")
    hyperfine "${args[@]}" "$cmd" >&2
  else
    local i t0 t1 times=()
    for ((i = 0; i < warm; i++)); do
      [ -n "$prep" ] && bash -c "$prep"
      bash -c "$cmd" >/dev/null 2>&1
    done
    for ((i = 0; i < runs; i++)); do
      [ -n "$prep" ] && bash -c "$prep"
      t0=$(date +%s.%N); bash -c "$cmd" >/dev/null 2>&1; t1=$(date +%s.%N)
      times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')")
      log "  run $((i + 1)): ${times[-1]} s"
    done
    python3 - "$RESULTS/$id.json" "$id" "${times[@]}" <<'PY'
import json, statistics, sys
out, name, ts = sys.argv[1], sys.argv[2], [float(x) for x in sys.argv[3:]]
json.dump({"results": [{"command": name, "mean": statistics.mean(ts),
           "stddev": statistics.stdev(ts) if len(ts) > 1 else None, "median": statistics.median(ts),
           "min": min(ts), "max": max(ts), "times": ts}]}, open(out, "w"))
PY
  fi
}

digest() { (cd "$1" && find out -type f -name '*.txt' -print0 | sort -z | xargs -0 md5sum | md5sum | cut -d' ' -f1); }

check_noop() {  # DIR DIGEST_BEFORE
  local after; after="$(digest "$1")"
  if [ "$after" != "$2" ]; then log "ERROR: outputs in $1 changed during the no-op runs"; exit 1; fi
}

if [ "$run_dvc" = 1 ]; then
  D="$WORKDIR/dvc"
  if [ "$SCRATCH_RUNS" -gt 0 ]; then
    timeit dvc-scratch 0 "$SCRATCH_RUNS" "rm -rf '$D' && cp -a '$WORKDIR/pristine-dvc' '$D'" \
      "cd '$D' && $NICE dvc repro -q"
  elif [ -d "$D" ] && cmp -s "$D/dvc.yaml" "$WORKDIR/pristine/dvc.yaml"; then
    log "SCRATCH_RUNS=0: reusing the built DVC project in $D (from-scratch row not measured)"
  else
    log "SCRATCH_RUNS=0: building the DVC project untimed (no earlier build in $D)"
    rm -rf "$D" && cp -a "$WORKDIR/pristine-dvc" "$D" && (cd "$D" && dvc repro -q)
  fi
  n_out=$(find "$D/out" -name '*.txt' | wc -l)
  [ "$n_out" = "$N" ] || { log "ERROR: dvc produced $n_out of $N outputs"; exit 1; }
  before="$(digest "$D")"
  (cd "$D" && dvc status) | tail -1 | grep -q "up to date" || { log "ERROR: dvc status is not clean after dvc repro"; exit 1; }
  timeit dvc-noop-status "$WARMUP" "$NOOP_RUNS" "" "cd '$D' && $NICE dvc status"
  timeit dvc-noop-run "$WARMUP" "$NOOP_RUNS" "" "cd '$D' && $NICE dvc repro -q"
  check_noop "$D" "$before"
fi

if [ "$run_repro" = 1 ]; then
  R="$WORKDIR/repro"
  # from-scratch repro runs are counted separately (default at least 3)
  R_RUNS="${REPRO_SCRATCH_RUNS:-$(( SCRATCH_RUNS > 3 ? SCRATCH_RUNS : 3 ))}"
  timeit repro-scratch-j1 0 "$R_RUNS" "rm -rf '$R' && cp -a '$WORKDIR/pristine-repro' '$R'" \
    "cd '$R' && $NICE '$REPRO' run -j 1"
  timeit repro-scratch 0 "$R_RUNS" "rm -rf '$R' && cp -a '$WORKDIR/pristine-repro' '$R'" \
    "cd '$R' && $NICE '$REPRO' run"
  n_out=$(find "$R/out" -name '*.txt' | wc -l)
  [ "$n_out" = "$N" ] || { log "ERROR: repro produced $n_out of $N outputs"; exit 1; }
  before="$(digest "$R")"
  timeit repro-noop-status "$WARMUP" "$NOOP_RUNS" "" "cd '$R' && $NICE '$REPRO' status"
  timeit repro-noop-run "$WARMUP" "$NOOP_RUNS" "" "cd '$R' && $NICE '$REPRO' run"
  check_noop "$R" "$before"
fi

if [ "$run_dvc" = 1 ] && [ "$run_repro" = 1 ]; then
  if [ "$(digest "$WORKDIR/dvc")" = "$(digest "$WORKDIR/repro")" ]; then
    log "check: DVC and repro outputs are byte-identical"
  else
    log "ERROR: DVC and repro outputs differ"; exit 1
  fi
fi

# ---------------------------------------------------------------- summary
python3 - "$RESULTS" "$N" "$HAVE_HYPERFINE" <<'PY' | tee "$RESULTS/summary.md"
import glob, json, os, sys
res, n, hf = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
order = ["dvc-scratch", "dvc-noop-status", "dvc-noop-run",
         "repro-scratch-j1", "repro-scratch", "repro-noop-status", "repro-noop-run"]
what = {"scratch": "from scratch", "scratch-j1": "from scratch, -j 1",
        "noop-status": "no-op status", "noop-run": "no-op run/repro"}
rows, jl = [], []
for rid in order:
    p = os.path.join(res, rid + ".json")
    if not os.path.exists(p):
        continue
    r = json.load(open(p))["results"][0]
    tool, scen = rid.split("-", 1)
    times = r["times"]
    sd = r.get("stddev")
    cpu = r["user"] + r["system"] if "user" in r and "system" in r else None
    rows.append(f"| {tool} | {what[scen]} | {len(times)} | {r['mean']:.3f} | "
                f"{'' if sd is None else f'{sd:.3f}'} | {r['min']:.3f} | {r['max']:.3f} | "
                f"{'' if cpu is None else f'{cpu:.3f}'} |")
    jl.append(json.dumps({"tool": tool, "task": f"engine_{scen}_n{n}", "seconds": r["mean"],
                          "min": r["min"], "max": r["max"], "times": times, "cpu_seconds": cpu,
                          "timer": "hyperfine" if hf else "date-loop"}))
print(f"N = {n} stages; seconds (wall clock; cpu = mean user + system time of the command)\n")
print("| tool | scenario | runs | mean | sd | min | max | cpu |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
print("\n".join(rows))
open(os.path.join(res, "summary.jsonl"), "w").write("\n".join(jl) + "\n")
PY
log "done; projects kept in $WORKDIR (delete when finished)"
