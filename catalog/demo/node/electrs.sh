#!/bin/sh
# electrs stand-in (lockstep demo): indexes (counts) bitcoind's blocks over RPC at
# $ELECTRS_DAEMON_RPC_ADDR with $ELECTRS_AUTH, and serves Electrum JSON-RPC lines on
# $ELECTRS_ELECTRUM_RPC_ADDR.
daemon=$ELECTRS_DAEMON_RPC_ADDR port=${ELECTRS_ELECTRUM_RPC_ADDR##*:}
case $daemon in :* | *: | "") echo "electrs: no bitcoind RPC address (ELECTRS_DAEMON_RPC_ADDR=$daemon)" >&2; exit 1 ;; esac
case $ELECTRS_AUTH in :* | *: | "") echo "electrs: no bitcoind RPC credentials (ELECTRS_AUTH)" >&2; exit 1 ;; esac
mkdir -p /data/db
echo "$daemon" > /data/db/daemon
echo "electrs: indexing from bitcoind at $daemon, Electrum RPC on $port"
(while :; do
  h=$(timeout 3 wget -q -O - --post-data '{"jsonrpc":"1.0","id":"electrs","method":"getblockcount","params":[]}' \
    "http://$ELECTRS_AUTH@$daemon/" 2>/dev/null | sed -n 's/.*"result":\([0-9]*\).*/\1/p')
  if [ -n "$h" ]; then echo "$h" > /data/db/height.tmp && mv /data/db/height.tmp /data/db/height; fi
  sleep 2
done) &
indexer=$!
nc -ll -p "$port" -e /data/bin/electrum-rpc &
server=$!
trap 'echo "electrs: stopping"; kill $indexer $server 2>/dev/null; exit 0' TERM INT
wait $server
echo "electrs: server exited" >&2
exit 1
