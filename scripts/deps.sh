#!/bin/bash
# Install what lockstep's tests and demo need on Debian 12 or 13 (as root). Idempotent, and quick when
# everything is there (one dpkg-query, no apt). `scripts/deps.sh --list` prints the packages.
#
# Every package is named here, and installed with --no-install-recommends: a test finds a program
# because this file installed it, never because a recommends happened to bring it (podman's
# recommends would add buildah, fuse-overlayfs, criu and more that no test uses; fuse-overlayfs
# would even change rootless podman's storage driver from the vfs the user-scope tests run on).
# What lockstep's own package depends on and recommends is all here too (packaging's
# TestDepsCoverThePackage checks it), so `make demo` can install the .deb with apt inside the
# systemd sandbox, which has no network: every dependency is already on the host.
set -euo pipefail
pkgs=(
  # podman and what lockstep's package needs with it (packaging/nfpm.yaml; docs/compatibility.md)
  podman runc conmon netavark aardvark-dns
  iptables nftables # netavark's firewall: iptables for Debian 12's netavark 1.4, nft for 13's 1.14
  catatonit         # podman kube play (export's TestKubePlay*)
  uidmap slirp4netns passt dbus-user-session # the user scope (test/sandbox TestUserScope*)
  polkitd           # lockstep's polkit actions (a Recommends; dbusapi's TestPolkit* run a real polkitd)
  containernetworking-plugins # CNI: podman without DNS, for the tests of that case
  # the tests' other components
  busybox-static   # the test and demo images (podman import), nc in the demo
  docker-registry  # image pulls from a local registry
  dbus             # dbus-daemon: private buses
  systemd          # busctl, systemd-analyze, systemd-socket-activate; the sandbox's PID 1
  libglib2.0-bin   # gdbus: D-Bus calls as another client would make them
  libxml2-utils    # xmllint: the D-Bus policy is well-formed XML
  util-linux       # setpriv, unshare, nsenter, mount
  procps           # /bin/kill: the units' ExecReload (systemd-analyze verify); the package depends on it
  curl             # the HTTP API over its socket, the demo's pages
  groff-base       # lockstepd(8) is formatted without warnings
  rpm              # the .rpm is inspected (dpkg-deb, for the .deb, is always there)
  lintian          # the .deb is lintian clean (packaging TestLintian)
  debootstrap      # the fresh-host suite (test/hosts) builds its roots
  gcc libc6-dev    # go test -race needs cgo
)
if [ "${1:-}" = --list ]; then
  printf '%s\n' "${pkgs[@]}"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "deps.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi
installed=$({ dpkg-query -W -f='${Package} ${Status}\n' "${pkgs[@]}" 2>/dev/null || true; } | awk '$NF == "installed" {print $1}')
missing=()
for p in "${pkgs[@]}"; do
  grep -qx -- "$p" <<<"$installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Another apt may be running (a shared machine, unattended-upgrades): wait for its lock.
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Go builds and runs the tests; it is not a Debian package here (Debian 12's golang-go is 1.19).
if ! command -v go >/dev/null 2>&1; then
  echo "deps.sh: go is not installed: lockstep needs Go >= 1.26 (README, Prerequisites)" >&2
fi
# The packaged registry starts as a service on :5000 where an init system runs it; tests start their
# own on a free loopback port, so nothing here depends on it.
