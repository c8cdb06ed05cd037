#!/bin/sh
# lnd-ui's companion (lockstep demo): serves the status page the UI keeps in /www, and what the
# companion itself sees of lnd's credentials in its read-only mount /lnd.
mkdir -p /tmp/status/cgi-bin
cat > /tmp/status/cgi-bin/index.cgi <<'CGI'
#!/bin/sh
cert=missing
[ -s /lnd/tls.cert ] && cert=$(sha256sum /lnd/tls.cert | cut -c1-16)
case $(touch /lnd/.companion-write-test 2>&1) in
*Read-only*) ro=yes ;;
"") rm -f /lnd/.companion-write-test; ro=no ;;
*) ro="not writable, but not a read-only mount" ;;
esac
echo "Content-Type: text/html"
echo
cat /www/index.html 2>/dev/null || echo "<p>lnd-ui has not written its status page yet</p>"
echo "<p>companion: tls.cert sha256 $cert, /lnd mounted read-only: $ro</p>"
CGI
chmod 755 /tmp/status/cgi-bin/index.cgi
exec httpd -f -p 8081 -h /tmp/status
