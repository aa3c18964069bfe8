#!/usr/bin/env bash
# Smoke test of a cluster started by slurm.sh: submits one job per outcome and prints
# what 'scontrol show job' and the jobcomp file say after each ends.
#   SLURM_CONF=STATE_DIR/slurm.conf tests/services/slurm_check.sh STATE_DIR
# Takes about 70-100 s (the TIMEOUT case needs Slurm's 1-minute minimum time limit).
set -euo pipefail
S=${1:?usage: $0 STATE_DIR}
S=$(cd "$S" && pwd -P)
export SLURM_CONF=${SLURM_CONF:-$S/slurm.conf}
W=$S/check
rm -rf "$W"; mkdir -p "$W"
fail=0

submit() { sbatch --parsable -D "$W" -o "$W/%x-%j.out" -J "$@"; }

ok=$(submit ok --wrap 'echo hi')
bad=$(submit bad --wrap 'echo failing; exit 3')
# Allocate and touch ~200 MB (a str of 'x' is written, so it is resident), hold it.
oom=$(submit oom --mem=10M --wrap "python3 -c \"import time; s='x'*(200<<20); time.sleep(20)\"")
tmo=$(submit tmo --time=0:01 --wrap 'sleep 300')
can=$(submit can --wrap 'sleep 300')

# Cancel 'can' once it runs.
for ((i = 0; i < 150; i++)); do
    [[ $(squeue -h -j "$can" -o %T 2>/dev/null) == RUNNING ]] && break
    sleep 0.2
done
scancel "$can"

field() { { grep -o "\b$2=[^ ]*" <<<"$1" || true; } | head -n 1 | cut -d= -f2-; }
# Without task/cgroup, Slurm 22.05 has no OOM signal: the OverMemoryKill'ed job is FAILED.
oom_state=FAILED
grep -q '^TaskPlugin=task/cgroup' "$SLURM_CONF" && oom_state=OUT_OF_MEMORY
declare -A want=([$ok]=COMPLETED [$bad]=FAILED [$oom]=$oom_state [$tmo]=TIMEOUT [$can]=CANCELLED)
declare -A name=([$ok]=ok [$bad]=bad [$oom]=oom [$tmo]=tmo [$can]=can)

deadline=$((SECONDS + 180))
for id in "$ok" "$bad" "$oom" "$can" "$tmo"; do
    while :; do
        out=$(scontrol show job "$id" 2>&1) || true
        st=$(field "$out" JobState)
        case $st in PENDING | RUNNING | CONFIGURING | COMPLETING | SUSPENDED | "") ;; *) break ;; esac
        # COMPLETING -> final: wait for it
        ((SECONDS < deadline)) || { echo "job $id still $st after deadline"; fail=1; break; }
        sleep 1
    done
    # Let the COMPLETING flag clear so the record is final.
    sleep 1
    out=$(scontrol show job "$id")
    st=$(field "$out" JobState); rs=$(field "$out" Reason); ec=$(field "$out" ExitCode)
    printf '%-4s job %-4s JobState=%-14s Reason=%-22s ExitCode=%s\n' \
        "${name[$id]}" "$id" "$st" "$rs" "$ec"
    if [[ $st != "${want[$id]}" ]]; then
        echo "  FAIL: expected JobState=${want[$id]}"; fail=1
        echo "$out" | sed 's/^/    /'
    fi
done
out_file=$W/ok-$ok.out
if [[ $(cat "$out_file" 2>/dev/null) == hi ]]; then echo "ok   output file $out_file says 'hi'"; else echo "FAIL: $out_file missing or wrong"; fail=1; fi
echo "---- jobcomp ($S/jobcomp.txt) ----"
cat "$S/jobcomp.txt" 2>/dev/null || echo "(none)"
for f in "$W"/*.out; do echo "---- $f"; cat "$f"; done
exit $fail
