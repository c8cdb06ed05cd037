#!/bin/bash
# Boot the systemd of a debootstrapped root (HOST_ROOTFS) as PID 1 of new
# pid+mount+uts+ipc+net+cgroup namespaces. From the fresh-hosts recipe (systemd-sandbox/h-boot.sh).
# HOST_RESUME=1 boots again on the state a previous boot left (host-stop.sh with HOST_KEEP_STATE=1):
# the overlay's upper layer and podman's storage, as a machine's disk keeps them across a reboot.
# HOST_UNIT: the unit systemd boots into (default multi-user.target, as a machine would).
# Usage: HOST_NAME=t1 HOST_ROOTFS=/var/lib/lockstep-hosts/roots/trixie-HASH [HOST_CGROUP_MODE=hybrid|unified]
#        [HOST_ROOT_MODE=overlay|bind] [HOST_SYSTEMD_ENV=$'K=V\nK2=V2' (one per line)] [HOST_CONTAINERS_CONF=file]
#        [HOST_SHARE=dir (read-only at /mnt/share inside)] [HOST_QUADLET_BIN=static quadlet binary]
#        [HOST_BINDS="SRC:DST ..." (machine dirs bound read-write at DST inside)] host-boot.sh
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

p=$(ns_pid1); if [ -n "$p" ]; then echo "host $HOST_NAME already running (pid $p)" >&2; exit 1; fi
# state from a previous (killed) run
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

# the cgroups, stage 2 as PID 1, the wait for its systemd: test/nsbox
ns_boot "$HOST_DIR/host-stage2.sh" "$TIMEOUT"
