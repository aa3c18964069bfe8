#!/usr/bin/env bash
# No-op `repro status` against no-op `dvc status` on stand-ins of real DVC projects (issue 15:
# at least 50x faster on each).
#
# Usage: bench/dvc_corpus_status.sh FOLDER [RUNS]
#   FOLDER is laid out as for bench/dvc_corpus.sh (one subfolder per project, its dvc.yaml files
#   and params files). Real projects cannot run here (their commands need their code and data),
#   so each project DVC accepts becomes a stand-in with the same graph (bench/dvc_standin.py):
#   the same dvc.yaml files, byte for byte except each `cmd`, which becomes a shell command
#   writing the stage's declared outputs from its deps; deps no stage produces are created as
#   small files. Two twin copies are then built once, by `dvc repro` (`-P` when the pipelines
#   all live in subfolders) and by `repro -f dvc.yaml run`; each must then be up to date.
#   Finally hyperfine (no shell, `-N`) times no-op `dvc --cd TWIN status -q` and
#   `repro -f TWIN/dvc.yaml status`, RUNS times each (default 5) after one untimed call, in one
#   invocation; the median wall clock of each is reported, with `repro --version` timed alongside
#   (the cost of starting any process at that moment) and the mean CPU time of each tool.
#   `uptime` before and after gives the load.
# Environment: DVC (default: dvc on the PATH), DVC_PYTHON (default: the python beside $DVC;
# needs DVC's modules and PyYAML), REPRO (default: the release build).
set -euo pipefail
folder=${1:?usage: bench/dvc_corpus_status.sh FOLDER [RUNS]}
runs=${2:-5}
DVC=${DVC:-dvc}
DVC=$(command -v "$DVC")
DVC_PYTHON=${DVC_PYTHON:-$(dirname "$DVC")/python}
REPRO=${REPRO:-${CARGO_TARGET_DIR:-$HOME/.cache/repro-target}/release/repro}
here=$(cd "$(dirname "$0")" && pwd)
command -v hyperfine >/dev/null || { echo "error: hyperfine is needed (bench/setup.sh installs it)" >&2; exit 2; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp "$here/dvc_standin.sh" "$scratch/standin.sh"
export DVC_NO_ANALYTICS=1 SHELL=/bin/sh

uptime
# `floor`: `repro --version` timed alongside, the cost of starting a process at that moment.
# `cpu`: user + system seconds, which the load of other jobs disturbs less than wall clock.
printf '%-36s %6s  %-10s %10s %10s %10s %8s %9s %9s %8s\n' project stages state "dvc (s)" "repro (s)" "floor (s)" ratio \
    "dvc cpu" "repro cpu" "cpu ratio"
for project in "$folder"/*/; do
    name=$(basename "$project")
    [ -n "$(find "$project" -name dvc.yaml -print -quit)" ] || continue
    d="$scratch/$name/dvc"; r="$scratch/$name/repro"
    mkdir -p "$scratch/$name"
    cp -r "$project" "$d"
    (cd "$d" && "$DVC" init --no-scm -q && "$DVC" config core.analytics false && "$DVC" config core.check_update false)
    if ! (cd "$d" && "$DVC" dag >/dev/null 2>&1); then
        printf '%-36s %6s  %-10s\n' "$name" - "dvc rejects"; continue
    fi
    if ! stages=$(cd "$d" && "$DVC_PYTHON" "$here/dvc_standin.py" . "$scratch/standin.sh" "$scratch/$name/manifest" 2>"$scratch/$name/standin.err"); then
        printf '%-36s %6s  %-10s %s\n' "$name" - "no stand-in" "$(tail -n 1 "$scratch/$name/standin.err")"; continue
    fi
    stages=${stages#stages=}
    cp -r "$d" "$r"
    all=(); [ -f "$d/dvc.yaml" ] || all=(-P)
    if ! (cd "$d" && "$DVC" repro -q "${all[@]}" >"$scratch/$name/dvc.log" 2>&1); then
        printf '%-36s %6s  %-10s %s\n' "$name" "$stages" "dvc fails" "$(grep -m1 ERROR "$scratch/$name/dvc.log")"; continue
    fi
    if ! (cd "$r" && "$REPRO" -f dvc.yaml run >"$scratch/$name/repro.log" 2>&1); then
        printf '%-36s %6s  %-10s %s\n' "$name" "$stages" "repro fails" "$(grep -m1 error "$scratch/$name/repro.log")"; continue
    fi
    state=built
    (cd "$d" && "$DVC" status -q >/dev/null 2>&1) || state="dvc:stale"
    if (cd "$r" && "$REPRO" -f dvc.yaml status --json 2>/dev/null) | grep -q '"stale": *true'; then state="$state,repro:stale"; fi
    hyperfine -N -i --style none --warmup 1 --runs "$runs" --export-json "$scratch/$name/t.json" \
        "$DVC --cd $d status -q" "$REPRO -f $r/dvc.yaml status" "$REPRO --version" \
        >/dev/null 2>"$scratch/$name/hyperfine.err"
    # Median wall clock of each command, and mean CPU (user + system) of dvc and repro.
    read -r dt rt ft dc rc < <("$DVC_PYTHON" -c 'import json, sys; r = json.load(open(sys.argv[1]))["results"]; print(*(x["median"] for x in r), *(x["user"] + x["system"] for x in r[:2]))' "$scratch/$name/t.json")
    printf '%-36s %6s  %-10s %10.3f %10.4f %10.4f %7.0fx %9.3f %9.4f %7.0fx\n' "$name" "$stages" "$state" "$dt" "$rt" "$ft" \
        "$(echo "$dt / $rt" | bc -l)" "$dc" "$rc" "$(echo "$dc / $rc" | bc -l)"
done
uptime
