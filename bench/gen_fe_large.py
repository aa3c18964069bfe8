#!/usr/bin/env python3
"""Generate the largest fixed-effects panel of the benchmarks (issue 20, goal 3), in chunks.

Usage:
    python bench/gen_fe_large.py OUT.parquet [--rows 100000000] [--units 1000000]
                                 [--periods 20] [--subsample SUB.parquet --sub-rows 10000000]

Columns unit, period, y, x1, x2 (sorted by unit; int64 ids, float64 values):
    every unit has rows / units observations; period ~ U{1..periods} drawn per row, so a
    (unit, period) pair repeats about rows / (units * periods) times (5 at the defaults);
    alpha_u ~ N(0, 1), gamma_t ~ N(0, 0.5^2)
    x1 = 0.5 alpha_u + N(0, 1), x2 = 0.3 gamma_t + N(0, 1)
    y  = 1.0 x1 - 0.5 x2 + alpha_u + gamma_t + N(0, 1)
At the defaults: 100M rows, 1M units, 20 periods (two fixed effects with 1M and 20 levels).

Written in row groups of whole units (numpy PCG64 with a fixed seed per chunk, so the file is
the same bytes for a given numpy/pyarrow), never holding more than one chunk in memory.
--subsample also writes the first --sub-rows rows (whole units) to a second file, for the
side-by-side check against pyfixest, which cannot hold the full file on a 24 GB machine.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SEED = 20261202
CHUNK_UNITS = 50_000


def chunk(first_unit: int, n_units: int, per_unit: int, gamma: np.ndarray, seed: int) -> pa.Table:
    rng = np.random.default_rng([SEED, seed])
    n = n_units * per_unit
    alpha = rng.normal(0.0, 1.0, n_units)
    unit = np.repeat(np.arange(first_unit, first_unit + n_units, dtype=np.int64), per_unit)
    period = rng.integers(1, len(gamma) + 1, n, dtype=np.int64)
    a = np.repeat(alpha, per_unit)
    g = gamma[period - 1]
    x1 = 0.5 * a + rng.normal(0.0, 1.0, n)
    x2 = 0.3 * g + rng.normal(0.0, 1.0, n)
    y = 1.0 * x1 - 0.5 * x2 + a + g + rng.normal(0.0, 1.0, n)
    return pa.table({"unit": unit, "period": period, "y": y, "x1": x1, "x2": x2})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--rows", type=int, default=100_000_000)
    ap.add_argument("--units", type=int, default=1_000_000)
    ap.add_argument("--periods", type=int, default=20)
    ap.add_argument("--subsample")
    ap.add_argument("--sub-rows", type=int, default=10_000_000)
    args = ap.parse_args()
    if args.rows % args.units:
        sys.exit("--rows must be a multiple of --units")
    per_unit = args.rows // args.units
    gamma = np.random.default_rng([SEED, 0]).normal(0.0, 0.5, args.periods)
    schema = chunk(1, 1, per_unit, gamma, 1).schema
    writer = pq.ParquetWriter(args.out, schema, compression="snappy")
    sub_units = args.sub_rows // per_unit if args.subsample else 0
    sub = pq.ParquetWriter(args.subsample, schema, compression="snappy") if args.subsample else None
    t0 = time.perf_counter()
    for k, first in enumerate(range(1, args.units + 1, CHUNK_UNITS)):
        n_units = min(CHUNK_UNITS, args.units + 1 - first)
        table = chunk(first, n_units, per_unit, gamma, k + 1)
        writer.write_table(table)
        if sub is not None and first <= sub_units:
            sub.write_table(table.slice(0, (min(first + n_units - 1, sub_units) - first + 1) * per_unit))
    writer.close()
    if sub is not None:
        sub.close()
    print(f"{args.out}: {args.rows:,} rows, {args.units:,} units x {args.periods} periods "
          f"({time.perf_counter() - t0:.0f}s)", file=sys.stderr)


if __name__ == "__main__":
    main()
