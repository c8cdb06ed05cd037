#!/bin/bash
# deps.sh proven complete: a Debian 12 (or 13: DEPS_SUITE=trixie) root with only Debian's minbase, the project's scripts/deps.sh
# run in it (chroot, on the machine's network), then the real-component Go tests run in it (pivot_root,
# LOCKSTEP_REQUIRE_REAL=1: a program the tests need and deps.sh did not install fails them). Go is
# the machine's /usr/local/go, bind-mounted read-only, as a user's own Go install would be.
#
# The root after deps.sh is cached under $HOST_BASE/roots/deps-SUITE-HASH, HASH over deps.sh's
# package list (deps.sh --list); each run's writes go to an overlay layer that is thrown away.
# The tests run in a private network namespace (only lo: no test can reach the network, none collides with the
# machine's ports) and the checkout's copy at /src, the root pivot_root'ed into (not chroot: see below).
# Usage: test/hosts/deps-root.sh    DEPS_SUITE: bookworm (default) or trixie
#   DEPS_PKGS: Go packages to test (default below)   DEPS_BUILD_ONLY=1: make the root, run no test
#   GOMODCACHE of the machine is bound read-only (GOPROXY=off: everything is in go.sum already)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
HOST_BASE=${HOST_BASE:-/var/lib/lockstep-hosts}
export HOST_BASE
# The packages whose tests use podman, dbus-daemon, the registry and systemd-analyze. hostcheck's
# tests make podman 4.3's broken setups (CNI without dnsname, aardvark-dns hidden) and are bookworm's
# only: Debian 13's podman 5.4.2 is built without CNI ("cni support is not enabled in this build"), and
# its nslookup checks fail there differently (docs/compatibility.md).
default_pkgs="./reconciler/... ./export/... ./dbusapi/... ./units/... ./cmd/lockstepd/... ./cmd/lockstepctl/..."
[ "${DEPS_SUITE:-bookworm}" = bookworm ] && default_pkgs+=" ./hostcheck/..."
DEPS_PKGS=${DEPS_PKGS:-$default_pkgs}
goroot=${GOROOT_HOST:-/usr/local/go}
modcache=$(go env GOMODCACHE 2>/dev/null || echo /root/go/pkg/mod)
[ -x "$goroot/bin/go" ] || { echo "deps-root: no Go at $goroot" >&2; exit 1; }

t0=$(date +%s.%N)
suite=${DEPS_SUITE:-bookworm}
base=$(ROOT_BASE_PKGS="" "$here/mk-root.sh" "$suite")
# key: deps.sh's package list (deps.sh --list) and this recipe
recipe=2
list=$(bash "$top/scripts/deps.sh" --list) || { echo "deps-root: scripts/deps.sh --list failed" >&2; exit 1; }
key=$(printf '%s\n' "$recipe" "$list" | sha256sum | cut -c1-12)
root=$HOST_BASE/roots/deps-$suite-$key
t1=$(date +%s.%N)
# chroot_run DIR CMD...: run in DIR with /proc, /sys, /dev and the checkout (/src) bound, in a
# private mount namespace (every mount goes with it)
if [ ! -f "$root/.lockstep-root" ] || [ "${HOST_REFRESH:-0}" = 1 ]; then
  rm -rf "$root.partial"
  cp -a "$base" "$root.partial"
  export R=$root.partial top
  unshare --mount --propagation private -- bash -euo pipefail -c '
    mount -t proc proc "$R/proc"; mount --rbind /sys "$R/sys"; mount --rbind /dev "$R/dev"
    mount -t tmpfs tmpfs "$R/run"; mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
    mkdir -p "$R/src"; mount --bind "$top" "$R/src"; mount -o remount,bind,ro "$R/src"
    printf "#!/bin/sh\nexit 101\n" > "$R/usr/sbin/policy-rc.d"; chmod 755 "$R/usr/sbin/policy-rc.d"
    chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root /src/scripts/deps.sh
    rm -f "$R/usr/sbin/policy-rc.d"
    chroot "$R" apt-get clean
  ' > "$root.log" 2>&1 || { tail -30 "$root.log" >&2; echo "deps-root: scripts/deps.sh failed on a minbase root" >&2; exit 1; }
  sed -i 's/^/deps.sh: /' "$root.log"
  rmdir "$root.partial/src" 2>/dev/null || true
  cp "$base/.lockstep-root" "$root.partial/.lockstep-root"
  echo "deps_sh=$key" >> "$root.partial/.lockstep-root"
  rm -rf "$root"; mv "$root.partial" "$root"
  printf 'deps-root: deps.sh on minbase took %.0fs\n' "$(echo "$(date +%s.%N) - $t1" | bc)"
fi
t2=$(date +%s.%N)
printf 'deps-root: roots ready in %.0fs (%s)\n' "$(echo "$t2 - $t0" | bc)" "$root"
[ "${DEPS_BUILD_ONLY:-0}" = 1 ] && exit 0

# the tests: an overlay over the cached root, a copy of the checkout (tests may write in it)
run=$HOST_BASE/layers/deps-$suite-${HOSTS_RUN:-$$}   # one per run: another run on the machine has its own
rm -rf "$run"; mkdir -p "$run"/{upper,work,merged,vartmp} "$HOST_BASE/gocache"; chmod 1777 "$run/vartmp"
export R=$run/merged root run top goroot modcache DEPS_PKGS
unshare --mount --net --propagation private -- bash -euo pipefail -c '
  ip link set lo up
  mount -t overlay overlay -o "lowerdir=$root,upperdir=$run/upper,workdir=$run/work" "$R"
  mount -t proc proc "$R/proc"; mount --rbind /sys "$R/sys"; mount --rbind /dev "$R/dev"
  mount -t tmpfs -o mode=755 tmpfs "$R/run"; mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
  # /var/tmp on the machine'"'"'s filesystem, as on a machine: the tests'"'"' podman keeps its storage
  # there, and its overlay driver refuses an overlayfs below it
  mount --bind "$run/vartmp" "$R/var/tmp"
  mkdir -p "$R/usr/local/go" "$R/root/go/pkg/mod" "$R/root/.cache/go-build" "$R/src"
  mount --bind "$goroot" "$R/usr/local/go"; mount -o remount,bind,ro "$R/usr/local/go"
  mount --bind "$modcache" "$R/root/go/pkg/mod"; mount -o remount,bind,ro "$R/root/go/pkg/mod"
  mount --bind "$HOST_BASE/gocache" "$R/root/.cache/go-build"
  # the checkout as git has it (no build output), copied into the layer
  git -C "$top" ls-files -z | tar -C "$top" --null -T - -cf - | tar -C "$R/src" -xf -
  # pivot_root, not chroot: in a chroot runc exec (podman 4.3.1, runc 1.1.5) ran the exec'"'"'d
  # process in the machine'"'"'s namespaces instead of the container'"'"'s (podman exec CTR cat
  # /proc/1/cmdline printed the machine'"'"'s PID 1; health checks and exec-based tests failed)
  mount --make-rprivate /
  mkdir -p "$R/run/oldroot"; cd "$R"; pivot_root . run/oldroot; cd /; umount -l /run/oldroot
  exec env -i PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root TERM=dumb GOTOOLCHAIN=local GOPROXY=off GOFLAGS="-mod=readonly -tags=remote,containers_image_openpgp,exclude_graphdriver_btrfs,exclude_graphdriver_devicemapper" \
    CGO_ENABLED=1 LOCKSTEP_REQUIRE_REAL=1 \
    sh -c "cd /src && go test -race -count=1 -timeout 20m $DEPS_PKGS"
' && rc=0 || rc=$?
rm -rf "$run"
printf 'deps-root: the tests took %.0fs\n' "$(echo "$(date +%s.%N) - $t2" | bc)"
exit $rc
