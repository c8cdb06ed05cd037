#!/bin/bash
# Boot an isolated systemd as PID 1 of new pid+mount+uts+ipc+net+cgroup namespaces.
# Usage: HARNESS_NAME=h1 [HARNESS_QUADLET=/path/to/quadlet] h-boot.sh
# Prints the host PID of the namespace's systemd on success.
set -euo pipefail
source "$(dirname "$0")/h-lib.sh"
TIMEOUT=${HARNESS_BOOT_TIMEOUT:-60}
[ "$(id -u)" = 0 ] || { echo "must be root" >&2; exit 1; }

p=$(ns_pid1); if [ -n "$p" ]; then echo "harness $HARNESS_NAME already running (pid $p)" >&2; exit 1; fi
rm -rf "$HARNESS_STATE"; mkdir -p "$HARNESS_STATE"
# stage 2 hides /tmp, /var/tmp and /run: hand it files it needs through the state dir
if [ -n "${HARNESS_CONTAINERS_CONF:-}" ]; then cp "$HARNESS_CONTAINERS_CONF" "$HARNESS_STATE/containers.conf"; fi
# lockstep: stage 2 itself and its units run from the state dir too, so that a checkout under /tmp or
# /var/tmp (where CI may clone) still boots.
mkdir -p "$HARNESS_STATE/harness"
cp -r "$HARNESS_DIR/h-stage2.sh" "$HARNESS_DIR/units" "$HARNESS_STATE/harness/"

# the cgroups, stage 2 (the state dir's copy, with its units) as PID 1, the wait for its systemd:
# test/nsbox
HARNESS_DIR=$HARNESS_STATE/harness ns_boot "$HARNESS_STATE/harness/h-stage2.sh" "$TIMEOUT"
