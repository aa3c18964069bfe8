#!/usr/bin/env bash
# Estimator benchmarks, side by side in one run: repro fit vs pyfixest (two-way FE, clustered),
# and repro fit (tau 0.5, nid) vs R quantreg (fn, pfn; nid) and statsmodels QuantReg (its
# default "robust" SE, which at tau 0.5 equals the iid formula; see docs/benchmarks.md).
#
# Usage: bash bench/estimators_bench.sh [OUT_JSONL]   (default bench/results/estimators.jsonl)
# Env:   REPRO (default target/release/repro), REPEAT (default 3), PANELS (default "1m 10m"),
#        REPRO_BENCH_VENV (see bench/setup.sh)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${REPRO_BENCH_VENV:-$HOME/.cache/repro-bench-venv}"
REPRO="${REPRO:-$HERE/../target/release/repro}"
REPEAT="${REPEAT:-3}"
PANELS="${PANELS:-1m 10m}"
OUT="${1:-$HERE/results/estimators.jsonl}"
mkdir -p "$(dirname "$OUT")"
: > "$OUT"

need=0
for f in qr_100k.parquet qr_100k.csv; do [ -f "$HERE/data/$f" ] || need=1; done
for p in $PANELS; do [ -f "$HERE/data/panel_$p.parquet" ] || need=1; done
if [ "$need" = 1 ]; then
  "$VENV/bin/python" "$HERE/gen_data.py" --panels "$(echo $PANELS | tr ' ' ',')"
fi

echo "# $(date -u +%FT%TZ) $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for p in $PANELS; do
  python3 "$HERE/repro_fit.py" --task fe --data "$HERE/data/panel_$p.parquet" --repeat "$REPEAT" --repro "$REPRO" | tee -a "$OUT"
  "$VENV/bin/python" "$HERE/pyfixest_fe.py" --data "$HERE/data/panel_$p.parquet" --repeat "$REPEAT" | tee -a "$OUT"
done
python3 "$HERE/repro_fit.py" --task qr --data "$HERE/data/qr_100k.parquet" --repeat "$REPEAT" --repro "$REPRO" | tee -a "$OUT"
Rscript "$HERE/quantreg.R" "$HERE/data/qr_100k.csv" "$REPEAT" | tee -a "$OUT"
"$VENV/bin/python" "$HERE/statsmodels_qr.py" --data "$HERE/data/qr_100k.parquet" --repeat "$REPEAT" | tee -a "$OUT"
echo "# done; load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
