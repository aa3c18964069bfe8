#!/usr/bin/env bash
# Renders a project's report.html with headless Chromium to PNG screenshots (full page at a
# laptop width and at a narrow width), to look at what a reader sees. Needs `apt-get install -y
# chromium`. Usage: bench/report_screenshot.sh PROJECT_DIR OUT_DIR
#   PROJECT_DIR  a project after `repro run` (its report is PROJECT_DIR/output/report.html)
#   OUT_DIR      where report-1280.png and report-800.png go
# The browser runs with no network, no profile left behind and no GPU; it is started by this
# script and ends when the screenshot is written.
set -euo pipefail
project="$(cd "$1" && pwd)"
out="$(mkdir -p "$2" && cd "$2" && pwd)"
report="$project/output/report.html"
[ -f "$report" ] || { echo "error: no report at \`$report\`" >&2; exit 2; }
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
for width in 1280 800; do
  chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --no-first-run --hide-scrollbars \
    --user-data-dir="$profile" \
    --window-size="$width,9000" --screenshot="$out/report-$width.png" \
    "file://$report" 2>/dev/null
  echo "wrote $out/report-$width.png"
done
