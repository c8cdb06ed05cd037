#!/bin/bash
# The main job, for a fresh Debian 12 machine as root: install what lockstep needs, build it, make the
# demo image, make sure a podman service runs, install the demo catalog's apps and reconcile them with
# lockstepd, printing its report. Run it again: the second pass has nothing to do.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
scripts/deps.sh
make --no-print-directory build >/dev/null

demo=${LOCKSTEP_DEMO_DIR:-/var/lib/lockstep-demo}
mkdir -p "$demo/apps.d" "$demo/state"

# Podman on this kind of host needs runc and container ulimits within the hard limits; keep that in a
# private containers.conf rather than changing the host's.
cat > "$demo/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF=$demo/containers.conf

ping() { curl -fsS --max-time 2 --unix-socket "$1" http://d/_ping >/dev/null 2>&1; }
sock=/run/podman/podman.sock
if ! ping "$sock"; then
  sock=$demo/podman.sock
  if ! ping "$sock"; then
    rm -f "$sock"
    echo "starting a podman service on $sock (log: $demo/podman-service.log)"
    setsid podman system service --time=0 "unix://$sock" >"$demo/podman-service.log" 2>&1 < /dev/null &
    for _ in $(seq 100); do ping "$sock" && break; sleep 0.1; done
    ping "$sock" || { echo "podman service did not start; see $demo/podman-service.log" >&2; exit 1; }
  fi
fi

# The demo apps run a busybox image made here from Debian's busybox-static (there is no registry).
if ! podman image exists localhost/lockstep/busybox:demo; then
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/www" "$root/data"
  cp /bin/busybox "$root/bin/busybox"
  for a in sh sleep httpd echo cat ls kill wget date; do ln -s busybox "$root/bin/$a"; done
  echo 'root:x:0:0:root:/:/bin/sh' > "$root/etc/passwd"
  tar -C "$root" -cf "$root.tar" .
  podman import -q --change 'CMD=["sh"]' "$root.tar" localhost/lockstep/busybox:demo >/dev/null
  rm -rf "$root" "$root.tar"
fi

# Install every demo app: an installed app is a symlink in apps.d to its catalog manifest.
for m in "$top"/catalog/demo/*.yaml; do ln -sfn "$m" "$demo/apps.d/$(basename "$m")"; done
mkdir -p "$demo/state/apps/demo-web/www"
[ -f "$demo/state/apps/demo-web/www/index.html" ] || echo '<h1>served by demo-web, kept by lockstep</h1>' > "$demo/state/apps/demo-web/www/index.html"

echo "reconciling $demo/apps.d with podman at unix://$sock"
set +e
"$top/bin/lockstepd" --once --podman-url "unix://$sock" --catalog-dir "$top/catalog/demo" \
  --apps-dir "$demo/apps.d" --state-dir "$demo/state" --runtime-dir "$demo/run" --log-level warn
rc=$?
set -e
echo
podman ps --all --filter label=io.lockstep.app --format 'table {{.Names}}\t{{.Status}}\t{{.Ports}}'
echo
echo "demo-web answers: $(curl -fsS --max-time 3 http://127.0.0.1:18080/ || echo 'nothing yet')"
exit $rc
