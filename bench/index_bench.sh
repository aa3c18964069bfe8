#!/usr/bin/env bash
# Raw records to the city-year index, side by side in one run: repro's stages ingest -> locate ->
# index against bench/pandas_index.py (the same rules in pandas) on the same synthetic export.
#
# 1. Generates the raw export with repro's `synth` stage (RECORDS records) in $WORK/gen; repro
#    skips this when the export is already up to date.
# 2. Times (a) `repro run` of a fresh pipeline with the stages ingest, locate and index (no cache,
#    raw files hard-linked from $WORK/gen) and (b) the pandas script, each with /usr/bin/time -v
#    (wall time, maximum resident set size).
# 3. Checks the pandas port's rules (bench/pandas_index_check.py --repro), that both indexes agree
#    (counts equal, fractional values within 1e-9) and compares both with the generator's
#    truth_city_year.csv; writes the figures as a Markdown table.
#
# Usage: bash bench/index_bench.sh [OUT_MD]   (default bench/results/index_bench.md)
# Env:   RECORDS (default 10000000), REPRO (default target/release/repro),
#        WORK (default /tmp/repro-index-bench), REPRO_BENCH_VENV (see bench/setup.sh),
#        SKIP_REPRO=1 (pandas side only), NO_WAIT=1 (do not wait for running compilers),
#        MAX_LOAD (also wait until the 1-minute load average is below it),
#        SEED (the generator's seed; default that of stages/synth.yaml)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
VENV="${REPRO_BENCH_VENV:-$HOME/.cache/repro-bench-venv}"
PY="$VENV/bin/python"
REPRO="$(realpath "${REPRO:-$ROOT/target/release/repro}")"
RECORDS="${RECORDS:-10000000}"
WORK="${WORK:-/tmp/repro-index-bench}"
OUT="$(realpath -m "${1:-$HERE/results/index_bench.md}")"
mkdir -p "$(dirname "$OUT")" "$WORK"

log() { echo "[index_bench] $*" >&2; }

# ---------------------------------------------------------------- 1. the raw export
GEN="$WORK/gen"
mkdir -p "$GEN/data" "$GEN/stages"
# The cities and the gazetteer tables (counties, old names, institutions) synth and locate read.
cp "$ROOT"/data/*.csv "$GEN/data/"
sed -E "s/^records: *[0-9]+/records: $RECORDS/" "$ROOT/stages/synth.yaml" > "$GEN/stages/synth.yaml.new"
grep -q "^records: $RECORDS\b" "$GEN/stages/synth.yaml.new" || { log "cannot set records in synth.yaml"; exit 2; }
if [ -n "${SEED:-}" ]; then
  sed -i -E "s/^seed: *[0-9]+/seed: $SEED/" "$GEN/stages/synth.yaml.new"
  grep -q "^seed: $SEED\b" "$GEN/stages/synth.yaml.new" || { log "cannot set seed in synth.yaml"; exit 2; }
fi
# Keep the old file (and its timestamp) when nothing changed.
if cmp -s "$GEN/stages/synth.yaml.new" "$GEN/stages/synth.yaml"; then rm "$GEN/stages/synth.yaml.new"
else mv "$GEN/stages/synth.yaml.new" "$GEN/stages/synth.yaml"; fi
cat > "$GEN/pipeline.yaml" <<'EOF'
stages:
  synth:
    kind: synth
    params: {spec: stages/synth.yaml}
EOF
log "synth: $RECORDS records in $GEN"
"$REPRO" run -f "$GEN/pipeline.yaml"
RAW="$GEN/output/raw"
log "raw export: $(du -h "$RAW/patents.csv" | cut -f1), $(($(wc -l < "$RAW/patents.csv") - 1)) rows"

# ---------------------------------------------------------------- wait for an idle machine
# No compiler may run; with MAX_LOAD set, the 1-minute load average must also be below it.
if [ "${NO_WAIT:-0}" != "1" ]; then
  while pgrep -f rustc > /dev/null || { [ -n "${MAX_LOAD:-}" ] &&
        awk -v m="$MAX_LOAD" '{exit !($1 >= m)}' /proc/loadavg; }; do
    log "busy ($(pgrep -fc rustc) rustc, load $(cut -d' ' -f1 /proc/loadavg)); waiting 60 s"
    sleep 60
  done
fi

# wall seconds and peak RSS in MB from a `/usr/bin/time -v` log
wall_s() { awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.1f", s}' "$1"; }
rss_mb() { awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$1"; }

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- 2a. repro
RUN="$WORK/repro"
if [ "${SKIP_REPRO:-0}" != "1" ]; then
  rm -rf "$RUN"
  mkdir -p "$RUN/data" "$RUN/stages" "$RUN/output/raw"
  cp "$ROOT"/data/*.csv "$RUN/data/"
  for f in patents.csv postcodes.csv yearbook.csv; do ln "$RAW/$f" "$RUN/output/raw/$f"; done
  cat > "$RUN/stages/ingest.yaml" <<'EOF'
# Raw export -> clean applications (docs/data.md); default CNIPA headers.
inputs: [output/raw/patents.csv]
encoding: auto
out: output/data/applications.parquet
quarantine: output/data/quarantine.csv
report: output/reports/ingest.json
EOF
  cp "$ROOT/stages/locate.yaml" "$ROOT/stages/index.yaml" "$RUN/stages/"
  cat > "$RUN/pipeline.yaml" <<'EOF'
stages:
  ingest:
    kind: ingest
    params: {spec: stages/ingest.yaml}
  locate:
    kind: locate
    params: {spec: stages/locate.yaml}
  index:
    kind: index
    params: {spec: stages/index.yaml}
EOF
  log "repro: ingest -> locate -> index"
  /usr/bin/time -v -o "$WORK/time_repro.txt" "$REPRO" run -f "$RUN/pipeline.yaml" 2>&1 | tee "$WORK/repro_log.txt"
  log "repro: $(wall_s "$WORK/time_repro.txt") s, $(rss_mb "$WORK/time_repro.txt") MB"
fi

# ---------------------------------------------------------------- 2b. pandas
PAN="$WORK/pandas"
mkdir -p "$PAN"
rm -f "$PAN/collab_index.csv"
log "pandas: bench/pandas_index.py"
# The same tables as repro's locate stage (stages/locate.yaml): cities and the gazetteer's
# county table, old names and institution register.
/usr/bin/time -v -o "$WORK/time_pandas.txt" "$PY" "$HERE/pandas_index.py" \
  "$RAW/patents.csv" "$ROOT/data/cities.csv" "$ROOT/data/counties.csv" \
  "$ROOT/data/place_history.csv" "$ROOT/data/institutions.csv" "$RAW/postcodes.csv" \
  "$RAW/yearbook.csv" "$PAN/collab_index.csv" 2> >(tee "$PAN/log.txt" >&2)
log "pandas: $(wall_s "$WORK/time_pandas.txt") s, $(rss_mb "$WORK/time_pandas.txt") MB"
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- 3. agreement and the table
# The port's rules on repro's unit-test cases and, against this repro, on real place strings.
log "check: bench/pandas_index_check.py --repro"
if "$PY" "$HERE/pandas_index_check.py" --repro "$REPRO" 2>&1 | tee "$WORK/check_rules.txt" | tail -3 >&2; then
  RULES="bench/pandas_index_check.py passed"
else
  RULES="bench/pandas_index_check.py FAILED (see $WORK/check_rules.txt)"
fi
AGREE="repro side not run"
if [ "${SKIP_REPRO:-0}" != "1" ]; then
  log "check: pandas index vs repro index"
  if "$PY" "$HERE/compare_index.py" "$PAN/collab_index.csv" "$RUN/output/data/collab_index.csv" | tee "$WORK/compare.txt"; then
    AGREE="identical (counts equal, fractional values within 1e-9)"
  else
    AGREE="DIFFERENT (see $WORK/compare.txt)"
  fi
fi
# The generator's truth: locate is not exact on the synthetic addresses (it reports its accuracy,
# docs/data.md), so both indexes may differ from it; with the same rules they differ alike.
truth_columns() { sed -nE 's/^  ([a-z_]+) +[0-9]+ rows differ.*/\1/p' "$1" | paste -sd, - | sed 's/,/, /g'; }
log "check: pandas index vs the generator's truth_city_year.csv"
if "$PY" "$HERE/compare_index.py" "$PAN/collab_index.csv" "$RAW/truth_city_year.csv" | tee "$WORK/compare_truth.txt"; then
  TRUTH="pandas index equals truth_city_year.csv"
else
  TRUTH="pandas index differs from truth_city_year.csv in $(truth_columns "$WORK/compare_truth.txt") (see $WORK/compare_truth.txt)"
fi
if [ "${SKIP_REPRO:-0}" != "1" ]; then
  log "check: repro index vs the generator's truth_city_year.csv"
  "$PY" "$HERE/compare_index.py" "$RUN/output/data/collab_index.csv" "$RAW/truth_city_year.csv" > "$WORK/compare_truth_repro.txt" || true
  # Same columns and numbers of rows differing (fractional sums differ from the truth's in the
  # last bits, by summation order, so the largest differences within 1e-9 are not compared).
  per_column() { sed -nE 's/^  ([a-z_]+ +)(equal|within [^ ]+|[0-9]+ rows differ).*/\1\2/p' "$1"; }
  if [ "$(per_column "$WORK/compare_truth.txt")" = "$(per_column "$WORK/compare_truth_repro.txt")" ]; then
    TRUTH="$TRUTH; so does repro's, in the same columns and numbers of city-years"
  else
    TRUTH="$TRUTH; repro's index differs from it OTHERWISE (see $WORK/compare_truth_repro.txt)"
  fi
fi

PW="$(wall_s "$WORK/time_pandas.txt")"; PM="$(rss_mb "$WORK/time_pandas.txt")"
{
  echo "Raw records to the city-year index: $(($(wc -l < "$RAW/patents.csv") - 1)) raw records" \
       "($(du -h "$RAW/patents.csv" | cut -f1) CSV), $(date -u +%F)."
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/ {print $2}') GB RAM;" \
       "load average before $LOAD_BEFORE, after $LOAD_AFTER."
  echo "Versions: $("$REPRO" --version), pandas $("$PY" -c 'import pandas; print(pandas.__version__)'), pyarrow $("$PY" -c 'import pyarrow; print(pyarrow.__version__)'), Python $("$PY" -c 'import platform; print(platform.python_version())')."
  echo
  echo "| side | what runs | wall (s) | peak RSS (MB) |"
  echo "|---|---|---:|---:|"
  if [ "${SKIP_REPRO:-0}" != "1" ]; then
    RW="$(wall_s "$WORK/time_repro.txt")"; RM="$(rss_mb "$WORK/time_repro.txt")"
    STAGES="$(sed -nE 's/^ran `([a-z]+)` \(([0-9.]+)s\)$/\1 \2 s/p' "$WORK/repro_log.txt" | paste -sd, - | sed 's/,/, /g')"
    echo "| repro | \`repro run\`: stages ingest -> locate -> index (fresh folder, no cache; $STAGES) | $RW | $RM |"
  fi
  PHASES="$(awk '/^  [a-z_]+ +[0-9.]+ s$/ && $1 != "total" {printf "%s%s %s s", sep, $1, $2; sep = ", "}' "$PAN/log.txt")"
  echo "| pandas | \`bench/pandas_index.py\` (same rules, one process; $PHASES) | $PW | $PM |"
  if [ "${SKIP_REPRO:-0}" != "1" ]; then
    echo
    echo "Speed ratio (pandas wall / repro wall): $(awk -v p="$PW" -v r="$RW" 'BEGIN {printf "%.1f", p / r}')x." \
         "Indexes: $AGREE; $TRUTH. $RULES."
  else
    echo
    echo "repro side pending. $TRUTH."
  fi
} | tee "$OUT"
log "table written to $OUT"
