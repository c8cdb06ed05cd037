#!/bin/sh
# Lightning UI stand-in (lockstep demo): waits for lnd's certificate and macaroon in its read-only
# mount, then serves a page on 3000 with lnd's getinfo (fetched from lnd's REST port by name) and a
# fingerprint of the certificate it uses. It keeps a status page in /data/www for its companion.
# It runs as an unprivileged user: everything it writes is under /data, its state dir.
rest= dir=/lnd
for a in "$@"; do case $a in --lnd-rest=*) rest=${a#--lnd-rest=} ;; --lnd-dir=*) dir=${a#--lnd-dir=} ;; esac; done
case $rest in :* | *: | "") echo "lnd-ui: no lnd REST address" >&2; exit 1 ;; esac
mkdir -p /data/ui/cgi-bin /data/www
# lnd's credentials are mounted read-only: say so on the page.
case $(touch "$dir/.lnd-ui-write-test" 2>&1) in
*Read-only*) ro=yes ;;
"") rm -f "$dir/.lnd-ui-write-test"; ro=no ;;
*) ro="not writable, but not a read-only mount" ;;
esac
echo "$ro" > /data/ui/readonly
cat > /data/ui/cgi-bin/index.cgi <<CGI
#!/bin/sh
rest=$rest dir=$dir
CGI
cat >> /data/ui/cgi-bin/index.cgi <<'CGI'
info=$(timeout 3 wget -q -O - "http://$rest/" 2>/dev/null)
cert=unavailable
[ -s "$dir/tls.cert" ] && cert=$(sha256sum "$dir/tls.cert" | cut -c1-16)
mac=missing
[ -s "$dir/admin.macaroon" ] && mac=present
echo "Content-Type: text/html"
echo
echo "<h1>Lightning UI (lockstep demo)</h1>"
echo "<p>lnd at $rest: ${info:-unreachable}</p>"
echo "<p>tls.cert sha256 $cert, admin.macaroon $mac, $dir mounted read-only: $(cat /data/ui/readonly)</p>"
CGI
chmod 755 /data/ui/cgi-bin/index.cgi
echo "lnd-ui: lnd REST at $rest, credentials in $dir (read-only: $ro)"
httpd -f -p 3000 -h /data/ui &
pid=$!
(while :; do
  n=0
  while [ ! -s "$dir/tls.cert" ] || [ ! -s "$dir/admin.macaroon" ]; do
    [ $n = 0 ] && echo "lnd-ui: waiting for lnd's tls.cert and admin.macaroon"
    n=1; sleep 1
  done
  REQUEST_METHOD=GET sh /data/ui/cgi-bin/index.cgi | sed '1,2d' > /data/www/index.html.tmp && mv /data/www/index.html.tmp /data/www/index.html
  sleep 10
done) &
status=$!
trap 'echo "lnd-ui: shutting down"; kill $pid $status 2>/dev/null; exit 0' TERM INT
wait $pid
exit 1
