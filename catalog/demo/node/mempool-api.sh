#!/bin/sh
# mempool backend stand-in (lockstep demo): on 8999, a JSON summary of what it reaches: bitcoind over
# RPC, electrs (when configured) over Electrum RPC, and its database at $DATABASE_HOST.
for v in CORE_RPC_HOST CORE_RPC_PORT CORE_RPC_USERNAME CORE_RPC_PASSWORD DATABASE_HOST DATABASE_PASSWORD; do
  eval "[ -n \"\$$v\" ]" || { echo "api: $v is not set" >&2; exit 1; }
done
mkdir -p /tmp/api/cgi-bin
cat > /tmp/api/cgi-bin/index.cgi <<'CGI'
#!/bin/sh
# Never prints a password.
blocks=$(timeout 3 wget -q -O - --post-data '{"jsonrpc":"1.0","id":"mempool","method":"getblockcount","params":[]}' \
  "http://$CORE_RPC_USERNAME:$CORE_RPC_PASSWORD@$CORE_RPC_HOST:$CORE_RPC_PORT/" 2>/dev/null | sed -n 's/.*"result":\([0-9]*\).*/\1/p')
core="unreachable"; [ -n "$blocks" ] && core="ok"
ns=$(sed -n 's/^nameserver //p' /etc/resolv.conf | head -1)
db_addr=$(nslookup "$DATABASE_HOST" "$ns" 2>/dev/null | sed -n '/^Name:/,$s/^Address[^:]*: *//p' | head -1)
db="unreachable"
timeout 3 wget -q -O /dev/null "http://$DATABASE_USERNAME:$DATABASE_PASSWORD@$DATABASE_HOST:$DATABASE_PORT/" 2>/dev/null && db="ok"
if [ -n "$ELECTRUM_HOST" ]; then
  # (busybox nc hangs up when its input ends: keep it open for the answer)
  tip=$({ echo '{"id":1,"method":"blockchain.headers.subscribe","params":[]}'; sleep 1; } | timeout 3 nc "$ELECTRUM_HOST" "$ELECTRUM_PORT" 2>/dev/null |
    sed -n 's/.*"height":\([0-9]*\).*/\1/p')
  electrum="{\"host\":\"$ELECTRUM_HOST\",\"port\":\"$ELECTRUM_PORT\",\"height\":${tip:-null}}"
  backend=electrum
else
  electrum=null
  backend=none
fi
echo "Content-Type: application/json"
echo
echo "{\"backend\":\"$backend\",\"core_rpc\":{\"host\":\"$CORE_RPC_HOST\",\"port\":\"$CORE_RPC_PORT\",\"user\":\"$CORE_RPC_USERNAME\",\"status\":\"$core\",\"blocks\":${blocks:-null}},\"electrum\":$electrum,\"database\":{\"host\":\"$DATABASE_HOST\",\"address\":\"$db_addr\",\"status\":\"$db\"}}"
CGI
chmod 755 /tmp/api/cgi-bin/index.cgi
echo ok > /tmp/api/ping
echo "api: bitcoind at $CORE_RPC_HOST:$CORE_RPC_PORT, electrum at ${ELECTRUM_HOST:-(none)}${ELECTRUM_HOST:+:$ELECTRUM_PORT}, database at $DATABASE_HOST"
httpd -f -p 8999 -h /tmp/api &
pid=$!
trap 'echo "api: shutting down"; kill $pid; exit 0' TERM INT
wait $pid
exit 1
