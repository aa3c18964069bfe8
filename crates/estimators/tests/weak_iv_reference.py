"""Reference values for tests/weak_iv_sandwich.rs.

Data: tests/data/weak_iv_two_fe.csv, the case proptest found for
`absorbed_fixed_effects_equal_explicit_dummies` (seed 14941346475700562072, extra 21, l1 5,
l2 3; 36 rows written with 17 significant digits, so the doubles are exact). The model is
`y ~ x1 | f1 + f2 | x2 ~ cl`; the instrument is nearly irrelevant (first-stage F 3e-8), so the
second-stage regressors have condition number 1e5 and standard errors are 1e6 to 3e7.

Two references:
* pyfixest (version printed; the test's numbers come from 0.60.0, default "rust" demeaner) with
  the fixed effects absorbed, fixef_tol 1e-14. pyfixest builds the sandwich as
  inv(X'X) @ meat @ inv(X'X), which loses digits in proportion to the squared condition number:
  here its SEs are within 2.2e-9 of the exact ones and move by as much between its demeaner
  backends. Its explicit-dummy fit, solved through the normal equations, is off by 4e-6 even in
  the coefficients, so it is no reference.
* The exact 2SLS on the same doubles, with explicit dummies, in 60-digit arithmetic (mpmath),
  with fixest's small-sample conventions: iid sigma^2 = RSS / (N - K); hc1 N / (N - K); CRV1
  (N - 1) / (N - K) * G / (G - 1), K = 9 (2 slopes + 5 + 3 - 1 levels) except for clusters by
  f1, where f1 is nested in the clusters and K = 9 - (5 - 1) = 5 (fixest's fixef.K = "nested").

Run: python3 -m venv /tmp/pfx && /tmp/pfx/bin/pip install pyfixest mpmath
     /tmp/pfx/bin/python crates/estimators/tests/weak_iv_reference.py
"""

import csv
import os
import warnings

import mpmath as mp
import pandas as pd
import pyfixest as pf

# pyfixest 0.60 deprecates fixef_tol and demeaner_backend in favour of `demeaner=`.
warnings.simplefilter("ignore", DeprecationWarning)

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data", "weak_iv_two_fe.csv")


def pyfixest_values():
    df = pd.read_csv(DATA)
    df["f1"] = df["f1"].astype(str)
    df["f2"] = df["f2"].astype(int)
    print("pyfixest", pf.__version__)
    # The test's numbers are the default ("rust") backend's; "scipy" shows how far pyfixest's
    # own answers scatter on this ill-conditioned case (about 2e-9 relative).
    for backend in ["rust", "scipy"]:
        for label, vcov in [("iid", "iid"), ("hc1", "hetero"), ("cluster:f1", {"CRV1": "f1"})]:
            m = pf.feols(
                "y ~ x1 | f1 + f2 | x2 ~ cl",
                data=df,
                vcov=vcov,
                fixef_tol=1e-14,
                demeaner_backend=backend,
            )
            coef = [float(v) for v in m.coef()[["x1", "x2"]].values]
            se = [float(v) for v in m.se()[["x1", "x2"]].values]
            print(
                f"pyfixest {backend} absorbed {label}: coef {coef[0]!r} {coef[1]!r}  "
                f"se {se[0]!r} {se[1]!r}"
            )


def exact_values():
    mp.mp.dps = 60
    rows = list(csv.DictReader(open(DATA)))
    n = len(rows)
    dummies = ["d1_1", "d1_2", "d1_3", "d1_4", "d2_1", "d2_2"]

    def exog(r):
        return [mp.mpf(1), mp.mpf(r["x1"])] + [mp.mpf(r[d]) for d in dummies]

    W = [exog(r) for r in rows]
    Z = mp.matrix([w + [mp.mpf(r["cl"])] for w, r in zip(W, rows)])
    X = mp.matrix([w + [mp.mpf(r["x2"])] for w, r in zip(W, rows)])
    Y = mp.matrix([mp.mpf(r["y"]) for r in rows])
    xhat = Z * (mp.inverse(Z.T * Z) * (Z.T * X))
    k = X.cols
    bread = mp.inverse(xhat.T * xhat)
    b = bread * (xhat.T * Y)
    u = Y - X * b
    # Positions of x1 and x2 in [1, x1, dummies, x2].
    pos = {"x1": 1, "x2": k - 1}
    print(f"exact coef x1 {mp.nstr(b[1], 20)} x2 {mp.nstr(b[k - 1], 20)}")

    def report(label, v):
        print(
            f"exact {label}: se x1 {mp.nstr(mp.sqrt(v[1, 1]), 20)} "
            f"x2 {mp.nstr(mp.sqrt(v[pos['x2'], pos['x2']]), 20)}"
        )

    rss = sum(u[i] ** 2 for i in range(n))
    report("iid", bread * (rss / (n - 9)))

    def sandwich(groups, factor):
        meat = mp.matrix(k, k)
        for g in sorted(set(groups)):
            s = [sum(xhat[i, a] * u[i] for i in range(n) if groups[i] == g) for a in range(k)]
            for a in range(k):
                for c in range(k):
                    meat[a, c] += s[a] * s[c]
        return bread * meat * bread * factor

    report("hc1", sandwich(list(range(n)), mp.mpf(n) / (n - 9)))
    g1 = [r["f1"] for r in rows]
    big_g = len(set(g1))
    report(
        "cluster:f1",
        sandwich(g1, mp.mpf(n - 1) / (n - 5) * mp.mpf(big_g) / (big_g - 1)),
    )


if __name__ == "__main__":
    pyfixest_values()
    exact_values()
