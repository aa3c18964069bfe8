#!/usr/bin/env python3
"""Compares two city-year index CSVs: integer counts equal, fractional values within a tolerance
(absolute below 1, relative above).

Usage: compare_index.py A.csv B.csv [--tol 1e-9]

Compares the columns both files have (so the generator's truth_city_year.csv, which has a subset
plus `pop`, can be either side), on the (adcode6, year) rows of A; a row missing from B is a
difference. Prints one line per column and up to five differing rows; exits 1 on any difference.
"""

import argparse
import sys

import numpy as np
import pandas as pd

INDEX_COLUMNS = ["apps", "joint", "joint_cc", "joint_cp", "frac_cc", "inv_joint_cc", "inv_frac_cc",
                 "degree", "strength", "collab", "collab_cp", "collab_frac", "collab_inv"]
INTEGER = {"apps", "joint", "joint_cc", "joint_cp", "inv_joint_cc", "degree", "strength"}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--tol", type=float, default=1e-9)
    args = ap.parse_args()
    a = pd.read_csv(args.a).set_index(["adcode6", "year"]).sort_index()
    b = pd.read_csv(args.b).set_index(["adcode6", "year"]).sort_index()
    missing = a.index.difference(b.index)
    extra = b.index.difference(a.index)
    bad = 0
    if len(missing) or len(extra):
        print(f"rows: {len(missing)} only in {args.a}, {len(extra)} only in {args.b}")
        bad += 1
    b = b.reindex(a.index)
    columns = [c for c in INDEX_COLUMNS if c in a.columns and c in b.columns]
    print(f"{len(a)} city-years, columns compared: {', '.join(columns)}")
    for c in columns:
        x, y = a[c].to_numpy(dtype=float), b[c].to_numpy(dtype=float)
        both_blank = np.isnan(x) & np.isnan(y)
        if c in INTEGER:
            diff = ~both_blank & ~(x == y)
            worst = np.nanmax(np.abs(x - y)) if diff.any() else 0.0
        else:
            # Relative above 1: sums of thousands of shares differ in the last bits with the
            # summation order (repro sums per block, pandas with compensated sums).
            scale = np.maximum(1.0, np.maximum(np.abs(x), np.abs(y)))
            diff = ~both_blank & ~(np.abs(x - y) <= args.tol * scale)
            worst = float(np.nanmax(np.where(both_blank, 0.0, np.abs(x - y)))) if len(x) else 0.0
        status = "equal" if c in INTEGER and not diff.any() else (
            f"within {args.tol:g} (max abs diff {worst:.3g})" if not diff.any() else
            f"{int(diff.sum())} rows differ (max abs diff {worst:.3g})")
        print(f"  {c:<13} {status}")
        if diff.any():
            bad += 1
            rows = a.index[diff][:5]
            for r in rows:
                print(f"    {r}: {a.at[r, c]} vs {b.at[r, c]}")
    print("IDENTICAL (within tolerance)" if not bad else "DIFFERENT")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
