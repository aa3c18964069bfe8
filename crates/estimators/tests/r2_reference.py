"""Reference values for tests/r2_reference.rs: R², adjusted R², within R² and adjusted within R²
as pyfixest computes them, on the Produc data (tests/fixtures/estimators/produc.csv, R package
plm, 48 US states, 1970-1986).

Cases: OLS without fixed effects, one fixed effect, two fixed effects, and two fixed effects with
standard errors clustered by state (the fit statistics do not depend on the variance: pyfixest,
as R fixest's `r2(x, "ar2")`, counts every fixed-effect level as a parameter, one level per
extra dimension excepted, whether or not a fixed effect is nested in the clusters).

pyfixest's definitions (`get_performance`, pyfixest 0.60.0):
  k_fe          = sum(levels - 1) + 1                 (with fixed effects)
  adj_r2        = 1 - RSS/TSS * (N - 1) / (N - k - k_fe)    (k_fe = 0 without fixed effects)
  r2_within     = 1 - RSS/TSS_within
  adj_r2_within = 1 - RSS/TSS_within * (N - k_fe) / (N - k - k_fe)

Run: python3 -m venv /tmp/pfx && /tmp/pfx/bin/pip install pyfixest==0.60.0
     /tmp/pfx/bin/python crates/estimators/tests/r2_reference.py
It rewrites tests/data/r2_reference.json beside this script.
"""

import json
import os
import warnings

import pandas as pd
import pyfixest as pf

warnings.simplefilter("ignore", DeprecationWarning)

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "..", "tests", "fixtures", "estimators", "produc.csv")
OUT = os.path.join(HERE, "data", "r2_reference.json")

CASES = [
    ("ols", "lgsp ~ lpcap + lpc + lemp + unemp", "iid", "iid"),
    ("one_fe", "lgsp ~ lpcap + lpc + lemp + unemp | state", "hc1", "hetero"),
    ("two_fe", "lgsp ~ lpcap + lpc + lemp + unemp | state + year", "iid", "iid"),
    (
        "two_fe_cluster",
        "lgsp ~ lpcap + lpc + lemp + unemp | state + year",
        "cluster:state",
        {"CRV1": "state"},
    ),
]


def number(x):
    x = float(x)
    return None if x != x else x  # NaN (no fixed effects) -> null


def main():
    df = pd.read_csv(DATA)
    cases = []
    for name, formula, vcov, pf_vcov in CASES:
        m = pf.feols(formula, data=df, vcov=pf_vcov, fixef_tol=1e-13)
        cases.append(
            {
                "case": name,
                "formula": formula,
                "vcov": vcov,
                "nobs": int(m._N),
                "r2": number(m._r2),
                "adj_r2": number(m._adj_r2),
                "r2_within": number(m._r2_within),
                "adj_r2_within": number(m._adj_r2_within),
            }
        )
    doc = {
        "source": f"pyfixest {pf.__version__} feols(fixef_tol=1e-13), get_performance()",
        "data": "produc.csv",
        "cases": cases,
    }
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
