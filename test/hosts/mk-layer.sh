#!/bin/bash
# Install packages into a per-run layer over a cached root, the way a user installs lockstep:
#   chroot ROOT apt-get install -y [APT_OPTION...] ./lockstep_*.deb
# with Debian's archive resolving the dependencies (the machine's network), /proc, /sys and /dev
# bound, and no /run/systemd/system, so maintainer scripts do not reach a running systemd. The root
# stays untouched: the install writes into LAYER/upper (an overlay over ROOT), and host-boot.sh
# boots LAYER/upper:ROOT. Downloaded .debs are kept in $HOST_BASE/apt-cache/SUITE for the next run.
# Usage: mk-layer.sh ROOT LAYER DEB [APT_OPTION...]     Prints the lower list to boot (LAYER/upper:ROOT).
#        LAYER_CMD='apt-get install -y make git' mk-layer.sh ROOT LAYER -
#        (DEB "-": the shell commands in LAYER_CMD instead, run by bash in the same chroot)
set -euo pipefail
root=${1:?root}; layer=${2:?layer}; deb=${3:?deb}; shift 3
[ "$deb" = - ] || deb=$(realpath "$deb")
HOST_BASE=${HOST_BASE:-/var/lib/lockstep-hosts}
[ -f "$root/.lockstep-root" ] || { echo "$root: not a root made by mk-root.sh" >&2; exit 1; }
suite=$(sed -n 's/^suite=//p' "$root/.lockstep-root")
cache=$HOST_BASE/apt-cache/$suite
rm -rf "$layer"; mkdir -p "$layer"/{upper,work,merged} "$cache/partial"
[ "$deb" = - ] || cp "$deb" "$layer/"
export root layer cache debname=$(basename "$deb") apt_opts="$*" layer_cmd=${LAYER_CMD:-}
# A private mount namespace: every mount below vanishes with it, even if the install fails. One
# install per suite at a time: apt locks the shared download cache.
flock "$HOST_BASE/apt-cache/$suite.lock" unshare --mount --propagation private -- bash -euo pipefail -c '
  m=$layer/merged
  mount -t overlay overlay -o "lowerdir=$root,upperdir=$layer/upper,workdir=$layer/work" "$m"
  mount -t proc proc "$m/proc"
  mount --rbind /sys "$m/sys"
  mount --rbind /dev "$m/dev"
  mount -t tmpfs -o mode=755 tmpfs "$m/run"
  mount -t tmpfs -o mode=1777 tmpfs "$m/tmp"
  mount --bind "$cache" "$m/var/cache/apt/archives"
  mkdir -p "$m/mnt/deb"; mount --bind "$layer" "$m/mnt/deb"
  # the usual guard of a chroot install: no init script is started (systemd is absent anyway)
  printf "#!/bin/sh\nexit 101\n" > "$m/usr/sbin/policy-rc.d"; chmod 755 "$m/usr/sbin/policy-rc.d"
  # dpkg without fsync (--force-unsafe-io): the layer is thrown away after the run anyway
  run() { chroot "$m" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
  # A cached root may hold package lists older than the archive: on a failed download, update and retry.
  if [ "$debname" = - ]; then
    run bash -euo pipefail -c "$layer_cmd" >"$layer/apt.log" 2>&1 || { tail -30 "$layer/apt.log" >&2; exit 1; }
  elif ! run apt-get install -y -q -o Dpkg::Options::=--force-unsafe-io $apt_opts "/mnt/deb/$debname" >"$layer/apt.log" 2>&1; then
    run apt-get update -q >>"$layer/apt.log" 2>&1
    run apt-get install -y -q -o Dpkg::Options::=--force-unsafe-io $apt_opts "/mnt/deb/$debname" >>"$layer/apt.log" 2>&1 || { tail -30 "$layer/apt.log" >&2; exit 1; }
  fi
  rm -f "$m/usr/sbin/policy-rc.d"
  umount "$m/mnt/deb"; rmdir "$m/mnt/deb"
'
[ "$deb" = - ] || rm -f "$layer/$(basename "$deb")"
rm -rf "$layer/work" "$layer/merged"
echo "$layer/upper:$root"
