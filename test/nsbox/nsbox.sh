# The machinery both systemd boxes share (sourced): test/sandbox/harness (a systemd over the
# machine's own filesystem, with private overlays) and test/hosts (a systemd booted from a
# debootstrapped root). Each box is an unshare'd PID 1 in new pid, mount, uts, ipc, net and cgroup
# namespaces, with a cgroup of its own in every hierarchy; what differs, the stage 2 that builds its
# filesystem and execs systemd, stays with each.
#
# The caller sets NS_STATE (the box's state dir: unshare.pid, pid1, the cgroup lists, logs) and
# NS_CG (its cgroup's name), then calls:
#   ns_pid1                 the box's PID 1 (host pid), empty when it is not running
#   ns_cgroup_dirs          its cgroup dir in every hierarchy;   ns_cgroup_rmtree: remove them
#   ns_boot STAGE2 TIMEOUT  start STAGE2 as the box's PID 1 and wait until its systemd is running
#                           (or degraded); prints its pid; boot time in ms on stderr
#   ns_stop [GRACEFUL [SECS]]  kill it (GRACEFUL=1: poweroff.target first, SIGKILL after SECS)
#   ns_exec_in WD [ENV-ARG...] CMD...  exec CMD in every namespace of the box, in WD (env's arguments)

# Host PID of the namespace's PID 1 (systemd, or stage2 during early boot); empty if not running.
# Guards against PID reuse: the recorded pid must still be an "unshare" process and its child must
# live in a different pid namespace than ours.
ns_pid1() {
  local u c
  u=$(cat "$NS_STATE/unshare.pid" 2>/dev/null) || return 0
  [ -n "$u" ] && [ "$(cat "/proc/$u/comm" 2>/dev/null)" = unshare ] || return 0
  c=$(awk '{print $1}' "/proc/$u/task/$u/children" 2>/dev/null)
  [ -n "$c" ] || return 0
  [ "$(readlink "/proc/$c/ns/pid" 2>/dev/null)" != "$(readlink /proc/self/ns/pid)" ] || return 0
  echo "$c"
}

# all host cgroup dirs (v1 hierarchies + v2) of this box
ns_cgroup_dirs() {
  findmnt -rn -t cgroup,cgroup2 -o TARGET | while read -r t; do echo "$t/$NS_CG"; done
}

# remove the box's cgroup tree, deepest first (only works once it has no processes)
ns_cgroup_rmtree() {
  local d
  for d in $(ns_cgroup_dirs); do
    [ -d "$d" ] || continue
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

# ns_boot STAGE2 TIMEOUT: the box's cgroups (stale ones of a killed run removed first), then STAGE2
# as PID 1 of the new namespaces (its output in $NS_STATE/stage2.log), then wait for its systemd.
ns_boot() {
  local stage2=$1 timeout=$2 d cs p state t0 t1
  p=$(ns_pid1); if [ -n "$p" ]; then echo "box $NS_CG already running (pid $p)" >&2; return 1; fi
  ns_cgroup_rmtree
  for d in $(ns_cgroup_dirs); do
    if [ -d "$d" ]; then echo "stale cgroup $d still has processes: stop the box first" >&2; return 1; fi
  done
  # a dedicated cgroup in every hierarchy; the namespace's cgroup root will be this
  findmnt -rn -t cgroup  -o TARGET,FS-OPTIONS > "$NS_STATE/cgroup-v1.list"
  findmnt -rn -t cgroup2 -o TARGET | head -1  > "$NS_STATE/cgroup-v2.list"
  for d in $(ns_cgroup_dirs); do mkdir "$d"; done
  cs=$(findmnt -rn -t cgroup -o TARGET,FS-OPTIONS | awk '$2 ~ /(^|,)cpuset(,|$)/ {print $1}')
  if [ -n "$cs" ]; then
    cat "$cs/cpuset.cpus" > "$cs/$NS_CG/cpuset.cpus"
    cat "$cs/cpuset.mems" > "$cs/$NS_CG/cpuset.mems"
  fi
  t0=$(date +%s%N)
  CGDIRS=$(ns_cgroup_dirs | tr '\n' ' ') NS_STAGE2=$stage2 setsid bash -c '
    echo $$ > "$NS_STATE/unshare.pid"
    for d in $CGDIRS; do echo $$ > "$d/cgroup.procs"; done
    exec unshare --cgroup --pid --fork --mount --uts --ipc --net \
         --propagation private --mount-proc --kill-child -- "$NS_STAGE2"
  ' </dev/null >"$NS_STATE/stage2.log" 2>&1 &
  # wait for "running"/"degraded" (the box's own systemctl, in its mount namespace)
  state=unknown
  while :; do
    p=$(ns_pid1)
    if [ -n "$p" ] && [ "$(cat /proc/$p/comm 2>/dev/null)" = systemd ]; then
      state=$(nsenter -t "$p" -m -p -- /usr/bin/systemctl is-system-running 2>/dev/null || true)
      case "$state" in running|degraded) break;; esac
    fi
    if [ -f "$NS_STATE/unshare.pid" ] && ! kill -0 "$(cat "$NS_STATE/unshare.pid")" 2>/dev/null; then
      echo "box died during boot; see $NS_STATE/stage2.log $NS_STATE/console.log" >&2; return 1
    fi
    if [ $(( ($(date +%s%N) - t0) / 1000000000 )) -ge "$timeout" ]; then
      echo "boot timeout (state=$state); see $NS_STATE/console.log" >&2; return 1
    fi
    sleep 0.05
  done
  t1=$(date +%s%N)
  echo "$p" > "$NS_STATE/pid1"
  echo "box $NS_CG: systemd pid $p state $state boot $(( (t1 - t0) / 1000000 )) ms" >&2
  echo "$p"
}

# ns_stop [GRACEFUL [SECS]]: SIGKILL the box's PID 1 (the kernel kills the whole pid namespace; its
# mounts and netns vanish with it), after an orderly poweroff when GRACEFUL=1 (systemd runs in
# container mode, so systemd-shutdown does not remount shared superblocks read-only; reboot() in a
# child pid namespace ends only that namespace); then remove its cgroups. Idempotent.
ns_stop() {
  local graceful=${1:-0} secs=${2:-20} u p d left n i
  u=$(cat "$NS_STATE/unshare.pid" 2>/dev/null || true)
  [ -n "$u" ] && [ "$(cat /proc/$u/comm 2>/dev/null)" = unshare ] || u=
  p=$(ns_pid1)
  if [ -n "$p" ] && [ "$graceful" = 1 ]; then
    nsenter -t "$p" -m -p -- /usr/bin/systemctl --no-block start poweroff.target 2>/dev/null || true
    for i in $(seq 1 "$(( secs * 10 ))"); do
      kill -0 "$u" 2>/dev/null || break; sleep 0.1
    done
    p=$(ns_pid1)
    if [ -z "$p" ]; then echo "graceful poweroff completed" >&2; else echo "graceful poweroff timed out: SIGKILL" >&2; fi
  fi
  if [ -n "$p" ]; then kill -9 "$p" 2>/dev/null || true; fi
  if [ -n "$u" ]; then
    for i in $(seq 1 100); do kill -0 "$u" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$u" 2>/dev/null && [ "$(cat /proc/$u/comm 2>/dev/null)" = unshare ]; then kill -9 "$u"; fi
  fi
  # processes still in the box's cgroups? (should be none)
  for d in $(ns_cgroup_dirs); do
    [ -d "$d" ] || continue
    left=$(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
    [ -z "$left" ] || echo "WARNING: processes left in $d: $left" >&2
  done
  n=0
  for i in $(seq 1 50); do
    ns_cgroup_rmtree
    n=0; for d in $(ns_cgroup_dirs); do [ -d "$d" ] && n=$((n+1)); done
    [ $n = 0 ] && break; sleep 0.1
  done
  [ $n = 0 ] || echo "WARNING: $n cgroup dirs could not be removed" >&2
}

# ns_exec_in WD [ENV-ARG...] CMD...: exec env -C WD ARGS... in every namespace of the box
ns_exec_in() {
  local wd=$1 p; shift
  p=$(ns_pid1); [ -n "$p" ] || { echo "box $NS_CG not running" >&2; return 1; }
  exec nsenter -t "$p" -m -u -i -n -p -C -- /usr/bin/env -C "$wd" "$@"
}
