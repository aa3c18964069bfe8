#!/bin/sh
# Counts prefecture-level cities per NBS region and coastal status: a demonstration command stage.
# Usage: stages/cities_by_region.sh CITIES_CSV OUT_CSV
set -eu
mkdir -p "$(dirname "$2")"
{
  echo "region,cities,coastal"
  awk -F, 'NR > 1 { n[$4]++; c[$4] += $5 } END { for (r in n) print r "," n[r] "," c[r] }' "$1" | LC_ALL=C sort
} > "$2"
