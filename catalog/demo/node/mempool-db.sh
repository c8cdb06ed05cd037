#!/bin/sh
# MariaDB stand-in (lockstep demo): a store on 3306 that answers only $MYSQL_USER with $MYSQL_PASSWORD.
if [ -z "$MYSQL_PASSWORD" ]; then echo "db: MYSQL_PASSWORD is not set" >&2; exit 1; fi
mkdir -p /tmp/db/cgi-bin
echo "/:$MYSQL_USER:$MYSQL_PASSWORD" > /tmp/db/httpd.conf
chmod 600 /tmp/db/httpd.conf
cat > /tmp/db/cgi-bin/index.cgi <<'CGI'
#!/bin/sh
echo "Content-Type: text/plain"
echo
echo "mariadb stand-in: database $MYSQL_DATABASE ready, $(ls /var/lib/mysql | wc -l) files"
CGI
chmod 755 /tmp/db/cgi-bin/index.cgi
rm -f /var/lib/mysql/ready
httpd -f -p 3306 -h /tmp/db -c /tmp/db/httpd.conf &
pid=$!
date -u > /var/lib/mysql/ready
echo "db: database $MYSQL_DATABASE for user $MYSQL_USER on 3306"
trap 'echo "db: shutting down"; rm -f /var/lib/mysql/ready; kill $pid; exit 0' TERM INT
wait $pid
exit 1
