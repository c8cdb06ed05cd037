#!/bin/bash
# The main job, for a fresh Debian 12 machine as root: install what lockstep needs, build it, make the
# demo image, make sure a podman service runs, install the demo catalog's apps, start lockstepd as a
# daemon on D-Bus (a private bus unless the system bus has lockstep's policy) and reconcile through
# lockstepctl. Run it again: lockstepd is reused and the pass has nothing to do.
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

# lockstepd runs as a daemon on D-Bus: on the system bus when one runs with lockstep's policy installed,
# else on a private bus of the demo's own (a socket in $demo). lockstepd itself still lets only root and
# group lockstep change things.
ctl() { "$top/bin/lockstepctl" --bus "$bus" "$@"; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if [ -S /run/dbus/system_bus_socket ] && { [ -f /usr/share/dbus-1/system.d/org.lockstep.Reconciler1.conf ] || [ -f /etc/dbus-1/system.d/org.lockstep.Reconciler1.conf ]; }; then
  bus=unix:path=/run/dbus/system_bus_socket
else
  bus=unix:path=$demo/bus.sock
  if ! alive "$demo/bus.pid" || [ ! -S "$demo/bus.sock" ]; then
    rm -f "$demo/bus.sock"
    cat > "$demo/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>$bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default"><allow user="*"/><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
</busconfig>
CONF
    echo "starting a private D-Bus for the demo on $bus (no system bus with lockstep's policy here)"
    dbus-daemon --config-file="$demo/bus.conf" --fork --print-pid=1 > "$demo/bus.pid"
    for _ in $(seq 50); do [ -S "$demo/bus.sock" ] && break; sleep 0.1; done
  fi
fi

# Start lockstepd unless it already runs (restart it when bin/lockstepd was rebuilt since).
fresh=
sum=$(sha256sum < "$top/bin/lockstepd")
if alive "$demo/lockstepd.pid" && [ "$sum" != "$(cat "$demo/lockstepd.sum" 2>/dev/null)" ]; then
  echo "bin/lockstepd changed: restarting the demo's lockstepd"
  kill -TERM "$(cat "$demo/lockstepd.pid")"
  for _ in $(seq 300); do alive "$demo/lockstepd.pid" || break; sleep 0.1; done
fi
if ! alive "$demo/lockstepd.pid"; then
  echo "starting lockstepd on $bus (log: $demo/lockstepd.log)"
  setsid "$top/bin/lockstepd" --bus "$bus" --podman-url "unix://$sock" --catalog-dir "$top/catalog/demo" \
    --apps-dir "$demo/apps.d" --state-dir "$demo/state" --runtime-dir "$demo/run" \
    >>"$demo/lockstepd.log" 2>&1 < /dev/null &
  echo $! > "$demo/lockstepd.pid"
  echo "$sum" > "$demo/lockstepd.sum"
  fresh=1
fi
for _ in $(seq 300); do timeout 5 "$top/bin/lockstepctl" --bus "$bus" report >/dev/null 2>&1 && break; sleep 0.1; done
timeout 10 "$top/bin/lockstepctl" --bus "$bus" report >/dev/null || { echo "lockstepd does not answer on $bus; see $demo/lockstepd.log" >&2; exit 1; }
if [ -n "$fresh" ]; then
  # Its start-up pass does the installs; show that pass's report once it is done.
  for _ in $(seq 1200); do ctl report --json | grep -q '"pass_id": [1-9]' && break; sleep 0.1; done
  echo; echo "$ lockstepctl report   # the start-up pass"; ctl report --color never
fi

echo; echo "$ lockstepctl reconcile"
set +e
ctl reconcile
rc=$?
echo; echo "$ lockstepctl status"
ctl status
set -e
echo
podman ps --all --filter label=io.lockstep.app --format 'table {{.Names}}\t{{.Status}}\t{{.Ports}}'
echo
echo "demo-web answers: $(curl -fsS --max-time 3 http://127.0.0.1:18080/ || echo 'nothing yet')"
echo
echo "lockstepd keeps running (pid $(cat "$demo/lockstepd.pid")). Try: $top/bin/lockstepctl --bus $bus watch"
if [ "$bus" = "unix:path=$demo/bus.sock" ]; then
  echo "stop it with: kill \$(cat $demo/lockstepd.pid) && kill \$(cat $demo/bus.pid)"
else
  echo "stop it with: kill \$(cat $demo/lockstepd.pid)"
fi
exit $rc
