#!/usr/bin/env python3
"""Median-regression benchmark with statsmodels QuantReg (competitor for `repro`'s QR estimator).

Model:  QuantReg(y, [1, x1..x9]).fit(q=0.5)   -- statsmodels defaults otherwise:
        vcov="robust", kernel="epa", bandwidth="hsheather", max_iter=1000, p_tol=1e-6.

Usage:
    $VENV/bin/python bench/statsmodels_qr.py [--data bench/data/qr_100k.parquet] [--repeat 3]

What is timed:
    load_seconds  pd.read_parquet (or pd.read_csv(engine="pyarrow")) plus building the
                  numpy y / X arrays with an intercept column; reported, never added in.
    seconds       median over --repeat runs of QuantReg(y, X).fit(q=0.5): the IRLS fit
                  and the covariance (the two cannot be timed apart in statsmodels; the
                  covariance is a single kernel density estimate and one X'DX product).
    cpu_seconds   median process CPU time (user + system, all threads, incl. OpenBLAS) of those runs.

Standard errors -- NOT the same estimator as R quantreg's se="nid":
    statsmodels estimates ONE scalar density of the residuals at 0,
        f0 = (1/(n h)) sum_i K(e_i / h),  K = Epanechnikov,
        h  = min(sd(y), IQR(e)/1.34) * (Phi^-1(q + hs) - Phi^-1(q - hs)),  hs = Hall-Sheather,
    and forms  V = (X'X)^-1 X' D X (X'X)^-1,  d_i = (q/f0)^2 if e_i > 0 else ((1-q)/f0)^2.
    At q = 0.5 every d_i equals 0.25/f0^2, so "robust" reduces exactly to the iid formula
    0.25/f0^2 (X'X)^-1: it does not adapt to heteroskedasticity in x.
    R's "nid" (Hendricks-Koenker) instead estimates a per-observation density from the
    refits at tau +/- h and uses the sandwich tau(1-tau) (X'FX)^-1 X'X (X'FX)^-1.
    Point estimates should agree with R to the IRLS tolerance; SEs will differ.

Prints one JSON line:
    {"tool": "statsmodels", "task": "<data stem>", "seconds": ..., "coefficients": {...}, ...}
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings

import numpy as np
import pandas as pd
import statsmodels
from statsmodels.regression.quantile_regression import QuantReg

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(HERE, "data", "qr_100k.parquet"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    t0 = time.perf_counter()
    df = pd.read_parquet(args.data) if args.data.endswith(".parquet") else pd.read_csv(args.data, engine="pyarrow")
    xs = sorted((c for c in df.columns if c.startswith("x")), key=lambda c: int(c[1:]))
    y = df["y"].to_numpy(dtype=np.float64)
    X = np.column_stack([np.ones(len(df))] + [df[c].to_numpy(dtype=np.float64) for c in xs])
    load_s = time.perf_counter() - t0
    names = ["Intercept"] + xs

    runs, cpus = [], []
    caught = []
    for _ in range(max(1, args.repeat)):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            c0 = time.process_time()
            t0 = time.perf_counter()
            res = QuantReg(y, X).fit(q=0.5)
            runs.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        caught = [str(x.message) for x in w]

    stem = os.path.splitext(os.path.basename(args.data))[0]
    out = {
        "tool": "statsmodels",
        "task": stem,
        "seconds": statistics.median(runs),
        "coefficients": dict(zip(names, map(float, res.params))),
        "se": dict(zip(names, map(float, res.bse))),
        "se_method": "statsmodels robust (default; kernel=epa, bandwidth=hsheather; equals iid at q=0.5)",
        "method": "IRLS",
        "iterations": int(res.iterations),
        "warnings": caught,
        "tau": 0.5,
        "nobs": int(res.nobs),
        "load_seconds": load_s,
        "runs_seconds": runs,
        "cpu_seconds": statistics.median(cpus),
        "data": os.path.relpath(args.data, os.path.dirname(HERE)),
        "version": statsmodels.__version__,
        "python": platform.python_version(),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
