#!/usr/bin/env bash
# Start/stop a private SeaweedFS (master + volume + filer + S3 gateway in one `weed server`)
# for tests.
#
#   tests/services/seaweedfs.sh start [STATE_DIR]   # prints export lines for the S3 client
#   tests/services/seaweedfs.sh stop  STATE_DIR
#   tests/services/seaweedfs.sh status STATE_DIR
#
# Listens on 127.0.0.1 only, on free ports written to STATE_DIR/ports; data, logs, sockets,
# credentials and the pid file live in STATE_DIR. Only the PID in STATE_DIR/weed.pid is
# ever signalled. The S3 credentials and endpoint are written to STATE_DIR/env.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VENV=${REPRO_VENV:-/opt/repro-venv}
WEED=${WEED:-$VENV/bin/weed}
PY=${REPRO_PYTHON:-$VENV/bin/python}
BUCKET=${S3_BUCKET:-repro-cache}
START_TIMEOUT=${WEED_START_TIMEOUT:-60}
STOP_TIMEOUT=${WEED_STOP_TIMEOUT:-20}

die() { echo "seaweedfs.sh: error: $*" >&2; exit 1; }
log() { echo "seaweedfs.sh: $*" >&2; }
alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }
# ours PID STATE_DIR: PID is alive and its command line names STATE_DIR (-dir=...), so a
# stale pid file whose PID was reused by another process is never signalled.
ours() { alive "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"; }
tail_log() {
    if [[ -s $1 ]]; then
        echo "---- last lines of $1 ----" >&2; tail -n 30 "$1" >&2; echo "----" >&2
    else
        echo "(no log at $1)" >&2
    fi
}

# Print N distinct free TCP ports on 127.0.0.1 (held open together so they differ), each
# below 55535 because weed derives gRPC ports as port+10000 unless told otherwise.
free_ports() {
    "$PY" - "$1" <<'PY'
import socket, sys
n = int(sys.argv[1]); socks = []; ports = []
while len(ports) < n:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    socks.append(s)
    if p < 55535 and p not in ports:
        ports.append(p)
print(" ".join(map(str, ports)))
PY
}

cmd_start() {
    local S=${1:-}
    [[ -n $S ]] || S=$(mktemp -d /tmp/repro-seaweedfs.XXXXXX)
    mkdir -p "$S"
    S=$(cd "$S" && pwd -P)
    if [[ -f $S/weed.pid ]] && ours "$(<"$S/weed.pid")" "$S"; then
        die "weed already running from $S (pid $(<"$S/weed.pid")); run: $0 stop $S"
    fi
    [[ -x $WEED ]] || die "no weed binary at $WEED; run tests/services/install.sh"
    [[ -x $PY ]] && "$PY" -c 'import boto3' 2>/dev/null || die "$PY has no boto3; run tests/services/install.sh"

    trap 'rc=$?; if ((rc != 0)); then log "start failed; stopping what was started"; cmd_stop "$S" || true; fi' EXIT

    # Fresh state every start.
    rm -rf "$S/data" "$S/log" "$S/config" "$S/run" "$S/weed.pid" "$S/ports" "$S/env" "$S/s3.json"
    mkdir -p "$S/data" "$S/log" "$S/config" "$S/run"

    local ports master volume filer s3 mg vg fg sg
    read -r master volume filer s3 mg vg fg sg <<<"$(free_ports 8)"
    cat >"$S/ports" <<P
master=$master
master_grpc=$mg
volume=$volume
volume_grpc=$vg
filer=$filer
filer_grpc=$fg
s3=$s3
s3_grpc=$sg
P

    local key secret
    key=repro$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
    secret=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')
    umask 077
    cat >"$S/s3.json" <<J
{
  "identities": [
    {
      "name": "repro",
      "credentials": [{ "accessKey": "$key", "secretKey": "$secret" }],
      "actions": ["Admin", "Read", "Write", "List", "Tagging"]
    }
  ]
}
J
    umask 022

    local t0=$SECONDS
    # -master.telemetry=false: no anonymous reports to the internet.
    # Iceberg and Lance endpoints are off (port 0); local sockets go to STATE_DIR/run.
    # TMPDIR for anything weed puts in the temp dir. Its gRPC unix sockets are hard-coded
    # as /tmp/seaweedfs-<svc>-grpc-<port>.sock (weed 4.48, command/server.go): stop
    # removes those four paths, which are ours because the ports are.
    # -volume.preStopSeconds=0: no 10 s pause between heartbeat stop and shutdown.
    TMPDIR="$S/run" "$WEED" -logtostderr -config_dir="$S/config" server \
        -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$S/data" \
        -master.port="$master" -master.port.grpc="$mg" -master.telemetry=false \
        -master.volumeSizeLimitMB=64 -volume.max=100 \
        -volume.port="$volume" -volume.port.grpc="$vg" -volume.preStopSeconds=0 \
        -filer -filer.port="$filer" -filer.port.grpc="$fg" -filer.localSocket="$S/run/filer.sock" \
        -s3 -s3.port="$s3" -s3.port.grpc="$sg" -s3.config="$S/s3.json" \
        -s3.localSocket="$S/run/s3.sock" -s3.port.iceberg=0 -s3.port.lance=0 -s3.iam=false \
        </dev/null >"$S/log/weed.log" 2>&1 &
    echo $! >"$S/weed.pid"
    local pid
    pid=$(<"$S/weed.pid")

    local endpoint=http://127.0.0.1:$s3
    cat >"$S/env" <<E
AWS_ACCESS_KEY_ID=$key
AWS_SECRET_ACCESS_KEY=$secret
AWS_ENDPOINT_URL=$endpoint
AWS_REGION=us-east-1
AWS_DEFAULT_REGION=us-east-1
AWS_ALLOW_HTTP=true
S3_BUCKET=$BUCKET
AWS_BUCKET=$BUCKET
E
    # Wait until a signed request works, then create the bucket (retried: the filer and
    # volume server may still be registering with the master).
    local ready=""
    while ((SECONDS - t0 < START_TIMEOUT)); do
        alive "$pid" || { tail_log "$S/log/weed.log"; die "weed server exited during start"; }
        if ready=$(set -a; . "$S/env"; "$PY" "$HERE/s3_check.py" ready 2>&1); then
            break
        fi
        sleep 0.5
    done
    [[ $ready == ready* ]] || { echo "$ready" >&2; tail_log "$S/log/weed.log"; die "S3 at $endpoint not ready after ${START_TIMEOUT}s"; }
    trap - EXIT
    log "weed $("$WEED" version 2>/dev/null | head -n 1 | sed 's/^version //') up in $((SECONDS - t0))s: S3 $endpoint, bucket $BUCKET, state $S"
    sed 's/^/export /' "$S/env"
}

cmd_stop() {
    local S=${1:-}
    [[ -n $S ]] || die "usage: $0 stop STATE_DIR"
    [[ -d $S ]] || die "no state dir $S"
    S=$(cd "$S" && pwd -P)
    local pid i
    [[ -f $S/weed.pid ]] || { log "nothing to stop in $S"; return 0; }
    pid=$(<"$S/weed.pid")
    if ours "$pid" "$S"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            log "weed (pid $pid) did not exit ${STOP_TIMEOUT}s after SIGTERM; sending SIGKILL"
            tail_log "$S/log/weed.log"
            kill -KILL "$pid" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
            alive "$pid" && { log "weed (pid $pid) still alive after SIGKILL"; return 1; }
        fi
    fi
    rm -f "$S/weed.pid"
    if [[ -f $S/ports ]]; then
        local svc port
        for svc in master volume filer s3; do
            port=$(sed -n "s/^${svc}_grpc=//p" "$S/ports")
            [[ -n $port ]] && rm -f "/tmp/seaweedfs-$svc-grpc-$port.sock"
        done
    fi
    log "stopped weed in $S"
}

cmd_status() {
    local S=${1:?usage: $0 status STATE_DIR}
    if [[ -f $S/weed.pid ]] && ours "$(<"$S/weed.pid")" "$S"; then
        echo "weed running (pid $(<"$S/weed.pid"))"; cat "$S/ports"
    else
        echo "weed not running"; return 1
    fi
}

case ${1:-} in
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
status) shift; cmd_status "$@" ;;
*) echo "usage: $0 {start [STATE_DIR]|stop STATE_DIR|status STATE_DIR}" >&2; exit 2 ;;
esac
