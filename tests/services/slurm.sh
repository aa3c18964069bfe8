#!/usr/bin/env bash
# Start/stop a private single-node Slurm cluster (munged + slurmctld + slurmd) for tests.
#
#   tests/services/slurm.sh start [STATE_DIR]   # prints: export SLURM_CONF=STATE_DIR/slurm.conf
#   tests/services/slurm.sh stop  STATE_DIR
#   tests/services/slurm.sh status STATE_DIR
#
# Everything (config, munge key and socket, spool, state, logs, pid files) lives in
# STATE_DIR; nothing is written to /etc, /run or /var. Daemons listen on 127.0.0.1 only.
# Only PIDs recorded in STATE_DIR/*.pid are ever signalled.
# See tests/services/README.md for the job states this cluster reports.
set -euo pipefail

START_TIMEOUT=${SLURM_START_TIMEOUT:-60}   # seconds for each daemon / the node to come up
STOP_TIMEOUT=${SLURM_STOP_TIMEOUT:-30}     # seconds for jobs to end and each daemon to exit
# How --mem is enforced:
#   jobacct (default): jobacct_gather/linux polls RSS every second and kills the step
#       (no cgroups needed; the job ends FAILED, Reason=JobLaunchFailure, ExitCode=0:9).
#   cgroup: task/cgroup with cgroup v1 memory limits (the kernel OOM-kills; the job ends
#       OUT_OF_MEMORY). Writes under /sys/fs/cgroup/*/slurm, so one such cluster per host.
MEM_ENFORCE=${SLURM_MEM_ENFORCE:-jobacct}

die() { echo "slurm.sh: error: $*" >&2; exit 1; }
log() { echo "slurm.sh: $*" >&2; }

# Print the last lines of a daemon log to stderr (for failure messages).
tail_log() {
    local f=$1
    if [[ -s $f ]]; then
        echo "---- last lines of $f ----" >&2
        tail -n 30 "$f" >&2
        echo "----" >&2
    else
        echo "(no log at $f)" >&2
    fi
}

free_port() {
    python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }
# ours PID STATE_DIR: PID is alive and its command line names STATE_DIR, so a stale pid
# file whose PID was reused by another process is never signalled.
ours() { alive "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"; }

# wait_exit PID NAME LOG: SIGTERM already sent; wait up to STOP_TIMEOUT, then SIGKILL.
wait_exit() {
    local pid=$1 name=$2 logf=$3 i
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        alive "$pid" || return 0
        sleep 0.1
    done
    log "$name (pid $pid) did not exit within ${STOP_TIMEOUT}s after SIGTERM; sending SIGKILL"
    tail_log "$logf"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        alive "$pid" || return 1
        sleep 0.1
    done
    log "$name (pid $pid) still alive after SIGKILL"
    return 1
}

# Start CMD... in the background with output to LOG, record its PID in PIDFILE.
spawn() {
    local pidfile=$1 logf=$2
    shift 2
    "$@" </dev/null >>"$logf" 2>&1 &
    echo $! >"$pidfile"
}

stop_pidfile() {
    local pidfile=$1 name=$2 logf=$3 rc=0 pid
    [[ -f $pidfile ]] || return 0
    pid=$(<"$pidfile")
    if ours "$pid" "$(dirname "$pidfile")"; then
        kill -TERM "$pid" 2>/dev/null || true
        wait_exit "$pid" "$name" "$logf" || rc=1
    fi
    rm -f "$pidfile"
    return $rc
}

cmd_start() {
    local S=${1:-}
    if [[ -z $S ]]; then
        S=$(mktemp -d /tmp/repro-slurm.XXXXXX)
    fi
    mkdir -p "$S"
    S=$(cd "$S" && pwd -P)
    for f in munged slurmctld slurmd; do
        if [[ -f $S/$f.pid ]] && ours "$(<"$S/$f.pid")" "$S"; then
            die "$f already running from $S (pid $(<"$S/$f.pid")); run: $0 stop $S"
        fi
    done
    for b in munged mungekey slurmctld slurmd sinfo scontrol sbatch; do
        command -v "$b" >/dev/null || die "$b not found; run tests/services/install.sh"
    done

    # A failed start stops whatever it had started.
    trap 'rc=$?; if ((rc != 0)); then log "start failed; stopping what was started"; cmd_stop "$S" || true; fi' EXIT

    # Fresh state every start: stale spool/state from an earlier run must not leak in.
    rm -rf "$S/munge" "$S/spool" "$S/ctld" "$S/log" "$S"/*.pid "$S/slurm.conf" "$S/cgroup.conf" "$S/env" "$S/jobcomp.txt"
    mkdir -p "$S/munge" "$S/spool" "$S/ctld" "$S/log"
    chmod 755 "$S/munge"   # munged wants x for all on the socket dir

    local host cpus boards sockets cores threads mem ctld_port slurmd_port
    host=$(hostname -s)
    # slurmd -C prints this host's hardware in slurm.conf syntax.
    local hw
    hw=$(slurmd -C 2>/dev/null | head -n 1) || true
    cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
    boards=$(sed -n 's/.* Boards=\([0-9]*\).*/\1/p' <<<"$hw")
    sockets=$(sed -n 's/.* SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$hw")
    cores=$(sed -n 's/.* CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$hw")
    threads=$(sed -n 's/.* ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$hw")
    mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
    if [[ -z $cpus || -z $mem ]]; then
        cpus=$(nproc); boards=1; sockets=1; cores=$cpus; threads=1
        mem=$(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo)
    fi
    ctld_port=$(free_port)
    slurmd_port=$(free_port)
    [[ $slurmd_port != "$ctld_port" ]] || slurmd_port=$(free_port)

    # ---- munge: own key, socket, pid, log and seed inside STATE_DIR ----
    # (in the foreground munged logs to stderr, i.e. log/munged.out)
    mungekey --create --keyfile="$S/munge/munge.key" >/dev/null 2>&1 \
        || dd if=/dev/urandom of="$S/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$S/munge/munge.key"
    local sock=$S/munge/munge.socket
    spawn "$S/munged.pid" "$S/log/munged.out" \
        munged --foreground --force \
        --key-file="$S/munge/munge.key" --socket="$sock" \
        --pid-file="$S/munge/munged.pid" --log-file="$S/log/munged.log" \
        --seed-file="$S/munge/munged.seed"
    local i
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        [[ -S $sock ]] && munge --socket="$sock" -n 2>/dev/null | unmunge --socket="$sock" >/dev/null 2>&1 && break
        alive "$(<"$S/munged.pid")" || { tail_log "$S/log/munged.out"; die "munged exited during start"; }
        sleep 0.1
    done
    ((i < START_TIMEOUT * 10)) || { tail_log "$S/log/munged.out"; die "munged not answering on $sock after ${START_TIMEOUT}s"; }

    local task_plugin=task/none jag_params=OverMemoryKill
    case $MEM_ENFORCE in
    jobacct) ;;
    cgroup)
        task_plugin=task/cgroup
        jag_params=NoOverMemoryKill
        # Slurm reads cgroup.conf from the directory of slurm.conf.
        cat >"$S/cgroup.conf" <<CG
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
ConstrainRAMSpace=yes
ConstrainSwapSpace=no
ConstrainCores=no
ConstrainDevices=no
CG
        ;;
    *) die "SLURM_MEM_ENFORCE must be jobacct or cgroup, not '$MEM_ENFORCE'" ;;
    esac

    # ---- slurm.conf ----
    cat >"$S/slurm.conf" <<CONF
# Generated by tests/services/slurm.sh for a private test cluster; do not edit.
ClusterName=repro-test
SlurmctldHost=${host}(127.0.0.1)
SlurmctldPort=${ctld_port}
SlurmdPort=${slurmd_port}
# slurmctld and slurmd bind to their own address (127.0.0.1), not INADDR_ANY.
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${sock}
StateSaveLocation=${S}/ctld
SlurmdSpoolDir=${S}/spool
SlurmctldPidFile=${S}/slurmctld.own.pid
SlurmdPidFile=${S}/slurmd.own.pid
SlurmctldLogFile=${S}/log/slurmctld.log
SlurmdLogFile=${S}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
MpiDefault=none
SwitchType=switch/none
LaunchType=launch/slurm
ProctrackType=proctrack/linuxproc
TaskPlugin=${task_plugin}
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# A job without --mem gets this much per CPU (not the whole node), so jobs can share it.
DefMemPerCPU=1024
# jobacct mode: poll RSS every second and kill a step that exceeds its --mem
# (OverMemoryKill). cgroup mode: the memory cgroup limit does it instead.
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=${jag_params}
AccountingStorageType=accounting_storage/none
# Final state of every finished job, one line each (accounting is off, so no sacct).
JobCompType=jobcomp/filetxt
JobCompLoc=${S}/jobcomp.txt
# Keep finished jobs visible to 'scontrol show job' for an hour.
MinJobAge=3600
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
OverTimeLimit=0
# The node is this host, with the CPUs and memory 'slurmd -C' reports.
NodeName=${host} NodeAddr=127.0.0.1 NodeHostname=${host} CPUs=${cpus} Boards=${boards} SocketsPerBoard=${sockets} CoresPerSocket=${cores} ThreadsPerCore=${threads} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF=$S/slurm.conf
    printf 'SLURM_CONF=%s\n' "$SLURM_CONF" >"$S/env"

    # ---- slurmctld, then slurmd (both in the foreground under &, PIDs recorded) ----
    spawn "$S/slurmctld.pid" "$S/log/slurmctld.out" slurmctld -D -i -f "$SLURM_CONF"
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        scontrol ping 2>/dev/null | grep -q 'is UP' && break
        alive "$(<"$S/slurmctld.pid")" || { tail_log "$S/log/slurmctld.log"; tail_log "$S/log/slurmctld.out"; die "slurmctld exited during start"; }
        sleep 0.2
    done
    ((i < START_TIMEOUT * 10)) || { tail_log "$S/log/slurmctld.log"; die "slurmctld not answering after ${START_TIMEOUT}s"; }

    spawn "$S/slurmd.pid" "$S/log/slurmd.out" slurmd -D -f "$SLURM_CONF"
    local state=""
    for ((i = 0; i < START_TIMEOUT * 5; i++)); do
        state=$(sinfo -h -n "$host" -o '%T' 2>/dev/null | head -n 1)
        [[ $state == idle ]] && break
        alive "$(<"$S/slurmd.pid")" || { tail_log "$S/log/slurmd.log"; tail_log "$S/log/slurmd.out"; die "slurmd exited during start"; }
        sleep 0.2
    done
    if [[ $state != idle ]]; then
        tail_log "$S/log/slurmd.log"
        tail_log "$S/log/slurmctld.log"
        die "node $host not idle after ${START_TIMEOUT}s (sinfo state: '${state:-none}')"
    fi
    log "cluster repro-test up: node $host ${cpus} CPUs ${mem} MB, slurmctld :$ctld_port, slurmd :$slurmd_port, state $S"
    trap - EXIT
    echo "export SLURM_CONF=$SLURM_CONF"
}

cmd_stop() {
    local S=${1:-}
    [[ -n $S ]] || die "usage: $0 stop STATE_DIR"
    [[ -d $S ]] || die "no state dir $S"
    S=$(cd "$S" && pwd -P)
    local rc=0 i
    export SLURM_CONF=$S/slurm.conf

    # 1. Cancel every job of this cluster and wait until none is left running.
    if [[ -f $S/slurmctld.pid ]] && ours "$(<"$S/slurmctld.pid")" "$S" && [[ -f $SLURM_CONF ]]; then
        local jobs
        jobs=$(squeue -h -o '%A' 2>/dev/null | tr '\n' ' ') || true
        if [[ -n ${jobs// /} ]]; then
            # shellcheck disable=SC2086
            scancel $jobs 2>/dev/null || true
            for ((i = 0; i < STOP_TIMEOUT * 5; i++)); do
                [[ -z $(squeue -h -t PD,R,CG,S,CF -o '%A' 2>/dev/null) ]] && break
                sleep 0.2
            done
            if ((i >= STOP_TIMEOUT * 5)); then
                log "jobs still present ${STOP_TIMEOUT}s after scancel: $(squeue -h -o '%A %T' 2>/dev/null | tr '\n' ';')"
                rc=1
            fi
        fi
    fi
    # 2. slurmd, 3. slurmctld, 4. munged.
    stop_pidfile "$S/slurmd.pid" slurmd "$S/log/slurmd.log" || rc=1
    stop_pidfile "$S/slurmctld.pid" slurmctld "$S/log/slurmctld.log" || rc=1
    stop_pidfile "$S/munged.pid" munged "$S/log/munged.out" || rc=1
    # cgroup mode: slurmd leaves its (now empty) cgroup folders; remove them if empty.
    if [[ -f $S/cgroup.conf ]]; then
        local d
        while IFS= read -r d; do
            rmdir "$d" 2>/dev/null || log "cgroup $d not removed (not empty?)"
        done < <(find /sys/fs/cgroup/*/ -maxdepth 4 -type d -path "*/slurm_$(hostname -s)*" 2>/dev/null | sort -r)
    fi
    if ((rc == 0)); then
        log "stopped cluster in $S"
    else
        log "stop finished with errors (see above); state kept in $S"
    fi
    return $rc
}

cmd_status() {
    local S=${1:?usage: $0 status STATE_DIR} f rc=0
    for f in munged slurmctld slurmd; do
        if [[ -f $S/$f.pid ]] && ours "$(<"$S/$f.pid")" "$S"; then
            echo "$f running (pid $(<"$S/$f.pid"))"
        else
            echo "$f not running"; rc=1
        fi
    done
    return $rc
}

case ${1:-} in
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
status) shift; cmd_status "$@" ;;
*) echo "usage: $0 {start [STATE_DIR]|stop STATE_DIR|status STATE_DIR}" >&2; exit 2 ;;
esac
