#!/usr/bin/env bash
# Self-test of the service scripts: ROUNDS x (start -> checks -> stop) for SeaweedFS and
# Slurm on the same state folders (so stale files from a round must not break the next),
# then checks that no daemon a round started is still alive and no weed socket or state
# folder was left in /tmp. SLURM_MEM_ENFORCE=cgroup tests the cgroup mode of slurm.sh.
#   tests/services/selftest.sh [ROUNDS]      (default 2; Slurm checks take ~80 s a round)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROUNDS=${1:-2}
BASE=$(mktemp -d /tmp/repro-services-selftest.XXXXXX)
fail=0
daemons() { ps -eo pid=,cmd= | grep -E '(munged|slurmctld|slurmd|slurmstepd|weed) ' | grep -v grep || true; }

echo "== processes before"; daemons
# Names in /tmp that these scripts (or weed) could leave behind.
ours() { ls -d /tmp/seaweedfs-* /tmp/repro-slurm.* /tmp/repro-seaweedfs.* 2>/dev/null | sort || true; }
tmp_before=$(ours)
for ((r = 1; r <= ROUNDS; r++)); do
    echo "== round $r: seaweedfs"
    t=$SECONDS
    "$HERE/seaweedfs.sh" start "$BASE/s3" >/dev/null
    echo "start took $((SECONDS - t))s; weed RSS $(awk '/VmRSS/ {print $2 " " $3}' "/proc/$(<"$BASE/s3/weed.pid")/status")"
    (set -a; . "$BASE/s3/env"; "${REPRO_VENV:-/opt/repro-venv}/bin/python" "$HERE/s3_check.py" check) || fail=1
    echo "weed RSS after checks $(awk '/VmRSS/ {print $2 " " $3}' "/proc/$(<"$BASE/s3/weed.pid")/status")"
    pids="$(<"$BASE/s3/weed.pid")"
    t=$SECONDS; "$HERE/seaweedfs.sh" stop "$BASE/s3" || fail=1; echo "stop took $((SECONDS - t))s"

    echo "== round $r: slurm"
    t=$SECONDS
    "$HERE/slurm.sh" start "$BASE/slurm" >/dev/null
    echo "start took $((SECONDS - t))s"
    pids="$pids $(cat "$BASE"/slurm/{munged,slurmctld,slurmd}.pid | tr '\n' ' ')"
    SLURM_CONF=$BASE/slurm/slurm.conf "$HERE/slurm_check.sh" "$BASE/slurm" | grep -vE '^(----|JobId=|hi|failing|Killed|slurmstepd)' || fail=1
    # Leave a running job so stop must scancel it first.
    SLURM_CONF=$BASE/slurm/slurm.conf sbatch -Q -o /dev/null --wrap 'sleep 600'
    sleep 2
    t=$SECONDS; "$HERE/slurm.sh" stop "$BASE/slurm" || fail=1; echo "stop took $((SECONDS - t))s"
    for p in $pids; do
        if kill -0 "$p" 2>/dev/null; then echo "FAIL: pid $p still alive: $(ps -o cmd= -p "$p")"; fail=1; fi
    done
done
echo "== processes after"; daemons
[[ -z $(daemons) ]] || { echo "FAIL: daemons left"; fail=1; }
new_tmp=$(comm -13 <(echo "$tmp_before") <(ours))
[[ -z $new_tmp ]] || { echo "FAIL: left in /tmp: $new_tmp"; fail=1; }
rm -rf "$BASE"
if ((fail)); then echo "selftest: FAILED"; exit 1; fi
echo "selftest: $ROUNDS rounds passed"
