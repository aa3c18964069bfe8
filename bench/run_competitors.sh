#!/usr/bin/env bash
# Run every competitor estimation benchmark once, appending their JSON lines to one file.
#
# Usage: bash bench/run_competitors.sh [OUT_JSONL]      (default bench/results/competitors.jsonl)
# Env:   REPRO_BENCH_VENV (default ~/.cache/repro-bench-venv), REPEAT (default 3),
#        PANELS (default "1m 10m"), NICE (prefix, e.g. "nice -n 10"; default empty)
# Needs: bench/setup.sh done; bench/gen_data.py is run first if bench/data/ is incomplete.
# Peak memory: pyfixest on the 10M panel needs about 10 GB.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${REPRO_BENCH_VENV:-$HOME/.cache/repro-bench-venv}"
PY="$VENV/bin/python"
REPEAT="${REPEAT:-3}"
PANELS="${PANELS:-1m 10m}"
NICE="${NICE:-}"
OUT="${1:-$HERE/results/competitors.jsonl}"
mkdir -p "$(dirname "$OUT")"

need=0
for f in qr_100k.parquet qr_100k.csv; do [ -f "$HERE/data/$f" ] || need=1; done
for p in $PANELS; do [ -f "$HERE/data/panel_$p.parquet" ] || need=1; done
if [ "$need" = 1 ]; then
  $NICE "$PY" "$HERE/gen_data.py" --panels "$(echo $PANELS | tr ' ' ',')"
fi

echo "# $(date -u +%FT%TZ) $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for p in $PANELS; do
  $NICE "$PY" "$HERE/pyfixest_fe.py" --data "$HERE/data/panel_$p.parquet" --repeat "$REPEAT" | tee -a "$OUT"
done
$NICE Rscript "$HERE/quantreg.R" "$HERE/data/qr_100k.csv" "$REPEAT" | tee -a "$OUT"
$NICE "$PY" "$HERE/statsmodels_qr.py" --data "$HERE/data/qr_100k.parquet" --repeat "$REPEAT" | tee -a "$OUT"
echo "# done; load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
