#!/usr/bin/env bash
# Install the reference (competitor) tools used by the repro benchmarks.
# Idempotent: re-running only installs what is missing.
#
# Usage: bash bench/setup.sh            (as root, or with sudo available for apt)
# Env:   REPRO_BENCH_VENV  venv location (default: $HOME/.cache/repro-bench-venv)
#        PYTHON            interpreter used to create the venv (default: python3)
#        SKIP_APT=1        skip the Debian packages (R, quantreg, hyperfine)
#        BENCH_FROZEN=1    install the exact Python versions in bench/requirements-frozen.txt
#                          (default: pyfixest pinned, everything else the newest compatible)
set -euo pipefail

VENV="${REPRO_BENCH_VENV:-$HOME/.cache/repro-bench-venv}"
PYTHON="${PYTHON:-python3}"
PYFIXEST_VERSION="${PYFIXEST_VERSION:-0.60.0}"

# ---------------------------------------------------------------- Python venv
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating venv at $VENV"
  if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null && [ "${SKIP_APT:-0}" != "1" ]; then
    # Debian's system python ships venv/ensurepip separately.
    SUDO=""; [ "$(id -u)" != "0" ] && SUDO="sudo"
    $SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y python3-venv
  fi
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# pyfixest is pinned for comparability; the rest take the newest release
# compatible with it. pip skips anything already satisfied.
PKGS=(statsmodels linearmodels pandas pyarrow numpy dvc)
if [ "${BENCH_FROZEN:-0}" = "1" ]; then
  # Exact versions of the measured environment.
  "$VENV/bin/python" -m pip install --quiet -r "$(dirname "${BASH_SOURCE[0]}")/requirements-frozen.txt"
elif ! "$VENV/bin/python" -m pip install --quiet "pyfixest==${PYFIXEST_VERSION}" "${PKGS[@]}"; then
  echo "[setup] WARNING: pyfixest==${PYFIXEST_VERSION} could not be installed; installing the newest" \
       "pyfixest instead (record its version next to the results)" >&2
  "$VENV/bin/python" -m pip install --quiet pyfixest "${PKGS[@]}"
fi

# ------------------------------------------------------------ Debian packages
if [ "${SKIP_APT:-0}" != "1" ]; then
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
  need=()
  for p in r-base-core r-cran-quantreg hyperfine; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  command -v git >/dev/null 2>&1 || need+=(git)   # DVC needs a git repo
  if [ "${#need[@]}" -gt 0 ]; then
    echo "[setup] apt-get install ${need[*]}"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need[@]}"
  fi
fi

# ------------------------------------------------------------------ versions
echo "[setup] installed versions:"
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md, sys
print(f"  python      {sys.version.split()[0]}")
for p in ["pyfixest", "statsmodels", "linearmodels", "pandas", "pyarrow", "numpy", "scipy", "dvc"]:
    try:
        print(f"  {p:<11} {md.version(p)}")
    except md.PackageNotFoundError:
        print(f"  {p:<11} MISSING")
PY
if command -v Rscript >/dev/null; then
  echo "  R           $(Rscript -e 'cat(as.character(getRversion()))' 2>/dev/null)"
  echo "  quantreg    $(Rscript -e 'cat(as.character(packageVersion("quantreg")))' 2>/dev/null || echo MISSING)"
  echo "  data.table  $(Rscript -e 'cat(as.character(packageVersion("data.table")))' 2>/dev/null || echo 'MISSING (quantreg.R falls back to read.csv)')"
else
  echo "  R           MISSING"
fi
if command -v hyperfine >/dev/null; then echo "  $(hyperfine --version)"; else echo "  hyperfine   MISSING"; fi
echo "  $(git --version)"
