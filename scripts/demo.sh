#!/bin/bash
# The main job (make demo), for a fresh Debian 12 or 13 machine as root: build lockstep's package and
# bring the whole service up (socket, timer, D-Bus activation, Quadlet companions), install the demo
# catalog's apps and show them working. Under the host's systemd when PID 1 is systemd; otherwise
# inside the project's systemd sandbox (test/sandbox/harness), which is left running for you to explore.
# The .deb is installed with apt, as a user would, so the dependencies it declares come with it.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
scripts/deps.sh
export CGO_ENABLED=0 GOFLAGS=-tags=remote,containers_image_openpgp,exclude_graphdriver_btrfs,exclude_graphdriver_devicemapper
arch=$(dpkg --print-architecture)
echo "== building lockstep and its .deb ($arch)"
make --no-print-directory build >/dev/null
go build -o bin/quadlet github.com/containers/podman/v5/cmd/quadlet
PKG_ARCHES=$arch PKG_FORMATS=deb DIST=bin/dist scripts/package.sh >/dev/null
deb=$(ls "$top"/bin/dist/lockstep_*_"$arch".deb | head -1)

# What runs on the target (the host, or the sandbox): install, make the demo image, install the apps.
cat > bin/demo-inside.sh <<'INSIDE'
#!/bin/bash
set -euo pipefail
deb=$1 top=$2
echo "== installing $(basename "$deb") with apt (and what it depends on)"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 "$deb" >/dev/null
systemctl enable --now podman.socket >/dev/null 2>&1 || true
# The image's label says which applet list made it: an older demo image is made again.
img=localhost/lockstep/busybox:demo imgv=2
if [ "$(podman image inspect --format '{{index .Labels "io.lockstep.demo-image"}}' $img 2>/dev/null)" != $imgv ]; then
  echo "== making the demo image from busybox-static (there is no registry to pull from)"
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/www" "$root/data"
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for a in sh sleep httpd echo cat ls kill wget date true false nc sed grep head tail cut wc mkdir \
    chmod mv rm touch test [ dirname base64 xxd sha256sum nslookup timeout; do ln -s busybox "$root/bin/$a"; done
  echo 'root:x:0:0:root:/:/bin/sh' > "$root/etc/passwd"
  tar -C "$root" -cf "$root.tar" .
  podman import -q --change 'CMD=["sh"]' --change "LABEL=io.lockstep.demo-image=$imgv" "$root.tar" $img >/dev/null
  rm -rf "$root" "$root.tar"
fi
echo "== the demo catalog: /usr/share/lockstep/catalog"
cp -r /usr/share/lockstep/examples/demo/. /usr/share/lockstep/catalog/
mkdir -p /var/lib/lockstep/apps/demo-web/www
[ -f /var/lib/lockstep/apps/demo-web/www/index.html ] ||
  echo '<h1>served by demo-web, kept in lockstep</h1>' > /var/lib/lockstep/apps/demo-web/www/index.html
# The first three show the basics; the rest are the node: bitcoin-knots (provides bitcoin), lnd and
# electrs on it, the mempool stack (db, api, web) and lnd-ui with its companion.
for app in demo-web demo-worker demo-built bitcoin-knots lnd electrs mempool lnd-ui; do
  echo "== lockstepctl install $app"
  # exit 3 (degraded) is expected on the way: dependents wait until what they need is healthy
  lockstepctl install "$app" >/dev/null || [ $? = 3 ]
done
echo "== waiting for the node to come up (each app starts once its dependencies are healthy)"
for _ in $(seq 90); do lockstepctl status >/dev/null 2>&1 && break; sleep 1; done
echo
lockstepctl status || true
get() { curl -fsS --max-time 8 "$@" 2>&1 || echo unreachable; }
# Served pages come up a moment after their containers (lnd writes its credentials late).
for _ in $(seq 20); do get http://127.0.0.1:18370/ | grep -q 'macaroon present' && break; sleep 1; done
rpcpass=$(cat /var/lib/lockstep/secrets/bitcoin-knots/rpc_password)
echo
echo "== demo-web:        $(get http://127.0.0.1:18080/)"
echo "== its companion:   $(get http://127.0.0.1:18081/)"
echo "== bitcoin-knots RPC without credentials: $(curl -s -o /dev/null -w 'HTTP %{http_code}' --max-time 5 http://127.0.0.1:18332/)"
echo "== bitcoin-knots RPC with the generated ones (kept in /var/lib/lockstep/secrets, mode 0600):"
echo "   $(get -u "lockstep:$rpcpass" --data-binary '{"jsonrpc":"1.0","id":"demo","method":"getblockchaininfo","params":[]}' http://127.0.0.1:18332/)"
echo "== lnd getinfo (REST, 127.0.0.1:18380): $(get http://127.0.0.1:18380/)"
echo "== lnd.conf, rendered from bitcoin's exports (password hidden here):"
grep '^bitcoind\.' /var/lib/lockstep/apps/lnd/lnd.conf | sed 's/^\(bitcoind.rpcpass=\).*/\1<the generated secret>/; s/^/   /'
echo "== electrs (Electrum RPC, 127.0.0.1:18301): $( { echo '{"id":1,"method":"blockchain.headers.subscribe","params":[]}'; sleep 1; } | timeout 5 busybox nc 127.0.0.1 18301 || echo unreachable)"
echo "== mempool web (127.0.0.1:18350), showing what its api reached:"
get http://127.0.0.1:18350/ | sed 's/^/   /'
echo "== lnd-ui (127.0.0.1:18370), with lnd's tls.cert and macaroon mounted read-only:"
get http://127.0.0.1:18370/ | sed 's/^/   /'
echo "== its companion lockstep-lnd-ui-status.service (127.0.0.1:18371), serving the UI's status page"
echo "   and what it sees itself of lnd's credentials through its own read-only mount:"
get http://127.0.0.1:18371/ | sed 's/^/   /'
echo "== systemctl status lockstep-demo-web-ui.service lockstep-lnd-ui-status.service:"
systemctl --no-pager --lines=0 status lockstep-demo-web-ui.service lockstep-lnd-ui-status.service | grep -E '^(●|   *Active:)'
INSIDE
chmod +x bin/demo-inside.sh

if [ -d /run/systemd/system ] && [ "$(readlink /proc/1/exe)" != "" ] && [[ "$(readlink /proc/1/exe)" == *systemd* ]]; then
  echo "== PID 1 is systemd: installing on this host"
  bin/demo-inside.sh "$deb" "$top"
  echo; echo "lockstep runs here now; remove it with: apt purge lockstep (app data in /var/lib/lockstep/apps stays)"
  exit 0
fi

echo "== PID 1 is not systemd: bringing lockstep up inside the project's systemd sandbox"
# The sandbox's network namespace has only loopback: apt cannot download inside it. So what the .deb
# depends on and recommends is installed here on the host first (deps.sh above covers all of it;
# apt-get satisfy with the .deb's own fields makes sure, and is a no-op when it is all there), and
# inside, apt installs the local file and finds every dependency installed already, through the
# sandbox's overlays of /usr and /var/lib/dpkg: it has nothing to download. (apt's --no-download
# would say so outright, but apt 2.6 then fails on the local file: "Internal Error, Pathname to
# install is not absolute".)
need="$(dpkg-deb -f "$deb" Depends), $(dpkg-deb -f "$deb" Recommends)"
DEBIAN_FRONTEND=noninteractive apt-get satisfy -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "$need" >/dev/null
export HARNESS_NAME=lockstep-demo
h=$top/test/sandbox/harness
"$h/h-stop.sh" >/dev/null 2>&1 || true
# The sandbox hides /tmp, /var/tmp and /run (where this checkout may be): stage what it needs.
stage=/var/lib/lockstep-sandbox/bundle/lockstep-demo
rm -rf "$stage"; mkdir -p "$stage"
cp bin/quadlet bin/demo-inside.sh "$deb" "$stage/"
export HARNESS_QUADLET=$stage/quadlet HARNESS_CONTAINERS_CONF=$top/test/sandbox/containers.conf
# apt's and deb-systemd-helper's state too (/var/lib/apt, /var/cache/apt, /var/lib/systemd): nothing
# of the install inside reaches the host.
export HARNESS_OVERLAYS="/usr /etc /var/lib/dpkg /var/lib/apt /var/cache/apt /var/lib/systemd /var/lib/lockstep"
mkdir -p /var/lib/lockstep   # the base of a private overlay; it stays empty on the host
"$h/h-boot.sh" >/dev/null
HARNESS_WD=/ "$h/h-exec.sh" "$stage/demo-inside.sh" "$stage/$(basename "$deb")" "$stage"
cat <<MSG

The sandbox keeps running (systemd, D-Bus, podman and lockstep inside private namespaces):
  enter it:  HARNESS_NAME=lockstep-demo $h/h-exec.sh bash
  e.g.:      HARNESS_NAME=lockstep-demo $h/h-exec.sh lockstepctl status
  stop it:   HARNESS_NAME=lockstep-demo $h/h-stop.sh && rm -rf $stage
MSG
