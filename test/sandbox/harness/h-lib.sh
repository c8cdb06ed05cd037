# shared settings for the harness scripts (sourced)
HARNESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HARNESS_NAME=${HARNESS_NAME:-h1}
HARNESS_ROOT=${HARNESS_ROOT:-/var/lib/lockstep-sandbox}  # never under /tmp, /var/tmp or /run: private inside
HARNESS_STATE=$HARNESS_ROOT/state/$HARNESS_NAME
HARNESS_CG=harness-$HARNESS_NAME
export HARNESS_DIR HARNESS_NAME HARNESS_ROOT HARNESS_STATE HARNESS_CG

# Host PID of the namespace's PID 1 (systemd, or stage2 during early boot); empty if
# not running. Guards against PID reuse: the recorded pid must still be an "unshare"
# process and its child must live in a different pid namespace than ours.
h_pid1() {
  local u c
  u=$(cat "$HARNESS_STATE/unshare.pid" 2>/dev/null) || return 0
  [ -n "$u" ] && [ "$(cat "/proc/$u/comm" 2>/dev/null)" = unshare ] || return 0
  c=$(awk '{print $1}' "/proc/$u/task/$u/children" 2>/dev/null)
  [ -n "$c" ] || return 0
  [ "$(readlink "/proc/$c/ns/pid" 2>/dev/null)" != "$(readlink /proc/self/ns/pid)" ] || return 0
  echo "$c"
}

# all host cgroup dirs (v1 hierarchies + v2) used by this harness instance
h_cgroup_dirs() {
  findmnt -rn -t cgroup,cgroup2 -o TARGET | while read -r t; do echo "$t/$HARNESS_CG"; done
}

# remove a harness cgroup tree, deepest first (only works once it has no processes)
h_cgroup_rmtree() {
  local d
  for d in $(h_cgroup_dirs); do
    [ -d "$d" ] || continue
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}
