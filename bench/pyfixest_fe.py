#!/usr/bin/env python3
"""Two-way fixed-effects benchmark with pyfixest (competitor for `repro`'s FE estimator).

Model:  feols("y ~ x1 + x2 | unit + period", vcov={"CRV1": "unit"})

Usage:
    $VENV/bin/python bench/pyfixest_fe.py [--data bench/data/panel_1m.parquet]
                                          [--repeat 3] [--backend rust|numba|jax|within]

What is timed:
    load_seconds        reading the file into a pandas DataFrame (pd.read_parquet, or
                        pd.read_csv(engine="pyarrow") for .csv); reported, never added in.
    first_call_seconds  the first pf.feols call in this process (a cold start: one-time
                        lazy imports and initialisation; not used for `seconds`).
    seconds             median over --repeat further pf.feols calls on the same
                        DataFrame (warm), each = formula parsing, FE demeaning,
                        OLS solve and CRV1 vcov. runs_seconds lists them all.
    cpu_seconds         median process CPU time (user + system, all threads) of those runs;
                        less sensitive than wall clock to other load on the machine.

Demeaning: pyfixest 0.60's default, MapDemeaner(backend="rust", fixef_tol=1e-6,
fixef_maxiter=10000) -- alternating projections in pyfixest's compiled Rust core
(numba and jax are optional extras and are not installed by bench/setup.sh).

Prints one JSON line:
    {"tool": "pyfixest", "task": "fe_<data stem>", "seconds": ..., "coefficients": {...}, ...}
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import pandas as pd
import pyfixest as pf
from pyfixest.demeaners import MapDemeaner, LsmrDemeaner

HERE = os.path.dirname(os.path.abspath(__file__))


def load(path: str) -> pd.DataFrame:
    if path.endswith(".parquet"):
        return pd.read_parquet(path)
    return pd.read_csv(path, engine="pyarrow")


def make_demeaner(backend: str | None):
    if backend is None:
        return None  # pyfixest's default
    if backend in ("rust", "numba", "jax"):
        return MapDemeaner(backend=backend)
    return LsmrDemeaner(backend=backend)


def fit(df: pd.DataFrame, demeaner):
    return pf.feols("y ~ x1 + x2 | unit + period", data=df, vcov={"CRV1": "unit"}, demeaner=demeaner)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(HERE, "data", "panel_1m.parquet"))
    ap.add_argument("--repeat", type=int, default=3, help="warm timed runs after the first call (default 3)")
    ap.add_argument("--backend", default=None,
                    help="MAP backend rust|numba|jax, or an LSMR backend such as within (default: pyfixest's default)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    df = load(args.data)
    load_s = time.perf_counter() - t0

    demeaner = make_demeaner(args.backend)
    t0 = time.perf_counter()
    m = fit(df, demeaner)
    first_s = time.perf_counter() - t0

    runs, cpus = [], []
    for _ in range(args.repeat):
        c0 = time.process_time()
        t0 = time.perf_counter()
        m = fit(df, demeaner)
        runs.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)

    coef = m.coef()
    se = m.se()
    stem = os.path.splitext(os.path.basename(args.data))[0]
    out = {
        "tool": "pyfixest",
        "task": f"fe_{stem}",
        "seconds": statistics.median(runs) if runs else first_s,
        "coefficients": {k: float(v) for k, v in coef.items()},
        "se": {k: float(v) for k, v in se.items()},
        "vcov": "CRV1 by unit",
        "nobs": int(m._N),
        "load_seconds": load_s,
        "first_call_seconds": first_s,
        "runs_seconds": runs,
        "cpu_seconds": statistics.median(cpus) if cpus else None,
        "data": os.path.relpath(args.data, os.path.dirname(HERE)),
        "version": pf.__version__ if hasattr(pf, "__version__") else None,
        "demeaner": repr(demeaner if demeaner is not None else MapDemeaner()),
        "python": platform.python_version(),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
