// Package secrets keeps the secrets apps export: 32 random bytes, hex, made on first use and kept in
// STATE-DIR/secrets/APP/NAME (directories 0700, files 0600), cached in memory. Get makes a missing
// secret; Peek only reads (an observer such as lockstepctl plan creates nothing); Rotate writes a new
// value; Forget drops an app's cached values after a purge. Values go into the containers and files
// that use them and nowhere else: never a log line, a report, a D-Bus reply or an error (errors
// name the app, the secret and the path, never the value).
package secrets
