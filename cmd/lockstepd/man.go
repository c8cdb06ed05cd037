package main

import (
	"bytes"
	"flag"
	"fmt"
	"strings"
	"time"
)

// manDate is the date in lockstepd(8)'s header. It is fixed so that generating the page twice gives
// the same file; change it when the flags change.
var manDate = time.Date(2026, time.December, 1, 0, 0, 0, 0, time.UTC)

// manPage renders lockstepd(8) from the flag set (docs/man/lockstepd.8; make docs writes it and
// TestManPageUpToDate fails when the committed page differs). The prose around the options is here;
// every option's text is the flag's usage string, so --help and the page never disagree.
func manPage(fs *flag.FlagSet) []byte {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w(`.TH LOCKSTEPD 8 "%s" "lockstep" "lockstep manual"`, manDate.Format("Jan 2006"))
	w(".SH NAME")
	w(`lockstepd \- keep a host's podman containers in lockstep with YAML app manifests`)
	w(".SH SYNOPSIS")
	w(`.B lockstepd`)
	w(`[\fIOPTIONS\fR]`)
	w(".SH DESCRIPTION")
	w(`.B lockstepd`)
	w(`is a systemd-native daemon that, every pass, observes podman, plans what each installed app`)
	w(`needs (nothing, start, install, recreate on drift, force-recreate when wedged) and does it,`)
	w(`recording a report of every action and failure. One app's failure never stops the others,`)
	w(`and app data is never deleted.`)
	w(".PP")
	w(`It is normally started by systemd: by \fBlockstepd.socket\fR, by D-Bus activation of`)
	w(`\fBorg.lockstep.Reconciler1\fR or by \fBlockstep-reconcile.timer\fR. Options are set in`)
	w(`\fI/etc/lockstep/lockstepd.env\fR as \fBLOCKSTEPD_OPTS=\fR. \fBlockstepctl\fR(1) is its client.`)
	w(".SH OPTIONS")
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		if name == "value" {
			name = "list" // the custom flags (--volume-root, --allowed-registries, ...) are lists
		}
		name = strings.ToUpper(name)
		w(".TP")
		if name == "" {
			w(`\fB\-\-%s\fR`, roff(f.Name))
		} else {
			w(`\fB\-\-%s\fR \fI%s\fR`, roff(f.Name), roff(name))
		}
		text := roff(usage)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" && f.DefValue != "0" {
			text += fmt.Sprintf(` (default: %s)`, roff(f.DefValue))
		}
		w("%s", text)
	})
	w(".SH SIGNALS")
	w(".TP")
	w(`.B SIGHUP`)
	w(`reloads the manifests and runs a pass.`)
	w(".TP")
	w(`.B SIGTERM`)
	w(`refuses new calls, lets the pass in progress finish (up to \fB\-\-stop\-timeout\fR), saves the report and exits.`)
	w(".SH FILES")
	w(".TP")
	w(`.I /etc/lockstep/apps.d/`)
	w(`installed apps: one manifest, or a symlink to a catalog manifest, per app`)
	w(".TP")
	w(`.I /usr/share/lockstep/catalog/`)
	w(`available apps`)
	w(".TP")
	w(`.I /var/lib/lockstep/`)
	w(`the last report, secrets and every app's data (\fIapps/\fR)`)
	w(".TP")
	w(`.I /run/lockstep/lockstep.sock`)
	w(`the HTTP API`)
	w(".SH EXIT STATUS")
	w(`0 on a clean exit; 1 when \fB\-\-once\fR's pass has failures or the daemon cannot start or`)
	w(`serve (its runtime dir, the bus or its name, the socket); 2 for bad options.`)
	w(".SH SEE ALSO")
	w(`\fBlockstepctl\fR(1), \fBpodman\fR(1), \fBsystemd.service\fR(5),`)
	w(`\fI/usr/share/doc/lockstep/README.md\fR`)
	return b.Bytes()
}

// roff escapes text for a man page: backslashes, hyphens (so they stay hyphens), and a leading dot
// or quote, which roff would read as a request.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
