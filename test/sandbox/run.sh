#!/bin/bash
# Run a program inside a fresh systemd sandbox with lockstep's settings, from a staged copy: the
# sandbox hides /tmp, /var/tmp and /run, where a checkout (or CI's clone) may live, so the programs,
# the Quadlet generator and the .deb are copied under HARNESS_ROOT first and removed afterwards.
# Usage: test/sandbox/run.sh PROGRAM [ARGS...]
#   QUADLET=path (default bin/quadlet), DEB=path (optional; exported to the program as LOCKSTEP_DEB)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
prog=$(realpath "$1"); shift
root=${HARNESS_ROOT:-/var/lib/lockstep-sandbox}
export HARNESS_NAME=${HARNESS_NAME:-lockstep-$$}
stage=$root/bundle/$HARNESS_NAME
rm -rf "$stage"; mkdir -p "$stage"
trap 'rm -rf "$stage"' EXIT
cp "$prog" "$stage/"
cp "${QUADLET:-$top/bin/quadlet}" "$stage/quadlet"
if [ -n "${DEB:-}" ]; then cp "$DEB" "$stage/"; export LOCKSTEP_DEB=$stage/$(basename "$DEB"); fi
# the package's state dir must exist as the base of its private overlay; it stays empty on the host
mkdir -p /var/lib/lockstep
export HARNESS_QUADLET=$stage/quadlet HARNESS_CONTAINERS_CONF=$here/containers.conf
# /var/lib/systemd too: the .deb's postinst records enablement there (deb-systemd-helper), and a stale
# record on the host would make the next sandbox's install leave the units disabled.
export HARNESS_OVERLAYS="/usr /etc /var/lib/dpkg /var/lib/lockstep /var/lib/systemd"
cd "$stage"
"$here/harness/h-run.sh" "$stage/$(basename "$prog")" "$@"
