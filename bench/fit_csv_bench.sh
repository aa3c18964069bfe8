#!/usr/bin/env bash
# `repro fit` as a whole process on the 100,000-row CSV (issue 20, goal 1), side by side in one
# run with R quantreg's pfn + nid measured in-process (bench/quantreg.R):
#   1. OLS:               repro fit --data qr_100k.csv --formula 'y ~ x1 + ... + x9' --json
#   2. median regression: the same with --quantile 0.5 --se nid
#   3. R quantreg:        rq(..., method = "pfn") + summary(se = "nid"), median of REPEAT runs
#      (its CSV read and R's start-up are not counted; quantreg.R also runs "fn").
# repro's figures are hyperfine's mean and median wall time of whole processes (start-up, read,
# estimate, JSON), with their user and system CPU time; the load average is printed before and
# after. With OLD_REPRO set, that binary is timed alongside (before/after figures).
#
# Usage: bash bench/fit_csv_bench.sh      (needs bench/data/qr_100k.csv: bench/gen_data.py)
# Env:   REPRO (default target/release/repro), OLD_REPRO, RUNS (default 20), REPEAT (default 5)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPRO="$(realpath "${REPRO:-$HERE/../target/release/repro}")"
RUNS="${RUNS:-20}"
REPEAT="${REPEAT:-5}"
CSV="$HERE/data/qr_100k.csv"
[ -f "$CSV" ] || { echo "missing $CSV: run bench/gen_data.py --panels ''" >&2; exit 2; }
F='y ~ x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9'
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "machine: $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
cmds=()
names=()
for bin in ${OLD_REPRO:+"$OLD_REPRO"} "$REPRO"; do
  tag="$([ "$bin" = "$REPRO" ] && echo new || echo old)"
  cmds+=("$bin fit --data $CSV --formula '$F' --json")
  names+=("$tag OLS")
  cmds+=("$bin fit --data $CSV --formula '$F' --quantile 0.5 --se nid --json")
  names+=("$tag median nid")
done
args=()
for i in "${!cmds[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
hyperfine -N -w 3 -r "$RUNS" --export-json "$work/h.json" "${args[@]}" > /dev/null
Rscript "$HERE/quantreg.R" "$CSV" "$REPEAT" 2>/dev/null > "$work/r.jsonl"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work/h.json" "$work/r.jsonl" <<'PY'
import json, statistics, sys
h = json.load(open(sys.argv[1]))["results"]
r = {j["method"]: j for j in map(json.loads, open(sys.argv[2]))}
pfn = r["pfn"]["seconds"]
print()
print("| what | mean (s) | median (s) | user + sys CPU (s) | quantreg pfn + nid time / this time |")
print("|---|---:|---:|---:|---:|")
for x in h:
    ratio = f"{pfn / x['median']:.2f}" if "median" in x["command"] else ""
    print(f"| repro {x['command']} | {x['mean']:.3f} | {x['median']:.3f} | {x['user'] + x['system']:.3f} | {ratio} |")
for m in ("fn", "pfn"):
    print(f"| R quantreg {m} + nid, in-process (median of {len(r[m]['runs_seconds'])}) | | {r[m]['seconds']:.3f} | {r[m]['cpu_seconds']:.3f} | |")
PY
