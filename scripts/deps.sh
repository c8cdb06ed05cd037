#!/bin/bash
# Install what lockstep's tests and demo need on Debian 12 (as root). Idempotent and quick when done.
# rpm: the package test inspects the .rpm with it (dpkg-deb, for the .deb, is always there).
set -euo pipefail
pkgs=(podman runc conmon containernetworking-plugins iptables busybox-static docker-registry dbus curl systemd libglib2.0-bin util-linux rpm gcc libc6-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The packaged registry starts as a service on :5000 where an init system runs it; tests start their
# own on a free loopback port, so nothing here depends on it.
