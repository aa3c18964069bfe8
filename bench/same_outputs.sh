#!/usr/bin/env bash
# Runs the default pipeline with two repro binaries in fresh copies of the project and checks
# that every output is byte-identical, apart from the run times the HTML report prints.
# Usage: bench/same_outputs.sh OLD_REPRO NEW_REPRO
# For a refactor: build the commit before it (git worktree add ../old REV; cargo build --release
# there), then pass that binary and target/release/repro.
set -euo pipefail
old=$(realpath "$1")
new=$(realpath "$2")
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for side in old new; do
  mkdir -p "$work/$side/docs"
  cp -r "$root/pipeline.yaml" "$root/data" "$root/stages" "$work/$side/"
  cp "$root/docs/dgp.md" "$work/$side/docs/"
done
(cd "$work/old" && "$old" run >/dev/null 2>&1)
(cd "$work/new" && "$new" run >/dev/null 2>&1)
status=0
(cd "$work/old" && find output -type f | sort) > "$work/old.list"
(cd "$work/new" && find output -type f | sort) > "$work/new.list"
if ! diff -u "$work/old.list" "$work/new.list"; then
  echo "the two runs wrote different files"
  status=1
fi
while read -r f; do
  if [ "$f" = output/report.html ]; then
    # The report prints each stage's run time, the time of the last run and each stage's key
    # (which holds the code fingerprint, so it changes with the code by design): compare with
    # those blanked.
    times='s/[0-9]+\.[0-9]+ s\b/TIME/g; s/Latest logged run [0-9-]+ [0-9:]+ UTC/Latest logged run TIME/; s/(<th>key<\/th><td><code>)[0-9a-f]{64}/\1KEY/'
    cmp -s <(sed -E "$times" "$work/old/$f") <(sed -E "$times" "$work/new/$f") || { echo "differs: $f"; status=1; }
  else
    cmp -s "$work/old/$f" "$work/new/$f" || { echo "differs: $f"; status=1; }
  fi
done < "$work/old.list"
n=$(wc -l < "$work/old.list")
[ $status = 0 ] && echo "all $n outputs byte-identical (report: apart from run times and stage keys)"
exit $status
