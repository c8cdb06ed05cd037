#!/bin/sh
# mempool front-end stand-in (lockstep demo): a page on 8080 showing the backend's answer, fetched
# from the api container by its name on the app's network.
mkdir -p /tmp/web/cgi-bin
cat > /tmp/web/cgi-bin/index.cgi <<'CGI'
#!/bin/sh
info=$(timeout 8 wget -q -O - "http://$BACKEND_MAINNET_HTTP_HOST:$BACKEND_MAINNET_HTTP_PORT/" 2>/dev/null)
echo "Content-Type: text/html"
echo
echo "<h1>mempool (lockstep demo)</h1>"
echo "<p>backend $BACKEND_MAINNET_HTTP_HOST:$BACKEND_MAINNET_HTTP_PORT: ${info:-unreachable}</p>"
CGI
chmod 755 /tmp/web/cgi-bin/index.cgi
echo "web: on 8080, backend at $BACKEND_MAINNET_HTTP_HOST:$BACKEND_MAINNET_HTTP_PORT"
httpd -f -p 8080 -h /tmp/web &
pid=$!
trap 'echo "web: shutting down"; kill $pid; exit 0' TERM INT
wait $pid
exit 1
