#!/bin/bash
# Build (or reuse) a fresh Debian root: debootstrap minbase plus the packages named, nothing else.
# The root is cached under $HOST_BASE/roots/SUITE-HASH, HASH over the suite, the sorted package list
# and this recipe's version, so a second run (CI on the same machine) reuses it. Prints the root's path.
# Usage: mk-root.sh SUITE [PACKAGE...]      HOST_REFRESH=1 rebuilds even when cached;
#        ROOT_BASE_PKGS="" mk-root.sh SUITE  builds Debian's minbase alone.
# The mirror is the machine's own (read from its apt sources), so the root gets what a user's apt would.
set -euo pipefail
suite=${1:?suite}; shift
HOST_BASE=${HOST_BASE:-/var/lib/lockstep-hosts}
case "$HOST_BASE" in /tmp/*|/var/tmp/*|/run/*) echo "HOST_BASE must not be under /tmp, /var/tmp, /run" >&2; exit 1;; esac
[ "$(id -u)" = 0 ] || { echo "must be root" >&2; exit 1; }
recipe=1
# ROOT_BASE_PKGS: what every host root gets (a booted host needs them); empty for minbase alone
base=${ROOT_BASE_PKGS-systemd systemd-sysv dbus procps iproute2}
pkgs=$(printf '%s\n' $base "$@" | { grep . || true; } | sort -u | paste -sd, -)
key=$(printf '%s\n' "$recipe" "$suite" "$pkgs" | sha256sum | cut -c1-12)
dir=$HOST_BASE/roots/$suite-$key; [ -n "$pkgs" ] || dir=$HOST_BASE/roots/$suite-minbase-$key
if [ -f "$dir/.lockstep-root" ] && [ "${HOST_REFRESH:-0}" != 1 ]; then echo "$dir"; exit 0; fi
command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1)
[ -n "$mirror" ] || mirror=$(awk '$1=="deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || { echo "no Debian mirror found in the machine's apt sources" >&2; exit 1; }
mkdir -p "$HOST_BASE/roots"
# one builder per root at a time (two runs on the same machine wait for each other)
exec 9>"$dir.lock"; flock 9
if [ -f "$dir/.lockstep-root" ] && [ "${HOST_REFRESH:-0}" != 1 ]; then echo "$dir"; exit 0; fi
t0=$(date +%s)
rm -rf "$dir.partial"
debootstrap --variant=minbase ${pkgs:+--include="$pkgs"} "$suite" "$dir.partial" "$mirror" >"$dir.log" 2>&1 \
  || { tail -20 "$dir.log" >&2; exit 1; }
# apt inside the root must find the same mirror (and, for a stable suite, its security updates)
sources="deb $mirror $suite main"
[ "$suite" = sid ] || sources+=$'\n'"deb $mirror $suite-updates main"$'\n'"deb ${mirror%/debian}/debian-security $suite-security main"
printf '%s\n' "$sources" > "$dir.partial/etc/apt/sources.list"
chroot "$dir.partial" apt-get update -qq >>"$dir.log" 2>&1 || { tail -20 "$dir.log" >&2; exit 1; }
chroot "$dir.partial" apt-get clean
printf 'suite=%s\npackages=%s\nbuilt=%s\n' "$suite" "$pkgs" "$(date -u +%FT%TZ)" > "$dir.partial/.lockstep-root"
rm -rf "$dir"; mv "$dir.partial" "$dir"
echo "root $suite built in $(( $(date +%s) - t0 ))s at $dir ($(du -sh "$dir" | cut -f1))" >&2
echo "$dir"
