#!/bin/bash
# Boot an isolated systemd as PID 1 of new pid+mount+uts+ipc+net+cgroup namespaces.
# Usage: HARNESS_NAME=h1 [HARNESS_QUADLET=/path/to/quadlet] h-boot.sh
# Prints the host PID of the namespace's systemd on success.
set -euo pipefail
source "$(dirname "$0")/h-lib.sh"
TIMEOUT=${HARNESS_BOOT_TIMEOUT:-60}
[ "$(id -u)" = 0 ] || { echo "must be root" >&2; exit 1; }

p=$(h_pid1); if [ -n "$p" ]; then echo "harness $HARNESS_NAME already running (pid $p)" >&2; exit 1; fi

# stale state from a previous (killed) run
h_cgroup_rmtree
for d in $(h_cgroup_dirs); do
  if [ -d "$d" ]; then echo "stale cgroup $d still has processes: run h-stop.sh" >&2; exit 1; fi
done
rm -rf "$HARNESS_STATE"; mkdir -p "$HARNESS_STATE"
# stage 2 hides /tmp, /var/tmp and /run: hand it files it needs through the state dir
if [ -n "${HARNESS_CONTAINERS_CONF:-}" ]; then cp "$HARNESS_CONTAINERS_CONF" "$HARNESS_STATE/containers.conf"; fi
# lockstep: stage 2 itself and its units run from the state dir too, so that a checkout under /tmp or
# /var/tmp (where CI may clone) still boots.
mkdir -p "$HARNESS_STATE/harness"
cp -r "$HARNESS_DIR/h-stage2.sh" "$HARNESS_DIR/units" "$HARNESS_STATE/harness/"

# dedicated cgroup in every hierarchy; the namespace's cgroup root will be this
findmnt -rn -t cgroup  -o TARGET,FS-OPTIONS > "$HARNESS_STATE/cgroup-v1.list"
findmnt -rn -t cgroup2 -o TARGET | head -1  > "$HARNESS_STATE/cgroup-v2.list"
for d in $(h_cgroup_dirs); do mkdir "$d"; done
cs=$(findmnt -rn -t cgroup -o TARGET,FS-OPTIONS | awk '$2 ~ /(^|,)cpuset(,|$)/ {print $1}')
if [ -n "$cs" ]; then
  cat "$cs/cpuset.cpus" > "$cs/$HARNESS_CG/cpuset.cpus"
  cat "$cs/cpuset.mems" > "$cs/$HARNESS_CG/cpuset.mems"
fi

t0=$(date +%s%N)
CGDIRS=$(h_cgroup_dirs | tr '\n' ' ')
export CGDIRS
setsid bash -c '
  echo $$ > "$HARNESS_STATE/unshare.pid"
  for d in $CGDIRS; do echo $$ > "$d/cgroup.procs"; done
  HARNESS_DIR="$HARNESS_STATE/harness"
  exec unshare --cgroup --pid --fork --mount --uts --ipc --net \
       --propagation private --mount-proc --kill-child -- "$HARNESS_STATE/harness/h-stage2.sh"
' </dev/null >"$HARNESS_STATE/stage2.log" 2>&1 &

# wait for "running"/"degraded"
state=unknown
while :; do
  p=$(h_pid1)
  if [ -n "$p" ] && [ "$(cat /proc/$p/comm 2>/dev/null)" = systemd ]; then
    state=$(nsenter -t "$p" -m -p -- systemctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) break;; esac
  fi
  if [ -f "$HARNESS_STATE/unshare.pid" ] && ! kill -0 "$(cat "$HARNESS_STATE/unshare.pid")" 2>/dev/null; then
    echo "harness died during boot; see $HARNESS_STATE/stage2.log $HARNESS_STATE/console.log" >&2; exit 1
  fi
  if [ $(( ($(date +%s%N) - t0) / 1000000000 )) -ge "$TIMEOUT" ]; then
    echo "boot timeout (state=$state); see $HARNESS_STATE/console.log" >&2; exit 1
  fi
  sleep 0.1
done
t1=$(date +%s%N)
echo "$p" > "$HARNESS_STATE/pid1"
printf 'harness %s: systemd pid %s state %s boot %d ms\n' "$HARNESS_NAME" "$p" "$state" "$(( (t1 - t0) / 1000000 ))" >&2
echo "$p"
