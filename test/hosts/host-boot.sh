#!/bin/bash
# Boot the systemd of a debootstrapped root (HOST_ROOTFS) as PID 1 of new
# pid+mount+uts+ipc+net+cgroup namespaces. From the fresh-hosts recipe (systemd-sandbox/h-boot.sh).
# HOST_RESUME=1 boots again on the state a previous boot left (host-stop.sh with HOST_KEEP_STATE=1):
# the overlay's upper layer and podman's storage, as a machine's disk keeps them across a reboot.
# HOST_UNIT: the unit systemd boots into (default multi-user.target, as a machine would).
# Usage: HOST_NAME=t1 HOST_ROOTFS=/var/lib/lockstep-hosts/roots/trixie-HASH [HOST_CGROUP_MODE=hybrid|unified]
#        [HOST_ROOT_MODE=overlay|bind] [HOST_SYSTEMD_ENV=$'K=V\nK2=V2' (one per line)] [HOST_CONTAINERS_CONF=file]
#        [HOST_SHARE=dir (read-only at /mnt/share inside)] [HOST_QUADLET_BIN=static quadlet binary] host-boot.sh
# Prints the host PID of the namespace's systemd on success.
set -euo pipefail
source "$(dirname "$0")/host-lib.sh"
TIMEOUT=${HOST_BOOT_TIMEOUT:-60}
[ "$(id -u)" = 0 ] || { echo "must be root" >&2; exit 1; }
bottom=$(s_root_bottom)
[ -n "$HOST_ROOTFS" ] && [ -d "$bottom" ] || { echo "HOST_ROOTFS not a directory" >&2; exit 1; }
[ -x "$bottom/usr/lib/systemd/systemd" ] || [ -x "$bottom/lib/systemd/systemd" ] \
  || { echo "no systemd in $bottom" >&2; exit 1; }
case "$HOST_STATE" in /tmp/*|/var/tmp/*|/run/*) echo "state must not be under /tmp, /var/tmp, /run" >&2; exit 1;; esac

p=$(s_pid1); if [ -n "$p" ]; then echo "sandbox $HOST_NAME already running (pid $p)" >&2; exit 1; fi

# stale state from a previous (killed) run
s_cgroup_rmtree
for d in $(s_cgroup_dirs); do
  if [ -d "$d" ]; then echo "stale cgroup $d still has processes: run host-stop.sh" >&2; exit 1; fi
done
if [ "${HOST_RESUME:-0}" = 1 ] && [ -d "$HOST_STATE/upper" ]; then
  # a reboot: the disk (upper layer, podman storage) stays; the rest is made again
  rm -rf "$HOST_STATE"/{work,newroot,share,unshare.pid,pid1}
  mkdir -p "$HOST_STATE"/{work,newroot,share}
else
  rm -rf "$HOST_STATE"; mkdir -p "$HOST_STATE"/{upper,work,newroot,storage,share}
fi
# stage 2 hides /tmp, /var/tmp and /run: hand it files through the state dir
rm -f "$HOST_STATE/quadlet" "$HOST_STATE/containers.conf"
if [ -n "${HOST_CONTAINERS_CONF:-}" ]; then cp "$HOST_CONTAINERS_CONF" "$HOST_STATE/containers.conf"; fi
if [ -n "${HOST_QUADLET_BIN:-}" ]; then cp "$HOST_QUADLET_BIN" "$HOST_STATE/quadlet"; fi
if [ -n "${HOST_SHARE:-}" ]; then cp -a "$HOST_SHARE"/. "$HOST_STATE/share/"; fi
printf '%s\n' "${HOST_SYSTEMD_ENV:-}" > "$HOST_STATE/systemd.env"   # one VAR=value per line
echo "${HOST_UNIT:-multi-user.target}" > "$HOST_STATE/unit"

# dedicated cgroup in every hierarchy; the namespace's cgroup root will be this
findmnt -rn -t cgroup  -o TARGET,FS-OPTIONS > "$HOST_STATE/cgroup-v1.list"
findmnt -rn -t cgroup2 -o TARGET | head -1  > "$HOST_STATE/cgroup-v2.list"
for d in $(s_cgroup_dirs); do mkdir "$d"; done
cs=$(findmnt -rn -t cgroup -o TARGET,FS-OPTIONS | awk '$2 ~ /(^|,)cpuset(,|$)/ {print $1}')
if [ -n "$cs" ]; then
  cat "$cs/cpuset.cpus" > "$cs/$HOST_CG/cpuset.cpus"
  cat "$cs/cpuset.mems" > "$cs/$HOST_CG/cpuset.mems"
fi

t0=$(date +%s.%N)
CGDIRS=$(s_cgroup_dirs | tr '\n' ' ')
export CGDIRS
setsid bash -c '
  echo $$ > "$HOST_STATE/unshare.pid"
  for d in $CGDIRS; do echo $$ > "$d/cgroup.procs"; done
  exec unshare --cgroup --pid --fork --mount --uts --ipc --net \
       --propagation private --mount-proc --kill-child -- "$HOST_DIR/host-stage2.sh"
' </dev/null >"$HOST_STATE/stage2.log" 2>&1 &

# wait for "running"/"degraded" (systemctl of the sandbox's root, via nsenter -m)
state=unknown
while :; do
  p=$(s_pid1)
  if [ -n "$p" ] && [ "$(cat /proc/$p/comm 2>/dev/null)" = systemd ]; then
    state=$(nsenter -t "$p" -m -p -- /usr/bin/systemctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) break;; esac
  fi
  if [ -f "$HOST_STATE/unshare.pid" ] && ! kill -0 "$(cat "$HOST_STATE/unshare.pid")" 2>/dev/null; then
    echo "sandbox died during boot; see $HOST_STATE/stage2.log $HOST_STATE/console.log" >&2; exit 1
  fi
  if [ "$(echo "$(date +%s.%N) - $t0 > $TIMEOUT" | bc)" = 1 ]; then
    echo "boot timeout (state=$state); see $HOST_STATE/console.log" >&2; exit 1
  fi
  sleep 0.05
done
t1=$(date +%s.%N)
echo "$p" > "$HOST_STATE/pid1"
printf 'sandbox %s: systemd pid %s state %s boot %.2fs\n' "$HOST_NAME" "$p" "$state" "$(echo "$t1 - $t0" | bc)" >&2
echo "$p"
