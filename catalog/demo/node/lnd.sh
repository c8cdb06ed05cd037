#!/bin/sh
# lnd stand-in (lockstep demo): reads lnd.conf, writes its TLS certificate and admin macaroon a few
# seconds after start (as lnd does once its wallet is up), serves getinfo on the REST port with the
# chain height read live from bitcoind, and answers on the gRPC port.
conf=/data/lnd.conf
for a in "$@"; do case $a in --configfile=*) conf=${a#--configfile=} ;; esac; done
get() { sed -n "s/^$1=//p" "$conf" | tail -1; }
rpchost=$(get bitcoind.rpchost)
if [ -z "$rpchost" ] || [ -z "$(get bitcoind.rpcuser)" ] || [ -z "$(get bitcoind.rpcpass)" ]; then
  echo "lnd: $conf has no bitcoind.rpchost/rpcuser/rpcpass" >&2; exit 1
fi
rest=$(get restlisten)
rest=${rest##*:} grpc=$(get rpclisten); grpc=${grpc##*:}
mkdir -p /tmp/rest/cgi-bin
cat > /tmp/rest/cgi-bin/index.cgi <<'CGI'
#!/bin/sh
# GET /: getinfo. Never prints the RPC password.
conf=/data/lnd.conf
get() { sed -n "s/^$1=//p" "$conf" | tail -1; }
host=$(get bitcoind.rpchost) user=$(get bitcoind.rpcuser)
reply=$(timeout 3 wget -q -O - --post-data '{"jsonrpc":"1.0","id":"lnd","method":"getblockcount","params":[]}' \
  "http://$user:$(get bitcoind.rpcpass)@$host/" 2>/dev/null)
height=$(echo "$reply" | sed -n 's/.*"result":\([0-9]*\).*/\1/p')
synced=true
[ -n "$height" ] || { height=0; synced=false; }
state=starting
[ -s "$(get adminmacaroonpath)" ] && state=active
echo "Content-Type: application/json"
echo
echo "{\"alias\":\"$(get alias)\",\"version\":\"0.18.4-demo\",\"state\":\"$state\",\"block_height\":$height,\"synced_to_chain\":$synced,\"bitcoind\":{\"rpchost\":\"$host\",\"rpcuser\":\"$user\"},\"tls_cert\":\"$(get tlscertpath)\"}"
CGI
chmod 755 /tmp/rest/cgi-bin/index.cgi
echo "lnd: chain backend bitcoind at $rpchost, REST on $rest, gRPC on $grpc"
httpd -f -p "$rest" -h /tmp/rest &
restpid=$!
httpd -f -p "$grpc" -h /tmp/rest &
grpcpid=$!
(
  sleep 4
  cert=$(get tlscertpath) key=$(get tlskeypath) mac=$(get adminmacaroonpath)
  mkdir -p "$(dirname "$cert")" "$(dirname "$mac")"
  if [ ! -s "$cert" ]; then
    { echo "-----BEGIN PRIVATE KEY-----"; head -c 48 /dev/urandom | base64; echo "-----END PRIVATE KEY-----"; } > "$key.tmp"
    chmod 600 "$key.tmp"; mv "$key.tmp" "$key"
    { echo "-----BEGIN CERTIFICATE-----"; head -c 384 /dev/urandom | base64; echo "-----END CERTIFICATE-----"; } > "$cert.tmp"
    mv "$cert.tmp" "$cert"
    echo "lnd: wrote $cert"
  fi
  if [ ! -s "$mac" ]; then
    head -c 32 /dev/urandom | xxd -p -c 64 > "$mac.tmp"; chmod 644 "$mac.tmp"; mv "$mac.tmp" "$mac"
    echo "lnd: wrote $mac"
  fi
) &
trap 'echo "lnd: shutting down"; kill $restpid $grpcpid 2>/dev/null; exit 0' TERM INT
wait $restpid
echo "lnd: REST server exited" >&2
exit 1
