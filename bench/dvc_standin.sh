#!/bin/sh
# The command of every stage of a stand-in project (bench/dvc_standin.py, issue 15).
# Usage: sh dvc_standin.sh MANIFEST OUT... -- DEP...
#   Writes each OUT from the names and contents of the DEPs: a file, or, for the folders
#   MANIFEST lists (`D<TAB>path`), a folder with `part.txt` and the files other stages read
#   inside it (`I<TAB>folder<TAB>file`). Paths are relative to the working folder;
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
# A file of the stand-in: a mapping for `.json`, `.yaml` and `.toml`, as another stage may read it
# as its params file.
write() {
    mkdir -p "$(dirname "$1")"
    case $1 in
        *.json) printf '{"stand_in": "%s"}\n' "$2" > "$1" ;;
        *.yaml | *.yml) printf 'stand_in: "%s"\n' "$2" > "$1" ;;
        *.toml) printf 'stand_in = "%s"\n' "$2" > "$1" ;;
        *) printf '%s\n' "$2" > "$1" ;;
    esac
}
printf '%s' "$outs" | while IFS= read -r out; do
    rel=$(realpath -m --relative-to="$root" "$out")
    if grep -qx "D	$rel" "$manifest"; then
        write "$out/part.txt" "$sig"
        grep "^I	$rel	" "$manifest" | cut -f3 | while IFS= read -r inner; do
            write "$root/$inner" "$sig"
        done
    else
        write "$out" "$sig"
    fi
done
