#!/bin/sh
# The command of every stage of a stand-in project (bench/dvc_standin.py, issue 15).
# Usage: sh dvc_standin.sh MANIFEST OUT... -- DEP...
#   Writes each OUT from the names and contents of the DEPs: a file (a mapping for `.json`,
#   `.yaml`, `.toml`), or, for
#   the folders MANIFEST lists (`D<TAB>path`), a folder with `part.txt` and the files other
#   stages read inside it (`I<TAB>folder<TAB>file`). Paths are relative to the working folder;
#   MANIFEST's are relative to the project root (the folder holding `.dvc/`).
set -eu
manifest=$1; shift
root=$PWD
while [ ! -d "$root/.dvc" ]; do
    [ "$root" = / ] && { echo "dvc_standin.sh: no .dvc folder above $PWD" >&2; exit 2; }
    root=$(dirname "$root")
done
outs=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    outs="$outs$1
"
    shift
done
[ $# -gt 0 ] && shift
sig=$(for d in "$@"; do
    printf '%s\n' "$d"
    if [ -f "$d" ]; then cat "$d"; elif [ -d "$d" ]; then find "$d" -type f | LC_ALL=C sort | while IFS= read -r f; do cat "$f"; done; fi
done | md5sum | cut -d' ' -f1)
printf '%s' "$outs" | while IFS= read -r out; do
    rel=$(realpath -m --relative-to="$root" "$out")
    if grep -qx "D	$rel" "$manifest"; then
        mkdir -p "$out"
        printf '%s\n' "$sig" > "$out/part.txt"
        grep "^I	$rel	" "$manifest" | cut -f3 | while IFS= read -r inner; do
            mkdir -p "$root/$(dirname "$inner")"
            printf '%s %s\n' "$sig" "$inner" > "$root/$inner"
        done
    else
        mkdir -p "$(dirname "$out")"
        case $out in
            # A mapping, as another stage may read the output as its params file.
            *.json) printf '{"stand_in": "%s"}\n' "$sig" > "$out" ;;
            *.yaml | *.yml) printf 'stand_in: "%s"\n' "$sig" > "$out" ;;
            *.toml) printf 'stand_in = "%s"\n' "$sig" > "$out" ;;
            *) printf '%s\n' "$sig" > "$out" ;;
        esac
    fi
done
