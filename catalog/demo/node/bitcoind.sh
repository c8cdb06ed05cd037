#!/bin/sh
# bitcoind stand-in (lockstep demo): JSON-RPC over HTTP with basic auth on rpcport, credentials from
# bitcoin.conf; a block every 10 seconds; "flushes" on SIGTERM.
conf=/data/bitcoin.conf
for a in "$@"; do case $a in -conf=*) conf=${a#-conf=} ;; esac; done
get() { sed -n "s/^$1=//p" "$conf" | tail -1; }
user=$(get rpcuser) pass=$(get rpcpassword) port=$(get rpcport)
if [ -z "$user" ] || [ -z "$pass" ]; then echo "bitcoind: $conf has no rpcuser/rpcpassword" >&2; exit 1; fi
mkdir -p /data/regtest /tmp/rpc/cgi-bin
[ -f /data/regtest/blocks ] || echo 0 > /data/regtest/blocks
# Only requests with the configured credentials reach the RPC handler.
echo "/:$user:$pass" > /tmp/rpc/httpd.conf
chmod 600 /tmp/rpc/httpd.conf
cat > /tmp/rpc/cgi-bin/index.cgi <<'CGI'
#!/bin/sh
body=$(head -c "${CONTENT_LENGTH:-0}")
method=$(echo "$body" | sed -n 's/.*"method" *: *"\([a-z]*\)".*/\1/p')
blocks=$(cat /data/regtest/blocks)
echo "Content-Type: application/json"
echo
case $method in
getblockcount) echo "{\"result\":$blocks,\"error\":null,\"id\":\"lockstep\"}" ;;
*) echo "{\"result\":{\"chain\":\"regtest\",\"blocks\":$blocks,\"headers\":$blocks,\"verificationprogress\":1,\"initialblockdownload\":false},\"error\":null,\"id\":\"lockstep\"}" ;;
esac
CGI
chmod 755 /tmp/rpc/cgi-bin/index.cgi
echo "bitcoind: regtest, RPC on port $port for user $user"
httpd -f -p "$port" -h /tmp/rpc -c /tmp/rpc/httpd.conf &
rpc=$!
(while :; do sleep 10; echo $(($(cat /data/regtest/blocks) + 1)) > /data/regtest/blocks; done) &
miner=$!
trap 'echo "bitcoind: shutdown requested, flushing chainstate"; kill $rpc $miner; sleep 1; echo "bitcoind: shutdown done"; exit 0' TERM INT
wait $rpc
echo "bitcoind: RPC server exited" >&2
exit 1
