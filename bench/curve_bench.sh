#!/usr/bin/env bash
# The specification curve on the study's panel: 1,152 specifications (the default pipeline's
# stages/curve.yaml with a second vcov choice) cold, warm (every specification from the memo),
# after adding one choice, and at one and two threads (outputs compared byte for byte).
#
# 1. Builds the study's panel with the default pipeline (stages synth .. panel) in $WORK, or
#    reuses it when it is up to date.
# 2. Writes stages/curve_bench.yaml and a pipeline stage `curve_bench`; times `repro -v run
#    curve_bench` (the spec touched by a comment, so only this stage runs) with an empty memo (cold), again (warm), after adding a sample choice
#    (only the new specifications compute), each with /usr/bin/time; the kind's `-v` line says
#    how many specifications it computed and restored.
# 3. Runs the cold curve at RAYON_NUM_THREADS=1 and 2 and compares every output.
# 4. Times the joint test under the null: the default curve (576 specifications) with
#    `joint_test: {reps: JOINT_REPS, seed: 1, cluster: city}` (JOINT_REPS x 576 refits).
#
# Usage: bash bench/curve_bench.sh
# Env:   REPRO (default target/release/repro), WORK (default /tmp/repro-curve-bench),
#        JOINT_REPS (default 20; 0 skips step 4)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
REPRO="$(realpath "${REPRO:-$ROOT/target/release/repro}")"
WORK="${WORK:-/tmp/repro-curve-bench}"
log() { echo "[curve_bench] $*" >&2; }

mkdir -p "$WORK/stages"
cp -r "$ROOT/data" "$ROOT/docs" "$WORK/"
cp "$ROOT"/stages/*.yaml "$WORK/stages/"
cp "$ROOT/pipeline.yaml" "$WORK/pipeline.yaml"
cd "$WORK"
log "building the panel (skipped when up to date)"
"$REPRO" run panel >/dev/null

# The default curve with a second vcov choice: 4 x 6 x 4 x 3 x 2 x 2 = 1,152 specifications.
sed -e 's/^name: curve$/name: curve_bench/' \
    -e 's/^  Clustered by city: cluster:city$/  Clustered by city: cluster:city\n  Heteroskedasticity-robust: hc1/' \
    "$ROOT/stages/curve.yaml" > stages/curve_bench.yaml
grep -q "Heteroskedasticity-robust: hc1" stages/curve_bench.yaml || { log "cannot add the vcov choice"; exit 2; }
grep -q "^  curve_bench:" pipeline.yaml || cat >> pipeline.yaml <<'YAML'

  curve_bench:
    kind: curve
    params: {spec: stages/curve_bench.yaml}
YAML

snapshot() { (cd output && find results/curve_bench figures/curve_bench.* tables/curve_bench.* -type f | sort | xargs sha256sum); }
RUN=0
timed() { # LABEL ENV... -- runs the curve, prints wall seconds, computed and restored
  local label="$1"; shift
  local err; err="$(mktemp)"
  # A new comment in the spec makes the stage (and nothing upstream) stale.
  # (with a nonce: a spec seen before would have its outputs restored by the stage cache).
  RUN=$((RUN + 1)); echo "# bench run $RUN $(date +%s%N)" >> stages/curve_bench.yaml
  env "$@" /usr/bin/time -f "%e %M" "$REPRO" -v run curve_bench 2>"$err" >/dev/null
  local wall rss line
  read -r wall rss < <(tail -1 "$err")
  line="$(grep -o 'specifications=[0-9]* computed=[0-9]* restored=[0-9]*' "$err")"
  printf '| %s | %s | %s MB | %s |\n' "$label" "$wall" "$((rss / 1024))" "$line"
  rm -f "$err"
}

echo "uptime: $(uptime)"
echo "| run | wall s | max RSS | specifications |"
echo "|---|---|---|---|"
rm -rf cache/memo   # the memo repro wrote for this scratch project
timed "cold, 2 threads" RAYON_NUM_THREADS=2
snapshot > "$WORK/cold2.sha"
timed "warm (memo), 2 threads" RAYON_NUM_THREADS=2
snapshot > "$WORK/warm.sha"
sed -i 's/^  All cities: ""$/  All cities: ""\n  From 2012: year >= 2012/' stages/curve_bench.yaml
timed "one sample choice added" RAYON_NUM_THREADS=2
sed -i '/^  From 2012: year >= 2012$/d' stages/curve_bench.yaml
rm -rf cache/memo
timed "cold, 1 thread" RAYON_NUM_THREADS=1
snapshot > "$WORK/cold1.sha"
if cmp -s "$WORK/cold1.sha" "$WORK/cold2.sha" && cmp -s "$WORK/cold2.sha" "$WORK/warm.sha"; then
  echo "outputs: identical at 1 and 2 threads, cold and warm ($(wc -l < "$WORK/cold1.sha") files)"
else
  echo "outputs DIFFER:"; diff "$WORK/cold1.sha" "$WORK/cold2.sha" || true; diff "$WORK/cold2.sha" "$WORK/warm.sha" || true
  exit 1
fi

JOINT_REPS="${JOINT_REPS:-20}"
if [ "$JOINT_REPS" -gt 0 ]; then
  sed -e 's/^name: curve$/name: curve_joint/' "$ROOT/stages/curve.yaml" > stages/curve_joint.yaml
  echo "joint_test: {reps: $JOINT_REPS, seed: 1, cluster: city}" >> stages/curve_joint.yaml
  echo "# bench $(date +%s%N)" >> stages/curve_joint.yaml   # never restored from the stage cache
  grep -q "^  curve_joint:" pipeline.yaml || printf '\n  curve_joint:\n    kind: curve\n    params: {spec: stages/curve_joint.yaml}\n' >> pipeline.yaml
  rm -rf cache/memo
  /usr/bin/time -f "joint test, $JOINT_REPS resamples of 576 specifications: %e s wall, %M KB max RSS" \
    "$REPRO" run curve_joint >/dev/null
  python3 -c "import json; j = json.load(open('output/results/curve_joint/summary.json'))['joint_test']; print('p-values:', {k: v for k, v in j.items() if k.startswith('p_')})"
fi
