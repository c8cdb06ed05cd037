# Shared settings of the test-host scripts (sourced). From the fresh-hosts recipe; HOST_ROOTFS is a
# debootstrapped root or an overlay lower list (LAYER:...:ROOT, topmost first, as mk-layer.sh prints).
HOST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HOST_NAME=${HOST_NAME:-s1}
HOST_BASE=${HOST_BASE:-/var/lib/lockstep-hosts}          # never under /tmp, /var/tmp or /run
HOST_STATE=$HOST_BASE/state/$HOST_NAME
HOST_CG=lockstep-host-$HOST_NAME
HOST_ROOTFS=${HOST_ROOTFS:-}                       # e.g. /var/lib/lockstep-hosts/layers/t1:/var/lib/lockstep-hosts/roots/trixie-HASH
HOST_ROOT_MODE=${HOST_ROOT_MODE:-overlay}          # overlay: the lower layers stay pristine (writes go to state/upper); bind: writes go into rootfs (one dir)
HOST_CGROUP_MODE=${HOST_CGROUP_MODE:-hybrid}       # hybrid: host v1 hierarchies + cgroup2 at unified; unified: only cgroup2 at /sys/fs/cgroup
export HOST_DIR HOST_NAME HOST_BASE HOST_STATE HOST_CG HOST_ROOTFS HOST_ROOT_MODE HOST_CGROUP_MODE

# Host PID of the namespace's PID 1 (systemd, or stage2 during early boot); empty if not running.
# Guards against PID reuse: the recorded pid must still be "unshare" and its child must live
# in a different pid namespace than ours.
s_pid1() {
  local u c
  u=$(cat "$HOST_STATE/unshare.pid" 2>/dev/null) || return 0
  [ -n "$u" ] && [ "$(cat "/proc/$u/comm" 2>/dev/null)" = unshare ] || return 0
  c=$(awk '{print $1}' "/proc/$u/task/$u/children" 2>/dev/null)
  [ -n "$c" ] || return 0
  [ "$(readlink "/proc/$c/ns/pid" 2>/dev/null)" != "$(readlink /proc/self/ns/pid)" ] || return 0
  echo "$c"
}

# all host cgroup dirs (v1 hierarchies + v2) used by this sandbox
s_cgroup_dirs() {
  findmnt -rn -t cgroup,cgroup2 -o TARGET | while read -r t; do echo "$t/$HOST_CG"; done
}

# remove a sandbox cgroup tree, deepest first (only works once it has no processes)
s_cgroup_rmtree() {
  local d
  for d in $(s_cgroup_dirs); do
    [ -d "$d" ] || continue
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

# the bottom directory of HOST_ROOTFS (the debootstrapped root itself)
s_root_bottom() { echo "${HOST_ROOTFS##*:}"; }
