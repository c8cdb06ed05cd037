#!/bin/bash
# The host suite (make test-hosts): fresh Debian roots from debootstrap (cached), lockstep's .deb
# installed into each by apt as a user would, each booted with its own systemd, the end-to-end tests
# (hosts.test, built with -tags hosts) run inside; then deps.sh proven on a minbase root
# (deps-root.sh). Prints how long each root, layer, boot and step took and the suite's total.
#
# Usage: test/hosts/run.sh        (as root; make test-hosts builds what it needs and calls it)
#   HOSTS_TEST    the test binary (default bin/hosts.test)   HOSTS_QUADLET  v5 generator (bin/quadlet)
#   HOSTS_DEB     the .deb under test (default bin/dist/lockstep_*_amd64.deb)
#   HOSTS_OLD_DEB the previous build, upgraded from (default bin/dist-prev/lockstep_*_amd64.deb)
#   HOSTS_PROXY_BIN  hostproxy (bin/hostproxy): the demo hosts' way to Debian's archive and the Go proxy
#   HOSTS_ONLY    the steps to run, of: bookworm bookworm-service trixie norecommends
#                 norecommends-trixie deps deps-trixie demo-bookworm demo-trixie (default all but the
#                 demo steps: make demo's build on a fresh host did not finish in 25 min here yet)
#   HOST_BASE     roots, layers, host state and logs (default /var/lib/lockstep-hosts; never under
#                 /tmp, /var/tmp or /run)        HOST_REFRESH=1  rebuild the cached roots
#   HOSTS_KEEP=1  leave a failed host running to look into (HOST_NAME=... test/hosts/host-exec.sh bash)
#   HOSTS_RUN     this run's id (default its pid): hosts, layers and shares are NAME-ID, so two runs on
#                 one machine (CI and a developer) never touch each other's; the cached roots are shared
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
export HOST_BASE=${HOST_BASE:-/var/lib/lockstep-hosts}
case "$HOST_BASE" in /tmp/*|/var/tmp/*|/run/*) echo "HOST_BASE must not be under /tmp, /var/tmp, /run" >&2; exit 1;; esac
[ "$(id -u)" = 0 ] || { echo "test/hosts: must run as root" >&2; exit 1; }
test_bin=$(realpath "${HOSTS_TEST:-$top/bin/hosts.test}")
quadlet=$(realpath "${HOSTS_QUADLET:-$top/bin/quadlet}")
deb=$(realpath "${HOSTS_DEB:-$(ls "$top"/bin/dist/lockstep_*_amd64.deb | head -1)}")
old_deb=$(realpath "${HOSTS_OLD_DEB:-$(ls "$top"/bin/dist-prev/lockstep_*_amd64.deb | head -1)}")
proxy_bin=$(realpath "${HOSTS_PROXY_BIN:-$top/bin/hostproxy}")
only=${HOSTS_ONLY:-bookworm bookworm-service trixie norecommends norecommends-trixie deps deps-trixie}
for f in "$test_bin" "$quadlet" "$deb" "$old_deb" "$proxy_bin"; do [ -f "$f" ] || { echo "test/hosts: missing $f" >&2; exit 1; }; done
version_of() { dpkg-deb -f "$1" Version; }
mkdir -p "$HOST_BASE/logs"
export HOSTS_RUN=${HOSTS_RUN:-$$}
# Packages every root gets besides systemd, dbus, procps and iproute2: busybox-static makes the
# demo image (no registry to pull from). Everything else comes with the .deb.
root_pkgs=(busybox-static)

t_start=$(date +%s)
timings=()
now() { date +%s.%N; }
took() { printf '%.1fs' "$(echo "$(now) - $1" | bc)"; }
note() { timings+=("$1"); echo "== $1"; }
want() { [[ " $only " == *" $1 "* ]]; }
failed=()
running=()
cleanup() {
  for h in "${running[@]}"; do
    [ -n "$h" ] || continue
    [ "${HOSTS_KEEP:-0}" = 1 ] && [[ " ${failed[*]} " == *" $h "* ]] && continue
    HOST_NAME=$h "$here/host-stop.sh" >/dev/null 2>&1
  done
  # this run's layers and shares (a failed host kept with HOSTS_KEEP=1 keeps its own)
  [ "${HOSTS_KEEP:-0}" = 1 ] && [ ${#failed[@]} -gt 0 ] && return
  rm -rf "$HOST_BASE"/layers/*-"$HOSTS_RUN" "$HOST_BASE"/share/*-"$HOSTS_RUN"
  for p in "${proxies[@]}"; do kill "$p" 2>/dev/null; done
}
proxies=()
trap cleanup EXIT

# root SUITE: the cached base root's path
root() {
  local t r; t=$(now)
  r=$("$here/mk-root.sh" "$1" "${root_pkgs[@]}") || { echo "test/hosts: building the $1 root failed" >&2; exit 1; }
  note "root $1: $(took "$t") ($r)"
  echo "$r" > "$HOST_BASE/logs/root-$1.path"
}
# layer NAME ROOT DEB [APT_OPTION...]: the .deb installed over ROOT; sets $lower
layer() {
  local name=$1 r=$2 d=$3 t; shift 3; t=$(now)
  lower=$("$here/mk-layer.sh" "$r" "$HOST_BASE/layers/$name-$HOSTS_RUN" "$d" "$@") || { echo "test/hosts: installing $(basename "$d") into $name failed" >&2; exit 1; }
  if [ "$d" = - ]; then note "layer $name: $LAYER_CMD: $(took "$t")"
  else note "layer $name: apt-get install $* $(basename "$d"): $(took "$t")"; fi
}
# boot NAME LOWER [VAR=value...]: boot a host (HOST_RESUME=1 in the arguments: on the disk it left)
boot() {
  local name=$1-$HOSTS_RUN low=$2 t; shift 2; t=$(now)
  local share=$HOST_BASE/share/$name
  rm -rf "$share"; mkdir -p "$share"; cp "$test_bin" "$deb" "$old_deb" ${BOOT_EXTRA:-} "$share/"
  # a host left over from an earlier run goes first (its disk stays for a reboot)
  local keep=0; [[ " $* " == *" HOST_RESUME=1 "* ]] && keep=1
  HOST_NAME=$name HOST_KEEP_STATE=$keep "$here/host-stop.sh" >/dev/null 2>&1
  if ! env HOST_NAME="$name" HOST_ROOTFS="$low" HOST_SHARE="$share" "$@" "$here/host-boot.sh" >/dev/null; then
    cat "$HOST_BASE/state/$name/stage2.log" "$HOST_BASE/state/$name/console.log" 2>/dev/null | tail -30
    echo "test/hosts: booting $name failed" >&2; exit 1
  fi
  running+=("$name")
  note "boot ${name%-$HOSTS_RUN}: $(took "$t")"
}
# tests NAME STEP REGEXP [VAR=value...]: run hosts.test -test.run REGEXP inside host NAME
tests() {
  local name=$1-$HOSTS_RUN step=$2 re=$3 t rc; shift 3; t=$(now)
  HOST_NAME=$name "$here/host-exec.sh" env "$@" "/mnt/share/$(basename "$test_bin")" -test.v -test.count=1 \
    -test.timeout="${TEST_TIMEOUT:-15m}" -test.run "$re" 2>&1 | sed "s/^/[$name] /"
  rc=${PIPESTATUS[0]}
  if [ "$rc" != 0 ]; then
    failed+=("$name")
    HOST_NAME=$name "$here/host-exec.sh" journalctl -b --no-pager -o short-monotonic > "$HOST_BASE/logs/$name-$step-journal.txt" 2>&1
    note "FAIL $name $step ($re): $(took "$t"); its journal: $HOST_BASE/logs/$name-$step-journal.txt"
    return 1
  fi
  note "ok   $name $step ($re): $(took "$t")"
}
# stop NAME [VAR=value...]   (HOST_KEEP_STATE=1: the disk stays for a reboot)
stop() {
  local name=$1-$HOSTS_RUN t; shift; t=$(now)
  env HOST_NAME="$name" "$@" "$here/host-stop.sh" >/dev/null 2>&1
  running=("${running[@]/$name}")
  note "stop ${name%-$HOSTS_RUN} ($*): $(took "$t")"
}

new_v=$(version_of "$deb"); old_v=$(version_of "$old_deb")
echo "== test/hosts: lockstep $new_v (upgrade from $old_v), steps: $only"

if want bookworm || want bookworm-service || want norecommends || want demo-bookworm; then root bookworm; fi
broot=$(cat "$HOST_BASE/logs/root-bookworm.path" 2>/dev/null || true)
if want trixie || want norecommends-trixie || want demo-trixie; then root trixie; fi
troot=$(cat "$HOST_BASE/logs/root-trixie.path" 2>/dev/null || true)

# Debian 12 with podman's recommends (apt's default): Quadlet mode with the v5 generator lockstep
# builds (bin/quadlet; Debian 12 ships none), the user scope, a reboot; then service mode.
if want bookworm || want bookworm-service; then layer bookworm "$broot" "$deb"; blower=$lower; fi
if want bookworm; then
  boot bookworm "$blower" HOST_QUADLET_BIN="$quadlet"
  tests bookworm node '^(TestNode|TestUserScope)$' HOSTS_COMPANION_MODE=quadlet &&
  { stop bookworm HOST_KEEP_STATE=1
    boot bookworm "$blower" HOST_QUADLET_BIN="$quadlet" HOST_RESUME=1
    tests bookworm reboot '^TestAfterReboot$'; }
  stop bookworm
fi
if want bookworm-service; then
  boot bookworm-service "$blower"
  tests bookworm-service node '^TestNode$' HOSTS_COMPANION_MODE=service
  stop bookworm-service
fi
# Debian 13: podman 5 and its own Quadlet generator.
if want trixie; then
  layer trixie "$troot" "$deb"
  boot trixie "$lower"
  tests trixie node '^(TestNode|TestUserScope)$' HOSTS_COMPANION_MODE=quadlet &&
  { stop trixie HOST_KEEP_STATE=1
    boot trixie "$lower" HOST_RESUME=1
    tests trixie reboot '^TestAfterReboot$'; }
  stop trixie
fi
# Debian 12 and 13 with --no-install-recommends and the previous build: the upgrade to this one, the
# node on what the package's dependencies alone bring, what lockstepd says of the missing recommends
# (catatonit; uidmap and dbus-user-session in the user scope), then remove and purge.
norecommends() {
  local name=$1 r=$2
  layer "$name" "$r" "$old_deb" --no-install-recommends
  boot "$name" "$lower"
  tests "$name" upgrade '^TestPackageUpgrade$' HOSTS_OLD_VERSION="$old_v" HOSTS_NEW_DEB="/mnt/share/$(basename "$deb")" &&
    tests "$name" node '^TestNode$' HOSTS_COMPANION_MODE="$3" &&
    tests "$name" problems "$4"
  tests "$name" remove '^TestPackageRemovePurge$'
  stop "$name"
}
if want norecommends; then norecommends norecommends "$broot" service '^(TestHostProblems|TestUserScopeHostProblems)$'; fi
# Debian 13 without recommends has no libpam-systemd either (dbus-user-session depends on it), and
# there the user's manager never started the user's lockstepd even with XDG_RUNTIME_DIR given (an
# empty journal): the user scope's host problems are proven on Debian 12 (above) until that is known.
if want norecommends-trixie; then norecommends norecommends-trixie "$troot" quadlet '^TestHostProblems$'; fi
# The README's first command (make demo) as written, on a fresh host with what its Prerequisites say
# (make, git, Debian's golang-go; on bookworm from bookworm-backports), Debian's base and systemd;
# the host reaches Debian's archive and the Go module proxy through hostproxy. Go's downloads and
# build cache are kept in $HOST_BASE/demo-cache between runs (as CI caches them).
demo() {
  local name=$1 r=$2 p
  # the checkout as git has it (what a clone holds), uncommitted changes included
  local src=$HOST_BASE/share/src-$HOSTS_RUN/src.tar
  if [ ! -f "$src" ]; then
    mkdir -p "$(dirname "$src")"
    git -C "$top" ls-files -z | tar -C "$top" --null -T - -cf "$src"
  fi
  LAYER_CMD=$3 layer "$name" "$r" -
  mkdir -p "$HOST_BASE/demo-cache/mod" "$HOST_BASE/demo-cache/build"
  # The machine's own extra CAs (here: its network's TLS-intercepting egress) go in too: the test adds
  # them to the host's trust store, as that network's machines have them. None on an open network.
  local cas; cas=$(ls /usr/local/share/ca-certificates/*.crt 2>/dev/null | tr '\n' ' ')
  BOOT_EXTRA="$proxy_bin $src $cas" boot "$name" "$lower" \
    HOST_BINDS="$HOST_BASE/demo-cache/mod:/root/go/pkg/mod $HOST_BASE/demo-cache/build:/root/.cache/go-build"
  "$proxy_bin" serve -listen "$HOST_BASE/state/$name-$HOSTS_RUN/share/proxy.sock" >"$HOST_BASE/logs/$name-$HOSTS_RUN-proxy.log" 2>&1 &
  p=$!; proxies+=("$p")
  TEST_TIMEOUT=25m tests "$name" demo '^TestReadmeDemo$' HOSTS_SRC=/mnt/share/src.tar HOSTS_PROXY=/mnt/share/proxy.sock
  kill "$p" 2>/dev/null
  stop "$name"
}
# bookworm's golang-go is 1.19: the README's way is bookworm-backports (the root's own mirror)
if want demo-bookworm; then demo demo-bookworm "$broot" 'm=$(awk '"'"'$1=="deb" {print $2; exit}'"'"' /etc/apt/sources.list)
  echo "deb $m bookworm-backports main" >> /etc/apt/sources.list
  apt-get update -q; apt-get install -y -q make git ca-certificates; apt-get install -y -q -t bookworm-backports golang-go
  apt-get purge -y -q busybox-static'; fi
if want demo-trixie; then demo demo-trixie "$troot" 'apt-get update -q; apt-get install -y -q make git ca-certificates golang-go
  apt-get purge -y -q busybox-static'; fi

# deps.sh on minbase roots of both suites, then the real-component tests in them.
for suite in bookworm trixie; do
  step=deps; [ $suite = bookworm ] || step=deps-$suite
  want $step || continue
  t=$(now)
  if DEPS_SUITE=$suite "$here/deps-root.sh"; then note "ok   $step: deps.sh on a minbase $suite root, then the real-component tests: $(took "$t")"
  else failed+=($step); note "FAIL $step: $(took "$t")"; fi
done
echo
echo "== test/hosts summary"
printf '   %s\n' "${timings[@]}"
echo "== test/hosts took $(( $(date +%s) - t_start ))s"
if [ ${#failed[@]} -gt 0 ]; then echo "== test/hosts FAILED: ${failed[*]}"; exit 1; fi
echo "== test/hosts: ok"
