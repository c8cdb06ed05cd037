#!/bin/bash
# Runs as PID 1 of the fresh pid/mount/uts/ipc/net/cgroup namespaces created by host-boot.sh.
# Builds a private root from HOST_ROOTFS (overlay: the debootstrapped tree stays pristine),
# mounts the API filesystems into it, pivot_roots into it and execs ITS systemd.
# From the fresh-hosts recipe (systemd-sandbox/h-stage2.sh). NEVER run this directly.
set -euo pipefail
: "${HOST_STATE:?}" "${HOST_DIR:?}" "${HOST_ROOTFS:?}"
[ "$$" = 1 ] || { echo "stage2: not PID 1 of a new pid namespace, refusing" >&2; exit 1; }
R=$HOST_STATE/newroot

# 0. nothing we mount may propagate back to the host
mount --make-rprivate /
#    an uplink as a machine has (eth0, a default route), leading nowhere: the host has no network.
#    Rootless podman 5's pasta copies the host's outbound interface; with lo alone it took the name
#    of rootful podman's bridge (podman0) and netavark then failed: "bridge interface podman0 already
#    exists but is a Tun interface". HOST_UPLINK=0: lo only.
if [ "${HOST_UPLINK:-1}" = 1 ]; then
  ip link add eth0 type veth peer name eth0-peer
  ip addr add 10.213.0.2/24 dev eth0
  ip link set eth0 up; ip link set eth0-peer up
  ip route add default via 10.213.0.1
fi

# 1. the root: overlay (lower = debootstrapped root, upper = per-boot state) or a plain bind
if [ "$HOST_ROOT_MODE" = overlay ]; then
  mount -t overlay overlay \
    -o "lowerdir=$HOST_ROOTFS,upperdir=$HOST_STATE/upper,workdir=$HOST_STATE/work" "$R"
else
  mount --bind "$HOST_ROOTFS" "$R"
fi

# 2. API filesystems. /proc: fresh instance for our pid ns; the global (non-namespaced) kernel
#    knobs read-only, /proc/sys/net (per netns, ours is private) writable for netavark.
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
mount --bind "$R/proc/sys" "$R/proc/sys"
mount -o remount,bind,ro "$R/proc/sys"
mount --bind /proc/sys/net "$R/proc/sys/net"
if [ -e "$R/proc/sysrq-trigger" ]; then
  mount --bind "$R/proc/sysrq-trigger" "$R/proc/sysrq-trigger"
  mount -o remount,bind,ro "$R/proc/sysrq-trigger"
fi
#    /sys: read-only sysfs of our netns
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"

# 3. cgroups: we are inside a new cgroup namespace rooted at /fresh-<name>
if [ "$HOST_CGROUP_MODE" = unified ]; then
  # only the (controller-less on this host) cgroup2 hierarchy, as /sys/fs/cgroup
  mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$R/sys/fs/cgroup"
else
  mount -t tmpfs -o mode=755,nosuid,nodev,noexec tmpfs "$R/sys/fs/cgroup"
  while read -r target opts; do
    mkdir -p "$R$target"
    mount -t cgroup -o "nosuid,nodev,noexec,${opts#rw,}" cgroup "$R$target"
  done < "$HOST_STATE/cgroup-v1.list"
  if [ -s "$HOST_STATE/cgroup-v2.list" ]; then
    t=$(cat "$HOST_STATE/cgroup-v2.list"); mkdir -p "$R$t"
    mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$R$t"
  fi
  mount -o remount,ro "$R/sys/fs/cgroup"
fi

# 4. /dev: a private minimal set (like systemd-nspawn), PID 1's console goes to a file
mount -t tmpfs -o mode=755,nosuid,size=4m tmpfs "$R/dev"
for n in "null c 1 3" "zero c 1 5" "full c 1 7" "random c 1 8" "urandom c 1 9" "tty c 5 0" \
         "net/tun c 10 200" "fuse c 10 229"; do
  set -- $n; mkdir -p "$(dirname "$R/dev/$1")"; mknod -m 666 "$R/dev/$1" "$2" "$3" "$4"
done
mkdir -p "$R/dev/pts" "$R/dev/shm" "$R/dev/mqueue"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5,nosuid,noexec devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/dev/shm"
mount -t mqueue -o nosuid,nodev,noexec mqueue "$R/dev/mqueue"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"; ln -s /proc/self/fd/1 "$R/dev/stdout"; ln -s /proc/self/fd/2 "$R/dev/stderr"
touch "$HOST_STATE/console.log" "$R/dev/console"
mount --bind "$HOST_STATE/console.log" "$R/dev/console"

# 5. private scratch filesystems
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/tmp"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/var/tmp"
mount -t tmpfs -o mode=755,nosuid,nodev  tmpfs "$R/run"
mkdir -p "$R/run/lock" "$R/run/fresh"
#    a second, fully visible proc (no read-only overmounts), root-only: the kernel lets a user
#    namespace mount a proc (rootless podman's containers do) only where such a one exists; without
#    it rootless crun fails with "mount `proc` to `proc`: Operation not permitted", unlike on a machine
mkdir -m 700 "$R/run/fresh/proc"
mount -t proc -o nosuid,nodev,noexec proc "$R/run/fresh/proc"
[ -d "$R/var/log/journal" ] && mount -t tmpfs -o mode=2755 tmpfs "$R/var/log/journal"

# 6. units: in bind mode keep the rootfs untouched (tmpfs); in overlay mode writes go to upper
[ "$HOST_ROOT_MODE" = overlay ] || mount -t tmpfs -o mode=755 tmpfs "$R/etc/systemd/system"
cp "$HOST_DIR"/units/*.target "$R/etc/systemd/system/"
grep -v '^#' "$HOST_DIR/units/masks.list" | while read -r u; do
  [ -n "$u" ] && ln -sf /dev/null "$R/etc/systemd/system/$u"
done

# 7. mask the root's generators (fstab, getty, sysv, ...) except podman's Quadlet generator
mkdir -p "$R/run/systemd/system-generators"
for g in "$R"/usr/lib/systemd/system-generators/* "$R"/lib/systemd/system-generators/* \
         "$R"/usr/local/lib/systemd/system-generators/*; do
  [ -e "$g" ] || continue
  b=$(basename "$g")
  [ "$b" = podman-system-generator ] && [ "${HOST_QUADLET:-1}" = 1 ] && continue
  ln -sf /dev/null "$R/run/systemd/system-generators/$b"
done
#    a Quadlet generator from outside (e.g. a v5 build for podman 4.3.1, which has none), copied
#    in by host-boot.sh as state/quadlet
if [ -x "$HOST_STATE/quadlet" ]; then
  cp "$HOST_STATE/quadlet" "$R/run/fresh/quadlet"
  ln -sf /run/fresh/quadlet "$R/run/systemd/system-generators/podman-system-generator"
fi

# 8. journald volatile; fresh machine id per boot (overlay mode)
mkdir -p "$R/run/systemd/journald.conf.d"
printf "[Journal]\nStorage=volatile\nReadKMsg=no\n" > "$R/run/systemd/journald.conf.d/fresh.conf"
#    (a reboot, HOST_RESUME=1, keeps the machine id the first boot wrote)
if [ "$HOST_ROOT_MODE" = overlay ] && { [ "${HOST_RESUME:-0}" != 1 ] || [ ! -s "$HOST_STATE/upper/etc/machine-id" ]; }; then
  tr -d - < /proc/sys/kernel/random/uuid > "$R/etc/machine-id"
  echo "fresh-$HOST_NAME" > "$R/etc/hostname"
fi

# 9. podman: settings and private storage (overlay-on-overlay is not allowed: storage on the host fs)
mkdir -p "$R/etc/containers/systemd" "$R/var/lib/containers"
[ -e "$HOST_STATE/containers.conf" ] && cp "$HOST_STATE/containers.conf" "$R/etc/containers/containers.conf"
mount --bind "$HOST_STATE/storage" "$R/var/lib/containers"

# 10. files from the host, read-only
mkdir -p "$R/mnt/share"
mount --bind "$HOST_STATE/share" "$R/mnt/share"
mount -o remount,bind,ro "$R/mnt/share"

# 11. machine dirs bound read-write (HOST_BINDS="SRC:DST ..."; e.g. a CI cache of Go's downloads)
for b in ${HOST_BINDS:-}; do
  mkdir -p "$R${b#*:}"; mount --bind "${b%%:*}" "$R${b#*:}"
done

hostname "fresh-$HOST_NAME"
# extra environment for systemd (HOST_SYSTEMD_ENV, e.g. SYSTEMD_PROC_CMDLINE=...), read before the switch
mapfile -t senv < <(grep -v '^$' "$HOST_STATE/systemd.env" || true)
unit=$(cat "$HOST_STATE/unit" 2>/dev/null || echo multi-user.target)

# 12. switch root: the host's filesystem disappears from this namespace
mkdir -p "$R/run/fresh/oldroot"
cd "$R"
pivot_root . run/fresh/oldroot
cd /
umount -l /run/fresh/oldroot
rmdir /run/fresh/oldroot

# 13. boot. container=podman: systemd behaves as in a container (no remount-ro of shared
#     superblocks, no kernel-level setup)
exec /usr/bin/env -i container=podman PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  "${senv[@]}" /lib/systemd/systemd --system --unit="$unit" --show-status=0 \
  --log-target="${HOST_LOG_TARGET:-journal}" --log-level="${HOST_LOG_LEVEL:-info}"
