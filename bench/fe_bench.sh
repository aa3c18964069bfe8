#!/usr/bin/env bash
# Issue 20, goals 2 and 3: two-way fixed effects with clustered SEs, `repro fit` as a whole process
# against pyfixest in-process, side by side in one run, with the load average beside each figure.
#
#   goal 2: 10M rows (bench/gen_data.py's panel_10m): repro whole process (start, read, estimate,
#           JSON) vs pyfixest's warm feols call (bench/pyfixest_fe.py: median of REPEAT calls).
#   goal 3: 100M rows (bench/gen_fe_large.py: 1M units, 20 periods): repro's wall time and peak
#           RSS (/usr/bin/time); repro and pyfixest on the first 10M rows (whole units), estimates
#           compared; with PYFIXEST_100M=1 also pyfixest on all 100M rows under an address-space
#           limit (prlimit --as=$PYFIXEST_LIMIT, default 16 GiB), to say what it does.
#
# Usage: bash bench/fe_bench.sh [10m|100m|all]   (default all)
# Env:   REPRO (default $CARGO_TARGET_DIR/release/repro), DATA (default /tmp/repro-fe-bench: the
#        generated files, about 3 GB, are left there), REPEAT (default 3),
#        REPRO_BENCH_VENV (a venv with pyfixest, see bench/setup.sh), NICE (default 0).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${REPRO_BENCH_VENV:-$HOME/.cache/repro-bench-venv}"
REPRO="${REPRO:-${CARGO_TARGET_DIR:-$HERE/../target}/release/repro}"
DATA="${DATA:-/tmp/repro-fe-bench}"
REPEAT="${REPEAT:-3}"
NICE="${NICE:-0}"
WHAT="${1:-all}"
FORMULA="y ~ x1 + x2 | unit + period"
mkdir -p "$DATA"

load() { echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"; }
# One `repro fit` process: prints "wall_s peak_kb user_s sys_s", the JSON result to $2.
repro_fit() {
  local data=$1 out=$2 t
  t=$(mktemp)
  nice -n "$NICE" /usr/bin/time -f "%e %M %U %S" -o "$t" \
    "$REPRO" fit --data "$data" --formula "$FORMULA" --vcov cluster:unit --json >"$out"
  cat "$t"; rm -f "$t"
}
coefs() {
  python3 - "$@" <<'PY'
import json, sys
for path in sys.argv[1:]:
    d = json.load(open(path))
    if "coefficients" in d and isinstance(d["coefficients"], list):  # repro
        c = {r["term"]: (r["estimate"], r["std_error"]) for r in d["coefficients"]}
    else:  # pyfixest_fe.py
        c = {k: (v, d["se"][k]) for k, v in d["coefficients"].items()}
    print(path, " ".join(f"{k}: {b!r} (se {s!r})" for k, (b, s) in sorted(c.items())))
PY
}
compare() {
  python3 - "$1" "$2" <<'PY'
import json, sys
r, p = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
worst = 0.0
for row in r["coefficients"]:
    t = row["term"]
    for mine, theirs in ((row["estimate"], p["coefficients"][t]), (row["std_error"], p["se"][t])):
        worst = max(worst, abs(mine - theirs) / abs(theirs))
print(f"largest relative difference repro vs pyfixest (coefficients and SEs): {worst:.2e}")
sys.exit(0 if worst < 1e-6 else 1)
PY
}

echo "# $(date -u +%FT%TZ) $(nproc) cores; repro: $REPRO; $(load)"
if [ "$WHAT" = 10m ] || [ "$WHAT" = all ]; then
  [ -f "$DATA/panel_10m.parquet" ] || "$VENV/bin/python" "$HERE/gen_data.py" --out "$DATA" --panels 10m --no-csv --no-qr
  echo "## goal 2: 10M rows, repro fit whole process x $REPEAT, then pyfixest in-process"
  for i in $(seq "$REPEAT"); do
    echo "repro run $i: wall/peak_kb/user/sys $(repro_fit "$DATA/panel_10m.parquet" "$DATA/repro_10m.json"); $(load)"
  done
  echo "pyfixest ($(load)):"
  nice -n "$NICE" "$VENV/bin/python" "$HERE/pyfixest_fe.py" --data "$DATA/panel_10m.parquet" --repeat "$REPEAT" | tee "$DATA/pyfixest_10m.json"
  echo "after: $(load)"
  coefs "$DATA/repro_10m.json" "$DATA/pyfixest_10m.json"
  compare "$DATA/repro_10m.json" "$DATA/pyfixest_10m.json"
fi
if [ "$WHAT" = 100m ] || [ "$WHAT" = all ]; then
  [ -f "$DATA/fe_100m.parquet" ] && [ -f "$DATA/fe_100m_sub10m.parquet" ] ||
    "$VENV/bin/python" "$HERE/gen_fe_large.py" "$DATA/fe_100m.parquet" --subsample "$DATA/fe_100m_sub10m.parquet"
  echo "## goal 3: 100M rows (1M units x 20 periods), then the first 10M rows"
  echo "repro 100M: wall/peak_kb/user/sys $(repro_fit "$DATA/fe_100m.parquet" "$DATA/repro_100m.json"); $(load)"
  echo "repro 10M subsample: wall/peak_kb/user/sys $(repro_fit "$DATA/fe_100m_sub10m.parquet" "$DATA/repro_sub.json"); $(load)"
  nice -n "$NICE" "$VENV/bin/python" "$HERE/pyfixest_fe.py" --data "$DATA/fe_100m_sub10m.parquet" --repeat 1 | tee "$DATA/pyfixest_sub.json"
  coefs "$DATA/repro_100m.json" "$DATA/repro_sub.json" "$DATA/pyfixest_sub.json"
  compare "$DATA/repro_sub.json" "$DATA/pyfixest_sub.json"
  if [ "${PYFIXEST_100M:-0}" = 1 ]; then
    limit="${PYFIXEST_LIMIT:-17179869184}"
    echo "pyfixest on 100M rows under prlimit --as=$limit ($(load)):"
    set +e
    nice -n "$NICE" /usr/bin/time -f "pyfixest 100M: exit %x, wall %e s, peak %M KB" \
      prlimit --as="$limit" "$VENV/bin/python" "$HERE/pyfixest_fe.py" --data "$DATA/fe_100m.parquet" --repeat 0 2>&1 | tail -3
    set -e
  fi
fi
echo "# done; $(load)"
