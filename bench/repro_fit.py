#!/usr/bin/env python3
"""Time `repro fit` on the benchmark data, in the same JSON-line form as the competitor scripts.

Usage:
    python3 bench/repro_fit.py --task fe --data bench/data/panel_1m.parquet [--repeat 3]
    python3 bench/repro_fit.py --task qr --data bench/data/qr_100k.parquet [--repeat 3]

Each run is one `repro -v fit ... --json` process. repro logs (under -v) how long it spent
reading the file and how long estimating; `seconds` is the median estimation time,
`load_seconds` the median read time, `wall_seconds` the median whole-process time
(start-up + read + estimate + JSON). Needs only the Python standard library.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import time

FE = dict(formula="y ~ x1 + x2 | unit + period", extra=["--vcov", "cluster:unit"])
QR = dict(
    formula="y ~ x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9",
    extra=["--quantile", "0.5", "--se", "nid"],
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", choices=["fe", "qr"], required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--repro", default=os.environ.get("REPRO", "target/release/repro"))
    args = ap.parse_args()
    spec = FE if args.task == "fe" else QR
    cmd = [args.repro, "-v", "fit", "--data", args.data, "--formula", spec["formula"], *spec["extra"], "--json"]
    est, load, wall, result = [], [], [], None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, check=True)
        wall.append(time.perf_counter() - t0)
        est.append(float(re.search(r"estimated seconds=([0-9.e-]+)", p.stderr).group(1)))
        load.append(float(re.search(r"read data seconds=([0-9.e-]+)", p.stderr).group(1)))
        result = json.loads(p.stdout)
    stem = os.path.splitext(os.path.basename(args.data))[0]
    task = f"fe_{stem}" if args.task == "fe" else f"qr_{stem}_nid"
    out = {
        "tool": "repro",
        "task": task,
        "seconds": statistics.median(est),
        "runs_seconds": est,
        "load_seconds": statistics.median(load),
        "wall_seconds": statistics.median(wall),
        "nobs": result["nobs"],
        "coefficients": {c["term"]: c["estimate"] for c in result["coefficients"]},
        "std_errors": {c["term"]: c["std_error"] for c in result["coefficients"]},
        "command": " ".join(cmd),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
