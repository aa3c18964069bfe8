#!/usr/bin/env bash
# Installs the pinned source packages into data/build/.venv and data/build/node_modules
# (both ignored by git), then rebuilds the data. Needs python3 (>=3.9), pip and npm.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --no-deps -r requirements.txt
npm install --no-audit --no-fund --ignore-scripts --no-package-lock >/dev/null
.venv/bin/python gazetteer.py --npm-dir "$here/node_modules" "$@"
